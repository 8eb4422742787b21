"""Longitudinal follow-up: a subject's exams as visits, per-nerve trajectories, robust slopes
and the sensory red flag.

Input: the ``nerves`` and ``exams`` tables of a cohort run and, per exam, its *day number*
(the exam's real day shifted by the subject's secret offset, :mod:`ncsproc.privacy`; only
differences within a subject are meaningful, so intervals are exact whatever date precision
the run keeps). Output: :data:`TRAJECTORY_COLUMNS` (one row per subject x exam x nerve x side
x modality x variable) and the ``subjects`` table (one row per subject: visits, follow-up,
patterns, Theil-Sen slopes per year, the red flag and its evidence). Everything is vectorised
over the cohort (pandas group operations, Theil-Sen by group size). Schema:
``formats/cohort.md`` ("Follow-up tables").
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..units import DAYS_PER_YEAR
from ._expr import RuleError
from ._files import FileInfo, check_status, data_path, read_toml

__all__ = [
    "DAYS_PER_YEAR",
    "FOLLOWUP_VARIABLES",
    "TRAJECTORY_COLUMNS",
    "SUBJECT_COLUMNS",
    "RedFlagRule",
    "load_red_flag",
    "visits_table",
    "trajectories_table",
    "subjects_table",
    "followup_tables",
    "theil_sen_slopes",
    "slope_column",
]


DEFAULT_RED_FLAG = ("followup", "sensory-red-flag.toml")


@dataclass(frozen=True)
class FollowupVariable:
    """A nerves-table column followed over time."""

    column: str
    modality: str
    unit: str  # clinical unit of the column ("" for ratios)
    limit: str | None  # nerves-table column with the normal limit of that visit
    direction: str | None  # "lower" (LLN) or "upper" (ULN)
    absent_is_zero: bool = False  # an inexcitable study has an amplitude of 0


FOLLOWUP_VARIABLES: tuple[FollowupVariable, ...] = (
    FollowupVariable("snap_amp_uv", "sensory", "uV", "amp_lln_uv", "lower", True),
    FollowupVariable("scv_m_s", "sensory", "m/s", "scv_lln_m_s", "lower"),
    FollowupVariable("distal_amp_uv", "motor", "uV", "amp_lln_uv", "lower", True),
    FollowupVariable("dml_ms", "motor", "ms", "dml_uln_ms", "upper"),
    FollowupVariable("cv_m_s", "motor", "m/s", "cv_lln_m_s", "lower"),
    FollowupVariable("tli", "motor", "", None, None),
    FollowupVariable("f_min_ms", "fwave", "ms", "f_min_uln_ms", "upper"),
)
"""Variables of ``trajectories.csv``: SNAP amplitude, sensory CV, CMAP amplitude, DML, motor
CV, TLI and the minimal F-wave latency."""

VISIT_COLUMNS = ("subject_id", "exam_id", "visit", "days_since_first", "pattern")

TRAJECTORY_COLUMNS = (
    "subject_id",
    "exam_id",
    "visit",
    "days_since_first",
    "nerve",
    "side",
    "modality",
    "variable",
    "value",
    "unit",
    "change_from_first_pct",
    "normal_limit",
    "limit_direction",
)
"""Columns of ``trajectories.csv``; ``normal_limit`` is the limit the nerves table used for
that visit (same unit as ``value``), ``limit_direction`` ``lower`` (LLN) or ``upper`` (ULN)."""

SUBJECT_COLUMNS = (
    "subject_id",
    "n_exams",
    "followup_days",
    "first_exam_id",
    "last_exam_id",
    "first_pattern",
    "last_pattern",
    "pattern_changed",
    "sensory_red_flag",
    "red_flag_evaluable",
    "red_flag_days",
    "red_flag_evidence",
    "red_flag_rule",
)
"""Fixed columns of ``subjects.csv``; the slope columns (:func:`slope_column`) follow."""


def slope_column(nerve: str, side: str, variable: str) -> str:
    """Name of a slope column of ``subjects.csv``, e.g. ``sural_L_snap_amp_uv_per_year``."""
    return f"{nerve}_{side}_{variable}_per_year"


# ---------------------------------------------------------------------------------------------
# The red-flag rule file


@dataclass(frozen=True)
class RedFlagRule:
    """A loaded red-flag rule file (``ncsproc/data/followup/sensory-red-flag.toml``)."""

    info: FileInfo
    nerve: str
    modality: str
    variable: str
    limit: str
    fall_pct: float
    window_years: float
    cross_limit: bool
    thresholds: dict

    @property
    def label(self) -> str:
        return self.info.label


def load_red_flag(path: str | os.PathLike | RedFlagRule | None = None) -> RedFlagRule:
    """Load a red-flag rule file (default: the shipped ``sensory-red-flag.toml``).

    Raises
    ------
    RuleError
        The file is missing, not TOML, or lacks a key (the message names file and key).
    """
    if isinstance(path, RedFlagRule):
        return path
    p = Path(path) if path is not None else data_path(*DEFAULT_RED_FLAG)
    doc, info = read_toml(p, "red-flag")
    flag = doc.get("flag")
    if not isinstance(flag, dict):
        raise RuleError(f"red-flag file {p.name}: a [flag] table is required")
    for key in ("nerve", "modality", "variable", "limit"):
        if not isinstance(flag.get(key), str) or not flag[key]:
            raise RuleError(f"red-flag file {p.name}: [flag] {key} must be a non-empty string")
    thresholds = doc.get("thresholds", {})
    values = {}
    for key in ("fall_pct", "window_years", "cross_limit"):
        entry = thresholds.get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), (int, float)):
            raise RuleError(f"red-flag file {p.name}: [thresholds.{key}] value (a number) missing")
        check_status(entry.get("status"), f"red-flag file {p.name} [thresholds.{key}]")
        values[key] = float(entry["value"])
    return RedFlagRule(
        info=info,
        nerve=flag["nerve"],
        modality=flag["modality"],
        variable=flag["variable"],
        limit=flag["limit"],
        fall_pct=values["fall_pct"],
        window_years=values["window_years"],
        cross_limit=bool(values["cross_limit"]),
        thresholds={k: dict(v) for k, v in thresholds.items()},
    )


# ---------------------------------------------------------------------------------------------
# Visits and trajectories


def visits_table(exams: pd.DataFrame, exam_days: dict[str, int | None]) -> pd.DataFrame:
    """One row per exam: ``subject_id, exam_id, visit, days_since_first, pattern``.

    Visits are numbered per subject in order of day (exams without a known day last, then by
    exam id); ``days_since_first`` counts from the subject's earliest known day (empty when
    the exam's day is unknown).
    """
    if exams is None or not len(exams):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in VISIT_COLUMNS})
    v = exams[["subject_id", "exam_id"]].astype(str).copy()
    v["pattern"] = exams["pattern"].astype(object) if "pattern" in exams else ""
    v["_day"] = pd.to_numeric(v["exam_id"].map(exam_days), errors="coerce").astype(float)
    v = v.drop_duplicates("exam_id")
    v = v.sort_values(["subject_id", "_day", "exam_id"], na_position="last", kind="stable")
    v["visit"] = v.groupby("subject_id", sort=False).cumcount().astype(np.int64) + 1
    first = v.groupby("subject_id", sort=False)["_day"].transform("min")
    v["days_since_first"] = v["_day"] - first
    return v[list(VISIT_COLUMNS)].reset_index(drop=True)


def trajectories_table(nerves: pd.DataFrame, visits: pd.DataFrame) -> pd.DataFrame:
    """Long table of :data:`TRAJECTORY_COLUMNS` from the nerves table and the visits.

    Several studies of one nerve, side and modality in an exam (rare): the first in the
    nerves table's order is used. An inexcitable study gives an amplitude of 0 (absent
    response); its latencies and velocities stay empty.
    """
    if nerves is None or not len(nerves) or not len(visits):
        return _empty(TRAJECTORY_COLUMNS)
    keys = ["exam_id", "nerve", "side", "modality"]
    n = nerves.drop_duplicates(keys, keep="first")
    inexcitable = (
        n["inexcitable"].astype(str).str.lower().eq("true")
        if "inexcitable" in n
        else pd.Series(False, index=n.index)
    )
    pieces = []
    for var in FOLLOWUP_VARIABLES:
        if var.column not in n:
            continue
        rows = n[n["modality"].astype(str) == var.modality]
        if not len(rows):
            continue
        value = pd.to_numeric(rows[var.column], errors="coerce").astype(float)
        if var.absent_is_zero:
            value = value.where(~(inexcitable.loc[rows.index] & value.isna()), 0.0)
        limit = (
            pd.to_numeric(rows[var.limit], errors="coerce").astype(float)
            if var.limit and var.limit in rows
            else pd.Series(np.nan, index=rows.index)
        )
        pieces.append(
            pd.DataFrame(
                {
                    "exam_id": rows["exam_id"].astype(str).to_numpy(),
                    "nerve": rows["nerve"].astype(str).to_numpy(),
                    "side": rows["side"].astype(str).to_numpy(),
                    "modality": var.modality,
                    "variable": var.column,
                    "value": value.to_numpy(),
                    "unit": var.unit,
                    "normal_limit": limit.to_numpy(),
                    "limit_direction": var.direction or "",
                }
            )
        )
    if not pieces:
        return _empty(TRAJECTORY_COLUMNS)
    t = pd.concat(pieces, ignore_index=True)
    t = t.merge(visits[["subject_id", "exam_id", "visit", "days_since_first"]], on="exam_id")
    t = t.sort_values(
        ["subject_id", "nerve", "side", "modality", "variable", "visit"], kind="stable"
    ).reset_index(drop=True)
    # change from the earliest visit with a value of that nerve, side and variable
    group = ["subject_id", "nerve", "side", "modality", "variable"]
    first = (
        t["value"]
        .where(np.isfinite(t["value"]))
        .groupby([t[g] for g in group], sort=False)
        .transform("first")
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        change = 100.0 * (t["value"] / first - 1.0)
    t["change_from_first_pct"] = change.where(np.isfinite(change))
    return t[list(TRAJECTORY_COLUMNS)]


def theil_sen_slopes(
    group: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Theil-Sen slope (median of the pairwise slopes) of every group, vectorised.

    Parameters
    ----------
    group : (n,) integer array
        Group code of each point (points of a group need not be contiguous).
    x, y : (n,) float arrays
        Points; non-finite ones are ignored. Pairs with equal ``x`` are ignored (as
        :func:`scipy.stats.theilslopes` does).

    Returns
    -------
    codes, slopes, n_points
        The groups with at least two distinct finite ``x``, their slope and point count.
    """
    ok = np.isfinite(x) & np.isfinite(y)
    group, x, y = group[ok], x[ok], y[ok]
    order = np.lexsort((x, group))
    group, x, y = group[order], x[order], y[order]
    codes, start, counts = np.unique(group, return_index=True, return_counts=True)
    out_codes, out_slopes, out_n = [], [], []
    for k in np.unique(counts[counts >= 2]):
        sel = counts == k
        idx = start[sel][:, None] + np.arange(k)[None, :]  # (groups, k)
        i, j = np.triu_indices(k, 1)
        dx = x[idx[:, j]] - x[idx[:, i]]
        dy = y[idx[:, j]] - y[idx[:, i]]
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(dx > 0, dy / dx, np.nan)
        valid = np.isfinite(s).any(axis=1)
        with np.errstate(all="ignore"):
            med = np.full(s.shape[0], np.nan)
            if valid.any():
                med[valid] = np.nanmedian(s[valid], axis=1)
        out_codes.append(codes[sel][valid])
        out_slopes.append(med[valid])
        out_n.append(np.full(int(valid.sum()), k))
    if not out_codes:
        empty = np.array([], dtype=np.int64)
        return empty, np.array([], dtype=float), empty
    return np.concatenate(out_codes), np.concatenate(out_slopes), np.concatenate(out_n)


def _slopes_wide(traj: pd.DataFrame) -> pd.DataFrame:
    """Slopes per year per subject, one column per nerve x side x variable (sorted)."""
    if not len(traj):
        return pd.DataFrame(index=pd.Index([], name="subject_id"))
    key = traj["subject_id"] + "\x00" + traj["nerve"] + "\x00" + traj["side"] + "\x00"
    key = key + traj["variable"]
    codes, uniques = pd.factorize(key, sort=False)
    years = traj["days_since_first"].to_numpy(dtype=float) / DAYS_PER_YEAR
    g, slope, _ = theil_sen_slopes(codes, years, traj["value"].to_numpy(dtype=float))
    if not len(g):
        return pd.DataFrame(index=pd.Index([], name="subject_id"))
    parts = pd.Series(np.asarray(uniques)[g]).str.split("\x00", expand=True)
    frame = pd.DataFrame(
        {
            "subject_id": parts[0],
            "column": [
                slope_column(n, s, v) for n, s, v in zip(parts[1], parts[2], parts[3], strict=True)
            ],
            "slope": slope,
        }
    )
    wide = frame.pivot(index="subject_id", columns="column", values="slope")
    return wide[sorted(wide.columns)]


def _red_flags(traj: pd.DataFrame, rule: RedFlagRule) -> pd.DataFrame:
    """Per subject: flag, evaluable, days of the first flagged visit, evidence (JSON text).

    Vectorised over the cohort: per subject and side the first visit's value and limit, then
    every later visit within the window; the evidence names, per side, the first visit that
    raised the flag (else the visit with the largest fall).
    """
    cols = ["sensory_red_flag", "red_flag_evaluable", "red_flag_days", "red_flag_evidence"]
    t = traj[
        (traj["nerve"] == rule.nerve)
        & (traj["modality"] == rule.modality)
        & (traj["variable"] == rule.variable)
    ].sort_values(["subject_id", "side", "visit"], kind="stable")
    if not len(t):
        return pd.DataFrame(columns=cols, index=pd.Index([], name="subject_id"))
    window = rule.window_years * DAYS_PER_YEAR
    g = t.groupby(["subject_id", "side"], sort=False)
    first_visit = g["visit"].transform("min")
    base = t["visit"] == first_visit
    b = t["value"].where(base).groupby([t["subject_id"], t["side"]]).transform("max")
    b_lim = t["normal_limit"].where(base).groupby([t["subject_id"], t["side"]]).transform("max")
    later = (
        ~base
        & (t["days_since_first"] > 0)
        & (t["days_since_first"] <= window)
        & np.isfinite(t["value"])
        & np.isfinite(b)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        fall = np.where(b > 0, 100.0 * (1.0 - t["value"] / b), np.nan)
    crossed = (b >= b_lim) & (t["value"] < t["normal_limit"]) if rule.cross_limit else False
    hit = later & ((fall >= rule.fall_pct - 1e-9) | crossed)
    t = t.assign(rf_b=b, rf_lim=b_lim, rf_later=later, rf_fall=fall, rf_crossed=crossed, rf_hit=hit)
    # one evidence row per subject and side: the first hit, else the largest fall
    cand = t[t["rf_later"]].assign(rf_rank=lambda x: np.where(x["rf_hit"], 0, 1))
    cand = cand.assign(rf_key=np.where(cand["rf_hit"], cand["days_since_first"], -cand["rf_fall"]))
    cand = cand.sort_values(["subject_id", "side", "rf_rank", "rf_key"], kind="stable")
    pick = cand.drop_duplicates(["subject_id", "side"], keep="first")
    evidence: dict[str, list] = {}
    for r in pick.itertuples(index=False):
        evidence.setdefault(r.subject_id, []).append(
            {
                "side": r.side,
                "flag": bool(r.rf_hit),
                "first_visit_value": round(float(r.rf_b), 3),
                "first_visit_limit": round(float(r.rf_lim), 3) if math.isfinite(r.rf_lim) else None,
                "visit": int(r.visit),
                "days_since_first": int(r.days_since_first),
                "value": round(float(r.value), 3),
                "fall_pct": round(float(r.rf_fall), 1) if math.isfinite(r.rf_fall) else None,
                "below_limit_from_normal": bool(r.rf_crossed),
            }
        )
    by_subject = t.groupby("subject_id", sort=True)
    out = pd.DataFrame(
        {
            "sensory_red_flag": by_subject["rf_hit"].any(),
            "red_flag_evaluable": by_subject["rf_later"].any(),
            "red_flag_days": t["days_since_first"]
            .where(t["rf_hit"])
            .groupby(t["subject_id"])
            .min(),
        }
    )
    reason = (
        f"no {rule.nerve} {rule.variable} at a later visit within {rule.window_years:g} years "
        "of a first visit that has one"
    )
    out["red_flag_evidence"] = [
        json.dumps(evidence[s], sort_keys=True)
        if s in evidence
        else json.dumps([{"evaluable": False, "reason": reason}])
        for s in out.index
    ]
    out.index.name = "subject_id"
    return out[cols]


def subjects_table(
    visits: pd.DataFrame, traj: pd.DataFrame, rule: RedFlagRule | None = None
) -> pd.DataFrame:
    """One row per subject (:data:`SUBJECT_COLUMNS` then the slope columns)."""
    rule = load_red_flag(rule)
    if not len(visits):
        return _empty(SUBJECT_COLUMNS)
    v = visits.sort_values(["subject_id", "visit"], kind="stable")
    g = v.groupby("subject_id", sort=True)
    s = pd.DataFrame(
        {
            "n_exams": g.size().astype(np.int64),
            "followup_days": g["days_since_first"].max(),
            "first_exam_id": g["exam_id"].first(),
            "last_exam_id": g["exam_id"].last(),
            "first_pattern": g["pattern"].first(),
            "last_pattern": g["pattern"].last(),
        }
    )
    s["pattern_changed"] = (s["n_exams"] > 1) & (s["first_pattern"] != s["last_pattern"])
    flags = _red_flags(traj, rule)
    s = s.join(flags, how="left")
    s["sensory_red_flag"] = s["sensory_red_flag"].fillna(False).astype(bool)
    s["red_flag_evaluable"] = s["red_flag_evaluable"].fillna(False).astype(bool)
    s["red_flag_evidence"] = s["red_flag_evidence"].fillna("[]")
    s["red_flag_rule"] = rule.label
    s = s.join(_slopes_wide(traj), how="left")
    s = s.reset_index().rename(columns={"index": "subject_id"})
    slopes = [c for c in s.columns if c not in SUBJECT_COLUMNS]
    return s[list(SUBJECT_COLUMNS) + slopes]


def followup_tables(
    nerves: pd.DataFrame,
    exams: pd.DataFrame,
    exam_days: dict[str, int | None],
    rule: RedFlagRule | str | os.PathLike | None = None,
) -> dict[str, pd.DataFrame]:
    """``{"visits", "trajectories", "subjects"}`` of a cohort run.

    Parameters
    ----------
    nerves, exams : DataFrame
        The run's nerves and exams tables (as read from ``nerves.csv`` / ``exams.csv``).
    exam_days : dict
        Exam id -> day number (shifted; only differences within a subject matter) or None.
    rule : path-like or RedFlagRule, optional
        Red-flag rule file (default: ``sensory-red-flag.toml``).
    """
    rule = load_red_flag(rule)
    visits = visits_table(exams, exam_days)
    traj = trajectories_table(nerves, visits)
    return {"visits": visits, "trajectories": traj, "subjects": subjects_table(visits, traj, rule)}


def _empty(columns) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
