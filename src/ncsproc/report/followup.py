"""Follow-up pages: one per subject with >= 2 exams, and the cohort page.

Built from ``trajectories.csv`` and ``subjects.csv`` of the extract run (``formats/features.md``):
each variable against years since the subject's first visit, one line per nerve and side,
the visit's normal limit as a shaded band (the abnormal side of the limit), the visits that
raised the sensory red flag marked. Nothing but pseudonyms, exam ids and intervals is shown.
"""

from __future__ import annotations

import hashlib
import json
import math
import re

import pandas as pd

from ..units import CLINICAL, DAYS_PER_YEAR, MOTOR_AMPLITUDE_MODALITIES, to_clinical
from .html import Markup, attrs, esc, table
from .svg import _frame, _num, _range, _svg_open

__all__ = [
    "COHORT_PAGE",
    "DAYS_PER_YEAR",
    "cohort_rows",
    "display_unit",
    "flagged_points",
    "followup_page_name",
    "followup_pages",
]

COHORT_PAGE = "followup.html"

_LABELS = {
    "snap_amp_uv": "SNAP amplitude",
    "scv_m_s": "sensory CV",
    "distal_amp_uv": "distal CMAP amplitude",
    "dml_ms": "DML",
    "cv_m_s": "motor CV",
    "tli": "TLI",
    "f_min_ms": "minimal F latency",
}


def followup_page_name(subject_id: str) -> str:
    """``followup/<slug>-<hash>.html`` (the rule of the exam pages, in its own folder)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", subject_id).strip("-_")[:48] or "subject"
    digest = hashlib.sha256(subject_id.encode("utf-8")).hexdigest()[:10]
    return f"followup/{slug}-{digest}.html"


def _f(text) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def display_unit(modality: str, unit: str) -> tuple[str, float]:
    """Shown unit and factor from the table's unit: motor amplitudes in mV, sensory in µV."""
    if unit == "uV" and modality in MOTOR_AMPLITUDE_MODALITIES:
        return "mV", float(to_clinical(1.0 / CLINICAL["uV"][0], "mV"))
    return ("µV" if unit == "uV" else unit), 1.0


def flagged_points(traj: pd.DataFrame, subject: dict) -> set[tuple[str, str, str, int]]:
    """(nerve, side, variable, visit) of the visits that raised the red flag.

    ``red_flag_evidence`` names the side, the visit, its value and the first visit's value
    (3 decimals) but not the rule's nerve and variable (the rule file says them): the points
    are the trajectory rows of that side and visit whose value and first-visit value match.
    """
    try:
        ev = json.loads(subject.get("red_flag_evidence") or "[]")
    except ValueError:
        return set()
    out = set()
    for e in ev:
        if not (isinstance(e, dict) and e.get("flag")):
            continue
        for (nerve, side, variable), g in traj.groupby(["nerve", "side", "variable"], sort=False):
            if side != str(e["side"]):
                continue
            g = g.sort_values("visit", key=lambda v: v.map(_f))
            first = _f(g["value"].iloc[0])
            at = g[g["visit"].map(_f) == e["visit"]]
            if (
                len(at)
                and round(_f(at["value"].iloc[0]), 3) == e["value"]
                and round(first, 3) == e["first_visit_value"]
            ):
                out.add((nerve, side, variable, int(e["visit"])))
    return out


def _chart(rows: pd.DataFrame, *, label: str, unit: str, factor: float, flagged) -> Markup:
    """One variable of one subject: a line per nerve and side, the limit band, red flags."""
    w, h, ml, mr, mt, mb = 420, 240, 52, 96, 10, 32
    rows = rows.assign(
        px=rows["days_since_first"].map(_f) / DAYS_PER_YEAR,
        py=rows["value"].map(_f) * factor,
        plim=rows["normal_limit"].map(_f) * factor,
    )
    ok = rows[rows["px"].map(math.isfinite) & rows["py"].map(math.isfinite)]
    xlo, xhi = _range(list(ok["px"]) or [0.0, 1.0])
    ylo, yhi = _range(list(ok["py"]) + [v for v in rows["plim"] if math.isfinite(v)])
    ylabel = f"{label} ({unit})" if unit else f"{label} (ratio)"
    parts, X, Y = _frame(
        w, h, ml, mr, mt, mb, xlo, xhi, ylo, yhi, "years since first visit", ylabel
    )
    direction = next((d for d in rows["limit_direction"] if d), "")
    # the band: from each line's limit to the abnormal edge of the plot, as a step per visit
    for (nerve, side), g in rows.groupby(["nerve", "side"], sort=True):
        g = g[g["plim"].map(math.isfinite) & g["px"].map(math.isfinite)].sort_values("px")
        if not len(g) or direction not in ("lower", "upper"):
            continue
        edge = ylo if direction == "lower" else yhi
        lims = sorted(set(g["plim"]))
        for lim in lims:
            y0, y1 = sorted((Y(lim), Y(edge)))
            parts.append(
                f"<rect{attrs(class_='lim-band', data_nerve=nerve, data_side=side)}"
                f' data-limit="{lim!r}" x="{ml}" y="{_num(y0)}" width="{_num(w - ml - mr)}"'
                f' height="{_num(y1 - y0)}"><title>{esc(nerve)} {esc(side)}: {direction} limit'
                f" {lim:g} {esc(unit)}</title></rect>"
            )
    for k, ((nerve, side), g) in enumerate(ok.groupby(["nerve", "side"], sort=True)):
        g = g.sort_values("px")
        name = f"{nerve} {side}"
        pts = " ".join(f"{_num(X(x))},{_num(Y(y))}" for x, y in zip(g["px"], g["py"], strict=True))
        parts.append(f"<g{attrs(class_=f'series s{k % 6}', data_nerve=nerve, data_side=side)}>")
        parts.append(f'<polyline class="traj" points="{pts}"/>')
        for r in g.itertuples(index=False):
            red = (nerve, side, r.variable, int(r.visit)) in flagged
            a = attrs(
                class_="visit red-flag" if red else "visit",
                cx=_num(X(r.px)),
                cy=_num(Y(r.py)),
                r=5 if red else 3.5,
                data_exam=r.exam_id,
                data_visit=r.visit,
                data_days=r.days_since_first,
                data_value=r.value,
                data_y=repr(r.py),
            )
            tip = f"{name}, visit {r.visit} ({r.px:.2f} y): {r.py:g} {unit}"
            parts.append(
                f"<circle{a}><title>{esc(tip + (' (red flag)' if red else ''))}</title></circle>"
            )
        parts.append(
            f'<text class="tick" x="{w - mr + 4}" y="{_num(Y(g["py"].iloc[-1]) + 3)}">'
            f"{esc(name)}</text></g>"
        )
    if not len(ok):
        parts.append(
            f'<text class="lbl-s" x="{w / 2}" y="{h / 2}" text-anchor="middle">no data</text>'
        )
    return Markup(
        _svg_open(w, h, f"{label} against years since the first visit", cls="chart followup")
        + "".join(parts)
        + "</svg>"
    )


def subject_charts(traj: pd.DataFrame, subject: dict) -> Markup:
    """Every variable of one subject's trajectories (rows of ``trajectories.csv``)."""
    flagged = flagged_points(traj, subject)
    out = []
    for (modality, variable), rows in traj.groupby(["modality", "variable"], sort=False):
        unit, factor = display_unit(modality, rows["unit"].iloc[0])
        label = _LABELS.get(variable, variable)
        fig = _chart(rows, label=label, unit=unit, factor=factor, flagged=flagged)
        out.append(
            f"<figure{attrs(data_variable=variable, data_modality=modality)}>"
            f"<figcaption>{esc(label)} ({esc(modality)})</figcaption>{fig}</figure>"
        )
    return Markup('<div class="charts">' + "".join(out) + "</div>")


def _years(days) -> str:
    v = _f(days)
    return f"{v / DAYS_PER_YEAR:.2f}" if math.isfinite(v) else ""


def cohort_rows(subjects: pd.DataFrame) -> list[dict]:
    """Subjects with >= 2 exams, red-flag subjects first, then by pseudonym."""
    s = subjects[subjects["n_exams"].map(_f) >= 2]
    recs = s.to_dict("records")
    return sorted(recs, key=lambda r: (r.get("sensory_red_flag") != "True", r["subject_id"]))


def cohort_body(subjects: pd.DataFrame, pages: dict[str, str]) -> Markup:
    """The cohort table of follow-up subjects (links relative to the report folder)."""
    head = [
        "subject",
        "exams",
        "follow-up (years)",
        "red flag",
        "red flag at (years)",
        "first pattern",
        "last pattern",
    ]
    rows = []
    for r in cohort_rows(subjects):
        sid = r["subject_id"]
        red = r.get("sensory_red_flag") == "True"
        flag = (
            "yes" if red else ("no" if r.get("red_flag_evaluable") == "True" else "not evaluable")
        )
        rows.append(
            [
                (Markup(f"<a{attrs(href=pages[sid])}>{esc(sid)}</a>"), {"data_sort": sid}),
                (r.get("n_exams", ""), {"class_": "num"}),
                (_years(r.get("followup_days")), {"class_": "num"}),
                (flag, {"class_": "abn" if red else None}),
                (_years(r.get("red_flag_days")), {"class_": "num"}),
                r.get("first_pattern", ""),
                r.get("last_pattern", ""),
            ]
        )
    return table(head, rows, sortable=True, id_="followup")


def subject_body(subject: dict, traj: pd.DataFrame, exam_pages: dict[str, str]) -> Markup:
    """Body of one subject's follow-up page (links relative to ``followup/``)."""
    sid = subject["subject_id"]
    red = subject.get("sensory_red_flag") == "True"
    visits = (
        traj[["visit", "exam_id", "days_since_first"]]
        .drop_duplicates("exam_id")
        .sort_values("visit", key=lambda v: v.map(_f))
    )
    rows = []
    for r in visits.itertuples(index=False):
        href = exam_pages.get(r.exam_id)
        link = Markup(f"<a{attrs(href='../' + href)}>{esc(r.exam_id)}</a>") if href else r.exam_id
        rows.append(
            [(r.visit, {"class_": "num"}), (_years(r.days_since_first), {"class_": "num"}), link]
        )
    flag = (
        f"red flag at {_years(subject.get('red_flag_days'))} years (marked in red)"
        if red
        else (
            "no red flag"
            if subject.get("red_flag_evaluable") == "True"
            else "red flag not evaluable"
        )
    )
    return Markup(
        '<header class="top"><p><a href="../index.html">index</a> · '
        '<a href="../followup.html">follow-up cohort</a></p>'
        f"<h1>Follow-up of {esc(sid)}</h1>"
        f"<p{attrs(class_='banner' if red else 'muted')}>{subject.get('n_exams', '')} exams over "
        f"{_years(subject.get('followup_days'))} years; pattern "
        f"{esc(subject.get('first_pattern', ''))} -> {esc(subject.get('last_pattern', ''))}; "
        f"{esc(flag)} "
        f"({esc(subject.get('red_flag_rule', ''))}).</p></header>"
        "<h2>Visits</h2>"
        + table(["visit", "years since first visit", "exam"], rows)
        + "<h2>Trajectories</h2>"
        '<p class="note">One line per nerve and side; the shaded band is the abnormal side of '
        "each visit's normal limit; amplitudes of motor responses in mV, sensory in µV.</p>"
        + subject_charts(traj, subject)
    )


def followup_pages(
    trajectories: pd.DataFrame, subjects: pd.DataFrame, exam_pages: dict[str, str], page
) -> dict[str, str]:
    """Page path (relative to the report folder) -> HTML: one per subject with >= 2 exams
    and, when there is one, the cohort page ``followup.html``; ``page(title, body)`` wraps."""
    if subjects.empty or "n_exams" not in subjects:
        return {}
    recs = cohort_rows(subjects)
    if not recs:
        return {}
    by_subject = trajectories.groupby("subject_id", sort=False).indices if len(trajectories) else {}
    names = {r["subject_id"]: followup_page_name(r["subject_id"]) for r in recs}
    out = {}
    for r in recs:
        idx = by_subject.get(r["subject_id"])
        traj = trajectories.iloc[idx] if idx is not None else trajectories.iloc[0:0]
        if traj.empty:
            traj = pd.DataFrame(
                columns=["visit", "exam_id", "days_since_first", "modality", "variable"]
            )
        out[names[r["subject_id"]]] = page(
            f"Follow-up {r['subject_id']}", subject_body(r, traj, exam_pages)
        )
    n_red = sum(r.get("sensory_red_flag") == "True" for r in recs)
    body = Markup(
        '<header class="top"><p><a href="index.html">index</a></p><h1>Follow-up cohort</h1>'
        f'<p class="muted">{len(recs)} subject(s) with two or more exams, {n_red} with the '
        "sensory red flag (listed first). Intervals in years since each subject's first "
        "visit; no dates.</p></header>" + cohort_body(subjects, names)
    )
    out[COHORT_PAGE] = page("Follow-up cohort", body)
    return out
