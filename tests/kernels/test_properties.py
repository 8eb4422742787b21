"""Hypothesis properties: a shifted response gives a shifted onset, a scaled one scaled values."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import ncsproc.kernels as K

from .conftest import FS, artefact, pulse, run_block

W = 700
T = np.arange(W) / FS


@settings(max_examples=30, deadline=None)
@given(
    onset=st.floats(2.5e-3, 8e-3),
    shift=st.integers(1, 60),
    amp=st.floats(0.5e-3, 10e-3),
    t_neg=st.floats(2e-3, 6e-3),
    seed=st.integers(0, 2**31 - 1),
)
def test_shifted_response_gives_shifted_onset(onset, shift, amp, t_neg, seed):
    noise = np.random.default_rng(seed).normal(0, 3e-6, W + shift)
    a = pulse(T, onset, amp, t_neg=t_neg) + noise[shift:]
    b = pulse(T, onset + shift / FS, amp, t_neg=t_neg) + noise[:W]  # b[i + shift] = a[i]
    out, st_, _ = run_block(np.vstack([a, b]))
    assert (st_ == K.ST_OK).all()
    d_on = out[1, K.O_ONSET] - out[0, K.O_ONSET]
    d_pk = out[1, K.O_PEAK] - out[0, K.O_PEAK]
    assert abs(d_on - shift / FS) <= 0.03e-3
    assert abs(d_pk - shift / FS) <= 0.5 / FS
    np.testing.assert_allclose(out[1, K.O_AMPLITUDE], out[0, K.O_AMPLITUDE], rtol=0.01)


@settings(max_examples=30, deadline=None)
@given(
    onset=st.floats(2.0e-3, 8e-3),
    amp=st.floats(0.2e-3, 10e-3),
    factor=st.floats(0.05, 20.0),
    art=st.floats(-20e-3, 20e-3),
    tau=st.floats(0.05e-3, 0.3e-3),
    modality=st.sampled_from([0, 1, 2]),
    seed=st.integers(0, 2**31 - 1),
)
def test_scaled_trace_gives_scaled_amplitude(onset, amp, factor, art, tau, modality, seed):
    rng = np.random.default_rng(seed)
    x = pulse(T, onset, amp) + rng.normal(0, amp / 200, W) + artefact(T, art, tau) + 1e-4
    table = K.build_table({"min_amplitude": 0.0})  # the one absolute (unscaled) threshold
    out, st_, fl = run_block(np.vstack([x, x * factor]), modality=modality, table=table)
    assert st_[0] == st_[1] == K.ST_OK
    assert fl[0] == fl[1]
    for k in (K.O_AMPLITUDE, K.O_P2P, K.O_NEG_AREA, K.O_BASELINE, K.O_NOISE):
        np.testing.assert_allclose(out[1, k], out[0, k] * factor, rtol=1e-6)
    for k in (K.O_ONSET, K.O_PEAK, K.O_NEG_DURATION, K.O_TOTAL_DURATION, K.O_SNR):
        np.testing.assert_allclose(out[1, k], out[0, k], rtol=1e-6, atol=1e-9)
