"""ncsproc: nerve-conduction traces to validated measurements and registry tables.

The public entry points are loaded lazily so that ``import ncsproc`` stays light (no numba,
dask or h5py until a function that needs them is used).
"""

from __future__ import annotations

import importlib

from ._version import __version__

_LAZY = {
    "make_trace_set": "ncsproc.schema",
    "validate_trace_set": "ncsproc.schema",
    "concat_trace_sets": "ncsproc.schema",
    "select": "ncsproc.schema",
    "time_axis": "ncsproc.schema",
    "trace_values": "ncsproc.schema",
    "SchemaError": "ncsproc.errors",
    "FormatError": "ncsproc.errors",
    "UnsupportedFormatError": "ncsproc.errors",
    "QCWarning": "ncsproc.errors",
    "read": "ncsproc.formats",
    "read_raw": "ncsproc.formats",
    "RawTraces": "ncsproc.schema",
    "list_formats": "ncsproc.formats",
    "write": "ncsproc.storage",
    "write_edf": "ncsproc.formats.edf",
    "read_native": "ncsproc.storage",
    "open_trace_set": "ncsproc.storage",
    "measure": "ncsproc.measures",
    "read_qtrac": "ncsproc.formats.qtrac",
    "cmap_scan": "ncsproc.features.excitability",
    "write_dicom": "ncsproc.formats.dicom",
    "plot": "ncsproc.report.plot",
    "plot_file": "ncsproc.report.plot",
}
_SUBMODULES = {
    "errors",
    "features",
    "formats",
    "kernels",
    "measures",
    "pipeline",
    "privacy",
    "registry",
    "schema",
    "simulate",
    "storage",
    "tables",
}

__all__ = ["__version__", *sorted(_LAZY), "simulate"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"ncsproc.{name}")
    raise AttributeError(f"module 'ncsproc' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
