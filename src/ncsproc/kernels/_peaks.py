"""Peak, lobe and area stage: the negative peak's parabola, the lobes after it, the area below
baseline.

Each kernel is compiled with :func:`ncsproc.kernels._jit.jit`; its numpy reference twin
(``ref_<name>``, written independently with whole-array operations) follows below.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import jit
from ._params import (
    PEAK_FIT_REF_SNR,
)


@jit
def latency_half_width(r, amp, sigma, exponent):
    """Half-width (samples) of the latency fit: ``r`` at SNR ``PEAK_FIT_REF_SNR``, scaled by
    ``(PEAK_FIT_REF_SNR / SNR)^exponent``, rounded and kept within [2, 3 r]."""
    if not (exponent > 0.0 and sigma > 0.0 and amp > 0.0):
        return r
    w = math.floor(r * (PEAK_FIT_REF_SNR * sigma / amp) ** exponent + 0.5)
    if w < 2.0:
        return 2
    if w > 3.0 * r:
        return 3 * r
    return int(w)


@jit
def fit_peak(x, level, slope, p, rl, rr, i0, i1):
    """Least-squares parabola through the deviations ``x[i] - (level + slope (i - p))`` for i in
    [p - rl, p + rr] (within [i0, i1)): the baseline is a line through ``level`` at p.

    Returns ``(offset, value)``: the vertex position relative to p (samples) and its value, or
    ``(0.0, NaN)`` when the fit has no minimum inside the fitted samples.
    """
    lo = p - rl
    if lo < i0:
        lo = i0
    hi = p + rr + 1
    if hi > i1:
        hi = i1
    if hi - lo < 3:
        return 0.0, np.nan
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    t0 = 0.0
    t1 = 0.0
    t2 = 0.0
    for i in range(lo, hi):
        u = float(i - p)
        d = x[i] - (level + slope * u)
        u2 = u * u
        s0 += 1.0
        s1 += u
        s2 += u2
        s3 += u2 * u
        s4 += u2 * u2
        t0 += d
        t1 += u * d
        t2 += u2 * d
    # Solve [[s4 s3 s2],[s3 s2 s1],[s2 s1 s0]] @ [c2 c1 c0] = [t2 t1 t0] by Cramer's rule.
    det = s4 * (s2 * s0 - s1 * s1) - s3 * (s3 * s0 - s1 * s2) + s2 * (s3 * s1 - s2 * s2)
    if det == 0.0:
        return 0.0, np.nan
    c2 = (t2 * (s2 * s0 - s1 * s1) - s3 * (t1 * s0 - s1 * t0) + s2 * (t1 * s1 - s2 * t0)) / det
    c1 = (s4 * (t1 * s0 - s1 * t0) - t2 * (s3 * s0 - s1 * s2) + s2 * (s3 * t0 - t1 * s2)) / det
    c0 = (s4 * (s2 * t0 - s1 * t1) - s3 * (s3 * t0 - t1 * s2) + t2 * (s3 * s1 - s2 * s2)) / det
    if not c2 > 0.0:
        return 0.0, np.nan
    off = -c1 / (2.0 * c2)
    if off < lo - p or off > hi - 1 - p:
        return 0.0, np.nan
    return off, c0 - c1 * c1 / (4.0 * c2)


@jit
def lobes_after_peak(sv, p, lobe_thr):
    """Negative lobes after the negative peak: ``sv`` is the smoothed deviation from the peak
    (``sv[0]``, at sample ``p``) to the end of the lobe window.

    A lobe is a maximal run of negative samples (the first one holds the peak); it counts
    when it reaches ``-lobe_thr``. Returns ``(first_return, last_end, vmax, no_return)``: the
    fractional samples where the first lobe and the last counting lobe return to zero (-1.0:
    none), the largest value of sv, and whether the last counting lobe never returns. Three
    short scans instead of a per-sample state machine: after the response the smoothed noise
    crosses zero at random, which made every branch of that machine a coin toss.
    """
    m = sv.shape[0]
    _, vmax = extreme_values(sv)
    first = -1.0
    i = 1
    while i < m and sv[i] < 0.0:
        i += 1
    if i < m:
        first = (p + i - 1) + sv[i - 1] / (sv[i - 1] - sv[i])
    # the last sample at or below -lobe_thr belongs to the last counting lobe
    j = m - 1
    while j >= 0 and sv[j] > -lobe_thr:
        j -= 1
    last = -1.0
    no_return = False
    if j >= 0:
        i = j + 1
        while i < m and sv[i] < 0.0:
            i += 1
        if i < m:
            last = (p + i - 1) + sv[i - 1] / (sv[i - 1] - sv[i])
        else:
            no_return = True
    return first, last, vmax, no_return


@jit
def negative_sum(v):
    """Sum of -v over the negative samples of v, in four interleaved partial sums (index mod 4,
    each in order, combined as (0 + 1) + (2 + 3)): four independent add chains."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    m = v.shape[0]
    m4 = m - m % 4
    for j in range(0, m4, 4):
        s0 -= min(v[j], 0.0)
        s1 -= min(v[j + 1], 0.0)
        s2 -= min(v[j + 2], 0.0)
        s3 -= min(v[j + 3], 0.0)
    for j in range(m4, m):
        r = j - m4
        if r == 0:
            s0 -= min(v[j], 0.0)
        elif r == 1:
            s1 -= min(v[j], 0.0)
        else:
            s2 -= min(v[j], 0.0)
    return (s0 + s1) + (s2 + s3)


@jit
def extreme_values(v):
    """``(min, max)`` of v (inf and -inf when empty), in four interleaved lanes: four
    independent compare chains, and exact in any order."""
    m = v.shape[0]
    m4 = m - m % 4
    lo0 = np.inf
    lo1 = np.inf
    lo2 = np.inf
    lo3 = np.inf
    hi0 = -np.inf
    hi1 = -np.inf
    hi2 = -np.inf
    hi3 = -np.inf
    for j in range(0, m4, 4):
        lo0 = min(lo0, v[j])
        lo1 = min(lo1, v[j + 1])
        lo2 = min(lo2, v[j + 2])
        lo3 = min(lo3, v[j + 3])
        hi0 = max(hi0, v[j])
        hi1 = max(hi1, v[j + 1])
        hi2 = max(hi2, v[j + 2])
        hi3 = max(hi3, v[j + 3])
    for j in range(m4, m):
        lo0 = min(lo0, v[j])
        hi0 = max(hi0, v[j])
    return min(min(lo0, lo1), min(lo2, lo3)), max(max(hi0, hi1), max(hi2, hi3))


@jit
def arg_extremes(s, a, i0, i1):
    """First indices of the minimum and the maximum of s[i - a] over i in [i0, i1).

    Returns ``(p, vmin, q, vmax)``; ``p = q = i0`` and infinite values for an empty range.
    The extreme values first (:func:`extreme_values`), then a short scan for their first
    occurrence: no data-dependent branch in the long loop.
    """
    v = s[i0 - a : i1 - a]
    m = v.shape[0]
    vmin, vmax = extreme_values(v)
    p = 0
    while p < m and v[p] != vmin:
        p += 1
    q = 0
    while q < m and v[q] != vmax:
        q += 1
    if p == m:
        p = 0
    if q == m:
        q = 0
    return i0 + p, vmin, i0 + q, vmax


@jit
def second_lobe_depth(s, a, i0, i1, p):
    """Depth of the deepest negative lobe of s over [i0, i1) other than the one holding ``p``.

    A lobe is a maximal run of samples below zero (``s`` holds the smoothed deviation from
    index ``a`` on); 0 when there is no other lobe.
    """
    best = 0.0
    cur = 0.0
    has_p = False
    for i in range(i0, i1):
        v = s[i - a]
        if v < 0.0:
            if -v > cur:
                cur = -v
            if i == p:
                has_p = True
        else:
            if not has_p and cur > best:
                best = cur
            cur = 0.0
            has_p = False
    if not has_p and cur > best:
        best = cur
    return best


# ---- numpy reference twins ------------------------------------------------------------


def ref_fit_peak(x, level, slope, p, rl, rr, i0, i1):
    lo, hi = max(p - rl, i0), min(p + rr + 1, i1)
    if hi - lo < 3:
        return 0.0, np.nan
    u = np.arange(lo, hi, dtype=np.float64) - p
    d = np.asarray(x[lo:hi], dtype=np.float64) - (level + slope * u)
    A = np.vander(u, 3)  # columns u^2, u, 1
    try:
        c2, c1, c0 = np.linalg.solve(A.T @ A, A.T @ d)
    except np.linalg.LinAlgError:
        return 0.0, np.nan
    if not c2 > 0.0:
        return 0.0, np.nan
    off = -c1 / (2.0 * c2)
    if not lo - p <= off <= hi - 1 - p:
        return 0.0, np.nan
    return float(off), float(c0 - c1 * c1 / (4.0 * c2))


def ref_second_lobe_depth(s, a, i0, i1, p):
    v = np.asarray(s[i0 - a : i1 - a], dtype=np.float64)
    neg = v < 0.0
    if not neg.any():
        return 0.0
    run_id = np.cumsum(np.r_[True, neg[1:] != neg[:-1]])
    depths = [
        -v[run_id == r].min()
        for r in np.unique(run_id[neg])
        if not (i0 <= p < i1 and run_id[p - i0] == r)
    ]
    return float(max(depths)) if depths else 0.0
