"""The registry database, on real SQLite and PostgreSQL: push, pull, idempotence, atomicity per
exam, migrations, hostile strings."""

from __future__ import annotations

import csv
import json
import shutil

import pandas as pd
import pytest
import sqlalchemy as sa

from ncsproc import registry
from ncsproc.registry.db import EXAM_TABLE, MIGRATIONS_TABLE, SOURCE_TABLE, connect

CENTRE = "NL-AMC"


def _snapshot(url: str) -> dict[str, list[tuple]]:
    """Every row of every registry table (time stamps included), in a stable order."""
    engine = connect(url)
    try:
        with engine.connect() as conn:
            out = {}
            for name in (EXAM_TABLE, SOURCE_TABLE, MIGRATIONS_TABLE):
                rows = conn.execute(sa.text(f"SELECT * FROM {name}")).all()
                out[name] = sorted((tuple(r) for r in rows), key=repr)
            return out
    finally:
        engine.dispose()


def _count(url: str, sql: str, **params) -> int:
    engine = connect(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar_one()
    finally:
        engine.dispose()


def test_push_then_pull_gives_the_wide_table(cohort, db_url, key):
    wide = registry.build_table(cohort / "dir", centre=CENTRE, pseudonymizer=key)
    report = registry.push(cohort / "dir", db_url, pseudonymizer=key, centre=CENTRE)
    assert report.ok, report.failed
    assert sorted(report.inserted) == sorted(wide.table["exam_id"]) and len(report.inserted) == 3
    assert report.migrations == [1, 2]
    back = registry.pull(db_url)
    pd.testing.assert_frame_equal(back, wide.table)
    # every exam's source files are in the child table
    for row in back.itertuples():
        n = _count(
            db_url,
            f"SELECT count(*) FROM {SOURCE_TABLE} s JOIN {EXAM_TABLE} e ON s.exam_pk = e.pk "
            "WHERE e.exam_id = :exam",
            exam=row.exam_id,
        )
        assert n == row.n_source_files == len(json.loads(row.source_sha256))


def test_reimport_changes_nothing(cohort, db_url, key):
    registry.push(cohort / "dir", db_url, pseudonymizer=key, centre=CENTRE)
    before = _snapshot(db_url)
    report = registry.push(cohort / "dir", db_url, pseudonymizer=key, centre=CENTRE)
    assert report.ok and not report.inserted and not report.updated and not report.migrations
    assert len(report.unchanged) == 3
    assert _snapshot(db_url) == before  # not even a time stamp moved


def test_changed_values_update_the_exam_in_place(cohort, db_url, key, tmp_path):
    registry.push(cohort / "dir", db_url, pseudonymizer=key, centre=CENTRE)
    before = registry.pull(db_url, meta=True)
    changed = shutil.copytree(cohort / "dir", tmp_path / "dir")
    exams = pd.read_csv(changed / "exams.csv", dtype=str, keep_default_na=False)
    target = exams["exam_id"].iloc[0]
    exams.loc[0, "pattern"] = "not_classifiable"
    exams.to_csv(changed / "exams.csv", index=False, lineterminator="\n")
    report = registry.push(changed, db_url, pseudonymizer=key, centre=CENTRE)
    assert report.updated == [target] and len(report.unchanged) == 2 and not report.inserted
    after = registry.pull(db_url, meta=True)
    assert len(after) == 3  # upsert: no second row for the exam
    row = after.set_index("exam_id").loc[target]
    old = before.set_index("exam_id").loc[target]
    assert row["pattern"] == "not_classifiable"
    assert row["imported_at"] == old["imported_at"] and row["updated_at"] > old["updated_at"]
    assert row["record_sha256"] != old["record_sha256"]
    n = _count(db_url, f"SELECT count(*) FROM {SOURCE_TABLE}")
    assert n == int(after["n_source_files"].sum())  # sources replaced, not duplicated


def _install_failure(url: str, digest: str) -> None:
    """A trigger that makes the database itself refuse one source row (a failure in the
    middle of an exam's transaction: its ncs_exam row and earlier source rows are written)."""
    engine = connect(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(
                    f"CREATE TRIGGER fail_one BEFORE INSERT ON {SOURCE_TABLE} "
                    f"WHEN NEW.sha256 = '{digest}' "
                    "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                )
            else:
                conn.exec_driver_sql(
                    "CREATE FUNCTION fail_one() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.sha256 = '{digest}' THEN RAISE EXCEPTION 'injected failure'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
                conn.exec_driver_sql(
                    f"CREATE TRIGGER fail_one BEFORE INSERT ON {SOURCE_TABLE} "
                    "FOR EACH ROW EXECUTE FUNCTION fail_one()"
                )
    finally:
        engine.dispose()


def _remove_failure(url: str) -> None:
    engine = connect(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "DROP TRIGGER fail_one"
                + ("" if conn.dialect.name == "sqlite" else f" ON {SOURCE_TABLE}")
            )
    finally:
        engine.dispose()


def test_a_failure_in_the_middle_of_an_exam_leaves_no_partial_exam(cohort, db_url, key):
    wide = registry.build_table(cohort / "dir", centre=CENTRE, pseudonymizer=key)
    victim = wide.table.iloc[1]
    digests = json.loads(victim["source_sha256"])
    engine = connect(db_url)
    registry.migrate(engine)
    engine.dispose()
    _install_failure(db_url, digests[-1])  # the exam's last source row fails

    report = registry.push(cohort / "dir", db_url, pseudonymizer=key, centre=CENTRE)
    assert [e for e, _ in report.failed] == [victim["exam_id"]]
    assert (
        "injected failure" in report.failed[0][1] and "nothing was written" in report.failed[0][1]
    )
    assert len(report.inserted) == 2
    assert (
        _count(db_url, f"SELECT count(*) FROM {EXAM_TABLE} WHERE exam_id = :e", e=victim["exam_id"])
        == 0
    )
    assert _count(db_url, f"SELECT count(*) FROM {SOURCE_TABLE}") == sum(
        int(n)
        for e, n in zip(wide.table["exam_id"], wide.table["n_source_files"], strict=True)
        if e != victim["exam_id"]
    )

    _remove_failure(db_url)
    report = registry.push(cohort / "dir", db_url, pseudonymizer=key, centre=CENTRE)
    assert report.inserted == [victim["exam_id"]] and len(report.unchanged) == 2
    pd.testing.assert_frame_equal(registry.pull(db_url), wide.table)


def test_exam_under_another_subject_is_refused(cohort, db_url, key, tmp_path):
    registry.push(cohort / "dir", db_url, pseudonymizer=key, centre=CENTRE)
    other = shutil.copytree(cohort / "dir", tmp_path / "dir")
    exams = pd.read_csv(other / "exams.csv", dtype=str, keep_default_na=False)
    exams.loc[0, "subject_id"] = "local-17"  # e.g. a manifest id instead of the header's
    exams.to_csv(other / "exams.csv", index=False, lineterminator="\n")
    before = _snapshot(db_url)
    report = registry.push(other, db_url, pseudonymizer=key, centre=CENTRE)
    assert [e for e, _ in report.failed] == [exams.loc[0, "exam_id"]]
    assert "another subject pseudonym" in report.failed[0][1]
    assert _snapshot(db_url) == before


HOSTILE = [
    "Robert'); DROP TABLE ncs_exam;--",
    'x" OR "1"="1',
    "<script>alert('pwned')</script>",
    "O\\'Brien; DELETE FROM ncs_exam_source WHERE 1=1; --",
    "caf\u00e9 \u202eevil\u202c \U0001f9e0 %s %(x)s {x} ?",
]


def test_hostile_strings_are_stored_as_data(cohort, db_url, key, tmp_path):
    hostile = shutil.copytree(cohort / "dir", tmp_path / "dir")
    exams = pd.read_csv(hostile / "exams.csv", dtype=str, keep_default_na=False)
    nerves = pd.read_csv(hostile / "nerves.csv", dtype=str, keep_default_na=False)
    prov = json.loads((hostile / "provenance.json").read_text(encoding="utf-8"))
    renames = dict(zip(exams["exam_id"], HOSTILE[:3], strict=True))
    exams["exam_id"] = exams["exam_id"].map(renames)
    nerves["exam_id"] = nerves["exam_id"].map(renames)
    exams["pattern_rule"] = HOSTILE[3]
    exams["rules_version"] = HOSTILE[4]
    for s in prov["sources"]:
        s["exam_id"] = renames[s["exam_id"]]
    exams.to_csv(hostile / "exams.csv", index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    nerves.to_csv(hostile / "nerves.csv", index=False, lineterminator="\n")
    (hostile / "provenance.json").write_text(json.dumps(prov), encoding="utf-8")

    report = registry.push(hostile, db_url, pseudonymizer=key, centre=CENTRE)
    assert report.ok and len(report.inserted) == 3, report.failed
    back = registry.pull(db_url)
    assert sorted(back["exam_id"]) == sorted(HOSTILE[:3])
    assert set(back["pattern_rule"]) == {HOSTILE[3]} and set(back["rules_version"]) == {HOSTILE[4]}
    assert _count(db_url, f"SELECT count(*) FROM {SOURCE_TABLE}") == int(
        back["n_source_files"].sum()
    )
    # the same through the files
    out = tmp_path / "wide.csv"
    registry.export(hostile, [out, tmp_path / "wide.parquet"], pseudonymizer=key, centre=CENTRE)
    pd.testing.assert_frame_equal(registry.read_wide(out), back)
    pd.testing.assert_frame_equal(registry.read_wide(tmp_path / "wide.parquet"), back)


def test_nul_characters_are_refused_per_exam_on_both_databases(cohort, db_url, key, tmp_path):
    bad = shutil.copytree(cohort / "dir", tmp_path / "dir")
    exams = pd.read_csv(bad / "exams.csv", dtype=str, keep_default_na=False)
    exams.loc[1, "pattern_rule"] = "a\x00b"
    exams.to_csv(bad / "exams.csv", index=False, lineterminator="\n")
    report = registry.push(bad, db_url, pseudonymizer=key, centre=CENTRE)
    assert [e for e, _ in report.failed] == [exams.loc[1, "exam_id"]]
    assert "NUL" in report.failed[0][1]
    assert len(report.inserted) == 2


def test_database_refuses_values_outside_the_declarations(cohort, db_url, key):
    """The schema itself (CHECK, NOT NULL, UNIQUE) guards the table too, not only the code."""
    registry.push(cohort / "dir", db_url, pseudonymizer=key, centre=CENTRE)
    engine = connect(db_url)
    try:
        for sql in (
            f"UPDATE {EXAM_TABLE} SET pattern = 'made_up'",
            f"UPDATE {EXAM_TABLE} SET subject_pseudonym = NULL",
            f"UPDATE {SOURCE_TABLE} SET sha256 = 'short'",
            f"UPDATE {EXAM_TABLE} SET exam_id = 'same', subject_pseudonym = 'same'",
        ):
            with pytest.raises(sa.exc.IntegrityError):
                with engine.begin() as conn:
                    conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def test_migrations_are_versioned_and_checked(cohort, db_url, key, tmp_path):
    from ncsproc.registry import list_migrations, load_variables

    engine = connect(db_url)
    try:
        assert registry.schema_version(engine) == 0
        assert registry.migrate(engine) == [1, 2]
        assert registry.migrate(engine) == []
        assert registry.schema_version(engine) == 2
        cols = {c["name"] for c in sa.inspect(engine).get_columns(EXAM_TABLE)}
        assert set(load_variables().names) <= cols
        row = _snapshot(db_url)[MIGRATIONS_TABLE][0]
        assert row[0] == 1 and row[2] == list_migrations()[0].checksum

        # a database from a newer ncsproc is not written into (it is still read: the columns
        # this ncsproc knows are there)
        registry.push(cohort / "dir", db_url, pseudonymizer=key, centre=CENTRE)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"INSERT INTO {MIGRATIONS_TABLE} "
                "(version, name, checksum, ncsproc_version, applied_at) "
                "VALUES (99, 'future', 'x', '9.9', 'now')"
            )
        before = _snapshot(db_url)
        with pytest.raises(registry.RegistryError, match="newer than this ncsproc"):
            registry.migrate(engine)
        with pytest.raises(registry.RegistryError, match="newer than this ncsproc"):
            registry.push(cohort / "dir", db_url, pseudonymizer=key, centre="BE-GENT")
        assert _snapshot(db_url) == before
        assert len(registry.pull(db_url)) == 3

        # a database whose version 1 was built from other declarations is refused
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"UPDATE {MIGRATIONS_TABLE} SET checksum = 'other' WHERE version = 1"
            )
            conn.exec_driver_sql(f"DELETE FROM {MIGRATIONS_TABLE} WHERE version = 99")
        with pytest.raises(registry.RegistryError, match="other variable declarations"):
            registry.pull(db_url)
    finally:
        engine.dispose()


def test_a_new_variable_arrives_by_migration_and_keeps_the_data(cohort, db_url, key, tmp_path):
    """Schema version 3 (a variable declared since = 3) is added to a version-2 database."""
    from ncsproc.features._files import data_path

    registry.push(cohort / "dir", db_url, pseudonymizer=key, centre=CENTRE)
    before = registry.pull(db_url)
    text = data_path("registry", "variables.toml").read_text(encoding="utf-8")
    text = text.replace("schema_version = 2", "schema_version = 3")
    text += (
        '\n[[variable]]\nname = "n_segments_note"\nform = "exam"\nlabel = "test variable"\n'
        'type = "text"\nsource = "exams.pattern"\nsince = 3\n'
    )
    path = tmp_path / "variables.toml"
    path.write_text(text, encoding="utf-8")
    v2 = registry.load_variables(path)
    assert [m.version for m in registry.list_migrations(v2)] == [1, 2, 3]
    with pytest.raises(registry.RegistryError, match="registry migrate"):
        registry.pull(db_url, variables=v2)  # pending migration: said, not guessed
    report = registry.push(cohort / "dir", db_url, pseudonymizer=key, centre=CENTRE, variables=v2)
    assert report.migrations == [3] and report.ok
    assert len(report.updated) == 3  # the new column's values were filled in
    after = registry.pull(db_url, variables=v2)
    pd.testing.assert_frame_equal(after[before.columns], before)
    assert list(after["n_segments_note"]) == list(after["pattern"])
    # the old declarations still read it (without the new column), but do not write into it
    pd.testing.assert_frame_equal(registry.pull(db_url), before)
    with pytest.raises(registry.RegistryError, match="newer than this ncsproc"):
        registry.push(cohort / "dir", db_url, pseudonymizer=key, centre=CENTRE)


def test_pull_filters_by_centre_and_refuses_an_empty_database(cohort, db_url, key):
    with pytest.raises(registry.RegistryError, match="no ncsproc registry|no such SQLite file"):
        registry.pull(db_url)
    engine = connect(db_url)
    registry.migrate(engine)  # an empty registry pulls as an empty table
    engine.dispose()
    assert registry.pull(db_url).empty
    registry.push(cohort / "dir", db_url, pseudonymizer=key, centre=CENTRE)
    registry.push(cohort / "dir", db_url, pseudonymizer=key, centre="BE-GENT")
    both = registry.pull(db_url)
    assert len(both) == 6 and list(both["centre"]) == ["BE-GENT"] * 3 + [CENTRE] * 3
    assert len(registry.pull(db_url, centre="BE-GENT")) == 3


HOSTILE_EXAM = 'EX\'; DROP TABLE ncs_exam; --<script>alert("x")</script> caf\u00e9 \u202e'


@pytest.fixture(scope="module")
def hostile_cohort(tmp_path_factory):
    """Exam folders whose file metadata is hostile: a sidecar exam id with quotes, SQL and HTML;
    EDF+ patient fields with quotes, SQL, HTML and non-UTF-8 bytes; DICOM text attributes with
    the same. Extracted with the centre key."""
    import pydicom

    from ncsproc.privacy import Pseudonymizer

    from .builder import extract_like, identified_cohort
    from .conftest import KEY

    root = tmp_path_factory.mktemp("hostile")
    folders = identified_cohort(
        root / "in", patterns=("normal", "axonal"), seed=11, dicom_exams=(1,)
    )
    for edf in folders[0].glob("*.edf"):
        raw = bytearray(edf.read_bytes())
        raw[8:88] = (
            b"MCH-0234567 F 02-MAY-1951 O'Brien\xff\xfe;DROP_TABLE_ncs_exam;--<b>\xe9</b>".ljust(80)
        )
        edf.write_bytes(bytes(raw))
        side = edf.with_name(edf.name + ".json")
        data = json.loads(side.read_text(encoding="utf-8"))
        data["exam_id"] = HOSTILE_EXAM
        side.write_text(json.dumps(data), encoding="utf-8")
    dcm = folders[1] / "exam.dcm"
    ds = pydicom.dcmread(dcm)
    ds.InstitutionName = "<img src=x onerror=alert(1)>'; DROP TABLE ncs_exam_source; --"
    ds.StudyDescription = 'Robert"); DELETE FROM ncs_exam; --'
    ds.PatientName = "O'Brien^<b>Harry</b>"
    ds.save_as(dcm, enforce_file_format=True)
    extract_like(root / "in", root / "dir", pseudonymizer=Pseudonymizer(KEY))
    return root


def test_hostile_file_metadata_is_data_end_to_end(hostile_cohort, db_url, key):
    report = registry.push(hostile_cohort / "dir", db_url, pseudonymizer=key, centre=CENTRE)
    assert report.ok and len(report.inserted) == 2, report.failed
    back = registry.pull(db_url)
    assert sorted(back["exam_id"]) == sorted(["EX0002", HOSTILE_EXAM])
    assert set(back["subject_pseudonym"]) == {
        key.pseudonym("MCH-0234567"),
        key.pseudonym("NL-778812"),
    }
    assert _count(db_url, f"SELECT count(*) FROM {SOURCE_TABLE}") == int(
        back["n_source_files"].sum()
    )
    engine = connect(db_url)
    try:
        from ncsproc.registry.db import dump_text

        text = "\n".join(dump_text(engine))
    finally:
        engine.dispose()
    for dropped in ("O'Brien", "onerror", "DELETE FROM", "Harry", "\ufffd"):
        assert dropped not in text
    assert HOSTILE_EXAM in text
    again = registry.push(hostile_cohort / "dir", db_url, pseudonymizer=key, centre=CENTRE)
    assert len(again.unchanged) == 2
