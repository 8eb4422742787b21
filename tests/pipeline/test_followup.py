"""Longitudinal follow-up (issue 17) on a simulated follow-up cohort with exact truth:
intervals under every date precision, the sensory red flag, Theil-Sen slopes, keyed offsets,
and no real date, code or name in any output."""

from __future__ import annotations

import datetime as _dt
import sqlite3

import numpy as np
import pandas as pd
import pytest

KEY_A = "followup-centre-key-A-0123456789"
KEY_B = "followup-centre-key-B-9876543210"
KINDS = {"stable": 2, "slow_sural_decline": 2, "fast_sural_decline": 2, "distal_to_axonal": 2}


@pytest.fixture(scope="module")
def fu_cohort(tmp_path_factory):
    from ncsproc.simulate import write_followup_cohort

    root = tmp_path_factory.mktemp("followup") / "in"
    truth = write_followup_cohort(root, KINDS, seed=21)
    return root, truth


@pytest.fixture(scope="module")
def runs(fu_cohort, tmp_path_factory):
    """One extract per date precision with key A, and one with key B (shift)."""
    from ncsproc.pipeline import extract
    from ncsproc.privacy import Pseudonymizer

    root, _ = fu_cohort
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for name, key, precision in (
        ("year", KEY_A, "year"),
        ("none", KEY_A, "none"),
        ("shift", KEY_A, "shift"),
        ("shift_b", KEY_B, "shift"),
    ):
        folder = base / name
        result = extract(
            [root],
            folder,
            scheduler="synchronous",
            pseudonymizer=Pseudonymizer(key),
            date_precision=precision,
            traces=False,
        )
        assert result.n_errors == 0
        out[name] = folder
    return out


def _subject_map(folder, truth) -> dict[str, str]:
    """Simulated subject id -> pseudonym, through the exam ids (FU0001V1 -> FU0001)."""
    exams = pd.read_csv(folder / "exams.csv", dtype=str)
    pairs = {(e[:6], s) for e, s in zip(exams["exam_id"], exams["subject_id"], strict=True)}
    mapping = dict(pairs)
    assert len(mapping) == len(pairs) == len(truth.subjects)  # one pseudonym per subject
    return mapping


@pytest.mark.parametrize("run", ["year", "none", "shift", "shift_b"])
def test_days_since_first_exact_under_every_precision(runs, fu_cohort, run):
    _, truth = fu_cohort
    traj = pd.read_csv(runs[run] / "trajectories.csv", dtype={"exam_id": str})
    got = traj.drop_duplicates("exam_id").set_index("exam_id")
    want = truth.visits.set_index("exam_id")
    assert set(got.index) == set(want.index)
    np.testing.assert_array_equal(
        got.loc[want.index, "days_since_first"].to_numpy(), want["days_since_first"].to_numpy()
    )
    np.testing.assert_array_equal(got.loc[want.index, "visit"], want["visit"])
    subjects = pd.read_csv(runs[run] / "subjects.csv")
    mapping = _subject_map(runs[run], truth)
    by = subjects.set_index("subject_id")
    for row in truth.subjects.itertuples():
        s = by.loc[mapping[row.subject_id]]
        assert s["n_exams"] == row.n_visits
        assert s["followup_days"] == row.followup_days


def test_red_flag_equals_truth(runs, fu_cohort):
    _, truth = fu_cohort
    subjects = pd.read_csv(runs["year"] / "subjects.csv").set_index("subject_id")
    mapping = _subject_map(runs["year"], truth)
    assert truth.subjects["red_flag"].any() and not truth.subjects["red_flag"].all()
    for row in truth.subjects.itertuples():
        s = subjects.loc[mapping[row.subject_id]]
        assert bool(s["sensory_red_flag"]) == row.red_flag, row.subject_id
        assert s["red_flag_rule"] == "sensory-red-flag@0.1.0"
        if row.red_flag:
            assert '"flag": true' in s["red_flag_evidence"]


def _version_1_declarations(tmp_path):
    """The shipped registry declarations as they were at schema version 1."""
    import re

    from ncsproc import registry
    from ncsproc.features._files import data_path

    text = data_path("registry", "variables.toml").read_text(encoding="utf-8")
    text, n = re.subn(r"\[\[variable\]\]\n(?:(?!\[\[)[^\n]*\n)*?since = 2\n", "", text)
    assert n == 4
    path = tmp_path / "v1.toml"
    path.write_text(text.replace("schema_version = 2", "schema_version = 1"), encoding="utf-8")
    return registry.load_variables(path)


@pytest.mark.parametrize("run", ["year", "shift"])
def test_registry_visits_equal_truth_after_upgrading_a_version_1_database(
    runs, fu_cohort, run, tmp_path
):
    import sqlalchemy as sa

    from ncsproc import registry
    from ncsproc.privacy import Pseudonymizer
    from ncsproc.registry.db import connect

    _, truth = fu_cohort
    key = Pseudonymizer(KEY_A)
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    v1 = _version_1_declarations(tmp_path)
    first = registry.push(runs[run], url, pseudonymizer=key, centre="FR-T", variables=v1)
    assert first.ok and first.migrations == [1] and len(first.inserted) == len(truth.visits)
    before = registry.pull(url, variables=v1)

    report = registry.push(runs[run], url, pseudonymizer=key, centre="FR-T")
    assert report.ok and report.migrations == [2]
    assert len(report.updated) == len(truth.visits)  # the follow-up values filled in
    again = registry.push(runs[run], url, pseudonymizer=key, centre="FR-T")
    assert again.ok and len(again.unchanged) == len(truth.visits)  # idempotent
    after = registry.pull(url)
    pd.testing.assert_frame_equal(after[before.columns], before)  # the old rows are kept

    want = truth.visits.set_index("exam_id")
    got = after.set_index("exam_id").loc[want.index]
    np.testing.assert_array_equal(got["visit"].to_numpy(int), want["visit"].to_numpy(int))
    np.testing.assert_array_equal(
        got["since_first_days"].to_numpy(int), want["days_since_first"].to_numpy(int)
    )
    flag = truth.subjects.set_index("subject_id")["red_flag"]
    subject_of = {e: e[:6] for e in want.index}  # FU0001V1 -> FU0001
    for exam, value in got["sensory_red_flag"].items():
        if flag[subject_of[exam]]:
            assert value == "yes", exam
        else:
            assert value in ("no", "not_evaluable"), exam
    engine = connect(url)
    try:
        with engine.connect() as conn:
            view = pd.DataFrame(
                conn.execute(sa.text("SELECT * FROM ncs_visit ORDER BY exam_id")).mappings().all()
            )
    finally:
        engine.dispose()
    assert list(view.columns) == [
        "centre",
        "subject_pseudonym",
        "exam_id",
        "visit",
        "since_first_days",
    ]
    view = view.set_index("exam_id").loc[want.index]
    np.testing.assert_array_equal(view["visit"].to_numpy(int), want["visit"].to_numpy(int))
    assert set(view["subject_pseudonym"]) == set(after["subject_pseudonym"])


def test_slopes_within_ten_percent_of_truth(runs, fu_cohort):
    _, truth = fu_cohort
    subjects = pd.read_csv(runs["year"] / "subjects.csv").set_index("subject_id")
    mapping = _subject_map(runs["year"], truth)
    checked = 0
    for row in truth.subjects.itertuples():
        if row.n_visits < 3 or row.followup_days < 2 * 365.25:
            continue
        slope = subjects.loc[mapping[row.subject_id], "sural_L_snap_amp_uv_per_year"]
        if row.sural_rate_uv_per_year == 0:
            # no rate to be within 10 % of: 1 % of the baseline per year (a third of the
            # slowest simulated decline, 3 %/year)
            assert abs(slope) <= 0.01 * row.sural_baseline_uv, row.subject_id
        else:
            assert slope == pytest.approx(row.sural_rate_uv_per_year, rel=0.10), row.subject_id
            checked += 1
    assert checked >= 3


def test_pattern_change_follows_truth(runs, fu_cohort):
    _, truth = fu_cohort
    subjects = pd.read_csv(runs["year"] / "subjects.csv").set_index("subject_id")
    mapping = _subject_map(runs["year"], truth)
    for row in truth.subjects.itertuples():
        s = subjects.loc[mapping[row.subject_id]]
        assert bool(s["pattern_changed"]) == (row.first_pattern != row.last_pattern)


def test_same_key_same_pseudonym_and_offset_other_key_other(runs, fu_cohort):
    """Shifted dates minus real dates: one offset per subject, the same in two runs with
    key A (and in the offset function), another with key B; pseudonyms likewise."""
    from ncsproc.privacy import Pseudonymizer, date_offset_days

    _, truth = fu_cohort
    real = truth.visits.set_index("exam_id")["exam_date"]

    def offsets(folder):
        exams = pd.read_csv(folder / "exams.csv", dtype=str).set_index("exam_id")
        delta = {}
        for exam_id, shifted in exams["exam_date"].items():
            d = (_dt.date.fromisoformat(shifted) - _dt.date.fromisoformat(real[exam_id])).days
            delta.setdefault(exams.loc[exam_id, "subject_id"], set()).add(d)
        assert all(len(v) == 1 for v in delta.values())  # one offset per subject
        assert all(0 < abs(next(iter(v))) <= 365 for v in delta.values())
        return {s: next(iter(v)) for s, v in delta.items()}

    a = offsets(runs["shift"])
    b = offsets(runs["shift_b"])
    key_a = Pseudonymizer(KEY_A)
    assert a == {s: date_offset_days(key_a, s) for s in a}
    # the same key in another run (year precision) gives the same pseudonyms
    assert set(a) == set(_subject_map(runs["year"], truth).values())
    assert set(a).isdisjoint(b)  # another key, other pseudonyms
    mapping_a, mapping_b = _subject_map(runs["shift"], truth), _subject_map(runs["shift_b"], truth)
    same = [a[mapping_a[s]] == b[mapping_b[s]] for s in mapping_a]
    assert not all(same)


def _edf(d: _dt.date) -> str:
    months = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    return f"{d.day:02d}-{months[d.month - 1]}-{d.year}"


def _forbidden(root, truth) -> tuple[list[str], list[str]]:
    """(words no output may hold, the real visit dates in ISO form). A shifted date may by
    chance equal another subject's real date, so ISO dates are searched in the runs that
    reduce dates and checked exam by exam in the shifted ones."""
    words = [str(root)]
    for row in truth.identity.itertuples():
        birth = _dt.date.fromisoformat(row.birth_date)
        words += [row.patient_code, row.patient_name, row.birth_date, _edf(birth)]
    for date in truth.visits["exam_date"]:
        d = _dt.date.fromisoformat(date)
        words += [_edf(d), d.strftime("%d.%m.%y")]
    return sorted(set(words)), sorted(set(truth.visits["exam_date"]))


def test_no_real_date_code_or_name_in_any_output(runs, fu_cohort, tmp_path):
    """Every file of the runs (tables, Parquet, provenance, SQLite catalogue as a text dump,
    cached parts), the registry database dump, the report's HTML and the run's log."""
    import logging

    from ncsproc.pipeline import extract
    from ncsproc.privacy import Pseudonymizer

    root, truth = fu_cohort
    words, iso_dates = _forbidden(root, truth)
    log = tmp_path / "log.txt"
    handler = logging.FileHandler(log)
    logger = logging.getLogger("ncsproc")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        extract(
            [root],
            runs["shift"],
            scheduler="synchronous",
            pseudonymizer=Pseudonymizer(KEY_A),
            date_precision="shift",
            traces=False,
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
        handler.close()
    files = [(run, p) for run, folder in runs.items() for p in folder.rglob("*") if p.is_file()]
    files.append(("log", log))
    assert any(p.name == "trajectories.csv" for _, p in files)
    for run, p in files:
        data = p.read_bytes()
        if p.suffix == ".sqlite":
            con = sqlite3.connect(p)
            data += "\n".join(con.iterdump()).encode()
            con.close()
        for word in words + ([] if run.startswith("shift") else iso_dates):
            assert word.encode() not in data, (word, run, p.name)
    real = truth.visits.set_index("exam_id")["exam_date"]
    for run in ("shift", "shift_b"):
        exams = pd.read_csv(runs[run] / "exams.csv", dtype=str).set_index("exam_id")
        assert (exams["exam_date"].str.len() == 10).all()
        assert (exams["exam_date"] != real[exams.index]).all()
