"""Onset stage: the sustained departure that leads into the response and the onset latency.

Each kernel is compiled with :func:`ncsproc.kernels._jit.jit`; its numpy reference twin
(``ref_<name>``, written independently with whole-array operations) follows below.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._jit import jit
from ._robust import (
    _seqsum,
)


@jit
def first_sustained(s, a, i0, i1, thr, run):
    """First index in [i0, i1) that starts ``run`` samples of s beyond +-thr, one polarity.

    ``s`` holds the smoothed deviation from index ``a`` on; the run may extend past i1.
    Returns ``(index, polarity)``; ``(-1, 0)`` when there is none.
    """
    n = a + s.shape[0]
    r = 0
    prev = 0
    for i in range(i0, n):
        v = s[i - a]
        sgn = 1 if v > thr else (-1 if v < -thr else 0)
        if sgn != 0 and sgn == prev:
            r += 1
        elif sgn != 0:
            r = 1
        else:
            r = 0
        prev = sgn
        if i - r + 1 >= i1:
            break
        if r >= run:
            return i - run + 1, sgn
    return -1, 0


@jit
def lobe_peak(s, a, n, c, pol, stop):
    """Largest ``pol * s`` from ``c`` while the deviation keeps polarity ``pol`` (to ``stop``)."""
    best = 0.0
    end = stop if stop < n - 1 else n - 1
    for i in range(c, end + 1):
        v = pol * s[i - a]
        if v <= 0.0:
            break
        if v > best:
            best = v
    return best


@jit
def positive_dip(y, s, a, c, level, sigma, k_dip, run, longest):
    """Initial positivity just before the negative departure at ``c``, below k_detect.

    The positive run of s that ends at the last sample before ``c`` with s >= 0 qualifies
    when it is ``run`` to ``longest`` samples long and the sum of its raw deviations
    ``y - level`` is at least ``k_dip * sigma * sqrt(length)``. Returns its start (fractional:
    where s crosses zero) or -1.0.
    """
    z = c - 1
    while z >= a and s[z - a] < 0.0:
        z -= 1
    if z < a:
        return -1.0
    z0 = z
    while z0 - 1 >= a and s[z0 - 1 - a] > 0.0:
        z0 -= 1
    m = z - z0 + 1
    if m < run or m > longest:
        return -1.0
    tot = 0.0
    for i in range(z0, z + 1):
        tot += y[i] - level
    if not tot >= k_dip * sigma * math.sqrt(m):
        return -1.0
    if z0 == a:
        return float(a)
    v0 = s[z0 - 1 - a]
    v1 = s[z0 - a]
    return (z0 - 1) + (-v0) / (v1 - v0)


@jit
def edge_line_onset(s, a, c, pol, hi, target, lo, stop):
    """Where the straight line fitted to the leading edge reaches ``target`` (fractional sample).

    The edge of the departure detected at ``c`` (polarity ``pol``) is ``pol * s`` from the last
    sample before ``c`` (not before ``lo``) up to and including the first sample at or beyond
    ``hi`` (not past ``stop``). A straight line, not a power law, so the extrapolation to the
    onset level follows the edge's own slope whatever the rise curve. NaN with fewer than 2
    points or a slope <= 0.
    """
    i0 = c - 1 if c - 1 >= lo else c
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    t0 = 0.0
    t1 = 0.0
    for i in range(i0, stop + 1):
        v = pol * s[i - a]
        fi = float(i - c)
        s0 += 1.0
        s1 += fi
        s2 += fi * fi
        t0 += v
        t1 += fi * v
        if v >= hi and i > c:
            break
    if s0 < 2.0:
        return np.nan
    den = s0 * s2 - s1 * s1
    if not den > 0.0:
        return np.nan
    slope = (s0 * t1 - s1 * t0) / den
    if not slope > 0.0:
        return np.nan
    icpt = (t0 - slope * s1) / s0
    return c + (target - icpt) / slope


@jit
def onset_of(s, a, n, c, pol, thr, top, span, target, lo, stop):
    """Onset of the departure at ``c`` (polarity ``pol``): the leading-edge line (from the
    threshold ``thr`` to ``max(span thr, top x the lobe's peak)``) extended to ``target``; the
    interpolated threshold crossing when no line can be fitted. Returns ``(onset, reached_lo,
    fallback)``, the onset in fractional samples, not before ``lo``."""
    pk = lobe_peak(s, a, n, c, pol, stop)
    hi = top * pk
    if hi < span * thr:
        hi = span * thr
    if hi > pk:
        hi = pk
    on = np.nan
    if target < hi:
        on = edge_line_onset(s, a, c, pol, hi, target, lo, stop)
    fallback = False
    if not on <= stop:
        on = np.nan
    if not math.isfinite(on):
        fallback = True
        on = float(c)
        if c - 1 >= lo:
            v0 = pol * s[c - 1 - a]
            v1 = pol * s[c - a]
            if v1 > v0 and v0 < thr:
                on = (c - 1) + (thr - v0) / (v1 - v0)
    if on < lo:
        return float(lo), True, fallback
    return on, False, fallback


# ---- numpy reference twins ------------------------------------------------------------


def ref_first_sustained(s, a, i0, i1, thr, run):
    """First start in [i0, i1) of ``run`` same-polarity samples beyond +-thr (s starts at a)."""
    sg = (s[i0 - a :] > thr).astype(np.int8) - (s[i0 - a :] < -thr).astype(np.int8)
    if sg.size < run:
        return -1, 0
    w = sliding_window_view(sg, run)
    ok = (w != 0).all(axis=1) & (w == w[:, :1]).all(axis=1)
    ok[max(i1 - i0, 0) :] = False
    hits = np.flatnonzero(ok)
    if hits.size == 0:
        return -1, 0
    k = int(hits[0])
    return i0 + k, int(sg[k])


def ref_lobe_peak(s, a, n, c, pol, stop):
    v = pol * s[c - a : min(stop, n - 1) + 1 - a]
    end = np.flatnonzero(v <= 0.0)
    if end.size:
        v = v[: end[0]]
    return float(v.max()) if v.size else 0.0


def ref_positive_dip(y, s, a, c, level, sigma, k_dip, run, longest):
    nonneg = np.flatnonzero(s[: c - a] >= 0.0)
    if nonneg.size == 0:
        return -1.0
    z = a + int(nonneg[-1])
    notpos = np.flatnonzero(s[: z - a] <= 0.0)
    z0 = a + (int(notpos[-1]) + 1 if notpos.size else 0)
    m = z - z0 + 1
    if m < run or m > longest:
        return -1.0
    if not _seqsum(np.asarray(y[z0 : z + 1]) - level) >= k_dip * sigma * math.sqrt(m):
        return -1.0
    if z0 == a:
        return float(a)
    v0, v1 = s[z0 - 1 - a], s[z0 - a]
    return (z0 - 1) + (-v0) / (v1 - v0)


def ref_edge_line_onset(s, a, c, pol, hi, target, lo, stop):
    i0 = c - 1 if c - 1 >= lo else c
    v = pol * np.asarray(s[i0 - a : stop + 1 - a], dtype=np.float64)
    idx = np.arange(i0, i0 + v.size)
    past = np.flatnonzero((v >= hi) & (idx > c))
    if past.size:
        v = v[: past[0] + 1]
        idx = idx[: past[0] + 1]
    if v.size < 2:
        return np.nan
    u = (idx - c).astype(np.float64)
    slope, icpt = np.polyfit(u, v, 1)
    if not slope > 0.0:
        return np.nan
    return c + (target - icpt) / slope


def ref_onset_of(s, a, n, c, pol, thr, top, span, target, lo, stop):
    pk = ref_lobe_peak(s, a, n, c, pol, stop)
    hi = min(max(top * pk, span * thr), pk)
    on = ref_edge_line_onset(s, a, c, pol, hi, target, lo, stop) if target < hi else np.nan
    if not on <= stop:
        on = np.nan
    fallback = not math.isfinite(on)
    if fallback:
        on = float(c)
        if c - 1 >= lo:
            v0, v1 = pol * s[c - 1 - a], pol * s[c - a]
            if v1 > v0 and v0 < thr:
                on = (c - 1) + (thr - v0) / (v1 - v0)
    if on < lo:
        return float(lo), True, fallback
    return on, False, fallback
