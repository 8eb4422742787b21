"""``python -m benchmarks.bench_extract``: speed and memory of ``ncsproc extract`` on a cohort.

From one run on a simulated cohort of EDF+D exam folders (default 1,000 exams, a few minutes
on 2 cores):

* exams and files per second of the whole ``extract`` (plan, hash, compute, merge) with 2
  workers (processes), and with 1 worker: the speed-up;
* the raw-read floor: read every input file's bytes and decode its samples with numpy (EDF
  header fields, int16 records to volts), same files, same run, one process; the ratio of the
  whole extract to it;
* where the time goes inside a task (read, measure, features, part), from one profiled task;
* peak resident memory (``ru_maxrss``) of the client process and of the largest worker, each
  run in a subprocess, at N and (``--big``) at 10 x N exams;
* the same extract on a dask.distributed LocalCluster of 2 worker processes (127.0.0.1 only),
  a rerun of the finished cohort (everything cached), and the start time of ``ncsproc --help``
  and ``import ncsproc``;
* one table of every measure next to its target (issue 16).

Cohorts: ``--base`` unique exams are simulated (in parallel processes, ~70 ms per exam), then
replicated under new exam ids up to the requested size: EDF files hard-linked (copied when
links are impossible), sidecars rewritten with the new exam and subject ids. A replica is a
different exam to the pipeline (its content hash includes its id) with the same traces, so the
work per exam is the real one; only the simulation time is saved. The cohorts are kept in
``--workdir`` and reused.

Options: ``--exams N`` (default 1000), ``--cohort DIR`` (measure an existing cohort instead,
e.g. a held-out one from ``ncsproc simulate``), ``--big`` (also 10 x N for the memory growth),
``--quick`` (60 exams: proves the script works), ``--no-traces`` (tables only),
``--workdir DIR``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

PATTERNS = ("normal", "distal_demyelinating", "cidp_like", "axonal")


# -- cohorts ---------------------------------------------------------------------------------
def _simulate_part(args) -> str:
    folder, per_pattern, seed = args
    from ncsproc.simulate import write_cohort

    write_cohort(folder, patterns=list(PATTERNS), per_pattern=per_pattern, seed=seed)
    return folder


def base_cohort(workdir: Path, n_base: int, jobs: int = 2) -> Path:
    """``n_base`` unique simulated exams (multiple of 4 x jobs), simulated in parallel."""
    base = workdir / f"base{n_base}"
    if (base / "done").exists():
        return base
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    per_pattern = max(1, n_base // (len(PATTERNS) * jobs))
    tasks = [(str(base / f"part{j}"), per_pattern, 1000 + j) for j in range(jobs)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(_simulate_part, tasks))
    (base / "done").write_text("ok")
    return base


def replicate(base: Path, dst: Path, n_exams: int) -> Path:
    """A cohort of ``n_exams`` exam folders made from the base exams under new ids."""
    if (dst / "done").exists():
        return dst
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    exams = sorted(p for part in sorted(base.glob("part*")) for p in part.iterdir() if p.is_dir())
    for i in range(n_exams):
        src = exams[i % len(exams)]
        new_id = f"EX{i + 1:06d}"
        folder = dst / new_id
        folder.mkdir()
        for f in sorted(src.iterdir()):
            target = folder / f.name
            if f.suffix == ".json":
                doc = json.loads(f.read_text())
                doc["exam_id"] = new_id
                doc["subject_id"] = f"SUB{i + 1:06d}"
                target.write_text(json.dumps(doc, indent=1))
            else:
                try:
                    os.link(f, target)
                except OSError:
                    shutil.copyfile(f, target)
    (dst / "done").write_text("ok")
    return dst


# -- the raw-read floor -------------------------------------------------------------------------
def raw_read(path: Path) -> np.ndarray:
    """Read an EDF(+) file's bytes and decode every ordinary signal's samples to volts."""
    b = path.read_bytes()
    n_header = int(b[184:192])
    n_records = int(b[236:244])
    ns = int(b[252:256])
    off = 256

    def field(w):
        return [
            b[off + k * w + i * w : off + k * w + (i + 1) * w] for k in range(1) for i in range(ns)
        ]

    labels = field(16)
    off += ns * 16 + ns * 80
    units = [x.strip() for x in field(8)]
    off += ns * 8
    pmin = np.array([float(x) for x in field(8)])
    off += ns * 8
    pmax = np.array([float(x) for x in field(8)])
    off += ns * 8
    dmin = np.array([float(x) for x in field(8)])
    off += ns * 8
    dmax = np.array([float(x) for x in field(8)])
    off += ns * 8 + ns * 80
    spr = np.array([int(x) for x in field(8)])
    data = np.frombuffer(b, dtype="<i2", offset=n_header, count=n_records * int(spr.sum()))
    data = data.reshape(n_records, int(spr.sum()))
    gain = (pmax - pmin) / (dmax - dmin)
    out = []
    start = 0
    for i in range(ns):
        if labels[i].strip() != b"EDF Annotations":
            scale = {b"mV": 1e-3, b"uV": 1e-6}.get(units[i], 1.0)
            seg = data[:, start : start + spr[i]].astype(np.float64)
            out.append((seg - dmin[i]) * gain[i] * scale + pmin[i] * scale)
        start += spr[i]
    return out


def raw_floor(files: list[Path]) -> float:
    t0 = time.perf_counter()
    for f in files:
        raw_read(f)
    return time.perf_counter() - t0


# -- runs ------------------------------------------------------------------------------------
_RUNNER = r"""
import json, resource, sys, time
from ncsproc.pipeline import extract
if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    cluster = client = None
    if args["scheduler"] == "localcluster":  # workers on loopback only
        from distributed import Client, LocalCluster
        cluster = LocalCluster(n_workers=args.pop("workers"), threads_per_worker=1,
                               host="127.0.0.1", dashboard_address=None, processes=True)
        client = args["scheduler"] = Client(cluster)
    t0 = time.perf_counter()
    r = extract(**args)
    out = dict(seconds=time.perf_counter() - t0, timings=r.timings, n_exams=r.n_exams,
               n_files=r.n_files, n_traces=r.n_traces, n_errors=r.n_errors,
               client_maxrss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               children_maxrss_kb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print("RESULT " + json.dumps(out))
    if client is not None:
        client.close()
        cluster.close()
"""


def run_extract(
    cohort: Path,
    out: Path,
    *,
    scheduler="processes",
    workers=2,
    traces=True,
    batch_size=None,
    fresh=True,
) -> dict:
    """One ``extract`` (from scratch unless ``fresh`` is False: a rerun) in a subprocess; its
    timings and peak memory. ``scheduler="localcluster"``: a distributed LocalCluster of
    ``workers`` processes on 127.0.0.1, started in that subprocess."""
    if fresh:
        shutil.rmtree(out, ignore_errors=True)
    args = {
        "paths": [str(cohort)],
        "out": str(out),
        "scheduler": scheduler,
        "workers": workers,
        "traces": traces,
        "batch_size": batch_size,
    }
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, json.dumps(args)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        raise RuntimeError(f"extract failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    res = json.loads(line[0][7:])
    res["wall_with_startup"] = wall
    return res


def profile_task(cohort: Path, n: int = 8) -> dict:
    """Seconds per exam of each step of a task (one process, warm)."""
    import ncsproc
    from ncsproc.pipeline.inputs import hash_exams, plan_inputs
    from ncsproc.pipeline.settings import load_settings
    from ncsproc.pipeline.work import _read_exam, _tables_for, build_dataset, process_batch

    settings = load_settings()
    plan = plan_inputs([cohort])
    jobs = [e for e in plan.exams if e.problem is None][: 2 * n]
    hash_exams(jobs, settings.sha256)
    with tempfile.TemporaryDirectory() as tmp:
        process_batch(jobs[:n], settings, tmp, True)  # warm up (numba, imports)
        batch = jobs[n : 2 * n]
        t = {}
        t0 = time.perf_counter()
        files = [_read_exam(j, False)[0] for j in batch]
        t["read"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds = build_dataset([fd for fl in files for fd in fl], "bench")
        t["build_dataset"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        m = ncsproc.measure(ds, n_threads=1)
        t["measure"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        _tables_for(m, settings)
        t["features+responses"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        process_batch(batch, settings, tmp, True)
        t["whole task"] = time.perf_counter() - t0
    per_exam = {k: v / len(batch) for k, v in t.items()}
    n_files = sum(len(fl) for fl in files)
    per_file_read = (t["read"] + t["build_dataset"]) / max(1, n_files)
    return per_exam, per_file_read


def start_times(repeat: int = 3) -> dict:
    """Best wall time of ``ncsproc --help`` and ``python -c "import ncsproc"`` (new processes)."""
    out = {}
    for label, code in (
        (
            "ncsproc --help",
            "import sys; from ncsproc.cli import main; sys.argv=['ncsproc', '--help']; main()",
        ),
        ("import ncsproc", "import ncsproc"),
    ):
        best = math.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
            best = min(best, time.perf_counter() - t0)
        out[label] = best
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_extract",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--exams", type=int, default=1000)
    parser.add_argument("--base", type=int, default=200, help="unique simulated exams")
    parser.add_argument("--big", action="store_true", help="also 10 x --exams (memory)")
    parser.add_argument("--quick", action="store_true", help="60 exams, smoke test")
    parser.add_argument("--no-traces", action="store_true")
    parser.add_argument(
        "--cohort", help="an existing cohort folder (e.g. from `ncsproc simulate`) to measure"
    )
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "ncsproc-bench"))
    args = parser.parse_args(argv)
    if args.quick:
        args.exams, args.base = 60, 24
    import ncsproc

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    traces = not args.no_traces
    print(
        f"ncsproc {ncsproc.__version__}, python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPU(s) ({len(os.sched_getaffinity(0))} usable)"
    )
    t0 = time.perf_counter()
    if args.cohort:
        cohort = Path(args.cohort)
        args.exams = sum(1 for p in cohort.iterdir() if p.is_dir())
        base = None
        print(f"cohort: {args.exams} exams in {cohort}")
    else:
        base = base_cohort(work, args.base)
        cohort = replicate(base, work / f"cohort{args.exams}", args.exams)
        print(
            f"cohort: {args.exams} exams from {args.base} simulated ones "
            f"({time.perf_counter() - t0:.0f} s to prepare) in {cohort}"
        )
    files = sorted(cohort.rglob("*.edf"))
    floor = min(raw_floor(files) for _ in range(3))
    print(
        f"raw-read floor: {len(files)} files in {floor:.2f} s "
        f"({len(files) / floor:,.0f} files/s, {1e6 * floor / len(files):.0f} us per file)"
    )

    n_files = len(files)
    starts = start_times()
    r2 = run_extract(cohort, work / "out2", workers=2, traces=traces)
    rerun = run_extract(cohort, work / "out2", workers=2, traces=traces, fresh=False)
    r1 = run_extract(cohort, work / "out1", workers=1, traces=traces)
    rd = run_extract(cohort, work / "outd", scheduler="localcluster", workers=2, traces=traces)
    for label, r in (
        ("processes, 2 workers", r2),
        ("processes, 1 worker", r1),
        ("LocalCluster, 2 workers", rd),
        ("rerun (all cached)", rerun),
    ):
        print(
            f"extract, {label}: {r['seconds']:.2f} s; phases "
            + ", ".join(f"{k} {v:.2f} s" for k, v in r["timings"].items())
            + f"; peak RSS client {r['client_maxrss_kb'] / 1024:.0f} MB"
        )
    prof, per_file_read = profile_task(cohort)
    print(
        "per exam inside a task (ms): " + ", ".join(f"{k} {1e3 * v:.1f}" for k, v in prof.items())
    )
    floor_file = floor / n_files
    overhead_us = 1e6 * (per_file_read - floor_file)
    rerun_budget = 1.0 + 1e-4 * n_files
    rows = [
        ("whole extract, 2 workers (s)", f"{r2['seconds']:.2f}", ""),
        ("raw-read floor, 1 process (s)", f"{floor:.2f}", ""),
        ("ratio extract / floor", f"{r2['seconds'] / floor:.1f}x", "<= 25x (aim 5x)"),
        ("files/s, 2 workers", f"{n_files / r2['seconds']:.0f}", ""),
        ("per-file read overhead beyond the floor (us)", f"{overhead_us:.0f}", "<= 300"),
        ("speed-up 1 -> 2 workers", f"{r1['seconds'] / r2['seconds']:.2f}x", ">= 1.8x"),
        ("LocalCluster 2 workers, 127.0.0.1 (s)", f"{rd['seconds']:.2f}", ""),
        ("rerun, everything cached (s)", f"{rerun['seconds']:.2f}", f"<= {rerun_budget:.2f}"),
        ("ncsproc --help (s)", f"{starts['ncsproc --help']:.2f}", "< 0.5"),
        ('python -c "import ncsproc" (s)', f"{starts['import ncsproc']:.2f}", "< 0.5"),
    ]
    if args.big and base is None:
        print("--big needs a replicated cohort (no --cohort)")
    elif args.big:
        big = replicate(base, work / f"cohort{10 * args.exams}", 10 * args.exams)
        rb = run_extract(big, work / "outbig", workers=2, traces=traces)
        growth = rb["client_maxrss_kb"] / r2["client_maxrss_kb"]
        rows.append(("client peak RSS, 10x the exams / 1x", f"{growth:.2f}x", "<= 1.3x"))
        print(
            f"extract of {10 * args.exams} exams, 2 workers: {rb['seconds']:.0f} s "
            f"({rb['n_exams'] / rb['seconds']:.1f} exams/s); phases "
            + ", ".join(f"{k} {v:.1f} s" for k, v in rb["timings"].items())
            + f"; peak RSS client {rb['client_maxrss_kb'] / 1024:.0f} MB (x{growth:.2f} for "
            f"10 x the exams), largest worker {rb['children_maxrss_kb'] / 1024:.0f} MB"
        )
        shutil.rmtree(work / "outbig", ignore_errors=True)
    load = os.getloadavg()
    print(
        f"\n{args.exams} exams, {n_files} files; load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min, {os.cpu_count()} CPUs)"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>9}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>9}  {target}")
    print("outputs identical to the public ncsproc.read path: tests/pipeline/test_raw_layer.py")
    for d in ("out1", "out2", "outd"):
        shutil.rmtree(work / d, ignore_errors=True)
    _ = resource  # (ru_maxrss is read in the subprocesses)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
