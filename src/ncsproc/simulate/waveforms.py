r"""Analytic waveform model of compound motor, sensory and F responses, and its exact truth.

Physiology
----------
A compound muscle action potential (CMAP) recorded over a muscle belly is the sum of the
potentials of the motor units whose axons were excited by a supramaximal stimulus. A
sensory nerve action potential (SNAP) is the sum of the potentials of the excited sensory
fibres under the recording electrode. In both cases every unit contributes the *same*
potential at every stimulation site; only its arrival time changes with the site (the
conduction time along the nerve) and a unit can be missing at a site (conduction block).
Temporal dispersion and phase cancellation therefore arise from the spread of arrival times
and need no ad-hoc waveform stretching.

Unit potential (compact support)
--------------------------------
Unit ``i`` starts at ``s_i`` (s after the stimulus) and is made of up to three polynomial
lobes in the normalised time ``u = (t - lobe start) / lobe duration``, ``0 <= u <= 1``:

* optional initial positivity (duration ``T0_i``, height ``r0_i a_i``)::

      p0(u) = + r0_i a_i N(u)

* negative lobe (duration ``Tn_i``; its most negative value is exactly ``-a_i`` at ``u = 0.4``)::

      n(u) = - a_i N(u),   N(u) = u (1 - u)^2 (1 + 1.25 u) / 0.216

* positive lobe (duration ``Tp_i``, height ``r_i a_i`` at ``u = 1/2``)::

      p(u) = + r_i a_i 16 u^2 (1 - u)^2

The potential is exactly zero for ``t < s_i`` and after its last lobe. It leaves zero with a
non-zero slope (``+-a_i / (0.216 T)``: a first-order start, so the physical onset is sharp) and is
continuously differentiable everywhere after its start except at the end of an initial
positivity (a kink where the negative lobe takes off). A motor unit is ``n`` then ``p``; a
sensory fibre may have the initial positivity seen in orthodromic recordings.

Shape families (``shape=`` of :func:`ncsproc.simulate.response_set` and ``exam``; applied to
every motor unit / sensory fibre, so to M waves, F units and SNAPs alike by
:func:`apply_shape_family`):

* ``standard``: the unit above.
* ``biphasic_sharp``: negative lobe ``-a_i N_s(u)``, ``N_s(u) = u (1 - u)^3 / 0.10546875``
  (maximum 1 at ``u = 0.25``: a faster rise; zero slope at ``u = 1``), and the positive-lobe
  height ratio ``r_i`` multiplied by 1.6.
* ``triphasic``: every unit gets an initial positivity of height ``r0_i`` drawn in 0.10-0.30
  and duration ``T0_i`` in 0.20-0.40 ``Tn_i`` (uniform, per unit): the CMAP of an electrode
  off the motor point. The unit (and the onset truth) starts with that positivity.
* ``slow_rise``: negative lobe ``-a_i N_2(u)``, ``N_2(u) = 16 u^2 (1 - u)^2`` (maximum 1 at
  ``u = 1/2``): a second-order start with zero slope, so the compound response leaves the
  baseline gradually. (With degree <= 4 and zero value and slope at both ends this is the only
  such lobe.) An initial positivity, when present, uses the same polynomial as the negative lobe.

Because every lobe is a polynomial of degree <= 4 in time, the sum over all units is a
piecewise polynomial (:class:`scipy.interpolate.PPoly`) whose breakpoints are the lobe
boundaries. The simulator stores that piecewise polynomial, so the signal can be sampled at
any time and its truth (onset, extrema, zero crossings, areas) is computed exactly, by
polynomial root finding and integration, not on a sampled grid. Internally time is in ms
(well-conditioned polynomial coefficients); every public value is in s.

Truth definitions (of the noiseless, undisturbed response ``x(t)``)
-------------------------------------------------------------------
``onset_latency``
    start of the earliest unit potential present (``x`` is exactly 0 before it).
``peak_latency``
    time of the most negative value of ``x`` (the global minimum; the earliest one on a tie).
``amplitude``
    ``0 - min x`` (V, positive): the baseline is exactly 0.
``peak_to_peak``
    ``max_{t > peak_latency} x(t) - min x``: the negative peak to the largest positive value
    that follows it (``x`` returns to 0 at the end of the support, so this is at least
    ``amplitude``); ``positive_peak_latency`` is the time of that positive peak.
``negative_duration``
    from the onset to the first return of ``x`` to zero (baseline) after the negative peak.
``total_duration``
    from the onset to the end of the last *negative lobe*, a negative lobe being a maximal
    interval with ``x < 0`` whose depth (``-min x`` over the lobe) is at least 10 % of
    ``amplitude``. This is the EFNS/PNS "onset of the first negative peak to return to baseline
    of the last negative peak" with an explicit lobe-size rule.
``negative_area``
    ``integral of max(0, -x)`` over ``[onset, onset + total_duration]`` (V s, positive).
``measurable_onset_latency``
    the first time ``|x|`` reaches 1 % of ``amplitude`` (either polarity, so an initial
    positivity counts): the earliest real root of ``x(t) - 0.01 amplitude`` or
    ``x(t) + 0.01 amplitude``, per polynomial piece. It is what a detector can see at best,
    the validation truth of issue 14; ``onset_latency`` stays the fastest fibre's start.

Disturbances (added after the response is sampled, in this order)
-----------------------------------------------------------------
* stimulus artefact, for ``t >= 0``: ``A (1 - t/tau) exp(-t/tau)`` (a spike of height ``A``
  at ``t = 0``, crossing zero at ``tau`` and returning from an opposite-polarity tail of
  depth ``A e^-2`` at ``2 tau``; exactly 0 before the stimulus);
* mains interference ``M sin(2 pi f t + phi)``;
* baseline ``offset + drift * t`` (``drift`` in V/s, ``t`` relative to the stimulus);
* white Gaussian noise of standard deviation ``noise_rms`` (for averaged sensory responses
  this is the noise *after* averaging), or another noise family of the same SD
  (:mod:`ncsproc.simulate.noise`: band-limited, 1/f, mains with harmonics, background EMG,
  baseline wander);
* amplifier saturation: ``clip(x, -limit, +limit)``.

No filter is applied to the trace: ``highpass`` and ``lowpass`` are recorded as NaN (the
``bandlimited`` noise family filters its noise only and records its corners in the truth).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PPoly

__all__ = [
    "UnitPotentials",
    "Response",
    "build_response",
    "waveform_truth",
    "scale_truth",
    "apply_shape_family",
    "SHAPE_FAMILIES",
    "artefact",
    "TRUTH_FIELDS",
    "Disturbance",
    "sample_times",
    "render",
]

# lobe shapes as ascending-power coefficients in u (degree <= 4)
# N(u) = u (1-u)^2 (1 + 1.25 u) / 0.216 = (u - 0.75 u^2 - 1.5 u^3 + 1.25 u^4) / 0.216,
# maximum 1 at u = 0.4
_NEG = np.array([0.0, 1.0, -0.75, -1.5, 1.25]) / 0.216
_POS = np.array([0.0, 0.0, 1.0, -2.0, 1.0]) * 16.0  # u^2 (1-u)^2, max 1 at u = 1/2
# u (1-u)^3 / 0.10546875: maximum 1 at u = 1/4 (the "biphasic_sharp" negative lobe)
_NEG_SHARP = np.array([0.0, 1.0, -3.0, 3.0, -1.0]) / 0.10546875
# negative-lobe polynomial of each lobe-shape code (UnitPotentials.lobe_shape): 0 standard,
# 1 sharp (earlier maximum), 2 slow (16 u^2 (1-u)^2: zero slope at the start, second order)
_LOBE_TABLE = np.stack([_NEG, _NEG_SHARP, _POS])
_BINOM = np.array(
    [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 2, 1, 0, 0], [1, 3, 3, 1, 0], [1, 4, 6, 4, 1]],
    dtype=float,
)

TRUTH_FIELDS = (
    "onset_latency",
    "peak_latency",
    "amplitude",
    "peak_to_peak",
    "positive_peak_latency",
    "negative_duration",
    "total_duration",
    "negative_area",
    "measurable_onset_latency",
)

MEASURABLE_FRACTION = 0.01
"""The measurable onset is the first time ``|x|`` reaches this fraction of ``amplitude``."""

SHAPE_FAMILIES = ("standard", "biphasic_sharp", "triphasic", "slow_rise")
"""Unit-potential shape families of :func:`apply_shape_family` (module docstring)."""

SHARP_POSITIVE_FACTOR = 1.6
"""``biphasic_sharp``: the positive-lobe height ratio of every unit is multiplied by this."""

TRIPHASIC_INIT_RATIO = (0.10, 0.30)
TRIPHASIC_INIT_DURATION = (0.20, 0.40)
"""``triphasic``: initial positivity height (x ``a_i``) and duration (x ``Tn_i``), per unit."""

LOBE_FRACTION = 0.10
"""A negative lobe counts for ``total_duration`` when its depth is >= this fraction of amplitude."""


@dataclass
class UnitPotentials:
    """Shapes of a set of unit potentials (SI units; one entry per unit).

    Attributes
    ----------
    amplitude : ndarray
        Depth ``a_i`` of the negative lobe (V, > 0).
    t_neg, t_pos : ndarray
        Durations of the negative and positive lobes (s).
    pos_ratio : ndarray
        Height of the positive lobe relative to ``a_i``.
    t_init, init_ratio : ndarray
        Duration (s) and relative height of the initial positivity (0 = none).
    lobe_shape : ndarray of int, optional
        Polynomial of the negative lobe (and of the initial positivity): 0 standard ``N(u)``,
        1 sharp ``N_s(u)``, 2 slow ``N_2(u)`` (module docstring); default all 0.
    """

    amplitude: np.ndarray
    t_neg: np.ndarray
    t_pos: np.ndarray
    pos_ratio: np.ndarray
    t_init: np.ndarray
    init_ratio: np.ndarray
    lobe_shape: np.ndarray | None = None

    def __post_init__(self):
        if self.lobe_shape is None:
            self.lobe_shape = np.zeros(np.size(self.amplitude), dtype=np.int64)

    def __len__(self) -> int:
        return int(np.size(self.amplitude))

    def take(self, index) -> UnitPotentials:
        """Return the units selected by ``index`` (boolean mask or integer indices)."""
        return UnitPotentials(
            *(np.asarray(getattr(self, f))[index] for f in self.__dataclass_fields__)
        )

    def scaled(self, factor: float | np.ndarray) -> UnitPotentials:
        """Return a copy with every amplitude multiplied by ``factor``."""
        out = self.take(slice(None))
        out.amplitude = self.amplitude * factor
        return out


class Response:
    """A noiseless response: a piecewise polynomial in time (ms internally), zero outside.

    Use :func:`build_response` to make one. Calling it with times in s returns V.
    """

    def __init__(self, pp: PPoly | None):
        self.pp = pp

    @property
    def empty(self) -> bool:
        """True when no unit potential is present (no response)."""
        return self.pp is None

    @property
    def start(self) -> float:
        """Start of the earliest unit potential (s); NaN when empty."""
        return np.nan if self.pp is None else float(self.pp.x[0]) * 1e-3

    @property
    def end(self) -> float:
        """End of the last unit potential (s); NaN when empty."""
        return np.nan if self.pp is None else float(self.pp.x[-1]) * 1e-3

    def __call__(self, t: np.ndarray) -> np.ndarray:
        """Evaluate the response (V) at times ``t`` (s after the stimulus)."""
        t = np.asarray(t, dtype=float)
        if self.pp is None:
            return np.zeros_like(t)
        out = self.pp(t * 1e3)
        return np.where(np.isnan(out), 0.0, out)

    def scaled(self, factor: float) -> Response:
        """Return the response multiplied by ``factor``."""
        if self.pp is None:
            return self
        return Response(PPoly(self.pp.c * factor, self.pp.x, extrapolate=False))

    def truth(self) -> dict[str, float]:
        """Exact truth of this response; see :func:`waveform_truth`."""
        return waveform_truth(self)


def build_response(start: np.ndarray, units: UnitPotentials) -> Response:
    """Sum unit potentials starting at ``start`` (s) into one exact piecewise polynomial.

    Parameters
    ----------
    start : ndarray
        Start time of each unit potential (s after the stimulus); the start of its initial
        positivity when it has one, otherwise of its negative lobe.
    units : UnitPotentials
        The unit shapes (same length as ``start``).

    Returns
    -------
    Response
        Empty when there are no units (or all amplitudes are 0).
    """
    start = np.asarray(start, dtype=float).ravel()
    keep = np.asarray(units.amplitude) > 0
    if start.size == 0 or not keep.any():
        return Response(None)
    start, u = start[keep], units.take(keep)
    ms = 1e3
    s0 = start * ms
    t0, tn, tp = u.t_init * ms, u.t_neg * ms, u.t_pos * ms
    has_init = (t0 > 0) & (u.init_ratio > 0)
    s1 = np.where(has_init, s0 + t0, s0)  # start of the negative lobe
    s2 = s1 + tn
    s3 = s2 + tp
    a = u.amplitude
    # pieces: (start, duration, coefficient row)
    p_start = [s1, s2]
    p_dur = [tn, tp]
    neg = _LOBE_TABLE[np.asarray(u.lobe_shape, dtype=np.int64)]
    p_coef = [-a[:, None] * neg, (a * u.pos_ratio)[:, None] * _POS[None, :]]
    if has_init.any():
        p_start.append(s0[has_init])
        p_dur.append(t0[has_init])
        p_coef.append((a * u.init_ratio)[has_init][:, None] * neg[has_init])
    ps = np.concatenate(p_start)
    pd = np.concatenate(p_dur)
    pc = np.concatenate(p_coef)
    pe = np.concatenate([s2, s3, s1[has_init]]) if has_init.any() else np.concatenate([s2, s3])
    ok = pd > 0
    ps, pd, pc, pe = ps[ok], pd[ok], pc[ok], pe[ok]
    return Response(PPoly(_sum_pieces(ps, pd, pc, pe), _breakpoints(ps, pe), extrapolate=False))


def _breakpoints(ps: np.ndarray, pe: np.ndarray) -> np.ndarray:
    return np.unique(np.concatenate([ps, pe]))


def _taylor_shift(q: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Coefficients (ascending) of ``q(tau + h)`` in ``tau``, row-wise (q: (n, 5), h: (n,))."""
    hp = h[:, None] ** np.arange(5)[None, :]
    out = np.empty_like(q)
    for m in range(5):
        acc = np.zeros(q.shape[0])
        for k in range(m, 5):
            acc += q[:, k] * _BINOM[k, m] * hp[:, k - m]
        out[:, m] = acc
    return out


def _sum_pieces(ps, pd, pc, pe) -> np.ndarray:
    """PPoly coefficients (highest power first, local ms coordinates) of a sum of lobes.

    Lobe ``p`` is ``sum_k pc[p, k] ((t - ps[p]) / pd[p])^k`` on ``[ps[p], pe[p]]``. The time
    axis is cut into chunks no longer than the shortest lobe, starting at breakpoints; each lobe
    is re-expressed in the coordinate of every chunk it overlaps (shift of at most one lobe
    duration, so no cancellation), the active lobes of a chunk are summed by a cumulative sum of
    start (+) and end (-) events, and each interval's sum is shifted to the interval's own left
    end. Cost O(lobes x chunks per lobe + intervals).
    """
    bp = _breakpoints(ps, pe)
    n_int = bp.size - 1
    width = float(pd.min())
    chunk_of = np.floor((bp[:-1] - bp[0]) / width).astype(np.int64)
    # renumber chunks 0..n_chunks-1 (some widths hold no breakpoint)
    first = np.flatnonzero(np.r_[True, np.diff(chunk_of) > 0])  # first interval of each chunk
    chunk_id = np.cumsum(np.r_[True, np.diff(chunk_of) > 0]) - 1
    chunk_end = np.r_[first[1:], n_int]
    ref = bp[first]
    i0 = np.searchsorted(bp, ps)
    i1 = np.searchsorted(bp, pe)
    c0 = chunk_id[i0]
    c1 = chunk_id[i1 - 1]
    counts = c1 - c0 + 1
    piece = np.repeat(np.arange(ps.size), counts)
    chunk = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + c0[piece]
    a = np.maximum(i0[piece], first[chunk])
    b = np.minimum(i1[piece], chunk_end[chunk])
    inv = 1.0 / pd[piece]
    delta = (ref[chunk] - ps[piece]) * inv  # |delta| <= 1
    q = _taylor_shift(pc[piece], delta) * (inv[:, None] ** np.arange(5)[None, :])
    ends = b < chunk_end[chunk]  # a lobe running to its chunk's end is dropped by the reset
    events = np.zeros((n_int, 5))
    for m in range(5):
        events[:, m] = np.bincount(a, weights=q[:, m], minlength=n_int) - np.bincount(
            b[ends], weights=q[ends, m], minlength=n_int
        )
    # cumulative sum restarted at every chunk
    cs = np.cumsum(events, axis=0)
    start_row = first[chunk_id]
    base = np.where((start_row > 0)[:, None], cs[np.maximum(start_row - 1, 0)], 0.0)
    q_int = cs - base
    local = _taylor_shift(q_int, bp[:-1] - ref[chunk_id])
    return np.ascontiguousarray(local[:, ::-1].T)


def _lobes(pp: PPoly):
    """Lobes of a continuous piecewise polynomial on its support: (starts, ends, signs).

    The support is cut at every breakpoint and every real root (a lobe can end exactly at a
    breakpoint where a unit's negative lobe hands over to its positive lobe with zero value and
    zero slope, a tangent root that root finders may miss); each piece takes the sign of the
    polynomial at its midpoint and neighbours of equal sign are merged.
    """
    x = pp.x
    z = pp.roots(discontinuity=False, extrapolate=False)
    z = z[np.isfinite(z)]
    edges = np.unique(np.concatenate([x, z]))
    a, b = edges[:-1], edges[1:]
    keep = b - a > 1e-12
    a, b = a[keep], b[keep]
    sign = np.sign(pp(0.5 * (a + b)))
    sign = np.where(np.isnan(sign), 0.0, sign)
    new_run = np.r_[True, sign[1:] != sign[:-1]]
    run_start = np.flatnonzero(new_run)
    run_end = np.r_[run_start[1:], a.size] - 1
    return a[run_start], b[run_end], sign[run_start]


def waveform_truth(response: Response) -> dict[str, float]:
    """Exact measures of a noiseless response (all in SI units).

    Definitions (``x`` is the noiseless, undisturbed response, baseline exactly 0):

    * ``onset_latency`` (s): start of the earliest unit potential present.
    * ``peak_latency`` (s): time of the most negative value of ``x`` (global minimum, earliest
      on a tie), found analytically (roots of the derivative of the piecewise polynomial).
    * ``amplitude`` (V): ``0 - min x``, positive.
    * ``peak_to_peak`` (V): ``max_{t > peak_latency} x - min x``.
    * ``positive_peak_latency`` (s): time of that maximum (the end of the support when ``x``
      never becomes positive after the peak).
    * ``negative_duration`` (s): onset to the first return of ``x`` to zero after the peak.
    * ``total_duration`` (s): onset to the end of the last negative lobe (maximal interval with
      ``x < 0``) whose depth is >= 10 % of ``amplitude``.
    * ``negative_area`` (V s): integral of ``max(0, -x)`` over ``[onset, onset + total_duration]``.
    * ``measurable_onset_latency`` (s): first time ``|x|`` reaches ``0.01 * amplitude`` (either
      polarity, so an initial positivity counts): the earliest real root of
      ``x -+ 0.01 amplitude``, found per polynomial piece.

    All are NaN for an empty response (no response).
    """
    nan = dict.fromkeys(TRUTH_FIELDS, np.nan)
    pp = response.pp
    if pp is None:
        return nan
    onset = pp.x[0]
    crit = pp.derivative().roots(discontinuity=True, extrapolate=False)
    crit = np.concatenate([crit[np.isfinite(crit)], pp.x])
    vals = pp(crit)
    ok = np.isfinite(vals)
    crit, vals = crit[ok], vals[ok]
    order = np.argsort(crit, kind="stable")
    crit, vals = crit[order], vals[order]
    i_min = int(np.argmin(vals))
    vmin, tpeak = float(vals[i_min]), float(crit[i_min])
    if not vmin < 0:
        # a purely positive response has no negative peak; report its onset only
        out = dict(nan)
        out["onset_latency"] = onset * 1e-3
        return out
    after = np.flatnonzero(crit > tpeak)
    if after.size and vals[after].max() > 0:
        i_max = after[int(np.argmax(vals[after]))]
        vmax_after, tpos = float(vals[i_max]), float(crit[i_max])
    else:
        vmax_after, tpos = 0.0, float(pp.x[-1])
    la, lb, ls = _lobes(pp)
    neg = ls < 0
    # depth of each negative lobe
    depth = np.zeros(la.size)
    for k in np.flatnonzero(neg):
        inside = (crit >= la[k]) & (crit <= lb[k])
        depth[k] = -float(vals[inside].min()) if inside.any() else 0.0
    amp = -vmin
    in_lobe = np.flatnonzero((la <= tpeak) & (lb >= tpeak) & neg)
    neg_end = lb[in_lobe[0]] if in_lobe.size else tpeak
    big = np.flatnonzero(neg & (depth >= LOBE_FRACTION * amp))
    tot_end = lb[big[-1]]
    area = 0.0
    for k in np.flatnonzero(neg & (lb <= tot_end)):
        area -= float(pp.integrate(la[k], lb[k]))
    return {
        "onset_latency": onset * 1e-3,
        "peak_latency": tpeak * 1e-3,
        "amplitude": amp,
        "peak_to_peak": vmax_after - vmin,
        "positive_peak_latency": tpos * 1e-3,
        "negative_duration": (neg_end - onset) * 1e-3,
        "total_duration": (tot_end - onset) * 1e-3,
        "negative_area": area * 1e-3,
        "measurable_onset_latency": _first_departure(pp, MEASURABLE_FRACTION * amp) * 1e-3,
    }


def _first_departure(pp: PPoly, level: float) -> float:
    """Earliest time (ms) at which ``|pp|`` reaches ``level`` > 0; NaN if it never does."""
    roots = np.concatenate(
        [pp.solve(sign * level, discontinuity=False, extrapolate=False) for sign in (1.0, -1.0)]
    )
    roots = roots[np.isfinite(roots)]
    return float(roots.min()) if roots.size else np.nan


def apply_shape_family(
    units: UnitPotentials, shape: str, rng: np.random.Generator | None = None
) -> UnitPotentials:
    """Return ``units`` turned into the unit-potential shape family ``shape``.

    Parameters
    ----------
    units : UnitPotentials
        Units drawn with the standard shape.
    shape : {"standard", "biphasic_sharp", "triphasic", "slow_rise"}
        Shape family (module docstring). ``"standard"`` returns ``units`` itself.
    rng : numpy.random.Generator, optional
        Source of the per-unit draws of ``"triphasic"`` (the only family that draws).

    Returns
    -------
    UnitPotentials
    """
    if shape not in SHAPE_FAMILIES:
        raise ValueError(f"shape must be one of {SHAPE_FAMILIES}, got {shape!r}")
    if shape == "standard":
        return units
    out = units.take(slice(None))
    n = len(out)
    if shape == "biphasic_sharp":
        out.lobe_shape = np.full(n, 1, dtype=np.int64)
        out.pos_ratio = out.pos_ratio * SHARP_POSITIVE_FACTOR
    elif shape == "slow_rise":
        out.lobe_shape = np.full(n, 2, dtype=np.int64)
    else:  # triphasic
        if rng is None:
            raise ValueError("shape 'triphasic' draws per-unit positivities: pass rng")
        out.init_ratio = rng.uniform(*TRIPHASIC_INIT_RATIO, n)
        out.t_init = out.t_neg * rng.uniform(*TRIPHASIC_INIT_DURATION, n)
    return out


def scale_truth(truth: dict[str, float], factor: float) -> dict[str, float]:
    """Truth of a response multiplied by ``factor`` > 0: times unchanged, volts scaled."""
    out = dict(truth)
    for key in ("amplitude", "peak_to_peak", "negative_area"):
        out[key] = truth[key] * factor
    return out


def artefact(t: np.ndarray, amplitude: float, tau: float) -> np.ndarray:
    """Stimulus artefact ``A (1 - t/tau) exp(-t/tau)`` for ``t >= 0``, 0 before (V)."""
    t = np.asarray(t, dtype=float)
    if amplitude == 0:
        return np.zeros_like(t)
    tt = np.maximum(t, 0.0) / tau
    return np.where(t >= 0, amplitude * (1.0 - tt) * np.exp(-tt), 0.0)


@dataclass
class Disturbance:
    """Disturbances of one trace (SI units); the defaults add nothing.

    Attributes
    ----------
    noise_rms : float
        Standard deviation of the white Gaussian noise (V); after averaging for averaged traces.
    artefact_amplitude, artefact_tau : float
        Stimulus artefact ``A (1 - t/tau) exp(-t/tau)``, ``t >= 0`` (V, s; ``A`` may be negative).
    mains_amplitude, mains_frequency, mains_phase : float
        Mains interference ``M sin(2 pi f t + phi)`` (V, Hz, rad).
    offset, drift : float
        Baseline ``offset + drift * t`` (V, V/s), ``t`` relative to the stimulus.
    clip : float
        Amplifier saturation level (V): the output is limited to ``[-clip, +clip]``; inf = none.
    """

    noise_rms: float = 0.0
    artefact_amplitude: float = 0.0
    artefact_tau: float = 1e-4
    mains_amplitude: float = 0.0
    mains_frequency: float = 50.0
    mains_phase: float = 0.0
    offset: float = 0.0
    drift: float = 0.0
    clip: float = np.inf


def sample_times(sampling_rate: float, n_pre: int, n_post: int) -> np.ndarray:
    """Sample times (s after the stimulus): ``(k - n_pre) / fs`` for ``k < n_pre + n_post``."""
    return (np.arange(n_pre + n_post) - n_pre) / sampling_rate


def render(
    responses,
    t: np.ndarray,
    disturbance: Disturbance,
    rng: np.random.Generator,
    *,
    added_noise: np.ndarray | None = None,
    keep_white: bool = True,
) -> tuple[np.ndarray, bool]:
    """Sample the sum of ``responses`` at ``t`` (s) and add the disturbances (float64, V).

    Returns the signal and whether any sample was clipped by the saturation level.
    The white noise is drawn from ``rng`` only when ``noise_rms > 0``, and drawn even when
    ``keep_white`` is False (a noise family that replaces it), so that every later draw of
    ``rng`` is the same whatever the noise family. ``added_noise`` (a noise family's process,
    :func:`ncsproc.simulate.noise.noise_process`) is added after the white noise, before clipping.
    """
    x = np.zeros_like(t, dtype=float)
    for r in responses:
        x += r(t)
    d = disturbance
    if d.artefact_amplitude:
        x += artefact(t, d.artefact_amplitude, d.artefact_tau)
    if d.mains_amplitude:
        x += d.mains_amplitude * np.sin(2.0 * np.pi * d.mains_frequency * t + d.mains_phase)
    if d.offset or d.drift:
        x += d.offset + d.drift * t
    if d.noise_rms > 0:
        white = rng.standard_normal(t.size)
        if keep_white:
            x += white * d.noise_rms
    if added_noise is not None:
        x += added_noise
    saturated = False
    if np.isfinite(d.clip):
        saturated = bool((np.abs(x) >= d.clip).any())
        x = np.clip(x, -d.clip, d.clip)
    return x, saturated
