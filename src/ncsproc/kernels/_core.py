"""Numba kernels: one NCS trace in, every measure out, as a short composition of stages.

Plain functions compiled by :func:`ncsproc.kernels._jit.jit` (nopython, nogil, no fastmath). No
xarray, dask, logging or exceptions in here: problems are reported as a status code and QC flag
bits, values that cannot be measured are NaN. Each stage lives in its own module with its numpy
reference twin beside it (:mod:`._baseline`, :mod:`._artefact`, :mod:`._onset`,
:mod:`._peaks`, :mod:`._fwave`); :mod:`._reference` composes the twins the same way and the
tests require the two compositions to agree.

The algorithm (documented with its parameters in ``formats/measures.md``) per trace:

0. The valid samples are copied to a float64 scratch row (float32 input is read as it is).
1. Pre-trigger: when the sweep has at least ``pretrigger_min`` before the stimulus, its clean
   part nearest the stimulus (at most ``baseline_max``) is the baseline. On at least
   ``mains_baseline`` of it, 50 or 60 Hz mains with harmonics 2-5 is fitted and, when
   significant, subtracted from the whole sweep (else the trace is flagged mains_unchecked).
2. Stimulus artefact: where the samples between ``blank_min`` and ``earliest_onset`` depart
   from baseline, the model ``(c0 + c1 t/tau) exp(-t/tau)`` plus a constant is fitted and
   subtracted when it explains them; the artefact ends when the signal stays within
   ``k_settle`` SD of the baseline for ``settle`` (adaptive blanking).
3. Smoothing: a centred moving average (``smooth``, at least one sample) of the signal; every
   threshold below is applied to it, and every noise level is measured on it.
4. Quiet window and noise: the pre-trigger, or (without one) the stretch after the artefact that
   ends ``quiet_extension`` half-rise times before the 50 % point of the edge into the largest
   negative peak. Noise SD = MAD of the smoothed signal about its least-squares line there, so
   any noise spectrum is measured as the thresholds see it. The baseline level is the median of
   the smoothed signal over ``local_baseline`` at the end of the quiet stretch (drift, wander).
5. Response test: the peak must exceed ``k_response`` SDs of the decision noise (the spread of
   the smoothed signal at the peak's distance from a local baseline, measured over the quiet
   window: slow noise raises the bar as much as it moves the baseline), ``k_detect`` SDs and
   ``min_amplitude``. A negative peak on the edge of the search window is ``window_edge``.
6. Onset: the first sustained departure (``min_sustain`` beyond ``k_detect``, either polarity)
   that leads into the peak without a quiet gap longer than ``max_gap``; a straight line fitted
   to its leading edge (threshold to ``edge_top`` of the lobe) extended to ``onset_fraction``
   of the amplitude: the measurable onset, for any rise curve. A positive first deflection (or
   a small positive dip, ``k_dip``) is the onset and is flagged.
7. Peak: least-squares parabola over ``peak_fit`` around the smoothed minimum (sub-sample
   latency; with ``peak_smoothed`` the vertex of the same fit to the smoothed signal); two
   negative lobes within ``k_twin`` noise of each other are flagged twin_peak.
8. Durations and area from the smoothed signal (first return to baseline after the peak, the
   last negative lobe of at least ``lobe_fraction``, the area below baseline).
9. F-wave traces: after the M wave has returned to baseline, the first sustained departure.
"""

from __future__ import annotations

import math

import numpy as np

from ._artefact import _unsettled, clipped_until, fit_artefact, plateau_run, subtract_artefact
from ._baseline import (
    block_noise,
    decision_noise,
    fit_mains,
    settle_index,
    smooth_into,
    subtract_mains,
    window_noise,
)
from ._codes import (
    _ART_MIN_SAMPLES,
    _ART_SIGNIFICANCE,
    _ART_TOL,
    F_ARTEFACT_SUBTRACTED,
    F_BASELINE_REFINED,
    F_MAINS_REMOVED,
    F_MAINS_UNCHECKED,
    F_NAN_IN_BASELINE,
    F_NO_F_WAVE,
    F_NO_RETURN,
    F_ONSET_AT_ARTEFACT,
    F_ONSET_BACKTRACKED,
    F_POSITIVE_ONSET,
    F_POST_ARTEFACT_BASELINE,
    F_PRETRIGGER_BASELINE,
    F_TWIN_PEAK,
    MIN_QUIET,
    MIN_SAMPLES,
    N_OUT,
    NOISE_FLOOR,
    O_AMPLITUDE,
    O_ARTEFACT_END,
    O_BASELINE,
    O_F_LATENCY,
    O_NEG_AREA,
    O_NEG_DURATION,
    O_NOISE,
    O_ONSET,
    O_P2P,
    O_PEAK,
    O_SNR,
    O_TOTAL_DURATION,
    ST_NO_BASELINE,
    ST_NO_RESPONSE,
    ST_NONFINITE,
    ST_OK,
    ST_SATURATED,
    ST_TOO_SHORT,
    ST_WINDOW_EDGE,
    TAIL_RATIO,
)
from ._fwave import f_wave_latency, quiet_run_start
from ._jit import jit
from ._onset import first_sustained, onset_of, positive_dip
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
)
from ._peaks import (
    arg_extremes,
    fit_peak,
    latency_half_width,
    lobes_after_peak,
    negative_sum,
    second_lobe_depth,
)
from ._robust import mad_sd, median_of, n_of, robust_level, time_index


@jit
def quiet_end(s, a, p, ext):
    """End of the quiet stretch before the response whose peak is at ``p``.

    Returns ``(end, j10)``: ``j10`` is where the deviation, walking back from the peak, was last
    below 10 % of the peak's (a dispersed response's lobes stay beyond it between them); the
    end lies ``ext`` half-rise times (50 % point to peak) before ``j10``, within [a, p].
    """
    half = 0.5 * s[p - a]
    j = p
    while j > a and s[j - 1 - a] < half:
        j -= 1
    tenth = 0.1 * s[p - a]
    k = j
    while k > a and s[k - 1 - a] < tenth:
        k -= 1
    e = k - int(ext * (p - j))
    return (e if e > a else a), k


@jit
def shift(v, m, d):
    """v[:m] -= d."""
    for k in range(m):
        v[k] -= d


@jit
def measure_trace(x, n, fs, t0, prm, is_f, y, s, q, tmp, out):
    """Measure one trace; fill ``out`` (N_OUT values) and return ``(status, flags)``.

    ``x`` is the trace's row (float32 or float64; only ``x[:n]`` is read), ``prm`` the
    parameter row of its modality, ``y``, ``s`` and ``q`` float64 scratch arrays of at least
    n + 1 elements (the corrected signal, its smoothed deviation after the artefact and over
    the pre-trigger) and ``tmp`` one of at least 3 (n + 1) (selections use three times the
    values they select from).
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
    h = n_of(prm[P_SMOOTH], fs, 1) // 2
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

    # 1. the pre-trigger baseline: its clean part nearest the stimulus
    has_pre = False
    pre0 = 0
    if i_stim * dt >= prm[P_PRETRIGGER_MIN] and i_stim >= MIN_QUIET:
        pre0 = i_stim - n_of(prm[P_BASELINE_MAX], fs, MIN_QUIET)
        if pre0 < 0:
            pre0 = 0
        n_bad = 0
        bad_at = -1
        for i in range(pre0, i_stim):
            if not math.isfinite(y[i]):
                n_bad += 1
                bad_at = i
        if n_bad > 0:
            flags |= F_NAN_IN_BASELINE
            if 2 * n_bad > i_stim - pre0:
                return ST_NO_BASELINE, flags
            pre0 = bad_at + 1
        has_pre = i_stim - pre0 >= MIN_QUIET and (i_stim - pre0) * dt >= prm[P_PRETRIGGER_MIN]
    n_pre = i_stim - pre0 if has_pre else 0

    # 2. mains (on a long enough pre-trigger) and the noise of the raw signal
    if has_pre:
        flags |= F_PRETRIGGER_BASELINE
        # mains from the whole clean pre-trigger (not only baseline_max of it)
        m0 = pre0
        while m0 > 0 and math.isfinite(y[m0 - 1]):
            m0 -= 1
        if prm[P_K_MAINS] > 0.0 and (i_stim - m0) * dt >= prm[P_MAINS_BASELINE]:
            f_mains, coef = fit_mains(y, m0, i_stim, t0, dt, prm[P_K_MAINS])
            if f_mains > 0.0:
                subtract_mains(y, n, t0, dt, f_mains, coef)
                flags |= F_MAINS_REMOVED
        else:
            flags |= F_MAINS_UNCHECKED
        sigma0 = window_noise(y, pre0, i_stim, tmp)
    else:
        flags |= F_POST_ARTEFACT_BASELINE | F_MAINS_UNCHECKED
        sigma0 = block_noise(y, 0, n, n_of(prm[P_NOISE_BLOCK], fs, 8), tmp)
    if not sigma0 >= 0.0:
        return ST_NO_BASELINE, flags | F_NAN_IN_BASELINE
    sig0 = sigma0 if sigma0 > NOISE_FLOOR else NOISE_FLOOR

    # 3. stimulus artefact: fitted between blank_min and earliest_onset when the signal there
    # departs from baseline
    level = np.nan
    n_loc = n_of(prm[P_LOCAL_BASELINE], fs, 4)
    if has_pre:
        # the level the artefact settles to: the end of the pre-trigger (slow noise and wander
        # move the level of a long pre-trigger away from the one at the stimulus)
        l0 = i_stim - n_loc if i_stim - n_loc > pre0 else pre0
        level, _ = robust_level(y, l0, i_stim, sig0, tmp)
    band = prm[P_K_SETTLE] * sig0
    fit_level = np.nan
    m = i_eo - i_blank
    if prm[P_K_FIT] > 0.0 and m >= _ART_MIN_SAMPLES:
        ok = True
        lo_v = np.inf
        hi_v = -np.inf
        for i in range(i_blank, i_eo):
            v = y[i]
            if not math.isfinite(v):
                ok = False
                break
            lo_v = min(lo_v, v)
            hi_v = max(hi_v, v)
        if ok:
            if has_pre:
                ok = hi_v - level > band or level - lo_v > band
            else:
                ok = hi_v - lo_v > 2.0 * band
        # a clipped artefact: fit after its last plateau sample at the window's extremes
        i_fit = clipped_until(y, i_blank, i_eo) if ok else i_blank
        m = i_eo - i_fit
        if ok and m >= _ART_MIN_SAMPLES:
            tau, cl, c0, c1, sse, sse_c = fit_artefact(
                y, i_fit, i_eo, t0, dt, prm[P_ARTEFACT_TAU_MIN], prm[P_ARTEFACT_TAU_MAX]
            )
            if (
                math.isfinite(sse)
                and sse <= prm[P_K_FIT] * prm[P_K_FIT] * sig0 * sig0 * m
                and sse_c - sse >= _ART_SIGNIFICANCE * sig0 * sig0
            ):
                subtract_artefact(y, i_blank, n, t0, dt, tau, c0, c1, _ART_TOL * sig0)
                fit_level = cl
                flags |= F_ARTEFACT_SUBTRACTED

    # 4. baseline level and artefact end
    n_settle = n_of(prm[P_SETTLE], fs, 1)
    n_bmin = n_of(prm[P_BASELINE_MIN], fs, 4)
    pre_level = has_pre
    if has_pre:
        a = settle_index(y, i_blank, n, level, band, n_settle)
        if a < 0 or (a - i_stim) * dt > prm[P_BLANK_MAX]:
            # the artefact leaves the signal at another level than before the stimulus (a step,
            # a slow decay): settle to the level just before earliest_onset instead
            w0 = i_eo - n_bmin if i_eo - n_bmin > i_blank else i_blank
            w1 = w0 + n_bmin if w0 + n_bmin < n else n
            flat = False
            if w1 - w0 >= 4:
                for k in range(w1 - w0):
                    tmp[k] = y[w0 + k]
                flat = mad_sd(tmp, w1 - w0) <= 2.0 * sig0  # a new level, not a decaying tail
            if flat:
                level1, nfin = robust_level(y, w0, w1, sig0, tmp)
                a1 = settle_index(y, i_blank, n, level1, band, n_settle) if nfin >= 4 else -1
                if a1 >= 0 and (a1 - i_stim) * dt <= prm[P_BLANK_MAX]:
                    a = a1
                    level = level1
                    pre_level = False
                    flags |= F_BASELINE_REFINED
    else:
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
            level0, nfin = robust_level(y, w0, w1, sig0, tmp)
            if nfin < 4:
                return ST_NO_BASELINE, flags | F_NAN_IN_BASELINE
        a = settle_index(y, i_blank, n, level0, band, n_settle)
        if a < 0:
            return _unsettled(x, n, fs, t0, prm, flags)
        b1 = i_eo
        if b1 < a + n_bmin:
            b1 = a + n_bmin
        if b1 > n:
            b1 = n
        level, nfin = robust_level(y, a, b1, sig0, tmp)
        if nfin < b1 - a:
            flags |= F_NAN_IN_BASELINE
        if nfin < 4:
            return ST_NO_BASELINE, flags
    if a < 0 or (a - i_stim) * dt > prm[P_BLANK_MAX]:
        return _unsettled(x, n, fs, t0, prm, flags)
    out[O_BASELINE] = level
    out[O_NOISE] = sigma0
    out[O_ARTEFACT_END] = t0 + a * dt
    e = time_index(prm[P_SEARCH_END], t0, fs)
    if e > n:
        e = n
    n_sus = n_of(prm[P_MIN_SUSTAIN], fs, 1)
    if e - a < n_sus + 2:
        return ST_TOO_SHORT, flags
    if last_bad >= a:
        return ST_NONFINITE, flags

    # 5. smoothed deviation from the level (after the artefact, and over the pre-trigger)
    smooth_into(y, a, n, level, h, s)
    if has_pre:
        smooth_into(y, pre0, i_stim, level, h, q)
    p, vmin, pq, vpos = arg_extremes(s, a, a, e)
    ext = prm[P_QUIET_EXTENSION]
    q_end, j10 = quiet_end(s, a, p, ext)

    # 6-8. quiet window, noise and local baseline; response test; onset. Twice when the first
    # onset shows a longer quiet stretch than the conservative first guess (quiet_extension
    # half-rise times before the 50 % point): the second pass ends it max_gap before that onset
    n_gap = n_of(prm[P_MAX_GAP], fs, 1)
    n_sat = n_of(prm[P_SATURATION_RUN], fs, 3)
    sig_s = np.nan
    sigma = sigma0
    on = np.nan
    c = -1
    pol = 0
    at_a = False
    fallback = False
    for it in range(2):
        if has_pre:
            if it == 0:
                sig_s = window_noise(q, 0, n_pre, tmp)
            quiet = q
            n_quiet = n_pre
        else:
            w1 = i_eo if i_eo > a + MIN_QUIET else a + MIN_QUIET
            if q_end > w1:
                w1 = q_end
            if w1 > e:
                w1 = e
            lv = median_of(s, 0, w1 - a, tmp)
            shift(s, n - a, lv)
            level += lv
            vmin -= lv
            vpos -= lv
            sig_s = window_noise(s, 0, w1 - a, tmp)
            sigma = window_noise(y, a, w1, tmp)
            if w1 - a >= 4 * MIN_QUIET:
                # an artefact tail left in the window's start inflates it: the later half decides
                half = a + (w1 - a) // 2
                late = window_noise(s, half - a, w1 - a, tmp)
                if sig_s > TAIL_RATIO * late:
                    sig_s = late
                    sigma = window_noise(y, half, w1, tmp)
            if not sigma >= sigma0:
                # a short window's MAD reads low at random; the quietest blocks of the whole
                # sweep are a floor (exact for white noise, a lower bound for coloured noise)
                sigma = sigma0
            quiet = s
            n_quiet = w1 - a
        # a moving average lowers white noise by sqrt(width) and coloured noise by less: the raw
        # noise over sqrt(width) is a floor (a MAD of few correlated smoothed samples reads low)
        floor_s = sigma / math.sqrt(2 * h + 1)
        if not floor_s >= NOISE_FLOOR:
            floor_s = NOISE_FLOOR
        if not sig_s >= floor_s:
            sig_s = floor_s
        # the local baseline: the median over local_baseline at the end of the quiet stretch
        if q_end - a >= n_loc or not pre_level:
            l1 = q_end - a
            l0 = l1 - n_loc
            if l0 < 0:
                l0 = 0
            if l1 - l0 < 4:
                l0 = 0
                l1 = n_quiet if n_quiet > 4 else 4
            lv = median_of(s, l0, l1, tmp)
            lag = (p - a) - (l0 + l1) // 2
        else:
            l0 = n_pre - n_loc if n_pre > n_loc else 0
            lv = median_of(q, l0, n_pre, tmp)
            lag = (p - pre0) - (l0 + n_pre) // 2
        if abs(lv) > sig_s:
            flags |= F_BASELINE_REFINED
        shift(s, n - a, lv)
        if has_pre:
            shift(q, n_pre, lv)
        level += lv
        vmin -= lv
        vpos -= lv
        out[O_BASELINE] = level  # the diagnostics, kept for traces without values
        out[O_NOISE] = sigma
        if lag < 0:
            lag = 0
        drift, sig_r = decision_noise(quiet, 0, n_quiet, n_loc, lag, tmp)
        if not math.isfinite(drift):
            drift = 0.0
        if not sig_r >= sig_s:
            sig_r = sig_s * math.sqrt(1.0 + 1.0 / n_loc)
            if has_pre:
                fb = window_noise(q, 0, n_pre, tmp) * math.sqrt(2.0)
                if fb > sig_r:
                    sig_r = fb

        # response test (clipping first: a plateau of identical raw samples at an extreme)
        thr = prm[P_K_DETECT] * sig_s
        need = prm[P_K_RESPONSE] * sig_r
        if thr > need:
            need = thr
        if prm[P_MIN_AMPLITUDE] > need:
            need = prm[P_MIN_AMPLITUDE]
        run_lo, ext_lo = plateau_run(x, p, n_sat + h + 1, a, e, True)
        run_hi, ext_hi = plateau_run(x, pq, n_sat + h + 1, a, e, False)
        if (run_lo >= n_sat and level - ext_lo >= need) or (
            run_hi >= n_sat and ext_hi - level >= need
        ):
            return ST_SATURATED, flags
        size = drift - vmin
        if prm[P_RESPONSE_EITHER] > 0.0 and vpos - drift > size:
            size = vpos - drift
        if not size >= need:
            return ST_NO_RESPONSE, flags
        if p >= e - 1:
            return ST_WINDOW_EDGE, flags

        # onset: the first sustained departure leading into the peak, its edge line extended
        bs = a
        run = 0
        i = p - 1
        while i >= a:
            if abs(s[i - a]) <= thr:
                run += 1
                if run >= n_gap:
                    bs = i + run
                    break
            else:
                run = 0
            i -= 1
        c, pol = first_sustained(s[: n - a], a, bs, p + 1, thr, n_sus)
        if c < 0:
            return ST_NO_RESPONSE, flags
        target = prm[P_ONSET_FRACTION] * -vmin
        on, at_a, fallback = onset_of(
            s, a, n, c, pol, thr, prm[P_EDGE_TOP], prm[P_EDGE_SPAN], target, a, p
        )
        new_end = int(math.floor(on)) - n_gap
        if new_end > j10 - n_gap:
            new_end = j10 - n_gap
        if it == 1 or new_end <= q_end + n_loc // 2:
            break
        q_end = new_end
    if pol > 0:
        flags |= F_POSITIVE_ONSET
    if pol < 0 and prm[P_K_DIP] > 0.0:
        dip = positive_dip(y, s, a, c, level, sigma, prm[P_K_DIP], n_sus, n_gap)
        if dip >= 0.0 and dip < on:
            on = dip
            at_a = dip <= a
            fallback = False
            flags |= F_POSITIVE_ONSET
    if at_a:
        flags |= F_ONSET_AT_ARTEFACT
    if fallback:
        flags |= F_ONSET_BACKTRACKED
    out[O_ONSET] = t0 + on * dt

    # 9. peak: parabola through the raw samples around the smoothed minimum
    r = n_of(prm[P_PEAK_FIT], fs, 4) // 2
    off, val = fit_peak(y, level, 0.0, p, r, r, a, e)
    if not math.isfinite(val):
        off = 0.0
        val = vmin
    amp = -val
    r_lat = latency_half_width(r, amp, sigma, prm[P_PEAK_FIT_EXPONENT])
    if prm[P_PEAK_SMOOTHED] > 0.0:
        off_s, val_s = fit_peak(s, 0.0, 0.0, p - a, r_lat, r_lat, 0, e - a)
        if math.isfinite(val_s):
            off = off_s
    elif r_lat != r:
        off_s, val_s = fit_peak(y, level, 0.0, p, r_lat, r_lat, a, e)
        if math.isfinite(val_s):
            off = off_s
    out[O_PEAK] = t0 + (p + off) * dt
    out[O_AMPLITUDE] = amp
    out[O_SNR] = 20.0 * math.log10(amp / sigma) if sigma > 0.0 else np.inf

    # 10. after the peak: positive peak, negative lobes, area below baseline; an F-wave
    # trace's M wave ends at a quiet run of f_gap within k_f SD after the peak
    e_lobe = e
    e_m = -1
    thr_f = prm[P_K_F] * sig_s
    if is_f:
        n_fgap = n_of(prm[P_F_GAP], fs, 1)
        e_m = quiet_run_start(s, a, n, p, thr_f, n_fgap)
        if e_m >= 0 and e_m + n_fgap < e:
            e_lobe = e_m + n_fgap
    lobe_thr = prm[P_LOBE_FRACTION] * amp
    if lobe_thr < thr:
        lobe_thr = thr
    first_ret, last_end, vmax, no_return = lobes_after_peak(s[p - a : e_lobe - a], p, lobe_thr)
    out[O_P2P] = vmax - vmin
    if prm[P_RESPONSE_EITHER] > 0.0:
        out[O_P2P] = vpos - vmin  # MEP convention: largest to smallest in the search window
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
        other = second_lobe_depth(s, a, i_on, i_end, p)
        if -vmin - other <= prm[P_K_TWIN] * math.sqrt(2.0) * sig_s:
            flags |= F_TWIN_PEAK

    # a deflection that neither starts after the artefact nor returns to baseline has no
    # identifiable onset or return (AANEM: not an acceptable waveform): an artefact tail or drift
    if at_a and (flags & F_NO_RETURN):
        return ST_NO_RESPONSE, flags

    # 11. F wave: the first sustained departure after the M wave (not before f_start)
    if is_f:
        f_lat = f_wave_latency(s, a, n, e_m, t0, fs, prm, thr_f)
        if math.isfinite(f_lat):
            out[O_F_LATENCY] = f_lat
        else:
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
    ``modality`` holds codes 0 motor, 1 sensory, 2 fwave, 3 mep (the row of ``params``).
    """
    width = signal.shape[1]
    y = np.empty(width + 1, dtype=np.float64)
    s = np.empty(width + 1, dtype=np.float64)
    q = np.empty(width + 1, dtype=np.float64)
    tmp = np.empty(3 * (width + 1), dtype=np.float64)  # order_pair's scratch: 3 x the values
    for r in range(signal.shape[0]):
        n = n_samples[r]
        if n > width:
            n = width
        m = modality[r]
        st, fl = measure_trace(
            signal[r],
            n,
            sampling_rate[r],
            t_start[r],
            params[m],
            m == FWAVE_CODE,
            y,
            s,
            q,
            tmp,
            out[r],
        )
        status[r] = st
        flags[r] = fl


try:
    measure_block = jit(_block_signature())(_measure_block)
except ImportError:  # pragma: no cover - numba missing: the kill switch path
    measure_block = _measure_block
