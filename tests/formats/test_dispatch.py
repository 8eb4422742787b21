"""ncsproc.read: content before extension, and messages when nothing or the wrong thing fits."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys

import pytest
import xarray as xr

import ncsproc
from ncsproc.errors import FormatError, UnsupportedFormatError
from ncsproc.formats import READERS, Reader, detect, read


def test_content_wins_over_the_extension(tmp_path):
    edf = READERS["edf+d"].example(tmp_path)
    disguised = tmp_path / "export.dat"
    shutil.copy(edf, disguised)
    accepted, _ = detect(disguised)
    assert accepted[0].name == "edf+d"
    assert read(disguised).sizes["trace"] == 2


def test_text_named_like_edf_goes_to_the_text_reader(tmp_path):
    csv = READERS["text"].example(tmp_path)
    renamed = tmp_path / "looks_like.edf"
    shutil.copy(csv, renamed)
    shutil.copy(csv.with_name(csv.name + ".json"), renamed.with_name(renamed.name + ".json"))
    assert read(renamed).attrs["source_format"] == "text"


def test_unrecognised_file_lists_every_reader_and_its_reason(tmp_path):
    path = tmp_path / "mystery.bin"
    path.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(UnsupportedFormatError) as info:
        read(path)
    msg = str(info.value)
    assert msg.startswith("mystery.bin: no reader recognises this file. Tried: ")
    for name in READERS:
        assert f"{name}: " in msg
    assert "no EDF ('0       ') or BDF" in msg and "no HDF5 signature at byte 0" in msg


def test_unknown_format_name(tmp_path):
    path = READERS["edf+d"].example(tmp_path)
    with pytest.raises(
        UnsupportedFormatError, match=r"unknown format 'edf\+x'; registered formats: \["
    ):
        read(path, format="edf+x")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothere\.edf: no such file"):
        read(tmp_path / "nothere.edf")


@pytest.fixture
def results_reader(monkeypatch):
    def sniff(path):
        return None if path.read_bytes().startswith(b"RESULTS") else "no RESULTS marker"

    reader = Reader(
        name="fake-results",
        description="made-up results table",
        extensions=(".res",),
        sniff=sniff,
        load=lambda path: xr.Dataset(),
        example=lambda folder: folder,
        kind="results",
        function="ncsproc.read_fake",
    )
    monkeypatch.setitem(READERS, reader.name, reader)
    return reader


def test_results_file_names_its_function(tmp_path, results_reader):
    path = tmp_path / "x.res"
    path.write_bytes(b"RESULTS 1 2 3")
    with pytest.raises(
        UnsupportedFormatError,
        match=r"^x\.res holds made-up results table, not recorded traces, so ncsproc\.read cannot "
        r"make a trace set of it \(nor can ncsproc plot, info or measure\): read it in Python "
        r"with ncsproc\.read_fake\(path\)$",
    ):
        read(path)
    with pytest.raises(UnsupportedFormatError, match=r"ncsproc\.read_fake"):
        read(path, format="fake-results")


def test_default_function_name_comes_from_the_module():
    reader = dataclasses.replace(READERS["text"], function=None)
    assert reader.function_name == "ncsproc.read_text"


def test_when_the_first_reader_fails_the_next_is_tried(tmp_path, monkeypatch):
    path = READERS["edf+d"].example(tmp_path)

    def broken(p):
        raise FormatError(f"{p.name}: pretend damage")

    first = dataclasses.replace(READERS["edf+d"], name="zz-broken", load=broken)
    monkeypatch.setitem(READERS, "zz-broken", first)
    ds = read(path)  # edf+d comes first in the registry and succeeds
    assert ds.sizes["trace"] == 2
    monkeypatch.setitem(READERS, "edf+d", dataclasses.replace(READERS["edf+d"], load=broken))
    with pytest.raises(
        FormatError,
        match=(
            r"MNC_R_median\.edf: recognised by 2 readers, and each failed: edf\+d: .*pretend "
            r"damage \| zz-broken: .*pretend damage"
        ),
    ):
        read(path)


def test_a_sniffer_that_raises_counts_as_a_refusal(tmp_path, monkeypatch):
    def bad(path):
        raise RuntimeError("boom")

    monkeypatch.setitem(
        READERS, "zz-bad", dataclasses.replace(READERS["text"], name="zz-bad", sniff=bad)
    )
    accepted, reasons = detect(READERS["edf+d"].example(tmp_path))
    assert "zz-bad: sniff failed (RuntimeError: boom)" in reasons


def test_cli_lists_every_format():
    out = subprocess.run(
        [sys.executable, "-m", "ncsproc.cli", "formats"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    listed = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
    assert listed == list(READERS)
    # a results-only format says so and names the function that reads it
    (qtrac,) = [line for line in out.stdout.splitlines() if line.startswith("qtrac ")]
    assert "results, not traces" in qtrac and "ncsproc.read_qtrac(path)" in qtrac


def test_public_api():
    assert ncsproc.read is read
    assert callable(ncsproc.write_edf)
