"""``ncsproc report``: a static, self-contained HTML review report of an extract run.

``build_report(results, out)`` writes ``out/index.html`` (the exams, sortable; cohort plots;
failures; provenance) and one page per exam, ``out/exams/<name>.html`` (pattern and its
evidence, criteria, the nerves, segments and sites tables with values outside the normal
limits highlighted, every study's traces drawn the clinical way with their markers, QC flags,
failures, and how to correct a marker). Pages need nothing else: inline SVG, style and script,
no network; they work from a file system or any web server. Conventions:
``formats/report.md``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .._version import __version__
from ..vocab import PATTERNS
from .data import (
    WARNING_FLAGS,
    ReportError,
    Results,
    TraceView,
    load_results,
    num,
)
from .followup import COHORT_PAGE, followup_pages
from .html import Markup, attrs, esc, page, table, tag_badge
from .layout import MARKER_LETTERS, MARKERS, NO_RESPONSE_GAIN, format_gain
from .svg import (
    OVERRIDE_COLUMNS,
    bar_chart,
    histogram_chart,
    lane_order,
    override_line,
    scatter_chart,
    trace_figure,
)

__all__ = ["build_report", "ReportResult", "exam_page_name"]

MARKER_FILE = ".ncsproc-report"
SET_NAMES = {
    "efns_pns_2010": "EFNS/PNS 2010",
    "ean_pns_2021": "EAN/PNS 2021",
    "efns_pns_2010_sensory": "EFNS/PNS 2010 sensory",
    "ean_pns_2021_sensory": "EAN/PNS 2021 sensory",
}
MOTOR_NERVES = ("median", "ulnar", "peroneal", "tibial")
LEVEL_RANK = {
    "definite": 1,
    "strongly_supportive": 1,
    "probable": 2,
    "weakly_supportive": 2,
    "possible": 3,
    "none": 9,
}
"""Order of the criteria levels when the index is sorted by a criteria set: strongest first,
``none`` last (an unknown level sorts between, by name)."""
MARKER_NAMES = {
    "onset": "onset",
    "peak": "negative peak",
    "end": "end of the EFNS duration (last negative lobe back at baseline)",
    "f_onset": "F-wave onset",
}


@dataclass
class ReportResult:
    """What :func:`build_report` wrote."""

    out: Path
    index: Path
    pages: dict[str, Path] = field(default_factory=dict)
    followup_pages: dict[str, Path] = field(default_factory=dict)
    n_traces: int = 0
    n_figures: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{len(self.pages)} exam page(s), {self.n_figures} trace figure(s) of "
            f"{self.n_traces} trace(s) in {self.seconds:.1f} s"
        )


def exam_page_name(exam_id: str) -> str:
    """File name of an exam's page (relative to the report folder): ``exams/<slug>-<hash>.html``.

    The slug keeps letters, digits, ``_`` and ``-`` of the exam id (anything else, ``/`` and
    ``..`` included, becomes ``-``); the hash (SHA-256 of the id, 10 hex digits) keeps ids that
    share a slug apart. The name never leaves the ``exams/`` folder.
    """
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", exam_id).strip("-_")[:48] or "exam"
    digest = hashlib.sha256(exam_id.encode("utf-8")).hexdigest()[:10]
    return f"exams/{slug}-{digest}.html"


# --------------------------------------------------------------------------- helpers


def _fnum(text) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except (TypeError, ValueError):
        return math.nan


def _num_cell(text, extra_cls: str = "") -> tuple:
    v = _fnum(text)
    a = {"class_": ("num " + extra_cls).strip()}
    if math.isfinite(v):
        a["data_sort"] = repr(v)
    return (text, a)


def _json(text):
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


# Display of a value by the name of its quantity (a table column or a criterion's
# ``value_name``): (suffix, unit, decimals). Decimals are those of the tables (1 us, 0.01 m/s,
# 0.01 uV), except percentages (1 decimal).
_QUANTITIES = (
    ("_pct_uln", "%", 1),
    ("_pct_lln", "%", 1),
    ("_pct", "%", 1),
    ("_uvms", "µV·ms", 2),
    ("_m_s", "m/s", 2),
    ("_ms", "ms", 3),
    ("_uv", "µV", 2),
    ("_mv", "mV", 3),
    ("_mm", "mm", 1),
    ("_hz", "Hz", 1),
    ("_db", "dB", 1),
)


def quantity(name: str) -> tuple[str, int | None]:
    """``(unit, decimals)`` of a quantity named like the tables' columns (``dml_pct_uln`` ->
    ``("%", 1)``, ``distal_duration_ms`` -> ``("ms", 3)``); ``("", None)`` when unknown."""
    name = str(name or "").lower()
    for suffix, unit, nd in _QUANTITIES:
        if name.endswith(suffix):
            return unit, nd
    return "", None


def _no_minus_zero(s: str) -> str:
    return s[1:] if s.startswith("-") and not s.strip("-0.") else s


def format_value(name: str, value) -> str:
    """A measured value for display: the decimals and unit of its quantity (``235.95464...``
    of ``dml_pct_uln`` -> ``"236.0 %"``); 4 significant digits for a quantity without a unit
    (``tli``); text that is not a number (``True``, empty) unchanged."""
    v = value if isinstance(value, float) else _fnum(value)
    if isinstance(value, bool) or not math.isfinite(v):
        return "" if value is None else str(value)
    unit, nd = quantity(name)
    if nd is None:
        text = f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
        return _no_minus_zero(text)
    return f"{_no_minus_zero(f'{v:.{nd}f}')} {unit}"


def format_threshold(name: str, value) -> str:
    """A threshold (a constant of the rules) as written, with the unit of its quantity:
    ``150.0`` of ``dml_pct_uln`` -> ``"150 %"``."""
    v = value if isinstance(value, float) else _fnum(value)
    if isinstance(value, bool) or not math.isfinite(v):
        return "" if value is None else str(value)
    unit, _ = quantity(name)
    return f"{v:g}" + (f" {unit}" if unit else "")


def _value_cell(name: str, text, *, threshold: bool = False) -> tuple:
    """A numeric table cell shown formatted, with the exact table text in its tooltip."""
    shown = (format_threshold if threshold else format_value)(name, text)
    v = _fnum(text)
    a = {"class_": "num"}
    if math.isfinite(v):
        a["data_sort"] = repr(v)
        if shown != str(text):
            a["title"] = str(text)
    return (shown, a)


def _badge(text: str, cls: str = "", title: str | None = None) -> Markup:
    return Markup(f"<span{attrs(class_=('badge ' + cls).strip(), title=title)}>{esc(text)}</span>")


def _pattern_badge(pattern: str) -> Markup:
    cls = f"pattern pattern-{pattern}" if pattern in PATTERNS else "pattern"
    return _badge(pattern.replace("_", " ") if pattern else "—", cls)


def _level_rank(level: str) -> str:
    """Sort key of a criteria level (``data-sort``): its rank, then its name."""
    if not level:
        return ""
    return f"{LEVEL_RANK.get(level, 5)} {level}"


def _criteria_sets(exams: pd.DataFrame) -> list[str]:
    return [
        c
        for c in exams.columns
        if f"{c}_evidence" in exams.columns and f"{c}_status" in exams.columns
    ]


# --------------------------------------------------------------------------- evidence


def _evidence_item(item) -> Markup:
    """One evidence entry as a sentence (criterion values) or a generic key/value list."""
    if isinstance(item, dict) and {"measured", "op", "threshold"} <= set(item):
        study = item.get("study", "")
        crit = item.get("criterion", "")
        value = item.get("value", "")
        return Markup(
            f"{esc(study)}: <b>{esc(crit)}</b> — {esc(value)} "
            f"{_evidence_number(value, item['measured'])} {esc(item['op'])} "
            f"{esc(_fmt_threshold(value, item['threshold']))} "
            f'{tag_badge(item.get("status"))} <span class="muted">{esc(item.get("source", ""))}'
            "</span>"
        )
    if isinstance(item, dict):
        return Markup("; ".join(f"{esc(k)}: {esc(_fmt(v))}" for k, v in item.items()))
    return esc(_fmt(item))


def _evidence_number(name: str, measured) -> Markup:
    """A measured value of the evidence, formatted, with the exact value in its tooltip."""
    if isinstance(measured, (int, float)) and not isinstance(measured, bool):
        shown = format_value(name, float(measured))
        return Markup(f"<span{attrs(class_='val', title=repr(measured))}>{esc(shown)}</span>")
    return esc(_fmt(measured))


def _fmt_threshold(name: str, threshold) -> str:
    if isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
        return format_threshold(name, float(threshold))
    return _fmt(threshold)


def _clause(cl: dict) -> Markup:
    head = esc(cl.get("rule", ""))
    nerves = cl.get("nerves") or []
    other = cl.get("other_nerves") or []
    bits = [
        f"<b>{head}</b> {tag_badge(cl.get('status'))} "
        f'<span class="muted">{esc(cl.get("source", ""))}</span>'
    ]
    if nerves:
        bits.append(f" — nerves: {esc(', '.join(map(str, nerves)))}")
    if other:
        bits.append(f"; other nerves: {esc(', '.join(map(str, other)))}")
    items = "".join(f"<li>{_evidence_item(e)}</li>" for e in cl.get("evidence") or [])
    return Markup("".join(bits) + (f'<ul class="evidence">{items}</ul>' if items else ""))


def _was_badge(exam: dict, col: str, badge) -> str:
    """ " (before review: <badge>)" when the review changed the exam's ``col``."""
    was = _before_review(exam, col)
    if was is None:
        return ""
    return (
        f' <span class="muted was">(before review: '
        f"{badge(exam.get(f'original_{col}', '')) if was != 'none' else 'none'})</span>"
    )


def _pattern_section(exam: dict) -> Markup:
    ev = _json(exam.get("pattern_evidence", ""))
    pattern = exam.get("pattern", "")
    out = [
        f'<h2 id="pattern">Pattern: {_pattern_badge(pattern)}'
        f"{_was_badge(exam, 'pattern', _pattern_badge)}</h2>"
    ]
    rules = exam.get("rules_version", "")
    out.append(
        f"<p>Rule <b>{esc(exam.get('pattern_rule', '') or (ev or {}).get('rule', ''))}"
        f"</b> of <code>{esc(rules)}</code> {tag_badge(exam.get('rules_status'))}"
        + (f" — source {esc(ev.get('source', ''))}" if isinstance(ev, dict) else "")
        + "</p>"
    )
    if not isinstance(ev, dict):
        out.append('<p class="muted">No pattern evidence in exams.csv.</p>')
        return Markup("".join(out))
    if ev.get("when"):
        out.append(f"<p>It holds because: <code>{esc(ev['when'])}</code></p>")
    counts = ev.get("counts") or {}
    if counts:
        items = []
        for name, c in counts.items():
            c = c if isinstance(c, dict) else {"count": c}
            nerves = ", ".join(map(str, c.get("nerves") or []))
            studies = ", ".join(map(str, c.get("studies") or []))
            items.append(
                f"<li><code>{esc(name)}</code> = <b>{esc(c.get('count', ''))}</b>"
                + (f": {esc(nerves)}" if nerves else "")
                + (f' <span class="muted">({esc(studies)})</span>' if studies else "")
                + "</li>"
            )
        out.append('<h3>Counts</h3><ul class="evidence">' + "".join(items) + "</ul>")
    crits = ev.get("criteria") or {}
    if crits:
        items = []
        for name, c in crits.items():
            sub = ""
            if isinstance(c, dict):
                clauses = c.get("clauses") or []
                sub = "".join(f"<li>{_clause(cl)}</li>" for cl in clauses if isinstance(cl, dict))
                rest = {k: v for k, v in c.items() if k != "clauses"}
                if rest:
                    sub += f"<li>{_evidence_item(rest)}</li>"
            else:
                sub = f"<li>{esc(_fmt(c))}</li>"
            items.append(f'<li><code>{esc(name)}</code><ul class="evidence">{sub}</ul></li>')
        out.append(
            '<h3>Criteria used by the rule</h3><ul class="evidence">' + "".join(items) + "</ul>"
        )
    th = ev.get("thresholds") or {}
    if th:
        rows = []
        for name, t in th.items():
            t = t if isinstance(t, dict) else {"value": t}
            rows.append(
                [
                    Markup(f"<code>{esc(name)}</code>"),
                    _fmt(t.get("value", "")),
                    Markup(tag_badge(t.get("status"))),
                    t.get("source", ""),
                ]
            )
        out.append("<h3>Thresholds</h3>" + table(["threshold", "value", "tag", "source"], rows))
    extra = {
        k: v
        for k, v in ev.items()
        if k not in ("counts", "criteria", "thresholds", "when", "rule", "source", "status")
    }
    if extra:
        out.append(
            '<ul class="evidence">'
            + "".join(f"<li>{esc(k)}: {esc(_fmt(v))}</li>" for k, v in extra.items())
            + "</ul>"
        )
    out.append(
        "<details><summary>pattern_evidence (raw JSON)</summary><pre>"
        f"{esc(json.dumps(ev, indent=1, sort_keys=True))}</pre></details>"
    )
    return Markup("".join(out))


def _criteria_section(exam: dict, sets: list[str], criteria: pd.DataFrame) -> Markup:
    out = ['<h2 id="criteria">Criteria</h2>']
    for s in sets:
        level = exam.get(s, "")
        out.append(
            f"<h3>{esc(SET_NAMES.get(s, s))}: {_badge(level or '—')} "
            f'{tag_badge(exam.get(f"{s}_status"))} <span class="muted">'
            f"{esc(exam.get(f'{s}_version', ''))}</span></h3>"
        )
        ev = _json(exam.get(f"{s}_evidence", ""))
        if isinstance(ev, list) and ev:
            out.append(
                '<p>Reached through:</p><ul class="evidence">'
                + "".join(
                    f"<li>{_clause(cl) if isinstance(cl, dict) else esc(_fmt(cl))}</li>"
                    for cl in ev
                )
                + "</ul>"
            )
        elif level in ("", "none"):
            out.append('<p class="muted">No level reached.</p>')
        rows = (
            criteria[criteria["criteria_set"] == s]
            if "criteria_set" in criteria
            else criteria.iloc[0:0]
        )
        if not rows.empty:
            cols = [
                c
                for c in (
                    "criterion",
                    "study",
                    "value_name",
                    "value",
                    "op",
                    "threshold",
                    "state",
                    "reason",
                    "status",
                    "source",
                    "label",
                )
                if c in rows
            ]
            met = rows[rows.get("state", "") == "met"] if "state" in rows else rows.iloc[0:0]

            def cell(r, c):
                if c in ("value", "threshold"):
                    return _value_cell(r.get("value_name", ""), r[c], threshold=c == "threshold")
                return Markup(tag_badge(r[c])) if c == "status" else r[c]

            def body(df, cols=cols):
                return [[cell(r, c) for c in cols] for r in df.to_dict("records")]

            if not met.empty:
                out.append("<p>Criteria met:</p>" + table(cols, body(met), sortable=True))
            out.append(
                f"<details><summary>all {len(rows)} criteria rows of "
                f"{esc(SET_NAMES.get(s, s))} (criteria.csv)</summary>"
                + table(cols, body(rows), sortable=True)
                + "</details>"
            )
    if not sets:
        out.append('<p class="muted">No criteria sets in exams.csv.</p>')
    return Markup("".join(out))


# --------------------------------------------------------------------------- nerves table

_VALUE_OF = {
    "dml": "dml_ms",
    "cv": "cv_m_s",
    "f_min": "f_min_ms",
    "snap_peak": "snap_peak_ms",
    "scv": "scv_m_s",
    "distal_duration": "distal_duration_ms",
    "snap_amp": "snap_amp_uv",
    "snap_onset": "snap_onset_ms",
    "f_mean": "f_mean_ms",
    "f_max": "f_max_ms",
    "f_persistence": "f_persistence_pct",
    "distal_amp": "distal_amp_uv",
}
_NERVE_COLUMNS = (
    ("dml_ms", "DML ms"),
    ("distal_amp_uv", "distal CMAP mV"),
    ("distal_duration_ms", "distal duration ms"),
    ("cv_m_s", "CV m/s"),
    ("tli", "TLI"),
    ("residual_latency_ms", "residual latency ms"),
    ("min_cv_m_s", "min CV m/s"),
    ("max_cb_pct", "max CB %"),
    ("max_td_pct", "max TD %"),
    ("snap_onset_ms", "SNAP onset ms"),
    ("snap_peak_ms", "SNAP peak ms"),
    ("snap_amp_uv", "SNAP µV"),
    ("scv_m_s", "SCV m/s"),
    ("f_min_ms", "F min ms"),
    ("f_mean_ms", "F mean ms"),
    ("f_max_ms", "F max ms"),
    ("f_persistence_pct", "F persistence %"),
    ("f_chronodispersion_ms", "F chronodisp. ms"),
)


_DISPLAY_SCALE = {"distal_amp_uv": (1e-3, 2)}
"""Columns shown in another unit than the table's: CMAP amplitudes in mV (as clinicians read
them; nerves.csv holds µV), with the table's text in the cell's tooltip."""


def _shown(col: str, text) -> str:
    """The text of a nerves.csv cell as displayed (CMAP amplitudes in mV)."""
    scale = _DISPLAY_SCALE.get(col)
    v = _fnum(text)
    if scale is None or not math.isfinite(v):
        return "" if text is None else str(text)
    return _no_minus_zero(f"{v * scale[0]:.{scale[1]}f}")


def _nerve_cell(col: str, text) -> tuple:
    shown = _shown(col, text)
    cell = _num_cell(shown)
    if shown != text:
        cell[1]["data_sort"] = repr(_fnum(text))
        cell[1]["title"] = f"{col} {text}"
    return cell


def _limit_comparisons(nerves: pd.DataFrame) -> list[tuple[str, str, str]]:
    """``(pct column, direction, base)`` of every normal-limit comparison in the table."""
    out = []
    for c in nerves.columns:
        for suffix, direction in (("_pct_uln", "uln"), ("_pct_lln", "lln")):
            if c.endswith(suffix):
                out.append((c, direction, c[: -len(suffix)]))
    return out


def _value_column(base: str, modality: str, columns) -> str | None:
    if base == "amp":
        name = "snap_amp_uv" if modality == "sensory" else "distal_amp_uv"
        return name if name in columns else None
    name = _VALUE_OF.get(base)
    if name and name in columns:
        return name
    for c in columns:
        if c.startswith(base + "_") and not re.search(r"_(pct_)?(uln|lln)", c):
            return c
    return None


def _limit_tags(text: str) -> dict[str, str]:
    out = {}
    for part in (text or "").split():
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out


def nerve_cells(row: dict, comparisons, columns) -> dict[str, dict]:
    """Per value column of one nerves row: its limit comparison (pct, direction, limit,
    tag, abnormal), from the ``*_pct_uln`` / ``*_pct_lln`` columns."""
    modality = row.get("modality", "")
    tags = _limit_tags(row.get("limits_status", ""))
    out: dict[str, dict] = {}
    for pct_col, direction, base in comparisons:
        pct = _fnum(row.get(pct_col))
        vcol = _value_column(base, modality, columns)
        if vcol is None or not math.isfinite(pct):
            continue
        limit_col = next((c for c in columns if c.startswith(f"{base}_{direction}_")), None)
        measure = ("snap_amp" if modality == "sensory" else "distal_amp") if base == "amp" else base
        abnormal = pct > 100.0 if direction == "uln" else pct < 100.0
        out[vcol] = {
            "pct": row.get(pct_col),
            "direction": direction.upper(),
            "limit": row.get(limit_col, "") if limit_col else "",
            "tag": tags.get(measure, ""),
            "abnormal": abnormal,
        }
    return out


def _before_review(r: dict, col: str) -> str | None:
    """The machine value of a column the review changed in this row (``reviewed_columns`` and
    ``original_<col>`` of ``extract --overrides``), as displayed; "none" where the machine had
    no value; None where the review did not change it."""
    if col not in (r.get("reviewed_columns") or "").split(";"):
        return None
    return _shown(col, r.get(f"original_{col}", "")) or "none"


def _with_original(cell, r: dict, col: str):
    """A cell with the value before the review under it, "(was ...)", and in its tooltip."""
    was = _before_review(r, col)
    if was is None:
        return cell
    content, a = cell if isinstance(cell, tuple) else (cell, {})
    a = dict(a)
    a["title"] = "; ".join(t for t in (a.get("title"), f"before review: {was}") if t)
    a["class_"] = (a.get("class_", "") + " changed").strip()
    return (Markup(f'{esc(content)}<span class="pct was">(was {esc(was)})</span>'), a)


def _nerves_table(nerves: pd.DataFrame, sets: list[str]) -> Markup:
    if nerves.empty:
        return Markup('<p class="muted">No nerves rows.</p>')
    comps = _limit_comparisons(nerves)
    cols = [
        (c, label)
        for c, label in _NERVE_COLUMNS
        if c in nerves
        and (
            (nerves[c] != "").any()
            or (f"original_{c}" in nerves and (nerves[f"original_{c}"] != "").any())
        )
    ]
    head = [
        "study",
        "status",
        *(label for _, label in cols),
        "limits",
        *(f"{SET_NAMES.get(s, s)} met" for s in sets if f"{s}_met" in nerves),
    ]
    rows = []
    for r in nerves.to_dict("records"):
        cmp_ = nerve_cells(r, comps, nerves.columns)
        reviewed = r.get("reviewed_traces", "")
        badge = (
            (
                " "
                + _badge(
                    "reviewed",
                    "reviewed",
                    title="values from reviewed traces: " + reviewed.replace(";", ", "),
                )
            )
            if reviewed
            else ""
        )
        cells = [
            Markup(
                f'{esc(r.get("study", ""))}{badge}<span class="pct">'
                f"{esc(r.get('modality', ''))}</span>"
            ),
            _badge(
                r.get("study_status", ""), "" if r.get("study_status", "ok") == "ok" else "warn"
            ),
        ]
        for c, _ in cols:
            text = r.get(c, "")
            info = cmp_.get(c)
            if info and text:
                pct = f"{_fnum(info['pct']):.0f} % {info['direction']}"
                lim = f" ({_shown(c, info['limit'])})" if info["limit"] else ""
                shown = _shown(c, text)
                content = Markup(
                    f'{esc(shown)}<span class="pct">{esc(pct)}{esc(lim)}'
                    f"{tag_badge(info['tag'], 'status of this limit')}</span>"
                )
                title = [f"{c} {text}"] if shown != text else []
                if info["abnormal"]:
                    title.insert(0, "outside the normal limit")
                a = {
                    "class_": "num abn" if info["abnormal"] else "num",
                    "data_sort": repr(_fnum(text)),
                    "title": "; ".join(title) or None,
                }
                cells.append(_with_original((content, a), r, c))
            else:
                cells.append(_with_original(_nerve_cell(c, text), r, c))
        cells.append(
            Markup(
                "".join(
                    f"{esc(k)} {tag_badge(v)} "
                    for k, v in _limit_tags(r.get("limits_status", "")).items()
                )
            )
            if r.get("limits_status")
            else r.get("limits_missing", "")
        )
        for s in sets:
            if f"{s}_met" in nerves:
                cells.append(_with_original(r.get(f"{s}_met", ""), r, f"{s}_met"))
        rows.append(cells)
    legend = Markup(
        '<p class="note">Highlighted: outside the normal limit (above 100 % of the upper '
        "limit ULN, or below 100 % of the lower limit LLN). Under each value: its percentage of "
        f"the limit, the limit, and the limit's status tag {tag_badge('C')} confirmed, "
        f"{tag_badge('S')} secondary source, {tag_badge('U')} unconfirmed (not a settled "
        f"clinical limit), {tag_badge('P')} proposal. Limits: "
        f"<code>{esc(', '.join(sorted(set(nerves.get('limits_version', pd.Series([]))) - {''})))}"
        "</code>.</p>"
    )
    return table(head, rows, sortable=True) + legend


_REVIEW_UNITS = {"uV": "µV", "uVms": "µV·ms", "uv": "µV", "uvms": "µV·ms"}


def _reviews_table(reviews: pd.DataFrame) -> Markup:
    """reviews.csv of the exam: each recomputed value, original beside reviewed, with its unit;
    a status row shows the statuses before and after."""
    rows = []
    for r in reviews.to_dict("records"):
        units = _REVIEW_UNITS.get(r.get("units", ""), r.get("units", ""))
        if r.get("variable") == "status":
            orig, new = r.get("original_status", ""), r.get("reviewed_status", "")
            o_cell, n_cell = orig or r.get("original", ""), new or r.get("reviewed", "")
        else:
            o_cell, n_cell = _num_cell(r.get("original", "")), _num_cell(r.get("reviewed", ""))
            if not r.get("reviewed", "") and r.get("original", ""):
                n_cell = ("none", {"class_": "num"})
        rows.append(
            [
                Markup(f"<code>{esc(r.get('trace_id', ''))}</code>"),
                r.get("marker", ""),
                r.get("variable", ""),
                units,
                o_cell,
                n_cell,
                r.get("reviewer", ""),
                r.get("reason", ""),
                r.get("line", ""),
            ]
        )
    note = Markup(
        '<p class="note">One row per value an override recomputed '
        "(<code>reviews.csv</code>); <code>line</code> is the line of "
        "<code>overrides.csv</code>. The nerves, criteria and pattern above are "
        "computed from the reviewed values.</p>"
    )
    return (
        table(
            [
                "trace id",
                "marker",
                "variable",
                "unit",
                "original",
                "reviewed",
                "reviewer",
                "reason",
                "line",
            ],
            rows,
            sortable=True,
        )
        + note
    )


def _simple_table(df: pd.DataFrame, columns, *, numeric=(), sortable=True) -> Markup:
    cols = [c for c in columns if c in df]
    if df.empty or not cols:
        return Markup('<p class="muted">None.</p>')
    rows = [
        [
            _num_cell(r[c])
            if c in numeric or c.endswith(("_ms", "_uv", "_mm", "_pct", "_m_s", "_uvms", "_db"))
            else r[c]
            for c in cols
        ]
        for r in df.to_dict("records")
    ]
    return table(cols, rows, sortable=sortable)


# --------------------------------------------------------------------------- traces


def _study_groups(views: list[TraceView]) -> list[tuple[str, str, list[TraceView]]]:
    groups: dict[tuple[str, str], list[TraceView]] = {}
    order = {"motor": 0, "sensory": 1, "fwave": 2}
    for v in views:
        groups.setdefault((v.row.get("study", ""), v.modality), []).append(v)
    keys = sorted(groups, key=lambda k: (k[0], order.get(k[1], 3), k[1]))
    return [(s, m, groups[(s, m)]) for s, m in keys]


def _copy_buttons(view: TraceView) -> Markup:
    if not view.trace_id:
        return Markup("")
    markers = [m for m in MARKERS if m != "f_onset" or view.modality == "fwave"]
    out = []
    for m in markers:
        t = view.markers.get(m) if view.status == "ok" else None
        title = f"copy a ready overrides.csv line for the {MARKER_NAMES[m]}" + (
            f" ({t:.3f} ms)" if t is not None else " (fill in time_ms)"
        )
        a = attrs(
            type="button",
            class_="cp",
            data_line=override_line(view.trace_id, m, t),
            title=title,
            aria_label=f"{title}, trace {view.trace_id}",
        )
        out.append(f"<button{a}>{MARKER_LETTERS[m]}</button>")
    return Markup("".join(out))


def _amp_cell(text, in_mv: bool) -> tuple:
    v = _fnum(text)
    if not in_mv or not math.isfinite(v):
        return _num_cell(text)
    return (
        f"{v * 1e-3:.2f}",
        {"class_": "num", "data_sort": repr(v), "title": f"amplitude_uv {text}"},
    )


def _trace_table(lanes: list[TraceView], extra: list[TraceView]) -> Markup:
    views = [*lanes, *extra]
    # CMAPs (motor, and the M wave of F-wave sweeps) in mV, SNAPs in µV
    in_mv = bool(views) and all(v.modality in ("motor", "fwave") for v in views)
    head = [
        "#",
        "site",
        "trace id",
        "status",
        "onset ms",
        "peak ms",
        "end ms",
        "F ms",
        "amplitude mV" if in_mv else "amplitude µV",
        "neg. duration ms",
        "EFNS duration ms",
        "QC flags",
        "review",
    ]
    rows, ras = [], []
    for i, v in enumerate(views):
        r = v.row
        ok = v.status == "ok"

        def mcell(m, v=v, ok=ok):
            t = v.markers.get(m)
            text = f"{t:.3f}" if (t is not None and ok) else ""
            orig = v.originals.get(m)
            if m in v.reviewed:
                text = text or "none"
                extra_txt = f" (was {orig:.3f})" if orig is not None else ""
                return (
                    Markup(
                        f"{esc(text)} {_badge('reviewed', 'reviewed')}"
                        f'<span class="pct">{esc(extra_txt)}</span>'
                    ),
                    {"class_": "num", "data_sort": "" if text == "none" else text},
                )
            return _num_cell(text)

        if v.qc_flags is None:
            qc = (
                Markup('<span class="muted">not available</span>')
                if v.verified is None
                else Markup(
                    f'<span class="muted" title="{esc(v.mismatch)}">not shown: '
                    "re-measurement differs from the tables</span>"
                )
            )
        else:
            qc = Markup(
                ", ".join(
                    f"<span{attrs(class_='abn' if f in WARNING_FLAGS else None)}>{esc(f)}</span>"
                    for f in v.qc_flags
                )
                or "—"
            )
        site = r.get("stim_site", "")
        if v.modality == "fwave":
            site = f"{site} · stimulus {v.record + 1}"
        rows.append(
            [
                str(i + 1) if i < len(lanes) else "—",
                site,
                Markup(f"<code>{esc(v.trace_id or '—')}</code>"),
                _badge(v.status, "" if v.status == "ok" else "warn"),
                mcell("onset"),
                mcell("peak"),
                mcell("end"),
                mcell("f_onset"),
                _amp_cell(r.get("amplitude_uv", ""), in_mv),
                _num_cell(r.get("neg_duration_ms", "")),
                _num_cell(r.get("total_duration_ms", "")),
                qc,
                (_copy_buttons(v), {"class_": "rv"}),
            ]
        )
        ras.append({"data_trace": v.trace_id or None})
    return table(head, rows, row_attrs=ras, cls="traces")


def _features_line(study: str, nerves: pd.DataFrame, comps) -> Markup:
    rows = nerves[nerves["study"] == study] if "study" in nerves else nerves.iloc[0:0]
    if rows.empty:
        return Markup("")
    r = rows.iloc[0].to_dict()
    cmp_ = nerve_cells(r, comps, nerves.columns)
    bits = []
    for c, label in _NERVE_COLUMNS:
        text = r.get(c, "")
        if not text:
            continue
        info = cmp_.get(c)
        s = f"{label} {_shown(c, text)}"
        if info:
            s += f" ({_fnum(info['pct']):.0f} % {info['direction']})"
            bits.append(f"<span{attrs(class_='abn' if info['abnormal'] else None)}>{esc(s)}</span>")
        else:
            bits.append(esc(s))
    reviewed = r.get("reviewed_traces", "")
    if bits and reviewed:
        bits.append(
            f'{_badge("reviewed", "reviewed")} <span class="muted">these values '
            f"use reviewed markers of {esc(reviewed.replace(';', ', '))}</span>"
        )
    return Markup("<p>" + " · ".join(bits) + "</p>") if bits else Markup("")


def _traces_section(
    views: list[TraceView], nerves: pd.DataFrame, results: Results, counter: list[int]
) -> tuple[Markup, int]:
    out = ['<h2 id="traces">Traces</h2>']
    if results.traces_note:
        out.append(f'<p class="banner">{esc(results.traces_note)}</p>')
    comps = _limit_comparisons(nerves) if not nerves.empty else []
    n_fig = 0
    for study, modality, group in _study_groups(views):
        counter[0] += 1
        sid = f"s{counter[0]}"
        first = group[0].row
        out.append(f'<section class="study" id="{sid}">')
        out.append(
            f'<h3>{esc(study)} <span class="muted">({esc(modality)}, '
            f"{esc(first.get('nerve', ''))} {esc(first.get('side', ''))}, recorded at "
            f"{esc(first.get('record_site', ''))})</span>"
            + (f" {_badge('reviewed', 'reviewed')}" if any(v.reviewed for v in group) else "")
            + "</h3>"
        )
        if modality != "fwave":
            out.append(_features_line(study, nerves, comps))
        fig = trace_figure(group, f"f{counter[0]}")
        drawn = fig.lanes if fig else []
        drawn_ids = {id(v) for v in drawn}
        undrawn = [v for v in lane_order(group) if id(v) not in drawn_ids]
        if fig is not None:
            n_fig += 1
            basis = {
                "response": "the largest response fits",
                "signal": "no measured response: fitted to the signal, at least "
                + format_gain(NO_RESPONSE_GAIN.get(modality, 0.0)),
                "late responses": "fitted to the late responses, M wave clipped",
            }[fig.scale.basis]
            out.append(
                f'<figure class="traces">{fig.svg}<figcaption>{esc(format_gain(fig.scale.gain))}'
                f" ({esc(basis)}), {fig.ms_per_div:g} ms/div, negative up, stacked "
                + ("in stimulus order" if modality == "fwave" else "distal (top) to proximal")
                + ". Markers: <b>O</b> onset, <b>P</b> negative peak, <b>E</b> end of the EFNS "
                "duration"
                + (", <b>F</b> F-wave onset" if modality == "fwave" else "")
                + (
                    "; dashed line: baseline level (responses.csv baseline_uv)."
                    if results.has_table_qc
                    else "; dashed line: baseline level (where the re-measurement matches the "
                    "tables)."
                )
                + " Click a marker to copy a ready overrides.csv line.</figcaption></figure>"
            )
        out.append(_trace_table(drawn, undrawn))
        out.append(
            '<div class="ovr"><label>overrides.csv line '
            '<textarea class="ovr-out" rows="1" spellcheck="false" '
            'placeholder="click a marker or an O/P/E/F button"></textarea></label> '
            '<span class="ovr-status" role="status"></span></div>'
        )
        out.append("</section>")
    if not views:
        out.append('<p class="muted">No traces in responses.csv for this exam.</p>')
    return Markup("".join(out)), n_fig


def _howto(results_name: str) -> Markup:
    header = ",".join(OVERRIDE_COLUMNS)
    return Markup(
        '<h2 id="howto">How to correct a marker</h2><ol>'
        "<li>Click the wrong marker on a trace (or its <b>O</b>/<b>P</b>/<b>E</b>/<b>F</b> "
        "button in the table under the figure). A ready line "
        f"<code>{esc(header)}</code> is copied to the clipboard and shown in the box under "
        "the figure (copy it from there if the browser refuses the clipboard, e.g. from a "
        "file).</li>"
        f"<li>Paste it into <code>overrides.csv</code> (first line: <code>{esc(header)}</code>; "
        "keep the file outside the input folders, e.g. next to the results)."
        " Set <code>time_ms</code> to the corrected time in ms from the stimulus, and fill in "
        "<code>reviewer</code> and <code>reason</code>. <code>marker</code> is one of "
        "<code>onset</code>, <code>peak</code> (negative peak), <code>end</code> (return to "
        "baseline of the last negative lobe) and <code>f_onset</code> (F-wave onset).</li>"
        "<li>Rerun the extraction with the overrides, then the report:<pre>"
        f"ncsproc extract INPUTS... --out {esc(results_name)} --overrides overrides.csv\n"
        f"ncsproc report {esc(results_name)} --out REPORT</pre>"
        "The measures, features, criteria and pattern that depend on a corrected marker are "
        "recomputed; reviewed markers are drawn in orange with the original marker ghosted.</li>"
        "</ol>"
    )


# --------------------------------------------------------------------------- pages


@dataclass
class _ExamSummary:
    exam_id: str
    page: str
    row: dict
    n_traces: int = 0
    n_failures: int = 0
    qc: Counter = field(default_factory=Counter)
    qc_warn_traces: int = 0
    qc_unverified: int = 0
    reviewed: int = 0


def _exam_page(
    exam_id: str, views: list[TraceView], results: Results, sets: list[str], counter: list[int]
) -> tuple[str, _ExamSummary, int]:
    exams = results.table("exams")
    exam_rows = exams[exams["exam_id"] == exam_id]
    exam = exam_rows.iloc[0].to_dict() if not exam_rows.empty else {}
    nerves = results.rows("nerves", exam_id)
    errors = results.rows("errors", exam_id)
    name = exam_page_name(exam_id)
    summary = _ExamSummary(exam_id, name, exam, n_traces=len(views), n_failures=len(errors))
    for v in views:
        if v.qc_flags is not None:
            summary.qc.update(v.qc_flags)
            summary.qc_warn_traces += bool(WARNING_FLAGS & set(v.qc_flags))
        elif v.verified is False:
            summary.qc_unverified += 1
        summary.reviewed += bool(v.reviewed)

    body = [
        f'<header class="top"><nav><a href="../index.html">&larr; all exams</a></nav>'
        f"<h1>Exam <code>{esc(exam_id)}</code></h1></header>"
    ]
    facts = [
        f"<div>subject <code>{esc(exam.get('subject_id', ''))}</code></div>",
        f"<div>pattern {_pattern_badge(exam.get('pattern', ''))}"
        f"{_was_badge(exam, 'pattern', _pattern_badge)}</div>",
    ]
    for s in sets:
        facts.append(
            f"<div>{esc(SET_NAMES.get(s, s))} {_badge(exam.get(s, '') or '—')}"
            f"{_was_badge(exam, s, lambda v: _badge(v or '—'))}</div>"
        )
    facts.append(f"<div>{len(views)} traces</div>")
    if summary.qc_warn_traces:
        facts.append(f"<div>{_badge(f'{summary.qc_warn_traces} with QC warnings', 'warn')}</div>")
    if len(errors):
        facts.append(f"<div>{_badge(f'{len(errors)} failure(s)', 'fail')}</div>")
    if summary.reviewed:
        facts.append(f"<div>{_badge(f'{summary.reviewed} reviewed trace(s)', 'reviewed')}</div>")
    body.append('<div class="summary">' + "".join(facts) + "</div>")
    links = [("pattern", "pattern"), ("criteria", "criteria")] if exam else []
    links += [
        ("nerves", "nerves"),
        ("segments", "segments"),
        ("sites", "sites"),
        ("traces", "traces"),
    ]
    if not results.rows("reviews", exam_id).empty:
        links.append(("reviews", "reviewed values"))
    links += [("failures", "failures"), ("howto", "correct a marker")]
    body.append(
        '<nav class="muted">'
        + " · ".join(f'<a href="#{a}">{esc(text)}</a>' for a, text in links)
        + "</nav>"
    )
    if summary.qc_unverified:
        example = next((v.mismatch for v in views if v.verified is False), "")
        body.append(
            f'<p class="banner bad">For {summary.qc_unverified} trace(s) the '
            "re-measurement of the stored samples with the run's parameters differs "
            "from the tables (the kernels may have changed since the run; e.g. "
            f"{esc(example)}): their QC flags and baselines are not shown. Markers "
            "and values are the tables'.</p>"
        )
    if exam:
        body.append(_pattern_section(exam))
        body.append(_criteria_section(exam, sets, results.rows("criteria", exam_id)))
    else:
        body.append(
            '<p class="banner bad">This exam has no row in exams.csv: it could not be '
            "processed (see the failures below).</p>"
        )
    body.append('<h2 id="nerves">Nerves (studies)</h2>')
    body.append(_nerves_table(nerves, sets))
    body.append('<h2 id="segments">Segments</h2>')
    body.append(
        _simple_table(
            results.rows("segments", exam_id),
            [
                "study",
                "distal_site",
                "proximal_site",
                "distance_mm",
                "cv_m_s",
                "amp_drop_pct",
                "area_drop_pct",
                "duration_increase_pct",
                "segment_status",
            ],
        )
    )
    body.append('<h2 id="sites">Sites</h2>')
    body.append(
        _simple_table(
            results.rows("sites", exam_id),
            [
                "study",
                "stim_site",
                "site_status",
                "n_repeats",
                "trace",
                "distance_mm",
                "onset_ms",
                "peak_ms",
                "amplitude_uv",
                "p2p_uv",
                "neg_duration_ms",
                "total_duration_ms",
                "neg_area_uvms",
                "snr_db",
                "reviewed",
            ],
        )
    )
    traces_html, n_fig = _traces_section(views, nerves, results, counter)
    body.append(traces_html)
    reviews = results.rows("reviews", exam_id)
    if not reviews.empty:
        body.append('<h2 id="reviews">Reviewed values</h2>')
        body.append(_reviews_table(reviews))
    body.append('<h2 id="failures">Failures</h2>')
    body.append(_simple_table(errors, ["source_file", "error", "message", "stage"]))
    body.append(_howto(results.root.name or "RESULTS"))
    body.append(_footer(results))
    html_text = page(
        f"Exam {exam_id} — ncsproc review",
        Markup("".join(body)),
        generator=f"ncsproc {__version__}",
    )
    return html_text, summary, n_fig


def _footer(results: Results) -> Markup:
    s = results.settings or {}
    sha = str(results.provenance.get("settings_sha256", s.get("sha256", "")))[:12]
    return Markup(
        f"<footer>ncsproc {esc(__version__)} review report of an extract run by "
        f"ncsproc {esc(results.provenance.get('ncsproc_version', '?'))}, settings "
        f"<code>{esc(s.get('name', '?'))}</code> (<code>{esc(sha)}</code>). Values "
        "and markers are those of the run's tables.</footer>"
    )


def _charts(results: Results, pages: dict[str, str]) -> Markup:
    exams = results.table("exams")
    nerves = results.table("nerves")
    patterns = exams.get("pattern", pd.Series([], dtype=str)).tolist()
    counts = Counter(patterns)
    labels = [p for p in PATTERNS if counts.get(p)] + sorted(set(counts) - set(PATTERNS))
    pattern_of = dict(zip(exams.get("exam_id", []), patterns, strict=False))
    out = ['<div class="charts">']
    out.append(
        "<figure><figcaption>Exams per pattern</figcaption>"
        + bar_chart(
            [lab or "(none)" for lab in labels],
            [counts[lab] for lab in labels],
            title="exams per pattern",
            classes=[f"pt-{lab}" if lab in PATTERNS[:4] else "pt-other" for lab in labels],
            shown=[(lab or "(none)").replace("_", " ") for lab in labels],
        )
        + "</figure>"
    )
    out.append("</div>")
    legend = (
        '<p class="legend">'
        + "".join(
            f'<span><i class="k-{p}"></i>{esc(p.replace("_", " "))}</span>'
            for p in (*PATTERNS[:4], "other")
        )
        + "</p>"
    )
    if not nerves.empty and {"nerve", "dml_ms", "modality"} <= set(nerves.columns):
        motor = nerves[nerves["modality"] == "motor"]
        nerve_names = [n for n in MOTOR_NERVES if n in set(motor["nerve"])] + sorted(
            set(motor["nerve"]) - set(MOTOR_NERVES)
        )
        for ycol, ylabel, what in (
            ("tli", "TLI (ratio)", "TLI vs DML"),
            ("cv_m_s", "CV (m/s)", "CV vs DML"),
        ):
            if ycol not in motor:
                continue
            out.append(f'<h3>{esc(what)} per nerve</h3>{legend}<div class="charts">')
            for nerve in nerve_names:
                rows = motor[motor["nerve"] == nerve]
                xs, ys = num(rows["dml_ms"]), num(rows[ycol])
                pts = []
                for r, x, y in zip(rows.to_dict("records"), xs, ys, strict=True):
                    p = pattern_of.get(r["exam_id"], "")
                    pts.append(
                        {
                            "x": x,
                            "y": y,
                            "cls": f"pt-{p}" if p in PATTERNS[:4] else "pt-other",
                            "title": f"{r['exam_id']} {r.get('study', '')}: DML {x:g} ms, "
                            f"{ylabel.split(' (')[0]} {y:g}"
                            + (" m/s" if ycol == "cv_m_s" else "")
                            + f" ({p})",
                            "href": pages.get(r["exam_id"]),
                        }
                    )
                n_pts = sum(math.isfinite(p["x"]) and math.isfinite(p["y"]) for p in pts)
                out.append(
                    f"<figure><figcaption>{esc(nerve)} ({n_pts} studies)</figcaption>"
                    + scatter_chart(pts, title=f"{what}, {nerve}", xlabel="DML (ms)", ylabel=ylabel)
                    + "</figure>"
                )
            out.append("</div>")
        sural = nerves[(nerves["nerve"] == "sural") & (nerves["modality"] == "sensory")]
        if not sural.empty and "snap_amp_uv" in sural:
            amps = num(sural["snap_amp_uv"])
            absent = int((sural.get("inexcitable", pd.Series([""] * len(sural))) == "True").sum())
            out.append(
                '<h3>Sural SNAP amplitude</h3><div class="charts"><figure>'
                f"<figcaption>sural SNAP, µV ({int(pd.notna(amps).sum())} measured, "
                f"{absent} absent)</figcaption>"
                + histogram_chart(
                    list(amps),
                    title="sural SNAP amplitude distribution",
                    xlabel="SNAP amplitude (µV)",
                    ylabel="sural studies",
                    extra=absent,
                )
                + "</figure></div>"
            )
    return Markup("".join(out))


def _index_page(
    results: Results,
    summaries: list[_ExamSummary],
    sets: list[str],
    title: str,
    notes: list[str],
    n_followup: int = 0,
) -> str:
    pages = {s.exam_id: s.page for s in summaries}
    errors = results.table("errors")
    n_traces = sum(s.n_traces for s in summaries)
    body = [
        f'<header class="top"><h1>{esc(title)}</h1><p class="muted">{len(summaries)} '
        f"exam(s), {n_traces} trace(s), {len(errors)} failure(s). Every value is read from "
        "the tables of one <code>ncsproc extract</code> run; click an exam for its traces "
        "with their markers.</p></header>"
    ]
    for n in notes:
        body.append(f'<p class="banner">{esc(n)}</p>')
    head = [
        "exam",
        "subject",
        "pattern",
        *(SET_NAMES.get(s, s) for s in sets),
        "traces",
        "failures",
        "QC warnings",
        "reviewed",
    ]
    rows = []
    for s in summaries:
        r = s.row
        warn_title = ", ".join(f"{k} x{v}" for k, v in sorted(s.qc.items())) or "no flags"
        if s.qc_unverified:
            warn_title += f"; {s.qc_unverified} trace(s) not verified"
        rows.append(
            [
                (Markup(f"<a{attrs(href=s.page)}>{esc(s.exam_id)}</a>"), {"data_sort": s.exam_id}),
                r.get("subject_id", ""),
                (_pattern_badge(r.get("pattern", "")), {"data_sort": r.get("pattern", "")}),
                *[(r.get(x, ""), {"data_sort": _level_rank(r.get(x, ""))}) for x in sets],
                (str(s.n_traces), {"class_": "num", "data_sort": str(s.n_traces)}),
                (
                    str(s.n_failures),
                    {
                        "class_": "num abn" if s.n_failures else "num",
                        "data_sort": str(s.n_failures),
                    },
                ),
                (
                    str(s.qc_warn_traces) + (" ?" if s.qc_unverified else ""),
                    {"class_": "num", "data_sort": str(s.qc_warn_traces), "title": warn_title},
                ),
                (str(s.reviewed), {"class_": "num", "data_sort": str(s.reviewed)}),
            ]
        )
    body.append("<h2>Exams</h2>")
    body.append(table(head, rows, sortable=True, id_="exams"))
    body.append(
        '<p class="note">Click a column header to sort. QC warnings: traces with a '
        f"flag among {esc(', '.join(sorted(WARNING_FLAGS)))} (the title of the cell "
        "counts every flag); '?' when some traces could not be verified.</p>"
    )
    body.append("<h2>Cohort</h2>")
    if n_followup:
        body.append(
            f'<p><a href="{COHORT_PAGE}">Follow-up</a>: {n_followup} subject(s) with two or '
            "more exams, their trajectories and the sensory red flag.</p>"
        )
    body.append(_charts(results, pages))
    body.append("<h2>Failures</h2>")
    if errors.empty:
        body.append('<p class="muted">None: every file and exam was processed.</p>')
    else:
        rows = []
        for r in errors.to_dict("records"):
            e = r.get("exam_id", "")
            rows.append(
                [
                    (Markup(f"<a{attrs(href=pages[e])}>{esc(e)}</a>") if e in pages else e),
                    r.get("source_file", ""),
                    r.get("error", ""),
                    r.get("message", ""),
                    r.get("stage", ""),
                ]
            )
        body.append(
            table(["exam", "source_file", "error", "message", "stage"], rows, sortable=True)
        )
    body.append(_provenance(results))
    body.append(_footer(results))
    return page(title, Markup("".join(body)), generator=f"ncsproc {__version__}")


def _provenance(results: Results) -> Markup:
    p, s = results.provenance, results.settings or {}
    rows = [
        ["ncsproc version of the run", p.get("ncsproc_version", "")],
        ["report made by", f"ncsproc {__version__}"],
        ["settings", f"{s.get('name', '')} ({s.get('source', '')})"],
        ["settings SHA-256", p.get("settings_sha256", s.get("sha256", ""))],
    ]
    lim, rules = s.get("limits") or {}, s.get("rules") or {}
    if lim:
        rows.append(["normal limits", f"{lim.get('label', '')} ({lim.get('sha256', '')[:12]})"])
    if rules:
        rows.append(["pattern rules", f"{rules.get('label', '')} ({rules.get('sha256', '')[:12]})"])
    for c in s.get("criteria") or []:
        rows.append(["criteria", f"{c.get('label', '')} ({c.get('sha256', '')[:12]})"])
    rows.append(["date precision", p.get("date_precision", s.get("date_precision", ""))])
    rows.append(["pseudonym key id", p.get("pseudonym_key_id", "") or "none"])
    rows.append(
        ["source files", f"{len(p.get('sources') or [])} (SHA-256 of each in provenance.json)"]
    )
    out = ["<h2>Provenance</h2>", table(["item", "value"], rows)]
    measure = s.get("measure") or {}
    if measure:
        names = sorted({k for v in measure.values() if isinstance(v, dict) for k in v})
        mods = [m for m in measure if isinstance(measure[m], dict)]
        prow = [[n, *[_fmt(measure[m].get(n, "")) for m in mods]] for n in names]
        out.append(
            "<details><summary>measurement parameters (SI units)</summary>"
            + table(["parameter", *mods], prow)
            + "</details>"
        )
    return Markup("".join(out))


# --------------------------------------------------------------------------- entry point


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ReportError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER_FILE).exists():
        raise ReportError(
            f"{out}: folder is not empty and holds no ncsproc report; choose an "
            "empty or new folder for --out (a report folder is rewritten)"
        )
    (out / "exams").mkdir(parents=True, exist_ok=True)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def build_report(
    results_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    remeasure: bool = True,
    title: str | None = None,
    progress=None,
) -> ReportResult:
    """Build the static HTML review report of an ``ncsproc extract`` output folder.

    Parameters
    ----------
    results_dir : path-like
        The ``--out`` folder of ``ncsproc extract`` (``responses.csv``, ``exams.csv``, ...,
        ``cohort.h5``).
    out_dir : path-like
        Report folder (created). It must be new, empty, or an earlier report (which is
        rewritten: pages of exams no longer in the results are removed).
    remeasure : bool
        Only for results written before ``responses.csv`` had ``trace_id``, ``qc_flags`` and
        ``baseline_uv`` (otherwise the QC flags and baselines are the table's and nothing is
        re-measured): re-measure each exam's stored samples with the run's parameters to show
        QC flags and baselines, for the traces where the re-measurement equals the tables
        (default True). False: no QC flags, no baselines for such results.
    title : str, optional
        Title of the index page.
    progress : callable, optional
        Called with ``(done, total)`` after each exam page.

    Returns
    -------
    ReportResult

    Raises
    ------
    ReportError
        Missing or unreadable tables, or an ``out_dir`` that is not a report folder.
    """
    t_start = time.perf_counter()
    results = load_results(results_dir)
    out = Path(out_dir)
    if out.resolve() == results.root.resolve():
        raise ReportError(f"{out}: is the results folder; give the report its own --out folder")
    _prepare_out(out)
    sets = _criteria_sets(results.table("exams"))
    exam_ids = results.exam_ids()
    result = ReportResult(out=out, index=out / "index.html")
    summaries = []
    counter = [0]
    written = set()
    for k, (exam_id, views) in enumerate(results.exam_traces(exam_ids, remeasure=remeasure)):
        text, summary, n_fig = _exam_page(exam_id, views, results, sets, counter)
        path = out / summary.page
        _write(path, text)
        written.add(path.name)
        result.pages[exam_id] = path
        result.n_traces += len(views)
        result.n_figures += n_fig
        summaries.append(summary)
        if progress is not None:
            progress(k + 1, len(exam_ids))
    for stale in (out / "exams").glob("*.html"):
        if stale.name not in written:
            stale.unlink()
    fu = followup_pages(
        results.table("trajectories"),
        results.table("subjects"),
        {s.exam_id: s.page for s in summaries},
        lambda t, body: page(t, body, generator=f"ncsproc {__version__}"),
    )
    if fu:
        (out / "followup").mkdir(exist_ok=True)
    for name, text in fu.items():
        _write(out / name, text)
        if name != COHORT_PAGE:
            result.followup_pages[name] = out / name
    fu_dir = out / "followup"
    for stale in fu_dir.glob("*.html") if fu_dir.is_dir() else ():
        if f"followup/{stale.name}" not in fu:
            stale.unlink()
    if COHORT_PAGE not in fu and (out / COHORT_PAGE).is_file():
        (out / COHORT_PAGE).unlink()
    notes = []
    if results.traces_note:
        notes.append(results.traces_note)
    n_unverified = sum(s.qc_unverified for s in summaries)
    if n_unverified:
        notes.append(
            f"{n_unverified} trace(s): the re-measurement of the stored samples "
            "differs from the tables (kernels changed since the run?): no QC flags or "
            "baselines for them; rerun extract to refresh the tables."
        )
    if not remeasure and not results.has_table_qc:
        notes.append(
            "Built without re-measurement: no QC flags and no baselines are shown "
            "(these results predate the qc_flags and baseline_uv columns of "
            "responses.csv; rerun extract to have them)."
        )
    result.notes = notes
    _write(
        result.index,
        _index_page(
            results,
            summaries,
            sets,
            title or "ncsproc review report",
            notes,
            len(result.followup_pages),
        ),
    )
    _write(
        out / MARKER_FILE,
        json.dumps({"content": "ncsproc-report/1", "ncsproc_version": __version__}) + "\n",
    )
    result.seconds = time.perf_counter() - t_start
    return result
