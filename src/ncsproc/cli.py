"""The ``ncsproc`` command line.

Subcommands import what they need when they run, so ``ncsproc --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ._cliutil import (
    EXIT_FAILURES,
    EXIT_USAGE,
    ArgumentParser,
    CliError,
    HelpFormatter,
    compile_note,
    debug_requested,
    one_line,
    output_folder,
    positive_int,
    run_command,
)
from ._version import __version__


def _survey(paths: Sequence[str]) -> tuple[list, list]:
    """(inputs, not read): the trace files of ``paths`` and every other file found, with why.

    Inside folders, only files that a trace reader recognises by content are inputs (a folder
    of exams also holds sidecars, notes and tables); every other file found (hidden files and
    sidecars aside) comes back in ``not read`` as ``(InputFile, error, reason)``, so nothing
    is skipped without a word. A file named explicitly is always an input, so a damaged one
    is reported rather than skipped.
    """
    from .formats import READERS, detect
    from .pipeline.inputs import UsageError, collect_files, why_not_read

    suffixes = tuple(sorted({e for r in READERS.values() for e in r.extensions}))
    others: list = []
    try:
        found = collect_files(paths, suffixes=suffixes, others=others)
    except UsageError as exc:
        raise CliError(str(exc)) from None
    named = {os.path.abspath(p) for p in paths if Path(p).is_file()}
    inputs, not_read = [], []
    for f in found:
        if f.explicit or f.path in named:
            inputs.append(f)
            continue
        accepted, _ = detect(f.path)
        if any(r.kind == "traces" for r in accepted):
            inputs.append(f)
        else:
            not_read.append((f, *why_not_read(f.path)))
    not_read += [(f, *why_not_read(f.path)) for f in others]
    not_read.sort(key=lambda r: r[0].source_file)
    return inputs, not_read


def _not_read_summary(not_read: list) -> str:
    """``3 file(s) not read (2 hold results, not traces; 1 no reader for its extension)``."""
    kinds = {"NotTraces": "hold results, not traces", "NotRecognised": "not a trace file"}
    counts: dict[str, int] = {}
    for _f, error, _reason in not_read:
        counts[error] = counts.get(error, 0) + 1
    parts = [f"{n} {kinds.get(e, 'no reader for the extension')}" for e, n in counts.items()]
    return f"{len(not_read)} file(s) not read ({'; '.join(parts)})"


def _say(prog: str, message: str) -> None:
    print(f"{prog}: {message}", file=sys.stderr)


def _cmd_docs(args: argparse.Namespace) -> int:
    from .docs import TOPICS, doc_text

    if args.topic is None:
        for topic, rel in TOPICS.items():
            print(f"{topic:12s} {rel}")
        return 0
    if args.topic not in TOPICS:
        raise CliError(f"unknown topic {args.topic!r}; choose from {', '.join(TOPICS)}")
    sys.stdout.write(doc_text(args.topic))
    return 0


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
    from .unknowns import missing_metadata

    inputs, not_read = _survey(args.paths)
    failed = 0
    by_exam: dict[str, list[str]] = {}
    totals: dict[str, list[int]] = {}
    for f in inputs:
        name = f.source_file
        try:
            ds = read(f.path)
        except Exception as exc:  # report and go on with the next file
            _say("ncsproc info", f"{name}: {type(exc).__name__}: {one_line(exc)}")
            failed += 1
            continue
        rates = sorted({float(r) for r in ds["sampling_rate"].values})
        studies = sorted(set(ds["study"].values.astype(str)))
        line = (
            f"{name}: {ds.sizes['trace']} traces, {len(studies)} studies "
            f"({', '.join(studies)}); sampling rates {', '.join(f'{r:g}' for r in rates)} Hz; "
            f"valid {ds.attrs['schema']}"
        )
        labelled = ds.assign_coords(source_file=("trace", [name] * ds.sizes["trace"]))
        unknown = missing_metadata(labelled)
        if unknown:
            facts = sorted({w for m in unknown for w in ("side", "nerve", "modality") if w in m})
            line += (
                f"; unknown {', '.join(facts)} (read and drawn; a sidecar {Path(name).name}.json "
                "supplies them for measuring and the nerve features)"
            )
        exam = ", ".join(sorted(set(ds["exam_id"].values.astype(str)))) or "?"
        by_exam.setdefault(exam, []).append(line)
        t = totals.setdefault(exam, [0, 0])
        t[0] += 1
        t[1] += ds.sizes["trace"]
    for exam in sorted(by_exam):
        n_files, n_traces = totals[exam]
        print(f"exam {exam}: {n_files} file(s), {n_traces} traces")
        for line in by_exam[exam]:
            print(f"  {line}")
    for f, _error, reason in not_read:
        print(f"  {f.source_file}: not read: {reason}")
    n_read = sum(t[0] for t in totals.values())
    if not args.quiet or not n_read:
        _say(
            "ncsproc info",
            f"{n_read} trace file(s) in {len(by_exam)} exam(s), {failed} failed"
            + (f", {_not_read_summary(not_read)}" if not_read else ""),
        )
    if not n_read:
        return EXIT_USAGE if not failed else EXIT_FAILURES
    return EXIT_FAILURES if failed else 0


def _cmd_measure(args: argparse.Namespace) -> int:
    import pandas as pd

    from .formats import read
    from .pipeline.progress import Progress, ProgressDisplay
    from .pipeline.settings import ConfigError, load_settings
    from .tables import responses_table, write_csv
    from .unknowns import UNKNOWN_MODALITY, measure_known, missing_metadata

    prog = "ncsproc measure"
    compile_note(prog, args.quiet)  # before anything imports (and so compiles) the kernels
    try:
        settings = load_settings(resolve_config(args.config))
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    output_folder(args.out, create=False)
    inputs, not_read = _survey(args.paths)
    if not inputs:
        what = f"; {_not_read_summary(not_read)}" if not_read else ""
        raise CliError(
            f"no trace file found in {', '.join(args.paths)}{what}; `ncsproc formats` lists "
            "the formats ncsproc reads"
        )
    out = output_folder(args.out)
    workers = args.workers or 1
    display = None if (args.quiet or args.no_progress) else ProgressDisplay(sys.stderr, prefix=prog)
    t0 = time.perf_counter()
    errors = [
        {"source_file": f.source_file, "error": error, "message": f"{Path(f.path).name}: {reason}"}
        for f, error, reason in not_read
    ]

    def one(f):
        ds = read(f.path)
        ds = ds.assign_coords(
            source_file=("trace", [f.source_file] * ds.sizes["trace"], ds.source_file.attrs)
        )
        result = measure_known(ds, n_threads=None if workers == 1 else 1, **settings.measure)
        return responses_table(result, extended=True), missing_metadata(ds, ("modality",))

    tables, n_traces, n_failed, notes = [], 0, 0, []
    done = 0

    def report(finished=False):
        if display is not None:
            display(
                Progress(done, len(inputs), 0, 0, n_failed, 0, time.perf_counter() - t0, finished)
            )

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(one, f) for f in inputs]
        for f, future in zip(inputs, futures, strict=True):
            try:
                table, unknown = future.result()
                tables.append(table)
                n_traces += len(table)
                notes += unknown
            except Exception as exc:  # a bad file is recorded and the batch goes on
                errors.append(
                    {
                        "source_file": f.source_file,
                        "error": type(exc).__name__,
                        "message": one_line(exc),
                    }
                )
                n_failed += 1
                if not args.quiet:
                    _say(prog, f"{f.source_file}: {type(exc).__name__}: {one_line(exc)}")
            done += 1
            report()
    report(finished=True)
    if display is not None:
        display.close()
    if tables:
        from .tables import layout_table

        table = pd.concat(tables, ignore_index=True)
        version = int(args.tables[1:]) if args.tables else settings.tables_version
        write_csv(layout_table(table, version), out / "responses.csv")
    else:
        (out / "responses.csv").unlink(missing_ok=True)
    errors_table = pd.DataFrame(errors, columns=["source_file", "error", "message"])
    write_csv(errors_table, out / "errors.csv")
    for note in notes:
        _say(prog, f"note: {note} ({UNKNOWN_MODALITY}: no values)")
    elapsed = time.perf_counter() - t0
    n_ok = len(inputs) - n_failed
    summary = f"{n_ok} file(s) measured, {n_traces} traces, {n_failed} failed"
    if not_read:
        summary += f", {_not_read_summary(not_read)}"
    print(
        f"{prog}: {summary} in {elapsed:.2f} s -> {out / 'responses.csv'}"
        + (f"; see {out / 'errors.csv'}" if errors else "")
    )
    # files not read are listed (errors.csv, summary) but fail the run only when it measured
    # nothing at all
    return EXIT_FAILURES if (n_failed or not n_ok) else 0


def resolve_config(config: str | None):
    """``--config``: a .toml path, or the name of a bundled pipeline (``default``, ...)."""
    if config is None:
        return None
    from .pipeline.settings import bundled_pipeline

    return bundled_pipeline(config)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from . import simulate

    unknown = [p for p in args.patterns if p not in simulate.PATTERNS]
    if unknown:
        raise CliError(
            f"--patterns: unknown pattern(s) {', '.join(unknown)}; choose from "
            f"{', '.join(simulate.PATTERNS)}"
        )
    out = output_folder(args.out)
    n = len(args.patterns) * args.per_pattern
    if not args.quiet:
        _say("ncsproc simulate", f"simulating {n} exam(s) into {out} ...")
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


_INFO_EPILOG = """\
examples:
  ncsproc info data_samples/simulated/EX0001
  ncsproc info data_samples/real          # CFS without a sidecar; QTRAC results listed
  ncsproc info exam.h5 median.edf

Files are grouped by exam. Inside folders every file is either summarised or listed with the
reason it was not read. Exit status 0 all read, 1 some failed, 2 nothing to read.
"""

_MEASURE_EPILOG = """\
examples:
  ncsproc measure data_samples/simulated/EX0001 --out measured
  ncsproc measure cohort/ --out measured --config lab-example --workers 2 -q
  ncsproc measure data_samples/real/cfs/test_file.cfs --out measured

Outputs (DIR): responses.csv (one row per trace, clinical units) and errors.csv (every file
that failed or was not read, with the reason). A trace whose modality the file does not say
gets the status unknown_modality (give it in a sidecar <file>.json). Exit status 0 all trace
files measured, 1 some failed or none measured, 2 usage error.
"""

_SIMULATE_EPILOG = """\
examples:
  ncsproc simulate --out cohort
  ncsproc simulate --out cohort --patterns axonal normal --per-pattern 5 --seed 3
  ncsproc simulate --out cohort-h5 --format hdf5 --dtype float64
"""

_FORMATS_EPILOG = """\
examples:
  ncsproc formats
"""


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``ncsproc`` command."""
    parser = ArgumentParser(
        prog="ncsproc",
        description="Nerve-conduction traces to validated measurements and registry tables.",
        epilog="examples:\n  ncsproc extract data_samples/simulated --out results\n"
        "  ncsproc report results --out report\n  ncsproc COMMAND --help\n\n"
        "Exit status of every command: 0 done, 1 some inputs failed (listed), 2 usage or "
        "input error, 130 interrupted. --debug (anywhere) shows Python tracebacks.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ncsproc {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the Python traceback of an error"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "formats",
        help="list the supported input formats",
        description="List every registered reader: name, file extensions, what it reads.",
        epilog=_FORMATS_EPILOG,
        formatter_class=HelpFormatter,
    )
    p.set_defaults(func=_cmd_formats)

    p = sub.add_parser(
        "docs",
        help="print a document of the installed ncsproc (formats, tables, settings, ...)",
        description="Print the document of TOPIC (the formats, the tables and their units, "
        "the settings files, ...) as shipped with this ncsproc; without TOPIC, list the topics.",
        epilog="examples:\n  ncsproc docs\n  ncsproc docs tables\n  ncsproc docs readers | less\n",
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "topic", nargs="?", metavar="TOPIC", help="a topic (without one, the topics are listed)"
    )
    p.set_defaults(func=_cmd_docs)

    p = sub.add_parser(
        "info",
        help="summarise trace files (files or folders), grouped by exam",
        description="Read each trace file (any supported format) and print, per exam, its "
        "files with their traces, studies and sampling rates.",
        epilog=_INFO_EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (recursive)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line on stderr")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "measure",
        help="measure every trace of the given files or folders into responses.csv",
        description="Measure every trace (onset, peak, amplitude, durations, area, F latency) "
        "and write DIR/responses.csv in clinical units plus DIR/errors.csv.",
        epilog=_MEASURE_EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="trace files or folders (searched recursively)"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (new or existing)")
    p.add_argument(
        "--config",
        metavar="TOML",
        help="settings of a pipeline: a bundled name (default, lab-example) or a .toml path; "
        "its [measure] parameters are used",
    )
    p.add_argument(
        "--tables",
        choices=("v1", "v2"),
        default=None,
        help="layout of responses.csv: v2 (default) motor amplitudes in mV, v1 the "
        "interchange contract's uV columns (ncsproc docs tables)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="files read and measured at once, in threads (default 1, with the kernels on "
        "every core)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors and the final summary")
    p.set_defaults(func=_cmd_measure)

    p = sub.add_parser(
        "simulate",
        help="write a simulated cohort with exact ground truth",
        description="Write one folder per simulated exam (EDF+D files by default) and the "
        "ground truth tables (truth_traces.csv, truth_studies.csv, truth_segments.csv, "
        "truth_exams.csv).",
        epilog=_SIMULATE_EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (new or existing)")
    p.add_argument(
        "--patterns",
        nargs="+",
        default=["normal", "distal_demyelinating", "cidp_like", "axonal"],
        metavar="PATTERN",
        help="patterns to simulate: normal, distal_demyelinating, cidp_like, axonal "
        "(default: all four)",
    )
    p.add_argument(
        "--per-pattern",
        type=positive_int,
        default=1,
        metavar="N",
        help="exams per pattern (default 1)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument(
        "--format",
        choices=["edf", "hdf5"],
        default="edf",
        help="edf: EDF+D per study (default); hdf5: one native file per exam",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="only the final summary")
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
    """Run the ``ncsproc`` command; return its exit status (see :mod:`ncsproc._cliutil`)."""
    argv = [os.fspath(a) for a in (sys.argv[1:] if argv is None else argv)]
    debug, argv = debug_requested(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version (0) or a usage error (2)
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return 0
    prog = f"ncsproc {args.command}"
    if args.command == "registry" and getattr(args, "registry_command", None):
        prog += f" {args.registry_command}"
    return run_command(args.func, args, prog, debug=debug)


if __name__ == "__main__":
    sys.exit(main())
