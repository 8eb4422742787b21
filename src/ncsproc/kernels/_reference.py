"""Numpy reference twin of the whole measurement, composed from the stage twins.

Each stage module of :mod:`ncsproc.kernels` keeps the numpy twin of its kernels beside them
(``ref_<name>``, written independently with whole-array operations: sliding windows, boolean
masks, cumulative sums, ``np.median``, ``np.linalg.lstsq``), so that an indexing slip in a
kernel shows up as a disagreement. :func:`ref_measure_trace` composes those twins exactly as
:func:`ncsproc.kernels._core.measure_trace` composes the kernels. :data:`KERNEL_REFERENCES`
maps every kernel to its twin; the tests and the benchmarks use it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import _artefact as A
from . import _baseline as B
from . import _codes as C
from . import _core as K
from . import _fwave as F
from . import _onset as O
from . import _peaks as PK
from . import _robust as R
from ._artefact import (
    _ref_unsettled,
    ref_clipped_until,
    ref_fit_artefact,
    ref_plateau_run,
    ref_subtract_artefact,
)
from ._baseline import (
    ref_block_noise,
    ref_decision_noise,
    ref_fit_mains,
    ref_settle_index,
    ref_smooth_all,
    ref_subtract_mains,
    ref_window_noise,
)
from ._fwave import ref_f_wave_latency, ref_quiet_run_start
from ._onset import ref_first_sustained, ref_onset_of, ref_positive_dip
from ._params import (
    FWAVE_CODE,
    P_ARTEFACT_TAU_MAX,
    P_ARTEFACT_TAU_MIN,
    P_BASELINE_MAX,
    P_BASELINE_MIN,
    P_BLANK_MAX,
    P_BLANK_MIN,
    P_EARLIEST_ONSET,
    P_EDGE_SPAN,
    P_EDGE_TOP,
    P_F_GAP,
    P_K_DETECT,
    P_K_DIP,
    P_K_F,
    P_K_FIT,
    P_K_MAINS,
    P_K_RESPONSE,
    P_K_SETTLE,
    P_K_TWIN,
    P_LOBE_FRACTION,
    P_LOCAL_BASELINE,
    P_MAINS_BASELINE,
    P_MAX_GAP,
    P_MIN_AMPLITUDE,
    P_MIN_SUSTAIN,
    P_NOISE_BLOCK,
    P_ONSET_FRACTION,
    P_PEAK_FIT,
    P_PEAK_FIT_EXPONENT,
    P_PEAK_SMOOTHED,
    P_PRETRIGGER_MIN,
    P_QUIET_EXTENSION,
    P_RESPONSE_EITHER,
    P_SATURATION_RUN,
    P_SEARCH_END,
    P_SETTLE,
    P_SMOOTH,
    PEAK_FIT_REF_SNR,
)
from ._peaks import ref_fit_peak, ref_second_lobe_depth
from ._robust import _lanesum, ref_mad_sd, ref_median_of, ref_n_of, ref_robust_level, ref_time_index


def ref_quiet_end(s, a, p, ext):
    """Twin of :func:`ncsproc.kernels._core.quiet_end`."""

    def last_from(level, stop):
        above = np.flatnonzero(s[: stop - a] >= level)
        return a + int(above[-1]) + 1 if above.size else a

    j = last_from(0.5 * s[p - a], p)
    k = last_from(0.1 * s[p - a], j)
    return max(k - int(ext * (p - j)), a), k


def ref_measure_trace(x, n, fs, t0, prm, is_f):
    """Numpy twin of :func:`ncsproc.kernels._core.measure_trace`: ``(out, status, flags)``."""
    out = np.full(C.N_OUT, np.nan)
    flags = 0
    if n < C.MIN_SAMPLES:
        return out, C.ST_TOO_SHORT, flags
    y = np.array(x[:n], dtype=np.float64)
    finite = np.isfinite(y)
    if not finite.any():
        return out, C.ST_NONFINITE, flags
    last_bad = int(np.flatnonzero(~finite)[-1]) if not finite.all() else -1
    dt = 1.0 / fs
    h = ref_n_of(prm[P_SMOOTH], fs, 1) // 2
    i_stim = min(max(ref_time_index(0.0, t0, fs), 0), n)
    i_blank = max(ref_time_index(prm[P_BLANK_MIN], t0, fs), i_stim)
    i_eo = min(ref_time_index(prm[P_EARLIEST_ONSET], t0, fs), n)

    has_pre, pre0 = False, 0
    if i_stim * dt >= prm[P_PRETRIGGER_MIN] and i_stim >= C.MIN_QUIET:
        pre0 = max(i_stim - ref_n_of(prm[P_BASELINE_MAX], fs, C.MIN_QUIET), 0)
        bad = np.flatnonzero(~finite[pre0:i_stim])
        if bad.size:
            flags |= C.F_NAN_IN_BASELINE
            if 2 * bad.size > i_stim - pre0:
                return out, C.ST_NO_BASELINE, flags
            pre0 = pre0 + int(bad[-1]) + 1
        has_pre = i_stim - pre0 >= C.MIN_QUIET and (i_stim - pre0) * dt >= prm[P_PRETRIGGER_MIN]
    n_pre = i_stim - pre0 if has_pre else 0

    if has_pre:
        flags |= C.F_PRETRIGGER_BASELINE
        bad = np.flatnonzero(~finite[:pre0])
        m0 = int(bad[-1]) + 1 if bad.size else 0
        if prm[P_K_MAINS] > 0.0 and (i_stim - m0) * dt >= prm[P_MAINS_BASELINE]:
            f_mains, coef = ref_fit_mains(y, m0, i_stim, t0, dt, prm[P_K_MAINS])
            if f_mains > 0.0:
                ref_subtract_mains(y, n, t0, dt, f_mains, coef)
                flags |= C.F_MAINS_REMOVED
        else:
            flags |= C.F_MAINS_UNCHECKED
        sigma0 = ref_window_noise(y, pre0, i_stim)
    else:
        flags |= C.F_POST_ARTEFACT_BASELINE | C.F_MAINS_UNCHECKED
        sigma0 = ref_block_noise(y, 0, n, ref_n_of(prm[P_NOISE_BLOCK], fs, 8))
    if not sigma0 >= 0.0:
        return out, C.ST_NO_BASELINE, flags | C.F_NAN_IN_BASELINE
    sig0 = max(sigma0, C.NOISE_FLOOR)

    level = np.nan
    n_loc = ref_n_of(prm[P_LOCAL_BASELINE], fs, 4)
    if has_pre:
        level, _ = ref_robust_level(y, max(i_stim - n_loc, pre0), i_stim, sig0)
    band = prm[P_K_SETTLE] * sig0
    fit_level = np.nan
    win = y[i_blank:i_eo]
    if prm[P_K_FIT] > 0.0 and win.size >= C._ART_MIN_SAMPLES:
        ok = bool(np.isfinite(win).all())
        if ok:
            if has_pre:
                ok = win.max() - level > band or level - win.min() > band
            else:
                ok = win.max() - win.min() > 2.0 * band
        i_fit = ref_clipped_until(y, i_blank, i_eo) if ok else i_blank
        m = i_eo - i_fit
        if ok and m >= C._ART_MIN_SAMPLES:
            tau, cl, c0, c1, sse, sse_c = ref_fit_artefact(
                y, i_fit, i_eo, t0, dt, prm[P_ARTEFACT_TAU_MIN], prm[P_ARTEFACT_TAU_MAX]
            )
            if (
                np.isfinite(sse)
                and sse <= prm[P_K_FIT] ** 2 * sig0 * sig0 * m
                and sse_c - sse >= C._ART_SIGNIFICANCE * sig0 * sig0
            ):
                ref_subtract_artefact(y, i_blank, n, t0, dt, tau, c0, c1, C._ART_TOL * sig0)
                fit_level = cl
                flags |= C.F_ARTEFACT_SUBTRACTED

    n_settle = ref_n_of(prm[P_SETTLE], fs, 1)
    n_bmin = ref_n_of(prm[P_BASELINE_MIN], fs, 4)
    pre_level = has_pre
    if has_pre:
        a = ref_settle_index(y, i_blank, n, level, band, n_settle)
        if a < 0 or (a - i_stim) * dt > prm[P_BLANK_MAX]:
            w0 = max(i_eo - n_bmin, i_blank)
            w1 = min(w0 + n_bmin, n)
            if w1 - w0 >= 4 and ref_mad_sd(y[w0:w1]) <= 2.0 * sig0:
                level1, nfin = ref_robust_level(y, w0, w1, sig0)
                a1 = ref_settle_index(y, i_blank, n, level1, band, n_settle) if nfin >= 4 else -1
                if a1 >= 0 and (a1 - i_stim) * dt <= prm[P_BLANK_MAX]:
                    a, level, pre_level = a1, level1, False
                    flags |= C.F_BASELINE_REFINED
    else:
        if np.isfinite(fit_level):
            level0 = fit_level
        else:
            w0 = max(i_eo - n_bmin, i_blank)
            w1 = min(w0 + n_bmin, n)
            if w1 - w0 < 4:
                return out, C.ST_NO_BASELINE, flags
            level0, nfin = ref_robust_level(y, w0, w1, sig0)
            if nfin < 4:
                return out, C.ST_NO_BASELINE, flags | C.F_NAN_IN_BASELINE
        a = ref_settle_index(y, i_blank, n, level0, band, n_settle)
        if a < 0:
            return (out, *_ref_unsettled(x, n, fs, t0, prm, flags))
        b1 = min(max(i_eo, a + n_bmin), n)
        level, nfin = ref_robust_level(y, a, b1, sig0)
        if nfin < b1 - a:
            flags |= C.F_NAN_IN_BASELINE
        if nfin < 4:
            return out, C.ST_NO_BASELINE, flags
    if a < 0 or (a - i_stim) * dt > prm[P_BLANK_MAX]:
        return (out, *_ref_unsettled(x, n, fs, t0, prm, flags))
    out[C.O_BASELINE] = level
    out[C.O_NOISE] = sigma0
    out[C.O_ARTEFACT_END] = t0 + a * dt
    e = min(ref_time_index(prm[P_SEARCH_END], t0, fs), n)
    n_sus = ref_n_of(prm[P_MIN_SUSTAIN], fs, 1)
    if e - a < n_sus + 2:
        return out, C.ST_TOO_SHORT, flags
    if last_bad >= a:
        return out, C.ST_NONFINITE, flags

    s = ref_smooth_all(y, a, n, level, h)  # s[i - a]
    q = ref_smooth_all(y, pre0, i_stim, level, h) if has_pre else np.zeros(0)
    p = a + int(np.argmin(s[: e - a]))
    pq = a + int(np.argmax(s[: e - a]))
    ext = prm[P_QUIET_EXTENSION]
    q_end, j10 = ref_quiet_end(s, a, p, ext)

    n_gap = ref_n_of(prm[P_MAX_GAP], fs, 1)
    n_sat = ref_n_of(prm[P_SATURATION_RUN], fs, 3)
    sigma = sigma0
    sig_s = np.nan
    on, c, pol, at_a, fallback = np.nan, -1, 0, False, False
    for it in range(2):
        if has_pre:
            if it == 0:
                sig_s = ref_window_noise(q, 0, n_pre)
            n_quiet = n_pre
        else:
            w1 = min(max(i_eo, a + C.MIN_QUIET, q_end), e)
            lv = ref_median_of(s, 0, w1 - a)
            s = s - lv
            level += lv
            sig_s = ref_window_noise(s, 0, w1 - a)
            sigma = ref_window_noise(y, a, w1)
            if w1 - a >= 4 * C.MIN_QUIET:
                half = a + (w1 - a) // 2
                late = ref_window_noise(s, half - a, w1 - a)
                if sig_s > C.TAIL_RATIO * late:
                    sig_s, sigma = late, ref_window_noise(y, half, w1)
            if not sigma >= sigma0:
                sigma = sigma0
            n_quiet = w1 - a
        floor_s = sigma / math.sqrt(2 * h + 1)
        if not floor_s >= C.NOISE_FLOOR:
            floor_s = C.NOISE_FLOOR
        if not sig_s >= floor_s:
            sig_s = floor_s
        if q_end - a >= n_loc or not pre_level:
            l1 = q_end - a
            l0 = max(l1 - n_loc, 0)
            if l1 - l0 < 4:
                l0, l1 = 0, max(n_quiet, 4)
            lv = ref_median_of(s, l0, l1)
            lag = (p - a) - (l0 + l1) // 2
        else:
            l0 = n_pre - n_loc if n_pre > n_loc else 0
            lv = ref_median_of(q, l0, n_pre)
            lag = (p - pre0) - (l0 + n_pre) // 2
        if abs(lv) > sig_s:
            flags |= C.F_BASELINE_REFINED
        s = s - lv
        if has_pre:
            q = q - lv
        level += lv
        vmin, vpos = s[p - a], s[pq - a]
        out[C.O_BASELINE], out[C.O_NOISE] = level, sigma
        drift, sig_r = ref_decision_noise(q if has_pre else s, 0, n_quiet, n_loc, max(lag, 0))
        if not np.isfinite(drift):
            drift = 0.0
        if not sig_r >= sig_s:
            sig_r = sig_s * math.sqrt(1.0 + 1.0 / n_loc)
            if has_pre:
                sig_r = max(sig_r, ref_window_noise(q, 0, n_pre) * math.sqrt(2.0))

        thr = prm[P_K_DETECT] * sig_s
        need = max(prm[P_K_RESPONSE] * sig_r, thr, prm[P_MIN_AMPLITUDE])
        run_lo, ext_lo = ref_plateau_run(x, p, n_sat + h + 1, a, e, True)
        run_hi, ext_hi = ref_plateau_run(x, pq, n_sat + h + 1, a, e, False)
        if (run_lo >= n_sat and level - ext_lo >= need) or (
            run_hi >= n_sat and ext_hi - level >= need
        ):
            return out, C.ST_SATURATED, flags
        size = drift - vmin
        if prm[P_RESPONSE_EITHER] > 0.0:
            size = max(size, vpos - drift)
        if not size >= need or p >= e - 1:
            return out, (C.ST_NO_RESPONSE if not size >= need else C.ST_WINDOW_EDGE), flags

        quiet = np.abs(s[: p - a]) <= thr
        bs = a
        if quiet.size >= n_gap:
            full = np.flatnonzero(sliding_window_view(quiet, n_gap).all(axis=1))
            if full.size:
                bs = a + int(full[-1]) + n_gap
        c, pol = ref_first_sustained(s, a, bs, p + 1, thr, n_sus)
        if c < 0:
            return out, C.ST_NO_RESPONSE, flags
        target = prm[P_ONSET_FRACTION] * -vmin
        on, at_a, fallback = ref_onset_of(
            s, a, n, c, pol, thr, prm[P_EDGE_TOP], prm[P_EDGE_SPAN], target, a, p
        )
        new_end = min(int(math.floor(on)) - n_gap, j10 - n_gap)
        if it == 1 or new_end <= q_end + n_loc // 2:
            break
        q_end = new_end
    if pol > 0:
        flags |= C.F_POSITIVE_ONSET
    if pol < 0 and prm[P_K_DIP] > 0.0:
        dip = ref_positive_dip(y, s, a, c, level, sigma, prm[P_K_DIP], n_sus, n_gap)
        if 0.0 <= dip < on:
            on, at_a, fallback = dip, dip <= a, False
            flags |= C.F_POSITIVE_ONSET
    if at_a:
        flags |= C.F_ONSET_AT_ARTEFACT
    if fallback:
        flags |= C.F_ONSET_BACKTRACKED
    out[C.O_ONSET] = t0 + on * dt

    r = ref_n_of(prm[P_PEAK_FIT], fs, 4) // 2
    off, val = ref_fit_peak(y, level, 0.0, p, r, r, a, e)
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
        off_s, val_s = ref_fit_peak(y, level, 0.0, p, r_lat, r_lat, a, e)
        if np.isfinite(val_s):
            off = off_s
    out[C.O_PEAK] = t0 + (p + off) * dt
    out[C.O_AMPLITUDE] = amp
    out[C.O_SNR] = 20.0 * math.log10(amp / sigma) if sigma > 0.0 else np.inf

    # negative lobes after the peak: maximal runs of s < 0, the first one containing p; an
    # F-wave trace's M wave ends at its first quiet run of f_gap after the peak
    e_lobe, e_m = e, -1
    thr_f = prm[P_K_F] * sig_s
    if is_f:
        n_fgap = ref_n_of(prm[P_F_GAP], fs, 1)
        e_m = ref_quiet_run_start(s, a, n, p, thr_f, n_fgap)
        if e_m >= 0 and e_m + n_fgap < e:
            e_lobe = e_m + n_fgap
    out[C.O_P2P] = s[p - a : e_lobe - a].max() - vmin
    if prm[P_RESPONSE_EITHER] > 0.0:
        out[C.O_P2P] = s[: e - a].max() - vmin
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
        flags |= C.F_NO_RETURN
    if first_ret >= 0.0:
        out[C.O_NEG_DURATION] = (first_ret - on) * dt
    else:
        flags |= C.F_NO_RETURN
    if last_end >= 0.0 and not flags & C.F_NO_RETURN:
        out[C.O_TOTAL_DURATION] = (last_end - on) * dt
        part = s[int(math.ceil(on)) - a : int(math.floor(last_end)) + 1 - a]
        out[C.O_NEG_AREA] = _lanesum(-np.minimum(part, 0.0)) * dt
        other = ref_second_lobe_depth(s, a, int(math.ceil(on)), int(math.floor(last_end)) + 1, p)
        if -vmin - other <= prm[P_K_TWIN] * math.sqrt(2.0) * sig_s:
            flags |= C.F_TWIN_PEAK

    if at_a and (flags & C.F_NO_RETURN):
        return out, C.ST_NO_RESPONSE, flags
    if is_f:
        f_lat = ref_f_wave_latency(s, a, n, e_m, t0, fs, prm, thr_f)
        if np.isfinite(f_lat):
            out[C.O_F_LATENCY] = f_lat
        else:
            flags |= C.F_NO_F_WAVE
    return out, C.ST_OK, flags


def ref_measure_block(signal, n_samples, sampling_rate, t_start, modality, params):
    """Twin of :func:`ncsproc.kernels.measure_block`: returns ``(out, status, flags)``."""
    m = signal.shape[0]
    out = np.empty((m, C.N_OUT))
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
            code == FWAVE_CODE,
        )
    return out, status, flags


def _references():
    """Every kernel of the stage modules that has a ``ref_<name>`` twin beside it."""
    pairs = {}
    for module in (R, B, A, O, PK, F):
        for name in dir(module):
            ref = getattr(module, "ref_" + name, None)
            if ref is not None and not name.startswith("ref_") and callable(getattr(module, name)):
                pairs[name] = (getattr(module, name), ref)
    pairs["quiet_end"] = (K.quiet_end, ref_quiet_end)
    pairs["measure_trace"] = (K.measure_trace, ref_measure_trace)
    pairs["measure_block"] = (K.measure_block, ref_measure_block)
    return pairs


#: kernel -> numpy twin, shared by the tests and the benchmarks.
KERNEL_REFERENCES = _references()
