"""The shared conformance suite (ncsproc.testing), run on every registered reader's example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ncsproc.formats import READERS
from ncsproc.testing import CHECKS, checks_for

CASES = [(name, check) for name, reader in READERS.items() for check in checks_for(reader)]


@pytest.mark.parametrize("name, check", CASES, ids=[f"{n}-{c}" for n, c in CASES])
def test_reader_conforms(name, check, tmp_path):
    reader = READERS[name]
    path = reader.example(tmp_path)
    assert path.is_file() and path.parent == tmp_path
    CHECKS[check](reader, path, tmp_path)


def test_every_reader_is_covered():
    # the registry holds exactly the readers its documentation lists (an independent list,
    # formats/readers.md), and each one's example runs every check that applies to its kind
    doc = (Path(__file__).resolve().parents[2] / "formats" / "readers.md").read_text()
    table = doc[doc.index("| name | files |") :].split("\n\n")[0]
    documented = re.findall(r"^\| `([^`]+)` \|", table, flags=re.M)
    assert sorted(READERS) == sorted(documented)
    for name, reader in READERS.items():
        expected = {"deterministic", "privacy"} if reader.kind == "results" else set(CHECKS)
        assert {c for n, c in CASES if n == name} == expected, name


def test_identifying_examples_really_carry_what_they_declare(tmp_path):
    # the privacy check proves something only if the example file holds the patient fields
    # the reader declares: the EDF examples' patient name and birth date are in their header
    for name in ("edf+d", "edf"):
        reader = READERS[name]
        folder = tmp_path / name
        folder.mkdir()
        raw = reader.example(folder).read_bytes().decode("latin-1")
        present = [s for s in reader.identifying if s in raw]
        assert any("1951" in s or "1960" in s for s in present), (name, present)
        assert len(present) >= 3, (name, present)


# --------------------------------------------------------------------------------------------
# the checks themselves can fail
# --------------------------------------------------------------------------------------------


def _bad_reader(tmp_path, transform):
    import dataclasses

    base = READERS["edf+d"]
    return dataclasses.replace(base, name="edf+d", load=lambda p: transform(base.load(p)), raw=None)


def test_voltage_check_catches_millivolts_taken_as_volts(tmp_path, monkeypatch):
    bad = _bad_reader(tmp_path, lambda ds: ds.assign(signal=ds.signal * 1e3))
    monkeypatch.setitem(READERS, "edf+d", bad)
    path = bad.example(tmp_path)
    with pytest.raises(
        AssertionError, match=r"peaks at 7\.2\d V after baseline removal, outside 1e-7\.\.1e-1 V"
    ):
        CHECKS["voltages"](bad, path, tmp_path)


def test_privacy_check_catches_a_leaked_name(tmp_path, monkeypatch):
    bad = _bad_reader(tmp_path, lambda ds: ds.assign_attrs(comment="patient Haagse_Harry"))
    monkeypatch.setitem(READERS, "edf+d", bad)
    path = bad.example(tmp_path)
    with pytest.raises(
        AssertionError, match=r"identifying string 'Haagse_Harry' found in attribute 'comment'"
    ):
        CHECKS["privacy"](bad, path, tmp_path)


def test_determinism_check_catches_randomness(tmp_path, monkeypatch):
    import numpy as np

    bad = _bad_reader(
        tmp_path,
        lambda ds: ds.assign(
            signal=ds.signal + np.random.default_rng().normal(0, 1e-6, ds.signal.shape)
        ),
    )
    monkeypatch.setitem(READERS, "edf+d", bad)
    path = bad.example(tmp_path)
    with pytest.raises(AssertionError):
        CHECKS["deterministic"](bad, path, tmp_path)


def test_check_reader_runs_the_whole_suite(tmp_path):
    from ncsproc.testing import check_reader

    path = check_reader(READERS["edf+d"], tmp_path)
    assert path.name == "MNC_R_median.edf"
    assert (tmp_path / "roundtrip-edfplusd.h5").is_file()
