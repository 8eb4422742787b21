"""Hand-written inline SVG: the clinical trace figures and the cohort charts.

A trace figure states its axis transform on the ``<svg>`` element, so that anyone (and the
tests) can map a drawn x position back to milliseconds::

    t_ms = data-t0-ms + (x - data-x0) / data-px-per-ms

Each marker is a ``<g class="mk mk-<marker>">`` with ``data-trace``, ``data-marker``,
``data-time-ms`` (the table's value) and a ``<line>`` drawn at that time; a reviewed marker
has the class ``reviewed`` and its original time is drawn as a ``ghost`` marker.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .html import Markup, attrs, esc
from .layout import (
    MARKER_LETTERS,
    MARKERS,
    StudyScale,
    decimate,
    format_gain,
    format_volts,
    nice_ceil,
    study_scale,
    time_divisions,
)

__all__ = [
    "override_line",
    "trace_figure",
    "TraceFigure",
    "bar_chart",
    "scatter_chart",
    "histogram_chart",
    "lane_order",
    "OVERRIDE_COLUMNS",
]

OVERRIDE_COLUMNS = ("trace_id", "marker", "time_ms", "reviewer", "reason")
"""Columns of ``overrides.csv`` (one corrected marker per line)."""

LEFT, RIGHT, TOP, BOTTOM = 150.0, 14.0, 6.0, 34.0


def override_line(trace_id: str, marker: str, time_ms: float | None) -> str:
    """A ready ``overrides.csv`` line ``trace_id,marker,time_ms,,`` (CSV-quoted as needed);
    the reviewer fills in (or corrects) ``time_ms``, then ``reviewer`` and ``reason``."""
    buf = io.StringIO()
    t = "" if time_ms is None or not math.isfinite(time_ms) else f"{time_ms:.3f}"
    csv.writer(buf, lineterminator="").writerow([trace_id, marker, t, "", ""])
    return buf.getvalue()


def lane_order(views) -> list:
    """Traces of one study top to bottom: distal to proximal (by distance, unknown last),
    then by source file and record (F-wave sweeps in stimulus order)."""

    def key(v):
        d = v.distance_mm
        fwave = v.modality == "fwave"
        return (
            0 if fwave else (0 if math.isfinite(d) else 1),
            0.0 if fwave or not math.isfinite(d) else d,
            v.row.get("source_file", ""),
            v.record,
        )

    return sorted(views, key=key)


@dataclass
class TraceFigure:
    """One study's figure: the SVG and what the caption says about it."""

    svg: Markup
    scale: StudyScale
    ms_per_div: float
    lanes: list  # TraceView per lane, top to bottom


def _num(x: float, nd: int = 2) -> str:
    s = f"{x:.{nd}f}"
    return "0" if s in ("-0", "-0.0", "-0.00", "-0.000") else s


def trace_figure(views: Sequence, fig_id: str, *, width: float = 960.0) -> TraceFigure | None:
    """Draw the traces of one study the clinical way, with their markers.

    Parameters
    ----------
    views : sequence of TraceView
        The study's traces with samples (``t_ms``, ``v``); traces without samples are left
        out. All of one modality.
    fig_id : str
        Prefix of the element ids (unique in the page).
    width : float
        Width in px (the figure scales down with the page).

    Returns
    -------
    TraceFigure or None
        None when no trace has samples.
    """
    lanes = [v for v in lane_order(views) if v.v is not None and v.v.size]
    if not lanes:
        return None
    modality = lanes[0].modality
    refs = [v.baseline if v.baseline is not None else float(np.nanmedian(v.v)) for v in lanes]
    amps = [_cell(v.row.get("amplitude_uv")) * 1e-6 for v in lanes]
    p2p = [_cell(v.row.get("p2p_uv")) * 1e-6 for v in lanes]
    f_on = [v.markers.get("f_onset", math.nan) for v in lanes]
    scale = study_scale(
        modality,
        [v.v for v in lanes],
        [v.t_ms for v in lanes],
        refs,
        amplitudes_v=amps,
        p2p_v=p2p,
        f_ms=f_on,
    )
    div_px = 15.0 if modality == "fwave" else 20.0
    lane_px = scale.lane_divs * div_px
    t0 = min(0.0, min(float(v.t_ms[0]) for v in lanes))
    t1 = max(float(v.t_ms[-1]) for v in lanes)
    if t1 <= t0:
        t1 = t0 + 1.0
    pw = width - LEFT - RIGHT
    ppm = pw / (t1 - t0)
    ms_div = time_divisions(t0, t1)
    height = TOP + lane_px * len(lanes) + BOTTOM

    def X(t):
        return LEFT + (t - t0) * ppm

    out: list[str] = []
    aria = (
        f"{lanes[0].row.get('study', '')}: {len(lanes)} traces, {format_gain(scale.gain)}, "
        f"{ms_div:g} ms/div, negative up"
    )
    w, h = _num(width, 0), _num(height, 0)
    svg_attrs = attrs(
        xmlns="http://www.w3.org/2000/svg",
        class_="traces",
        id=fig_id,
        width=w,
        height=h,
        viewBox=f"0 0 {w} {h}",
        role="img",
        aria_label=aria,
        # the axis transform: t_ms = data-t0-ms + (x - data-x0) / data-px-per-ms
        data_x0=_num(LEFT, 3),
        data_t0_ms=repr(t0),
        data_px_per_ms=repr(ppm),
        data_gain_v_per_div=repr(scale.gain),
        data_ms_per_div=repr(ms_div),
        data_modality=modality,
    )
    out.append(f"<svg{svg_attrs}>")
    # grid: vertical lines at each time division, horizontal at each division of each lane
    grid = []
    k0 = math.ceil(t0 / ms_div - 1e-9)
    k1 = math.floor(t1 / ms_div + 1e-9)
    bottom = TOP + lane_px * len(lanes)
    ticks = []
    for k in range(k0, k1 + 1):
        t = k * ms_div
        x = X(t)
        cls = "grid0" if k == 0 else "grid"
        grid.append(
            f'<line class="{cls}" x1="{_num(x)}" y1="{_num(TOP)}" x2="{_num(x)}" '
            f'y2="{_num(bottom)}"/>'
        )
        ticks.append(
            f'<text class="tick" x="{_num(x)}" y="{_num(bottom + 13)}" '
            f'text-anchor="middle">{_num(t, 0) if ms_div >= 1 else f"{t:g}"}</text>'
        )
    n_div = int(round(scale.lane_divs))
    for i in range(len(lanes)):
        top = TOP + i * lane_px
        for d in range(n_div + 1):
            y = top + d * div_px
            cls = "grid0" if d == 0 and i else "grid"
            grid.append(
                f'<line class="{cls}" x1="{_num(LEFT)}" y1="{_num(y)}" '
                f'x2="{_num(LEFT + pw)}" y2="{_num(y)}"/>'
            )
    out.append('<g class="grids">' + "".join(grid) + "</g>")
    out.append(
        '<g class="ticks">'
        + "".join(ticks)
        + f'<text class="tick" x="{_num(LEFT + pw)}" y="{_num(bottom + 27)}" '
        f'text-anchor="end">ms from the stimulus ({ms_div:g} ms/div)</text></g>'
    )
    out.append(
        "<defs>"
        + "".join(
            f'<clipPath id="{esc(fig_id)}-c{i}">'
            f'<rect x="{_num(LEFT)}" y="{_num(TOP + i * lane_px)}" '
            f'width="{_num(pw)}" height="{_num(lane_px)}"/></clipPath>'
            for i in range(len(lanes))
        )
        + "</defs>"
    )

    for i, (view, ref) in enumerate(zip(lanes, refs, strict=True)):
        top = TOP + i * lane_px
        y_ref = top + scale.ref_div * div_px

        def Y(v, y_ref=y_ref, ref=ref):
            return y_ref + (v - ref) / scale.gain * div_px

        ok = view.status == "ok"
        t_d, v_d = decimate(view.t_ms, view.v, int(pw))
        pts = _points(X(t_d), Y(v_d))
        tid = view.trace_id or ""
        out.append(f"<g{attrs(class_='lane', data_trace=tid, data_status=view.status)}>")
        out.append(f"<title>{esc(_lane_title(view))}</title>")
        out.append(
            f'<polyline class="sig{"" if ok else " off"}" clip-path="url(#{esc(fig_id)}'
            f'-c{i})" points="{pts}"/>'
        )
        if view.baseline is not None and "baseline_slope" not in (view.qc_flags or []):
            out.append(
                f'<line class="base" x1="{_num(LEFT)}" y1="{_num(y_ref)}" '
                f'x2="{_num(LEFT + pw)}" y2="{_num(y_ref)}"/>'
            )
        # labels in the left margin
        label, sub = _lane_labels(view)
        out.append(
            f'<text class="lbl" x="6" y="{_num(top + min(13, lane_px - 3))}">'
            f"{esc(_clip(label, 22))}</text>"
        )
        if sub and lane_px >= 30:
            out.append(
                f'<text class="lbl-s" x="6" y="{_num(top + 26)}">{esc(_clip(sub, 26))}</text>'
            )
        if view.reviewed and lane_px >= 44:
            out.append(
                f'<text class="lbl-s" x="6" y="{_num(top + 39)}">reviewed: '
                f"{esc(', '.join(sorted(view.reviewed)))}</text>"
            )
        if not ok:
            out.append(
                f'<text class="nr" x="{_num(LEFT + pw - 4)}" y="{_num(top + 12)}" '
                f'text-anchor="end">{esc(view.status.replace("_", " "))}</text>'
            )
        if i == 0:  # calibration bar: one division of the study's gain
            xc = LEFT - 8
            out.append(
                f'<line class="cal" x1="{_num(xc)}" y1="{_num(y_ref)}" x2="{_num(xc)}" '
                f'y2="{_num(y_ref - div_px)}"/>'
                f'<text class="lbl-s" x="{_num(xc - 4)}" y="{_num(y_ref - 2)}" '
                f'text-anchor="end">{esc(format_volts(scale.gain))}</text>'
            )
        for marker in MARKERS:
            if marker in view.originals and marker in view.reviewed:
                out.append(
                    _marker(view, marker, view.originals[marker], X, top, lane_px, None, ghost=True)
                )
            t = view.markers.get(marker)
            if t is None or not ok:  # a trace without a response has no markers
                continue
            y_peak = None
            if marker == "peak" and view.baseline is not None:
                amp = _cell(view.row.get("amplitude_uv")) * 1e-6
                if math.isfinite(amp):
                    y_peak = Y(view.baseline - amp)
            out.append(_marker(view, marker, t, X, top, lane_px, y_peak, ghost=False))
        out.append("</g>")
    out.append("</svg>")
    return TraceFigure(Markup("".join(out)), scale, ms_div, lanes)


def _points(xs: np.ndarray, ys: np.ndarray) -> str:
    """SVG polyline points at 0.1 px (formatted in one C-level operation)."""
    xy = np.round(np.column_stack([xs, ys]), 1).ravel() + 0.0  # + 0.0: no "-0.0"
    return " ".join(["%.1f,%.1f"] * (xy.size // 2)) % tuple(xy.tolist())


def _marker(view, marker, t, X, top, lane_px, y_peak, *, ghost: bool) -> str:
    x = X(t)
    tid = view.trace_id or ""
    letter = MARKER_LETTERS[marker]
    reviewed = marker in view.reviewed and not ghost
    classes = f"mk mk-{marker}" + (" reviewed" if reviewed else "") + (" ghost" if ghost else "")
    if ghost:
        title = f"{marker} before review: {t:.3f} ms"
        a = attrs(
            class_=classes,
            data_trace=tid,
            data_marker=marker,
            data_time_ms=f"{t:.3f}",
            data_original="true",
        )
        letter = letter.lower()
    else:
        title = (
            f"{marker} {t:.3f} ms"
            + (" (reviewed)" if reviewed else "")
            + (": click to copy a ready overrides.csv line" if tid else "")
        )
        a = attrs(
            class_=classes,
            data_trace=tid,
            data_marker=marker,
            data_time_ms=f"{t:.3f}",
            data_line=override_line(tid, marker, t) if tid else None,
            tabindex="0" if tid else None,
            role="button" if tid else None,
            aria_label=f"{marker} {t:.3f} ms of {tid}",
        )
    dx = {"onset": -9, "peak": 2, "end": 2, "f_onset": 2}[marker]
    parts = [
        f"<g{a}><title>{esc(title)}</title>",
        f'<line x1="{x:.3f}" y1="{_num(top + 2)}" x2="{x:.3f}" y2="{_num(top + lane_px - 2)}"/>',
        f'<text x="{_num(x + dx)}" y="{_num(top + 10)}">{letter}</text>',
    ]
    if y_peak is not None and top <= y_peak <= top + lane_px:
        parts.append(f'<circle cx="{x:.3f}" cy="{_num(y_peak)}" r="3"/>')
    parts.append("</g>")
    return "".join(parts)


def _cell(text) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except (TypeError, ValueError):
        return math.nan


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _lane_labels(view) -> tuple[str, str]:
    if view.modality == "fwave":
        f = view.markers.get("f_onset")
        return f"stimulus {view.record + 1}", (f"F {f:.1f} ms" if f is not None else "no F wave")
    d = view.distance_mm
    sub = f"{d:.0f} mm" if math.isfinite(d) else "distance unknown"
    return str(view.row.get("stim_site", "")), sub


def _lane_title(view) -> str:
    parts = [
        view.trace_id or "(no trace id)",
        f"site {view.row.get('stim_site', '')}",
        f"status {view.status}",
    ]
    for m in MARKERS:
        if m in view.markers:
            parts.append(f"{m} {view.markers[m]:.3f} ms")
    if view.qc_flags:
        parts.append("QC: " + ", ".join(view.qc_flags))
    return "; ".join(parts)


# ---------------------------------------------------------------------------- cohort charts


def _ticks(lo: float, hi: float, n: int = 5, *, integer: bool = False) -> list[float]:
    """Ticks at a 1-2-5 step giving about ``n`` (at most ``n + 1``) of them over [lo, hi];
    ``integer``: a step of at least 1 (counts)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    step = nice_ceil((hi - lo) / (n + 2))
    while (hi - lo) / step > n + 1:
        step = nice_ceil(step * 1.01)  # the next step of the 1-2-5 sequence
    if integer:
        step = max(step, 1.0)
    k0, k1 = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    return [float(f"{k * step:.10g}") for k in range(k0, k1 + 1)]


def _range(values, pad=0.06) -> tuple[float, float]:
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if not v.size:
        return 0.0, 1.0
    lo, hi = float(v.min()), float(v.max())
    if hi == lo:
        lo, hi = lo - (abs(lo) * 0.1 or 1.0), hi + (abs(hi) * 0.1 or 1.0)
    span = hi - lo
    return lo - pad * span, hi + pad * span


def _frame(w, h, ml, mr, mt, mb, xlo, xhi, ylo, yhi, xlabel, ylabel, xticks=None, y_integer=False):
    pw, ph = w - ml - mr, h - mt - mb

    def X(x):
        return ml + (x - xlo) / (xhi - xlo) * pw

    def Y(y):
        return mt + ph - (y - ylo) / (yhi - ylo) * ph

    parts = [
        f'<rect x="{ml}" y="{mt}" width="{_num(pw)}" height="{_num(ph)}" fill="none" class="axis"/>'
    ]
    if xticks is None:
        for t in _ticks(xlo, xhi):
            parts.append(
                f'<line class="grid" x1="{_num(X(t))}" y1="{mt}" x2="{_num(X(t))}" '
                f'y2="{_num(mt + ph)}"/><text class="tick" x="{_num(X(t))}" '
                f'y="{_num(mt + ph + 12)}" text-anchor="middle">{t:g}</text>'
            )
    for t in _ticks(ylo, yhi, integer=y_integer):
        parts.append(
            f'<line class="grid" x1="{ml}" y1="{_num(Y(t))}" x2="{_num(ml + pw)}" '
            f'y2="{_num(Y(t))}"/><text class="tick" x="{ml - 4}" y="{_num(Y(t) + 3)}" '
            f'text-anchor="end">{t:g}</text>'
        )
    parts.append(
        f'<text class="lbl-s" x="{_num(ml + pw / 2)}" y="{h - 4}" '
        f'text-anchor="middle">{esc(xlabel)}</text>'
    )
    parts.append(
        f'<text class="lbl-s" transform="translate(11 {_num(mt + ph / 2)}) rotate(-90)" '
        f'text-anchor="middle">{esc(ylabel)}</text>'
    )
    return parts, X, Y


def _svg_open(w, h, label, cls="chart", **data) -> str:
    a = attrs(
        xmlns="http://www.w3.org/2000/svg",
        class_=cls,
        width=w,
        height=h,
        viewBox=f"0 0 {w} {h}",
        role="img",
        aria_label=label,
        **data,
    )
    return f"<svg{a}><title>{esc(label)}</title>"


def bar_chart(
    labels: Sequence[str],
    counts: Sequence[int],
    *,
    title: str,
    width=360,
    height=220,
    classes: Sequence[str] | None = None,
    shown: Sequence[str] | None = None,
) -> Markup:
    """Vertical bars with their counts (e.g. exams per pattern); ``shown``: the labels as
    drawn (default ``labels``, which ``data-label`` keeps)."""
    ml, mr, mt, mb = 38, 8, 10, 62
    ymax = max([*counts, 1])
    parts, X, Y = _frame(
        width,
        height,
        ml,
        mr,
        mt,
        mb,
        0,
        max(len(labels), 1),
        0,
        ymax * 1.12,
        "",
        "exams",
        xticks=[],
        y_integer=True,
    )
    n = max(len(labels), 1)
    bw = (width - ml - mr) / n
    for i, (lab, c) in enumerate(zip(labels, counts, strict=True)):
        text = shown[i] if shown is not None else lab
        x = ml + i * bw + bw * 0.15
        y = Y(c)
        cls = f"bar {classes[i]}" if classes else "bar"
        parts.append(
            f"<g{attrs(class_='bars', data_label=lab, data_count=c)}>"
            f"<title>{esc(text)}: {c}</title>"
            f'<rect class="{esc(cls)}" x="{_num(x)}" y="{_num(y)}" '
            f'width="{_num(bw * 0.7)}" height="{_num(Y(0) - y)}"/>'
            f'<text class="tick" x="{_num(x + bw * 0.35)}" y="{_num(y - 3)}" '
            f'text-anchor="middle">{c}</text>'
            f'<text class="tick" transform="translate({_num(x + bw * 0.35)} '
            f'{_num(Y(0) + 10)}) rotate(30)">{esc(_clip(text, 20))}</text></g>'
        )
    return Markup(_svg_open(width, height, title) + "".join(parts) + "</svg>")


def scatter_chart(
    points: Sequence[dict], *, title: str, xlabel: str, ylabel: str, width=300, height=230
) -> Markup:
    """Points ``{"x", "y", "cls", "title", "href"}`` (a point links to its exam page)."""
    ml, mr, mt, mb = 44, 8, 10, 32
    xs = [p["x"] for p in points]
    ys = [p["y"] for p in points]
    xlo, xhi = _range(xs)
    ylo, yhi = _range(ys)
    parts, X, Y = _frame(width, height, ml, mr, mt, mb, xlo, xhi, ylo, yhi, xlabel, ylabel)
    for p in points:
        if not (math.isfinite(p["x"]) and math.isfinite(p["y"])):
            continue
        dot = (
            f'<circle class="pt {esc(p.get("cls", "pt-other"))}" cx="{_num(X(p["x"]))}" '
            f'cy="{_num(Y(p["y"]))}" r="4"><title>{esc(p.get("title", ""))}</title></circle>'
        )
        if p.get("href"):
            dot = f"<a{attrs(href=p['href'])}>{dot}</a>"
        parts.append(dot)
    if not points:
        parts.append(
            f'<text class="lbl-s" x="{width / 2}" y="{height / 2}" '
            'text-anchor="middle">no data</text>'
        )
    return Markup(_svg_open(width, height, title) + "".join(parts) + "</svg>")


def histogram_chart(
    values: Sequence[float],
    *,
    title: str,
    xlabel: str,
    extra: int = 0,
    extra_label: str = "absent",
    ylabel: str = "count",
    width=360,
    height=220,
) -> Markup:
    """A histogram of values (1-2-5 bin width) and, apart, a bar of ``extra`` cases without
    a value (e.g. absent SNAPs)."""
    ml, mr, mt, mb = 38, 8, 10, 32
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if v.size:
        lo, hi = float(v.min()), float(v.max())
        step = nice_ceil(max(hi - lo, 1e-9) / 8) if hi > lo else nice_ceil(abs(hi) / 4 or 1)
        start = math.floor(lo / step) * step
        nb = max(1, int(math.floor((hi - start) / step)) + 1)
        edges = start + step * np.arange(nb + 1)
        counts = np.histogram(v, bins=edges)[0]
    else:
        edges, counts = np.array([0.0, 1.0]), np.array([0])
    gap = 1 if extra else 0
    nb = len(counts)
    ymax = max(int(counts.max(initial=0)), extra, 1)
    parts, X, Y = _frame(
        width,
        height,
        ml,
        mr,
        mt,
        mb,
        0,
        nb + gap * 2,
        0,
        ymax * 1.12,
        xlabel,
        ylabel,
        xticks=[],
        y_integer=True,
    )
    bw = (width - ml - mr) / (nb + gap * 2)
    for i, c in enumerate(counts):
        x = ml + i * bw
        a = attrs(
            class_="bins", data_lo=f"{edges[i]:g}", data_hi=f"{edges[i + 1]:g}", data_count=int(c)
        )
        parts.append(
            f"<g{a}>"
            f"<title>{edges[i]:g} to {edges[i + 1]:g}: {int(c)}</title>"
            f'<rect class="bar" x="{_num(x + 1)}" y="{_num(Y(c))}" '
            f'width="{_num(bw - 2)}" height="{_num(Y(0) - Y(c))}"/></g>'
        )
    for i in range(0, nb + 1, max(1, (nb + 1) // 6)):
        parts.append(
            f'<text class="tick" x="{_num(ml + i * bw)}" y="{_num(Y(0) + 12)}" '
            f'text-anchor="middle">{edges[i]:g}</text>'
        )
    if extra:
        x = ml + (nb + 1) * bw
        parts.append(
            f"<g{attrs(class_='bins', data_label=extra_label, data_count=extra)}>"
            f"<title>{esc(extra_label)}: {extra}</title>"
            f'<rect class="bar pt-other" x="{_num(x + 1)}" y="{_num(Y(extra))}" '
            f'width="{_num(bw - 2)}" height="{_num(Y(0) - Y(extra))}"/>'
            f'<text class="tick" x="{_num(x + bw / 2)}" y="{_num(Y(0) + 12)}" '
            f'text-anchor="middle">{esc(extra_label)}</text></g>'
        )
    return Markup(_svg_open(width, height, title) + "".join(parts) + "</svg>")
