"""Numpy reference twins of the kernels in :mod:`ncsproc.kernels._core`.

Written independently, with whole-array numpy operations instead of sample loops (sliding
windows, boolean masks, cumulative sums), so that an indexing slip in a kernel shows up as a
disagreement. Sums that feed decisions are taken with ``np.cumsum`` (sequential, like the
kernels' loops) so both sides round alike; the parabola is solved with ``np.linalg.solve``.

:data:`KERNEL_REFERENCES` maps every kernel to its twin; the tests and the benchmarks use it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import _core as K
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


def _seqsum(a: np.ndarray) -> float:
    """Sum in index order (as a kernel loop does)."""
    return float(np.cumsum(a, dtype=np.float64)[-1]) if a.size else 0.0


def _lanesum(a: np.ndarray) -> float:
    """Sum as the kernels' four interleaved partial sums do (index mod 4, each in order)."""
    lanes = np.zeros((-(-a.size // 4), 4))
    lanes.flat[: a.size] = a
    part = np.cumsum(lanes, axis=0)[-1] if a.size else np.zeros(4)
    return float((part[0] + part[1]) + (part[2] + part[3]))


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


def ref_block_noise(x, i0, i1, block):
    x = np.asarray(x[i0:i1], dtype=np.float64)
    nb = x.size // block
    if nb == 0:
        return np.nan
    blocks = x[: nb * block].reshape(nb, block)
    d2 = blocks[:, 2:] - 2.0 * blocks[:, 1:-1] + blocks[:, :-2]
    d2 = d2[np.isfinite(d2).all(axis=1)]
    if d2.shape[0] == 0:
        return np.nan
    m = block - 2
    # the kernel's four interleaved partial sums (d2 index mod 4), each summed in order
    sq = np.zeros((d2.shape[0], -(-m // 4) * 4))
    sq[:, :m] = d2 * d2
    lanes = np.cumsum(sq.reshape(d2.shape[0], -1, 4), axis=1)[:, -1, :]
    ss = (lanes[:, 0] + lanes[:, 1]) + (lanes[:, 2] + lanes[:, 3])
    rms = np.sort(np.sqrt(ss / (6.0 * m)))
    if not (rms > 0).any():
        return 0.0
    rms = rms[rms > 0]
    k = rms.size
    pos = K.NOISE_QUANTILE * (k - 1)
    lo = int(math.floor(pos))
    val = rms[lo]
    if lo + 1 < k:
        val = val + (pos - lo) * (rms[lo + 1] - rms[lo])
    dof = m / K._D2_DOF_DIVISOR
    c = 2.0 / (9.0 * dof)
    factor = math.sqrt((1.0 - c + K._Z_QUANTILE * math.sqrt(c)) ** 3)
    return val / factor


def ref_artefact_sse(y, i0, i1, t0, dt, tau):
    u = (t0 + np.arange(i0, i1) * dt) / tau
    e = np.exp(-u)
    basis = np.stack([np.ones_like(u), e, u * e], axis=1)
    v = np.asarray(y[i0:i1], dtype=np.float64)
    coef, *_ = np.linalg.lstsq(basis, v, rcond=None)
    r = v - basis @ coef
    return float(r @ r), float(coef[0]), float(coef[1]), float(coef[2])


def ref_fit_artefact(y, i0, i1, t0, dt, tau_min, tau_max):
    v = np.asarray(y[i0:i1], dtype=np.float64)
    sse_const = float(((v - v.mean()) ** 2).sum())
    grid = np.linspace(math.log(tau_min), math.log(tau_max), K.N_TAU_GRID)
    sses = [ref_artefact_sse(y, i0, i1, t0, dt, math.exp(g))[0] for g in grid]
    best = int(np.argmin(sses))

    def f(lt):
        return ref_artefact_sse(y, i0, i1, t0, dt, math.exp(lt))[0]

    lt = grid[best]
    if 0 < best < K.N_TAU_GRID - 1:
        pts = [
            (grid[best - 1], sses[best - 1]),
            (grid[best], sses[best]),
            (grid[best + 1], sses[best + 1]),
        ]
        for _ in range(K.N_PARABOLIC):
            (x1, f1), (x2, f2), (x3, f3) = pts
            num = (x2 - x1) ** 2 * (f2 - f3) - (x2 - x3) ** 2 * (f2 - f1)
            den = (x2 - x1) * (f2 - f3) - (x2 - x3) * (f2 - f1)
            if not (den != 0.0 and np.isfinite(num) and np.isfinite(den)):
                break
            xv = x2 - 0.5 * num / den
            if not (x1 < xv < x3) or xv == x2:
                break
            fv = f(xv)
            if fv <= f2:
                pts = [(x1, f1), (xv, fv), (x2, f2)] if xv < x2 else [(x2, f2), (xv, fv), (x3, f3)]
            else:
                pts = [(xv, fv), (x2, f2), (x3, f3)] if xv < x2 else [(x1, f1), (x2, f2), (xv, fv)]
        lt = pts[1][0]
    tau = math.exp(lt)
    sse, cl, c0, c1 = ref_artefact_sse(y, i0, i1, t0, dt, tau)
    return tau, cl, c0, c1, sse, sse_const


def ref_clipped_until(y, i0, i1):
    w = np.asarray(y[i0:i1], dtype=np.float64)
    j0 = max(i0, 1)
    cur = np.asarray(y[j0:i1], dtype=np.float64)
    prev = np.asarray(y[j0 - 1 : i1 - 1], dtype=np.float64)
    rep = np.flatnonzero((cur == prev) & ((cur == w.min()) | (cur == w.max())))
    return j0 + int(rep[-1]) + 1 if rep.size else i0


def ref_subtract_artefact(y, i0, i1, t0, dt, tau, c0, c1, tol):
    m = i1 - i0
    if m <= 0:
        return
    steps = np.full(m, math.exp(-dt / tau))
    steps[0] = math.exp(-(t0 + i0 * dt) / tau)
    e = np.cumprod(steps)
    u = (t0 + np.arange(i0, i1) * dt) / tau
    done = np.flatnonzero((u >= 1.0) & (e * (abs(c0) + abs(c1) * u) < tol))
    stop = done[0] if done.size else m
    y[i0 : i0 + stop] -= (e * (c0 + c1 * u))[:stop]


def ref_robust_level(x, i0, i1, sigma):
    w = np.asarray(x[i0:i1], dtype=np.float64)
    w = w[np.isfinite(w)]
    if w.size == 0:
        return np.nan, 0
    med = float(np.median(w))
    kept = w[np.abs(w - med) <= K._TRIM_SD * sigma]
    if kept.size == 0:
        return med, w.size
    return _seqsum(kept) / kept.size, w.size


def ref_robust_line(y, i0, i1, j0, j1, sigma):
    idx = np.concatenate((np.arange(i0, max(i1, i0)), np.arange(j0, max(j1, j0))))
    v = np.asarray(y, dtype=np.float64)[idx]
    fin = np.isfinite(v)
    idx, v = idx[fin], v[fin]
    if v.size < 4:
        return np.nan, np.nan, 0.0, np.inf, 0
    med = float(np.median(v))
    keep = np.abs(v - med) <= K._TRIM_SD * sigma
    idx, v = idx[keep], v[keep]
    if v.size < 4:
        return med, med, 0.0, np.inf, int(v.size)
    ic = 0.5 * (i0 + j1) if i1 > i0 else 0.5 * (j0 + j1)
    u = idx - ic
    mean = float(v.mean())
    den = v.size * (u * u).sum() - u.sum() ** 2
    if not den > 0.0:
        return mean, mean, 0.0, np.inf, int(v.size)
    b, c_at_ic = np.polyfit(u, v, 1)
    se_b = float(sigma * math.sqrt(v.size / den))
    return mean, float(c_at_ic - b * ic), float(b), se_b, int(v.size)


def ref_settle_index(x, i0, i1, level, band, run):
    seg = np.asarray(x[i0:i1], dtype=np.float64)
    if seg.size < run:
        return -1
    ok = np.abs(seg - level) <= band
    full = sliding_window_view(ok, run).all(axis=1)
    hits = np.flatnonzero(full)
    return int(i0 + hits[0]) if hits.size else -1


def ref_smooth_all(x, a, n, level, h):
    """The smoothed deviation s[i - a] for every i in [a, n)."""
    seg = np.asarray(x[a:n], dtype=np.float64) - level
    c = np.concatenate(([0.0], np.cumsum(seg)))
    i = np.arange(a, n)
    lo = np.maximum(i - h, a)
    hi = np.minimum(i + h + 1, n)
    return (c[hi - a] - c[lo - a]) / (hi - lo)


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


def ref_back_track(s, a, c, pol, level, lo):
    idx = np.arange(lo, c)
    base = idx[pol * s[idx - a] <= level]
    if base.size == 0:
        return float(lo), True
    j = int(base[-1])
    v0 = pol * s[j - a]
    v1 = pol * s[j + 1 - a]
    frac = 0.0
    if v1 > v0 and v0 < 0.0:
        frac = min(-v0 / (v1 - v0), 1.0)
    return j + frac, False


def ref_edge_onset(s, a, c, pol, thr, hi, power, stop):
    v = pol * s[c - a : stop + 1 - a]
    reach = np.flatnonzero(v >= hi)
    if reach.size:
        v = v[: reach[0] + 1]
    i = np.arange(v.size, dtype=np.float64)
    keep = v >= thr
    if keep.sum() < 2:
        return np.nan
    i, z = i[keep], v[keep] ** (1.0 / power)
    den = i.size * (i * i).sum() - i.sum() ** 2
    if not den > 0.0:
        return np.nan
    slope, icpt = np.polyfit(i, z, 1)
    if not slope > 0.0:
        return np.nan
    return c - icpt / slope


def ref_lobe_peak(s, a, n, c, pol, stop):
    v = pol * s[c - a : min(stop, n - 1) + 1 - a]
    end = np.flatnonzero(v <= 0.0)
    if end.size:
        v = v[: end[0]]
    return float(v.max()) if v.size else 0.0


def ref_onset_of(s, a, n, c, pol, thr, back, frac, power, lo, stop):
    pk = ref_lobe_peak(s, a, n, c, pol, stop)
    hi = max(frac * pk, min(2.0 * thr, pk))
    on = ref_edge_onset(s, a, c, pol, thr, hi, power, stop) if pol < 0 or power == 1.0 else np.nan
    bt, reached = ref_back_track(s, a, c, pol, back, lo)
    if not np.isfinite(on):
        return bt, reached, True
    on = min(on, float(c))
    if on < lo:
        return float(lo), True, False
    return on, False, False


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


def ref_quiet_run_start(s, a, n, i0, thr, run):
    q = np.abs(s[i0 - a : n - a]) <= thr
    if q.size < run:
        return -1
    hits = np.flatnonzero(sliding_window_view(q, run).all(axis=1))
    return int(i0 + hits[0]) if hits.size else -1


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


def ref_plateau_run(x, p, w, i0, i1, lowest):
    seg = np.asarray(x[max(p - w, i0) : min(p + w + 1, i1)], dtype=np.float64)
    target = seg.min() if lowest else seg.max()
    eq = np.concatenate(([0], (seg == target).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(eq))
    return (int((edges[1::2] - edges[::2]).max()) if edges.size else 0), float(target)


def ref_extreme_plateau(x, i0, i1):
    seg = np.asarray(x[i0:i1], dtype=np.float64)
    if seg.size == 0:
        return 0
    return max(
        ref_plateau_run(seg, 0, seg.size, 0, seg.size, True)[0],
        ref_plateau_run(seg, 0, seg.size, 0, seg.size, False)[0],
    )


def _ref_unsettled(x, n, fs, t0, prm, flags):
    i0 = max(ref_time_index(prm[P_BLANK_MAX], t0, fs), 0)
    if ref_extreme_plateau(x[:n], i0, n) >= ref_n_of(prm[P_SATURATION_RUN], fs, 3):
        return K.ST_SATURATED, flags | K.F_ARTEFACT_UNSETTLED
    return K.ST_NO_BASELINE, flags | K.F_ARTEFACT_UNSETTLED


def ref_measure_trace(x, n, fs, t0, prm, is_f):
    """Numpy twin of :func:`ncsproc.kernels._core.measure_trace`: ``(out, status, flags)``."""
    out = np.full(K.N_OUT, np.nan)
    flags = 0
    if n < K.MIN_SAMPLES:
        return out, K.ST_TOO_SHORT, flags
    y = np.array(x[:n], dtype=np.float64)
    if not np.isfinite(y).any():
        return out, K.ST_NONFINITE, flags
    dt = 1.0 / fs
    sigma = ref_block_noise(y, 0, n, ref_n_of(prm[P_NOISE_BLOCK], fs, 8))
    if not sigma >= 0.0:
        return out, K.ST_NO_BASELINE, flags | K.F_NAN_IN_BASELINE
    sig = sigma if sigma > K.NOISE_FLOOR else K.NOISE_FLOOR
    h = ref_n_of(prm[P_SMOOTH], fs, 1) // 2
    sig_s = sig / math.sqrt(2 * h + 1)
    i_stim = min(max(ref_time_index(0.0, t0, fs), 0), n)
    i_blank = max(ref_time_index(prm[P_BLANK_MIN], t0, fs), i_stim)
    i_eo = min(ref_time_index(prm[P_EARLIEST_ONSET], t0, fs), n)

    fit_level = np.nan
    m = i_eo - i_blank
    ok = m >= K._ART_MIN_SAMPLES and np.isfinite(y[i_blank:i_eo]).all()
    i_fit = ref_clipped_until(y, i_blank, i_eo) if ok else i_blank
    if prm[P_K_FIT] > 0.0 and ok and i_eo - i_fit >= K._ART_MIN_SAMPLES:
        m = i_eo - i_fit
        tau, cl, c0, c1, sse, sse_c = ref_fit_artefact(
            y, i_fit, i_eo, t0, dt, prm[P_ARTEFACT_TAU_MIN], prm[P_ARTEFACT_TAU_MAX]
        )
        if (
            np.isfinite(sse)
            and sse <= prm[P_K_FIT] ** 2 * sig * sig * m
            and sse_c - sse >= K._ART_SIGNIFICANCE * sig * sig
        ):
            ref_subtract_artefact(y, i_blank, n, t0, dt, tau, c0, c1, K._ART_TOL * sig)
            fit_level = cl
            flags |= K.F_ARTEFACT_SUBTRACTED

    n_settle = ref_n_of(prm[P_SETTLE], fs, 1)
    band = prm[P_K_SETTLE] * sig
    n_bmax = ref_n_of(prm[P_BASELINE_MAX], fs, 4)
    n_bmin = ref_n_of(prm[P_BASELINE_MIN], fs, 4)
    pre0 = pre1 = 0
    if i_stim * dt >= prm[P_PRETRIGGER_MIN] and i_stim >= 4:
        flags |= K.F_PRETRIGGER_BASELINE
        b0, b1 = max(i_stim - n_bmax, 0), i_stim
        pre0, pre1 = b0, b1
        level, nfin = ref_robust_level(y, b0, b1, sig)
        if nfin < b1 - b0:
            flags |= K.F_NAN_IN_BASELINE
        if nfin < 4 or 2 * nfin < b1 - b0:
            return out, K.ST_NO_BASELINE, flags
        a = ref_settle_index(y, i_blank, n, level, band, n_settle)
    else:
        flags |= K.F_POST_ARTEFACT_BASELINE
        if np.isfinite(fit_level):
            level0 = fit_level
        else:
            w0 = max(i_eo - n_bmin, i_blank)
            w1 = min(w0 + n_bmin, n)
            if w1 - w0 < 4:
                return out, K.ST_NO_BASELINE, flags
            level0, nfin = ref_robust_level(y, w0, w1, sig)
            if nfin < 4:
                return out, K.ST_NO_BASELINE, flags | K.F_NAN_IN_BASELINE
        a = ref_settle_index(y, i_blank, n, level0, band, n_settle)
        if a < 0:
            return (out, *_ref_unsettled(x, n, fs, t0, prm, flags))
        b1 = min(min(max(i_eo, a + n_bmin), a + n_bmax), n)
        level, nfin = ref_robust_level(y, a, b1, sig)
        if nfin < b1 - a:
            flags |= K.F_NAN_IN_BASELINE
        if nfin < 4:
            return out, K.ST_NO_BASELINE, flags
    if a < 0 or (a - i_stim) * dt > prm[P_BLANK_MAX]:
        return (out, *_ref_unsettled(x, n, fs, t0, prm, flags))
    out[K.O_BASELINE] = level
    out[K.O_NOISE] = sigma
    out[K.O_ARTEFACT_END] = t0 + a * dt

    e = min(ref_time_index(prm[P_SEARCH_END], t0, fs), n)
    n_sus = ref_n_of(prm[P_MIN_SUSTAIN], fs, 1)
    if e - a < n_sus + 2:
        return out, K.ST_TOO_SHORT, flags
    if not np.isfinite(y[a:n]).all():
        return out, K.ST_NONFINITE, flags
    s = ref_smooth_all(y, a, n, level, h)  # s[i - a]
    p = a + int(np.argmin(s[: e - a]))
    q = a + int(np.argmax(s[: e - a]))
    vmin = s[p - a]
    thr = prm[P_K_DETECT] * sig_s
    n_gap = ref_n_of(prm[P_MAX_GAP], fs, 1)
    cur_c, cur_b = level, 0.0
    w0 = max(i_eo - n_bmin, a)
    for it in range(2):
        above = np.flatnonzero(s[: p - a] >= -thr)  # the negative run into p starts after it
        j = a + int(above[-1]) + 1 if above.size else a
        w1 = j - n_gap
        if w1 - w0 < n_bmin:
            if it > 0:
                break
            w1 = p - 3 * n_gap
            if w1 - w0 < n_bmin:
                break
        mean2, lc, lb, se_b, n2 = ref_robust_line(y, pre0, pre1, w0, w1, sig)
        if n2 < 4:
            break
        if prm[P_BASELINE_DRIFT] == 0.0 or not abs(lb) > 3.0 * se_b:
            lc, lb = mean2, 0.0
        if lb == cur_b and abs(lc + lb * p - (cur_c + cur_b * p)) <= sig_s:
            break
        s = s - ((lc - cur_c) + (lb - cur_b) * np.arange(a, n))
        cur_b_before = cur_b
        cur_c, cur_b = lc, lb
        flags |= K.F_BASELINE_REFINED
        if lb != cur_b_before:  # a constant shift keeps both extremes where they are
            p = a + int(np.argmin(s[: e - a]))
            q = a + int(np.argmax(s[: e - a]))
        vmin = s[p - a]
    if cur_b != 0.0:
        flags |= K.F_BASELINE_SLOPE
    lb = cur_b
    level = cur_c + cur_b * p
    out[K.O_BASELINE] = level
    need = max(thr, prm[P_MIN_AMPLITUDE], prm[P_K_RESPONSE] * sig_s)
    n_sat = ref_n_of(prm[P_SATURATION_RUN], fs, 3)
    run_lo, ext_lo = ref_plateau_run(x, p, n_sat + h + 1, a, e, True)
    run_hi, ext_hi = ref_plateau_run(x, q, n_sat + h + 1, a, e, False)
    if (run_lo >= n_sat and level - ext_lo >= need) or (run_hi >= n_sat and ext_hi - level >= need):
        return out, K.ST_SATURATED, flags
    if not -vmin >= need:
        return out, K.ST_NO_RESPONSE, flags
    if p == e - 1:
        flags |= K.F_PEAK_AT_WINDOW_END

    quiet = np.abs(s[: p - a]) <= thr
    bs = a
    if quiet.size >= n_gap:
        full = np.flatnonzero(sliding_window_view(quiet, n_gap).all(axis=1))
        if full.size:
            bs = a + int(full[-1]) + n_gap
    c, pol = ref_first_sustained(s, a, bs, p + 1, thr, n_sus)
    if c < 0:
        return out, K.ST_NO_RESPONSE, flags
    if pol > 0:
        flags |= K.F_POSITIVE_ONSET
    back = prm[P_K_BACK] * sig_s
    on, at_a, bt = ref_onset_of(
        s, a, n, c, pol, thr, back, prm[P_EDGE_FRACTION], prm[P_EDGE_POWER], a, p
    )
    if pol < 0 and prm[P_K_DIP] > 0.0:
        dip = ref_positive_dip(y, s, a, c, level + lb * (c - p), sig, prm[P_K_DIP], n_sus, n_gap)
        if 0.0 <= dip < on:
            on, at_a, bt = dip, dip <= a, False
            flags |= K.F_POSITIVE_ONSET
    if at_a:
        flags |= K.F_ONSET_AT_ARTEFACT
    if bt:
        flags |= K.F_ONSET_BACKTRACKED
    out[K.O_ONSET] = t0 + on * dt

    r = ref_n_of(prm[P_PEAK_FIT], fs, 2) // 2
    off, val = ref_fit_peak(y, level, lb, p, r, r, a, e)
    if not np.isfinite(val):
        off, val = 0.0, vmin
    amp = -val
    r_lat = r
    g = prm[P_PEAK_FIT_EXPONENT]
    if g > 0.0 and sigma > 0.0 and amp > 0.0:
        w = math.floor(r * (PEAK_FIT_REF_SNR * sigma / amp) ** g + 0.5)
        r_lat = int(min(max(w, 2.0), 3.0 * r))
    if prm[P_PEAK_SMOOTHED] > 0.0:
        off_s, val_s = ref_fit_peak(s, 0.0, 0.0, p - a, r_lat, r_lat, 0, e - a)
        if np.isfinite(val_s):
            off = off_s
    elif r_lat != r:
        off_s, val_s = ref_fit_peak(y, level, lb, p, r_lat, r_lat, a, e)
        if np.isfinite(val_s):
            off = off_s
    out[K.O_PEAK] = t0 + (p + off) * dt
    out[K.O_AMPLITUDE] = amp
    out[K.O_SNR] = 20.0 * math.log10(amp / sigma) if sigma > 0.0 else np.inf

    # negative lobes after the peak: maximal runs of s < 0, the first one containing p; an
    # F-wave trace's M wave ends at its first quiet run of f_gap after the peak
    e_lobe, e_m = e, -1
    if is_f:
        thr_f = prm[P_K_F] * sig_s
        n_fgap = ref_n_of(prm[P_F_GAP], fs, 1)
        e_m = ref_quiet_run_start(s, a, n, p, thr_f, n_fgap)
        if e_m >= 0 and e_m + n_fgap < e:
            e_lobe = e_m + n_fgap
    out[K.O_P2P] = s[p - a : e_lobe - a].max() - vmin
    lobe_thr = max(prm[P_LOBE_FRACTION] * amp, thr)
    seg = s[p - a : e_lobe - a]
    neg = seg < 0.0
    ups = np.flatnonzero(neg[:-1] & ~neg[1:]) + 1  # seg[i-1] < 0 <= seg[i]
    downs = np.flatnonzero(~neg[:-1] & neg[1:]) + 1
    starts = np.concatenate(([0], downs))
    first_ret = last_end = -1.0
    no_return = False
    for k, st in enumerate(starts):
        ends = ups[ups > st]
        depth = -seg[st : ends[0]].min() if ends.size else -seg[st:].min()
        if ends.size == 0:
            if depth >= lobe_thr:
                no_return = True
                last_end = -1.0
            break
        i = int(ends[0])
        tc = (p + i - 1) + seg[i - 1] / (seg[i - 1] - seg[i])
        if k == 0:
            first_ret = tc
        if depth >= lobe_thr:
            last_end = tc
    if no_return:
        flags |= K.F_NO_RETURN
    if first_ret >= 0.0:
        out[K.O_NEG_DURATION] = (first_ret - on) * dt
    else:
        flags |= K.F_NO_RETURN
    if last_end >= 0.0 and not flags & K.F_NO_RETURN:
        out[K.O_TOTAL_DURATION] = (last_end - on) * dt
        part = s[int(math.ceil(on)) - a : int(math.floor(last_end)) + 1 - a]
        out[K.O_NEG_AREA] = _lanesum(-np.minimum(part, 0.0)) * dt

    if is_f:
        f0 = e_m
        if f0 >= 0:
            f0 = max(f0, ref_time_index(prm[P_F_START], t0, fs))
        f1 = min(ref_time_index(prm[P_F_END], t0, fs), n)
        found = False
        if f0 >= 0 and f1 - f0 > 0:
            cf, polf = ref_first_sustained(s, a, f0, f1, thr_f, ref_n_of(prm[P_F_SUSTAIN], fs, 1))
            if cf >= 0:
                onf, _, _ = ref_onset_of(
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
                out[K.O_F_LATENCY] = t0 + onf * dt
                found = True
        if not found:
            flags |= K.F_NO_F_WAVE
    return out, K.ST_OK, flags


def ref_measure_block(signal, n_samples, sampling_rate, t_start, modality, params):
    """Twin of :func:`ncsproc.kernels.measure_block`: returns ``(out, status, flags)``."""
    m = signal.shape[0]
    out = np.empty((m, K.N_OUT))
    status = np.empty(m, dtype=np.int8)
    flags = np.empty(m, dtype=np.int32)
    for r in range(m):
        code = int(modality[r])
        out[r], status[r], flags[r] = ref_measure_trace(
            signal[r],
            min(int(n_samples[r]), signal.shape[1]),
            float(sampling_rate[r]),
            float(t_start[r]),
            params[code],
            code == 2,
        )
    return out, status, flags


#: kernel -> numpy twin, shared by the tests and the benchmarks.
KERNEL_REFERENCES = {
    "time_index": (K.time_index, ref_time_index),
    "n_of": (K.n_of, ref_n_of),
    "block_noise": (K.block_noise, ref_block_noise),
    "artefact_sse": (K.artefact_sse, ref_artefact_sse),
    "fit_artefact": (K.fit_artefact, ref_fit_artefact),
    "subtract_artefact": (K.subtract_artefact, ref_subtract_artefact),
    "clipped_until": (K.clipped_until, ref_clipped_until),
    "edge_onset": (K.edge_onset, ref_edge_onset),
    "lobe_peak": (K.lobe_peak, ref_lobe_peak),
    "onset_of": (K.onset_of, ref_onset_of),
    "quiet_run_start": (K.quiet_run_start, ref_quiet_run_start),
    "positive_dip": (K.positive_dip, ref_positive_dip),
    "robust_level": (K.robust_level, ref_robust_level),
    "settle_index": (K.settle_index, ref_settle_index),
    "first_sustained": (K.first_sustained, ref_first_sustained),
    "back_track": (K.back_track, ref_back_track),
    "fit_peak": (K.fit_peak, ref_fit_peak),
    "robust_line": (K.robust_line, ref_robust_line),
    "plateau_run": (K.plateau_run, ref_plateau_run),
    "extreme_plateau": (K.extreme_plateau, ref_extreme_plateau),
    "measure_trace": (K.measure_trace, ref_measure_trace),
    "measure_block": (K.measure_block, ref_measure_block),
}
