"""Noise and baseline stage: the smoothed signal, the noise of the quiet window, the baseline
level and slope, mains interference, and the end of the stimulus artefact.

Each kernel is compiled with :func:`ncsproc.kernels._jit.jit`; its numpy reference twin
(``ref_<name>``, written independently with whole-array operations) follows below.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._codes import (
    _Z_QUANTILE,
    MAD_TO_SD,
    MAINS_FREQUENCIES,
    MAINS_MIN_SHARE,
    MAINS_TRAIN,
    MIN_QUIET,
    N_MAINS_HARMONICS,
    NOISE_QUANTILE,
)
from ._jit import jit
from ._robust import (
    chi_quantile_factor,
    mad_sd,
    order_pair,
    quantile_inplace,
    ref_mad_sd,
    solve_small,
)


@jit
def block_noise(x, i0, i1, block, tmp):
    """Preliminary robust noise SD of x[i0:i1] from blocks of ``block`` samples.

    Per block: the RMS of its residuals about its own least-squares line (slow signal, an
    artefact tail, a response's smooth parts barely count); blocks with a non-finite sample,
    and exactly flat blocks (unless all are), are skipped; the 10th percentile over the blocks,
    divided by the same quantile of that statistic for Gaussian noise (Wilson-Hilferty). Noise
    slower than a block is missed, so this only judges the artefact model of a sweep without
    a pre-trigger; the measurement's own noise comes from the quiet window. NaN: no block.
    """
    k = 0
    b0 = i0
    c = 0.5 * (block - 1)
    s2 = 0.0
    for j in range(block):
        s2 += (j - c) * (j - c)
    while b0 + block <= i1:
        t0 = 0.0
        t1 = 0.0
        for j in range(block):
            v = x[b0 + j]
            t0 += v
            t1 += (j - c) * v
        mean = t0 / block
        b = t1 / s2
        ss = 0.0
        for j in range(block):
            d = x[b0 + j] - (mean + b * (j - c))
            ss += d * d
        if math.isfinite(ss):
            tmp[k] = ss / (block - 2)
            k += 1
        b0 += block
    if k == 0:
        return np.nan
    kk = 0
    for j in range(k):
        if tmp[j] > 0.0:
            tmp[kk] = tmp[j]
            kk += 1
    if kk == 0:
        return 0.0
    k = kk
    # the quantile of the block RMS values: the root keeps the order, so select on the mean
    # squares and take the root of the two neighbours that interpolate
    pos = NOISE_QUANTILE * (k - 1)
    lo = int(math.floor(pos))
    a, b = order_pair(tmp, lo, k)
    val = math.sqrt(a)
    if lo + 1 < k:
        val = val + (pos - lo) * (math.sqrt(b) - val)
    return val / chi_quantile_factor(_Z_QUANTILE, block - 2)


@jit
def settle_index(x, i0, i1, level, band, run):
    """First index >= i0 from which ``run`` samples stay within ``level +- band`` (-1: never)."""
    r = 0
    xv = x[i0:i1] if i1 > i0 else x[0:0]
    for k in range(xv.shape[0]):
        if abs(xv[k] - level) <= band:
            r += 1
            if r >= run:
                return i0 + k - run + 1
        else:
            r = 0
    return -1


@jit
def _moving_sum_into(y0, s0, m, h, inv, level):
    """s0[k] = (y0[k] + ... + y0[k + 2h]) * inv - level for k in [0, m).

    Views starting at index 0 let LLVM prove every index non-negative: with a runtime start
    index, Numba's negative-index wraparound check stops the loop from vectorising (10x slower).
    """
    if h == 1:
        for k in range(m):
            s0[k] = (y0[k] + y0[k + 1] + y0[k + 2]) * inv - level
    elif h == 2:
        for k in range(m):
            s0[k] = (y0[k] + y0[k + 1] + y0[k + 2] + y0[k + 3] + y0[k + 4]) * inv - level
    else:
        w = 2 * h + 1
        for k in range(m):
            acc = 0.0
            for j in range(w):
                acc += y0[k + j]
            s0[k] = acc * inv - level


@jit
def smooth_into(y, a, n, level, h, s):
    """s[i - a] = centred moving average of y - level over [i - h, i + h] clipped to [a, n)."""
    inv = 1.0 / (2 * h + 1)
    m = n - a
    k0 = h if h < m else m
    k1 = m - h if m - h > k0 else k0
    if k1 > k0:
        _moving_sum_into(y[a + k0 - h :], s[k0:], k1 - k0, h, inv, level)
    # edges (shrunk windows): [0, k0) and [k1, m), or everything when there is no interior
    n_head = k0 if k1 > k0 else m
    for kk in range(n_head + (m - k1 if k1 > k0 else 0)):
        k = kk if kk < n_head else k1 + (kk - n_head)
        i = a + k
        lo = i - h if i - h > a else a
        hi = i + h + 1 if i + h + 1 < n else n
        acc = 0.0
        for j in range(lo, hi):
            acc += y[j]
        s[k] = acc / (hi - lo) - level


@jit
def window_noise(v, i0, i1, tmp):
    """Robust noise SD of v[i0:i1]: MAD x 1.4826 of the residuals about its least-squares line.

    Applied to the smoothed signal the thresholds are compared with, so the estimate holds for
    noise of any spectrum (second differences are exact for white noise only). NaN for fewer
    than MIN_QUIET samples.
    """
    m = i1 - i0
    if m < MIN_QUIET:
        return np.nan
    c = 0.5 * (m - 1)
    t0 = 0.0
    t1 = 0.0
    s2 = 0.0
    for k in range(m):
        u = k - c
        t0 += v[i0 + k]
        t1 += u * v[i0 + k]
        s2 += u * u
    mean = t0 / m
    b = t1 / s2
    for k in range(m):
        tmp[k] = v[i0 + k] - (mean + b * (k - c))
    return mad_sd(tmp, m)


@jit
def decision_noise(v, i0, i1, w, lag, tmp):
    """Null distribution of the response test over the quiet stretch v[i0:i1].

    The statistic is ``v[i + lag] - mean(v[i - w:i])``: a value ``lag`` samples after a local
    baseline of ``w`` samples. Returns ``(median, robust SD)`` of it, so slow noise (1/f,
    wander, background EMG) raises the bar exactly as much as it moves the baseline, and a
    steady drift shifts the expected value instead. NaN when fewer than 2 MIN_QUIET values fit.
    """
    first = i0 + w
    last = i1 - lag  # exclusive
    m = last - first
    if m < 2 * MIN_QUIET or w < 1:
        return np.nan, np.nan
    acc = 0.0
    for j in range(i0, first):
        acc += v[j]
    inv = 1.0 / w
    for k in range(m):
        i = first + k
        tmp[k] = v[i + lag] - acc * inv
        acc += v[i] - v[i - w]
    med = quantile_inplace(tmp, m, 0.5)
    for k in range(m):
        tmp[k] = abs(tmp[k] - med)
    return med, MAD_TO_SD * quantile_inplace(tmp, m, 0.5)


@jit
def _mains_normal(y, i0, i1, t0, dt, f, g, r):
    """Normal equations of y[i0:i1] ~ 1, u, sin/cos(2 pi h f t) for h = 1..N_MAINS_HARMONICS
    (u the centred time in units of the window); returns the sum of squares of y."""
    k = 2 + 2 * N_MAINS_HARMONICS
    for p in range(k):
        r[p] = 0.0
        for q in range(k):
            g[p, q] = 0.0
    m = i1 - i0
    ic = 0.5 * (i0 + i1 - 1)
    w = 2.0 * math.pi * f * dt
    cr = math.cos(w)
    sr = math.sin(w)
    ph = 2.0 * math.pi * f * (t0 + i0 * dt)
    c1 = math.cos(ph)
    s1 = math.sin(ph)
    row = np.empty(k)
    yy = 0.0
    for i in range(i0, i1):
        row[0] = 1.0
        row[1] = (i - ic) / m
        ch = c1
        sh = s1
        for h in range(N_MAINS_HARMONICS):
            row[2 + 2 * h] = sh
            row[3 + 2 * h] = ch
            ch, sh = ch * c1 - sh * s1, sh * c1 + ch * s1
        v = y[i]
        yy += v * v
        for p in range(k):
            rp = row[p]
            r[p] += rp * v
            for q in range(p, k):
                g[p, q] += rp * row[q]
        c1, s1 = c1 * cr - s1 * sr, s1 * cr + c1 * sr
    for p in range(k):
        for q in range(p):
            g[p, q] = g[q, p]
    return yy


@jit
def _mains_sse(y, i0, i1, t0, dt, f, g, r):
    """SSE of the line-only and of the line + mains fit at ``f`` over y[i0:i1]; ``r`` gets the
    mains fit's coefficients and the returned pair the line-only fit's (NaN when singular)."""
    k = 2 + 2 * N_MAINS_HARMONICS
    yy = _mains_normal(y, i0, i1, t0, dt, f, g, r)
    det = g[0, 0] * g[1, 1] - g[0, 1] * g[0, 1]
    sse_line = np.nan
    a0 = 0.0
    a1 = 0.0
    if det > 0.0:
        a0 = (r[0] * g[1, 1] - g[0, 1] * r[1]) / det
        a1 = (g[0, 0] * r[1] - g[0, 1] * r[0]) / det
        sse_line = yy - (a0 * r[0] + a1 * r[1])
    rhs = r.copy()
    if not solve_small(g, r, k):
        return sse_line, np.nan, a0, a1
    sse = yy
    for p in range(k):
        sse -= r[p] * rhs[p]
    return sse_line, sse, a0, a1


@jit
def _held_out_sse(y, i0, i1, j0, j1, t0, dt, f, coef, a0, a1):
    """SSE over y[j0:j1] of the line (a0, a1) and of the line + mains fit (coef) fitted on
    [i0, i1), both extrapolated there."""
    m = i1 - i0
    ic = 0.5 * (i0 + i1 - 1)
    sse_line = 0.0
    sse = 0.0
    for i in range(j0, j1):
        u = (i - ic) / m
        t = t0 + i * dt
        fit = coef[0] + coef[1] * u
        for h in range(N_MAINS_HARMONICS):
            w = 2.0 * math.pi * f * (h + 1) * t
            fit += coef[2 + 2 * h] * math.sin(w) + coef[3 + 2 * h] * math.cos(w)
        d = y[i] - fit
        sse += d * d
        d = y[i] - (a0 + a1 * u)
        sse_line += d * d
    return sse_line, sse


@jit
def fit_mains(y, i0, i1, t0, dt, k_mains):
    """Fit 50 or 60 Hz mains with harmonics 2-5 (plus a line) to the baseline y[i0:i1].

    Returns ``(frequency, coefficients)``: the frequency whose fit leaves the smaller residual,
    accepted when (a) it lowers the SSE of a straight line by more than ``k_mains^2`` residual
    variances per mains coefficient, and (b) fitted on the first MAINS_TRAIN of the baseline it
    predicts the rest: it removes at least MAINS_MIN_SHARE of the held-out residual of the line
    fitted on the same part. Interference is periodic and so predictable; broadband noise (1/f,
    background EMG) that a 50 Hz fit happens to absorb is not, and subtracting it from the
    response would add error. Frequency 0 when it is not accepted.
    """
    k = 2 + 2 * N_MAINS_HARMONICS
    g = np.empty((k, k))
    r = np.empty(k)
    best_f = 0.0
    best = np.zeros(k)
    best_sse = np.inf
    sse_line = np.nan
    m = i1 - i0
    i_mid = i0 + int(MAINS_TRAIN * m)
    if i_mid - i0 <= 2 * k or i1 - i_mid < k:
        return 0.0, best
    for f in MAINS_FREQUENCIES:
        sl, sse, _, _ = _mains_sse(y, i0, i1, t0, dt, f, g, r)
        sse_line = sl
        if sse < best_sse:
            best_sse = sse
            best_f = f
            for p in range(k):
                best[p] = r[p]
    if best_f == 0.0 or not math.isfinite(sse_line):
        return 0.0, best
    var = best_sse / (m - k) if best_sse > 0.0 else 0.0
    if not sse_line - best_sse > k_mains * k_mains * var * (k - 2):
        return 0.0, best
    _, sse_tr, a0, a1 = _mains_sse(y, i0, i_mid, t0, dt, best_f, g, r)
    if not math.isfinite(sse_tr):
        return 0.0, best
    held_line, held = _held_out_sse(y, i0, i_mid, i_mid, i1, t0, dt, best_f, r, a0, a1)
    if not held <= (1.0 - MAINS_MIN_SHARE) * held_line:
        return 0.0, best
    return best_f, best


@jit
def subtract_mains(y, n, t0, dt, f, coef):
    """y[i] -= the fitted mains harmonics (not the line) for every sample i < n."""
    w = 2.0 * math.pi * f * dt
    cr = math.cos(w)
    sr = math.sin(w)
    ph = 2.0 * math.pi * f * t0
    c1 = math.cos(ph)
    s1 = math.sin(ph)
    for i in range(n):
        ch = c1
        sh = s1
        acc = 0.0
        for h in range(N_MAINS_HARMONICS):
            acc += coef[2 + 2 * h] * sh + coef[3 + 2 * h] * ch
            ch, sh = ch * c1 - sh * s1, sh * c1 + ch * s1
        y[i] -= acc
        c1, s1 = c1 * cr - s1 * sr, s1 * cr + c1 * sr


# ---- numpy reference twins ------------------------------------------------------------


def ref_block_noise(x, i0, i1, block):
    x = np.asarray(x[i0:i1], dtype=np.float64)
    nb = x.size // block
    if nb == 0:
        return np.nan
    blocks = x[: nb * block].reshape(nb, block)
    blocks = blocks[np.isfinite(blocks).all(axis=1)]
    if blocks.shape[0] == 0:
        return np.nan
    u = np.arange(block) - 0.5 * (block - 1)
    slope = blocks @ u / np.dot(u, u)
    resid = blocks - blocks.mean(axis=1, keepdims=True) - slope[:, None] * u[None, :]
    ms = (resid**2).sum(axis=1) / (block - 2)
    rms = np.sort(np.sqrt(ms[ms > 0]))
    if rms.size == 0:
        return 0.0
    val = float(np.quantile(rms, NOISE_QUANTILE))
    c = 2.0 / (9.0 * (block - 2))
    return val / math.sqrt((1.0 - c + _Z_QUANTILE * math.sqrt(c)) ** 3)


def ref_settle_index(x, i0, i1, level, band, run):
    seg = np.asarray(x[i0:i1], dtype=np.float64)
    if seg.size < run:
        return -1
    ok = np.abs(seg - level) <= band
    full = sliding_window_view(ok, run).all(axis=1)
    hits = np.flatnonzero(full)
    return int(i0 + hits[0]) if hits.size else -1


def ref_smooth_all(x, a, n, level, h):
    """The smoothed deviation s[i - a] for every i in [a, n) (sums in the kernel's order, so a
    clipped plateau keeps the same first minimum)."""
    seg = np.asarray(x[a:n], dtype=np.float64)
    m, w = seg.size, 2 * h + 1
    out = np.empty(m)
    for k in range(m):  # edges: windows shrunk to [a, n)
        if h <= k < m - h:
            continue
        part = seg[max(k - h, 0) : min(k + h + 1, m)]
        out[k] = np.cumsum(part)[-1] / part.size - level
    if m > 2 * h:
        sums = np.cumsum(sliding_window_view(seg, w), axis=1)[:, -1]
        out[h : m - h] = sums * (1.0 / w) - level
    return out


def ref_window_noise(v, i0, i1):
    x = np.asarray(v[i0:i1], dtype=np.float64)
    if x.size < MIN_QUIET:
        return np.nan
    u = np.arange(x.size) - 0.5 * (x.size - 1)
    b = np.dot(u, x) / np.dot(u, u)
    return ref_mad_sd(x - (x.mean() + b * u))


def ref_decision_noise(v, i0, i1, w, lag):
    x = np.asarray(v[i0:i1], dtype=np.float64)
    m = x.size - w - lag
    if m < 2 * MIN_QUIET or w < 1:
        return np.nan, np.nan
    stat = x[w + lag : w + lag + m] - sliding_window_view(x, w).mean(axis=1)[:m]
    return float(np.median(stat)), ref_mad_sd(stat)


def ref_fit_mains(y, i0, i1, t0, dt, k_mains):
    k = 2 + 2 * N_MAINS_HARMONICS

    def fit(j0, j1, f):
        """Line and line + mains least-squares fits on y[j0:j1]: (sse_line, sse, coef, line)."""
        x = np.asarray(y[j0:j1], dtype=np.float64)
        idx = np.arange(j0, j1)
        u = (idx - 0.5 * (j0 + j1 - 1)) / (j1 - j0)
        line = np.c_[np.ones(idx.size), u]
        a = np.linalg.lstsq(line, x, rcond=None)[0]
        design = np.hstack([line, _mains_columns(t0 + idx * dt, f)])
        coef = np.linalg.lstsq(design, x, rcond=None)[0]
        return (
            float(np.sum((x - line @ a) ** 2)),
            float(np.sum((x - design @ coef) ** 2)),
            coef,
            a,
        )

    m = i1 - i0
    i_mid = i0 + int(MAINS_TRAIN * m)
    if i_mid - i0 <= 2 * k or i1 - i_mid < k:
        return 0.0, np.zeros(k)
    fits = [(fit(i0, i1, f), f) for f in MAINS_FREQUENCIES]
    (sse_line, sse, coef, _), f = min(fits, key=lambda item: item[0][1])
    var = max(sse, 0.0) / (m - k)
    if not sse_line - sse > k_mains * k_mains * var * (k - 2):
        return 0.0, coef
    _, _, c_tr, a_tr = fit(i0, i_mid, f)
    idx = np.arange(i_mid, i1)
    u = (idx - 0.5 * (i0 + i_mid - 1)) / (i_mid - i0)
    x = np.asarray(y[i_mid:i1], dtype=np.float64)
    line = np.c_[np.ones(idx.size), u]
    held_line = float(np.sum((x - line @ a_tr) ** 2))
    held = float(np.sum((x - np.hstack([line, _mains_columns(t0 + idx * dt, f)]) @ c_tr) ** 2))
    if not held <= (1.0 - MAINS_MIN_SHARE) * held_line:
        return 0.0, coef
    return f, coef


def _mains_columns(t, f):
    h = np.arange(1, N_MAINS_HARMONICS + 1)
    arg = 2 * np.pi * f * t[:, None] * h[None, :]
    return np.stack([np.sin(arg), np.cos(arg)], axis=2).reshape(t.size, -1)


def ref_subtract_mains(y, n, t0, dt, f, coef):
    t = t0 + np.arange(n) * dt
    h = np.arange(1, N_MAINS_HARMONICS + 1)[:, None]
    wave = coef[2::2, None] * np.sin(2 * np.pi * h * f * t) + coef[3::2, None] * np.cos(
        2 * np.pi * h * f * t
    )
    y[:n] -= wave.sum(axis=0)
