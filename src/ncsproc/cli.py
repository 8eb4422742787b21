"""The ``ncsproc`` command line.

Subcommands import what they need when they run, so ``ncsproc --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from ._version import __version__


def _trace_suffixes() -> tuple[str, ...]:
    """File extensions of every registered trace-set reader (sidecars are not inputs)."""
    from .formats import READERS

    return tuple(sorted({e for r in READERS.values() if r.kind == "traces" for e in r.extensions}))


def _collect_files(paths: Sequence[str], suffixes: Iterable[str]) -> list[tuple[Path, Path]]:
    """Expand files and folders (recursively) into (file, root) pairs, sorted and unique.

    Inside folders, only files that a trace reader recognises by content are taken (a folder
    of exams also holds sidecars, notes and tables); a file named explicitly is always taken,
    so a damaged one is reported rather than skipped.
    """
    from .formats import detect

    suffixes = tuple(suffixes)
    found: dict[Path, Path] = {}
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if not (f.is_file() and f.suffix.lower() in suffixes) or f.name.startswith("."):
                    continue
                accepted, _ = detect(f)
                if any(r.kind == "traces" for r in accepted):
                    found.setdefault(f.resolve(), p)
        elif p.is_file():
            found.setdefault(p.resolve(), p.parent)
        else:
            matches = sorted(Path().glob(raw)) if any(c in raw for c in "*?[") else []
            if not matches:
                raise SystemExit(f"ncsproc: {raw}: no such file or folder")
            for f in matches:
                if f.is_file():
                    found.setdefault(f.resolve(), f.parent)
    return sorted(((f, root.resolve()) for f, root in found.items()), key=lambda fr: str(fr[0]))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _cmd_formats(args: argparse.Namespace) -> int:
    from .formats import list_formats

    for reader in list_formats():
        line = f"{reader.name:16s} {', '.join(reader.extensions):20s} {reader.description}"
        if reader.kind != "traces":
            line += f" [results, not traces: read with {reader.function_name}(path)]"
        print(line)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .formats import read

    failed = 0
    for path, _root in _collect_files(args.paths, _trace_suffixes()):
        try:
            ds = read(path)
        except Exception as exc:  # report and go on with the next file
            print(f"{path.name}: ERROR {type(exc).__name__}: {exc}", file=sys.stderr)
            failed += 1
            continue
        rates = sorted({float(r) for r in ds["sampling_rate"].values})
        print(
            f"{path.name}: {ds.sizes['trace']} traces, "
            f"{len(set(ds['exam_id'].values))} exam(s), "
            f"{len(set(ds['study'].values))} studies "
            f"({', '.join(sorted(set(ds['study'].values.astype(str))))}); "
            f"sampling rates {', '.join(f'{r:g}' for r in rates)} Hz; valid {ds.attrs['schema']}"
        )
    return 1 if failed else 0


def _cmd_measure(args: argparse.Namespace) -> int:
    import pandas as pd

    from .formats import read
    from .measures import measure
    from .tables import responses_table, write_csv

    files = _collect_files(args.paths, _trace_suffixes())
    if not files:
        print("ncsproc measure: no trace files found", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tables, errors = [], []
    n_traces = 0
    for path, root in files:
        rel = _relative(path, root)
        try:
            ds = read(path)
            ds = ds.assign_coords(
                source_file=("trace", [rel] * ds.sizes["trace"], ds.source_file.attrs)
            )
            result = measure(ds)
            tables.append(responses_table(result, extended=True))
            n_traces += ds.sizes["trace"]
        except Exception as exc:  # a bad file is recorded and the batch goes on
            errors.append({"source_file": rel, "error": type(exc).__name__, "message": str(exc)})
            print(f"ncsproc measure: {rel}: {type(exc).__name__}: {exc}", file=sys.stderr)
    if tables:
        table = pd.concat(tables, ignore_index=True)
        write_csv(table, out / "responses.csv")
    errors_table = pd.DataFrame(errors, columns=["source_file", "error", "message"])
    write_csv(errors_table, out / "errors.csv")
    elapsed = time.perf_counter() - t0
    print(
        f"ncsproc measure: {len(files)} files, {n_traces} traces, {len(errors)} failures "
        f"in {elapsed:.2f} s -> {out / 'responses.csv'}"
    )
    return 1 if errors else 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from . import simulate

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = simulate.write_cohort(
        out,
        patterns=args.patterns,
        per_pattern=args.per_pattern,
        seed=args.seed,
        dtype=args.dtype,
        file_format=args.format,
    )
    print(f"ncsproc simulate: {len(written)} files and the ground truth written to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``ncsproc`` command."""
    parser = argparse.ArgumentParser(
        prog="ncsproc",
        description="Nerve-conduction traces to validated measurements and registry tables.",
    )
    parser.add_argument("--version", action="version", version=f"ncsproc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("formats", help="list the supported input formats")
    p.set_defaults(func=_cmd_formats)

    p = sub.add_parser("info", help="summarise trace files (files or folders)")
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "measure",
        help="measure every trace of the given files or folders into responses.csv",
        description="Measure every trace (onset, peak, amplitude, durations, area, F latency) "
        "and write DIR/responses.csv in clinical units plus DIR/errors.csv.",
    )
    p.add_argument("paths", nargs="+", help="trace files or folders (searched recursively)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_measure)

    p = sub.add_parser(
        "simulate",
        help="write a simulated cohort with exact ground truth",
        description="Write one folder per simulated exam (EDF+D files by default) and the "
        "ground truth tables (truth_traces.csv, truth_studies.csv, truth_segments.csv, "
        "truth_exams.csv).",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--patterns",
        nargs="+",
        default=["normal", "distal_demyelinating", "cidp_like", "axonal"],
        help="patterns to simulate (default: all four)",
    )
    p.add_argument("--per-pattern", type=int, default=1, help="exams per pattern (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument(
        "--format",
        choices=["edf", "hdf5"],
        default="edf",
        help="edf: EDF+D per study (default); hdf5: one native file per exam",
    )
    p.set_defaults(func=_cmd_simulate)

    from .pipeline.cli import add_extract_parser
    from .registry.cli import add_registry_parser
    from .report.cli import add_plot_parser, add_report_parser

    add_extract_parser(sub)
    add_registry_parser(sub)
    add_report_parser(sub)
    add_plot_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ncsproc`` command; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
