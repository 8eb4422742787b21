"""Robust statistics and index arithmetic shared by every stage: sample indices of times,
branch-free selection (medians, quantiles), robust levels and lines.

Each kernel is compiled with :func:`ncsproc.kernels._jit.jit`; its numpy reference twin
(``ref_<name>``, written independently with whole-array operations) follows below.
"""

from __future__ import annotations

import math

import numpy as np

from ._codes import (
    _TRIM_SD,
    MAD_TO_SD,
)
from ._jit import jit


@jit
def time_index(t, t0, fs):
    """Index of the first sample at or after time ``t`` (s) for a trace starting at ``t0``."""
    v = (t - t0) * fs - 1e-6
    if not v < 1e15:
        return 1 << 60
    if v < -1e15:
        return -(1 << 60)
    return int(math.ceil(v))


@jit
def n_of(duration, fs, minimum):
    """Number of samples in ``duration`` s (rounded), at least ``minimum``."""
    v = duration * fs
    if not v < 1e15:
        return 1 << 60
    k = int(math.floor(v + 0.5))
    return k if k > minimum else minimum


@jit
def chi_quantile_factor(q_z, dof):
    """Quantile of sample SD / true SD for Gaussian data (Wilson-Hilferty approximation)."""
    k = float(dof)
    c = 2.0 / (9.0 * k)
    v = 1.0 - c + q_z * math.sqrt(c)
    return math.sqrt(v * v * v)


_SELECT_SMALL = 12  # ranges this short finish by insertion sort


@jit
def _median3(a, b, c):
    """Median of three values (the quickselect pivot)."""
    if a > b:
        a, b = b, a
    if b > c:
        b = c
    return a if a > b else b


@jit
def order_pair(v, lo, m):
    """The (lo)-th and (lo + 1)-th smallest of v[:m] (0-based; the second is +inf when
    lo + 1 == m). v[:m] is left as it is; v[m:3m] is scratch, so v needs 3m elements.

    Quickselect whose partition has no data-dependent branch: every value is written to both
    free ends of the other scratch half and only the two end counters move (by the results
    of the comparisons). Block noise and baseline medians select from 30-120 values, where the
    mispredicted branches of a classic Hoare partition cost more than the comparisons.
    """
    src = v[0:m]
    dst = v[m : 2 * m]
    spare = v[2 * m : 3 * m]
    a = 0
    b = m
    val = np.nan
    found = False
    while b - a > _SELECT_SMALL:
        pivot = _median3(src[a], src[(a + b) // 2], src[b - 1])
        nl = a
        ng = b
        for i in range(a, b):
            x = src[i]
            dst[nl] = x
            dst[ng - 1] = x
            nl += x < pivot
            ng -= x > pivot
        if lo < nl:
            b = nl
        elif lo >= ng:
            a = ng
        else:
            val = pivot
            found = True
            break
        src, dst, spare = dst, spare, dst
    if not found:
        # insertion sort of the short range (into dst, so v[:m] stays untouched)
        for i in range(a, b):
            x = src[i]
            j = i - 1
            while j >= a and dst[j] > x:
                dst[j + 1] = dst[j]
                j -= 1
            dst[j + 1] = x
        val = dst[lo]
    if lo + 1 >= m:
        return val, np.inf
    # the next order statistic: val again when it repeats, else the smallest value above it
    n_le = 0
    nxt = np.inf
    for i in range(m):
        x = v[i]
        n_le += x <= val
        nxt = min(nxt, x if x > val else np.inf)
    return val, (val if n_le >= lo + 2 else nxt)


@jit
def quantile_inplace(v, m, q):
    """Linear-interpolation quantile ``q`` of v[:m] (numpy's default); v[m:3m] is scratch."""
    pos = q * (m - 1)
    lo = int(math.floor(pos))
    val, nxt = order_pair(v, lo, m)
    if lo + 1 < m:
        val = val + (pos - lo) * (nxt - val)
    return val


@jit
def robust_level(x, i0, i1, sigma, tmp):
    """Baseline level over ``x[i0:i1]``: median, then mean of the finite samples within 3 SD.

    Returns ``(level, n_finite)``; level is NaN when no sample is finite.
    """
    k = 0
    for i in range(i0, i1):
        v = x[i]
        if math.isfinite(v):
            tmp[k] = v
            k += 1
    if k == 0:
        return np.nan, 0
    med = quantile_inplace(tmp, k, 0.5)
    lim = _TRIM_SD * sigma
    s = 0.0
    c = 0
    for i in range(i0, i1):
        v = x[i]
        if math.isfinite(v) and abs(v - med) <= lim:
            s += v
            c += 1
    if c == 0:
        return med, k
    return s / c, k


@jit
def solve_small(g, r, k):
    """Solve ``g[:k, :k] x = r[:k]`` in place by Gaussian elimination with partial pivoting.

    ``r[:k]`` becomes the solution; returns False when the matrix is singular.
    """
    for col in range(k):
        piv = col
        best = abs(g[col, col])
        for row in range(col + 1, k):
            v = abs(g[row, col])
            if v > best:
                best = v
                piv = row
        if not best > 0.0:
            return False
        if piv != col:
            for j in range(k):
                tmp = g[col, j]
                g[col, j] = g[piv, j]
                g[piv, j] = tmp
            tmp = r[col]
            r[col] = r[piv]
            r[piv] = tmp
        for row in range(col + 1, k):
            f = g[row, col] / g[col, col]
            if f != 0.0:
                for j in range(col, k):
                    g[row, j] -= f * g[col, j]
                r[row] -= f * r[col]
    for col in range(k - 1, -1, -1):
        acc = r[col]
        for j in range(col + 1, k):
            acc -= g[col, j] * r[j]
        r[col] = acc / g[col, col]
    return True


@jit
def median_of(v, i0, i1, tmp):
    """Median of v[i0:i1] (numpy's linear interpolation); NaN for an empty range."""
    m = i1 - i0
    if m <= 0:
        return np.nan
    for k in range(m):
        tmp[k] = v[i0 + k]
    return quantile_inplace(tmp, m, 0.5)


@jit
def mad_sd(tmp, m):
    """Robust SD of tmp[:m] (MAD x 1.4826); tmp needs 3m elements and is overwritten."""
    med = quantile_inplace(tmp, m, 0.5)
    for k in range(m):
        tmp[k] = abs(tmp[k] - med)
    return MAD_TO_SD * quantile_inplace(tmp, m, 0.5)


# ---- numpy reference twins ------------------------------------------------------------


def ref_time_index(t, t0, fs):
    v = (t - t0) * fs - 1e-6
    if not v < 1e15:
        return 1 << 60
    if v < -1e15:
        return -(1 << 60)
    return int(math.ceil(v))


def ref_n_of(duration, fs, minimum):
    v = duration * fs
    if not v < 1e15:
        return 1 << 60
    return max(int(math.floor(v + 0.5)), minimum)


def ref_robust_level(x, i0, i1, sigma):
    w = np.asarray(x[i0:i1], dtype=np.float64)
    w = w[np.isfinite(w)]
    if w.size == 0:
        return np.nan, 0
    med = float(np.median(w))
    kept = w[np.abs(w - med) <= _TRIM_SD * sigma]
    if kept.size == 0:
        return med, w.size
    return _seqsum(kept) / kept.size, w.size


def _seqsum(a: np.ndarray) -> float:
    """Sum in index order (as a kernel loop does)."""
    return float(np.cumsum(a, dtype=np.float64)[-1]) if a.size else 0.0


def _lanesum(a: np.ndarray) -> float:
    """Sum as the kernels' four interleaved partial sums do (index mod 4, each in order)."""
    lanes = np.zeros((-(-a.size // 4), 4))
    lanes.flat[: a.size] = a
    part = np.cumsum(lanes, axis=0)[-1] if a.size else np.zeros(4)
    return float((part[0] + part[1]) + (part[2] + part[3]))


def ref_solve_small(g, r, k):
    try:
        x = np.linalg.solve(g[:k, :k], r[:k])
    except np.linalg.LinAlgError:
        return False
    r[:k] = x
    return True


def ref_median_of(v, i0, i1):
    return float(np.median(v[i0:i1])) if i1 > i0 else np.nan


def ref_mad_sd(v):
    v = np.asarray(v, dtype=np.float64)
    return MAD_TO_SD * float(np.median(np.abs(v - np.median(v))))
