"""Output tables in clinical units (the only place SI values become ms, uV, mm).

Column names carry their units, as the interchange contract (section 4) fixes them. Floats are
written with a fixed number of decimals so that the same inputs give byte-identical files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

# contract column -> (source variable, factor from SI, decimals)
RESPONSE_COLUMNS: dict[str, tuple[str, float, int]] = {
    "distance_mm": ("distance", 1e3, 1),
    "onset_ms": ("onset_latency", 1e3, 3),
    "peak_ms": ("peak_latency", 1e3, 3),
    "amplitude_uv": ("amplitude", 1e6, 2),
    "p2p_uv": ("peak_to_peak", 1e6, 2),
    "neg_duration_ms": ("negative_duration", 1e3, 3),
    "total_duration_ms": ("total_duration", 1e3, 3),
    "neg_area_uvms": ("negative_area", 1e9, 2),
    "snr_db": ("snr", 1.0, 1),
    "f_latency_ms": ("f_latency", 1e3, 3),
}
DEFAULT_DECIMALS = 3
RESPONSE_ID_COLUMNS = (
    "exam_id",
    "subject_id",
    "study",
    "nerve",
    "side",
    "modality",
    "stim_site",
    "record_site",
    "source_file",
    "record",
)
RESPONSE_ORDER = (*RESPONSE_ID_COLUMNS, *RESPONSE_COLUMNS, "status")
REVIEWED_COLUMN = "reviewed"
"""Column appended to ``responses.csv`` (and ``sites.csv``) for reviewed measures."""
ORIGINAL_PREFIX = "original_"
"""Prefix of a column holding the machine value of another column (``original_dml_ms``):
written with that column's decimals."""


def is_count_column(name: str) -> bool:
    """A count (written as an integer, empty when missing): ``n_<what>`` or ``<x>_n_<what>``
    (``n_proximal_ok``, ``f_n_waves``; also ``original_<count>``).

    Counts are floats in the feature tables wherever some rows have none (an F-wave count of
    a sensory study), so the column kind alone does not say they are whole numbers."""
    return name.startswith("n_") or "_n_" in name


def column_decimals(columns, decimals: dict[str, int] | None = None) -> dict[str, int]:
    """Fixed decimals of the float columns among ``columns``: the contract's response columns,
    then ``decimals`` (e.g. :func:`ncsproc.features.csv_decimals`), counts 0
    (:func:`is_count_column`), ``original_<c>`` as ``c``; any other float column gets
    :data:`DEFAULT_DECIMALS`."""
    fixed = {c: spec[2] for c, spec in RESPONSE_COLUMNS.items()}
    fixed.update(decimals or {})
    out = {}
    for c in columns:
        base = c[len(ORIGINAL_PREFIX):] if c.startswith(ORIGINAL_PREFIX) else c
        if c in fixed:
            out[c] = fixed[c]
        elif base in fixed:
            out[c] = fixed[base]
        elif is_count_column(base):
            out[c] = 0
        else:
            out[c] = DEFAULT_DECIMALS
    return out


def responses_table(measures: xr.Dataset) -> pd.DataFrame:
    """Per-trace measures as the contract's ``responses.csv`` table, in clinical units.

    Parameters
    ----------
    measures : xarray.Dataset
        Output of :func:`ncsproc.measure` (per-trace coordinates kept).

    Returns
    -------
    pandas.DataFrame
        One row per trace, sorted by exam, study, source file and record; values rounded to
        the column's fixed decimals, NaN where a value does not exist. When the measures were
        reviewed (:mod:`ncsproc.review`: a ``reviewed`` variable), a ``reviewed`` column is
        appended after the contract's columns: the corrected markers of the trace
        (``;``-joined, e.g. ``onset;peak``), empty for a trace nobody corrected.
    """
    cols: dict[str, object] = {}
    for name in RESPONSE_ID_COLUMNS:
        cols[name] = np.asarray(measures[name].values)
    for column, (var, factor, decimals) in RESPONSE_COLUMNS.items():
        cols[column] = np.round(np.asarray(measures[var].values, dtype=np.float64) * factor, decimals)
    cols["status"] = np.asarray(measures["status"].values).astype(str)
    order = list(RESPONSE_ORDER)
    if REVIEWED_COLUMN in measures.variables:
        marks = np.asarray(measures[REVIEWED_COLUMN].values).astype(str)
        cols[REVIEWED_COLUMN] = marks.astype(object)
        order.append(REVIEWED_COLUMN)
    table = pd.DataFrame(cols, columns=order)
    table = table.sort_values(["exam_id", "study", "source_file", "record"], kind="stable")
    return table.reset_index(drop=True)


def write_csv(
    table: pd.DataFrame, path: str | os.PathLike, decimals: dict[str, int] | None = None
) -> Path:
    """Write a table atomically with fixed float formatting and empty cells for missing values.

    Parameters
    ----------
    table : pandas.DataFrame
        The table; its row order is kept.
    path : path-like
        Destination (written to a temporary file, then renamed).
    decimals : dict, optional
        Decimals per float column; the contract's response columns have theirs already,
        counts (:func:`is_count_column`) are written as integers, ``original_<c>`` as ``c``,
        and any other float column gets :data:`DEFAULT_DECIMALS` (:func:`column_decimals`).

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fixed = column_decimals([str(c) for c in table.columns], decimals)
    out = table.copy()
    for column in out.columns:
        if out[column].dtype.kind != "f":
            continue
        d = fixed.get(str(column), DEFAULT_DECIMALS)
        out[column] = [("" if not np.isfinite(v) else f"{v:.{d}f}") for v in out[column]]
    try:
        out.to_csv(tmp, index=False, lineterminator="\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
