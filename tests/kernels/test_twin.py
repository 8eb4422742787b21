"""Every Numba kernel agrees with its numpy reference twin (random and edge-case traces)."""

from __future__ import annotations

import numpy as np
import pytest

import ncsproc.kernels as K
from ncsproc.kernels._reference import KERNEL_REFERENCES

from .conftest import FS, artefact, pulse, run_block, run_ref


def _random_traces(rng, m, width=600, *, sensory=False):
    t = np.arange(width) / FS
    rows = []
    for _ in range(m):
        kind = rng.integers(0, 10)
        amp = 10 ** rng.uniform(-5.5, -4) if sensory else 10 ** rng.uniform(-4, -2)
        noise = amp / 10 ** rng.uniform(0.3, 3)
        onset = rng.uniform(1.2e-3, 8e-3)
        x = rng.normal(0, noise, width)
        if kind < 7:
            sign = 1 if rng.uniform() < 0.85 else -1
            x += sign * pulse(
                t,
                onset,
                amp,
                t_neg=rng.uniform(0.5e-3, 5e-3),
                t_pos=rng.uniform(1e-3, 8e-3),
                pos_ratio=rng.uniform(0, 0.8),
                init=rng.choice([0, 0, rng.uniform(0.05, 0.5)]),
            )
        if kind == 7:
            x[:] = rng.normal(0, 1) * 1e-3  # flat line
        if rng.uniform() < 0.7:
            x += artefact(
                t, rng.choice([-1, 1]) * 10 ** rng.uniform(-4, -1.7), rng.uniform(3e-5, 3e-4)
            )
        x += rng.normal(0, 1e-4) * (rng.uniform() < 0.3)
        if kind == 8:
            x[rng.integers(0, width, 3)] = np.nan
        if kind == 9:
            lim = np.quantile(np.abs(x[40:]), 0.97)
            x = np.clip(x, -lim, lim)
        rows.append(x)
    return np.array(rows)


def _compare(signal, **kw):
    out, st, fl = run_block(signal, **kw)
    rout, rst, rfl = run_ref(signal, **kw)
    bad = np.flatnonzero((st != rst) | (fl != rfl))
    assert bad.size == 0, (
        f"status/flags differ at rows {bad[:10]}: {st[bad]} {rst[bad]} {fl[bad]} {rfl[bad]}"
    )
    assert_close(out, rout)
    return out, st, fl


# absolute tolerances per output column: 1 ns, 0.1 nV, 1e-13 V s, 1e-6 dB (the kernel and the
# twin solve the artefact fit differently, so last-digit differences propagate)
ATOL = np.zeros(K.N_OUT)
for _k in (
    K.O_ONSET,
    K.O_PEAK,
    K.O_NEG_DURATION,
    K.O_TOTAL_DURATION,
    K.O_F_LATENCY,
    K.O_ARTEFACT_END,
):
    ATOL[_k] = 1e-9
for _k in (K.O_AMPLITUDE, K.O_P2P, K.O_BASELINE, K.O_NOISE):
    ATOL[_k] = 1e-10
ATOL[K.O_NEG_AREA] = 1e-13
ATOL[K.O_SNR] = 1e-6


def assert_close(out, rout, rtol=1e-6):
    """Kernel and twin outputs agree column by column (NaN where the other is NaN)."""
    same_nan = np.isnan(out) == np.isnan(rout)
    diff = np.abs(np.nan_to_num(out - rout, nan=0.0, posinf=0.0, neginf=0.0))
    ok = same_nan & (diff <= ATOL + rtol * np.abs(np.nan_to_num(rout, posinf=0.0)))
    ok |= out == rout  # equal infinities
    bad = np.argwhere(~ok)
    assert bad.size == 0, "kernel != twin at (row, column) " + ", ".join(
        f"{tuple(b)}: {out[tuple(b)]!r} vs {rout[tuple(b)]!r}" for b in bad[:5]
    )


@pytest.mark.parametrize("modality", [0, 1, 2])
def test_block_matches_twin_random(rng, modality):
    sig = _random_traces(rng, 60, sensory=modality == 1)
    out, st, fl = _compare(sig, modality=modality)
    # the random mix exercises more than one status and the interesting flags
    assert len(np.unique(st)) >= 2
    assert (fl & K.F_ARTEFACT_SUBTRACTED).any()


def test_block_matches_twin_with_pretrigger_and_padding(rng):
    sig = _random_traces(rng, 40)
    ns = rng.integers(200, sig.shape[1] + 1, sig.shape[0])
    for i, k in enumerate(ns):
        sig[i, k:] = np.nan
    _compare(sig, t_start=-2e-3, n_samples=ns)
    _compare(sig.astype(np.float32), t_start=-5e-3, n_samples=ns)


def test_block_matches_twin_float32(rng):
    sig = _random_traces(rng, 40).astype(np.float32)
    _compare(sig)


def test_helpers_match_twins(rng):
    """The building blocks agree one by one (KERNEL_REFERENCES drives this and the benchmarks)."""
    y = rng.normal(0, 1e-5, 500) + artefact(np.arange(500) / FS, 5e-3, 1.5e-4)
    y[300:] += -pulse(np.arange(200) / FS, 0.5e-3, 1e-3)
    tmp = np.empty(600)
    kern, ref = KERNEL_REFERENCES["block_noise"]
    assert kern(y, 0, 500, 16, tmp) == pytest.approx(ref(y, 0, 500, 16), rel=1e-12)
    kern, ref = KERNEL_REFERENCES["robust_level"]
    assert kern(y, 100, 200, 1e-5, tmp) == pytest.approx(ref(y, 100, 200, 1e-5), rel=1e-12)
    kern, ref = KERNEL_REFERENCES["settle_index"]
    assert kern(y, 2, 500, 0.0, 4e-5, 2) == ref(y, 2, 500, 0.0, 4e-5, 2)
    kern, ref = KERNEL_REFERENCES["fit_artefact"]
    got, want = kern(y, 2, 30, 0.0, 1 / FS, 2e-5, 1e-3), ref(y, 2, 30, 0.0, 1 / FS, 2e-5, 1e-3)
    np.testing.assert_allclose(got[:4], want[:4], rtol=1e-5, atol=1e-9)
    assert got[0] == pytest.approx(1.5e-4, rel=0.02)  # the artefact time constant is recovered
    kern, ref = KERNEL_REFERENCES["subtract_artefact"]
    a, b = y.copy(), y.copy()
    kern(a, 2, 500, 0.0, 1 / FS, 1.5e-4, 5e-3, -5e-3, 1e-12)
    ref(b, 2, 500, 0.0, 1 / FS, 1.5e-4, 5e-3, -5e-3, 1e-12)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)
    full = y.copy()
    ref(full, 2, 500, 0.0, 1 / FS, 1.5e-4, 5e-3, -5e-3, 0.0)  # never stops early
    np.testing.assert_allclose(a, full, rtol=0, atol=1e-12)  # the cut-off costs < tol
    s = np.empty(500)
    K._baseline.smooth_into(y, 10, 500, 1e-6, 2, s)
    sr = KERNEL_REFERENCES["fit_peak"] and __import__(
        "ncsproc.kernels._reference", fromlist=["x"]
    ).ref_smooth_all(y, 10, 500, 1e-6, 2)
    np.testing.assert_allclose(s[:490], sr, rtol=0, atol=1e-15)
    for name, args in [
        ("first_sustained", (sr, 10, 10, 490, 3e-5, 3)),
        ("edge_line_onset", (sr, 10, 305, -1, 2e-4, 1e-5, 10, 400)),
        ("lobe_peak", (sr, 10, 500, 305, -1, 450)),
        ("onset_of", (sr, 10, 500, 305, -1, 3e-5, 0.1, 2.5, 1e-5, 10, 400)),
        ("quiet_end", (sr, 10, 400, 3.0)),
        ("second_lobe_depth", (sr, 10, 300, 480, 400)),
        ("quiet_run_start", (sr, 10, 500, 20, 3e-5, 10)),
        ("positive_dip", (y, sr, 10, 305, 1e-6, 1e-5, 4.0, 2, 10)),
        ("fit_peak", (y, 1e-6, 2e-8, 400, 8, 6, 10, 500)),
        ("plateau_run", (np.clip(y, -5e-4, 1), 400, 30, 10, 500, True)),
        ("time_index", (2.5e-3, -1e-3, FS)),
        ("window_noise", (y, 100, 300, np.empty(900))),
        ("decision_noise", (y, 100, 400, 20, 30, np.empty(900))),
        ("median_of", (y, 100, 331, np.empty(900))),
        ("n_of", (0.15e-3, FS, 1)),
    ]:
        kern, ref = KERNEL_REFERENCES[name]
        got = kern(*args)
        scratch = name in ("window_noise", "decision_noise", "median_of")
        want = ref(*args[:-1]) if scratch else ref(*args)  # the twins need no scratch array
        np.testing.assert_allclose(
            np.asarray(got, float), np.asarray(want, float), rtol=1e-9, atol=1e-15, err_msg=name
        )


def test_param_constants_match_table():
    from ncsproc.kernels import _params

    for i, p in enumerate(K.PARAMS):
        assert getattr(_params, f"P_{p.name.upper()}") == i
    assert K.N_PARAMS == len(K.PARAMS)


def test_mains_fit_matches_twin_and_tells_mains_from_broadband_noise(rng):
    """The mains fit is accepted on 50/60 Hz interference, refused on white and 1/f noise."""
    from scipy import signal as ss

    kern, ref = KERNEL_REFERENCES["fit_mains"]
    m, t0 = 1000, -0.05
    t = t0 + np.arange(m) / FS
    hum = 3e-6 * np.sin(2 * np.pi * 60 * t + 0.4) + 1e-6 * np.sin(2 * np.pi * 180 * t)
    white = rng.normal(0, 1e-6, m)
    f, coef = kern(white + hum, 0, m, t0, 1 / FS, 3.0)
    fr, coef_r = ref(white + hum, 0, m, t0, 1 / FS, 3.0)
    assert f == fr == 60.0
    np.testing.assert_allclose(coef, coef_r, rtol=1e-6, atol=1e-12)
    assert np.hypot(coef[2], coef[3]) == pytest.approx(3e-6, rel=0.05)  # the hum's amplitude
    assert kern(white, 0, m, t0, 1 / FS, 3.0)[0] == 0.0
    pink = ss.lfilter([1.0], [1.0, -0.995], rng.normal(0, 1e-7, 4 * m))[-m:]  # red-ish noise
    assert (
        kern(pink + white, 0, m, t0, 1 / FS, 3.0)[0] == ref(pink + white, 0, m, t0, 1 / FS, 3.0)[0]
    )
    y = white + hum
    z = y.copy()
    K._baseline.subtract_mains(y, m, t0, 1 / FS, f, coef)
    KERNEL_REFERENCES["subtract_mains"][1](z, m, t0, 1 / FS, f, coef)
    np.testing.assert_allclose(y, z, rtol=0, atol=1e-15)
    assert np.std(y) < 1.2e-6  # only the white part is left
