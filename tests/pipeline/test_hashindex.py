"""The hash index: a rerun stats unchanged files instead of reading them, and never trusts a
file whose size, time stamp or inode changed."""

from __future__ import annotations

import hashlib
import os

from ncsproc.pipeline.hashindex import HashIndex


def _old(path, seconds=10):
    """Date a file back, so that the index may remember it (not modified just now)."""
    t = path.stat().st_mtime_ns - seconds * 1_000_000_000
    os.utime(path, ns=(t, t))


def test_unchanged_files_are_not_read_again_and_changed_ones_are(tmp_path):
    a, b = tmp_path / "a.edf", tmp_path / "b.edf"
    a.write_bytes(b"first file")
    b.write_bytes(b"second file")
    _old(a), _old(b)
    first = HashIndex(tmp_path / "index.json")
    assert first.sha256(str(a)) == hashlib.sha256(b"first file").hexdigest()
    first.sha256(str(b))
    assert first.n_hashed == 2
    first.save()

    b.write_bytes(b"second FILE")  # same size, new content (and a new time stamp)
    again = HashIndex(tmp_path / "index.json")
    assert again.sha256(str(a)) == hashlib.sha256(b"first file").hexdigest()
    assert again.sha256(str(b)) == hashlib.sha256(b"second FILE").hexdigest()
    assert again.n_hashed == 1  # only the changed file was read


def test_a_file_modified_just_now_is_hashed_again_next_time(tmp_path):
    a = tmp_path / "a.edf"
    a.write_bytes(b"fresh")
    index = HashIndex(tmp_path / "index.json")
    index.sha256(str(a))
    index.save()
    later = HashIndex(tmp_path / "index.json")
    later.sha256(str(a))
    assert later.n_hashed == 1


def test_a_foreign_or_broken_index_is_empty(tmp_path):
    a = tmp_path / "a.edf"
    a.write_bytes(b"x")
    (tmp_path / "index.json").write_text("{not json")
    index = HashIndex(tmp_path / "index.json")
    assert index.sha256(str(a)) == hashlib.sha256(b"x").hexdigest() and index.n_hashed == 1


def test_rerun_of_a_finished_cohort_reads_no_input_again(cohort, tmp_path, monkeypatch):
    from ncsproc.pipeline import extract, hashindex

    for f in cohort.rglob("*"):
        if f.is_file():
            _old(f, 60)
    out = tmp_path / "out"
    first = extract([cohort], out, scheduler="synchronous")
    read = []
    original = hashindex.file_sha256
    monkeypatch.setattr(hashindex, "file_sha256", lambda p: read.append(p) or original(p))
    again = extract([cohort], out, scheduler="synchronous")
    assert again.n_cached == first.n_computed == 8 and not again.outputs_written
    assert read == []  # inputs, parts and tables: stat only
