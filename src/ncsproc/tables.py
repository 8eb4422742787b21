"""Output tables in clinical units (the only place SI values become ms, mV, uV, mm).

Column names carry their units (:mod:`ncsproc.units`). Floats are written with a fixed number
of decimals so that the same inputs give byte-identical files.

Tables layout versions (``formats/tables.md``): inside ncsproc every table is built in layout
1, the columns of the interchange contract (section 4: amplitudes in uV, motor and sensory
alike). What is written is layout :data:`DEFAULT_TABLES_VERSION` = 2 unless the settings ask
for 1: motor amplitudes (CMAP, F-wave series, MEP) in mV in ``_mv`` columns, sensory ones in uV
in ``_uv`` columns (:func:`to_layout`); readers of an output folder turn it back into layout 1
(:func:`from_layout`), with the version written in ``provenance.json``
(:func:`read_tables_version`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .units import CLINICAL, MOTOR_AMPLITUDE_MODALITIES

if TYPE_CHECKING:  # the report imports the table layouts without loading xarray
    import xarray as xr


def _clinical(variable: str, unit: str) -> tuple[str, float, int]:
    return (variable, *CLINICAL[unit])


# contract column -> (source variable, factor from SI, decimals)
RESPONSE_COLUMNS: dict[str, tuple[str, float, int]] = {
    "distance_mm": _clinical("distance", "mm"),
    "onset_ms": _clinical("onset_latency", "ms"),
    "peak_ms": _clinical("peak_latency", "ms"),
    "amplitude_uv": _clinical("amplitude", "uV"),
    "p2p_uv": _clinical("peak_to_peak", "uV"),
    "neg_duration_ms": _clinical("negative_duration", "ms"),
    "total_duration_ms": _clinical("total_duration", "ms"),
    "neg_area_uvms": _clinical("negative_area", "uV ms"),
    "snr_db": _clinical("snr", "dB"),
    "f_latency_ms": _clinical("f_latency", "ms"),
}
DEFAULT_DECIMALS = 3
STUDY_KEY_COLUMNS = ("exam_id", "subject_id", "study", "nerve", "side", "modality")
"""The columns that name a study, first in ``responses`` and ``nerves``."""
RESPONSE_ID_COLUMNS = (
    *STUDY_KEY_COLUMNS,
    "stim_site",
    "record_site",
    "source_file",
    "record",
)
RESPONSE_ORDER = (*RESPONSE_ID_COLUMNS, *RESPONSE_COLUMNS, "status")
CONTRACT_COLUMNS: dict[str, tuple[str, ...]] = {
    "responses": RESPONSE_ORDER,
    "segments": (
        "exam_id",
        "study",
        "nerve",
        "side",
        "distal_site",
        "proximal_site",
        "distance_mm",
        "cv_m_s",
        "amp_drop_pct",
        "area_drop_pct",
        "duration_increase_pct",
    ),
    "nerves": (
        *STUDY_KEY_COLUMNS,
        "dml_ms",
        "distal_amp_uv",
        "distal_duration_ms",
        "cv_m_s",
        "tli",
        "residual_latency_ms",
        "min_cv_m_s",
        "max_cb_pct",
        "max_td_pct",
        "snap_onset_ms",
        "snap_peak_ms",
        "snap_amp_uv",
        "scv_m_s",
        "f_min_ms",
        "f_mean_ms",
        "f_max_ms",
        "f_persistence_pct",
        "f_chronodispersion_ms",
    ),
    "exams": ("exam_id", "subject_id", "pattern", "rules_version", "n_motor_studies"),
}
"""The columns the interchange contract (section 4, layout 1) fixes for each table, in order;
ncsproc's own columns follow them."""
# extension column -> (source variable, factor from SI, decimals); numeric ones only
RESPONSE_EXTENSION_VALUES: dict[str, tuple[str, float, int]] = {
    "baseline_uv": _clinical("baseline_level", "uV"),
    "noise_uv": _clinical("noise_sd", "uV"),
    "artefact_end_ms": _clinical("artefact_end", "ms"),
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
    """Whether a column is a count (written as an integer, empty when missing).

    Counts are named ``n_<what>`` or ``<x>_n_<what>`` (``n_proximal_ok``, ``f_n_waves``; also
    ``original_<count>``). They are floats in the feature tables wherever some rows have none
    (an F-wave count of a sensory study), so the column kind alone does not say they are whole
    numbers.
    """
    return name.startswith("n_") or "_n_" in name


def column_decimals(columns, decimals: dict[str, int] | None = None) -> dict[str, int]:
    """Fixed decimals of the float columns among ``columns``.

    The contract's response columns and the layout-2 mV columns have theirs, then come
    ``decimals`` (e.g. :func:`ncsproc.features.csv_decimals`), counts 0
    (:func:`is_count_column`), ``original_<c>`` as ``c``; any other float column gets
    :data:`DEFAULT_DECIMALS`.
    """
    fixed = {c: spec[2] for c, spec in RESPONSE_COLUMNS.items()}
    fixed.update({c: spec[2] for c, spec in RESPONSE_EXTENSION_VALUES.items()})
    fixed.update(
        {c: CLINICAL["mV"][1] for c in (*SPLIT_BY_MODALITY.values(), *MOTOR_ONLY.values())}
    )
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
    """``(mask, name)`` of the QC flags of a measures ``qc_flags`` variable, in bit order.

    From its CF ``flag_masks``/``flag_meanings`` attributes, else
    :data:`ncsproc.kernels.FLAG_NAMES`.
    """
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


# --------------------------------------------------------------------------------------------
# Tables layout versions
# --------------------------------------------------------------------------------------------

TABLES_VERSIONS = (1, 2)
"""Layouts of the written tables: 1 = the interchange contract's columns (amplitudes in uV),
2 = motor amplitudes in mV (``formats/tables.md``)."""
DEFAULT_TABLES_VERSION = 2
"""Layout written unless the settings (``[pipeline] tables_version``) or ``--tables`` say 1."""
TABLES_VERSION_KEY = "tables_version"
"""Key of the layout version in ``provenance.json`` (absent: 1, folders written before it)."""

SPLIT_BY_MODALITY: dict[str, str] = {
    "amplitude_uv": "amplitude_mv",
    "p2p_uv": "p2p_mv",
    "neg_area_uvms": "neg_area_mvms",
    "amp_lln_uv": "amp_lln_mv",
}
"""Layout 2: a layout-1 uV column of a table with a ``modality`` column -> its mV column.
Rows of a :data:`ncsproc.units.MOTOR_AMPLITUDE_MODALITIES` modality have their value in the mV
column (the uV one empty); sensory rows keep theirs in the uV column."""
MOTOR_ONLY: dict[str, str] = {
    "distal_amp_uv": "distal_amp_mv",
    "distal_p2p_uv": "distal_p2p_mv",
    "distal_area_uvms": "distal_area_mvms",
}
"""Layout 2: a layout-1 column that only motor rows fill -> its mV column (replaced)."""
RENAMED: dict[str, str] = {"total_duration_ms": "efns_duration_ms"}
"""Layout 2: a layout-1 column written under a name that says what it holds (same values).
The contract's ``total_duration_ms`` is the EFNS/PNS duration (onset to the return to baseline
of the last negative lobe deeper than 10 % of the amplitude), not onset to the final return of
the whole response (after its positive phase)."""
LONG_VARIABLES = ("variable", "value", "unit", "normal_limit")
"""Columns of a long table (``trajectories``) whose ``variable`` rows are renamed and scaled."""
REVIEW_VALUES = ("trace_id", "column", "units", "original", "reviewed")
"""Columns of ``reviews.csv`` whose rows of a motor trace's amplitude are renamed and scaled."""
_REVIEW_UNITS = {"uV": "mV", "uVms": "mVms"}
_UV_PER_MV = CLINICAL["uV"][0] / CLINICAL["mV"][0]  # 1000.0


def _check_version(version: int) -> int:
    if version not in TABLES_VERSIONS:
        raise ValueError(f"tables layout version {version!r}, expected one of {TABLES_VERSIONS}")
    return int(version)


def _renamed(column: str, mapping: Mapping[str, str]) -> str | None:
    base = column[len(ORIGINAL_PREFIX) :] if column.startswith(ORIGINAL_PREFIX) else column
    if base not in mapping:
        return None
    return column[: len(column) - len(base)] + mapping[base]


def layout_columns(columns, version: int, *, has_modality: bool | None = None) -> list[str]:
    """The written column names, in order, of a table built with the layout-1 ``columns``.

    Parameters
    ----------
    columns : iterable of str
        Layout-1 column names (as :func:`responses_table`, :mod:`ncsproc.features` build them).
    version : int
        Layout to write (:data:`TABLES_VERSIONS`).
    has_modality : bool, optional
        Whether the table has a ``modality`` column (default: ``"modality" in columns``); only
        such tables have their :data:`SPLIT_BY_MODALITY` columns split.
    """
    columns = [str(c) for c in columns]
    if _check_version(version) == 1:
        return columns
    split = "modality" in columns if has_modality is None else has_modality
    out: list[str] = []
    for c in columns:
        motor = _renamed(c, MOTOR_ONLY)
        if motor is not None:
            out.append(motor)
            continue
        renamed = _renamed(c, RENAMED)
        if renamed is not None:
            out.append(renamed)
            continue
        mv = _renamed(c, SPLIT_BY_MODALITY) if split else None
        if mv is not None:
            out.append(mv)
        out.append(c)
    return out


def to_layout(
    cols: Mapping[str, np.ndarray], version: int, *, motor_traces=None
) -> dict[str, np.ndarray]:
    """Columns of a layout-1 table (``{name: values}``, in order) as layout ``version`` writes them.

    Layout 2 (``formats/tables.md``): :data:`MOTOR_ONLY` columns become mV columns (divided by
    1000); :data:`SPLIT_BY_MODALITY` columns of a table with a ``modality`` column are split
    into the mV column (rows of a motor modality) and the uV column (the other rows); in a long
    table (:data:`LONG_VARIABLES`: ``trajectories``) the rows of such a variable are renamed,
    their ``value`` and ``normal_limit`` divided by 1000 and their ``unit`` made ``mV``; in
    ``reviews`` (:data:`REVIEW_VALUES`) the rows of a trace of ``motor_traces`` (a set of
    trace ids) likewise (``column``, ``units``, ``original``, ``reviewed``). Anything else is
    unchanged.
    """
    if _check_version(version) == 1:
        return dict(cols)
    if all(c in cols for c in LONG_VARIABLES):
        return _long_to_v2(cols)
    if all(c in cols for c in REVIEW_VALUES):
        return _reviews_to_v2(cols, motor_traces or set())
    motor = None
    if "modality" in cols:
        modality = np.asarray(cols["modality"], dtype=object)
        motor = np.isin(modality, MOTOR_AMPLITUDE_MODALITIES)
    out: dict[str, np.ndarray] = {}
    for c, values in cols.items():
        name = _renamed(c, MOTOR_ONLY)
        if name is not None:
            out[name] = np.asarray(values, dtype=np.float64) / _UV_PER_MV
            continue
        name = _renamed(c, RENAMED)
        if name is not None:
            out[name] = values
            continue
        name = _renamed(c, SPLIT_BY_MODALITY) if motor is not None else None
        if name is not None and motor is not None:
            v = np.asarray(values, dtype=np.float64)
            out[name] = np.where(motor, v / _UV_PER_MV, np.nan)
            out[c] = np.where(motor, np.nan, v)
            continue
        out[c] = values
    return out


def layout_table(table: pd.DataFrame, version: int) -> pd.DataFrame:
    """A layout-1 DataFrame as layout ``version`` writes it (:func:`to_layout` on its columns)."""
    if _check_version(version) == 1:
        return table
    cols = to_layout({str(c): table[c].to_numpy() for c in table.columns}, version)
    return pd.DataFrame(cols, columns=list(cols), index=table.index)


def _reviews_to_v2(cols: Mapping[str, np.ndarray], motor_traces) -> dict[str, np.ndarray]:
    out = dict(cols)
    column = np.asarray(cols["column"], dtype=object)
    out["column"] = column = np.array([RENAMED.get(c, c) for c in column], dtype=object)
    trace = np.asarray(cols["trace_id"], dtype=object)
    rows = np.array(
        [c in SPLIT_BY_MODALITY and t in motor_traces for c, t in zip(column, trace, strict=True)],
        dtype=bool,
    )
    if not rows.any():
        return out
    out["column"] = np.where(rows, [SPLIT_BY_MODALITY.get(c, c) for c in column], column)
    units = np.asarray(cols["units"], dtype=object)
    out["units"] = np.where(rows, [_REVIEW_UNITS.get(u, u) for u in units], units)
    for c in ("original", "reviewed"):
        v = np.asarray(cols[c], dtype=np.float64)
        out[c] = np.where(rows, v / _UV_PER_MV, v)
    return out


def _long_to_v2(cols: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = dict(cols)
    names = {**MOTOR_ONLY, **SPLIT_BY_MODALITY}
    variable = np.asarray(cols["variable"], dtype=object)
    modality = np.asarray(cols.get("modality", np.full(len(variable), "motor")), dtype=object)
    motor = np.isin(modality, MOTOR_AMPLITUDE_MODALITIES)
    scale = np.array([motor[i] and v in names for i, v in enumerate(variable)], dtype=bool)
    if not scale.any():
        return out
    out["variable"] = np.where(scale, [names.get(v, v) for v in variable], variable)
    out["unit"] = np.where(scale, "mV", np.asarray(cols["unit"], dtype=object))
    for c in ("value", "normal_limit"):
        v = np.asarray(cols[c], dtype=np.float64)
        out[c] = np.where(scale, v / _UV_PER_MV, v)
    return out


def _uv_from_mv(values: pd.Series) -> pd.Series:
    """Values in mV as values in uV.

    Numbers are multiplied by 1000; text cells (the registry reads every cell as the text
    written) exactly, in decimal arithmetic, ``""`` staying empty.
    """
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(np.float64) * _UV_PER_MV
    factor = Decimal(int(_UV_PER_MV))

    def one(text):
        if text is None or (isinstance(text, float) and np.isnan(text)) or str(text) == "":
            return text
        return str(Decimal(str(text)) * factor)

    return values.map(one)


def _empty(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return values.isna()
    return values.isna() | (values.astype(str) == "")


def from_layout(table: pd.DataFrame, version: int) -> pd.DataFrame:
    """A table read from an output folder written in layout ``version``, in layout 1.

    The inverse of :func:`to_layout` (mV values times 1000 back in the uV columns; text cells
    converted exactly), so that everything reading a results folder (the report, the
    registry, the follow-up) works on one layout whatever the folder holds.
    """
    if _check_version(version) == 1:
        return table
    out = table.copy()
    back = {mv: uv for uv, mv in (*MOTOR_ONLY.items(), *SPLIT_BY_MODALITY.items())}
    names_back = {new: old for old, new in RENAMED.items()}
    if all(c in out.columns for c in REVIEW_VALUES):
        out["column"] = out["column"].map(lambda c: names_back.get(c, c))
        rows = out["column"].isin(list(back))
        if rows.any():
            units = {mv: uv for uv, mv in _REVIEW_UNITS.items()}
            out.loc[rows, "column"] = out.loc[rows, "column"].map(back)
            out.loc[rows, "units"] = out.loc[rows, "units"].map(lambda u: units.get(u, u))
            for c in ("original", "reviewed"):
                col = out[c].copy()
                col[rows] = _uv_from_mv(out.loc[rows, c])
                out[c] = col
        return out
    if all(c in out.columns for c in LONG_VARIABLES):
        rows = out["variable"].isin(list(back))
        if rows.any():
            out.loc[rows, "variable"] = out.loc[rows, "variable"].map(back)
            out.loc[rows, "unit"] = "uV"
            for c in ("value", "normal_limit"):
                col = out[c].copy()
                col[rows] = _uv_from_mv(out.loc[rows, c])
                out[c] = col
        return out
    renames = {}
    for c in list(out.columns):
        plain = _renamed(c, names_back)
        if plain is not None:  # folders of layout 2 written before the rename keep the old name
            renames[c] = plain
            continue
        target = _renamed(c, back)
        if target is None:
            continue
        v = _uv_from_mv(out[c])
        if target in out.columns:  # split: the motor rows back into the uV column
            out[target] = out[target].where(_empty(v), v)
            out = out.drop(columns=c)
        else:
            out[c] = v
            renames[c] = target
    return out.rename(columns=renames)


def read_tables_version(folder: str | os.PathLike) -> int:
    """Tables layout of an output folder: ``tables_version`` of its ``provenance.json``.

    1 when the file or the key is absent (folders written before layout versions existed).
    """
    path = Path(folder) / "provenance.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return 1
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not readable JSON ({exc})") from None
    version = doc.get(TABLES_VERSION_KEY, 1) if isinstance(doc, dict) else 1
    if version not in TABLES_VERSIONS:
        raise ValueError(
            f"{path}: {TABLES_VERSION_KEY} {version!r}; this ncsproc reads {TABLES_VERSIONS} "
            "(a newer ncsproc wrote the folder: update ncsproc)"
        )
    return int(version)
