"""The tables of a review: ``reviews.csv`` and the machine values (``original_<column>``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .apply import Review
from .overrides import MEASURED

# variable -> (responses.csv column, units, factor from SI, decimals)
_CLINICAL = {
    "onset_latency": ("onset_ms", "ms", 1e3, 3),
    "peak_latency": ("peak_ms", "ms", 1e3, 3),
    "amplitude": ("amplitude_uv", "uV", 1e6, 2),
    "peak_to_peak": ("p2p_uv", "uV", 1e6, 2),
    "negative_duration": ("neg_duration_ms", "ms", 1e3, 3),
    "total_duration": ("total_duration_ms", "ms", 1e3, 3),
    "negative_area": ("neg_area_uvms", "uVms", 1e9, 2),
    "snr": ("snr_db", "dB", 1.0, 1),
    "f_latency": ("f_latency_ms", "ms", 1e3, 3),
    "status": ("status", "", 1.0, 0),
}

REVIEWS_COLUMNS = (
    "trace_id",
    "exam_id",
    "marker",
    "variable",
    "units",
    "original",
    "reviewed",
    "reviewer",
    "reason",
    "overrides_sha256",
    "column",
    "original_status",
    "reviewed_status",
    "line",
    "reviewed_at",
)
"""Columns of ``reviews.csv``: one row per value a review recomputed."""
REVIEWS_KINDS = {c: "s" for c in REVIEWS_COLUMNS} | {"original": "f", "reviewed": "f"}
"""Column kinds of ``reviews.csv`` (``f`` float, ``s`` text), fixed whatever the rows."""


# ----------------------------------------------------------------------------------------------
# the reviews table
# ----------------------------------------------------------------------------------------------
def empty_reviews_table() -> pd.DataFrame:
    """``reviews.csv`` without rows (columns and kinds of :data:`REVIEWS_COLUMNS`)."""
    return pd.DataFrame(
        {
            c: pd.Series([], dtype=np.float64 if REVIEWS_KINDS[c] == "f" else object)
            for c in REVIEWS_COLUMNS
        }
    )


def reviews_table(review: Review, overrides_sha256: str | None = None) -> pd.DataFrame:
    """One row per value a review recomputed, in clinical units (``reviews.csv``).

    Parameters
    ----------
    review : Review
        From :func:`review_measures`.
    overrides_sha256 : str, optional
        Written in every row (default: the overrides file's SHA-256).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`REVIEWS_COLUMNS`: ``original`` and ``reviewed`` in the units of the
        matching ``responses.csv`` column (``column``; ms, uV, uVms, dB), rounded to its
        decimals, NaN where there is no value; a status change is a row of variable ``status``
        (the statuses in ``original_status``/``reviewed_status``). Sorted by exam, trace, the
        variables' order in ``responses.csv``.
    """
    sha = review.overrides.sha256 if overrides_sha256 is None else overrides_sha256
    order = {v: k for k, v in enumerate((*MEASURED, "status"))}
    rows = []
    for c in sorted(
        review.changes, key=lambda c: (c["exam_id"], c["trace_id"], order[c["variable"]])
    ):
        column, units, factor, decimals = _CLINICAL[c["variable"]]
        rows.append(
            {
                **c,
                "units": units,
                "original": float(np.round(c["original"] * factor, decimals)),
                "reviewed": float(np.round(c["reviewed"] * factor, decimals)),
                "overrides_sha256": sha,
                "column": column,
            }
        )
    if not rows:
        return empty_reviews_table()
    table = pd.DataFrame(rows)
    for c in REVIEWS_COLUMNS:
        if REVIEWS_KINDS[c] == "f":
            table[c] = table[c].astype(np.float64)
    return table[list(REVIEWS_COLUMNS)].reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# the machine values beside the reviewed features, criteria and patterns
# ----------------------------------------------------------------------------------------------
ORIGINAL_PREFIX = "original_"
"""Prefix of the columns that hold the machine value of a reviewed feature (``original_dml_ms``)."""
CHANGED_COLUMN = "reviewed_columns"
"""Column before the ``original_*`` ones: the columns whose value the review changed in the row
(``;``-joined, in the table's order). Their ``original_<column>`` holds the machine value, so an
empty original there means the machine had no value (not "unchanged")."""
ORIGINAL_KEYS = {
    "segments": ("exam_id", "study", "segment_index"),
    "nerves": ("exam_id", "study"),
    "exams": ("exam_id",),
    "criteria": ("criteria_set", "criterion", "exam_id", "study"),
}
"""The feature tables that get ``original_*`` columns, and the columns identifying a row."""
_NOT_REVIEWABLE = {
    # what the study is and how it was recorded, which normal limits were used: no marker
    # changes them
    "nerves": frozenset(
        (
            "exam_id",
            "subject_id",
            "study",
            "nerve",
            "side",
            "modality",
            "record_site",
            "n_traces",
            "n_sites",
            "sites",
            "site_order",
            "distal_site",
            "distal_distance_mm",
            "f_study",
            "highpass_hz",
            "lowpass_hz",
            "temperature_c",
            "age_years",
            "height_cm",
            "limits_version",
            "limits_sha256",
            "limits_status",
            "limits_missing",
            "reviewed_traces",
        )
    ),
    "segments": frozenset(
        (
            "exam_id",
            "study",
            "nerve",
            "side",
            "distal_site",
            "proximal_site",
            "distance_mm",
            "subject_id",
            "segment_index",
        )
    ),
}
_LIMIT_VALUE = ("_uln_", "_lln_")  # dml_uln_ms, amp_lln_uv: the limit used, not a feature


def is_original_column(name: str) -> bool:
    """One of the columns :func:`original_tables` adds (``reviewed_columns``, ``original_*``)."""
    return name == CHANGED_COLUMN or name.startswith(ORIGINAL_PREFIX)


def original_columns(table: str, columns) -> list[tuple[str, str]]:
    """The ``(original_<column>, column)`` pairs a feature table gets with marker overrides.

    ``nerves`` and ``segments``: every column a marker can change (features, comparisons with
    the normal limits, criteria met, statuses, the traces a segment uses), not the study's
    identity and recording (ids, sites, distances, filters, temperature, age, height, F-wave
    study), the normal limits used (``*_uln_*``, ``*_lln_*``, ``limits_*``: a limit only
    empties or fills with its feature) nor the criteria's explanations (``*_not_evaluated``:
    ``criteria.csv`` keeps each criterion's original state). ``exams``: ``pattern`` and the
    level of every criteria set. ``criteria``: ``value`` and ``state``. In the table's order.
    """
    cols = [str(c) for c in columns if not is_original_column(str(c))]
    if table == "criteria":
        chosen = [c for c in cols if c in ("value", "state")]
    elif table == "exams":
        have = set(cols)
        sets = [c for c in cols if f"{c}_status" in have and f"{c}_version" in have]
        chosen = [c for c in ("pattern", *sets) if c in have]
    elif table in _NOT_REVIEWABLE:
        fixed = _NOT_REVIEWABLE[table]
        chosen = [
            c
            for c in cols
            if c not in fixed
            and c != "reviewed"
            and not c.endswith("_not_evaluated")
            and not any(s in c for s in _LIMIT_VALUE)
        ]
    else:
        return []
    return [(ORIGINAL_PREFIX + c, c) for c in chosen]


def _cell(v) -> str:
    """A value as text, "" for a missing one (how a text cell of the tables shows it)."""
    if v is None or v is pd.NA:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "" if math.isnan(v) else repr(float(v))
    return str(v)


def _number_text(values: np.ndarray, decimals: int) -> list[str]:
    return [f"{v:.{decimals}f}" if math.isfinite(v) else "" for v in values.tolist()]


def original_tables(reviewed: dict, machine: dict | None) -> dict:
    """The reviewed feature tables with the machine values beside them.

    Parameters
    ----------
    reviewed : dict of pandas.DataFrame
        :func:`ncsproc.features.tables` of the reviewed measures (``segments``, ``nerves``,
        ``exams``, ``criteria``; other tables are passed through).
    machine : dict of pandas.DataFrame or None
        The same tables of the measures before the review (they may cover only the reviewed
        exams); None: nothing was reviewed.

    Returns
    -------
    dict of pandas.DataFrame
        The tables of :data:`ORIGINAL_KEYS` with :data:`CHANGED_COLUMN` and the columns of
        :func:`original_columns` appended: ``reviewed_columns`` names the columns whose value
        differs from the machine value as the CSV writes it (floats at their fixed decimals),
        ``original_<column>`` holds the machine value there and is empty (NaN, "" or None)
        elsewhere, and in rows the machine tables do not have. A float column's original is a
        float, a text or boolean column's original is text, a mixed column's
        (``criteria.value``) holds the machine value itself.
    """
    from ..features import csv_decimals
    from ..tables import column_decimals

    out = dict(reviewed)
    for name, keys in ORIGINAL_KEYS.items():
        t = reviewed.get(name)
        if t is None:
            continue
        pairs = original_columns(name, t.columns)
        m = None if machine is None else machine.get(name)
        n = len(t)
        idx = np.full(n, -1, dtype=np.int64)
        if m is not None and len(m) and n and all(k in t and k in m for k in keys):
            where = {
                tuple(_cell(v) for v in row): i
                for i, row in enumerate(zip(*(m[k].tolist() for k in keys), strict=True))
            }
            idx = np.array(
                [
                    where.get(tuple(_cell(v) for v in row), -1)
                    for row in zip(*(t[k].tolist() for k in keys), strict=True)
                ],
                dtype=np.int64,
            )
        found = idx >= 0
        take = np.where(found, idx, 0)
        dec = column_decimals(list(t.columns), csv_decimals(t))
        changed: list[list[str]] = [[] for _ in range(n)]
        new = {}
        for oc, c in pairs:
            a = t[c].to_numpy()
            has = m is not None and c in m.columns and found.any()
            b = m[c].to_numpy()[take] if m is not None and has else np.array([])
            if a.dtype.kind in "fiu":
                col = np.full(n, np.nan)
                if has:
                    try:
                        bf = np.asarray(b, dtype=np.float64)
                    except (TypeError, ValueError):
                        bf = np.array([np.nan if _cell(v) == "" else float(v) for v in b])
                    d = dec.get(c, 3)
                    differ = found & (
                        np.array(_number_text(a.astype(np.float64), d), dtype=object)
                        != np.array(_number_text(bf, d), dtype=object)
                    )
                    col[differ] = bf[differ]
                    for i in np.flatnonzero(differ):
                        changed[i].append(c)
            else:
                at = [_cell(v) for v in a.tolist()]
                text = a.dtype.kind == "b" or all(isinstance(v, str) for v in a.tolist())
                col = np.array([""] * n if text else [None] * n, dtype=object)
                if has:
                    bl = b.tolist()
                    for i in np.flatnonzero(found):
                        if _cell(bl[i]) != at[i]:
                            col[i] = _cell(bl[i]) if text else bl[i]
                            changed[i].append(c)
            new[oc] = col
        t = t.copy()
        t[CHANGED_COLUMN] = np.array([";".join(c) for c in changed], dtype=object)
        for oc, col in new.items():
            t[oc] = col
        out[name] = t
    return out
