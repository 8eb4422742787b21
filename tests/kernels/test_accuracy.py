"""Accuracy against the simulator's exact ground truth (the targets of issue 3).

The simulated sets use seeds that were not used to choose the default parameters (those were
tuned on seeds below 200). The numbers printed in ``formats/measures.md`` come from
``python -m benchmarks --accuracy`` on the same kinds of sets.
"""

from __future__ import annotations

import numpy as np
import pytest

import ncsproc

FS = 20000.0


@pytest.fixture(scope="module")
def motor():
    from ncsproc.simulate import response_set

    ts, truth = response_set(
        "motor", 400, seed=2024, amplitude=(1e-3, 15e-3), noise_rms=(2e-6, 10e-6)
    )
    return ts, truth, ncsproc.measure(ts)


@pytest.fixture(scope="module")
def sensory():
    """Antidromic SNAPs (negative-first), the recordings the issue's targets are about."""
    from ncsproc.simulate import response_set

    ts, truth = response_set(
        "sensory", 1200, seed=2024, amplitude=(3e-6, 60e-6), noise_rms=(0.2e-6, 0.5e-6)
    )
    return ts, truth, ncsproc.measure(ts)


@pytest.fixture(scope="module")
def orthodromic():
    """SNAPs of which 30 % start with a small positive lobe (orthodromic shape)."""
    from ncsproc.simulate import response_set

    ts, truth = response_set(
        "sensory",
        400,
        seed=2024,
        amplitude=(3e-6, 60e-6),
        noise_rms=(0.2e-6, 0.5e-6),
        initial_positivity=0.3,
    )
    return ts, truth, ncsproc.measure(ts)


# issue 14: the onset is validated against the measurable onset (the first 1 % departure of
# the noiseless response), the F-wave latency likewise
_TRUTH_OF = {"onset_latency": "measurable_onset_latency", "f_latency": "f_measurable_latency"}


def _err(res, truth, name):
    return res[name].values - truth[_TRUTH_OF.get(name, name)].values


def test_motor_cmaps_are_all_measured(motor):
    _, _, res = motor
    assert (res["status"].values == "ok").all()


def test_motor_onset(motor):
    _, truth, res = motor
    e = np.abs(_err(res, truth, "onset_latency"))
    assert np.median(e) <= 0.05e-3
    assert np.percentile(e, 95) <= 0.10e-3


def test_motor_amplitude_within_2_percent(motor):
    _, truth, res = motor
    rel = np.abs(res["amplitude"].values / truth["amplitude"].values - 1)
    assert rel.max() <= 0.02


def test_motor_peak_latency_within_one_sample(motor):
    _, truth, res = motor
    e = np.abs(_err(res, truth, "peak_latency")) * FS
    assert np.mean(e <= 1.0) >= 0.99
    # the largest errors are noise on broad flat tops: 1.4-3.2 samples on seven seeds (with the
    # fixed-width raw fit 1.7-3.1), apart from twin-peaked CMAPs whose two negative lobes are
    # equally deep (43 and 74 samples on two of the seeds, with either fit)
    assert e.max() <= 3.5


def test_motor_durations_and_area(motor):
    # not targets of the issue; guards against regressions of the documented accuracy
    _, truth, res = motor
    # durations start at the onset, whose truth moved to the measurable onset: compare where
    # they end (onset + duration), which no onset definition moves
    for name in ("negative_duration", "total_duration"):
        end = res["onset_latency"].values + res[name].values
        e = np.abs(end - (truth["onset_latency"].values + truth[name].values))
        assert np.median(e) <= 0.05e-3, name
        assert np.percentile(e, 95) <= 0.2e-3, name
    rel = np.abs(res["negative_area"].values / truth["negative_area"].values - 1)
    assert np.percentile(rel, 95) <= 0.01
    rel = np.abs(res["peak_to_peak"].values / truth["peak_to_peak"].values - 1)
    assert np.percentile(rel, 95) <= 0.02


def test_sensory_snaps_are_all_measured(sensory):
    _, _, res = sensory
    assert (res["status"].values == "ok").all()


def test_sensory_peak_latency(sensory):
    _, truth, res = sensory
    e = np.abs(_err(res, truth, "peak_latency")) * FS
    assert np.mean(e <= 1.0) >= 0.95


@pytest.fixture(scope="module")
def sensory_held_out():
    """3,600 SNAPs of seeds used for no choice of parameters (peak_smoothed was chosen on seeds
    77, 150 and 2024, peak_fit_exponent on seeds 5, 11, 77 and 150)."""
    from ncsproc.simulate import response_set

    errs = []
    for seed in (31, 999, 4242):
        ts, truth = response_set(
            "sensory", 1200, seed=seed, amplitude=(3e-6, 60e-6), noise_rms=(0.2e-6, 0.5e-6)
        )
        errs.append(np.abs(_err(ncsproc.measure(ts), truth, "peak_latency")) * FS)
    return np.concatenate(errs)


def _peak_gain(measured, kind, **alternative):
    """Points of peak latencies within one sample gained by the defaults over ``alternative``
    parameters of ``kind``, on the same traces; the amplitudes must be the same."""
    ts, truth, res = measured
    alt = ncsproc.measure(ts, **{kind: alternative})
    np.testing.assert_array_equal(res["amplitude"].values, alt["amplitude"].values)
    within = np.mean(np.abs(_err(res, truth, "peak_latency")) * FS <= 1.0)
    return 100.0 * (within - np.mean(np.abs(_err(alt, truth, "peak_latency")) * FS <= 1.0))


def test_sensory_peak_latency_smoothed_fit_helps(sensory):
    """The latency from the fit to the smoothed deviation (peak_smoothed) beats the raw fit's."""
    assert _peak_gain(sensory, "sensory", peak_smoothed=0.0) >= 0.5


def test_sensory_peak_latency_snr_scaled_fit_helps(sensory):
    """The latency fit that narrows at high and widens at low SNR (peak_fit_exponent) beats
    the fixed-width fit."""
    assert _peak_gain(sensory, "sensory", peak_fit_exponent=0.0) >= 0.5


def test_motor_peak_latency_smoothed_scaled_fit_helps(motor):
    """For CMAPs too, the smoothed, SNR-scaled latency fit beats the raw fixed-width one."""
    assert _peak_gain(motor, "motor", peak_smoothed=0.0, peak_fit_exponent=0.0) > 0.0


def test_sensory_peak_latency_target(sensory_held_out):
    """The target of issue 3 on SNAPs that chose no parameter: 95 % within one sample."""
    assert np.mean(sensory_held_out <= 1.0) >= 0.95


def test_sensory_amplitude(sensory):
    _, truth, res = sensory
    a = truth["amplitude"].values
    ok = np.abs(res["amplitude"].values - a) <= np.maximum(0.05 * a, 0.3e-6)
    assert np.mean(ok) >= 0.95


def test_sensory_onset(sensory):
    _, truth, res = sensory
    e = np.abs(_err(res, truth, "onset_latency"))
    assert np.percentile(e, 95) <= 0.15e-3
    assert np.median(e) <= 0.05e-3


def test_visible_initial_positivity_is_the_onset(orthodromic):
    _, truth, res = orthodromic
    flagged = (res["qc_flags"].values & 1).astype(bool)  # positive_onset
    init = truth["initial_positivity"].values
    assert flagged.sum() >= 20
    assert np.mean(init[flagged]) >= 0.9  # a flagged positive onset is a real positivity
    e = np.abs(_err(res, truth, "onset_latency"))[flagged & init]
    assert np.median(e) <= 0.08e-3


def test_pure_noise_is_no_response():
    from ncsproc.simulate import response_set

    ts, _ = response_set("noise", 1000, seed=2025)
    res = ncsproc.measure(ts)
    assert np.mean(res["status"].values == "no_response") >= 0.99
    ts, _ = response_set("noise", 300, seed=2026, pretrigger=5e-3)
    assert np.mean(ncsproc.measure(ts)["status"].values == "no_response") >= 0.99


def test_sensory_noise_is_no_response():
    from ncsproc.simulate import response_set

    ts, _ = response_set("sensory", 300, seed=2027, noise_rms=(0.2e-6, 0.5e-6))
    noise_only = ts.assign(
        signal=ts["signal"] * 0 + np.random.default_rng(1).normal(0, 0.4e-6, ts["signal"].shape)
    )
    res = ncsproc.measure(noise_only)
    assert np.mean(res["status"].values == "no_response") >= 0.99


def test_small_responses_are_never_no_response():
    from ncsproc.simulate import response_set

    ts, _ = response_set("motor", 200, seed=2028, amplitude=1e-3, noise_rms=10e-6)
    assert (ncsproc.measure(ts)["status"].values != "no_response").all()
    ts, _ = response_set("sensory", 200, seed=2028, amplitude=3e-6, noise_rms=0.5e-6)
    # 3 uV SNAPs at SNR 6 without a pre-trigger: measured 2 of 200 called no_response (the
    # decision noise of a short quiet window); with the white-noise block estimate of v1, none
    assert np.mean(ncsproc.measure(ts)["status"].values != "no_response") >= 0.99


def test_f_waves():
    from ncsproc.simulate import response_set

    ts, truth = response_set("fwave", 300, seed=2029)
    res = ncsproc.measure(ts)
    assert (res["status"].values == "ok").all()
    has = np.isfinite(truth["f_latency"].values)
    got = np.isfinite(res["f_latency"].values)
    assert np.mean(got[has]) >= 0.94  # F waves found (measured 94.8 % on this set)
    assert np.mean(~got[~has]) >= 0.95  # no F where there is none
    e = np.abs(_err(res, truth, "f_latency"))[has & got]
    assert np.median(e) <= 0.05e-3
    assert np.percentile(e, 90) <= 0.5e-3
    # the M wave of an F-wave trace is measured like a CMAP
    e = np.abs(_err(res, truth, "onset_latency"))
    assert np.percentile(e, 95) <= 0.10e-3


def test_pretrigger_baseline_and_float32():
    from ncsproc.simulate import response_set

    ts, truth = response_set(
        "motor",
        200,
        seed=2030,
        amplitude=(1e-3, 15e-3),
        noise_rms=(2e-6, 10e-6),
        pretrigger=5e-3,
        dtype="float32",
    )
    res = ncsproc.measure(ts)
    assert (res["status"].values == "ok").all()
    e = np.abs(_err(res, truth, "onset_latency"))
    assert np.median(e) <= 0.05e-3 and np.percentile(e, 95) <= 0.10e-3
    assert np.max(np.abs(res["amplitude"].values / truth["amplitude"].values - 1)) <= 0.02


def test_clipped_traces_are_saturated():
    from ncsproc.simulate import response_set

    clip = 3e-3
    ts, truth = response_set("motor", 150, seed=2031, amplitude=(1e-3, 15e-3), clip=clip)
    res = ncsproc.measure(ts)
    amp = truth["amplitude"].values
    pos = truth["peak_to_peak"].values - amp
    clipped = (amp > 1.02 * clip) | (pos > 1.02 * clip)  # the response reaches the rails
    clean = (amp < 0.95 * clip) & (pos < 0.95 * clip)  # only the artefact spike may
    sat = res["status"].values == "saturated"
    assert clipped.sum() >= 20 and clean.sum() >= 20
    assert sat[clipped].all()
    assert (res["status"].values[clean] == "ok").all()
    assert np.isnan(res["amplitude"].values[sat]).all()


def test_ncsproc_beats_the_peer_on_ncs_traces(motor, sensory):
    import os

    peer = pytest.importorskip("benchmarks.peer")
    if not peer.available():
        message = 'mep-cmap-analyser (the GPL peer) is not installed: pip install ".[bench]"'
        if os.environ.get("NCSPROC_REQUIRE_PEER", "") not in ("", "0"):
            pytest.fail(message + " (NCSPROC_REQUIRE_PEER is set: the comparison must run)")
        pytest.skip(message)
    for ts, truth, res in (motor, sensory):
        sub = slice(0, 120)
        on, _, _ = peer.peer_measure(
            ts.isel(trace=sub),
            "bigoni",
            gate_mV=None if ts["modality"].values[0] == "motor" else 1e-3,
        )
        t = truth["measurable_onset_latency"].values[sub]
        ours = np.abs(res["onset_latency"].values[sub] - t)
        theirs = np.abs(on - t)
        theirs = np.where(np.isnan(theirs), 1.0, theirs)  # a missed onset counts as 1 s off
        assert np.median(ours) < np.median(theirs)
        assert np.percentile(ours, 95) < np.percentile(theirs, 95)
