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
# extension column -> (source variable, factor from SI, decimals); numeric ones only
RESPONSE_EXTENSION_VALUES: dict[str, tuple[str, float, int]] = {
    "baseline_uv": ("baseline_level", 1e6, 2),
    "noise_uv": ("noise_sd", 1e6, 2),
    "artefact_end_ms": ("artefact_end", 1e3, 3),
}
RESPONSE_EXTENSION_COLUMNS = ("trace_id", "qc_flags", *RESPONSE_EXTENSION_VALUES)
"""Columns ``responses_table(..., extended=True)`` appends after the contract's
(:data:`RESPONSE_ORDER`) and before ``reviewed``: the trace id, the QC flag names
(``;``-joined in bit order, empty for none) and the measurement diagnostics."""
QC_FLAGS_SEPARATOR = ";"
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
    fixed.update({c: spec[2] for c, spec in RESPONSE_EXTENSION_VALUES.items()})
    fixed.update(decimals or {})
    out = {}
    for c in columns:
        base = c[len(ORIGINAL_PREFIX) :] if c.startswith(ORIGINAL_PREFIX) else c
        if c in fixed:
            out[c] = fixed[c]
        elif base in fixed:
            out[c] = fixed[base]
        elif is_count_column(base):
            out[c] = 0
        else:
            out[c] = DEFAULT_DECIMALS
    return out


def qc_flag_names(qc_flags: xr.DataArray) -> list[tuple[int, str]]:
    """``(mask, name)`` of the QC flags of a measures ``qc_flags`` variable, in bit order:
    from its CF ``flag_masks``/``flag_meanings`` attributes, else
    :data:`ncsproc.kernels.FLAG_NAMES`."""
    attrs = qc_flags.attrs
    if "flag_masks" in attrs and "flag_meanings" in attrs:
        masks = [int(m) for m in np.atleast_1d(attrs["flag_masks"])]
        names = str(attrs["flag_meanings"]).split()
    else:
        from .kernels import FLAG_NAMES

        masks = [int(m) for m in FLAG_NAMES]
        names = [FLAG_NAMES[m][0] for m in FLAG_NAMES]
    return sorted(zip(masks, names, strict=True))


def qc_flags_text(qc_flags: xr.DataArray) -> np.ndarray:
    """Per trace, the names of the QC flags set (``;``-joined in bit order, ``""`` for none)."""
    bits = np.asarray(qc_flags.values).astype(np.int64)
    flags = qc_flag_names(qc_flags)
    cache: dict[int, str] = {}
    out = np.empty(bits.shape, dtype=object)
    for i, b in enumerate(bits.tolist()):
        text = cache.get(b)
        if text is None:
            text = cache[b] = QC_FLAGS_SEPARATOR.join(n for m, n in flags if b & m)
        out[i] = text
    return out


def responses_table(measures: xr.Dataset, *, extended: bool = False) -> pd.DataFrame:
    """Per-trace measures as the contract's ``responses.csv`` table, in clinical units.

    Parameters
    ----------
    measures : xarray.Dataset
        Output of :func:`ncsproc.measure` (per-trace coordinates kept).
    extended : bool
        Append :data:`RESPONSE_EXTENSION_COLUMNS` after the contract's columns (what
        ``ncsproc extract`` writes): ``trace_id`` (the ``trace`` coordinate), ``qc_flags``
        (the names of the flags set, ``;``-joined in bit order, empty for none),
        ``baseline_uv``, ``noise_uv`` (``baseline_level``, ``noise_sd``) and
        ``artefact_end_ms``; these diagnostics also exist for traces without values.

    Returns
    -------
    pandas.DataFrame
        One row per trace, sorted by exam, study, source file and record; values rounded to
        the column's fixed decimals, NaN where a value does not exist. When the measures were
        reviewed (:mod:`ncsproc.review`: a ``reviewed`` variable), a ``reviewed`` column is
        appended last (after the contract's and the extension columns): the corrected markers
        of the trace (``;``-joined, e.g. ``onset;peak``), empty for a trace nobody corrected.
    """
    cols: dict[str, object] = {}
    for name in RESPONSE_ID_COLUMNS:
        cols[name] = np.asarray(measures[name].values)
    for column, (var, factor, decimals) in RESPONSE_COLUMNS.items():
        cols[column] = np.round(
            np.asarray(measures[var].values, dtype=np.float64) * factor, decimals
        )
    cols["status"] = np.asarray(measures["status"].values).astype(str)
    order = list(RESPONSE_ORDER)
    if extended:
        cols["trace_id"] = np.asarray(measures["trace"].values).astype(str).astype(object)
        cols["qc_flags"] = qc_flags_text(measures["qc_flags"])
        for column, (var, factor, decimals) in RESPONSE_EXTENSION_VALUES.items():
            cols[column] = np.round(
                np.asarray(measures[var].values, dtype=np.float64) * factor, decimals
            )
        order.extend(RESPONSE_EXTENSION_COLUMNS)
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
