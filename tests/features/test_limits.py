"""Normal limits: the default file, its tags, regression limits, a laboratory's own file."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest

from ncsproc.features import RuleError, apply_limits, load_limits, study_features, tables


def test_default_limits_every_row_tagged_and_44_values_unconfirmed():
    lim = load_limits()
    assert lim.info.id == "ncs-domain-4" and lim.info.version == "1.0.0"
    assert lim.info.status == "U"
    assert len(lim.rows) == 30
    for r in lim.rows:
        assert r.source and r.status in ("C", "S", "U", "P")
        if r.model is None:  # the fixed 4.4 table values
            assert r.status == "U", r
    # the dorsal sural regression (ncs-domain.md 4.2) is confirmed
    assert {r.status for r in lim.rows if r.nerve == "dorsal_sural"} == {"C"}
    # spot-check values against ncs-domain.md 4.4
    expect = {
        ("median", "dml"): 4.4,
        ("ulnar", "dml"): 3.3,
        ("peroneal", "cv"): 44.0,
        ("tibial", "f_min"): 56.0,
        ("sural", "snap_amp"): 6.0,
        ("ulnar", "distal_amp"): 6.0,
    }
    for (nerve, measure), value in expect.items():
        (row,) = [r for r in lim.rows if r.nerve == nerve and r.measure == measure]
        assert row.value == value


def test_dorsal_sural_regression_limit_by_hand():
    lim = load_limits()
    age, height = 40.0, 170.0
    amp, row, why = lim.lookup("dorsal_sural", "snap_amp", "lower", age=age, height=height)
    hand = math.exp(3.712515 - 0.0000956 * age**2 - 0.0115883 * height - 1.96 * 0.51137)
    assert why == "" and row.status == "C"
    assert amp == pytest.approx(hand, rel=1e-12)
    assert amp == pytest.approx(1.79, abs=0.01)
    cv, _, _ = lim.lookup("dorsal_sural", "scv", "lower", age=age, height=height)
    assert cv == pytest.approx(
        math.exp(4.354374 - 0.0021081 * age - 0.0023354 * height - 1.96 * 0.11161)
    )
    # older and taller: lower limits
    assert lim.lookup("dorsal_sural", "snap_amp", "lower", age=70.0, height=185.0)[0] < amp
    # unknown age: no limit, with the reason
    value, _, why = lim.lookup("dorsal_sural", "snap_amp", "lower", height=170.0)
    assert np.isnan(value) and "age" in why


def test_dorsal_sural_limit_in_the_nerves_table(sensory, measures_of):
    rows = sensory(
        "E", "dorsal_sural", onset_ms=2.5, amp_uv=3.0, distance_mm=100.0, age=40.0, height=170.0
    )
    n = apply_limits(study_features(measures_of(rows)).nerves)
    r = n.iloc[0]
    lln = math.exp(3.712515 - 0.0000956 * 1600 - 0.0115883 * 170 - 1.96 * 0.51137)
    assert r["amp_lln_uv"] == pytest.approx(lln)
    assert r["amp_pct_lln"] == pytest.approx(100 * 3.0 / lln)
    assert "snap_amp=C" in r["limits_status"]
    rows[0]["age"] = np.nan
    r = apply_limits(study_features(measures_of(rows)).nerves).iloc[0]
    assert np.isnan(r["amp_pct_lln"]) and "age" in r["limits_missing"]


def test_percent_of_limits_and_status_recorded(motor, measures_of):
    rows = motor("E", "median", dml_ms=6.6, cv=34.3, amp_mv=0.8, f_ms=[40.3])
    n = apply_limits(study_features(measures_of(rows)).nerves).set_index("study")
    r = n.loc["L_median_motor"]
    assert r["dml_pct_uln"] == pytest.approx(150.0)
    assert r["cv_pct_lln"] == pytest.approx(70.0)
    assert r["amp_pct_lln"] == pytest.approx(20.0)
    assert r["f_min_pct_uln"] == pytest.approx(130.0)
    assert r["dml_uln_ms"] == 4.4 and r["cv_lln_m_s"] == 49.0 and r["amp_lln_uv"] == 4000.0
    assert r["limits_status"] == "dml=U cv=U distal_amp=U f_min=U"
    assert n.loc["L_median_fwave", "f_min_pct_uln"] == pytest.approx(130.0)


def test_record_site_must_match(motor, measures_of):
    rows = motor("E", "peroneal", dml_ms=4.0, cv=45.0, amp_mv=3.0, record_site="TA")
    r = apply_limits(study_features(measures_of(rows)).nerves).iloc[0]
    assert np.isnan(r["dml_pct_uln"]) and "recorded at TA" in r["limits_missing"]


def _write(tmp_path, text, name="lab.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


LAB = """
[meta]
id = "lab-x"
version = "2024.2"
status = "C"

[[limit]]
nerve = "median"
measure = "dml"
direction = "upper"
unit = "s"
value = 0.0042
source = "lab-x 2024 controls"
status = "C"

[[limit]]
nerve = "median"
measure = "distal_amp"
direction = "lower"
unit = "mV"
value = 5.0
age_min = 60
source = "lab-x"
status = "C"

[[limit]]
nerve = "median"
measure = "distal_amp"
direction = "lower"
unit = "mV"
value = 6.0
age_max = 60
source = "lab-x"
status = "C"
"""


def test_laboratory_file_replaces_default_and_version_recorded(tmp_path, motor, measures_of):
    path = _write(tmp_path, LAB)
    rows = motor("E", "median", dml_ms=6.3, cv=50.0, amp_mv=3.0, age=65.0)
    out = tables(measures_of(rows), limits=path)
    r = out["nerves"].iloc[0]
    assert r["dml_pct_uln"] == pytest.approx(150.0)  # 6.3 / 4.2, unit converted from s
    assert r["amp_pct_lln"] == pytest.approx(60.0)  # age band >= 60: 3 / 5 mV
    assert np.isnan(r["cv_pct_lln"]) and "no lower limit for median cv" in r["limits_missing"]
    assert r["limits_version"] == "lab-x@2024.2"
    assert r["limits_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert out["exams"].iloc[0]["limits_version"] == "lab-x@2024.2"
    # the age band switches the limit
    rows = motor("E", "median", dml_ms=6.3, cv=50.0, amp_mv=3.0, age=45.0)
    assert tables(measures_of(rows), limits=path)["nerves"].iloc[0]["amp_pct_lln"] == pytest.approx(
        50.0
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (('status = "C"\n\n[[limit]]', 'status = "X"\n\n[[limit]]'), "status must be one of"),
        (('measure = "dml"', 'measure = "dmll"'), "unknown measure"),
        (('unit = "s"', 'unit = "uV"'), "does not fit measure"),
        (("age_min = 60", "age_min = 50"), "overlapping"),
        (('direction = "upper"', 'direction = "up"'), "direction must be"),
        (("value = 0.0042", "intercept = 1.0"), "either 'value' or 'model'"),
    ],
)
def test_malformed_limit_files_are_refused(tmp_path, change, message):
    text = LAB.replace(*change, 1)
    assert text != LAB
    with pytest.raises(RuleError, match=message):
        load_limits(_write(tmp_path, text))


def test_limits_without_meta_refused(tmp_path):
    with pytest.raises(RuleError, match=r"\[meta\]"):
        load_limits(_write(tmp_path, "[[limit]]\nnerve='median'\n"))


def test_apply_limits_does_not_modify_input(motor, measures_of):
    nerves = study_features(
        measures_of(motor("E", "median", dml_ms=4.0, cv=50.0, amp_mv=6.0))
    ).nerves
    before = nerves.copy()
    apply_limits(nerves)
    pd.testing.assert_frame_equal(nerves, before)
