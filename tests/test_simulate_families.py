"""Tests of the simulator's noise and shape families and of the measurable-onset truth.

Every family is checked against a fact computed independently of the simulator's own
generator: sample moments, Welch power spectra (scipy.signal.welch), least-squares sinusoid
fits, a 1 MHz sampling of the noiseless response, and hashes of the output before the families
existed (the default must stay bit-identical).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from scipy import signal

import ncsproc.simulate as sim
from ncsproc.schema import time_axis, trace_values, validate_trace_set

NOISE = 10e-6
QUIET = dict(noise_rms=0.0, artefact=False, offset=0.0, drift=0.0, mains=0.0)


def _noise(family, n, *, fs=5000.0, sweep=0.02, seed=0, options=None, **kw):
    return sim.response_set(
        "noise",
        n,
        seed=seed,
        noise=family,
        noise_options=options,
        sampling_rate=fs,
        sweep=sweep,
        noise_rms=NOISE,
        artefact=False,
        **kw,
    )


def _welch(x, fs):
    f, p = signal.welch(x, fs=fs, nperseg=8192, axis=-1)
    return f, p.mean(axis=0)


def _digest(a: np.ndarray) -> str:
    # rounded to 1 pV (1e-12 of the unit) so that last-bit differences of a numpy/scipy build
    # do not count, while any change of the simulator itself does
    x = np.round(np.asarray(a, dtype=np.float64), 12)
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------
# Defaults are the simulator of before the families (hashes taken from that version)
# ----------------------------------------------------------------------------------------
BEFORE = {
    ("motor", False): "f610c5f740be9d6b",
    ("motor", True): "cc2e9401fd8392bc",
    ("sensory", False): "ca2ac0696bcd12d5",
    ("sensory", True): "eccd697142ff1670",
    ("fwave", False): "fd5062dc1a992840",
    ("fwave", True): "01cd78e4d2ffb8d6",
    ("noise", False): "4e6d9a2a24605e8d",
    ("noise", True): "77cb36081b16a3dc",
}
"""Re-pinned on 2026-12-07 from commit 597000f's own output (the simulator unchanged since):
the exact-bit hashes taken before the families stopped matching that same code in a fresh
install (numpy 2.4.6, scipy 1.17.1), so they now hash values rounded to 1 pV."""


@pytest.mark.parametrize("kind, disturbed", sorted(BEFORE))
def test_default_output_is_bit_identical_to_before_the_families(kind, disturbed):
    kw = dict(pretrigger=5e-3, mains=5e-6, drift=1e-4, sampling_rate=10000.0) if disturbed else {}
    traces, truth = sim.response_set(kind, 12, seed=3, **kw)
    assert _digest(traces.signal.values) == BEFORE[(kind, disturbed)]
    explicit, _ = sim.response_set(kind, 12, seed=3, noise="white", shape="standard", **kw)
    assert _digest(explicit.signal.values) == BEFORE[(kind, disturbed)]
    assert set(truth.noise_family.values) == {"white"}
    assert set(truth.shape.values) == {"standard"}


def test_default_exam_is_bit_identical_to_before_the_families():
    traces, gt = sim.exam("cidp_like", seed=5)
    assert _digest(np.nan_to_num(traces.signal.values)) == "8e739c2ec7fd9629"
    assert _digest(gt.studies["dml"].values) == "c3f33a10204bbdf9"


# ----------------------------------------------------------------------------------------
# Noise families
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["white", "bandlimited", "pink", "emg"])
def test_sd_of_the_added_process_is_noise_rms(family):
    traces, truth = _noise(family, 200, seed=1)
    x = traces.signal.values
    # pooled over traces (no per-trace mean removed): the SD of the process itself
    assert np.sqrt(np.mean(x**2)) == pytest.approx(NOISE, rel=0.04)
    np.testing.assert_array_equal(truth.noise_rms.values, NOISE)
    assert set(truth.noise_family.values) == {family}


@pytest.mark.parametrize("family", ["mains", "wander"])
def test_white_part_of_mains_and_wander_has_sd_noise_rms(family):
    traces, _ = _noise(family, 40, fs=20000.0, seed=2)
    x = traces.signal.values
    # second differences see the white part only (hum and wander are smooth at 20 kHz):
    # Var(x[k+1] - 2 x[k] + x[k-1]) = 6 sigma^2 for white noise
    white = np.std(np.diff(x, 2, axis=1)) / np.sqrt(6.0)
    assert white == pytest.approx(NOISE, rel=0.03)


def test_bandlimited_spectrum_is_flat_in_band_and_attenuated_outside():
    fs = 5000.0
    traces, truth = _noise(
        "bandlimited", 4, fs=fs, sweep=8.0, options={"highpass": 10.0, "lowpass": 500.0}
    )
    np.testing.assert_array_equal(truth.noise_highpass.values, 10.0)
    np.testing.assert_array_equal(truth.noise_lowpass.values, 500.0)
    assert np.isnan(traces.highpass.values).all() and np.isnan(traces.lowpass.values).all()
    f, p = _welch(traces.signal.values, fs)
    band = p[(f > 50) & (f < 200)].mean()
    assert p[(f >= 1) & (f <= 3)].mean() < 0.01 * band  # 2nd-order HP: (2/10)^4
    assert p[(f >= 1500) & (f <= 2400)].mean() < 0.01 * band  # 2nd-order LP: (3-5)^-4
    # Butterworth corners are half-power points
    for corner in (10.0, 500.0):
        k = int(np.argmin(np.abs(f - corner)))
        assert p[k] / band == pytest.approx(0.5, abs=0.15)


def test_bandlimited_default_corners_and_clamp():
    _, truth = _noise("bandlimited", 30, fs=48000.0, seed=4)
    assert ((truth.noise_highpass >= 2.0) & (truth.noise_highpass <= 20.0)).all()
    assert ((truth.noise_lowpass >= 2000.0) & (truth.noise_lowpass <= 10000.0)).all()
    _, truth = _noise("bandlimited", 10, fs=3000.0, seed=4)
    assert (truth.noise_lowpass <= 0.45 * 3000.0 + 1e-9).all()


def test_pink_noise_has_a_one_over_f_spectrum():
    fs = 5000.0
    traces, _ = _noise("pink", 4, fs=fs, sweep=8.0)
    f, p = _welch(traces.signal.values, fs)
    m = (f >= 4.0) & (f <= 1000.0)
    slope = np.polyfit(np.log(f[m]), np.log(p[m]), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.1)


def test_mains_has_its_fundamental_and_harmonics():
    fs = 5000.0
    opts = {"amplitude_ratio": 4.0, "decay": 0.5, "frequency": 60.0}
    traces, truth = _noise("mains", 2, fs=fs, sweep=8.0, options=opts)
    np.testing.assert_array_equal(truth.noise_mains_frequency.values, 60.0)
    np.testing.assert_allclose(truth.noise_mains_amplitude.values, 4.0 * NOISE)
    t = time_axis(traces, 0)
    for i in range(2):
        x = trace_values(traces, i)
        for k in range(1, 6):
            basis = np.c_[np.sin(2 * np.pi * k * 60.0 * t), np.cos(2 * np.pi * k * 60.0 * t)]
            amp = np.hypot(*np.linalg.lstsq(basis, x, rcond=None)[0])
            assert amp == pytest.approx(4.0 * NOISE * 0.5 ** (k - 1), rel=0.1), k
    # default draws: 50 or 60 Hz, fundamental 1-5 x noise_rms
    _, truth = _noise("mains", 40, seed=5)
    assert set(truth.noise_mains_frequency.values) == {50.0, 60.0}
    ratio = truth.noise_mains_amplitude.values / NOISE
    assert ratio.min() >= 1.0 and ratio.max() <= 5.0


def test_emg_power_lies_in_20_to_500_hz():
    fs = 5000.0
    traces, truth = _noise("emg", 8, fs=fs, sweep=8.0)
    f, p = _welch(traces.signal.values, fs)
    assert p[(f >= 20) & (f <= 500)].sum() / p.sum() > 0.85
    units = truth.noise_emg_units.values
    assert units.min() >= 2 and units.max() <= 8
    rate = truth.noise_emg_rate.values
    assert rate.min() >= 6.0 and rate.max() <= 20.0
    # MUAP trains make it spiky: heavier tails than Gaussian noise (kurtosis 3)
    x = traces.signal.values
    z = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    assert np.mean(z**4) > 3.5


@pytest.mark.parametrize("kind", ["sines", "walk"])
def test_wander_peak_to_peak_is_in_range(kind):
    fs = 20000.0
    traces, truth = _noise("wander", 20, fs=fs, sweep=0.2, seed=6, options={"kind": kind})
    p2p = truth.noise_wander_p2p.values
    assert (p2p >= 5 * NOISE).all() and (p2p <= 50 * NOISE).all()
    assert set(truth.noise_wander_kind.values) == {kind}
    # a 2 ms moving average leaves the wander (less 1 % of the sweep at the ends) and
    # 1/sqrt(40) of the white noise
    width = int(2e-3 * fs)
    kernel = np.ones(width) / width
    for i in range(traces.sizes["trace"]):
        smooth = np.convolve(trace_values(traces, i), kernel, mode="valid")
        assert np.ptp(smooth) == pytest.approx(p2p[i], abs=0.03 * p2p[i] + 8 * NOISE / 6.3)


@pytest.mark.parametrize("family", sim.NOISE_FAMILIES)
def test_families_are_seeded(family):
    a, ta = sim.response_set("motor", 3, seed=11, noise=family, noise_rms=NOISE)
    b, _ = sim.response_set("motor", 3, seed=11, noise=family, noise_rms=NOISE)
    c, _ = sim.response_set("motor", 3, seed=12, noise=family, noise_rms=NOISE)
    np.testing.assert_array_equal(a.signal.values, b.signal.values)
    assert not np.array_equal(a.signal.values, c.signal.values)
    # the family draws from its own stream: the responses are those of the white run
    _, tw = sim.response_set("motor", 3, seed=11, noise_rms=NOISE)
    np.testing.assert_array_equal(ta.onset_latency.values, tw.onset_latency.values)
    np.testing.assert_array_equal(ta.artefact_amplitude.values, tw.artefact_amplitude.values)


def test_unknown_family_or_option_is_refused_by_name():
    with pytest.raises(ValueError, match="brown"):
        sim.response_set("noise", 1, seed=0, noise="brown")
    with pytest.raises(ValueError, match="cutoff.*highpass"):
        sim.response_set("noise", 1, seed=0, noise="bandlimited", noise_options={"cutoff": 3})
    with pytest.raises(ValueError, match="round"):
        sim.response_set("motor", 1, seed=0, shape="round")


# ----------------------------------------------------------------------------------------
# Shape families and the measurable onset
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fine():
    """Noiseless traces sampled at 1 MHz, per shape and kind."""
    out = {}
    for shape in sim.SHAPE_FAMILIES:
        for kind in ("motor", "sensory", "fwave"):
            out[shape, kind] = sim.response_set(
                kind, 4, seed=8, shape=shape, sampling_rate=1e6, **QUIET
            )
    return out


@pytest.mark.parametrize("shape", sim.SHAPE_FAMILIES)
@pytest.mark.parametrize("kind", ["motor", "sensory", "fwave"])
def test_measurable_onset_is_the_first_1_percent_departure(fine, shape, kind):
    traces, truth = fine[shape, kind]
    for i in range(traces.sizes["trace"]):
        t, x = time_axis(traces, i), trace_values(traces, i)
        amp = float(truth.amplitude[i])
        meas = float(truth.measurable_onset_latency[i])
        k = int(np.argmax(np.abs(x) >= 0.01 * amp))
        assert t[k - 1] - 1e-9 <= meas <= t[k] + 1e-9
        assert meas >= float(truth.onset_latency[i])
        assert -x.min() == pytest.approx(amp, rel=1e-4)
    assert set(truth.shape.values) == {shape}


def test_shape_families_differ_as_documented(fine):
    def delay(shape, kind="motor"):
        _, truth = fine[shape, kind]
        return (truth.measurable_onset_latency - truth.onset_latency).values

    # second-order start: leaves baseline clearly later than the first-order standard unit
    for kind in ("motor", "sensory", "fwave"):
        assert delay("slow_rise", kind).min() > 1.5 * np.median(delay("standard", kind))
    assert delay("slow_rise").min() > 0.15e-3
    # sharp: negative peak earlier after the onset than the standard shape (u = 0.25 vs 0.4)
    rise = {}
    for shape in ("standard", "biphasic_sharp"):
        _, truth = fine[shape, "motor"]
        rise[shape] = np.median((truth.peak_latency - truth.onset_latency).values)
    assert rise["biphasic_sharp"] < rise["standard"]
    # triphasic: every response first departs upwards (the initial positivity)
    for kind in ("motor", "sensory", "fwave"):
        traces, truth = fine["triphasic", kind]
        assert truth.initial_positivity.values.all()
        for i in range(traces.sizes["trace"]):
            t, x = time_axis(traces, i), trace_values(traces, i)
            k = int(np.argmin(np.abs(t - float(truth.measurable_onset_latency[i])))) + 1
            assert x[k] > 0


def test_f_measurable_latency_follows_the_f_onset():
    _, truth = sim.response_set("fwave", 20, seed=9, shape="slow_rise", **QUIET)
    has_f = np.isfinite(truth.f_latency.values)
    assert has_f.sum() >= 10
    d = truth.f_measurable_latency.values[has_f] - truth.f_latency.values[has_f]
    assert (d > 0).all() and (d < 2e-3).all()
    assert np.isnan(truth.f_measurable_latency.values[~has_f]).all()


def test_no_response_has_no_measurable_onset():
    _, truth = sim.response_set("noise", 3, seed=0)
    assert np.isnan(truth.measurable_onset_latency.values).all()


# ----------------------------------------------------------------------------------------
# Sampling rates and exams
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fs", [3000.0, 5000.0, 10000.0, 20000.0, 48000.0, 50000.0])
def test_every_family_works_at_every_sampling_rate(fs):
    for j, family in enumerate(sim.NOISE_FAMILIES):
        pre = 3e-3 if j % 2 else 0.0  # with and without a pre-trigger baseline
        traces, _ = sim.response_set(
            "motor", 1, seed=1, noise=family, sampling_rate=fs, pretrigger=pre
        )
        assert traces.signal.shape[1] == round(pre * fs) + round(0.02 * fs)
        assert np.isfinite(traces.signal.values).all(), family
    for j, shape in enumerate(sim.SHAPE_FAMILIES):
        for kind in ("motor", "sensory", "fwave")[j % 3 :][:2]:
            traces, truth = sim.response_set(kind, 1, seed=2, shape=shape, sampling_rate=fs)
            sweep = {"motor": 0.02, "sensory": 0.01, "fwave": 0.06}[kind]
            assert traces.signal.shape[1] == round(sweep * fs)
            assert np.isfinite(truth.measurable_onset_latency.values).all()


def test_exam_with_families_and_its_measurable_truths():
    traces, gt = sim.exam("distal_demyelinating", seed=3, noise="bandlimited", shape="slow_rise")
    validate_trace_set(traces)
    assert set(gt.traces.noise_family.values) == {"bandlimited"}
    assert set(gt.traces.shape.values) == {"slow_rise"}
    # recompute the measurable study truths from the per-trace truth and the distances
    meas = dict(zip(traces.trace.values, gt.traces.measurable_onset_latency.values, strict=True))
    for _, row in gt.studies[gt.studies.modality == "motor"].iterrows():
        rows = traces.study.values == row["study"]
        ids, dist = traces.trace.values[rows], traces.distance.values[rows]
        on = np.array([meas[i] for i in ids])
        assert row["dml_measurable"] == pytest.approx(on[0], abs=1e-15)
        cv = (dist[1] - dist[0]) / (on[1] - on[0])
        assert row["cv_measurable"] == pytest.approx(cv, rel=1e-12)
        assert row["tli_measurable"] == pytest.approx(dist[0] / (cv * on[0]), rel=1e-12)
        assert row["dml_measurable"] > row["dml"]
    seg = gt.segments
    assert np.isfinite(seg.cv_measurable).all()
    sens = gt.studies[(gt.studies.modality == "sensory") & gt.studies.has_response]
    np.testing.assert_allclose(
        sens.scv_measurable, sens.distal_distance / sens.snap_onset_measurable, rtol=1e-12
    )


def test_cohort_threads_the_families():
    traces, gt = sim.cohort(["normal"], seed=1, noise="mains", shape="triphasic")
    assert set(gt.traces.noise_family.values) == {"mains"}
    assert np.isfinite(gt.traces.noise_mains_amplitude.values).all()
    motor = gt.traces.where(traces.modality == "motor", drop=True)
    assert (motor.measurable_onset_latency > motor.onset_latency).all()
