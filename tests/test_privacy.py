"""Pseudonymisation and date reduction at the reader boundary (ncsproc.privacy, ncsproc.read)."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ncsproc
from ncsproc.errors import FormatError
from ncsproc.formats import READERS
from ncsproc.privacy import (
    KEY_ENV,
    Pseudonymizer,
    PseudonymKeyError,
    dates_agree,
    is_pseudonym,
    load_key,
    normalize_identifier,
    pseudonymizer_from,
    reduce_date,
)
from ncsproc.testing import _strings

KEY = "centre-secret-3b9f1c7e2a5d8b4f6e0a"
OTHER = "centre-secret-different-77c1e9a0b3f5"


@pytest.fixture
def key():
    return Pseudonymizer(KEY)


# ---------------------------------------------------------------------------------------------
# the pseudonymizer


def test_same_identifier_same_key_same_pseudonym_and_another_key_another(key):
    a = key.pseudonym("MCH-0234567")
    assert is_pseudonym(a) and a == Pseudonymizer(KEY).pseudonym("MCH-0234567")
    assert a != Pseudonymizer(OTHER).pseudonym("MCH-0234567")
    assert a != key.pseudonym("MCH-0234568")
    assert "0234567" not in a


def test_pseudonyms_are_stable_across_processes(key):
    code = (
        "from ncsproc.privacy import Pseudonymizer;"
        f"print(Pseudonymizer({KEY!r}).pseudonym('MCH-0234567'), Pseudonymizer({KEY!r}).key_id)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [key.pseudonym("MCH-0234567"), key.key_id]


def test_identifiers_are_normalised_and_placeholders_are_no_identifier(key):
    assert key("  mch-0234567 ") == key("MCH-0234567")
    assert key("UMC  44\t5519") == key("umc 44 5519")
    assert key("\uff2d\uff23\uff28-1") == key("MCH-1")  # full-width letters (NFKC)
    for empty in ("", "   ", "X", "x", "X X X X", "unknown", "Anonymous", None):
        assert normalize_identifier(empty) is None and key(empty) is None


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_pseudonym_depends_only_on_the_normalised_identifier(text):
    a, b = Pseudonymizer(KEY), Pseudonymizer(OTHER)
    norm = normalize_identifier(text)
    if norm is None:
        assert a(text) is None
        return
    assert a(text) == a(norm) == a(f"  {text}\t")
    assert a(text) != b(text)
    assert is_pseudonym(a(text))


def test_the_key_is_never_shown(key, tmp_path):
    assert KEY not in repr(key) and KEY not in str(key) and key.key_id not in KEY
    assert Pseudonymizer(KEY).key_id == key.key_id != Pseudonymizer(OTHER).key_id
    back = pickle.loads(pickle.dumps(key))  # a Dask worker process gets a working copy
    assert back == key and back("P1") == key("P1")
    with pytest.raises(PseudonymKeyError) as info:
        Pseudonymizer("short-key")
    assert "short-key" not in str(info.value)
    with pytest.raises(PseudonymKeyError, match="distinct"):
        Pseudonymizer("a" * 40)


def test_key_from_file_wins_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert pseudonymizer_from() is None
    monkeypatch.setenv(KEY_ENV, f"  {KEY}\n")
    assert pseudonymizer_from() == Pseudonymizer(KEY)
    f = tmp_path / "centre.key"
    f.write_text(OTHER + "\n")
    assert pseudonymizer_from(f) == Pseudonymizer(OTHER)
    assert load_key(f) == OTHER.encode()
    with pytest.raises(PseudonymKeyError, match="cannot be read"):
        pseudonymizer_from(tmp_path / "missing.key")
    (tmp_path / "empty.key").write_text("\n")
    with pytest.raises(PseudonymKeyError, match="empty"):
        pseudonymizer_from(tmp_path / "empty.key")


@pytest.mark.parametrize(
    ("value", "precision", "expected"),
    [
        (dt.date(2024, 3, 15), "year", "2024"),
        (dt.date(2024, 3, 15), "month", "2024-03"),
        (dt.date(2024, 3, 15), "day", "2024-03-15"),
        (dt.date(2024, 3, 15), "none", ""),
        ("2024-03-15", "year", "2024"),
        ("2024-03", "day", "2024-03"),  # nothing is invented
        ("2024", "month", "2024"),
        ("", "day", ""),
        (None, "year", ""),
    ],
)
def test_reduce_date(value, precision, expected):
    assert reduce_date(value, precision) == expected


def test_reduce_date_refuses_what_it_does_not_understand():
    for bad in ("15.03.2024", "2024-13-01", "2024-02-30", "24"):
        with pytest.raises(ValueError):
            reduce_date(bad)
    with pytest.raises(ValueError, match="precision"):
        reduce_date("2024", "week")
    assert dates_agree("2024", "2024-03-15") and not dates_agree("2024-04", "2024-03-15")


# ---------------------------------------------------------------------------------------------
# the reader boundary


PATIENTS = {
    "MCH-0234567": "MCH-0234567 F 02-MAY-1951 Haagse_Harry",
    "NL-778812": "NL-778812 M 17-NOV-1948 Pieter_Post",
}
IDENTIFYING = [
    "MCH-0234567",
    "0234567",
    "02-MAY-1951",
    "1951-05-02",
    "19510502",
    "Haagse",
    "Harry",
    "NL-778812",
    "17-NOV-1948",
    "Pieter",
    "Post",
    "ADM-99812",
    "Jansen",
]


def _edf_with_identity(
    folder: Path,
    patient: str,
    recording_start: str = "02-MAR-2024",
    subject: str | None = None,
    sidecar_extra: dict | None = None,
) -> Path:
    """An EDF+D study written by ncsproc, then given a real-looking EDF+ patient field,
    a recording field with start date, admin code and technician, and a header start date."""
    folder.mkdir(parents=True, exist_ok=True)
    traces, _ = ncsproc.simulate.response_set("motor", 2, seed=3, pretrigger=0.002)
    traces = traces.assign_coords(
        exam_id=("trace", ["E1"] * 2, traces.exam_id.attrs),
        subject_id=("trace", [""] * 2, traces.subject_id.attrs),
        age=("trace", [np.nan] * 2, traces.age.attrs),
    )
    (path,) = ncsproc.write_edf(traces, folder / "L_median_motor.edf")
    raw = bytearray(path.read_bytes())
    code = raw[88:168].decode("latin-1").split()[-1]
    d = dt.datetime.strptime(recording_start, "%d-%b-%Y")
    raw[8:88] = PATIENTS[patient].encode().ljust(80)
    raw[88:168] = f"Startdate {recording_start} ADM-99812 Dr_Jansen EMGsys {code}".encode().ljust(
        80
    )
    raw[168:176] = d.strftime("%d.%m.%y").encode()
    path.write_bytes(bytes(raw))
    side = path.with_name(path.name + ".json")
    data = json.loads(side.read_text()) if side.exists() else {}
    if subject is not None:
        data["subject_id"] = subject
    data.update(sidecar_extra or {})
    side.write_text(json.dumps(data))
    return path


def _assert_private(ds, forbidden):
    for where, text in _strings(ds):
        for s in forbidden:
            assert s.lower() not in text.lower(), f"{s!r} found in {where}"


def test_edf_header_identity_becomes_a_pseudonym_and_a_reduced_date(tmp_path, key):
    path = _edf_with_identity(tmp_path, "MCH-0234567")
    plain = ncsproc.read(path)  # no key: nothing derived from the identifier
    assert set(plain.subject_id.values) == {""}
    assert set(plain.exam_date.values) == {"2024"}
    assert plain.age.values[0] == pytest.approx(
        (dt.date(2024, 3, 2) - dt.date(1951, 5, 2)).days / 365.25
    )

    ds = ncsproc.read(path, pseudonymizer=key, date_precision="month")
    assert set(ds.subject_id.values) == {key.pseudonym("MCH-0234567")}
    assert set(ds.exam_date.values) == {"2024-03"}
    assert "pseudonymised" in ds.attrs["history"] and key.key_id in ds.attrs["history"]
    for d in (plain, ds):
        _assert_private(d, IDENTIFYING + [KEY])
    assert set(ncsproc.read(path, date_precision="none").exam_date.values) == {""}
    assert set(ncsproc.read(path, date_precision="day").exam_date.values) == {"2024-03-02"}


def test_same_patient_same_pseudonym_across_files_and_formats(tmp_path, key):
    import pydicom

    a = _edf_with_identity(tmp_path / "a", "MCH-0234567")
    b = _edf_with_identity(tmp_path / "b", "NL-778812")
    traces, _ = ncsproc.simulate.response_set("motor", 2, seed=4, pretrigger=0.002)
    dcm = ncsproc.write_dicom(
        traces.assign_coords(subject_id=("trace", ["", ""])), tmp_path / "c.dcm"
    )
    d = pydicom.dcmread(dcm)
    d.PatientID, d.PatientName, d.StudyDate = " mch-0234567", "Haagse^Harry", "20240302"
    d.save_as(dcm, enforce_file_format=True)
    sa, sb, sc = (set(ncsproc.read(p, pseudonymizer=key).subject_id.values) for p in (a, b, dcm))
    assert sa == sc == {key.pseudonym("MCH-0234567")} and sb == {key.pseudonym("NL-778812")}
    other = Pseudonymizer(OTHER)
    assert set(ncsproc.read(a, pseudonymizer=other).subject_id.values) != sa


def test_a_given_subject_id_wins_and_a_raw_identifier_as_subject_id_is_refused(tmp_path, key):
    path = _edf_with_identity(tmp_path, "MCH-0234567", subject="P-0042")
    assert set(ncsproc.read(path, pseudonymizer=key).subject_id.values) == {"P-0042"}
    path = _edf_with_identity(tmp_path, "MCH-0234567", subject="mch-0234567")
    for p in (None, key):
        with pytest.raises(FormatError, match="must be pseudonymous") as info:
            ncsproc.read(path, pseudonymizer=p)
        assert "0234567" not in str(info.value)


def test_sidecar_exam_date_fills_in_but_never_contradicts_the_header(tmp_path, key):
    traces, _ = ncsproc.simulate.response_set("motor", 2, seed=5, pretrigger=0.002)
    (path,) = ncsproc.write_edf(traces, tmp_path / "L_median_motor.edf")  # header date: X
    side = path.with_name(path.name + ".json")
    data = json.loads(side.read_text())
    side.write_text(json.dumps({**data, "exam_date": "2023-11-05"}))
    assert set(ncsproc.read(path, date_precision="day").exam_date.values) == {"2023-11-05"}
    assert set(ncsproc.read(path).exam_date.values) == {"2023"}
    side.write_text(json.dumps({**data, "exam_date": "05.11.2023"}))
    with pytest.raises(FormatError, match="ISO date"):
        ncsproc.read(path)
    other = _edf_with_identity(tmp_path / "x", "MCH-0234567", sidecar_extra={"exam_date": "2023"})
    with pytest.raises(FormatError, match="does not agree"):
        ncsproc.read(other)
    agreeing = _edf_with_identity(
        tmp_path / "y", "MCH-0234567", sidecar_extra={"exam_date": "2024-03"}
    )
    assert set(ncsproc.read(agreeing, date_precision="day").exam_date.values) == {"2024-03-02"}


def test_plain_edf_patient_field_is_the_local_identification():
    from ncsproc.formats.edf._annotations import header_identity

    plain = SimpleNamespace(
        plus=False, patient="Jan Modaal 10.01.60", recording="x", startdate="15.03.24"
    )
    assert header_identity(plain) == {
        "patient_id": "Jan Modaal 10.01.60",
        "exam_date": dt.date(2024, 3, 15),
    }
    old = SimpleNamespace(plus=False, patient="X X X X", recording="x", startdate="01.01.85")
    assert normalize_identifier(header_identity(old)["patient_id"]) is None
    assert header_identity(old)["exam_date"] == dt.date(1985, 1, 1)
    anon = SimpleNamespace(
        plus=True, patient="X X X X", recording="Startdate X X X X MNC", startdate="01.01.85"
    )
    assert header_identity(anon) == {"patient_id": None, "exam_date": None}


def test_text_export_preamble_identity(tmp_path, key):
    traces, _ = ncsproc.simulate.response_set("motor", 1, seed=6, pretrigger=0.0)
    x = traces.signal.values[0, : int(traces.n_samples.values[0])] * 1e3
    path = tmp_path / "export.txt"
    lines = ["Patient ID: UMC 44-5519", "Name: Gonzalez, Maria", "Exam date: 29.02.2024", ""]
    path.write_text("\n".join(lines + [f"{v:.5f}" for v in x]) + "\n")
    side = {
        "layout": "columns",
        "header": False,
        "units": "mV",
        "sampling_rate": 20000,
        "skip_lines": 4,
        "nerve": "median",
        "side": "L",
        "modality": "motor",
        "stim_site": "wrist",
        "record_site": "APB",
        "header_fields": {"Patient ID": "patient_id", "Exam date": "exam_date"},
    }
    Path(str(path) + ".json").write_text(json.dumps(side))
    ds = ncsproc.read(path, pseudonymizer=key)
    assert set(ds.subject_id.values) == {key.pseudonym("UMC 44-5519")}
    assert set(ds.exam_date.values) == {"2024"}
    _assert_private(ds, ["44-5519", "Gonzalez", "Maria", "29.02.2024"])
    lines[2] = "Exam date: 2024/02/29"
    path.write_text("\n".join(lines + [f"{v:.5f}" for v in x]) + "\n")
    with pytest.raises(FormatError, match="line 3") as info:
        ncsproc.read(path)
    assert "2024/02/29" not in str(info.value)


@pytest.mark.parametrize("name", [n for n, r in READERS.items() if r.kind == "traces"])
def test_every_reader_with_a_key_stays_private(name, tmp_path, key):
    """The conformance suite's privacy check, with a key and day precision."""
    from ncsproc.schema import PRIVACY_BLOCKLIST, validate_trace_set

    reader = READERS[name]
    path = reader.example(tmp_path)
    ds = ncsproc.read(path, format=name, pseudonymizer=key, date_precision="day")
    validate_trace_set(ds)
    assert not [
        k for k in list(ds.attrs) + list(ds.variables) if str(k).lower() in PRIVACY_BLOCKLIST
    ]
    _assert_private(ds, list(reader.identifying) + [KEY])
    if reader.identity is None:
        return
    ident = reader.identity(path)
    subjects = set(ds.subject_id.values.astype(str))
    if normalize_identifier(ident.get("patient_id")) is not None:
        assert subjects == {key.pseudonym(ident["patient_id"])}
    expected = reduce_date(ident.get("exam_date"), "day")
    assert set(ds.exam_date.values.astype(str)) == {expected}


def test_native_files_keep_and_further_reduce_the_date(tmp_path, key):
    path = _edf_with_identity(tmp_path, "MCH-0234567")
    ds = ncsproc.read(path, pseudonymizer=key, date_precision="day")
    native = ncsproc.write(ds, tmp_path / "exam.h5")
    back = ncsproc.read(native, date_precision="day")
    assert set(back.exam_date.values) == {"2024-03-02"} and set(back.subject_id.values) == set(
        ds.subject_id.values
    )
    assert set(ncsproc.read(native).exam_date.values) == {"2024"}
