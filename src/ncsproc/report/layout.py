"""Drawing conventions shared by the HTML report and ``ncsproc plot`` (numpy only).

Clinical display of nerve-conduction traces: time in ms from the stimulus on x, **negative
up** on y, one fixed gain per study given in volts per division from the 1-2-5 sequence and
chosen so that the largest response fits its lane, traces of a study stacked distal (top) to
proximal (bottom), F-wave sweeps stacked in stimulus order at a gain that fits the late
responses (the M wave is clipped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MARKERS",
    "MARKER_LETTERS",
    "NO_RESPONSE_GAIN",
    "StudyScale",
    "decimate",
    "format_gain",
    "format_ms",
    "format_volts",
    "nice_ceil",
    "study_scale",
    "time_divisions",
]

MARKERS = ("onset", "peak", "end", "f_onset")
"""Marker names, as in ``overrides.csv``: onset = ``onset_ms``; peak = negative peak
``peak_ms``; end = ``onset_ms + total_duration_ms`` (return to baseline of the last negative
lobe); f_onset = ``f_latency_ms`` (F-wave traces)."""

MARKER_LETTERS = {"onset": "O", "peak": "P", "end": "E", "f_onset": "F"}

NO_RESPONSE_GAIN = {"sensory": 5e-6, "motor": 1e-4, "fwave": 1e-4}
"""Smallest gain (V/div) of a study without any measured response (motor, sensory) or without
any F wave (F-wave studies): noise is shown at a clinical sensitivity (5 µV/div for SNAPs,
100 µV/div for CMAPs and F waves) rather than magnified to fill the lanes, where it would look
like a response. A larger signal (an unmeasured response) still sets a larger gain."""

_STEPS = (1.0, 2.0, 5.0)


def nice_ceil(value: float) -> float:
    """Smallest number of the 1-2-5 sequence (..., 0.5, 1, 2, 5, 10, ...) that is >= value.

    Parameters
    ----------
    value : float
        A positive number (a non-positive or non-finite value gives 1.0).
    """
    if not math.isfinite(value) or value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for e in (exp - 1, exp, exp + 1):
        for s in _STEPS:
            candidate = s * 10.0**e
            if candidate >= value * (1 - 1e-12):
                # round away binary noise: 2e-05 rather than 1.9999999999999998e-05
                return float(f"{candidate:.12g}")
    return float(f"{10.0 ** (exp + 1):.12g}")  # pragma: no cover - unreachable


def format_gain(volts_per_div: float) -> str:
    """A gain in clinical units: ``"2 mV/div"``, ``"10 µV/div"``, ``"500 µV/div"``,
    ``"1 V/div"``."""
    return f"{format_volts(volts_per_div)}/div"


def format_volts(volts: float) -> str:
    """A voltage in clinical units (``"2 mV"``, ``"10 µV"``, ``"1 V"``)."""
    if abs(volts) >= 1.0 * (1 - 1e-9):
        return f"{volts:.6g} V"
    if abs(volts) >= 1e-3 * (1 - 1e-9):
        return f"{volts * 1e3:.6g} mV"
    return f"{volts * 1e6:.6g} µV"


def format_ms(value: float) -> str:
    """Milliseconds with the tables' precision (1 us), or an empty string for NaN."""
    return "" if not np.isfinite(value) else f"{value:.3f}"


def time_divisions(t0_ms: float, t1_ms: float, target: int = 10) -> float:
    """Milliseconds per division (1-2-5) giving about ``target`` divisions over the sweep."""
    return nice_ceil(max(t1_ms - t0_ms, 1e-3) / target)


@dataclass(frozen=True)
class StudyScale:
    """The vertical scale of one study's traces.

    Attributes
    ----------
    gain : float
        Volts per division (1-2-5 sequence), the same for every trace of the study.
    lane_divs : float
        Height of one trace's lane, in divisions.
    ref_div : float
        Position of a trace's reference (baseline) level below its lane's top, in divisions;
        a negative deflection of ``k`` divisions is drawn ``k`` divisions above it.
    basis : str
        What the gain was fitted to (shown to the reader): ``"response"`` (largest
        negative peak and positive lobe of the measured responses), ``"signal"`` (no measured
        response: the signal after the stimulus artefact) or ``"late responses"`` (F waves).
    clipped : bool
        Some of the signal (the M wave of F-wave sweeps, a stimulus artefact) is outside
        the lanes and clipped.
    """

    gain: float
    lane_divs: float
    ref_div: float
    basis: str
    clipped: bool = True


def _robust_max_dev(values: list[np.ndarray]) -> float:
    devs = [np.abs(v[np.isfinite(v)]) for v in values if v.size]
    devs = [d for d in devs if d.size]
    if not devs:
        return float("nan")
    return float(np.max([np.percentile(d, 99.5) for d in devs]))


def study_scale(
    modality: str,
    signals: list[np.ndarray],
    times_ms: list[np.ndarray],
    refs: list[float],
    *,
    amplitudes_v: list[float] | None = None,
    p2p_v: list[float] | None = None,
    f_ms: list[float] | None = None,
    min_gain: float = 1e-7,
) -> StudyScale:
    """Choose the gain of one study so that its largest response fits the lanes.

    Parameters
    ----------
    modality : {"motor", "sensory", "fwave"}
    signals : list of numpy.ndarray
        The valid samples of each trace (V).
    times_ms : list of numpy.ndarray
        Their times from the stimulus (ms).
    refs : list of float
        Each trace's reference (baseline) level (V).
    amplitudes_v, p2p_v : list of float, optional
        Negative-peak amplitude and peak-to-peak of each trace (V, NaN if not measured), as
        the tables state them. Motor and sensory studies fit these: the negative peak within
        2.5 divisions above the baseline and the positive lobe (p2p - amplitude) within 1.1
        below.
    f_ms : list of float, optional
        F-wave traces: F-wave onset of each trace (ms, NaN without an F wave). The gain fits
        the signal from 1 ms before to 10 ms after each F onset; without any F wave, the
        second half of the sweeps.
    min_gain : float
        Smallest gain (V/div) ever chosen (noise-only sweeps). Without any measured response
        (or, for F waves, without any F wave) the gain is also at least
        :data:`NO_RESPONSE_GAIN` of the modality.

    Returns
    -------
    StudyScale
    """
    if modality == "fwave":
        f = np.asarray(f_ms if f_ms is not None else [math.nan] * len(signals), dtype=float)
        if np.isfinite(f).any():
            late = [
                s[(t >= fi - 1.0) & (t <= fi + 10.0)] - r
                for s, t, r, fi in zip(signals, times_ms, refs, f, strict=True)
                if np.isfinite(fi)
            ]
        else:
            late = [
                s[t >= (t[0] + t[-1]) / 2] - r
                for s, t, r in zip(signals, times_ms, refs, strict=True)
                if t.size
            ]
        # negative (up) within 1.25 divisions above the baseline, positive within 0.65 below
        up = _robust_max_dev([np.maximum(-x, 0.0) for x in late])
        down = _robust_max_dev([np.maximum(x, 0.0) for x in late])
        if not (np.isfinite(up) or np.isfinite(down)):
            return StudyScale(1e-4, 2.0, 1.3, "late responses", True)
        need = max(np.nan_to_num(up) / 1.25, np.nan_to_num(down) / 0.65, min_gain)
        if not np.isfinite(f).any():  # no F wave: noise at a clinical gain
            need = max(need, NO_RESPONSE_GAIN["fwave"])
        return StudyScale(nice_ceil(need), 2.0, 1.3, "late responses", True)
    amps = np.asarray(amplitudes_v if amplitudes_v is not None else [], dtype=float)
    p2p = np.asarray(p2p_v if p2p_v is not None else [], dtype=float)
    ok = np.isfinite(amps) & (amps > 0)
    if ok.any():
        neg = float(np.max(amps[ok]))
        pos = p2p[ok] - amps[ok] if p2p.size == amps.size else np.array([0.0])
        pos = float(np.nanmax(pos)) if np.isfinite(pos).any() else 0.0
        gain = nice_ceil(max(neg / 2.5, max(pos, 0.0) / 1.1, min_gain))
        return StudyScale(gain, 4.0, 2.75, "response", True)
    after = 1.0 if modality == "sensory" else 1.5
    post = [s[t >= after] - r for s, t, r in zip(signals, times_ms, refs, strict=True)]
    dev = _robust_max_dev(post)
    floor = NO_RESPONSE_GAIN.get(modality, min_gain)
    gain = max(nice_ceil(dev / 1.5), min_gain, floor) if np.isfinite(dev) else 1e-3
    return StudyScale(gain, 4.0, 2.0, "signal", True)


def decimate(t: np.ndarray, v: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a trace to at most two points (its minimum and maximum, in time order) per bin.

    The drawing keeps every extreme (peaks are never shaved off); a trace with fewer than
    ``2 * n_bins`` samples is returned unchanged. NaN samples are dropped.
    """
    keep = np.isfinite(v) & np.isfinite(t)
    t, v = t[keep], v[keep]
    if t.size <= 2 * n_bins or n_bins < 1:
        return t, v
    k = -(-t.size // n_bins)  # samples per bin
    rows = -(-t.size // k)
    pad = np.full(rows * k, np.nan)
    pad[: v.size] = v
    blocks = pad.reshape(rows, k)
    base = np.arange(rows) * k
    idx = np.unique(
        np.concatenate([base + np.nanargmin(blocks, axis=1), base + np.nanargmax(blocks, axis=1)])
    )
    return t[idx], v[idx]
