"""The ``ncsproc extract`` subcommand.

``add_extract_parser(subparsers)`` adds it to the ``ncsproc`` command; ``python -m
ncsproc.pipeline extract ...`` runs it on its own. Exit status: 0 every file and exam was
processed, 1 some failed (listed in ``errors.csv``), 2 usage error (bad arguments, settings or
manifest, no input, unreachable scheduler).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from .._cliutil import ArgumentParser, HelpFormatter

__all__ = ["add_extract_parser", "cmd_extract", "main"]

DEFAULT_SCHEDULER = "processes"

_EPILOG = """\
examples:
  ncsproc extract data_samples/simulated --out results
  ncsproc extract cohort/ --out results --config lab-example --workers 2
  ncsproc extract cohort/ --out results --config my-lab.toml
  ncsproc extract "exports/**/*.edf" --manifest manifest.csv --out results
  ncsproc extract cohort/ --out results --scheduler tcp://10.0.0.5:8786
  ncsproc extract cohort/ --out results --overrides results/overrides.csv

Outputs (DIR): responses.csv, segments.csv, nerves.csv, exams.csv, errors.csv, criteria.csv,
sites.csv, reviews.csv, their Parquet copies (with pyarrow), cohort.h5, provenance.json, and
the cache DIR/.ncsproc/ that makes a rerun skip what is done. Every file found is processed
or listed in errors.csv with the reason (QTRAC results, a file whose side, nerve or modality
nobody says, ...); the summary counts the rest (notes, licences). With --overrides the
reviewed markers replace the machine's (ncsproc docs review). Exit status 0 all processed, 1
some failures (errors.csv), 2 usage error, 130 interrupted (a rerun resumes). Details:
ncsproc docs cohort; the tables' units: ncsproc docs tables.
"""


def add_extract_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``extract`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "extract",
        help="cohort pipeline: measurements and features of many exams, on Dask",
        description="Read every trace file of the given files, folders or globs, group them "
        "into exams (one folder per exam, or --manifest), measure every trace, compute the "
        "nerve-level features, criteria and patterns, and write the cohort tables into DIR. "
        "Resumable: a rerun skips every exam already done with the same settings.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="trace files, folders (searched recursively) or globs",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (new or existing)")
    p.add_argument(
        "--manifest",
        metavar="CSV",
        help="exam grouping: columns source_file, exam_id and optionally "
        "subject_id, age, height, sex (default: one folder per exam)",
    )
    p.add_argument(
        "--config",
        metavar="TOML",
        help="settings: a bundled name (default, lab-example) or a .toml file of your own "
        "(measure parameters, normal limits, rules, criteria; see `ncsproc docs settings`)",
    )
    p.add_argument(
        "--tables",
        choices=("v1", "v2"),
        default=None,
        help="layout of the tables: v2 (default) writes motor amplitudes in mV (_mv columns) "
        "and sensory ones in uV; v1 writes the interchange contract's uV columns exactly "
        "(for registries that depend on them); overrides [pipeline] tables_version",
    )
    p.add_argument(
        "--scheduler",
        default=DEFAULT_SCHEDULER,
        metavar="NAME",
        help="synchronous, threads, processes (default), or the address of a "
        "running dask scheduler (tcp://host:port) or its scheduler file (*.json)",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="threads or processes of a local scheduler (default: all cores)",
    )
    p.add_argument(
        "--no-traces",
        action="store_true",
        help="leave the trace sets out of cohort.h5 (tables only)",
    )
    p.add_argument(
        "--no-parquet", action="store_true", help="no Parquet copies even when pyarrow is installed"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help="exams per task (default: automatic, at most 8); never changes results",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        metavar="N",
        help="resubmissions of a task whose worker died (default 2)",
    )
    p.add_argument("--force", action="store_true", help="recompute every exam, ignoring the cache")
    p.add_argument(
        "--key-file",
        metavar="FILE",
        help="centre secret for keyed pseudonyms of the files' patient identifiers "
        "(default: the environment variable NCSPROC_PSEUDONYM_KEY; never written)",
    )
    p.add_argument(
        "--date-precision",
        choices=["none", "year", "month", "day", "shift"],
        default="year",
        help="how much of the exam date leaves the readers (default: year; shift: every date "
        "of a subject moved by one secret offset from the key, so intervals stay exact)",
    )
    p.add_argument(
        "--overrides",
        metavar="CSV",
        help="marker overrides of a reviewer (trace_id,marker,time_ms,reviewer,reason; "
        "ncsproc docs review): validated first (exit 2 listing every problem), applied "
        "after measuring; only the exams they concern are recomputed",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors and the final summary")
    p.set_defaults(func=cmd_extract)
    return p


def _configure_logging(quiet: bool) -> logging.Handler:
    logger = logging.getLogger("ncsproc.pipeline")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ncsproc extract: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    return handler


def cmd_extract(args: argparse.Namespace) -> int:
    """Run ``ncsproc extract``; return the exit status."""
    from ..review import OverridesError
    from .execute import SchedulerError
    from .extract import extract
    from .inputs import UsageError
    from .progress import ProgressDisplay
    from .settings import ConfigError, bundled_pipeline

    if args.batch_size is not None and args.batch_size < 1:
        print("ncsproc extract: --batch-size must be >= 1", file=sys.stderr)
        return 2
    if args.retries < 0:
        print("ncsproc extract: --retries must be >= 0", file=sys.stderr)
        return 2
    from .._cliutil import compile_note, output_folder
    from ..privacy import PseudonymKeyError, pseudonymizer_from

    args.interrupt_hint = (
        f"rerun the same command to resume (finished exams are cached in {args.out})"
    )
    output_folder(args.out, create=False)
    try:
        config: Any = None if args.config is None else bundled_pipeline(args.config)
        if getattr(args, "tables", None) is not None:
            from .settings import load_settings, with_tables_version

            config = with_tables_version(load_settings(config), int(args.tables[1:]))
    except ConfigError as exc:
        print(f"ncsproc extract: {exc}", file=sys.stderr)
        return 2

    try:
        key = pseudonymizer_from(args.key_file)
    except PseudonymKeyError as exc:
        print(f"ncsproc extract: {exc}", file=sys.stderr)
        return 2
    if key is None and not args.quiet:
        print(
            "ncsproc extract: no pseudonym key (--key-file or NCSPROC_PSEUDONYM_KEY): subject "
            "ids are the manifest's or the exam folders' ids, never derived from the files",
            file=sys.stderr,
        )
    compile_note("ncsproc extract", args.quiet)
    handler = _configure_logging(args.quiet)
    display = None if (args.quiet or args.no_progress) else ProgressDisplay(sys.stderr)
    try:
        result = extract(
            args.paths,
            args.out,
            manifest=args.manifest,
            config=config,
            scheduler=args.scheduler,
            workers=args.workers,
            traces=not args.no_traces,
            parquet=False if args.no_parquet else None,
            batch_size=args.batch_size,
            retries=args.retries,
            force=args.force,
            progress=display,
            pseudonymizer=key,
            date_precision=args.date_precision,
            overrides=args.overrides,
        )
    except (UsageError, ConfigError, SchedulerError, OverridesError) as exc:
        print(f"ncsproc extract: {exc}", file=sys.stderr)
        return 2
    finally:
        if display is not None:
            display.close()
        logging.getLogger("ncsproc.pipeline").removeHandler(handler)
    print(f"ncsproc extract: {result.summary()} -> {args.out}", file=sys.stderr)
    if result.n_errors:
        print(
            f"ncsproc extract: {result.n_errors} file(s) or exam(s) failed; see "
            f"{args.out}/errors.csv",
            file=sys.stderr,
        )
    return result.exit_status


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ncsproc.pipeline extract ...`` (the subcommand without the rest of ncsproc)."""
    from .._cliutil import debug_requested, run_command

    debug, argv = debug_requested(list(sys.argv[1:] if argv is None else argv))
    parser = ArgumentParser(prog="python -m ncsproc.pipeline")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_extract_parser(sub)
    args = parser.parse_args(argv)
    return run_command(args.func, args, "ncsproc extract", debug=debug)
