"""Same bytes whatever runs the tasks: synchronous, threads, processes, a distributed cluster of
separate processes on loopback, any batch size; and workers that die are retried."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import table_files


def _assert_same_tables(out: Path, ref: Path):
    got, expected = table_files(out), table_files(ref)
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name] == expected[name], name


@pytest.mark.parametrize(
    "scheduler, workers, batch",
    [("threads", 2, 3), ("processes", 2, 2), ("synchronous", None, 1)],
)
def test_schedulers_give_identical_tables(
    cohort, reference_run, tmp_path, scheduler, workers, batch
):
    from ncsproc.pipeline import extract

    out = tmp_path / "out"
    result = extract(
        [cohort], out, scheduler=scheduler, workers=workers, batch_size=batch, traces=False
    )
    assert result.exit_status == 0 and result.n_computed == 8
    _assert_same_tables(out, reference_run[0])


def _pool_children() -> list[int]:
    """PIDs of this process's multiprocessing pool workers (not its resource tracker)."""
    me, pids = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me and b"spawn_main" in cmd and b"resource_tracker" not in cmd:
            pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the pool workers")
def test_a_local_worker_process_that_dies_is_replaced(cohort, reference_run, tmp_path):
    from ncsproc.pipeline import extract

    killed = []

    def progress(p):
        if p.exams_done >= 1 and not killed:
            pids = _pool_children()
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

    out = tmp_path / "out"
    result = extract(
        [cohort],
        out,
        scheduler="processes",
        workers=2,
        batch_size=1,
        traces=False,
        progress=progress,
    )
    assert killed, "no pool worker was found to kill"
    assert result.exit_status == 0 and result.n_exams == 8
    _assert_same_tables(out, reference_run[0])


# -- a real distributed cluster: a scheduler and two workers as separate processes -------------
def _stop(procs):
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 15
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=10)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker --nworkers 1 --nthreads 1`` on 127.0.0.1."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("cluster")
    sched_file = folder / "scheduler.json"
    exe = Path(sys.executable).with_name("dask")
    if exe.exists():  # the `dask` command of this environment
        dask, worker = [str(exe), "scheduler"], [str(exe), "worker"]
    else:  # pragma: no cover - same programs, by module
        dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
        worker = [sys.executable, "-m", "distributed.cli.dask_worker"]
    logs = []
    procs = []
    try:
        log = open(folder / "scheduler.log", "w")
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [
                    *dask,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--no-dashboard",
                    "--scheduler-file",
                    str(sched_file),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=folder,
            )
        )
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            if time.monotonic() > deadline or procs[0].poll() is not None:
                raise RuntimeError(
                    "dask scheduler did not start: "
                    + (folder / "scheduler.log").read_text()[-2000:]
                )
            time.sleep(0.1)
        for i in range(2):
            log = open(folder / f"worker{i}.log", "w")
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [
                        *worker,
                        "--scheduler-file",
                        str(sched_file),
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--name",
                        f"w{i}",
                        "--local-directory",
                        str(folder),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=folder,
                )
            )
        with Client(scheduler_file=str(sched_file), timeout="30s", set_as_default=False) as client:
            client.wait_for_workers(2, timeout=90)
        yield {"file": sched_file, "address": json.loads(sched_file.read_text())["address"]}
    finally:
        _stop(procs)
        for log in logs:
            log.close()


@pytest.mark.distributed
def test_distributed_cluster_by_address(cohort, reference_run, tmp_path, dask_cluster):
    """The CLI connects to a running scheduler by its address; same bytes as locally."""
    from .helpers import cli

    assert dask_cluster["address"].startswith("tcp://127.0.0.1:")
    code, err = cli(
        [
            "extract",
            cohort,
            "--out",
            tmp_path / "out",
            "--scheduler",
            dask_cluster["address"],
            "--batch-size",
            "2",
            "--no-traces",
        ]
    )
    assert code == 0, err
    assert "distributed (2 worker(s))" in err
    _assert_same_tables(tmp_path / "out", reference_run[0])


@pytest.mark.distributed
def test_distributed_worker_death_is_retried(cohort, reference_run, tmp_path, dask_cluster):
    """A worker killed with SIGKILL mid-run: its nanny restarts it, the scheduler reruns its
    tasks, the tables are complete and identical, nothing is reported as failed."""
    from distributed import Client

    from ncsproc.pipeline import extract

    with Client(
        scheduler_file=str(dask_cluster["file"]), timeout="30s", set_as_default=False
    ) as client:
        pids = sorted(client.run(os.getpid).values())
        assert len(pids) == 2
        killed = []

        def progress(p):
            if p.exams_done >= 1 and not killed:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        out = tmp_path / "out"
        result = extract(
            [cohort], out, scheduler=client, batch_size=1, traces=True, progress=progress
        )
        assert killed
        assert result.exit_status == 0 and result.n_exams == 8
        _assert_same_tables(out, reference_run[0])
        client.wait_for_workers(2, timeout=60)  # the nanny brought it back
