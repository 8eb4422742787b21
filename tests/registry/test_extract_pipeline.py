"""The real ``ncsproc extract`` with a centre key, then the registry: pseudonyms end to end."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest

from ncsproc.pipeline.extract import extract
from ncsproc.privacy import Pseudonymizer
from ncsproc.registry import pull, push

from .builder import PATIENTS, identified_cohort, identifying_strings

KEY = "centre-secret-for-tests-0123456789"


def _drop_sidecar_subject_ids(folders):
    """Let the key derive the subject id: sidecars that name one take precedence."""
    for folder in folders:
        for sidecar in folder.glob("*.json"):
            data = json.loads(sidecar.read_text())
            data.pop("subject_id", None)
            sidecar.write_text(json.dumps(data, indent=1))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("exams")
    # exams 0 and 2 are the same patient, exam 1 another one
    folders = identified_cohort(
        root,
        patients=[PATIENTS[0], PATIENTS[1], PATIENTS[0]],
        dates=["02-MAR-2024", "15-JUN-2023", "11-JAN-2025"],
    )
    _drop_sidecar_subject_ids(folders)
    return root


def _every_byte(folder):
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_extract_with_a_key_writes_pseudonyms_and_nothing_identifying(cohort, tmp_path):
    out = tmp_path / "out"
    result = extract([cohort], out, scheduler="synchronous", pseudonymizer=Pseudonymizer(KEY))
    assert result.exit_status == 0
    exams = pd.read_csv(out / "exams.csv", dtype=str, keep_default_na=False)
    ids = dict(zip(exams["exam_id"], exams["subject_id"], strict=True))
    expected = Pseudonymizer(KEY).pseudonym(PATIENTS[0].code)
    assert ids["EX0001"] == ids["EX0003"] == expected
    assert ids["EX0002"] == Pseudonymizer(KEY).pseudonym(PATIENTS[1].code) != expected
    assert list(exams["exam_date"]) == ["2024", "2023", "2025"]
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["pseudonym_key_id"] == Pseudonymizer(KEY).key_id
    assert len(provenance["sources"]) == sum(1 for _ in cohort.rglob("*.edf"))
    blob = _every_byte(out)
    for secret in [*identifying_strings(), KEY]:
        assert secret.encode() not in blob, secret

    db = tmp_path / "registry.db"
    report = push(out, f"sqlite:///{db}", pseudonymizer=Pseudonymizer(KEY), centre="TEST")
    assert report.ok and len(report.inserted) == 3, report.summary()
    table = pull(f"sqlite:///{db}")
    assert len(table) == 3 and set(table["subject_pseudonym"]) >= {expected}
    again = push(out, f"sqlite:///{db}", pseudonymizer=Pseudonymizer(KEY), centre="TEST")
    assert again.ok and len(again.unchanged) == 3, again.summary()
    assert len(pull(f"sqlite:///{db}")) == 3
    with sqlite3.connect(db) as con:
        dump = "\n".join(con.iterdump()).encode()
    for secret in [*identifying_strings(), KEY]:
        assert secret.encode() not in dump, secret


def test_another_key_gives_other_pseudonyms_and_is_not_served_from_the_cache(cohort, tmp_path):
    out = tmp_path / "out"
    extract([cohort], out, scheduler="synchronous", pseudonymizer=Pseudonymizer(KEY))
    first = pd.read_csv(out / "exams.csv", dtype=str)["subject_id"].tolist()
    other = "another-centre-secret-987654321"
    extract([cohort], out, scheduler="synchronous", pseudonymizer=Pseudonymizer(other))
    second = pd.read_csv(out / "exams.csv", dtype=str)["subject_id"].tolist()
    assert second == [
        Pseudonymizer(other).pseudonym(p.code) for p in (PATIENTS[0], PATIENTS[1], PATIENTS[0])
    ]
    assert not set(first) & set(second)


def test_without_a_key_subject_ids_are_the_exam_folder_ids(cohort, tmp_path):
    out = tmp_path / "out"
    extract([cohort], out, scheduler="synchronous")
    exams = pd.read_csv(out / "exams.csv", dtype=str)
    assert list(exams["subject_id"]) == list(exams["exam_id"]) == ["EX0001", "EX0002", "EX0003"]
    blob = _every_byte(out)
    for secret in identifying_strings():
        assert secret.encode() not in blob, secret
