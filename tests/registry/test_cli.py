"""``ncsproc registry push|pull|export|dictionary|migrate`` (through add_registry_parser)."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from ncsproc import registry
from ncsproc.privacy import KEY_ENV
from ncsproc.registry.cli import add_registry_parser

from .conftest import KEY


def run(argv):
    parser = argparse.ArgumentParser(prog="ncsproc")
    sub = parser.add_subparsers(dest="command")
    add_registry_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "centre.key"
    path.write_text(KEY + "\n")
    return path


def test_push_needs_a_key_and_then_is_idempotent(cohort, tmp_path, key_file, capsys, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    db = f"sqlite:///{tmp_path / 'reg.db'}"
    assert run(["registry", "push", str(cohort / "dir"), "--db", db, "--centre", "NL-AMC"]) == 2
    err = capsys.readouterr().err
    assert "refuses to run without" in err and not (tmp_path / "reg.db").exists()

    argv = [
        "registry",
        "push",
        str(cohort / "dir"),
        "--db",
        db,
        "--centre",
        "NL-AMC",
        "--key-file",
        str(key_file),
    ]
    assert run(argv) == 0
    out = capsys.readouterr()
    assert "3 inserted" in out.out and "schema migrated to version 2" in out.err
    assert run(argv) == 0
    assert "0 inserted, 0 updated, 3 unchanged" in capsys.readouterr().out
    monkeypatch.setenv(KEY_ENV, KEY)  # the environment works as well as the file
    assert run(argv[:-2]) == 0
    assert "3 unchanged" in capsys.readouterr().out
    assert KEY not in (tmp_path / "reg.db").read_bytes().decode("latin-1")


def test_pull_export_and_dictionary(cohort, tmp_path, key_file, capsys):
    db = f"sqlite:///{tmp_path / 'reg.db'}"
    common = ["--centre", "NL-AMC", "--key-file", str(key_file)]
    assert run(["registry", "push", str(cohort / "dir"), "--db", db, *common]) == 0
    assert (
        run(
            [
                "registry",
                "pull",
                "--db",
                db,
                "--out",
                str(tmp_path / "p.csv"),
                "--out",
                str(tmp_path / "p.parquet"),
            ]
        )
        == 0
    )
    assert (
        run(["registry", "export", str(cohort / "dir"), "--out", str(tmp_path / "e.csv"), *common])
        == 0
    )
    assert (tmp_path / "p.csv").read_bytes() == (tmp_path / "e.csv").read_bytes()
    pd.testing.assert_frame_equal(registry.read_wide(tmp_path / "p.parquet"), registry.pull(db))
    capsys.readouterr()
    assert run(["registry", "pull", "--db", db]) == 0
    assert capsys.readouterr().out == (tmp_path / "p.csv").read_text(encoding="utf-8")
    assert run(["registry", "dictionary", "--out", str(tmp_path / "dict")]) == 0
    doc = json.loads((tmp_path / "dict" / "registry_dictionary.json").read_text())
    assert doc["n_variables"] == 228 and "228 variables" in capsys.readouterr().out
    assert run(["registry", "migrate", "--db", db]) == 0
    assert "nothing to do; schema version 2" in capsys.readouterr().out


def test_refused_exams_give_status_1_and_are_named(cohort, tmp_path, key_file, capsys):
    d = shutil.copytree(cohort / "dir", tmp_path / "dir")
    exams = pd.read_csv(d / "exams.csv", dtype=str, keep_default_na=False)
    exams.loc[exams["exam_id"] == "EX0002", "pattern"] = "nonsense"
    exams.to_csv(d / "exams.csv", index=False, lineterminator="\n")
    common = ["--centre", "NL-AMC", "--key-file", str(key_file)]
    assert run(["registry", "export", str(d), "--out", str(tmp_path / "e.csv"), *common]) == 1
    err = capsys.readouterr().err
    assert "exam 'EX0002'" in err and "nonsense" in err
    assert len(registry.read_wide(tmp_path / "e.csv")) == 2
    assert run(["registry", "push", str(d), "--db", f"sqlite:///{tmp_path / 'r.db'}", *common]) == 1


def test_errors_are_messages_not_tracebacks(tmp_path, key_file, capsys):
    assert run(["registry", "pull", "--db", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "no such SQLite file" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()
    assert run(["registry", "pull", "--db", "mysql://u:secret@host/db"]) == 2
    err = capsys.readouterr().err
    assert "only SQLite and PostgreSQL" in err and "secret" not in err
    bad = tmp_path / "weak.key"
    bad.write_text("abc\n")
    assert (
        run(
            [
                "registry",
                "export",
                str(tmp_path),
                "--out",
                str(tmp_path / "x.csv"),
                "--centre",
                "X",
                "--key-file",
                str(bad),
            ]
        )
        == 2
    )
    assert "at least 16" in capsys.readouterr().err
    assert run(["registry"]) == 2


def test_the_parser_stays_light():
    code = (
        "import sys, ncsproc.registry.cli;"
        "print(sorted(m for m in ('pandas', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
