"""Criteria engine: thresholds at their boundaries, gating, tibial exceptions, filters, counting."""

from __future__ import annotations

import json
import math

import pytest

from ncsproc.features import RuleError, load_criteria, tables

SETS = {cs.id: cs for cs in load_criteria()}
EFNS, EAN = SETS["efns_pns_2010"], SETS["ean_pns_2021"]


def row(nerve="median", side="L", exam="E", **values):
    r = dict(
        exam_id=exam,
        study=f"{side}_{nerve}_motor",
        nerve=nerve,
        side=side,
        modality="motor",
        study_status="ok",
        amp_pct_lln=100.0,
        highpass_hz=math.nan,
    )
    r.update(values)
    return r


def ev(cs, criterion, **values):
    return cs.criteria[criterion].evaluate(row(**values))


# (set, criterion, column, value exactly at the threshold -> met?, just inside, just outside)
BOUNDARIES = [
    (EFNS, "dml", "dml_pct_uln", 150.0, True, 150.0001, 149.999),
    (EAN, "dml", "dml_pct_uln", 150.0, True, 150.0001, 149.999),
    (EFNS, "cv", "cv_pct_lln", 70.0, True, 69.999, 70.001),
    (EAN, "cv", "cv_pct_lln", 70.0, True, 69.999, 70.001),
    (EFNS, "f_latency", "f_min_pct_uln", 130.0, True, 130.001, 129.999),
    (EAN, "f_latency", "f_min_pct_uln", 120.0, True, 120.001, 119.999),
    (EFNS, "cb50", "max_cb_pct", 50.0, True, 50.001, 49.999),
    (EFNS, "cb30", "max_cb_pct", 30.0, True, 30.001, 29.999),
    (EAN, "cb", "max_cb_pct", 30.0, True, 30.001, 29.999),
    (EFNS, "td", "max_td_pct", 30.0, False, 30.001, 29.999),  # "> 30 %": strict
    (EAN, "td", "max_td_pct", 30.0, False, 30.001, 29.999),
]


@pytest.mark.parametrize(
    "cs, crit, col, at, at_met, inside, outside",
    BOUNDARIES,
    ids=[f"{b[0].id}-{b[1]}" for b in BOUNDARIES],
)
def test_threshold_boundaries(cs, crit, col, at, at_met, inside, outside):
    assert ev(cs, crit, **{col: at}).met is at_met
    assert ev(cs, crit, **{col: inside}).met
    r = ev(cs, crit, **{col: outside})
    assert r.state == "not_met" and not r.met
    assert r.threshold == at and r.source and r.status in "CSU"


def test_floating_point_value_equal_to_threshold_counts_as_equal():
    # tibial DML 8.7 ms with ULN 5.8 ms is 150 % ULN, but 100 * 8.7 / 5.8 = 149.99999999999997
    assert 100 * 8.7 / 5.8 < 150.0
    assert ev(EFNS, "dml", nerve="tibial", dml_pct_uln=100 * 8.7 / 5.8).met
    # duration 5.0 -> 6.5 ms is a 30 % increase, not "> 30 %", though 100 * (6.5 / 5 - 1) > 30
    assert 100 * (6.5 / 5.0 - 1) > 30.0
    assert not ev(EFNS, "td", max_td_pct=100 * (6.5 / 5.0 - 1)).met


@pytest.mark.parametrize("cs, base", [(EFNS, 130.0), (EAN, 120.0)])
def test_f_latency_threshold_switches_below_80_pct_lln(cs, base):
    at_80 = ev(cs, "f_latency", f_min_pct_uln=base, amp_pct_lln=80.0)
    assert at_80.met and at_80.threshold == base
    low = ev(cs, "f_latency", f_min_pct_uln=149.999, amp_pct_lln=79.999)
    assert not low.met and low.threshold == 150.0
    assert ev(cs, "f_latency", f_min_pct_uln=150.0, amp_pct_lln=79.999).met
    r = ev(cs, "f_latency", f_min_pct_uln=200.0, amp_pct_lln=math.nan)
    assert r.state == "not_evaluable" and "amp_pct_lln" in r.reason


@pytest.mark.parametrize(
    "cs, crit, col, value",
    [
        (EFNS, "f_absent", "f_absent", True),
        (EAN, "f_absent", "f_absent", True),
        (EFNS, "cb50", "max_cb_pct", 60.0),
        (EFNS, "cb30", "max_cb_pct", 60.0),
        (EAN, "cb", "max_cb_pct", 60.0),
    ],
)
def test_gating_by_distal_cmap_20_pct_lln(cs, crit, col, value):
    assert ev(cs, crit, **{col: value}, amp_pct_lln=20.0).met
    r = ev(cs, crit, **{col: value}, amp_pct_lln=19.999)
    assert r.state == "gated" and not r.met and "amp_pct_lln" in r.reason and ">= 20" in r.reason
    r = ev(cs, crit, **{col: value}, amp_pct_lln=math.nan)
    assert r.state == "not_evaluable"


def test_f_present_is_not_absent_and_missing_f_is_not_evaluable():
    assert ev(EFNS, "f_absent", f_absent=False).state == "not_met"
    r = ev(EFNS, "f_absent", f_absent=math.nan)
    assert r.state == "not_evaluable" and "f_absent missing" in r.reason


def test_tibial_exceptions():
    # conduction block: tibial excluded in EAN/PNS 2021 and in the 2010 probable criterion ...
    for cs, crit in ((EAN, "cb"), (EFNS, "cb30")):
        r = ev(cs, crit, nerve="tibial", max_cb_pct=90.0)
        assert r.state == "excluded" and not r.met and "tibial" in r.reason
    # ... but not in the 2010 definite criterion I-E
    assert ev(EFNS, "cb50", nerve="tibial", max_cb_pct=50.0).met
    # dispersion: >= 100 % in the tibial nerve (2021, status U), > 30 % elsewhere
    assert not ev(EAN, "td", nerve="tibial", max_td_pct=99.999).met
    r = ev(EAN, "td", nerve="tibial", max_td_pct=100.0)
    assert r.met and r.threshold == 100.0 and r.op == ">=" and r.status == "U"
    assert ev(EAN, "td", nerve="peroneal", max_td_pct=30.001).met
    assert ev(EFNS, "td", nerve="tibial", max_td_pct=30.001).met  # 2010: no tibial exception


def test_distal_duration_refused_when_filter_unknown():
    for cs in (EFNS, EAN):
        r = ev(cs, "distal_duration", distal_duration_ms=20.0)
        assert r.state == "refused" and not r.met
        assert "low-frequency filter" in r.reason and "unknown" in r.reason


def test_distal_duration_cutoffs_by_filter():
    # EAN/PNS 2021 at 5 Hz: median > 8.0 ms [S]
    assert not ev(EAN, "distal_duration", distal_duration_ms=8.0, highpass_hz=5.0).met
    r = ev(EAN, "distal_duration", distal_duration_ms=8.0001, highpass_hz=5.0)
    assert r.met and r.threshold == 8.0 and r.status == "S"
    # 2 Hz: the unconfirmed values, and the result says so
    r = ev(EAN, "distal_duration", nerve="ulnar", distal_duration_ms=9.7, highpass_hz=2.0)
    assert r.met and r.threshold == 9.6 and r.status == "U" and "filter=U" in r.tags
    # a filter without cut-offs: refused with the reason
    r = ev(EAN, "distal_duration", distal_duration_ms=20.0, highpass_hz=10.0)
    assert r.state == "refused" and "10 Hz" in r.reason
    # EFNS/PNS 2010: values as printed (C), filter assignment unresolved (U), any known filter
    r = ev(EFNS, "distal_duration", nerve="tibial", distal_duration_ms=8.8, highpass_hz=20.0)
    assert r.met and r.threshold == 8.8 and "threshold=C" in r.tags and "filter=U" in r.tags
    assert not ev(
        EFNS, "distal_duration", nerve="tibial", distal_duration_ms=8.799, highpass_hz=2.0
    ).met
    r = ev(EFNS, "distal_duration", nerve="radial", distal_duration_ms=30.0, highpass_hz=2.0)
    assert r.state == "not_evaluable" and "radial" in r.reason


# ---- counting nerves into levels ----------------------------------------------------------
def results(cs, *rows):
    out = []
    for r in rows:
        out.extend(cs.evaluate_study(r))
    return out


def level(cs, *rows, **kw):
    return cs.level(results(cs, *rows), exam_id="E", **kw)


def test_two_nerves_definite_one_nerve_possible():
    med = row("median", dml_pct_uln=160.0)
    uln = row("ulnar", dml_pct_uln=155.0)
    per = row("peroneal", dml_pct_uln=100.0)
    assert level(EFNS, med, uln, per).level == "definite"
    assert level(EAN, med, uln, per).level == "strongly_supportive"
    assert level(EFNS, med, per).level == "possible"
    assert level(EAN, med, per).level == "weakly_supportive"
    assert level(EFNS, per).level == "none" and level(EAN, per).level == "none"
    lv = level(EFNS, med, uln)
    (clause,) = [c for c in lv.clauses if c["rule"].startswith("dml")]
    assert clause["nerves"] == ["L_median", "L_ulnar"]
    assert {e["study"] for e in clause["evidence"]} == {"L_median_motor", "L_ulnar_motor"}
    assert lv.status == "C"


def test_same_nerve_twice_counts_once_both_sides_count_twice():
    a = row("median", dml_pct_uln=160.0)
    b = dict(row("median", dml_pct_uln=170.0), study="L_median_motor_2")
    assert level(EFNS, a, b).level == "possible"
    c = row("median", side="R", dml_pct_uln=170.0)
    assert level(EFNS, a, c).level == "definite"


def test_block_in_one_nerve_plus_other_parameter():
    cb = row("median", max_cb_pct=55.0)
    cv = row("ulnar", cv_pct_lln=60.0)
    fa = row("peroneal", f_absent=True)
    assert level(EFNS, cb, cv).level == "definite"
    assert level(EAN, cb, cv).level == "strongly_supportive"
    # 2021: absence of F waves does not count as the other parameter of a block
    assert level(EAN, cb, fa).level == "weakly_supportive"
    # 2010 probable: 30-49 % block in 2 nerves, tibial excluded
    p1, p2 = row("median", max_cb_pct=35.0), row("ulnar", max_cb_pct=40.0)
    assert level(EFNS, p1, p2).level == "probable"
    assert level(EFNS, p1, row("tibial", max_cb_pct=40.0)).level == "none"


def test_absent_f_needs_another_parameter_in_another_nerve():
    fa1, fa2 = row("median", f_absent=True), row("ulnar", f_absent=True)
    assert level(EFNS, fa1, fa2).level == "possible"
    # the other parameter must be in a third nerve, not in one of the two
    fa2_dml = row("ulnar", f_absent=True, dml_pct_uln=200.0)
    assert level(EFNS, fa1, fa2_dml).level == "possible"
    assert level(EFNS, fa1, fa2, row("tibial", dml_pct_uln=200.0)).level == "definite"
    # gated absence does not count
    assert (
        level(
            EFNS,
            row("median", f_absent=True, amp_pct_lln=10.0),
            fa2,
            row("tibial", dml_pct_uln=200.0),
        ).level
        == "possible"
    )


def test_distal_duration_one_nerve_plus_other():
    dd = row("median", distal_duration_ms=7.0, highpass_hz=2.0)
    assert level(EFNS, dd).level == "possible"
    assert level(EFNS, dd, row("ulnar", cv_pct_lln=65.0)).level == "definite"
    unknown = row("median", distal_duration_ms=7.0)
    assert level(EFNS, unknown, row("ulnar", cv_pct_lln=65.0)).level == "possible"


def test_without_and_mask():
    med, uln = (
        row("median", dml_pct_uln=160.0, cv_pct_lln=60.0),
        row("ulnar", dml_pct_uln=160.0, cv_pct_lln=60.0),
    )
    assert level(EFNS, med, uln, without=["dml"]).level == "definite"  # through CV
    assert level(EFNS, med, uln, without=["dml", "cv"]).level == "none"
    lv = level(
        EFNS, med, uln, without=["dml"], mask=lambda r: r.criterion == "cv" and r.nerve == "ulnar"
    )
    assert lv.level == "possible"
    with pytest.raises(RuleError, match="unknown criteria"):
        level(EFNS, med, without=["nope"])


def test_boundary_through_the_whole_chain(motor, measures_of):
    # DML exactly 150 % ULN in two nerves (6.6 ms median, 4.95 ms ulnar): definite
    rows = motor("E", "median", dml_ms=6.6, cv=50.0, amp_mv=6.0)
    rows += motor("E", "ulnar", dml_ms=4.95, cv=55.0, amp_mv=8.0)
    out = tables(measures_of(rows))
    ex = out["exams"].iloc[0]
    assert ex["efns_pns_2010"] == "definite" and ex["ean_pns_2021"] == "strongly_supportive"
    ev_ = json.loads(ex["efns_pns_2010_evidence"])
    dml = [c for c in ev_ if c["rule"].startswith("dml")][0]
    assert dml["nerves"] == ["L_median", "L_ulnar"]
    assert {e["threshold"] for e in dml["evidence"]} == {150.0}
    assert out["nerves"].set_index("study").loc["L_median_motor", "efns_pns_2010_met"] == "dml"
    # a hair below in one nerve: possible only
    rows = motor("E", "median", dml_ms=6.599, cv=50.0, amp_mv=6.0)
    rows += motor("E", "ulnar", dml_ms=4.95, cv=55.0, amp_mv=8.0)
    assert tables(measures_of(rows))["exams"].iloc[0]["efns_pns_2010"] == "possible"


def test_criteria_file_validation(tmp_path):
    from pathlib import Path

    good = Path(EFNS.info.path).read_text()
    bad = good.replace(
        'threshold = 150.0\nsource = "S01"\nstatus = "C"',
        'threshold = 150.0\nsource = "S01"\nstatus = "Q"',
        1,
    )
    p = tmp_path / "bad.toml"
    p.write_text(bad)
    with pytest.raises(RuleError, match="status must be one of"):
        load_criteria(p)
    p.write_text(good.replace('criteria = ["dml"]', 'criteria = ["dmlx"]', 1))
    with pytest.raises(RuleError, match="must name criteria of this file"):
        load_criteria(p)
    p.write_text(good.replace('op = ">="', 'op = "=>"', 1))
    with pytest.raises(RuleError, match="op must be one of"):
        load_criteria(p)
    with pytest.raises(RuleError, match="distinct ids"):
        load_criteria([EFNS, EFNS])


def test_every_threshold_carries_source_and_status():
    for cs in (EFNS, EAN):
        for c in cs.criteria.values():
            assert c.source and c.status in ("C", "S", "U", "P"), c.id
            for g in c.gates:
                assert g.source and g.status
            for cut in c.cutoffs:
                assert cut.source and cut.status and cut.filter_status
        for lv in cs.levels:
            for cl in lv.clauses:
                assert cl.status in ("C", "S", "U", "P")
    # the 2021 per-nerve values are secondary, never presented as confirmed
    assert {c.status for c in EAN.criteria.values()} == {"S"}
