"""F-wave stage: where the M wave has returned to baseline, and the late response after it.

Each kernel is compiled with :func:`ncsproc.kernels._jit.jit`; its numpy reference twin
(``ref_<name>``, written independently with whole-array operations) follows below.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._jit import jit
from ._onset import (
    first_sustained,
    lobe_peak,
    onset_of,
    ref_first_sustained,
    ref_lobe_peak,
    ref_onset_of,
)
from ._params import P_EDGE_SPAN, P_EDGE_TOP, P_F_END, P_F_START, P_F_SUSTAIN, P_ONSET_FRACTION
from ._robust import n_of, ref_n_of, ref_time_index, time_index


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
def f_wave_latency(s, a, n, e_m, t0, fs, prm, thr_f):
    """F-wave latency (s): the onset of the first sustained departure after the M wave.

    The search runs from ``e_m`` (where the M wave has returned to baseline; -1: it never
    does, so no F wave is searched), not before ``f_start``, to ``f_end``; the onset is the
    leading-edge line of that departure extended to ``onset_fraction`` of its own lobe peak.
    NaN when there is no F wave.
    """
    if e_m < 0:
        return np.nan
    f0 = e_m
    fs0 = time_index(prm[P_F_START], t0, fs)
    if fs0 > f0:
        f0 = fs0
    f1 = time_index(prm[P_F_END], t0, fs)
    if f1 > n:
        f1 = n
    if f1 - f0 <= 0:
        return np.nan
    cf, polf = first_sustained(s[: n - a], a, f0, f1, thr_f, n_of(prm[P_F_SUSTAIN], fs, 1))
    if cf < 0:
        return np.nan
    target = prm[P_ONSET_FRACTION] * lobe_peak(s, a, n, cf, polf, n - 1)
    onf, _, _ = onset_of(
        s, a, n, cf, polf, thr_f, prm[P_EDGE_TOP], prm[P_EDGE_SPAN], target, f0, n - 1
    )
    return t0 + onf / fs


# ---- numpy reference twins ------------------------------------------------------------


def ref_quiet_run_start(s, a, n, i0, thr, run):
    q = np.abs(s[i0 - a : n - a]) <= thr
    if q.size < run:
        return -1
    hits = np.flatnonzero(sliding_window_view(q, run).all(axis=1))
    return int(i0 + hits[0]) if hits.size else -1


def ref_f_wave_latency(s, a, n, e_m, t0, fs, prm, thr_f):
    if e_m < 0:
        return np.nan
    f0 = max(e_m, ref_time_index(prm[P_F_START], t0, fs))
    f1 = min(ref_time_index(prm[P_F_END], t0, fs), n)
    if f1 - f0 <= 0:
        return np.nan
    cf, polf = ref_first_sustained(s, a, f0, f1, thr_f, ref_n_of(prm[P_F_SUSTAIN], fs, 1))
    if cf < 0:
        return np.nan
    target = prm[P_ONSET_FRACTION] * ref_lobe_peak(s, a, n, cf, polf, n - 1)
    onf, _, _ = ref_onset_of(
        s, a, n, cf, polf, thr_f, prm[P_EDGE_TOP], prm[P_EDGE_SPAN], target, f0, n - 1
    )
    return t0 + onf / fs
