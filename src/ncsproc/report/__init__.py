"""The review report (``ncsproc report``) and quick trace plots (``ncsproc plot``).

* :func:`build_report` - a static, self-contained HTML report of an ``ncsproc extract``
  output folder: an index of the exams and one page per exam with its traces drawn the
  clinical way and their markers, the tables with values outside the normal limits
  highlighted, the criteria and the pattern with their evidence;
* :func:`plot_file` - one file's traces with their markers to PNG or SVG (matplotlib).

Conventions (drawing, markers, the ``overrides.csv`` line): ``formats/report.md``. Importing
this package is light; matplotlib is imported by :func:`plot_file` only.
"""

from __future__ import annotations

import importlib

__all__ = [
    "build_report",
    "plot_file",
    "exam_page_name",
    "ReportResult",
    "PlotResult",
    "ReportError",
]

_LAZY = {
    "build_report": "ncsproc.report.build",
    "exam_page_name": "ncsproc.report.build",
    "ReportResult": "ncsproc.report.build",
    "ReportError": "ncsproc.report.data",
    "plot_file": "ncsproc.report.plot",
    "PlotResult": "ncsproc.report.plot",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ncsproc.report' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
