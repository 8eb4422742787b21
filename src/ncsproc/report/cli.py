"""The ``ncsproc report`` and ``ncsproc plot`` subcommands (argument parsing only; the work is
in :mod:`ncsproc.report.build` and :mod:`ncsproc.report.plot`, imported when a command runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._cliutil import HelpFormatter

__all__ = ["add_report_parser", "add_plot_parser"]


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _cmd_report(args: argparse.Namespace) -> int:
    from .._cliutil import output_folder
    from .build import build_report
    from .data import ReportError

    output_folder(args.out, create=False)
    try:
        result = build_report(args.dir, args.out, remeasure=args.remeasure, title=args.title)
    except ReportError as exc:
        _say(f"ncsproc report: {exc}")
        return 2
    for note in result.notes:
        _say(f"ncsproc report: note: {note}")
    print(f"ncsproc report: {result.summary()} -> {result.index}")
    return 0


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _cmd_plot(args: argparse.Namespace) -> int:
    from ..errors import NcsprocError
    from .plot import plot_file

    path = Path(args.file)
    if not path.is_file():
        _say(f"ncsproc plot: {path}: no such file")
        return 2
    out = Path(args.out) if args.out else Path(f"{path.stem}.png")
    if out.is_dir():
        _say(f"ncsproc plot: --out {out}: is a folder; give an image file name (.png, .svg, .pdf)")
        return 2
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        _say(
            f"ncsproc plot: {out}: unknown image format {out.suffix!r}; give --out with a "
            ".png, .svg or .pdf name"
        )
        return 2
    try:
        result = plot_file(path, out, measure=args.measure, dpi=args.dpi)
    except (NcsprocError, OSError, ValueError) as exc:
        from .._cliutil import one_line

        _say(f"ncsproc plot: {path.name}: {type(exc).__name__}: {one_line(exc)}")
        return 1
    n_studies, n_markers = len(result.gains), len(result.markers)
    print(
        f"ncsproc plot: {_count(n_studies, 'study', 'studies')}, "
        f"{_count(result.n_traces, 'trace')}, {_count(n_markers, 'marker')} -> {out}"
    )
    return 0


def add_report_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``ncsproc report DIR --out REPORT``."""
    p = subparsers.add_parser(
        "report",
        help="static HTML review report of an extract output folder",
        description="Build a static, self-contained HTML report (REPORT/index.html and one page "
        "per exam in REPORT/exams/) from the output folder of `ncsproc extract`: traces with "
        "their markers drawn the clinical way, the tables with values outside the normal "
        "limits highlighted, criteria, pattern and its evidence, QC flags, failures. No "
        "network needed; open index.html in a browser. See `ncsproc docs report`.",
        epilog="examples:\n  ncsproc extract data_samples/simulated --out results\n"
        "  ncsproc report results --out report   # then open report/index.html\n"
        "  ncsproc report results --out report --title 'Cohort A, March review'\n",
        formatter_class=HelpFormatter,
    )
    p.add_argument("dir", metavar="DIR", help="output folder of `ncsproc extract`")
    p.add_argument(
        "--out",
        required=True,
        metavar="REPORT",
        help="report folder (new, empty, or an earlier report, which is rewritten)",
    )
    p.add_argument("--title", default=None, help="title of the index page")
    p.add_argument(
        "--no-remeasure",
        dest="remeasure",
        action="store_false",
        help="results written before responses.csv had qc_flags/baseline_uv: do "
        "not re-measure the stored traces (then no QC flags and no baselines are "
        "shown); newer results need no re-measurement",
    )
    p.set_defaults(func=_cmd_report)
    return p


def add_plot_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``ncsproc plot FILE [--out IMAGE] [--no-measure]``."""
    p = subparsers.add_parser(
        "plot",
        help="draw one file's traces with their markers (PNG/SVG/PDF)",
        description="Read FILE (any supported format), measure its traces and draw them the "
        "clinical way (negative up, ms from the stimulus, gain per division, stacked distal to "
        "proximal) with the onset (O), negative peak (P), end (E) and F-wave onset (F) markers. "
        "A file that does not say its modality is drawn without markers. In Python: "
        "ncsproc.plot(traces) for a trace set in memory.",
        epilog="examples:\n  ncsproc plot data_samples/simulated/EX0001/L_median_motor.edf\n"
        "  ncsproc plot exam.h5 --out exam.svg\n"
        "  ncsproc plot data_samples/real/cfs/test_file.cfs --no-measure --out cfs.png\n",
        formatter_class=HelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="a trace file")
    p.add_argument(
        "--out",
        default=None,
        metavar="IMAGE",
        help="image to write, format by extension: .png (default FILE-stem.png in "
        "the current folder), .svg or .pdf",
    )
    p.add_argument(
        "--measure",
        dest="measure",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure and draw the markers (default; --no-measure: traces only)",
    )
    p.add_argument("--dpi", type=int, default=150, help="resolution of a PNG (default 150)")
    p.set_defaults(func=_cmd_plot)
    return p
