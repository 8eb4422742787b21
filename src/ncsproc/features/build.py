"""The contract's feature tables (``segments.csv``, ``nerves.csv``, ``exams.csv``) in one call.

:func:`tables` runs the whole chain: study features -> normal limits -> criteria -> patterns,
and returns pandas DataFrames in clinical units with the contract's columns first (interchange
contract section 4), extra columns after, NaN for values that do not exist, and a deterministic
row order (exam, study, segment) that does not depend on the order of the traces or files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .criteria import CriteriaSet, CriterionResult, LevelResult, evaluate_criteria, load_criteria
from .limits import NormalLimits, apply_limits, load_limits
from .patterns import PatternResult, PatternRules, load_rules
from .studies import NERVE_COLUMNS, study_features

__all__ = ["tables", "classify", "csv_decimals", "EXAM_COLUMNS", "COMPARISON_COLUMNS", "DECIMALS"]

COMPARISON_COLUMNS = ("dml_pct_uln", "cv_pct_lln", "amp_pct_lln", "f_min_pct_uln")
"""The comparisons the contract names first; others (snap_peak_pct_uln, scv_pct_lln, ...) follow."""

EXAM_COLUMNS = ("exam_id", "subject_id", "pattern", "rules_version", "n_motor_studies")

DECIMALS_BY_SUFFIX = (
    ("_mm", 1),
    ("_ms", 3),
    ("_uv", 2),
    ("_uvms", 2),
    ("_mv", 3),
    ("_mvms", 3),
    ("_m_s", 2),
    ("_pct", 2),
    ("_pct_uln", 2),
    ("_pct_lln", 2),
    ("_hz", 2),
    ("_c", 1),
    ("_years", 1),
    ("_cm", 1),
)
DECIMALS = {"tli": 4}
"""Decimals of columns that no unit suffix covers (see :func:`csv_decimals`)."""


def csv_decimals(table: pd.DataFrame) -> dict[str, int]:
    """Fixed decimals per float column of a feature table, for :func:`ncsproc.tables.write_csv`:
    0.1 mm, 1 us, 0.01 uV, 0.01 m/s, 0.01 %, 4 decimals of TLI."""
    out = {}
    for col in table.columns:
        if col in DECIMALS:
            out[col] = DECIMALS[col]
            continue
        for suffix, d in sorted(DECIMALS_BY_SUFFIX, key=lambda x: -len(x[0])):
            if col.endswith(suffix):
                out[col] = d
                break
    return out


def _json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def classify(
    nerves: pd.DataFrame,
    criteria: Sequence[CriteriaSet],
    results: dict[tuple[str, str], list[CriterionResult]],
    rules: PatternRules,
) -> dict[str, PatternResult]:
    """Pattern of every exam of a nerves table (limits applied, criteria evaluated)."""
    by_exam: dict[str, list[dict]] = {}
    for rec in nerves.to_dict("records"):
        by_exam.setdefault(rec["exam_id"], []).append(rec)
    out = {}
    for exam in sorted(by_exam):
        res = {cs.id: results.get((exam, cs.id), []) for cs in criteria}
        out[exam] = rules.classify(exam, by_exam[exam], criteria, res)
    return out


def tables(
    measures: xr.Dataset,
    limits: NormalLimits | str | os.PathLike | None = None,
    rules: PatternRules | str | os.PathLike | None = None,
    criteria: CriteriaSet | str | os.PathLike | Sequence | None = None,
) -> dict[str, pd.DataFrame]:
    """Feature tables of a measures Dataset.

    Parameters
    ----------
    measures : xarray.Dataset
        Output of :func:`ncsproc.measure` (per-trace measures with the trace-set coordinates).
    limits : path or NormalLimits, optional
        Normal-limit file; default: ``ncsproc/data/limits/ncs-domain-4.toml`` (values of
        ncs-domain.md 4.4 are unconfirmed, tagged U, and every result records it).
    rules : path or PatternRules, optional
        Pattern rule file; default: ``ncsproc/data/patterns/antimag-proposal-v2.toml`` (proposal
        P, version 2; ``antimag-proposal.toml`` is version 1).
    criteria : path, CriteriaSet or a sequence of them, optional
        Criteria sets; default: EFNS/PNS 2010 and EAN/PNS 2021 as shipped.

    Returns
    -------
    dict of pandas.DataFrame
        ``segments``, ``nerves``, ``exams`` (the contract's tables), ``criteria`` (one row per
        exam, motor study, criteria set and criterion: the evidence) and ``sites`` (the trace
        used at every stimulation site).
    """
    lim = load_limits(limits)
    sets = load_criteria(criteria)
    rl = load_rules(rules)

    feats = study_features(measures)
    nerves = apply_limits(feats.nerves, lim)
    ev = evaluate_criteria(nerves, sets)
    evidence, levels, results = ev.evidence, ev.levels, ev.results
    patterns = classify(nerves, sets, results, rl)
    fragile = _borderline_columns(nerves, sets, rl)

    nerves = _criteria_columns(nerves, results, sets)
    nerves = _order_nerve_columns(nerves, sets)
    exams = _exams_table(nerves, sets, levels, patterns, lim, rl, results)
    if len(exams):
        exams = exams.join(fragile, on="exam_id")
    return {
        "segments": feats.segments,
        "nerves": nerves,
        "exams": exams,
        "criteria": evidence,
        "sites": feats.sites,
    }


BORDERLINE_COLUMNS = ("pattern_margin", "pattern_borderline", "pattern_alternative")
"""Columns of ``exams`` from :func:`ncsproc.features.borderline.borderline` (after the others)."""


def _borderline_columns(nerves: pd.DataFrame, sets, rules: PatternRules) -> pd.DataFrame:
    """Margin, borderline flag and alternative patterns of every exam (empty if the rule file
    uses a function the vectorised evaluation does not support)."""
    from ._expr import RuleError
    from .borderline import borderline

    try:
        out = borderline(nerves, sets, rules)
    except RuleError:
        exams = sorted(set(nerves["exam_id"]))
        out = pd.DataFrame(
            {"pattern_margin": np.nan, "pattern_borderline": pd.NA, "pattern_alternative": ""},
            index=pd.Index(exams, name="exam_id"),
        )
    return out[list(BORDERLINE_COLUMNS)]


def _worst_status(tags) -> str:
    from ._files import status_rank

    tags = [t for t in tags if t]
    return max(tags, key=status_rank) if tags else ""


def _criteria_columns(nerves: pd.DataFrame, results, sets) -> pd.DataFrame:
    out = nerves.copy()
    by_study: dict[tuple[str, str, str], list[CriterionResult]] = {}
    for (exam, set_id), res in results.items():
        for r in res:
            by_study.setdefault((exam, r.study, set_id), []).append(r)
    for cs in sets:
        met_col, ne_col = [], []
        for exam, study, modality in zip(
            out["exam_id"], out["study"], out["modality"], strict=True
        ):
            res = by_study.get((exam, study, cs.id), [])
            met_col.append(
                ";".join(r.criterion for r in res if r.met) if modality == cs.modality else ""
            )
            ne_col.append(
                "; ".join(
                    f"{r.criterion}: {r.state} ({r.reason})"
                    for r in res
                    if r.state in ("not_evaluable", "gated", "refused", "excluded")
                )
            )
        out[f"{cs.id}_met"] = met_col
        out[f"{cs.id}_not_evaluated"] = ne_col
    return out


def _order_nerve_columns(nerves: pd.DataFrame, sets) -> pd.DataFrame:
    first = list(NERVE_COLUMNS)
    pct = [c for c in COMPARISON_COLUMNS if c in nerves.columns]
    pct += [c for c in nerves.columns if "_pct_uln" in c or "_pct_lln" in c if c not in pct]
    crit = [c for cs in sets for c in (f"{cs.id}_met", f"{cs.id}_not_evaluated")]
    rest = [c for c in nerves.columns if c not in first + pct + crit]
    return nerves[first + pct + crit + rest]


def _exams_table(
    nerves, all_sets, levels: dict[tuple[str, str], LevelResult], patterns, lim, rl, results
) -> pd.DataFrame:
    # motor sets keep the contract's place; sensory sets (issue 15) follow every other column
    sets = [cs for cs in all_sets if cs.modality == "motor"]
    extra_sets = [cs for cs in all_sets if cs.modality != "motor"]
    rows = []
    for exam, g in nerves.groupby("exam_id", sort=True):
        motor = g[g["modality"] == "motor"]
        row = {
            "exam_id": exam,
            "subject_id": sorted(s for s in g["subject_id"] if isinstance(s, str))[0]
            if len(g)
            else "",
            "pattern": patterns[exam].pattern,
            "rules_version": rl.label,
            "n_motor_studies": int(len(motor)),
        }
        for cs in sets:
            row[cs.id] = levels[(exam, cs.id)].level
        row["pattern_evidence"] = _json(patterns[exam].evidence)
        for cs in sets:
            lv = levels[(exam, cs.id)]
            row[f"{cs.id}_status"] = lv.status
            row[f"{cs.id}_evidence"] = _json(lv.clauses)
            row[f"{cs.id}_version"] = cs.label
        row.update(
            pattern_rule=patterns[exam].rule,
            rules_sha256=rl.info.sha256,
            rules_status=rl.info.status,
            limits_version=lim.label,
            limits_sha256=lim.info.sha256,
            n_motor_nerves=int(
                len({(s, n) for s, n in zip(motor["side"], motor["nerve"], strict=True)})
            ),
            n_evaluable_motor=int(motor["evaluable"].sum()),
            n_inexcitable_motor=int(motor["inexcitable"].sum()),
            n_sensory_studies=int((g["modality"] == "sensory").sum()),
            n_fwave_studies=int((g["modality"] == "fwave").sum()),
        )
        for cs in extra_sets:
            found = cs.findings(results.get((exam, cs.id), []), exam_id=exam)
            row[cs.id] = found[0].level if found else cs.none_level
            row[f"{cs.id}_findings"] = ";".join(f.level for f in found)
            row[f"{cs.id}_status"] = _worst_status(t for f in found for t in f.statuses)
            row[f"{cs.id}_evidence"] = _json(
                [{"level": f.level, **c} for f in found for c in f.clauses]
            )
            row[f"{cs.id}_version"] = cs.label
        rows.append(row)
    cols = list(EXAM_COLUMNS) + [cs.id for cs in sets] + ["pattern_evidence"]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=cols)
    return df[cols + [c for c in df.columns if c not in cols]].reset_index(drop=True)
