"""End to end: identifying headers in, nothing identifying out (files and database tables),
pseudonyms stable and key-dependent, no key no registry."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ncsproc import registry
from ncsproc.registry.db import connect, dump_text

from .builder import extract_like, identifying_strings
from .conftest import KEY

CENTRE = "NL-AMC"


def _texts_of_files(folder):
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix != ".parquet":
            yield str(path), path.read_bytes().decode("utf-8", errors="replace")


def _check(texts, forbidden):
    found = []
    for where, text in texts:
        low = text.lower()
        found += [(s, where) for s in forbidden if s.lower() in low]
    assert not found, found[:10]


def test_nothing_identifying_reaches_the_outputs_or_the_database(cohort, db_url, key, tmp_path):
    forbidden = identifying_strings() + [KEY]
    exact_dates = ["2024-03-02", "2023-07-15", "2024-11-11", "20240302", "20230715", "20241111"]

    # the extract folder (made with the key)
    _check(_texts_of_files(cohort / "dir"), forbidden)

    # the registry outputs
    out = tmp_path / "out"
    out.mkdir()
    report = registry.push(cohort / "dir", db_url, pseudonymizer=key, centre=CENTRE)
    assert report.ok and len(report.inserted) == 3
    wide = registry.export(
        cohort / "dir", [out / "wide.csv", out / "wide.parquet"], pseudonymizer=key, centre=CENTRE
    )
    registry.write_dictionary(out)
    registry.pull(db_url).to_csv(out / "pulled.csv", index=False)
    _check(_texts_of_files(out), forbidden + exact_dates)
    parquet = pd.read_parquet(out / "wide.parquet")
    _check(
        (("wide.parquet", str(v)) for v in parquet.astype(str).to_numpy().ravel()),
        forbidden + exact_dates,
    )
    if db_url.startswith("sqlite:///"):  # the database file itself, byte for byte
        raw = Path(db_url[len("sqlite:///") :]).read_bytes().decode("latin-1")
        _check([("registry.db", raw)], forbidden + exact_dates)
    engine = connect(db_url)
    try:
        _check((("table", t) for t in dump_text(engine)), forbidden + exact_dates)
    finally:
        engine.dispose()

    # what the registry does keep: pseudonyms, the age, the year
    t = wide.table.sort_values("exam_year").reset_index(drop=True)
    assert list(t["exam_year"]) == [2023, 2024, 2024]
    assert set(t["exam_date"]) == {"2023", "2024"} and set(t["date_precision"]) == {"year"}
    by_exam = wide.table.set_index("exam_id")
    assert by_exam.loc["EX0001", "age_years"] == 72  # born 02-MAY-1951, examined 02-MAR-2024
    assert by_exam.loc["EX0002", "age_years"] == 74  # born 17-NOV-1948, examined 15-JUL-2023
    # EX0001 (EDF+) and EX0003 (DICOM) are one patient: one pseudonym; EX0002 another
    assert by_exam.loc["EX0001", "subject_pseudonym"] == by_exam.loc["EX0003", "subject_pseudonym"]
    assert by_exam.loc["EX0001", "subject_pseudonym"] == key.pseudonym("MCH-0234567")
    assert by_exam.loc["EX0002", "subject_pseudonym"] == key.pseudonym("NL-778812")
    assert set(wide.table["pseudonym_key_id"]) == {key.key_id}


def test_pseudonyms_are_stable_across_runs_and_depend_on_the_key(cohort, key, other_key, tmp_path):
    again = extract_like(cohort / "in", tmp_path / "again", pseudonymizer=key, date_precision="day")
    for name in ("exams.csv", "nerves.csv", "provenance.json"):
        assert (again / name).read_bytes() == (cohort / "dir" / name).read_bytes()
    other = extract_like(
        cohort / "in", tmp_path / "other", pseudonymizer=other_key, date_precision="day"
    )
    mine = registry.build_table(cohort / "dir", centre=CENTRE, pseudonymizer=key).table
    theirs = registry.build_table(other, centre=CENTRE, pseudonymizer=other_key).table
    a = dict(zip(mine["exam_id"], mine["subject_pseudonym"], strict=True))
    b = dict(zip(theirs["exam_id"], theirs["subject_pseudonym"], strict=True))
    assert a.keys() == b.keys() and all(a[e] != b[e] for e in a)
    assert b["EX0001"] == b["EX0003"] == other_key.pseudonym("MCH-0234567")
    with pytest.raises(registry.RegistryError, match="another key"):
        registry.build_table(cohort / "dir", centre=CENTRE, pseudonymizer=other_key)


def test_without_a_key_extract_derives_nothing_and_the_registry_refuses(
    cohort, key, tmp_path, db_url
):
    plain = extract_like(cohort / "in", tmp_path / "plain", pseudonymizer=None)
    exams = pd.read_csv(plain / "exams.csv", dtype=str, keep_default_na=False)
    assert list(exams["subject_id"]) == list(exams["exam_id"])  # the exam folder's id
    _check(_texts_of_files(plain), identifying_strings())
    with pytest.raises(registry.RegistryError, match="refuses to run without"):
        registry.build_table(plain, centre=CENTRE, pseudonymizer=None)
    with pytest.raises(registry.RegistryError, match="refuses to run without"):
        registry.push(plain, db_url, pseudonymizer=None, centre=CENTRE)
    engine = connect(db_url)
    try:
        assert registry.schema_version(engine) == 0  # nothing was created
    finally:
        engine.dispose()
    # with the key, a local subject id is pseudonymised at the registry boundary
    t = registry.build_table(plain, centre=CENTRE, pseudonymizer=key).table
    assert list(t["subject_pseudonym"]) == [key.pseudonym(e) for e in t["exam_id"]]
