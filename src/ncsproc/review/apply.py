"""Applying the overrides to the measures of an exam: :func:`review_measures`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ._remeasure import _params, _recompute, _same, _Skip, _Trace
from .overrides import MEASURED, Override, Overrides, OverridesError


@dataclass(frozen=True)
class ReviewProblem:
    """An override that could not be applied (its trace keeps its machine values)."""

    trace_id: str
    line: int
    marker: str
    message: str


@dataclass
class Review:
    """Result of :func:`review_measures`.

    Attributes
    ----------
    measures : xarray.Dataset
        The measures with the reviewed values, ``reviewed`` and ``original_<variable>``.
    problems : list of ReviewProblem
        Overrides not applied, and why (every other override is applied).
    changes : list of dict
        One entry per recomputed value (SI units): ``trace_id, exam_id, marker, variable,
        original, reviewed, reviewer, reason, original_status, reviewed_status, line,
        reviewed_at``.
    overrides : Overrides
    """

    measures: xr.Dataset
    problems: list = field(default_factory=list)
    changes: list = field(default_factory=list)
    overrides: Overrides = field(default_factory=Overrides)


def review_measures(measures: xr.Dataset, traces: xr.Dataset, overrides: Overrides) -> Review:
    """Apply marker overrides to per-trace measures; report the ones that cannot be applied.

    Parameters
    ----------
    measures : xarray.Dataset
        Output of :func:`ncsproc.measure` (``trace`` ids, ``modality``, ``status``, the measured
        variables, ``baseline_level``, ``noise_sd``, ``artefact_end``, ``measure_parameters``).
    traces : xarray.Dataset
        The trace set that was measured (its ``signal`` is read for the reviewed traces only).
    overrides : Overrides
        From :func:`read_overrides`.

    Returns
    -------
    Review
        ``measures`` with the reviewed values, the string variable ``reviewed`` (``;``-joined
        sorted markers of the applied overrides, "" for other traces), ``original_<variable>``
        (the machine value of every trace, for every variable a review recomputed) and
        ``original_status`` when a status changed; ``problems`` (the overrides not applied: an
        unknown trace id, a time outside the trace, f_onset on another modality, a lone onset or
        peak on a trace without a response, markers out of order...; every override of such a
        trace is left out, the others are applied); ``changes`` (one entry per recomputed value).
    """
    ids = np.asarray(measures["trace"].values).astype(str)
    index = {t: i for i, t in enumerate(ids)}
    tr_ids = np.asarray(traces["trace"].values).astype(str)
    tr_index = {t: i for i, t in enumerate(tr_ids)}
    params = _params(measures)
    by_trace: dict[str, dict[str, Override]] = {}
    for r in overrides:
        by_trace.setdefault(r.trace_id, {})[r.marker] = r
    exam_of = (
        np.asarray(measures["exam_id"].values).astype(str)
        if "exam_id" in measures
        else np.full(ids.size, "", dtype=object)
    )
    modality = np.asarray(measures["modality"].values).astype(str)
    status = np.asarray(measures["status"].values).astype(str)
    cols = {v: np.asarray(measures[v].values, dtype=np.float64) for v in MEASURED}
    aux = {
        v: np.asarray(measures[v].values, dtype=np.float64)
        for v in ("baseline_level", "noise_sd", "artefact_end")
    }
    new_cols = {v: c.copy() for v, c in cols.items()}
    new_status = status.astype(object).copy()
    reviewed = np.full(ids.size, "", dtype=object)
    touched: set[str] = set()
    problems: list[ReviewProblem] = []
    changes: list[dict] = []

    for tid in sorted(by_trace):
        marks = by_trace[tid]
        lines = sorted(marks.values(), key=lambda r: r.line)
        i = index.get(tid)
        if i is None:
            exam = tid.split("/", 1)[0]
            known = [t for t in ids if t.startswith(f"{exam}/")]
            hint = (
                f"exam {exam} has {len(known)} trace(s), e.g. {', '.join(known[:3])}"
                if known
                else "no measured trace has this exam prefix"
            )
            for r in lines:
                problems.append(
                    ReviewProblem(
                        tid,
                        r.line,
                        r.marker,
                        (
                            f"{r.where}: trace {tid!r} is not a measured trace ({hint}); copy the "
                            f"id from "
                            "the trace column of sites.csv"
                        ),
                    )
                )
            continue
        values = {v: float(cols[v][i]) for v in MEASURED}
        tr = None
        if tid in tr_index and math.isfinite(aux["baseline_level"][i]):
            j = tr_index[tid]
            n = int(traces["n_samples"].values[j])
            y = np.asarray(traces["signal"][j].values, dtype=np.float64)[:n]
            mod = modality[i]
            tr = _Trace(
                y,
                float(traces["sampling_rate"].values[j]),
                float(traces["t_start"].values[j]),
                params[mod],
                mod == "fwave",
                float(aux["baseline_level"][i]),
                float(aux["noise_sd"][i]),
                float(aux["artefact_end"][i]),
            )
        try:
            new, st, by = _recompute(tr, values, status[i], modality[i], marks)
        except _Skip as skip:
            others = [r.line for r in lines if r is not skip.row]
            tail = (
                (
                    f" (so the other override line(s) {', '.join(map(str, others))} of this "
                    "trace were not applied either)"
                )
                if others
                else ""
            )
            problems.append(
                ReviewProblem(
                    tid,
                    skip.row.line,
                    skip.row.marker,
                    f"{skip.row.where}: trace {tid}: {skip.message}{tail}",
                )
            )
            for r in lines:
                if r is not skip.row:
                    problems.append(
                        ReviewProblem(
                            tid,
                            r.line,
                            r.marker,
                            (
                                f"{r.where}: trace {tid}: not applied, because line "
                                f"{skip.row.line} of "
                                "the same trace cannot be"
                            ),
                        )
                    )
            continue
        for v in MEASURED:
            new_cols[v][i] = new[v]
        new_status[i] = st
        reviewed[i] = ";".join(sorted(marks))
        touched.update(by)
        rows_before = len(changes)
        for v in MEASURED:
            if v not in by or (_same(values[v], new[v]) and math.isnan(values[v])):
                continue
            changes.append(
                _change(tid, exam_of[i], v, values[v], new[v], sorted(by[v]), marks, status[i], st)
            )
        if st != status[i] or len(changes) == rows_before:
            changes.append(
                _change(
                    tid,
                    exam_of[i],
                    "status",
                    math.nan,
                    math.nan,
                    sorted(marks),
                    marks,
                    status[i],
                    st,
                )
            )

    problems.sort(key=lambda p: p.line)
    out = measures.copy()
    for v in MEASURED:
        if v in touched:
            out[v] = (measures[v].dims, new_cols[v], dict(measures[v].attrs))
    if (new_status != status).any():
        out["status"] = (measures["status"].dims, new_status, dict(measures["status"].attrs))
    for v in MEASURED:
        if v in touched:
            attrs = dict(measures[v].attrs)
            attrs["long_name"] = f"machine value of {v} before the marker review"
            out[f"original_{v}"] = (measures[v].dims, cols[v].copy(), attrs)
    if (new_status != status).any():
        out["original_status"] = (
            measures["status"].dims,
            status.astype(object),
            {"long_name": "machine status before the marker review"},
        )
    out["reviewed"] = (
        measures["status"].dims,
        reviewed,
        {
            "long_name": "markers corrected by a reviewer (';'-joined, sorted; empty: none)",
            "overrides": overrides.source,
            "overrides_sha256": overrides.sha256,
        },
    )
    n_traces = int((reviewed != "").sum())
    if n_traces or overrides.rows:
        from ..schema import history_line

        line = history_line(
            f"review: {len(overrides.rows) - len(problems)} marker override(s) of "
            f"{overrides.source} ({overrides.sha256[:12] or 'in memory'}) applied to {n_traces} "
            f"trace(s), {len(problems)} not applied"
        )
        prev = measures.attrs.get("history", "")
        out.attrs["history"] = f"{prev}\n{line}" if prev else line
    return Review(out, problems, changes, overrides)


def _change(tid, exam, var, before, after, markers, marks, st0, st1) -> dict:
    rows = [marks[m] for m in markers]
    reviewers = list(dict.fromkeys(r.reviewer for r in rows))
    reasons = list(dict.fromkeys(r.reason for r in rows))
    dates = list(dict.fromkeys(r.reviewed_at for r in rows if r.reviewed_at))
    return {
        "trace_id": tid,
        "exam_id": str(exam),
        "marker": ";".join(markers),
        "variable": var,
        "original": before,
        "reviewed": after,
        "reviewer": "; ".join(reviewers),
        "reason": "; ".join(reasons),
        "original_status": str(st0),
        "reviewed_status": str(st1),
        "line": ";".join(str(r.line) for r in sorted(rows, key=lambda r: r.line)),
        "reviewed_at": "; ".join(dates),
    }


def apply_overrides(measures: xr.Dataset, traces: xr.Dataset, overrides: Overrides) -> xr.Dataset:
    """Apply marker overrides; every one of them must apply.

    Parameters
    ----------
    measures, traces, overrides
        As for :func:`review_measures`.

    Returns
    -------
    xarray.Dataset
        The reviewed measures (see :func:`review_measures`).

    Raises
    ------
    OverridesError
        Some override cannot be applied (all of them are listed).
    """
    result = review_measures(measures, traces, overrides)
    if result.problems:
        raise OverridesError(overrides.source, [p.message for p in result.problems])
    return result.measures
