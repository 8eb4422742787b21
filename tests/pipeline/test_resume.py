"""Resumable and idempotent: a run killed with SIGKILL resumes without duplicates and ends
with the tables of an uninterrupted run; a rerun recomputes and rewrites nothing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest

from .helpers import table_files


def _done_rows(catalog) -> int:
    if not catalog.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM exams").fetchone()[0])
    except sqlite3.Error:
        return 0


def _kill_mid_run(cohort, out, total: int) -> int:
    """Start a CLI run, SIGKILL it once some but not all exams are committed."""
    catalog = out / ".ncsproc" / "catalog.sqlite"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ncsproc.pipeline",
            "extract",
            str(cohort),
            "--out",
            str(out),
            "--scheduler",
            "synchronous",
            "--batch-size",
            "1",
            "-q",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            n = _done_rows(catalog)
            if 2 <= n < total - 1:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                return n
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    return -1


def test_killed_run_resumes_to_the_same_tables(cohort, reference_run, tmp_path):
    from ncsproc.pipeline import extract

    ref_out, ref = reference_run
    total = 8  # 8 exams (the truth tables at the cohort's root are skipped: not an exam)
    for attempt in range(3):
        out = tmp_path / f"out{attempt}"
        committed = _kill_mid_run(cohort, out, total)
        if committed > 0:
            break
    assert committed > 0, "the run finished before it could be killed"
    assert not (out / "responses.csv").exists()  # outputs come at the end, all or nothing
    result = extract([cohort], out, scheduler="threads", workers=2)
    assert result.exit_status == 0
    assert result.n_cached + result.n_computed == 8 and result.n_cached >= committed - 1
    got, expected = table_files(out), table_files(ref_out)
    assert got == expected
    responses = pd.read_csv(out / "responses.csv")
    assert not responses.duplicated(["exam_id", "source_file", "record"]).any()
    assert len(responses) == ref.n_traces
    assert not pd.read_csv(out / "exams.csv")["exam_id"].duplicated().any()
    assert not list(out.glob(".*.tmp")) and not list((out / ".ncsproc").rglob(".*.tmp"))
    with sqlite3.connect(out / ".ncsproc" / "catalog.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM exams").fetchone()[0] == total
        statuses = [r[0] for r in db.execute("SELECT status FROM runs ORDER BY run_id")]
    assert statuses == ["interrupted", "finished"]


def test_rerun_is_a_no_op(cohort, tmp_path):
    from ncsproc.pipeline import extract

    out = tmp_path / "out"
    first = extract([cohort], out, scheduler="synchronous")
    assert first.n_computed == 8 and first.outputs_written
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir() if p.is_file()}
    second = extract([cohort], out, scheduler="threads")
    assert second.n_computed == 0 and second.n_cached == 8 and not second.outputs_written
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir() if p.is_file()}
    assert after == before
    # other settings: nothing of the cache is reused, and the tables change accordingly
    third = extract(
        [cohort], out, scheduler="synchronous", config="pipelines/lab-example.toml", parquet=False
    )
    assert third.n_computed == 8 and third.n_cached == 0
    exams = pd.read_csv(out / "exams.csv")
    assert set(exams["limits_version"]) == {"lab-example@2026.1"}
    assert not list(out.glob("*.parquet"))  # no stale copies of other settings' tables
    # back to the defaults: served from the cache again, same bytes as the first run
    fourth = extract([cohort], out, scheduler="synchronous")
    assert fourth.n_computed == 0 and fourth.outputs_written
    assert {n: b for n, (b, _) in before.items()} == {
        p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "cohort.h5"
    } | {"cohort.h5": before["cohort.h5"][0]}


def test_one_run_at_a_time_per_output_folder(cohort, tmp_path):
    from ncsproc.pipeline import UsageError, extract
    from ncsproc.pipeline.extract import _DirLock

    out = tmp_path / "out"
    (out / ".ncsproc").mkdir(parents=True)
    with _DirLock(out / ".ncsproc" / "lock"):
        with pytest.raises(UsageError, match="another ncsproc extract"):
            extract([cohort / "EX0001"], out, scheduler="synchronous")
    assert extract([cohort / "EX0001"], out, scheduler="synchronous").exit_status == 0


def test_a_changed_file_is_recomputed(copy_exams, tmp_path):
    from ncsproc.pipeline import extract

    src = copy_exams(["EX0001", "EX0002"])
    out = tmp_path / "out"
    assert extract([src], out, scheduler="synchronous").n_computed == 2
    side = src / "EX0002" / "L_median_motor.edf.json"
    doc = json.loads(side.read_text())
    doc["height"] = 171.5
    side.write_text(json.dumps(doc))
    again = extract([src], out, scheduler="synchronous")
    assert (again.n_computed, again.n_cached) == (1, 1) and again.exit_status == 0
    nerves = pd.read_csv(out / "nerves.csv").set_index(["exam_id", "study"])
    assert nerves.loc[("EX0002", "L_median_motor"), "height_cm"] == 171.5
