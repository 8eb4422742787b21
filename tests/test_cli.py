"""The small subcommands: ``measure`` (the same rows as extract's), ``info``, ``simulate``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from ncsproc.cli import main

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples" / "simulated"


def test_measure_command_equals_extract_rows(tmp_path):
    exam = tmp_path / "EX0001"
    shutil.copytree(SAMPLES / "EX0001", exam)
    assert main(["measure", str(exam), "--out", str(tmp_path / "m")]) == 0
    assert (
        main(
            [
                "extract",
                str(tmp_path),
                "--out",
                str(tmp_path / "x"),
                "--scheduler",
                "synchronous",
                "--no-progress",
                "-q",
            ]
        )
        == 0
    )
    mine = pd.read_csv(tmp_path / "m" / "responses.csv", dtype=str, keep_default_na=False)
    theirs = pd.read_csv(tmp_path / "x" / "responses.csv", dtype=str, keep_default_na=False)
    assert list(mine.columns) == list(theirs.columns)
    assert {"trace_id", "qc_flags", "baseline_uv"} <= set(mine.columns)
    key = ["trace_id"]
    mine = mine.sort_values(key).reset_index(drop=True)
    theirs = theirs.sort_values(key).reset_index(drop=True)
    # source_file is relative to the folder given on each command line
    theirs["source_file"] = theirs["source_file"].str.removeprefix("EX0001/")
    pd.testing.assert_frame_equal(
        mine.drop(columns=["subject_id"]), theirs.drop(columns=["subject_id"])
    )
    assert (mine["status"] == "ok").any()


def test_measure_command_records_a_bad_file_and_goes_on(tmp_path):
    """Inside a folder only files a reader recognises are taken; a file named on the command
    line is always read, so a damaged one is reported (named) and the others are measured."""
    exam = tmp_path / "EX0001"
    shutil.copytree(SAMPLES / "EX0001", exam)
    broken = exam / "broken.edf"
    broken.write_bytes(b"0       " + b"x" * 100)
    assert main(["measure", str(exam), str(broken), "--out", str(tmp_path / "m")]) == 1
    errors = pd.read_csv(tmp_path / "m" / "errors.csv")
    assert list(errors["source_file"]) == ["broken.edf"]
    assert "broken.edf" in errors["message"][0]
    rows = pd.read_csv(tmp_path / "m" / "responses.csv")
    good = sorted(p.name for p in (SAMPLES / "EX0001").glob("*.edf"))
    assert sorted(rows["source_file"].unique()) == good


def test_info_summarises_every_file_with_its_trace_count(tmp_path, capsys):
    import ncsproc

    assert main(["info", str(SAMPLES / "EX0001")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    files = sorted((SAMPLES / "EX0001").glob("*.edf"))
    n = {f.name: ncsproc.read(f).sizes["trace"] for f in files}
    assert lines[0] == f"exam EX0001: {len(files)} file(s), {sum(n.values())} traces"
    assert len(lines) == 1 + len(files)
    for line, f in zip(lines[1:], files, strict=True):
        assert (
            line.startswith(f"  {f.name}: {n[f.name]} traces") and "valid ncsproc-traces/1" in line
        )


def test_simulate_writes_exams_that_read_back_with_their_truth(tmp_path):
    import ncsproc

    out = tmp_path / "sim"
    assert (
        main(
            [
                "simulate",
                "--out",
                str(out),
                "--patterns",
                "axonal",
                "--per-pattern",
                "2",
                "--seed",
                "5",
            ]
        )
        == 0
    )
    truth = pd.read_csv(out / "truth_traces.csv")
    exams = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(exams) == 2
    n = sum(ncsproc.read(f).sizes["trace"] for e in exams for f in e.glob("*.edf"))
    assert n == len(truth)
    assert set(pd.read_csv(out / "truth_exams.csv")["pattern"]) == {"axonal"}
