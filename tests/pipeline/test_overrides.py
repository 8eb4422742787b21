"""``ncsproc extract --overrides``: reviewed markers end to end on data_samples/simulated.

One run without overrides is the reference (module fixture); every other run starts from a
copy of its output folder, so the cache behaviour is part of what is tested: an override
recomputes its exam only, and the tables are byte-identical to a fresh run with the same file.
Measured latencies are read from the reference run (the kernels may change), never hard-coded.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ncsproc.pipeline import extract
from ncsproc.review import CHANGED_COLUMN, ORIGINAL_KEYS, REVIEWS_COLUMNS, original_columns
from ncsproc.tables import from_layout, read_tables_version

from .helpers import REPO, cli

DATA = REPO / "data_samples" / "simulated"
HEADER = "trace_id,marker,time_ms,reviewer,reason\n"
REVIEW_COLS = {
    "responses": "reviewed",
    "sites": "reviewed",
    "nerves": "reviewed_traces",
    "exams": "reviewed_traces",
}


def _text(path: Path) -> pd.DataFrame:
    """A table of a results folder as text, in layout 1 (mV columns turned back into uV)."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return from_layout(table, read_tables_version(Path(path).parent))


def _run(out: Path, overrides=None):
    return extract([DATA], out, scheduler="synchronous", overrides=overrides)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("overrides") / "base"
    code, err = cli(["extract", DATA, "--out", out, "--scheduler", "synchronous", "-q"])
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def distal_median(base) -> dict:
    """The distal site of EX0001's median motor study, as the reference run measured it."""
    sites = _text(base / "sites.csv")
    row = sites[
        (sites["exam_id"] == "EX0001")
        & (sites["study"] == "L_median_motor")
        & (sites["site_index"] == "0")
    ].iloc[0]
    return row.to_dict()


def _copy(base: Path, dest: Path) -> Path:
    shutil.copytree(base, dest)
    return dest


@pytest.fixture(scope="module")
def reviewed(base, distal_median, tmp_path_factory):
    """The reference folder rerun with one onset moved by +1 ms."""
    root = tmp_path_factory.mktemp("reviewed")
    path = root / "overrides.csv"
    onset = float(distal_median["onset_ms"])
    path.write_text(
        "# review of 2024-05-02\n"
        + HEADER
        + f"{distal_median['trace']},onset,{onset + 1:.3f},Dr Rev,late take-off\n",
        encoding="utf-8",
    )
    out = _copy(base, root / "out")
    return out, _run(out, path), path


def test_only_the_reviewed_exam_is_recomputed(reviewed):
    out, result, _ = reviewed
    assert (result.n_computed, result.n_cached, result.n_errors) == (1, 3, 0)
    assert result.exit_status == 0


def _added(name: str, base_columns) -> list[str]:
    """The columns --overrides appends to a table: the review column, then the originals."""
    col = REVIEW_COLS.get(name)
    originals = (
        [CHANGED_COLUMN, *(oc for oc, _ in original_columns(name, base_columns))]
        if name in ORIGINAL_KEYS
        else []
    )
    return [*([col] if col else []), *originals]


def _split(base_t: pd.DataFrame, new_t: pd.DataFrame, name: str):
    col = REVIEW_COLS.get(name)
    assert list(new_t.columns) == [*base_t.columns, *_added(name, base_t.columns)], name
    return new_t[list(base_t.columns)], (new_t[col] if col else None)


# columns a review may change that have no original_* column (formats/review.md): in nerves and
# segments the limits used (they empty or fill with their feature) and the criteria's
# explanations; in exams and criteria everything but the pattern, levels, states and values
def _no_original(name: str, column: str) -> bool:
    return name in ("exams", "criteria") or (
        column.endswith("_not_evaluated")
        or "_uln_" in column
        or "_lln_" in column
        or column in ("limits_status", "limits_missing")
    )


def _check_originals(base: Path, out: Path, name: str) -> pd.DataFrame:
    """Every value a review changed has its machine value in original_<column> and its name in
    reviewed_columns; every other original is empty. Returns the rows that changed."""
    before, after = _text(base / f"{name}.csv"), _text(out / f"{name}.csv")
    keys = list(ORIGINAL_KEYS[name])
    assert (after[keys] == before[keys]).all().all(), name  # same rows, same order
    pairs = dict((c, oc) for oc, c in original_columns(name, before.columns))
    assert pairs and all(oc in after.columns for oc in pairs.values())
    for i in range(len(before)):
        listed = [c for c in after[CHANGED_COLUMN].iloc[i].split(";") if c]
        changed = [c for c in before.columns if after[c].iloc[i] != before[c].iloc[i]]
        assert [c for c in changed if c in pairs] == listed, (name, i)
        assert all(_no_original(name, c) for c in changed if c not in pairs), (name, i, changed)
        for c, oc in pairs.items():
            assert after[oc].iloc[i] == (before[c].iloc[i] if c in listed else ""), (name, i, c)
    return after[after[CHANGED_COLUMN] != ""]


def _no_originals(table: pd.DataFrame) -> bool:
    cols = [c for c in table.columns if c == CHANGED_COLUMN or c.startswith("original_")]
    return bool(cols) and (table[cols] == "").all().all()


def test_responses_and_sites_change_in_the_reviewed_row_only(base, reviewed, distal_median):
    out, _, _ = reviewed
    on = float(distal_median["onset_ms"])
    for name, key in (
        ("responses", ["exam_id", "study", "record"]),
        ("sites", ["exam_id", "study", "site_index"]),
    ):
        before = _text(base / f"{name}.csv")
        after, marks = _split(before, _text(out / f"{name}.csv"), name)
        assert (after[key] == before[key]).all().all()
        target = (
            (before["exam_id"] == "EX0001")
            & (before["study"] == "L_median_motor")
            & (before["stim_site"] == distal_median["stim_site"])
        ).to_numpy()
        assert target.sum() == 1
        assert list(marks[target]) == ["onset"] and (marks[~target] == "").all()
        pd.testing.assert_frame_equal(after[~target], before[~target])
        changed = [c for c in before.columns if (after[target][c] != before[target][c]).any()]
        assert changed == ["onset_ms", "neg_duration_ms", "total_duration_ms", "neg_area_uvms"]
        a, b = after[target].iloc[0], before[target].iloc[0]
        assert a["onset_ms"] == f"{on + 1:.3f}"
        for c in ("neg_duration_ms", "total_duration_ms"):  # the end stays where it was
            assert float(a[c]) == pytest.approx(float(b[c]) - 1, abs=1.5e-3)
        assert float(a["neg_area_uvms"]) < float(b["neg_area_uvms"])


def test_nerve_features_criteria_and_pattern_follow(base, reviewed, distal_median):
    out, _, _ = reviewed
    nb = _text(base / "nerves.csv")
    na, marks = _split(nb, _text(out / "nerves.csv"), "nerves")
    target = ((nb["exam_id"] == "EX0001") & (nb["study"] == "L_median_motor")).to_numpy()
    assert list(marks[target]) == [distal_median["trace"]] and (marks[~target] == "").all()
    pd.testing.assert_frame_equal(na[~target], nb[~target])
    row, old = na[target].iloc[0], nb[target].iloc[0]
    dml = float(old["dml_ms"]) + 1
    assert row["dml_ms"] == f"{dml:.3f}"
    # by hand from the segment distance and the onsets of responses.csv
    seg = _text(out / "segments.csv")
    seg = seg[(seg["exam_id"] == "EX0001") & (seg["study"] == "L_median_motor")].iloc[0]
    resp = _text(out / "responses.csv")
    prox = resp[
        (resp["exam_id"] == "EX0001")
        & (resp["study"] == "L_median_motor")
        & (resp["stim_site"] == seg["proximal_site"])
    ].iloc[0]
    cv = float(seg["distance_mm"]) / (float(prox["onset_ms"]) - dml)  # mm/ms = m/s
    d = float(distal_median["distance_mm"])
    assert float(row["cv_m_s"]) == pytest.approx(cv, rel=2e-3)
    assert float(row["tli"]) == pytest.approx(d / (cv * dml), rel=2e-3)
    assert float(row["residual_latency_ms"]) == pytest.approx(dml - d / cv, rel=2e-3)
    assert float(row["cv_m_s"]) > float(old["cv_m_s"]) and float(row["tli"]) < float(old["tli"])
    # the criteria follow the new values: temporal dispersion uses the shortened distal CMAP
    crit = _text(out / "criteria.csv")
    td = crit[
        (crit["exam_id"] == "EX0001")
        & (crit["study"] == "L_median_motor")
        & (crit["criterion"] == "td")
        & (crit["criteria_set"] == "efns_pns_2010")
    ].iloc[0]
    assert float(td["value"]) == pytest.approx(float(row["max_td_pct"]), abs=0.01)
    assert td["state"] == ("met" if float(td["value"]) > 30 else "not_met")
    cb = _text(base / "criteria.csv")
    keep = (cb["exam_id"] != "EX0001").to_numpy()
    assert list(crit.columns) == [*cb.columns, *_added("criteria", cb.columns)]
    pd.testing.assert_frame_equal(
        crit[keep][list(cb.columns)].reset_index(drop=True), cb[keep].reset_index(drop=True)
    )
    eb = _text(base / "exams.csv")
    ea, emarks = _split(eb, _text(out / "exams.csv"), "exams")
    first = (eb["exam_id"] == "EX0001").to_numpy()
    pd.testing.assert_frame_equal(ea[~first], eb[~first])
    assert list(emarks) == [distal_median["trace"], "", "", ""]
    if td["state"] == "met":
        # rule set v2 counts two nerves, as every EFNS/EAN motor criterion does: temporal
        # dispersion in this one nerve alone leaves a 'normal' exam normal (v1 made it
        # cidp_like); the pattern is recomputed from the reviewed features all the same
        assert eb[first]["pattern"].iloc[0] == "normal"
        assert ea[first]["pattern"].iloc[0] == "normal"
        assert ea[first]["rules_version"].iloc[0].endswith("@0.2.0")


def test_the_machine_values_stay_beside_the_reviewed_ones(base, reviewed, distal_median):
    """original_<column> of nerves, segments, exams and criteria: the first run's value where
    the review changed it, empty elsewhere (other studies, other exams)."""
    out, _, _ = reviewed
    changed = {name: _check_originals(base, out, name) for name in ORIGINAL_KEYS}
    nb = _text(base / "nerves.csv")
    old = nb[(nb["exam_id"] == "EX0001") & (nb["study"] == "L_median_motor")].iloc[0]
    row = changed["nerves"]
    assert list(zip(row["exam_id"], row["study"], strict=True)) == [("EX0001", "L_median_motor")]
    assert row["original_dml_ms"].iloc[0] == old["dml_ms"] == distal_median["onset_ms"]
    assert {"dml_ms", "cv_m_s", "tli"} <= set(row[CHANGED_COLUMN].iloc[0].split(";"))
    assert "original_dml_uln_ms" not in row and "original_exam_id" not in row
    seg = changed["segments"]
    assert set(seg["study"]) == {"L_median_motor"} and "cv_m_s" in seg[CHANGED_COLUMN].iloc[0]
    assert set(changed["criteria"]["exam_id"]) == {"EX0001"}
    # the criteria's original states are the first run's
    cb = _text(base / "criteria.csv").set_index(list(ORIGINAL_KEYS["criteria"]))
    for key, r in changed["criteria"].set_index(list(ORIGINAL_KEYS["criteria"])).iterrows():
        if "state" in r[CHANGED_COLUMN].split(";"):
            assert r["original_state"] == cb.loc[key, "state"] != r["state"]
    eb, ea = _text(base / "exams.csv"), _text(out / "exams.csv")
    assert _no_originals(ea[ea["exam_id"] != "EX0001"])
    e0, e1 = eb.iloc[0], ea.iloc[0]
    assert e1["original_pattern"] == ("" if e1["pattern"] == e0["pattern"] else e0["pattern"])
    for level in ("efns_pns_2010", "ean_pns_2021"):
        assert e1[f"original_{level}"] == ("" if e1[level] == e0[level] else e0[level])
    if e1["pattern"] != e0["pattern"]:  # the temporal dispersion criterion flipped it
        assert e1["original_pattern"] == e0["pattern"] == "normal"
        assert "pattern" in e1[CHANGED_COLUMN].split(";")


def test_reviews_table_and_provenance(reviewed, distal_median):
    out, _, path = reviewed
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    rev = _text(out / "reviews.csv")
    assert list(rev.columns) == list(REVIEWS_COLUMNS)
    assert list(rev["variable"]) == [
        "onset_latency",
        "negative_duration",
        "total_duration",
        "negative_area",
    ]
    assert set(rev["trace_id"]) == {distal_median["trace"]} and set(rev["exam_id"]) == {"EX0001"}
    assert set(rev["marker"]) == {"onset"} and set(rev["line"]) == {"3"}
    assert set(rev["reviewer"]) == {"Dr Rev"} and set(rev["reason"]) == {"late take-off"}
    assert set(rev["overrides_sha256"]) == {sha}
    assert list(rev["units"]) == ["ms", "ms", "ms", "uVms"]
    first = rev.iloc[0]
    on = float(distal_median["onset_ms"])
    assert float(first["original"]) == on and float(first["reviewed"]) == pytest.approx(on + 1)
    assert float(rev.iloc[3]["original"]) == float(distal_median["neg_area_uvms"])
    resp = _text(out / "responses.csv")
    row = resp[resp["reviewed"] == "onset"].iloc[0]
    assert float(rev.iloc[3]["reviewed"]) == float(row["neg_area_uvms"])
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["overrides"] == {"file": "overrides.csv", "sha256": sha, "rows": 1}
    from ncsproc.pipeline import read_cohort_table

    h5 = read_cohort_table(out / "cohort.h5", "reviews")
    assert list(h5.columns) == list(REVIEWS_COLUMNS) and len(h5) == 4
    assert (out / "reviews.parquet").is_file()


def test_a_fresh_run_gives_the_same_bytes(reviewed, tmp_path):
    out, _, path = reviewed
    fresh = tmp_path / "fresh"
    result = _run(fresh, path)
    assert result.n_computed == 4 and result.n_cached == 0
    for f in sorted(out.glob("*.csv")) + sorted(out.glob("*.parquet")):
        assert (fresh / f.name).read_bytes() == f.read_bytes(), f.name
    assert (fresh / "provenance.json").read_bytes() == (out / "provenance.json").read_bytes()


def test_editing_the_file_recomputes_exactly_the_exams_it_concerns(base, reviewed, tmp_path):
    out0, _, path = reviewed
    out = _copy(out0, tmp_path / "out")
    sites = _text(base / "sites.csv")
    other = sites[
        (sites["exam_id"] == "EX0004")
        & (sites["study"] == "L_ulnar_motor")
        & (sites["site_index"] == "0")
    ].iloc[0]
    edited = tmp_path / "overrides.csv"
    edited.write_text(
        path.read_text() + f"{other['trace']},peak,{other['peak_ms']},Dr Rev,"
        '"confirmed, as measured"\n# end\n',
        encoding="utf-8",
    )
    result = _run(out, edited)
    assert (result.n_computed, result.n_cached) == (1, 3)  # EX0004 only
    marks = _text(out / "responses.csv")["reviewed"]
    assert sorted(marks[marks != ""]) == ["onset", "peak"]
    rev = _text(out / "reviews.csv")
    assert list(rev[rev["exam_id"] == "EX0004"]["variable"]) == [
        "peak_latency",
        "amplitude",
        "peak_to_peak",
        "snr",
    ]
    assert set(rev["overrides_sha256"]) == {hashlib.sha256(edited.read_bytes()).hexdigest()}
    # without the file: every exam from the cache, every table as in the reference run
    result = _run(out)
    assert (result.n_computed, result.n_cached) == (0, 4)
    for f in sorted(base.glob("*.csv")):
        assert (out / f.name).read_bytes() == f.read_bytes(), f.name
    assert "overrides" not in json.loads((out / "provenance.json").read_text())
    assert len(_text(out / "reviews.csv")) == 0


def test_a_distal_latency_beyond_150_pct_of_uln_meets_the_dml_criterion(base, tmp_path):
    nerves = _text(base / "nerves.csv")
    sites = _text(base / "sites.csv")
    lines, studies = [], ["L_tibial_motor", "L_ulnar_motor"]
    for study in studies:
        n = nerves[(nerves["exam_id"] == "EX0003") & (nerves["study"] == study)].iloc[0]
        assert float(n["dml_pct_uln"]) < 150
        uln = float(n["dml_ms"]) / (float(n["dml_pct_uln"]) / 100)
        s = sites[
            (sites["exam_id"] == "EX0003")
            & (sites["study"] == study)
            & (sites["site_index"] == "0")
        ].iloc[0]
        new = round(1.55 * uln, 2)
        assert new < float(s["peak_ms"])
        lines.append(f"{s['trace']},onset,{new},Dr Rev,prolonged distal latency\n")
    path = tmp_path / "overrides.csv"
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    out = _copy(base, tmp_path / "out")
    result = _run(out, path)
    assert (result.n_computed, result.n_cached) == (1, 3)
    na = _text(out / "nerves.csv")
    cb, ca = _text(base / "criteria.csv"), _text(out / "criteria.csv")
    for study in studies:
        row = na[(na["exam_id"] == "EX0003") & (na["study"] == study)].iloc[0]
        assert float(row["dml_pct_uln"]) == pytest.approx(155, abs=0.5)
        assert "dml" in row["efns_pns_2010_met"].split(";")
        assert "dml" in row["ean_pns_2021_met"].split(";")
        for cs in ("efns_pns_2010", "ean_pns_2021"):
            sel = (
                (ca["exam_id"] == "EX0003")
                & (ca["study"] == study)
                & (ca["criteria_set"] == cs)
                & (ca["criterion"] == "dml")
            )
            old = cb[sel.to_numpy()].iloc[0]
            new = ca[sel].iloc[0]
            assert (old["state"], old["met"]) == ("not_met", "False")
            assert (new["state"], new["met"]) == ("met", "True")
            assert float(new["value"]) == pytest.approx(float(row["dml_pct_uln"]), abs=0.01)
    keep = (cb["exam_id"] != "EX0003").to_numpy()
    pd.testing.assert_frame_equal(
        ca[keep][list(cb.columns)].reset_index(drop=True), cb[keep].reset_index(drop=True)
    )
    assert (_text(out / "exams.csv")["reviewed_traces"].str.count("EX0003/") == [0, 0, 2, 0]).all()
    # the machine values beside the reviewed ones: the first run's
    for name in ORIGINAL_KEYS:
        _check_originals(base, out, name)
    for study in studies:
        row = na[(na["exam_id"] == "EX0003") & (na["study"] == study)].iloc[0]
        old = _text(base / "nerves.csv")
        old = old[(old["exam_id"] == "EX0003") & (old["study"] == study)].iloc[0]
        assert row["original_dml_ms"] == old["dml_ms"] != row["dml_ms"]
        assert row["original_dml_pct_uln"] == old["dml_pct_uln"]
        assert row["original_efns_pns_2010_met"] == old["efns_pns_2010_met"]
        for cs in ("efns_pns_2010", "ean_pns_2021"):
            sel = (
                (ca["exam_id"] == "EX0003")
                & (ca["study"] == study)
                & (ca["criteria_set"] == cs)
                & (ca["criterion"] == "dml")
            )
            assert ca[sel].iloc[0]["original_state"] == "not_met"
    assert _no_originals(na[na["exam_id"] != "EX0003"])
    assert _no_originals(ca[ca["exam_id"] != "EX0003"])
    eb, ea = _text(base / "exams.csv"), _text(out / "exams.csv")
    third = (eb["exam_id"] == "EX0003").to_numpy()
    assert _no_originals(ea[~third])
    old, new = eb[third].iloc[0], ea[third].iloc[0]
    for c in ("pattern", "efns_pns_2010", "ean_pns_2021"):
        assert new[f"original_{c}"] == ("" if new[c] == old[c] else old[c]), c


def test_an_invalid_file_is_a_usage_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER + "EX0001/L_median_motor/0,onset,3.4.5,Dr A,x\n"
        "EX0001/L_median_motor/0,peek,5,Dr A,x\n"
        "EX0001/L_median_motor/1,onset,8,,x\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    code, err = cli(
        ["extract", DATA, "--out", out, "--scheduler", "synchronous", "-q", "--overrides", path]
    )
    assert code == 2
    for line, what in (
        (2, "time_ms '3.4.5' is not a number"),
        (3, "marker 'peek'"),
        (4, "reviewer is empty"),
    ):
        assert f"bad.csv line {line}: {what}" in err
    assert not out.exists()  # nothing is written for a usage error


def test_unknown_trace_ids_are_error_rows(base, tmp_path):
    path = tmp_path / "rev.csv"
    path.write_text(
        HEADER + "EX0002/L_median_motor/7,onset,3,Dr A,x\nEX0042/L_median_motor/0,onset,3,Dr A,x\n",
        encoding="utf-8",
    )
    out = _copy(base, tmp_path / "out")
    code, err = cli(
        ["extract", DATA, "--out", out, "--scheduler", "synchronous", "-q", "--overrides", path]
    )
    assert code == 1, err
    errors = _text(out / "errors.csv")
    assert list(errors["source_file"]) == ["rev.csv", "rev.csv"]
    assert set(errors["stage"]) == {"review"} and set(errors["error"]) == {"OverrideError"}
    msg = dict(zip(errors["exam_id"], errors["message"], strict=True))
    assert msg["EX0002"].startswith(
        "rev.csv line 2: trace 'EX0002/L_median_motor/7' is not a measured trace"
    )
    assert msg[""].startswith(
        "rev.csv line 3: trace 'EX0042/L_median_motor/0' belongs to no exam of this run"
    )
    # nothing was applied
    before, after = _text(base / "responses.csv"), _text(out / "responses.csv")
    assert (after["reviewed"] == "").all()
    pd.testing.assert_frame_equal(after[list(before.columns)], before)
    assert len(_text(out / "reviews.csv")) == 0
    assert np.isfinite(pd.read_csv(out / "nerves.csv")["dml_ms"]).any()
    for name in ORIGINAL_KEYS:  # the columns are there, empty: nothing was reviewed
        assert _no_originals(_text(out / f"{name}.csv")), name


def test_reviewed_stays_last_after_the_extension_columns(base, reviewed):
    """``reviewed`` follows the extension columns (trace id, QC flags, diagnostics), which
    follow the contract's; a review moves markers, not the trace's QC flags or baseline."""
    from ncsproc.pipeline.outputs import CONTRACT_COLUMNS

    out, _, _ = reviewed
    ext = ["trace_id", "qc_flags", "baseline_uv", "noise_uv", "artefact_end_ms"]
    before, after = _text(base / "responses.csv"), _text(out / "responses.csv")
    assert list(before.columns) == [*CONTRACT_COLUMNS["responses"], *ext]
    assert list(after.columns) == [*CONTRACT_COLUMNS["responses"], *ext, "reviewed"]
    pd.testing.assert_frame_equal(after[ext], before[ext])
