"""``ncsproc plot``: one file's traces with their markers, to PNG or SVG (matplotlib).

The drawing follows the report's conventions (``formats/report.md``): ms from the stimulus on
x, negative up, one gain per study from the 1-2-5 sequence stated in V per division, traces
stacked distal to proximal (F-wave sweeps in stimulus order), markers O (onset), P (negative
peak), E (end of the EFNS duration: the last negative lobe back at baseline) and F
(F-wave onset) at the times :func:`ncsproc.measure` gives. Titles carry the study, nerve,
side and sites only: nothing identifying (no patient, subject, exam id or date).

matplotlib is used through its object API with an explicit Agg canvas (no pyplot, no display,
no global backend change).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .data import TraceView, marker_times
from .layout import MARKER_LETTERS, MARKERS, decimate, format_gain, study_scale, time_divisions
from .svg import lane_order

__all__ = ["plot", "plot_file", "plot_traces", "PlotResult"]

_COLOURS = {"onset": "#1b7f3b", "peak": "#c0392b", "end": "#1f5fbf", "f_onset": "#7b3fa0"}
_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


@dataclass
class PlotResult:
    """What :func:`plot_file` drew.

    Attributes
    ----------
    path : Path or None
        The file written.
    markers : pandas.DataFrame
        One row per drawn marker: ``trace``, ``marker``, ``time_ms`` (read back from the drawn
        line's x data), ``measured_ms`` (the measured time it was drawn from, exact: not
        rounded to the tables' 1 us) and ``gid`` (the id of its group in an SVG).
    measures : pandas.DataFrame or None
        The per-trace measures in clinical units (``ncsproc.tables.responses_table`` plus the
        ``trace`` id), None with ``measure=False``.
    gains : dict
        Study -> gain (V per division).
    n_traces : int
        Traces drawn (with or without markers).
    figure : matplotlib.figure.Figure
        The drawing (a notebook shows it when it is the cell's value).
    """

    path: Path | None
    markers: pd.DataFrame
    measures: pd.DataFrame | None = None
    gains: dict = field(default_factory=dict)
    n_traces: int = 0
    figure: object = None


def measured_markers(measures) -> dict[str, dict[str, float]]:
    """Exact marker times (ms, not rounded) of every ``ok`` trace of :func:`ncsproc.measure`'s
    result: onset, negative peak, onset + total duration, F-wave onset."""
    out = {}
    ids = measures["trace"].values.astype(str)
    status = measures["status"].values.astype(str)
    on = measures["onset_latency"].values.astype(float) * 1e3
    pk = measures["peak_latency"].values.astype(float) * 1e3
    tot = measures["total_duration"].values.astype(float) * 1e3
    f = measures["f_latency"].values.astype(float) * 1e3
    for i, tid in enumerate(ids):
        if status[i] != "ok":
            continue
        times = {"onset": on[i], "peak": pk[i], "end": on[i] + tot[i], "f_onset": f[i]}
        out[tid] = {k: float(v) for k, v in times.items() if math.isfinite(v)}
    return out


def _views(ds, table: pd.DataFrame | None, exact: dict | None = None) -> list[TraceView]:
    n = ds["n_samples"].values.astype(int)
    fs = ds["sampling_rate"].values.astype(float)
    t0 = ds["t_start"].values.astype(float)
    sig = ds["signal"].values
    by_trace = {} if table is None else {r["trace"]: r for r in table.to_dict("records")}
    views = []
    for i, tid in enumerate(ds["trace"].values.astype(str)):
        row = {
            "study": str(ds["study"].values[i]),
            "modality": str(ds["modality"].values[i]),
            "stim_site": str(ds["stim_site"].values[i]),
            "distance_mm": float(ds["distance"].values[i]) * 1e3,
            "record": int(ds["record"].values[i]) if "record" in ds else i,
            "source_file": str(ds["source_file"].values[i]) if "source_file" in ds else "",
            "nerve": str(ds["nerve"].values[i]),
            "side": str(ds["side"].values[i]),
        }
        m = by_trace.get(tid)
        if m is not None:
            row.update(
                {
                    k: ("" if isinstance(v, float) and math.isnan(v) else str(v))
                    for k, v in m.items()
                    if k not in row or k == "status"
                }
            )
        else:
            row["status"] = "ok"
        markers = (exact or {}).get(tid, marker_times(row) if m is not None else {})
        v = TraceView(row=row, trace_id=tid, markers=markers if m is not None else {})
        v.v = np.asarray(sig[i, : n[i]], dtype=float)
        v.t_ms = (t0[i] + np.arange(n[i]) / fs[i]) * 1e3
        views.append(v)
    return views


def plot_traces(
    ds,
    measures=None,
    out: str | os.PathLike | None = None,
    *,
    dpi: int = 150,
    width_in: float = 7.5,
    title: str | None = None,
) -> PlotResult:
    """Draw a trace set (and its measures) the clinical way; see :func:`plot_file`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    table = None
    baselines: dict[str, float] = {}
    if measures is not None:
        from ..tables import responses_table
        from .data import _index_of

        table = responses_table(measures)
        table.insert(0, "trace", list(_index_of(table, measures)))
        baselines = dict(
            zip(
                measures["trace"].values.astype(str),
                measures["baseline_level"].values.astype(float),
                strict=True,
            )
        )
    views = _views(ds, table, measured_markers(measures) if measures is not None else None)
    for v in views:
        b = baselines.get(v.trace_id) if v.trace_id is not None else None
        v.baseline = b if b is not None and math.isfinite(b) else None
    groups: dict[tuple[str, str], list[TraceView]] = {}
    for v in views:
        groups.setdefault((v.row["study"], v.modality), []).append(v)
    keys = list(groups)
    n_lanes = [len(groups[k]) for k in keys]
    heights = [
        max(1.6, 0.28 * n * (2 if groups[k][0].modality != "fwave" else 1) + 0.9)
        for k, n in zip(keys, n_lanes, strict=True)
    ]
    fig = Figure(figsize=(width_in, sum(heights) + 0.2), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(keys), 1, squeeze=False, height_ratios=heights)[:, 0]
    rows, gains = [], {}
    for ax, key in zip(axes, keys, strict=True):
        study, modality = key
        lanes = lane_order(groups[key])
        refs = [v.baseline if v.baseline is not None else float(np.nanmedian(v.v)) for v in lanes]
        amps = [_f(v.row.get("amplitude_uv")) * 1e-6 for v in lanes]
        p2p = [_f(v.row.get("p2p_uv")) * 1e-6 for v in lanes]
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
        gains[study] = scale.gain
        L = scale.lane_divs
        t0 = min(0.0, min(float(v.t_ms[0]) for v in lanes))
        t1 = max(float(v.t_ms[-1]) for v in lanes)
        ms_div = time_divisions(t0, t1)
        labels, ys = [], []
        for i, (v, ref) in enumerate(zip(lanes, refs, strict=True)):
            top = -i * L
            y_ref = top - scale.ref_div
            # divisions, upward positive: a negative deflection goes up (negative up)
            t_d, v_d = decimate(v.t_ms, v.v, 1200)
            y = y_ref + (ref - v_d) / scale.gain
            y = np.clip(y, top - L, top)  # stay in the lane (artefact, clipped M wave)
            ok = v.status == "ok"
            ax.plot(t_d, y, color="#1b1f24" if ok else "#9aa3ad", lw=0.8, gid=f"trace:{v.trace_id}")
            if v.baseline is not None:
                ax.plot([t0, t1], [y_ref, y_ref], color="#9aa3ad", lw=0.6, ls=(0, (3, 3)))
            if v.modality == "fwave":
                labels.append(f"stim {v.record + 1}")
            else:
                d = v.distance_mm
                labels.append(
                    f"{v.row['stim_site']}" + (f"\n{d:.0f} mm" if math.isfinite(d) else "")
                )
            ys.append(top - L / 2)
            if not ok:
                ax.text(
                    t1,
                    top - 0.15,
                    v.status.replace("_", " "),
                    ha="right",
                    va="top",
                    color="#b00020",
                    fontsize=7,
                    style="italic",
                )
                continue
            for marker in MARKERS:
                t = v.markers.get(marker)
                if t is None:
                    continue
                gid = f"marker:{v.trace_id}:{marker}"
                (line,) = ax.plot(
                    [t, t], [top - L + 0.1, top - 0.1], color=_COLOURS[marker], lw=1.0, gid=gid
                )
                ax.text(
                    t,
                    top - 0.1,
                    MARKER_LETTERS[marker],
                    color=_COLOURS[marker],
                    fontsize=6.5,
                    fontweight="bold",
                    ha="left",
                    va="top",
                )
                drawn = float(np.asarray(line.get_xdata(), dtype=float)[0])
                rows.append(
                    {
                        "trace": v.trace_id,
                        "marker": marker,
                        "time_ms": drawn,
                        "measured_ms": t,
                        "gid": gid,
                    }
                )
        ax.set_xlim(t0, t1)
        ax.set_ylim(-L * len(lanes), 0)
        ax.set_xticks(np.arange(math.ceil(t0 / ms_div), math.floor(t1 / ms_div) + 1) * ms_div)
        ax.set_yticks(ys, labels, fontsize=7)
        ax.set_yticks(np.arange(-L * len(lanes), 0.01, 1.0), minor=True)
        ax.grid(True, which="major", axis="x", color="#e4e8ec", lw=0.6)
        ax.grid(True, which="minor", axis="y", color="#e4e8ec", lw=0.6)
        ax.tick_params(axis="y", which="both", length=0)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel(f"ms from the stimulus ({ms_div:g} ms/div)", fontsize=7)
        first = lanes[0].row
        ax.set_title(
            f"{study} ({modality}, {first['nerve']} {first['side']}): "
            f"{format_gain(scale.gain)}, negative up",
            fontsize=8,
            loc="left",
        )
    if title:
        fig.suptitle(title, fontsize=9)
    markers = pd.DataFrame(rows, columns=["trace", "marker", "time_ms", "measured_ms", "gid"])
    path = None
    if out is not None:
        path = Path(out)
        fmt = _FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise ValueError(
                f"{path.name}: unknown image format {path.suffix!r}; use .png, .svg or .pdf"
            )
        import matplotlib as mpl

        with mpl.rc_context({"svg.hashsalt": "ncsproc", "svg.fonttype": "none"}):
            fig.savefig(path, format=fmt, metadata=_metadata(fmt))
    return PlotResult(
        path=path, markers=markers, measures=table, gains=gains, n_traces=len(views), figure=fig
    )


def _metadata(fmt: str) -> dict:
    if fmt == "png":
        return {"Software": "ncsproc"}
    if fmt == "svg":
        return {"Date": None, "Creator": "ncsproc"}
    return {"Creator": "ncsproc", "CreationDate": None}


def _f(text) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except (TypeError, ValueError):
        return math.nan


def plot_file(
    path: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    measure: bool = True,
    dpi: int = 150,
    title: str | None = None,
) -> PlotResult:
    """Draw one file's traces with their markers to PNG, SVG or PDF.

    Parameters
    ----------
    path : path-like
        Any file :func:`ncsproc.read` reads.
    out : path-like, optional
        Image to write; the format follows the extension (``.png``, ``.svg``, ``.pdf``).
        None: draw only (the markers are still returned).
    measure : bool
        Measure the traces (:func:`ncsproc.measure`, default parameters) and draw the
        markers; False draws the traces only.
    dpi : int
        Resolution of a PNG.
    title : str, optional
        A title of your own (nothing identifying is taken from the file).

    Returns
    -------
    PlotResult
        With ``markers``: the drawn markers' times (from the drawn lines) next to the measured
        ones, and the measures.
    """
    from ..formats import read

    ds = read(path)
    m = None
    if measure:
        from ..unknowns import measure_known

        m = measure_known(ds)  # a trace of unknown modality is drawn without markers
    return plot_traces(ds, m, out, dpi=dpi, title=title)


def plot(
    traces,
    out: str | os.PathLike | None = None,
    *,
    measure: bool = True,
    dpi: int = 150,
    title: str | None = None,
) -> PlotResult:
    """Draw a trace set in memory the clinical way (``ncsproc plot`` without a file).

    Parameters
    ----------
    traces : xarray.Dataset
        A trace set (from :func:`ncsproc.read`, :func:`ncsproc.simulate.exam`, ...).
    out : path-like, optional
        Image to write (``.png``, ``.svg``, ``.pdf``); None draws only (the figure is
        ``result.figure``).
    measure : bool
        Measure the traces and draw their markers (default).
    dpi, title
        As :func:`plot_file`.

    Returns
    -------
    PlotResult
    """
    m = None
    if measure:
        from ..unknowns import measure_known

        m = measure_known(traces)
    return plot_traces(traces, m, out, dpi=dpi, title=title)
