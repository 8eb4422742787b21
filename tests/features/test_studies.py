"""Study features: worked examples computed by hand, repeats, no-response, F waves, ordering."""

from __future__ import annotations

import numpy as np
import pytest

from ncsproc.features import study_features, tables


def _edf_example(measures_of, **extra):
    """The EDF+ specification's motor conduction example (Kemp and Olivan 2003, section 3.7):
    left median nerve, APB, stimuli at the wrist 6.5 cm and the elbow 28.5 cm from the recording
    site, onsets 3.8 ms and 7.8 ms, conduction velocity 55.0 m/s."""
    base = dict(
        exam_id="MNCV",
        subject_id="S",
        study="MNC_L_Median_Nerve",
        nerve="median",
        side="L",
        modality="motor",
        record_site="APB",
        source_file="MNCV.edf",
        status="ok",
    )
    rows = [
        dict(
            base,
            stim_site="wrist",
            distance=0.065,
            onset_latency=3.8e-3,
            amplitude=8e-3,
            total_duration=6e-3,
            negative_area=20e-6,
            record=0,
            **extra,
        ),
        dict(
            base,
            stim_site="elbow",
            distance=0.285,
            onset_latency=7.8e-3,
            amplitude=7e-3,
            total_duration=6.6e-3,
            negative_area=17e-6,
            record=1,
            **extra,
        ),
    ]
    return measures_of(rows)


def test_edf_motor_conduction_example(measures_of):
    f = study_features(_edf_example(measures_of))
    seg = f.segments.iloc[0]
    assert seg["distal_site"] == "wrist" and seg["proximal_site"] == "elbow"
    assert seg["distance_mm"] == pytest.approx(220.0)
    assert seg["cv_m_s"] == pytest.approx(55.0, rel=1e-12)  # 220 mm / 4.0 ms
    row = f.nerves.iloc[0]
    assert row["dml_ms"] == pytest.approx(3.8)
    assert row["cv_m_s"] == pytest.approx(55.0, rel=1e-12)
    # TLI = 65 mm / (55 m/s x 3.8 ms) = 65 / 209 by hand
    assert row["tli"] == pytest.approx(65.0 / 209.0, rel=1e-12)
    assert row["tli"] == pytest.approx(0.311004784688995, rel=1e-12)
    # residual latency = 3.8 ms - 65 mm / 55 m/s = 3.8 - 1.181818... ms
    assert row["residual_latency_ms"] == pytest.approx(3.8 - 65.0 / 55.0, rel=1e-12)
    assert row["residual_latency_ms"] == pytest.approx(row["dml_ms"] * (1 - row["tli"]), rel=1e-12)
    # amplitude drop 100 (1 - 7/8) = 12.5 %, area drop 15 %, duration increase 10 %
    assert seg["amp_drop_pct"] == pytest.approx(12.5)
    assert seg["area_drop_pct"] == pytest.approx(15.0)
    assert seg["duration_increase_pct"] == pytest.approx(10.0)
    assert row["max_cb_pct"] == pytest.approx(12.5)
    assert row["max_td_pct"] == pytest.approx(10.0)
    assert row["distal_amp_uv"] == pytest.approx(8000.0)
    assert row["distal_duration_ms"] == pytest.approx(6.0)


def test_edf_example_through_tables_percent_of_limits(measures_of):
    out = tables(_edf_example(measures_of))
    row = out["nerves"].iloc[0]
    assert row["dml_pct_uln"] == pytest.approx(100 * 3.8 / 4.4)
    assert row["cv_pct_lln"] == pytest.approx(100 * 55.0 / 49.0)
    assert row["amp_pct_lln"] == pytest.approx(100 * 8.0 / 4.0)
    assert row["limits_version"] == "ncs-domain-4@1.0.0"
    assert "dml=U" in row["limits_status"]


def test_three_sites_segments_adjacent_and_cb_relative_to_distal(motor, measures_of):
    rows = motor(
        "E",
        "ulnar",
        dml_ms=3.0,
        cv=[60.0, 50.0],
        amp_mv=[10.0, 7.0, 4.0],
        n_sites=3,
        segment_mm=[220.0, 100.0],
        duration_ms=[5.0, 6.0, 7.5],
        area_mvms=[20.0, 15.0, 8.0],
    )
    f = study_features(measures_of(rows))
    segs = f.segments
    assert list(segs["distal_site"]) == ["wrist", "below elbow"]
    assert list(segs["cv_m_s"]) == pytest.approx([60.0, 50.0], rel=1e-12)
    assert list(segs["amp_drop_pct"]) == pytest.approx([30.0, 100 * (1 - 4 / 7)])
    assert list(segs["area_drop_pct"]) == pytest.approx([25.0, 100 * (1 - 8 / 15)])
    assert list(segs["duration_increase_pct"]) == pytest.approx([20.0, 25.0])
    row = f.nerves.iloc[0]
    assert row["cv_m_s"] == pytest.approx(60.0)  # segment next to the distal site
    assert row["min_cv_m_s"] == pytest.approx(50.0)
    assert row["max_cb_pct"] == pytest.approx(60.0)  # above elbow vs wrist, not adjacent 42.9 %
    assert row["max_area_drop_pct"] == pytest.approx(60.0)
    assert row["max_td_pct"] == pytest.approx(50.0)


def test_sites_ordered_by_distance_not_by_input_order(motor, measures_of):
    rows = motor("E", "median", dml_ms=3.5, cv=55.0, amp_mv=8.0)
    rows = rows[::-1]  # elbow first
    rows[0]["stim_site"], rows[1]["stim_site"] = "site b", "site a"  # names carry no order
    f = study_features(measures_of(rows))
    assert f.nerves.iloc[0]["distal_site"] == "site a"
    assert f.nerves.iloc[0]["dml_ms"] == pytest.approx(3.5)
    assert f.nerves.iloc[0]["site_order"] == "distance"


def test_unknown_distance_falls_back_to_anatomical_order(motor, measures_of):
    rows = motor("E", "median", dml_ms=3.5, cv=55.0, amp_mv=8.0)[::-1]
    for r in rows:
        r["distance"] = np.nan
    f = study_features(measures_of(rows))
    row = f.nerves.iloc[0]
    assert row["distal_site"] == "wrist" and row["site_order"] == "anatomical"
    assert row["dml_ms"] == pytest.approx(3.5)
    assert np.isnan(row["cv_m_s"]) and np.isnan(row["tli"])  # no distance, no velocity
    assert f.segments.iloc[0]["segment_status"] == "distance_unknown"


def test_repeats_pick_largest_amplitude_ok_trace(motor, measures_of):
    rows = motor("E", "median", dml_ms=3.5, cv=55.0, amp_mv=8.0)
    wrist = rows[0]
    rows.append(
        dict(wrist, record=7, amplitude=9e-3, onset_latency=3.7e-3, trace="r7")
    )  # tie, later
    rows.append(dict(wrist, record=6, amplitude=12e-3, status="saturated", trace="r6"))  # not ok
    rows.append(dict(wrist, record=5, amplitude=9e-3, onset_latency=3.6e-3, trace="r5"))  # chosen
    f = study_features(measures_of(rows))
    assert f.nerves.iloc[0]["dml_ms"] == pytest.approx(3.6)
    site = f.sites[(f.sites["stim_site"] == "wrist")].iloc[0]
    assert site["n_repeats"] == 4 and site["trace"] == "r5"


def test_no_response_study_is_not_evaluable_not_zero(motor, sensory, measures_of):
    rows = motor("E", "peroneal", dml_ms=5.0, cv=45.0, amp_mv=3.0, status="no_response")
    rows += sensory("E", "sural", status="no_response")
    out = tables(measures_of(rows))
    n = out["nerves"].set_index("study")
    per = n.loc["L_peroneal_motor"]
    assert per["study_status"] == "no_response"
    assert not per["evaluable"] and per["inexcitable"]
    for col in ("dml_ms", "distal_amp_uv", "cv_m_s", "tli", "amp_pct_lln", "dml_pct_uln"):
        assert np.isnan(per[col]), col
    sur = n.loc["L_sural_sensory"]
    assert sur["study_status"] == "no_response" and np.isnan(sur["snap_amp_uv"])
    assert np.isnan(sur["amp_pct_lln"])
    # motor criteria: nothing is "met" on an inexcitable nerve, the reason is recorded; the
    # sensory criteria count an absent SNAP as abnormal (ncs-domain.md 2.4)
    crit = out["criteria"]
    sensory = crit["criteria_set"].str.endswith("_sensory")
    assert not crit.loc[~sensory, "met"].any()
    met = crit[sensory & crit["met"]]
    assert set(met["criterion"]) <= {"snap_absent", "sparing_absent"}
    assert set(met["study"]) == {"L_sural_sensory"} or met.empty
    assert (crit["state"] == "not_evaluable").sum() > 0
    assert "no_response" in per["efns_pns_2010_not_evaluated"]


def test_proximal_no_response_keeps_distal_values(motor, measures_of):
    rows = motor("E", "tibial", dml_ms=5.0, cv=45.0, amp_mv=6.0, status=["ok", "no_response"])
    f = study_features(measures_of(rows))
    row = f.nerves.iloc[0]
    assert row["evaluable"] and row["dml_ms"] == pytest.approx(5.0)
    assert np.isnan(row["cv_m_s"]) and np.isnan(row["max_cb_pct"])
    assert f.segments.iloc[0]["segment_status"] == "proximal_no_response"


def test_fwave_statistics_and_link_to_motor_study(motor, measures_of):
    rows = motor(
        "E", "ulnar", dml_ms=3.0, cv=60.0, amp_mv=10.0, f_ms=[28.0, 30.0, 29.0, 27.5], f_stimuli=10
    )
    f = study_features(measures_of(rows))
    n = f.nerves.set_index("study")
    for study in ("L_ulnar_fwave", "L_ulnar_motor"):
        r = n.loc[study]
        assert r["f_min_ms"] == pytest.approx(27.5)
        assert r["f_max_ms"] == pytest.approx(30.0)
        assert r["f_mean_ms"] == pytest.approx((28 + 30 + 29 + 27.5) / 4)
        assert r["f_chronodispersion_ms"] == pytest.approx(2.5)
        assert r["f_persistence_pct"] == pytest.approx(40.0)
        assert r["f_absent"] is False
        assert r["f_study"] == "L_ulnar_fwave"
    assert n.loc["L_ulnar_fwave", "modality"] == "fwave"


def test_absent_f_waves_and_unmeasurable_series(motor, measures_of):
    rows = motor("E", "tibial", dml_ms=4.5, cv=45.0, amp_mv=8.0, f_ms=[], f_stimuli=10)
    n = study_features(measures_of(rows)).nerves.set_index("study")
    assert n.loc["L_tibial_motor", "f_absent"] is True
    assert n.loc["L_tibial_motor", "f_persistence_pct"] == 0.0
    assert np.isnan(n.loc["L_tibial_motor", "f_min_ms"])
    # every F trace without a response (no M wave): not evaluable, not "absent"
    for r in rows:
        if r["modality"] == "fwave":
            r["status"] = "no_response"
    n = study_features(measures_of(rows)).nerves.set_index("study")
    assert not isinstance(n.loc["L_tibial_motor", "f_absent"], bool)
    assert n.loc["L_tibial_fwave", "f_status"] == "no_response"
    assert not n.loc["L_tibial_fwave", "evaluable"]


def test_sensory_velocity_from_onset(sensory, measures_of):
    n = study_features(
        measures_of(sensory("E", "median", onset_ms=2.6, amp_uv=30.0, distance_mm=130.0))
    ).nerves
    r = n.iloc[0]
    assert r["scv_m_s"] == pytest.approx(50.0)  # 130 mm / 2.6 ms
    assert r["snap_onset_ms"] == pytest.approx(2.6) and r["snap_peak_ms"] == pytest.approx(3.2)
    assert r["snap_amp_uv"] == pytest.approx(30.0)
    assert np.isnan(r["dml_ms"])


def test_nonpositive_latency_difference_gives_no_velocity(motor, measures_of):
    rows = motor("E", "median", dml_ms=3.5, cv=55.0, amp_mv=8.0)
    rows[1]["onset_latency"] = rows[0]["onset_latency"]
    f = study_features(measures_of(rows))
    assert np.isnan(f.nerves.iloc[0]["cv_m_s"])
    assert f.segments.iloc[0]["segment_status"] == "nonpositive_latency_difference"


def test_tables_columns_follow_the_contract(motor, sensory, measures_of):
    rows = motor("E", "median", dml_ms=3.5, cv=55.0, amp_mv=8.0, f_ms=[27.0])
    rows += sensory("E", "sural")
    out = tables(measures_of(rows))
    assert list(out["segments"].columns[:11]) == [
        "exam_id",
        "study",
        "nerve",
        "side",
        "distal_site",
        "proximal_site",
        "distance_mm",
        "cv_m_s",
        "amp_drop_pct",
        "area_drop_pct",
        "duration_increase_pct",
    ]
    assert list(out["nerves"].columns[:28]) == [
        "exam_id",
        "subject_id",
        "study",
        "nerve",
        "side",
        "modality",
        "dml_ms",
        "distal_amp_uv",
        "distal_duration_ms",
        "cv_m_s",
        "tli",
        "residual_latency_ms",
        "min_cv_m_s",
        "max_cb_pct",
        "max_td_pct",
        "snap_onset_ms",
        "snap_peak_ms",
        "snap_amp_uv",
        "scv_m_s",
        "f_min_ms",
        "f_mean_ms",
        "f_max_ms",
        "f_persistence_pct",
        "f_chronodispersion_ms",
        "dml_pct_uln",
        "cv_pct_lln",
        "amp_pct_lln",
        "f_min_pct_uln",
    ]
    assert list(out["exams"].columns[:8]) == [
        "exam_id",
        "subject_id",
        "pattern",
        "rules_version",
        "n_motor_studies",
        "efns_pns_2010",
        "ean_pns_2021",
        "pattern_evidence",
    ]
    assert list(out["nerves"]["study"]) == sorted(out["nerves"]["study"])


def test_measures_from_truth_maps_has_response():
    from ncsproc.features import measures_from_truth
    from ncsproc.simulate import response_set

    traces, truth = response_set("noise", 2, seed=3)
    m = measures_from_truth(traces, truth)
    assert list(m["status"].values) == ["no_response", "no_response"]
    traces, truth = response_set("motor", 2, seed=3)
    m = measures_from_truth(traces, truth)
    assert list(m["status"].values) == ["ok", "ok"]
    np.testing.assert_array_equal(m["onset_latency"].values, truth["onset_latency"].values)
    assert list(m["nerve"].values) == ["median", "median"]
