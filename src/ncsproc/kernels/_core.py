"""Numba kernels: one NCS trace in, every measure out, in a few passes over the samples.

Plain functions compiled by :func:`ncsproc.kernels._jit.jit` (nopython, nogil, no fastmath). No
xarray, dask, logging or exceptions in here: problems are reported as a status code and QC flag
bits, values that cannot be measured are NaN. :mod:`ncsproc.kernels._reference` holds the numpy
twin of every function; the tests require the two to agree.

The algorithm (documented with its parameters in ``formats/measures.md``) per trace:

0. The valid samples are copied to a float64 scratch row (float32 input is read as it is; the
   2-D array is never copied).
1. Noise SD: 25th percentile over the trace of the per-block RMS of second differences / sqrt(6)
   (blocks of ``noise_block``), corrected to a Gaussian SD. Second differences ignore smooth
   signal (responses, artefact tails) and the low quantile ignores the artefact spike.
2. Stimulus artefact model ``(c0 + c1 t/tau) exp(-t/tau)`` (a critically damped decay; c1 = 0 is
   the plain exponential) plus a constant, fitted by least squares between ``blank_min`` (after
   any clipped plateau) and ``earliest_onset`` (tau on a log grid, then successive parabolic
   interpolation in log tau), and subtracted from the whole trace when it explains those samples
   (residual RMS <= ``k_fit`` SD and a significant improvement over a constant).
3. Baseline level: the pre-trigger segment when it is at least ``pretrigger_min`` long, else a
   quiet window after the artefact ending at ``earliest_onset``; median, then the mean of the
   samples within 3 SD of it. Refined (twice, after the negative peak is known) over the quiet
   stretch up to the negative lobe (plus the pre-trigger): a robust straight line when its slope
   is significant (``baseline_drift``), else a constant.
4. Artefact end: first time after ``blank_min`` from which the (corrected) signal stays within
   ``k_settle`` SD of the baseline for ``settle`` (adaptive blanking); nothing before it is ever
   searched.
5. Detection on a centred moving average (``smooth``) of the baseline-corrected signal, noise SD
   scaled by 1/sqrt(width): the negative peak is the smoothed minimum in the search window; a
   response exists when it is at least ``max(k_response SD, k_detect SD, min_amplitude)`` deep
   (clipping checked there, ``saturation_run``) and a sustained
   departure (``min_sustain`` beyond ``k_detect`` SD, one polarity) leads into it without a quiet
   gap longer than ``max_gap``.
6. Onset: the leading edge of that first lobe between the detection threshold and
   ``edge_fraction`` of the lobe's peak is fitted as ``c (t - onset)^edge_power`` (a straight line
   through the ``1/edge_power`` power of the deviation) and extrapolated to the baseline; when the
   fit is not possible, back-tracking to the last sample within ``k_back`` SD of the baseline.
   A positive first departure is the onset too, and is flagged (back-tracked); so is a positive
   run just before the negative departure whose summed deviation exceeds ``k_dip`` SD.
7. Peak: least-squares parabola over ``peak_fit`` around the smoothed minimum (sub-sample
   latency); amplitude = baseline - vertex. With ``peak_smoothed`` the latency is the
   vertex of the same fit to the smoothed deviation; with ``peak_fit_exponent`` the
   latency fit is narrower at high and wider at low SNR.
8. Durations and area from the smoothed signal: first return to baseline after the peak;
   negative lobes (maximal runs below baseline) at least ``lobe_fraction`` of the amplitude (and
   ``k_detect`` SD) deep, the last one ending the total duration; area of the part below
   baseline between onset and that end.
9. F-wave traces: once the M wave has returned to baseline (a quiet run of ``f_gap`` after its
   last negative lobe; not before ``f_start``), the first sustained departure is the F wave, its
   onset found as in 6 with ``f_edge_power``.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import jit
from ._params import (
    P_ARTEFACT_TAU_MAX,
    P_ARTEFACT_TAU_MIN,
    P_BASELINE_DRIFT,
    P_BASELINE_MAX,
    P_BASELINE_MIN,
    P_BLANK_MAX,
    P_BLANK_MIN,
    P_EARLIEST_ONSET,
    P_EDGE_FRACTION,
    P_EDGE_POWER,
    P_F_EDGE_POWER,
    P_F_END,
    P_F_GAP,
    P_F_START,
    P_F_SUSTAIN,
    P_K_BACK,
    P_K_DETECT,
    P_K_DIP,
    P_K_F,
    P_K_FIT,
    P_K_RESPONSE,
    P_K_SETTLE,
    P_LOBE_FRACTION,
    P_MAX_GAP,
    P_MIN_AMPLITUDE,
    P_MIN_SUSTAIN,
    P_NOISE_BLOCK,
    P_PEAK_FIT,
    P_PEAK_FIT_EXPONENT,
    P_PEAK_SMOOTHED,
    P_PRETRIGGER_MIN,
    P_SATURATION_RUN,
    P_SEARCH_END,
    P_SETTLE,
    P_SMOOTH,
    PEAK_FIT_REF_SNR,
)

# ---- outputs ------------------------------------------------------------------------------
O_ONSET = 0
O_PEAK = 1
O_AMPLITUDE = 2
O_P2P = 3
O_NEG_DURATION = 4
O_TOTAL_DURATION = 5
O_NEG_AREA = 6
O_SNR = 7
O_F_LATENCY = 8
O_BASELINE = 9
O_NOISE = 10
O_ARTEFACT_END = 11
N_OUT = 12

# ---- status codes (one per trace) ---------------------------------------------------------
ST_OK = 0
ST_NO_RESPONSE = 1
ST_SATURATED = 2
ST_NO_BASELINE = 3
ST_NONFINITE = 4
ST_TOO_SHORT = 5

# ---- QC flag bits (any number per trace) --------------------------------------------------
F_POSITIVE_ONSET = 1
F_PRETRIGGER_BASELINE = 2
F_POST_ARTEFACT_BASELINE = 4
F_NO_F_WAVE = 8
F_NO_RETURN = 16
F_NAN_IN_BASELINE = 32
F_ARTEFACT_UNSETTLED = 64
F_ONSET_AT_ARTEFACT = 128
F_PEAK_AT_WINDOW_END = 256
F_ARTEFACT_SUBTRACTED = 512
F_ONSET_BACKTRACKED = 1024
F_BASELINE_REFINED = 2048
F_BASELINE_SLOPE = 4096

MIN_SAMPLES = 16
NOISE_QUANTILE = 0.25
_Z_QUANTILE = -0.6744897501960817  # standard normal quantile of NOISE_QUANTILE
_TRIM_SD = 3.0
NOISE_FLOOR = 1e-12  # V: thresholds of noise-free (synthetic) traces stay meaningful
# second differences of white noise: variance 6 sigma^2, lag-1/lag-2 correlations -2/3 and 1/6,
# so a block of m of them carries about m / (1 + 2 (4/9 + 1/36)) degrees of freedom.
_D2_DOF_DIVISOR = 1.0 + 2.0 * (4.0 / 9.0 + 1.0 / 36.0)
N_TAU_GRID = 8
N_PARABOLIC = 4
_ART_MIN_SAMPLES = 8
_ART_SIGNIFICANCE = 25.0  # the artefact model must lower the SSE by this many noise variances
_ART_TOL = 1e-6  # the fitted artefact is subtracted until it is below this many noise SDs


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
def block_noise(x, i0, i1, block, tmp):
    """Robust noise SD of x[i0:i1] from second differences (see the module docstring).

    Per block of ``block`` samples: RMS of its ``block - 2`` second differences / sqrt(6); blocks
    with a non-finite sample, and exactly flat blocks (unless all are), are skipped; the 25th
    percentile (linear interpolation) over the
    blocks, divided by the same quantile of that statistic for Gaussian noise (Wilson-Hilferty,
    with the effective degrees of freedom of correlated second differences). NaN: no block.
    """
    k = 0
    b0 = i0
    m = block - 2
    m4 = m - m % 4
    while b0 + block <= i1:
        # four interleaved partial sums (d2 index k mod 4): four independent add chains
        xb = x[b0 : b0 + block]
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for j in range(0, m4, 4):
            d = xb[j + 2] - 2.0 * xb[j + 1] + xb[j]
            s0 += d * d
            d = xb[j + 3] - 2.0 * xb[j + 2] + xb[j + 1]
            s1 += d * d
            d = xb[j + 4] - 2.0 * xb[j + 3] + xb[j + 2]
            s2 += d * d
            d = xb[j + 5] - 2.0 * xb[j + 4] + xb[j + 3]
            s3 += d * d
        for j in range(m4, m):
            d = xb[j + 2] - 2.0 * xb[j + 1] + xb[j]
            r = j - m4
            if r == 0:
                s0 += d * d
            elif r == 1:
                s1 += d * d
            else:
                s2 += d * d
        ss = (s0 + s1) + (s2 + s3)
        if math.isfinite(ss):
            tmp[k] = ss / (6.0 * m)  # mean square; the root of only two is ever needed
            k += 1
        b0 += block
    if k == 0:
        return np.nan
    # exactly flat blocks (a clipped plateau, padding) say nothing about the noise
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
    return val / chi_quantile_factor(_Z_QUANTILE, m / _D2_DOF_DIVISOR)


@jit
def artefact_sse(y, i0, i1, t0, dt, tau):
    """Least-squares fit of ``L + (c0 + c1 t/tau) exp(-t/tau)`` to y[i0:i1] for one tau.

    Returns ``(sse, L, c0, c1)``; sse is inf when the normal equations are singular.
    """
    u = (t0 + i0 * dt) / tau
    du = dt / tau
    e = math.exp(-u)
    r = math.exp(-du)
    s01 = 0.0
    s02 = 0.0
    s11 = 0.0
    s12 = 0.0
    s22 = 0.0
    b0 = 0.0
    b1 = 0.0
    b2 = 0.0
    syy = 0.0
    yv = y[i0:i1]
    for i in range(i1 - i0):
        f2 = u * e
        v = yv[i]
        s01 += e
        s02 += f2
        s11 += e * e
        s12 += e * f2
        s22 += f2 * f2
        b0 += v
        b1 += e * v
        b2 += f2 * v
        syy += v * v
        e *= r
        u += du
    s00 = float(i1 - i0)
    m00 = s11 * s22 - s12 * s12
    m01 = s01 * s22 - s12 * s02
    m02 = s01 * s12 - s11 * s02
    det = s00 * m00 - s01 * m01 + s02 * m02
    if not abs(det) > 0.0:
        return np.inf, 0.0, 0.0, 0.0
    cl = (b0 * m00 - s01 * (b1 * s22 - s12 * b2) + s02 * (b1 * s12 - s11 * b2)) / det
    c0 = (s00 * (b1 * s22 - s12 * b2) - b0 * m01 + s02 * (s01 * b2 - b1 * s02)) / det
    c1 = (s00 * (s11 * b2 - b1 * s12) - s01 * (s01 * b2 - b1 * s02) + b0 * m02) / det
    sse = syy - (cl * b0 + c0 * b1 + c1 * b2)
    if sse < 0.0:
        sse = 0.0
    return sse, cl, c0, c1


@jit
def fit_artefact(y, i0, i1, t0, dt, tau_min, tau_max):
    """Fit the artefact model over y[i0:i1] (tau: log grid, then parabolic interpolation).

    Returns ``(tau, L, c0, c1, sse, sse_const)``; ``sse_const`` is the SSE of a constant alone.
    """
    m = i1 - i0
    mean = 0.0
    for i in range(i0, i1):
        mean += y[i]
    mean /= m
    sse_const = 0.0
    for i in range(i0, i1):
        d = y[i] - mean
        sse_const += d * d
    lmin = math.log(tau_min)
    lmax = math.log(tau_max)
    step = (lmax - lmin) / (N_TAU_GRID - 1)
    best = 0
    bsse = np.inf
    prev = np.inf
    f_before = np.inf  # SSE of the grid point before the best one
    f_after = np.inf  # and after it
    # the coefficients at the current best point (its fit is never repeated)
    b_cl = 0.0
    b_c0 = 0.0
    b_c1 = 0.0
    for g in range(N_TAU_GRID):
        sse, cl, c0, c1 = artefact_sse(y, i0, i1, t0, dt, math.exp(lmin + g * step))
        if sse < bsse:
            bsse = sse
            best = g
            f_before = prev
            b_cl = cl
            b_c0 = c0
            b_c1 = c1
        elif g == best + 1:
            f_after = sse
        prev = sse
    # successive parabolic interpolation in log tau, starting from the best grid point and its
    # neighbours (the SSE is smooth in log tau near its minimum)
    lt = lmin + best * step
    if 0 < best < N_TAU_GRID - 1:
        x1 = lt - step
        x2 = lt
        x3 = lt + step
        f1 = f_before
        f2 = bsse
        f3 = f_after
        for _ in range(N_PARABOLIC):
            num = (x2 - x1) * (x2 - x1) * (f2 - f3) - (x2 - x3) * (x2 - x3) * (f2 - f1)
            den = (x2 - x1) * (f2 - f3) - (x2 - x3) * (f2 - f1)
            if not (den != 0.0 and math.isfinite(num) and math.isfinite(den)):
                break
            xv = x2 - 0.5 * num / den
            if not (x1 < xv < x3) or xv == x2:
                break
            fv, cl, c0, c1 = artefact_sse(y, i0, i1, t0, dt, math.exp(xv))
            if fv <= f2:
                if xv < x2:
                    x3 = x2
                    f3 = f2
                else:
                    x1 = x2
                    f1 = f2
                x2 = xv
                f2 = fv
                b_cl = cl
                b_c0 = c0
                b_c1 = c1
            elif xv < x2:
                x1 = xv
                f1 = fv
            else:
                x3 = xv
                f3 = fv
        lt = x2
        bsse = f2
    return math.exp(lt), b_cl, b_c0, b_c1, bsse, sse_const


@jit
def clipped_until(y, i0, i1):
    """First index after the last sample of y[i0:i1] that repeats its predecessor (which may
    lie just before i0) exactly at the window's minimum or maximum (a clipped artefact); i0
    when there is none."""
    vmin = y[i0]
    vmax = y[i0]
    for i in range(i0, i1):
        v = y[i]
        if v < vmin:
            vmin = v
        if v > vmax:
            vmax = v
    start = i0
    for i in range(i0 if i0 > 0 else 1, i1):
        v = y[i]
        if v == y[i - 1] and (v == vmin or v == vmax):
            start = i + 1
    return start


@jit
def subtract_artefact(y, i0, i1, t0, dt, tau, c0, c1, tol):
    """y[i] -= (c0 + c1 u) exp(-u), u = t_i / tau, for i in [i0, i1) (exp by recurrence).

    Stops at the first sample past the hump (u >= 1, where the model only decays) whose
    correction bound ``exp(-u) (|c0| + |c1| u)`` is below ``tol`` (V): the rest of the trace
    would change by less than that.
    """
    u = (t0 + i0 * dt) / tau
    du = dt / tau
    e = math.exp(-u)
    r = math.exp(-du)
    a0 = abs(c0)
    a1 = abs(c1)
    yv = y[i0:i1] if i1 > i0 else y[0:0]
    for k in range(yv.shape[0]):
        if u >= 1.0 and e * (a0 + a1 * u) < tol:
            break
        yv[k] -= e * (c0 + c1 * u)
        e *= r
        u += du


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
def robust_line(y, i0, i1, j0, j1, sigma, tmp):
    """Robust straight line through y over [i0, i1) and [j0, j1) (either may be empty).

    The finite samples within 3 SD of their median are kept; returns ``(mean, c, b, se_b, n)``:
    their mean, the least-squares line ``c + b * i`` (i = sample index), the standard error of
    its slope for noise SD ``sigma``, and how many samples were kept.
    """
    k = 0
    for i in range(i0, i1):
        if math.isfinite(y[i]):
            tmp[k] = y[i]
            k += 1
    for i in range(j0, j1):
        if math.isfinite(y[i]):
            tmp[k] = y[i]
            k += 1
    if k < 4:
        return np.nan, np.nan, 0.0, np.inf, 0
    med = quantile_inplace(tmp, k, 0.5)
    lim = _TRIM_SD * sigma
    ic = 0.5 * (i0 + j1) if i1 > i0 else 0.5 * (j0 + j1)
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    t0 = 0.0
    t1 = 0.0
    for seg in range(2):
        lo = i0 if seg == 0 else j0
        hi = i1 if seg == 0 else j1
        for i in range(lo, hi):
            v = y[i]
            if math.isfinite(v) and abs(v - med) <= lim:
                u = i - ic
                s0 += 1.0
                s1 += u
                s2 += u * u
                t0 += v
                t1 += u * v
    if s0 < 4.0:
        return med, med, 0.0, np.inf, int(s0)
    mean = t0 / s0
    den = s0 * s2 - s1 * s1
    if not den > 0.0:
        return mean, mean, 0.0, np.inf, int(s0)
    b = (s0 * t1 - s1 * t0) / den
    c = (t0 - b * s1) / s0 - b * ic
    return mean, c, b, sigma * math.sqrt(s0 / den), int(s0)


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
def back_track(s, a, c, pol, level, lo):
    """Last-baseline-sample onset of the departure detected at ``c`` with polarity ``pol``.

    Walks back from ``c`` to the last sample ``j >= lo`` whose deviation (times ``pol``) is at
    most ``level``; the onset is where the straight line through samples j and j + 1 meets the
    baseline (zero), clipped to [j, j + 1]. Returns ``(onset, reached_lo)``.
    """
    j = c - 1
    while j >= lo and pol * s[j - a] > level:
        j -= 1
    if j < lo:
        return float(lo), True
    v0 = pol * s[j - a]
    v1 = pol * s[j + 1 - a]
    frac = 0.0
    if v1 > v0 and v0 < 0.0:
        frac = -v0 / (v1 - v0)
        if frac > 1.0:
            frac = 1.0
    return j + frac, False


@jit
def edge_onset(s, a, c, pol, thr, hi, power, stop):
    """Onset (fractional sample) extrapolated from the leading edge that starts at ``c``.

    Fits a straight line to ``(pol * s_i)^(1/power)`` over the samples from ``c`` on whose
    deviation is beyond ``thr``, up to and including the first one at or beyond ``hi`` (and not
    past ``stop``), and returns where it meets zero; NaN with fewer than 2 points or a slope <= 0.
    """
    inv = 1.0 / power
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    t0 = 0.0
    t1 = 0.0
    for i in range(c, stop + 1):
        v = pol * s[i - a]
        if v >= thr:
            z = v**inv
            fi = float(i - c)
            s0 += 1.0
            s1 += fi
            s2 += fi * fi
            t0 += z
            t1 += fi * z
        if v >= hi:
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
    return c - icpt / slope


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
def onset_of(s, a, n, c, pol, thr, back, frac, power, lo, stop):
    """Onset of the departure at ``c``: edge extrapolation (negative first lobes, or
    ``power == 1``), else back-tracking. Returns ``(onset, reached_lo, backtracked)``, the onset
    in fractional samples within [lo, c]."""
    pk = lobe_peak(s, a, n, c, pol, stop)
    hi = frac * pk
    floor2 = 2.0 * thr if 2.0 * thr < pk else pk
    if hi < floor2:
        hi = floor2
    on = np.nan
    if pol < 0 or power == 1.0:
        on = edge_onset(s, a, c, pol, thr, hi, power, stop)
    bt, reached = back_track(s, a, c, pol, back, lo)
    if not math.isfinite(on):
        return bt, reached, True
    if on > c:
        on = float(c)
    if on < lo:
        return float(lo), True, False
    return on, False, False


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
def quiet_run_start(s, a, n, i0, thr, run):
    """First index >= i0 that starts ``run`` samples of s within +-thr (-1: none)."""
    q = 0
    for i in range(i0, n):
        if abs(s[i - a]) <= thr:
            q += 1
            if q >= run:
                return i - run + 1
        else:
            q = 0
    return -1


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
def plateau_run(x, p, w, i0, i1, lowest):
    """Longest run of consecutive samples equal to the extreme (minimum if ``lowest``, else
    maximum) of x in the window [p - w, p + w] within [i0, i1); returns ``(run, extreme)``."""
    lo = p - w if p - w > i0 else i0
    hi = p + w + 1 if p + w + 1 < i1 else i1
    ext = x[lo]
    for i in range(lo, hi):
        v = x[i]
        if (v < ext) if lowest else (v > ext):
            ext = v
    run = 0
    best = 0
    for i in range(lo, hi):
        if x[i] == ext:
            run += 1
            if run > best:
                best = run
        else:
            run = 0
    return best, ext


@jit
def extreme_plateau(x, i0, i1):
    """Longest run of consecutive samples equal to the minimum or the maximum of x[i0:i1]."""
    if i1 <= i0:
        return 0
    vmin = x[i0]
    vmax = x[i0]
    for i in range(i0, i1):
        v = x[i]
        if v < vmin:
            vmin = v
        if v > vmax:
            vmax = v
    best = 0
    rmin = 0
    rmax = 0
    for i in range(i0, i1):
        v = x[i]
        if v == vmin:
            rmin += 1
            if rmin > best:
                best = rmin
        else:
            rmin = 0
        if v == vmax:
            rmax += 1
            if rmax > best:
                best = rmax
        else:
            rmax = 0
    return best


@jit
def _unsettled(x, n, fs, t0, prm, flags):
    """Status of a trace whose artefact never settles: ``saturated`` when the amplifier clipped
    after ``blank_max`` (the clipped response is why), else ``no_baseline``."""
    i0 = time_index(prm[P_BLANK_MAX], t0, fs)
    if i0 < 0:
        i0 = 0
    if extreme_plateau(x, i0, n) >= n_of(prm[P_SATURATION_RUN], fs, 3):
        return ST_SATURATED, flags | F_ARTEFACT_UNSETTLED
    return ST_NO_BASELINE, flags | F_ARTEFACT_UNSETTLED


@jit
def measure_trace(x, n, fs, t0, prm, is_f, y, s, tmp, out):
    """Measure one trace; fill ``out`` (N_OUT values) and return ``(status, flags)``.

    ``x`` is the trace's row (float32 or float64; only ``x[:n]`` is read), ``prm`` the
    parameter row of its modality, ``y`` and ``s`` float64 scratch arrays of at least n + 1
    elements (the corrected signal, its smoothed deviation) and ``tmp`` one of at least
    3 (n + 1) (work space; selections use three times the values they select from).
    """
    for k in range(N_OUT):
        out[k] = np.nan
    flags = 0
    if n < MIN_SAMPLES:
        return ST_TOO_SHORT, flags
    # copy and count the finite samples without a branch (v - v is 0 exactly when v is
    # finite), so the loop vectorises; the last bad sample is looked for only when there is one
    n_finite = 0
    for i in range(n):
        v = float(x[i])
        y[i] = v
        n_finite += (v - v) == 0.0
    if n_finite == 0:
        return ST_NONFINITE, flags
    last_bad = -1
    if n_finite < n:
        for i in range(n - 1, -1, -1):
            if not math.isfinite(y[i]):
                last_bad = i
                break
    dt = 1.0 / fs

    # 1. noise
    sigma = block_noise(y, 0, n, n_of(prm[P_NOISE_BLOCK], fs, 8), tmp)
    if not sigma >= 0.0:
        return ST_NO_BASELINE, flags | F_NAN_IN_BASELINE
    sig = sigma if sigma > NOISE_FLOOR else NOISE_FLOOR
    h = n_of(prm[P_SMOOTH], fs, 1) // 2
    sig_s = sig / math.sqrt(2 * h + 1)

    i_stim = time_index(0.0, t0, fs)
    if i_stim < 0:
        i_stim = 0
    if i_stim > n:
        i_stim = n
    i_blank = time_index(prm[P_BLANK_MIN], t0, fs)
    if i_blank < i_stim:
        i_blank = i_stim
    i_eo = time_index(prm[P_EARLIEST_ONSET], t0, fs)
    if i_eo > n:
        i_eo = n

    # 2. artefact model, fitted between blank_min and earliest_onset
    fit_level = np.nan
    m = i_eo - i_blank
    if prm[P_K_FIT] > 0.0 and m >= _ART_MIN_SAMPLES:
        ok = True
        for i in range(i_blank, i_eo):
            if not math.isfinite(y[i]):
                ok = False
                break
        # a clipped artefact: fit after its last plateau sample at the window's extremes
        i_fit = clipped_until(y, i_blank, i_eo) if ok else i_blank
        m = i_eo - i_fit
        if ok and m >= _ART_MIN_SAMPLES:
            tau, cl, c0, c1, sse, sse_c = fit_artefact(
                y, i_fit, i_eo, t0, dt, prm[P_ARTEFACT_TAU_MIN], prm[P_ARTEFACT_TAU_MAX]
            )
            if (
                math.isfinite(sse)
                and sse <= prm[P_K_FIT] * prm[P_K_FIT] * sig * sig * m
                and sse_c - sse >= _ART_SIGNIFICANCE * sig * sig
            ):
                subtract_artefact(y, i_blank, n, t0, dt, tau, c0, c1, _ART_TOL * sig)
                fit_level = cl
                flags |= F_ARTEFACT_SUBTRACTED

    # 3-4. baseline and artefact end
    n_settle = n_of(prm[P_SETTLE], fs, 1)
    band = prm[P_K_SETTLE] * sig
    n_bmax = n_of(prm[P_BASELINE_MAX], fs, 4)
    n_bmin = n_of(prm[P_BASELINE_MIN], fs, 4)
    pre0 = 0
    pre1 = 0
    if i_stim * dt >= prm[P_PRETRIGGER_MIN] and i_stim >= 4:
        b0 = i_stim - n_bmax
        if b0 < 0:
            b0 = 0
        b1 = i_stim
        pre0 = b0
        pre1 = b1
        flags |= F_PRETRIGGER_BASELINE
        level, nfin = robust_level(y, b0, b1, sig, tmp)
        if nfin < b1 - b0:
            flags |= F_NAN_IN_BASELINE
        if nfin < 4 or 2 * nfin < b1 - b0:
            return ST_NO_BASELINE, flags
        a = settle_index(y, i_blank, n, level, band, n_settle)
    else:
        flags |= F_POST_ARTEFACT_BASELINE
        if math.isfinite(fit_level):
            level0 = fit_level
        else:
            w0 = i_eo - n_bmin
            if w0 < i_blank:
                w0 = i_blank
            w1 = w0 + n_bmin
            if w1 > n:
                w1 = n
            if w1 - w0 < 4:
                return ST_NO_BASELINE, flags
            level0, nfin = robust_level(y, w0, w1, sig, tmp)
            if nfin < 4:
                return ST_NO_BASELINE, flags | F_NAN_IN_BASELINE
        a = settle_index(y, i_blank, n, level0, band, n_settle)
        if a < 0:
            return _unsettled(x, n, fs, t0, prm, flags)
        b1 = i_eo
        if b1 < a + n_bmin:
            b1 = a + n_bmin
        if b1 > a + n_bmax:
            b1 = a + n_bmax
        if b1 > n:
            b1 = n
        level, nfin = robust_level(y, a, b1, sig, tmp)
        if nfin < b1 - a:
            flags |= F_NAN_IN_BASELINE
        if nfin < 4:
            return ST_NO_BASELINE, flags
    if a < 0 or (a - i_stim) * dt > prm[P_BLANK_MAX]:
        return _unsettled(x, n, fs, t0, prm, flags)
    out[O_BASELINE] = level
    out[O_NOISE] = sigma
    out[O_ARTEFACT_END] = t0 + a * dt

    # search window [a, e) for the response (for F-wave traces the M wave: the largest one)
    e = time_index(prm[P_SEARCH_END], t0, fs)
    if e > n:
        e = n
    n_sus = n_of(prm[P_MIN_SUSTAIN], fs, 1)
    if e - a < n_sus + 2:
        return ST_TOO_SHORT, flags
    if last_bad >= a:
        return ST_NONFINITE, flags

    # 5. smoothed deviation over [a, n), negative peak and response test
    smooth_into(y, a, n, level, h, s)
    p, vmin, q, vpos = arg_extremes(s, a, a, e)
    thr = prm[P_K_DETECT] * sig_s
    n_gap = n_of(prm[P_MAX_GAP], fs, 1)
    # baseline refinement: a robust straight line (or a constant when its slope is not
    # significant) through the quiet stretch between the artefact and the negative lobe (less
    # max_gap), and the pre-trigger segment when there is one. It catches drift and the poorly
    # determined constant of a short post-artefact window. Twice: the second pass finds the
    # negative lobe relative to the first pass's baseline (when drift hid it, the first pass
    # ends its window 3 max_gap before the negative peak).
    cur_c = level
    cur_b = 0.0
    w0 = i_eo - n_bmin
    if w0 < a:
        w0 = a
    for it in range(2):
        j = p
        while j > a and s[j - 1 - a] < -thr:
            j -= 1
        w1 = j - n_gap
        if w1 - w0 < n_bmin:
            if it > 0:
                break
            w1 = p - 3 * n_gap
            if w1 - w0 < n_bmin:
                break
        mean2, lc, lb, se_b, n2 = robust_line(y, pre0, pre1, w0, w1, sig, tmp)
        if n2 < 4:
            break
        if prm[P_BASELINE_DRIFT] == 0.0 or not abs(lb) > 3.0 * se_b:
            lc = mean2
            lb = 0.0
        if lb == cur_b and abs(lc + lb * p - (cur_c + cur_b * p)) <= sig_s:
            break
        dc = lc - cur_c
        db = lb - cur_b
        for k in range(n - a):
            s[k] -= dc + db * (a + k)
        cur_c = lc
        cur_b = lb
        flags |= F_BASELINE_REFINED
        if db == 0.0:  # a constant shift keeps both extremes where they are
            vmin = s[p - a]
            vpos = s[q - a]
            continue
        p, vmin, q, vpos = arg_extremes(s, a, a, e)
    if cur_b != 0.0:
        flags |= F_BASELINE_SLOPE
    lb = cur_b
    level = cur_c + cur_b * p
    out[O_BASELINE] = level
    floor = prm[P_MIN_AMPLITUDE]
    need = thr if thr > floor else floor
    k_resp = prm[P_K_RESPONSE] * sig_s
    if k_resp > need:
        need = k_resp
    # clipping: a plateau of identical raw samples at the extreme around either peak, away
    # from the baseline (a flat line is not a clipped response)
    n_sat = n_of(prm[P_SATURATION_RUN], fs, 3)
    run_lo, ext_lo = plateau_run(x, p, n_sat + h + 1, a, e, True)
    run_hi, ext_hi = plateau_run(x, q, n_sat + h + 1, a, e, False)
    if (run_lo >= n_sat and level - ext_lo >= need) or (run_hi >= n_sat and ext_hi - level >= need):
        return ST_SATURATED, flags
    if not -vmin >= need:
        return ST_NO_RESPONSE, flags
    if p == e - 1:
        flags |= F_PEAK_AT_WINDOW_END

    # block of activity leading into the peak: back to the last quiet gap of max_gap
    bs = a
    q = 0
    i = p - 1
    while i >= a:
        if abs(s[i - a]) <= thr:
            q += 1
            if q >= n_gap:
                bs = i + q
                break
        else:
            q = 0
        i -= 1
    c, pol = first_sustained(s[: n - a], a, bs, p + 1, thr, n_sus)
    if c < 0:
        return ST_NO_RESPONSE, flags
    if pol > 0:
        flags |= F_POSITIVE_ONSET

    # 6. onset
    back = prm[P_K_BACK] * sig_s
    on, at_a, bt = onset_of(
        s, a, n, c, pol, thr, back, prm[P_EDGE_FRACTION], prm[P_EDGE_POWER], a, p
    )
    if pol < 0 and prm[P_K_DIP] > 0.0:
        dip = positive_dip(y, s, a, c, level + lb * (c - p), sig, prm[P_K_DIP], n_sus, n_gap)
        if dip >= 0.0 and dip < on:
            on = dip
            at_a = dip <= a
            bt = False
            flags |= F_POSITIVE_ONSET
    if at_a:
        flags |= F_ONSET_AT_ARTEFACT
    if bt:
        flags |= F_ONSET_BACKTRACKED
    out[O_ONSET] = t0 + on * dt

    # 7. peak: parabola through the raw samples around the smoothed minimum
    r = n_of(prm[P_PEAK_FIT], fs, 2) // 2
    off, val = fit_peak(y, level, lb, p, r, r, a, e)
    if not math.isfinite(val):
        off = 0.0
        val = vmin
    amp = -val
    r_lat = latency_half_width(r, amp, sigma, prm[P_PEAK_FIT_EXPONENT])
    if prm[P_PEAK_SMOOTHED] > 0.0:
        # latency from the same fit to the smoothed deviation (baseline already removed)
        off_s, val_s = fit_peak(s, 0.0, 0.0, p - a, r_lat, r_lat, 0, e - a)
        if math.isfinite(val_s):
            off = off_s
    elif r_lat != r:
        off_s, val_s = fit_peak(y, level, lb, p, r_lat, r_lat, a, e)
        if math.isfinite(val_s):
            off = off_s
    out[O_PEAK] = t0 + (p + off) * dt
    out[O_AMPLITUDE] = amp
    out[O_SNR] = 20.0 * math.log10(amp / sigma) if sigma > 0.0 else np.inf

    # 8. after the peak: positive peak, negative lobes, area below baseline. An F-wave
    # trace's M wave ends where it has returned to baseline (a quiet run of f_gap within k_f SD
    # after the peak); the F search starts there.
    e_lobe = e
    e_m = -1
    if is_f:
        thr_f = prm[P_K_F] * sig_s
        n_fgap = n_of(prm[P_F_GAP], fs, 1)
        e_m = quiet_run_start(s, a, n, p, thr_f, n_fgap)
        if e_m >= 0 and e_m + n_fgap < e:
            e_lobe = e_m + n_fgap
    lobe_thr = prm[P_LOBE_FRACTION] * amp
    if lobe_thr < thr:
        lobe_thr = thr
    first_ret, last_end, vmax, no_return = lobes_after_peak(s[p - a : e_lobe - a], p, lobe_thr)
    out[O_P2P] = vmax - vmin
    if no_return:
        flags |= F_NO_RETURN
    if first_ret >= 0.0:
        out[O_NEG_DURATION] = (first_ret - on) * dt
    else:
        flags |= F_NO_RETURN
    if last_end >= 0.0 and not (flags & F_NO_RETURN):
        out[O_TOTAL_DURATION] = (last_end - on) * dt
        i_on = int(math.ceil(on))
        i_end = int(math.floor(last_end)) + 1
        out[O_NEG_AREA] = negative_sum(s[i_on - a : i_end - a]) * dt

    # 9. F wave: the first sustained departure after the M wave (not before f_start)
    if is_f:
        f0 = e_m
        fs0 = time_index(prm[P_F_START], t0, fs)
        if f0 >= 0 and fs0 > f0:
            f0 = fs0
        f1 = time_index(prm[P_F_END], t0, fs)
        if f1 > n:
            f1 = n
        found = False
        if f0 >= 0 and f1 - f0 > 0:
            cf, polf = first_sustained(s[: n - a], a, f0, f1, thr_f, n_of(prm[P_F_SUSTAIN], fs, 1))
            if cf >= 0:
                onf, _, _ = onset_of(
                    s,
                    a,
                    n,
                    cf,
                    polf,
                    thr_f,
                    back,
                    prm[P_EDGE_FRACTION],
                    prm[P_F_EDGE_POWER],
                    f0,
                    n - 1,
                )
                out[O_F_LATENCY] = t0 + onf * dt
                found = True
        if not found:
            flags |= F_NO_F_WAVE
    return ST_OK, flags


def _block_signature():
    from numba import types

    sigs = []
    # writable C-contiguous blocks (the usual case) get their own compilation, an exact match
    # that wins over the any-layout one: unit-stride rows let the copy into the float64
    # scratch vectorise. Read-only or strided blocks take the any-layout version.
    for ftype, layout, readonly in (
        (types.float32, "C", False),
        (types.float64, "C", False),
        (types.float32, "A", True),
        (types.float64, "A", True),
    ):
        sigs.append(
            types.void(
                types.Array(ftype, 2, layout, readonly=readonly),
                types.Array(types.int64, 1, "A", readonly=True),
                types.Array(types.float64, 1, "A", readonly=True),
                types.Array(types.float64, 1, "A", readonly=True),
                types.Array(types.int8, 1, "A", readonly=True),
                types.Array(types.float64, 2, "C", readonly=True),
                types.Array(types.float64, 2, "C"),
                types.Array(types.int8, 1, "C"),
                types.Array(types.int32, 1, "C"),
            )
        )
    return sigs


def _measure_block(signal, n_samples, sampling_rate, t_start, modality, params, out, status, flags):
    """Measure every row of ``signal`` (float32 or float64, any layout); write the results.

    ``out`` is (n_traces, N_OUT) float64, ``status`` int8 and ``flags`` int32 per trace;
    ``modality`` holds codes 0 motor, 1 sensory, 2 fwave (the row of ``params``).
    """
    width = signal.shape[1]
    y = np.empty(width + 1, dtype=np.float64)
    s = np.empty(width + 1, dtype=np.float64)
    tmp = np.empty(3 * (width + 1), dtype=np.float64)  # order_pair's scratch: 3 x the values
    for r in range(signal.shape[0]):
        n = n_samples[r]
        if n > width:
            n = width
        m = modality[r]
        st, fl = measure_trace(
            signal[r], n, sampling_rate[r], t_start[r], params[m], m == 2, y, s, tmp, out[r]
        )
        status[r] = st
        flags[r] = fl


try:
    measure_block = jit(_block_signature())(_measure_block)
except ImportError:  # pragma: no cover - numba missing: the kill switch path
    measure_block = _measure_block
