"""Tests of ncsproc.simulate: the waveform model, its exact truth, disturbances and patterns.

Every check compares the simulator with something computed independently of it: analytic
values of a single unit potential, a finely sampled waveform, the trace set's own metadata,
or the normal limits of patterns.toml.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ncsproc.simulate as sim
from ncsproc.schema import time_axis, trace_values, validate_trace_set
from ncsproc.simulate.population import MotorNerve, draw_unit_shapes, draw_velocities
from ncsproc.simulate.waveforms import UnitPotentials, build_response, waveform_truth

QUIET = dict(noise_rms=0.0, artefact=False, offset=0.0, drift=0.0, mains=0.0)
LIMITS = sim.load_patterns()["limits"]


@pytest.fixture(scope="module")
def exams():
    """Five exams per pattern (seeds 0-4), generated once for the module."""
    return {p: [sim.exam(p, seed=s) for s in range(5)] for p in sim.PATTERNS}


def _lim(study_key: str, name: str) -> float:
    return float(LIMITS[study_key][name]["value"])


# ----------------------------------------------------------------------------------------
# The unit potential and the exact truth
# ----------------------------------------------------------------------------------------
def test_single_unit_truth_matches_closed_form():
    a, tn, tp, r, s = 1e-3, 4e-3, 8e-3, 0.4, 1e-3
    units = UnitPotentials(
        amplitude=np.array([a]),
        t_neg=np.array([tn]),
        t_pos=np.array([tp]),
        pos_ratio=np.array([r]),
        t_init=np.zeros(1),
        init_ratio=np.zeros(1),
    )
    tr = waveform_truth(build_response(np.array([s]), units))
    # N(u) = u (1-u)^2 (1 + 1.25 u) / 0.216: minimum at u = 0.4, integral 0.125 / 0.216
    assert tr["onset_latency"] == pytest.approx(s, abs=1e-15)
    assert tr["peak_latency"] == pytest.approx(s + 0.4 * tn, abs=1e-12)
    assert tr["amplitude"] == pytest.approx(a, rel=1e-12)
    assert tr["peak_to_peak"] == pytest.approx(a * (1 + r), rel=1e-12)
    assert tr["negative_duration"] == pytest.approx(tn, rel=1e-12)
    assert tr["total_duration"] == pytest.approx(tn, rel=1e-12)
    assert tr["negative_area"] == pytest.approx(a * tn * 0.125 / 0.216, rel=1e-12)


def test_empty_response_has_nan_truth():
    units = UnitPotentials(*(np.zeros(0) for _ in range(6)))
    resp = build_response(np.zeros(0), units)
    assert resp.empty
    assert all(np.isnan(v) for v in waveform_truth(resp).values())
    assert np.all(resp(np.linspace(0, 0.01, 11)) == 0.0)


@pytest.mark.parametrize("kind", ["motor", "sensory", "fwave"])
def test_noiseless_response_is_exactly_flat_before_onset(kind):
    traces, truth = sim.response_set(kind, 12, seed=11, pretrigger=2e-3, **QUIET)
    for i in range(traces.sizes["trace"]):
        t = time_axis(traces, i)
        x = trace_values(traces, i)
        onset = float(truth["onset_latency"][i])
        before = t < onset - 1e-12
        assert np.all(x[before] == 0.0), "the noiseless response must be exactly 0 before its onset"
        k = int(np.flatnonzero(t > onset + 1e-12)[0])
        assert t[k] - onset <= 1.0 / float(traces["sampling_rate"][i])
        assert x[k] != 0.0, "the response must depart right after its onset"
        assert abs(x[k + 1]) > abs(x[k]) > 0.0, "and keep growing"
        if not bool(truth["initial_positivity"][i]):
            assert x[k] < 0.0, "a CMAP/SNAP without initial positivity departs negatively"


@pytest.mark.parametrize("kind", ["motor", "sensory"])
def test_truth_equals_finely_sampled_noiseless_waveform(kind):
    fs = 1.0e6  # 1 us grid
    traces, truth = sim.response_set(kind, 6, seed=5, sampling_rate=fs, **QUIET)
    dt = 1.0 / fs
    for i in range(traces.sizes["trace"]):
        t = time_axis(traces, i)
        x = trace_values(traces, i)
        amp = float(truth["amplitude"][i])
        onset = float(truth["onset_latency"][i])
        # a sample can never be deeper than the exact minimum, and 1 us sampling is close
        assert -x.min() <= amp * (1 + 1e-12)
        assert -x.min() == pytest.approx(amp, rel=1e-4)
        # the sample nearest the exact peak time is (to sampling accuracy) that minimum; the
        # argmin itself may sit on a second, nearly equal peak of a double-peaked response
        k = int(np.argmin(np.abs(t - float(truth["peak_latency"][i]))))
        assert -x[k] == pytest.approx(amp, rel=1e-4)
        # negative duration: first sample back at or above zero after the peak
        j = k + int(np.argmax(x[k:] >= 0.0))
        assert t[j] - onset == pytest.approx(float(truth["negative_duration"][i]), abs=1.5 * dt)
        # total duration: end of the last negative lobe deeper than 10 % of the amplitude
        neg = x < 0
        edges = np.flatnonzero(np.diff(neg.astype(int)))
        starts = [e + 1 for e in edges if not neg[e]]
        ends = [e for e in edges if neg[e]]
        lobes = [
            (s, e) for s, e in zip(starts, ends, strict=True) if -x[s : e + 1].min() >= 0.1 * amp
        ]
        end_last = t[lobes[-1][1]]
        total = float(truth["total_duration"][i])
        assert end_last - onset == pytest.approx(total, abs=1.5 * dt)
        # area: trapezoid over [onset, onset + total_duration]
        w = (t >= onset) & (t <= onset + total)
        area = np.trapezoid(np.maximum(0.0, -x[w]), t[w])
        assert area == pytest.approx(float(truth["negative_area"][i]), rel=1e-3)
        # peak to peak: largest value after the peak
        p2p = x[k:].max() - x[k]
        assert p2p == pytest.approx(float(truth["peak_to_peak"][i]), rel=1e-4)


def test_requested_amplitude_is_achieved():
    _, truth = sim.response_set("motor", 8, seed=2, amplitude=(2e-3, 3e-3), **QUIET)
    amp = truth["amplitude"].values
    assert np.all((amp > 2e-3 * (1 - 1e-9)) & (amp < 3e-3 * (1 + 1e-9)))
    _, truth = sim.response_set("sensory", 4, seed=2, amplitude=10e-6, **QUIET)
    np.testing.assert_allclose(truth["amplitude"].values, 10e-6, rtol=1e-9)


# ----------------------------------------------------------------------------------------
# Conduction: CV from exact onsets
# ----------------------------------------------------------------------------------------
def test_cv_from_exact_onsets_equals_cv_max():
    rng = np.random.default_rng(3)
    n, cv_max = 200, 57.0
    shapes = draw_unit_shapes(rng, n, t_neg=4e-3, t_pos_ratio=2.0, pos_ratio=0.4)
    td = 2.3e-3 + np.abs(rng.normal(0, 0.3e-3, n))
    td[0] = 2.3e-3
    nerve = MotorNerve(
        distances=np.array([0.07, 0.30]),
        cv=draw_velocities(rng, n, cv_max, 0.05),
        terminal_delay=td,
        shapes=shapes,
    )
    lat = nerve.latencies()
    onsets = [waveform_truth(build_response(lat[:, k], shapes))["onset_latency"] for k in range(2)]
    cv = 0.23 / (onsets[1] - onsets[0])
    assert cv == pytest.approx(cv_max, rel=1e-9)
    assert onsets[0] == pytest.approx(2.3e-3 + 0.07 / cv_max, rel=1e-12)


def test_exam_cv_from_trace_truth_equals_cv_max(exams):
    for traces, truth in exams["normal"]:
        tt = truth.traces
        for key in ("median", "peroneal", "tibial"):
            study = f"L_{key}_motor"
            sel = np.flatnonzero(traces["study"].values == study)
            d = traces["distance"].values[sel]
            on = tt["onset_latency"].values[sel]
            cv = (d[1] - d[0]) / (on[1] - on[0])
            cv_max = truth.studies.set_index("study").loc[study, "cv_max"]
            assert cv == pytest.approx(cv_max, rel=1e-9)
        # ulnar: forearm at cv_max, across the elbow at 0.945 cv_max (segment factor, [S66])
        sel = np.flatnonzero(traces["study"].values == "L_ulnar_motor")
        d = traces["distance"].values[sel]
        on = tt["onset_latency"].values[sel]
        cv_max = truth.studies.set_index("study").loc["L_ulnar_motor", "cv_max"]
        assert (d[1] - d[0]) / (on[1] - on[0]) == pytest.approx(cv_max, rel=1e-9)
        assert (d[2] - d[1]) / (on[2] - on[1]) == pytest.approx(0.945 * cv_max, rel=1e-9)


# ----------------------------------------------------------------------------------------
# Determinism
# ----------------------------------------------------------------------------------------
def test_response_set_is_deterministic():
    a, ta = sim.response_set("motor", 5, seed=42, pretrigger=3e-3, mains=5e-6, drift=1e-3)
    b, tb = sim.response_set("motor", 5, seed=42, pretrigger=3e-3, mains=5e-6, drift=1e-3)
    c, _ = sim.response_set("motor", 5, seed=43, pretrigger=3e-3, mains=5e-6, drift=1e-3)
    assert np.array_equal(a["signal"].values, b["signal"].values, equal_nan=True)
    for name in ta.data_vars:
        floats = ta[name].dtype.kind == "f"  # noise_family and shape are strings
        assert np.array_equal(ta[name].values, tb[name].values, equal_nan=floats), name
    assert not np.array_equal(a["signal"].values, c["signal"].values, equal_nan=True)


def test_exam_is_deterministic():
    a, ga = sim.exam("cidp_like", seed=7)
    b, gb = sim.exam("cidp_like", seed=7)
    c, _ = sim.exam("cidp_like", seed=8)
    assert np.array_equal(a["signal"].values, b["signal"].values, equal_nan=True)
    pd.testing.assert_frame_equal(ga.studies, gb.studies)
    pd.testing.assert_frame_equal(ga.segments, gb.segments)
    assert a["signal"].shape != c["signal"].shape or not np.array_equal(
        a["signal"].values, c["signal"].values, equal_nan=True
    )


# ----------------------------------------------------------------------------------------
# Disturbances
# ----------------------------------------------------------------------------------------
def test_noise_has_requested_rms():
    traces, truth = sim.response_set("noise", 40, seed=1, noise_rms=10e-6, artefact=False)
    x = traces["signal"].values
    assert not truth["has_response"].values.any()
    assert np.isnan(truth["onset_latency"].values).all()
    assert np.nanstd(x) == pytest.approx(10e-6, rel=0.05)
    assert abs(np.nanmean(x)) < 10e-6 * 0.05
    traces, truth = sim.response_set("noise", 40, seed=2, noise_rms=(2e-6, 20e-6), artefact=False)
    requested = truth["noise_rms"].values
    assert np.all((requested >= 2e-6) & (requested <= 20e-6))
    got = np.nanstd(traces["signal"].values, axis=1)
    np.testing.assert_allclose(got, requested, rtol=0.2)


def test_artefact_starts_at_stimulus_and_decays():
    traces, truth = sim.response_set(
        "noise", 10, seed=4, noise_rms=0.0, artefact=5e-3, pretrigger=2e-3, offset=0.0
    )
    for i in range(10):
        t = time_axis(traces, i)
        x = trace_values(traces, i)
        a = float(truth["artefact_amplitude"][i])
        tau = float(truth["artefact_tau"][i])
        assert abs(a) == pytest.approx(5e-3)
        assert np.all(x[t < -1e-12] == 0.0)
        k0 = int(np.argmin(np.abs(t)))
        assert x[k0] == pytest.approx(a, rel=1e-12)
        assert np.argmax(np.abs(x)) == k0
        tail = x[t > 2e-3]
        assert np.abs(tail).max() < 1e-2 * abs(a)
        # biphasic: an opposite-polarity lobe follows the spike
        assert np.any(np.sign(x[(t > tau) & (t < 6 * tau)]) == -np.sign(a))


def test_clipping_limits_the_signal():
    traces, truth = sim.response_set("motor", 6, seed=9, amplitude=10e-3, clip=2e-3)
    x = traces["signal"].values
    assert np.nanmax(np.abs(x)) <= 2e-3
    assert truth["saturated"].values.all()
    assert np.any(x == -2e-3)


def test_pretrigger_baseline_is_flat_before_stimulus():
    traces, truth = sim.response_set(
        "motor", 5, seed=6, pretrigger=3e-3, noise_rms=0.0, offset=1e-4, drift=0.0, artefact=True
    )
    assert np.allclose(traces["t_start"].values, -3e-3)
    for i in range(5):
        t = time_axis(traces, i)
        x = trace_values(traces, i)
        assert np.all(x[t < -1e-12] == 1e-4)
    no_pre, _ = sim.response_set("motor", 2, seed=6)
    assert np.all(no_pre["t_start"].values == 0.0)


def test_mains_and_drift_follow_their_parameters():
    traces, truth = sim.response_set(
        "noise", 4, seed=8, noise_rms=0.0, artefact=False, mains=20e-6, drift=5e-3, offset=3e-6
    )
    for i in range(4):
        t = time_axis(traces, i)
        x = trace_values(traces, i)
        f = float(truth["mains_frequency"][i])
        ph = float(truth["mains_phase"][i])
        assert f in (50.0, 60.0)
        expected = 20e-6 * np.sin(2 * np.pi * f * t + ph) + 3e-6 + float(truth["drift"][i]) * t
        np.testing.assert_allclose(x, expected, atol=1e-15)


def test_float32_output():
    traces, _ = sim.response_set("sensory", 3, seed=1, dtype="float32")
    assert traces["signal"].dtype == np.float32
    validate_trace_set(traces)


# ----------------------------------------------------------------------------------------
# Trace-set contract
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["motor", "sensory", "fwave", "noise"])
def test_response_set_outputs_are_valid(kind):
    traces, truth = sim.response_set(kind, 4, seed=0, pretrigger=2e-3)
    validate_trace_set(traces)
    assert list(truth["trace"].values) == list(traces["trace"].values)
    assert truth["onset_latency"].attrs["units"] == "s"
    assert truth["amplitude"].attrs["units"] == "V"
    assert truth["negative_area"].attrs["units"] == "V s"
    assert np.isnan(traces["highpass"].values).all() and np.isnan(traces["lowpass"].values).all()


def test_exam_and_cohort_outputs_are_valid(exams):
    for runs in exams.values():
        for traces, truth in runs:
            validate_trace_set(traces)
            assert list(truth.traces["trace"].values) == list(traces["trace"].values)
            assert set(traces["modality"].values) == {"motor", "sensory", "fwave"}
            assert (traces["stim_duration"].values == 2e-4).all()
            assert np.all((traces["age"] >= 40) & (traces["age"] <= 80))
            assert np.all((traces["height"] >= 155) & (traces["height"] <= 190))
            assert np.all((traces["temperature"] >= 32) & (traces["temperature"] <= 34))
            motor = traces["modality"].values != "sensory"
            assert np.all(
                (traces["stim_intensity"].values[motor] >= 0.02)
                & (traces["stim_intensity"].values[motor] <= 0.05)
            )
    traces, truth = sim.cohort({"normal": 1, "axonal": 1}, seed=3, dtype="float32")
    validate_trace_set(traces)
    assert traces["signal"].dtype == np.float32
    assert list(truth.exams["pattern"]) == ["normal", "axonal"]
    assert list(truth.exams["subject_id"]) == ["SIM0001", "SIM0002"]
    assert list(truth.traces["trace"].values) == list(traces["trace"].values)
    # an exam does not change when exams are added after it
    alone, _ = sim.cohort(["normal"], seed=3, dtype="float32")
    first = traces.isel(trace=np.flatnonzero(traces["exam_id"].values == "EX0001"))
    width = alone.sizes["sample"]
    assert np.array_equal(first["signal"].values[:, :width], alone["signal"].values, equal_nan=True)


# ----------------------------------------------------------------------------------------
# F waves
# ----------------------------------------------------------------------------------------
def test_fwave_series_truth(exams):
    for traces, truth in exams["normal"] + exams["cidp_like"]:
        studies = truth.studies.set_index("study")
        for nerve in ("ulnar", "tibial"):
            study = f"L_{nerve}_fwave"
            sel = np.flatnonzero(traces["study"].values == study)
            n = int(studies.loc[study, "f_n_stimuli"])
            assert len(sel) == n and 10 <= n <= 20
            f = truth.traces["f_latency"].values[sel]
            present = np.isfinite(f)
            assert studies.loc[study, "f_persistence_pct"] == pytest.approx(100 * present.mean())
            assert studies.loc[study, "f_min"] == pytest.approx(f[present].min())
            assert studies.loc[study, "f_max"] - studies.loc[study, "f_min"] == pytest.approx(
                studies.loc[study, "f_chronodispersion"]
            )
            # every trace carries the distal M wave of the motor study
            m = np.flatnonzero(
                (traces["study"].values == f"L_{nerve}_motor") & (traces["record"].values == 0)
            )[0]
            for var in ("onset_latency", "amplitude", "total_duration"):
                assert np.all(truth.traces[var].values[sel] == truth.traces[var].values[m])
            tt = truth.traces
            m_end = tt["onset_latency"].values[m] + tt["total_duration"].values[m]
            assert np.all(f[present] > m_end)
            # the sweep holds every F wave
            t_end = (
                traces["t_start"].values[sel]
                + traces["n_samples"].values[sel] / traces["sampling_rate"].values[sel]
            )
            assert np.all(f[present] < t_end[present])


def test_fwave_response_set_persistence_and_latency():
    traces, truth = sim.response_set("fwave", 40, seed=12, **QUIET)
    f = truth["f_latency"].values
    present = np.isfinite(f)
    assert 0.6 < present.mean() < 0.95  # persistence 0.8
    end_m = truth["onset_latency"].values + truth["total_duration"].values
    assert np.all(f[present] > end_m[present])
    assert np.all(
        (truth["f_amplitude"].values[present] >= 100e-6)
        & (truth["f_amplitude"].values[present] <= 500e-6)
    )


# ----------------------------------------------------------------------------------------
# Patterns
# ----------------------------------------------------------------------------------------
MOTOR_KEYS = ("median_motor", "ulnar_motor", "peroneal_motor", "tibial_motor")


def _motor_rows(truth):
    s = truth.studies
    return s[s.modality == "motor"].assign(key=lambda d: d["nerve"] + "_motor").set_index("key")


def _sensory_rows(truth):
    s = truth.studies
    return s[s.modality == "sensory"].assign(key=lambda d: d["nerve"] + "_sensory").set_index("key")


def _assert_no_cb_td(key, row):
    """No conduction block or temporal dispersion by EFNS/PNS / EAN/PNS thresholds (1.2)."""
    if key == "tibial_motor":  # tibial: excluded from CB, TD needs >= 100 %
        assert row.max_td_pct < 100
    else:
        assert row.max_cb_pct < 30 and row.max_area_drop_pct < 30
        assert row.max_td_pct <= 30


def test_normal_pattern_within_limits(exams):
    for _, truth in exams["normal"]:
        m = _motor_rows(truth)
        for key in MOTOR_KEYS:
            r = m.loc[key]
            assert r.dml <= _lim(key, "dml_uln")
            assert r.cv >= _lim(key, "cv_lln") and r.min_cv >= _lim(key, "cv_lln")
            assert r.distal_amplitude >= _lim(key, "amplitude_lln")
            assert r.distal_duration < _lim(key, "distal_duration_uln")
            _assert_no_cb_td(key, r)
        s = _sensory_rows(truth)
        for key, r in s.iterrows():
            assert r.has_response
            assert r.snap_amplitude >= _lim(key, "amplitude_lln")
            assert r.snap_peak <= _lim(key, "peak_latency_uln")
            assert r.scv >= _lim(key, "cv_lln")
        f = truth.studies.set_index("study")
        assert f.loc["L_ulnar_fwave", "f_min"] <= _lim("ulnar_motor", "f_min_uln")
        assert f.loc["L_tibial_fwave", "f_min"] <= _lim("tibial_motor", "f_min_uln")


def test_distal_demyelinating_pattern(exams):
    for _, truth in exams["distal_demyelinating"]:
        m = _motor_rows(truth)
        assert m.loc["median_motor", "tli"] < 0.25
        assert m.loc["ulnar_motor", "tli"] < 0.25
        n_long = sum(m.loc[k, "dml"] >= 1.5 * _lim(k, "dml_uln") for k in MOTOR_KEYS)
        assert n_long >= 2
        for key in MOTOR_KEYS:
            assert m.loc[key, "cv"] > 0.7 * _lim(key, "cv_lln")
            assert m.loc[key, "min_cv"] > 0.7 * _lim(key, "cv_lln")
        for key in MOTOR_KEYS:
            _assert_no_cb_td(key, m.loc[key])
        sural = _sensory_rows(truth).loc["sural_sensory"]
        assert (not sural.has_response) or sural.snap_amplitude <= 4e-6 * (1 + 1e-9)


def test_cidp_like_pattern(exams):
    for _, truth in exams["cidp_like"]:
        m = _motor_rows(truth)
        slow = [k for k in MOTOR_KEYS if m.loc[k, "cv"] < 0.7 * _lim(k, "cv_lln")]
        assert len(slow) >= 2
        for key in ("median_motor", "ulnar_motor"):
            assert m.loc[key, "tli"] >= 0.34  # normal TLI: slowing is not distally accentuated
        cb_or_td = 0
        for key in MOTOR_KEYS:
            cb = key != "tibial_motor" and m.loc[key, "max_cb_pct"] >= 30
            td_limit = 100 if key == "tibial_motor" else 30
            cb_or_td += bool(cb or m.loc[key, "max_td_pct"] > td_limit)
        assert cb_or_td >= 2
        f = truth.studies.set_index("study")
        assert f.loc["L_ulnar_fwave", "f_min"] > _lim("ulnar_motor", "f_min_uln")
        assert f.loc["L_tibial_fwave", "f_min"] > _lim("tibial_motor", "f_min_uln")


def test_axonal_pattern(exams):
    for _, truth in exams["axonal"]:
        m = _motor_rows(truth)
        for key in MOTOR_KEYS:
            r = m.loc[key]
            assert r.distal_amplitude < 0.5 * _lim(key, "amplitude_lln") * (1 + 1e-9)
            assert r.distal_amplitude > 0.1 * _lim(key, "amplitude_lln") * (1 - 1e-9)
            assert r.dml <= _lim(key, "dml_uln")
            assert r.cv > 0.8 * _lim(key, "cv_lln")
            _assert_no_cb_td(key, r)
        for key, r in _sensory_rows(truth).iterrows():
            assert (not r.has_response) or r.snap_amplitude < _lim(key, "amplitude_lln")


# ----------------------------------------------------------------------------------------
# Parameter file
# ----------------------------------------------------------------------------------------
def test_patterns_file_tags_every_number():
    from ncsproc.simulate.patterns import STATUSES, iter_params

    cfg = sim.load_patterns()
    params = list(iter_params(cfg))
    assert len(params) > 100
    for path, entry in params:
        assert entry["status"] in STATUSES, path
        assert entry["source"].strip(), path
        if entry["status"] == "P":
            assert entry.get("note", "").strip(), path
    # the normal limits carry the reference's tags (Preston & Shapiro values are [U])
    assert cfg["limits"]["median_motor"]["dml_uln"]["status"] == "U"
    assert cfg["limits"]["median_motor"]["dml_uln"]["value"] == 4.4e-3
