"""Validation on simulated cohorts with exact ground truth (ncsproc.simulate).

* Features computed from the exact per-trace truth reproduce the simulator's study and segment
  truth to float precision (an independent implementation of the same definitions).
* With the real :func:`ncsproc.measure` on the noisy traces (5-10 uV motor noise, the simulator
  default): the pattern is recovered in >= 95 % of 40 exams (10 per pattern), never
  ``distal_demyelinating`` for a normal or axonal exam; over five cohorts (800 motor studies)
  DML and CV are within 2 % of the measurable-onset truth for >= 95 % (TLI: strict xfail).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ncsproc
from ncsproc.features import measures_from_truth, tables
from ncsproc.simulate import cohort

COHORT = {"normal": 10, "distal_demyelinating": 10, "cidp_like": 10, "axonal": 10}
SEED = 20240501


@pytest.fixture(scope="module")
def simulated():
    traces, truth = cohort(COHORT, seed=SEED)
    return traces, truth


@pytest.fixture(scope="module")
def from_truth(simulated):
    traces, truth = simulated
    return tables(measures_from_truth(traces, truth.traces))


@pytest.fixture(scope="module")
def from_measure(simulated):
    traces, _ = simulated
    return tables(ncsproc.measure(traces))


# study truth column (SI) -> (nerves column, factor to the table's unit)
STUDY_MAP = {
    "dml": ("dml_ms", 1e3),
    "distal_amplitude": ("distal_amp_uv", 1e6),
    "distal_duration": ("distal_duration_ms", 1e3),
    "distal_area": ("distal_area_uvms", 1e9),
    "cv": ("cv_m_s", 1.0),
    "min_cv": ("min_cv_m_s", 1.0),
    "tli": ("tli", 1.0),
    "residual_latency": ("residual_latency_ms", 1e3),
    "max_cb_pct": ("max_cb_pct", 1.0),
    "max_area_drop_pct": ("max_area_drop_pct", 1.0),
    "max_td_pct": ("max_td_pct", 1.0),
    "snap_onset": ("snap_onset_ms", 1e3),
    "snap_peak": ("snap_peak_ms", 1e3),
    "snap_amplitude": ("snap_amp_uv", 1e6),
    "scv": ("scv_m_s", 1.0),
    "f_min": ("f_min_ms", 1e3),
    "f_mean": ("f_mean_ms", 1e3),
    "f_max": ("f_max_ms", 1e3),
    "f_chronodispersion": ("f_chronodispersion_ms", 1e3),
    "f_persistence_pct": ("f_persistence_pct", 1.0),
    "dml_pct_uln": ("dml_pct_uln", 1.0),
    "cv_pct_lln": ("cv_pct_lln", 1.0),
    "amp_pct_lln": ("amp_pct_lln", 1.0),
    "f_min_pct_uln": ("f_min_pct_uln", 1.0),
}


def test_features_of_exact_truth_reproduce_study_truth(simulated, from_truth):
    _, truth = simulated
    st = truth.studies.set_index(["exam_id", "study"]).sort_index()
    n = from_truth["nerves"].set_index(["exam_id", "study"]).sort_index()
    assert list(st.index) == list(n.index)
    checked = 0
    for col, (ours, f) in STUDY_MAP.items():
        expect = st[col].to_numpy(float) * f
        got = n[ours].to_numpy(float)
        if col == "amp_pct_lln":  # an absent SNAP is 0 % in the simulator, not evaluable here
            keep = st["has_response"].to_numpy(bool)
            expect, got = expect[keep], got[keep]
        fin = np.isfinite(expect)
        # wherever the truth has a value we have the same one, to float precision
        np.testing.assert_allclose(got[fin], expect[fin], rtol=1e-12, atol=1e-12, err_msg=col)
        checked += fin.sum()
    assert checked > 2000
    # no value where the truth has none (motor rows also carry their F-wave study's values)
    motor = st["modality"] == "motor"
    for col in ("dml", "cv", "tli", "max_cb_pct"):
        assert n.loc[~motor, STUDY_MAP[col][0]].isna().all()
    # absent SNAPs: not evaluable, never zero
    absent = (st["modality"] == "sensory") & ~st["has_response"].astype(bool)
    assert absent.sum() > 0
    assert (
        n.loc[absent, "snap_amp_uv"].isna().all()
        and (n.loc[absent, "study_status"] == "no_response").all()
    )


def test_segments_of_exact_truth_reproduce_segment_truth(simulated, from_truth):
    _, truth = simulated
    key = ["exam_id", "study", "distal_site", "proximal_site"]
    t = truth.segments.set_index(key).sort_index()
    s = from_truth["segments"].set_index(key).sort_index()
    assert list(t.index) == list(s.index)
    for col, ours, f in (
        ("distance", "distance_mm", 1e3),
        ("cv", "cv_m_s", 1.0),
        ("amp_drop_pct", "amp_drop_pct", 1.0),
        ("area_drop_pct", "area_drop_pct", 1.0),
        ("duration_increase_pct", "duration_increase_pct", 1.0),
    ):
        np.testing.assert_allclose(s[ours], t[col] * f, rtol=1e-12, atol=1e-12, err_msg=col)


def test_pattern_of_exact_truth(simulated, from_truth):
    _, truth = simulated
    ex = from_truth["exams"].set_index("exam_id")
    want = truth.exams.set_index("exam_id")["pattern"]
    assert (ex.loc[want.index, "pattern"] == want).all()


def _confusion(exams: pd.DataFrame, truth) -> pd.DataFrame:
    got = exams.set_index("exam_id")["pattern"]
    want = truth.exams.set_index("exam_id")["pattern"]
    return pd.crosstab(want.rename("truth"), got.loc[want.index].rename("found"))


def test_pattern_recovered_from_measured_traces(simulated, from_measure):
    _, truth = simulated
    ex = from_measure["exams"].set_index("exam_id")
    want = truth.exams.set_index("exam_id")["pattern"]
    got = ex.loc[want.index, "pattern"]
    recovered = (got == want).mean()
    assert recovered >= 0.95, _confusion(from_measure["exams"], truth)
    # never a distal demyelinating call on a normal or axonal exam
    assert not ((got == "distal_demyelinating") & want.isin(["normal", "axonal"])).any()
    # every pattern is represented
    assert set(got) >= {"normal", "distal_demyelinating", "cidp_like", "axonal"}


def _relative_errors(simulated, from_measure) -> pd.DataFrame:
    _, truth = simulated
    st = truth.studies[truth.studies["modality"] == "motor"].set_index(["exam_id", "study"])
    n = from_measure["nerves"].set_index(["exam_id", "study"]).loc[st.index]
    out = pd.DataFrame(index=st.index)
    out["pattern"] = st["pattern"]
    # issue 14: the truths of DML, CV and TLI come from the measurable onsets at each site
    # (the first 1 % departure of the noiseless response), not from the fastest fibre's start
    for col, ours, f in (
        ("dml_measurable", "dml_ms", 1e3),
        ("cv_measurable", "cv_m_s", 1.0),
        ("tli_measurable", "tli", 1.0),
    ):
        out[ours] = 100.0 * (n[ours].to_numpy(float) / (st[col].to_numpy(float) * f) - 1.0)
    return out


def test_measured_dml_within_2_percent(simulated, from_measure):
    """DMLs of this cohort within 2 % of the measurable-onset truth for >= 95 % (measured
    97.5 %; the misses are low-amplitude axonal CMAPs)."""
    err = _relative_errors(simulated, from_measure)
    assert err["dml_ms"].notna().all()
    assert (err["dml_ms"].abs() <= 2.0).mean() >= 0.95


OTHER_SEEDS = (7, 11, 99, 12345)
"""Cohort seeds that chose no parameter, for the picture beyond one cohort."""


@pytest.fixture(scope="module")
def five_cohorts(simulated, from_measure):
    """Relative errors of 800 motor studies (five 40-exam cohorts) and each cohort's pattern
    recovery."""
    errs = [_relative_errors(simulated, from_measure)]
    recovery = [(simulated[1], from_measure["exams"])]
    for seed in OTHER_SEEDS:
        traces, truth = cohort(COHORT, seed=seed)
        measured = tables(ncsproc.measure(traces))
        errs.append(_relative_errors((traces, truth), measured))
        recovery.append((truth, measured["exams"]))
    return pd.concat(errs), recovery


def test_measured_features_over_five_cohorts(five_cohorts):
    """Issue 14's target on 800 motor studies (five 40-exam cohorts, white noise <= 10 uV),
    against the truths from the measurable onsets: DML and CV within 2 % for >= 95 % of the
    studies (measured 2026-12-07 with measurement v2: DML 98.5 %, CV 96.0 %, TLI 93.6 %;
    median |error| 0.44, 0.44, 0.76 %; pattern recovered in 100 % of every cohort). TLI's
    miss is the xfail below."""
    err, recovery = five_cohorts
    assert len(err) == 800
    a = err[["dml_ms", "cv_m_s", "tli"]].abs()
    assert a.notna().all().all()
    within = (a <= 2.0).mean()
    assert within["dml_ms"] >= 0.95
    assert within["cv_m_s"] >= 0.95
    assert within["tli"] >= 0.88
    med = a.median()
    assert med["dml_ms"] <= 0.6 and med["cv_m_s"] <= 0.6 and med["tli"] <= 1.0
    # normal exams: the features a registry compares against limits are nearly all within 2 %
    normal = (a[err["pattern"] == "normal"] <= 2.0).mean()
    assert normal["dml_ms"] >= 0.95 and normal["cv_m_s"] >= 0.95 and normal["tli"] >= 0.90
    for truth, exams in recovery:
        got = exams.set_index("exam_id")["pattern"]
        want = truth.exams.set_index("exam_id")["pattern"]
        assert (got.loc[want.index] == want).mean() >= 0.95
        assert not (
            (got.loc[want.index] == "distal_demyelinating") & want.isin(["normal", "axonal"])
        ).any()


@pytest.mark.xfail(
    strict=True,
    reason="TLI = DML / (distance / CV) combines the errors of three onsets (two sites and the "
    "distal one twice); measured 93.6 % of 800 motor studies within 2 % (axonal 86.5 %, normal "
    "92 %: low-amplitude and dispersed CMAPs whose onsets carry 0.05-0.1 ms of noise), not the "
    "95 % of issue 14. DML and CV meet it (98.5 %, 96.0 %)",
)
def test_measured_tli_within_2_percent_for_95_percent(five_cohorts):
    err, _ = five_cohorts
    assert (err["tli"].abs() <= 2.0).mean() >= 0.95


def test_simulated_exam_order_independent(simulated):
    traces, _ = simulated
    one = traces.isel(trace=np.flatnonzero(np.isin(traces["exam_id"].values, ["EX0011", "EX0021"])))
    m = ncsproc.measure(one)
    ref = tables(m)
    perm = np.random.default_rng(7).permutation(m.sizes["trace"])
    out = tables(m.isel(trace=perm))
    for name in ("segments", "nerves", "exams"):
        pd.testing.assert_frame_equal(out[name], ref[name])
