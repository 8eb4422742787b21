"""CED CFS reader: the real CED demo file, the writer round trip, damaged files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

import ncsproc
from ncsproc.errors import FormatError
from ncsproc.formats import cfs

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"
DEMO = SAMPLES / "real" / "cfs" / "test_file.cfs"


# --------------------------------------------------------------------------------------------
# The real file: every fact listed in data_samples/README.md


def test_demo_file_header_facts():
    f = cfs.read_cfs(DEMO)
    assert f.date == "10/08/24"
    assert f.time == "12:03:14"
    assert f.comment == "Demonstration of C version"
    assert f.name == "SIMPLEW.CFS"
    assert f.file_size == DEMO.stat().st_size == 3702
    assert [(c.name, c.y_units, c.x_units) for c in f.channels] == [
        ("ECG", "mV", "s"),
        ("Blood Pressure", "Pa", "s"),
    ]
    assert [c.kind for c in f.channels] == ["equalspaced", "equalspaced"]
    assert len(f.sections) == 3
    assert all(info.points == 256 for sec in f.sections for info in sec.channels)
    # one INT2 file variable, no data-section variable
    assert [(v.description, v.type_name, v.units, v.value) for v in f.file_variables] == [
        ("CED example Program", "INT2", "SIMPLEW", 210)
    ]
    assert f.section_variable_descriptors == []


@pytest.mark.parametrize("section", [0, 2])
def test_demo_file_sample_values(section):
    f = cfs.read_cfs(DEMO)
    ecg = f.values(0, section)
    bp = f.values(1, section)
    assert ecg.shape == bp.shape == (256,)
    assert ecg[0] == 0.0 and ecg[1] == 27.033599853515625 and ecg[-1] == -27.033599853515625
    assert bp[0] == 0.0 and bp[1] == 13.516799926757812 and bp[-1] == -13.516799926757812
    t = f.times(0, section)
    np.testing.assert_allclose(t[:3], [0.0, 0.01, 0.02], rtol=1e-6)


def test_section_chain_equals_pointer_table(tmp_path):
    """Without the pointer table (offset 0 at byte 134) the reader follows the header chain."""
    raw = bytearray(DEMO.read_bytes())
    raw[134:138] = struct.pack("<i", 0)
    p = tmp_path / "chain.cfs"
    p.write_bytes(bytes(raw))
    a, b = cfs.read_cfs(DEMO), cfs.read_cfs(p)
    assert (
        [s.header_offset for s in a.sections]
        == [s.header_offset for s in b.sections]
        == [1408, 2510, 3612]
    )
    np.testing.assert_array_equal(a.values(0, 1), b.values(0, 1))


def test_demo_file_reads_with_nerve_side_modality_unknown():
    ds = cfs.load(DEMO)  # unvalidated: ncsproc.read completes it from the sidecar
    assert ds.sizes["trace"] == 3  # ECG only: Blood Pressure (Pa) is not a voltage
    assert json.loads(ds.attrs["cfs_skipped_channels"]) == ["Blood Pressure (Pa vs s, equalspaced)"]
    assert list(ds["side"].values) == ["", "", ""]
    # what the file does not say stays unknown: a valid trace set all the same
    ncsproc.validate_trace_set(ds)
    partial = cfs.load(DEMO, metadata={"nerve": "median"})
    assert set(partial["nerve"].values) == {"median"}
    assert set(partial["side"].values) == set(partial["modality"].values) == {""}


def test_demo_file_with_metadata_is_a_valid_trace_set():
    meta = {
        "nerve": "median",
        "side": "left",
        "modality": "motor",
        "distance": "7 cm",
        "records": [{"record": 1, "stim_site": "elbow"}],
    }
    ds = cfs.load(DEMO, metadata=meta)
    ncsproc.validate_trace_set(ds)
    assert list(ds["record"].values) == [0, 1, 2]
    assert list(ds["stim_site"].values) == ["", "elbow", ""]
    np.testing.assert_allclose(ds["distance"].values, 0.07)
    assert set(ds["side"].values) == {"L"}
    assert float(ds["sampling_rate"][0]) == 100.0  # 1 / float32(0.01 s), snapped
    assert list(ds["t_start"].values) == [0.0, 0.0, 0.0]
    sig = ncsproc.trace_values(ds, 2)
    assert sig[1] == pytest.approx(27.033599853515625e-3, rel=1e-15)  # mV -> V
    assert sig[-1] == pytest.approx(-27.033599853515625e-3, rel=1e-15)
    with pytest.raises(FormatError, match="contradicts|says side"):
        cfs.load(DEMO, metadata={**meta, "records": [{"record": 0, "side": "R"}]})


def test_read_with_sidecar_end_to_end(tmp_path):
    p = tmp_path / "EX9" / "demo.cfs"
    p.parent.mkdir()
    p.write_bytes(DEMO.read_bytes())
    bare = ncsproc.read(p)  # no sidecar: read all the same, the clinical facts unknown
    assert set(bare["side"].values) == set(bare["modality"].values) == {""}
    assert set(bare["study"].values) == {"demo"} and set(bare["exam_id"].values) == {"EX9"}
    (tmp_path / "EX9" / "demo.cfs.json").write_text(
        json.dumps({"nerve": "ulnar", "side": "R", "modality": "motor", "subject_id": "S07"})
    )
    ds = ncsproc.read(p)
    ncsproc.validate_trace_set(ds)
    assert set(ds["exam_id"].values) == {"EX9"}
    assert set(ds["subject_id"].values) == {"S07"}
    assert set(ds["study"].values) == {"R_ulnar_motor"}


# --------------------------------------------------------------------------------------------
# Writer round trip and the example


def test_writer_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    a = [rng.normal(0, 2.0, 300) for _ in range(3)]  # mV
    b = [rng.normal(0, 150.0, 300) for _ in range(3)]  # uV
    secs = [
        {
            "data": [a[i], b[i]],
            "x_increment": 1e-4,
            "x_offset": -0.003 * i,
            "variables": [f"site{i}", 0.05 + i / 10],
        }
        for i in range(3)
    ]
    p = cfs.write_cfs(
        tmp_path / "rt.cfs",
        [("APB", "mV", "s"), ("ADM", "uV", "s")],
        secs,
        file_variables=[
            ("nerve", "", "ulnar"),
            ("side", "", "R"),
            ("modality", "", "motor"),
            ("age", "years", 61),
        ],
        section_variables=[("stim_site", ""), ("distance", "m")],
    )
    f = cfs.read_cfs(p)
    for s in range(3):
        for c, data in enumerate((a[s], b[s])):
            lsb = f.sections[s].channels[c].y_scale
            err = np.abs(f.values(c, s) - data)
            assert err.max() <= lsb / 2 * (1 + 1e-6)
            assert err.max() > lsb / 8  # really quantised: the bound is not vacuous
    ds = cfs.load(p)
    ncsproc.validate_trace_set(ds)
    assert ds.sizes["trace"] == 6
    assert list(ds["trace"].values[:2]) == ["/R_ulnar_motor/0/APB", "/R_ulnar_motor/0/ADM"]
    assert list(ds["stim_site"].values) == ["site0", "site0", "site1", "site1", "site2", "site2"]
    np.testing.assert_allclose(ds["distance"].values, [0.05, 0.05, 0.15, 0.15, 0.25, 0.25])
    np.testing.assert_allclose(
        ds["t_start"].values, [0, 0, -0.003, -0.003, -0.006, -0.006], atol=1e-9
    )
    assert set(ds["age"].values) == {61.0}
    assert list(ds["sampling_rate"].values) == [10000.0] * 6
    np.testing.assert_allclose(
        ncsproc.trace_values(ds, 3), b[1] * 1e-6, atol=f.sections[1].channels[1].y_scale * 1e-6
    )
    one = cfs.load(p, metadata={"channels": ["ADM"]})
    assert one.sizes["trace"] == 3 and list(one["trace"].values) == [
        f"/R_ulnar_motor/{i}" for i in range(3)
    ]
    with pytest.raises(FormatError, match="not voltage channels"):
        cfs.load(p, metadata={"channels": ["EMG"]})


def test_example_is_complete_and_private(tmp_path):
    p = cfs.READER.example(tmp_path)
    assert cfs.READER.sniff(p) is None
    ds = cfs.READER.load(p)
    ncsproc.validate_trace_set(ds)
    assert list(ds["stim_site"].values) == ["wrist", "elbow"]
    np.testing.assert_allclose(ds["distance"].values, [0.07, 0.28])
    assert set(ds["record_site"].values) == {"APB"}
    text = repr(ds.attrs) + " ".join(
        str(v) for name in ds.coords for v in np.ravel(ds[name].values)
    )
    for secret in cfs.READER.identifying:
        assert secret not in text
    assert "Doe Jane" in cfs.read_cfs(p).comment  # the raw parser still sees it


# --------------------------------------------------------------------------------------------
# Damaged files


def _patched(tmp_path, offset, fmt, value, source=DEMO):
    raw = bytearray(source.read_bytes())
    struct.pack_into(fmt, raw, offset, value)
    p = tmp_path / "bad.cfs"
    p.write_bytes(bytes(raw))
    return p


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "message"),
    [
        (42, "<h", 5000, r"channel count 5000 at byte 42"),
        (22, "<i", 10**9, r"file size of 1000000000 bytes .*\(truncated"),
        (134, "<i", 10**8, r"pointer table of 3 sections"),
        (48, "<H", 10, r"file header size 10"),
        (178 + 42, "<B", 9, r"data type code 9"),
        # section 0 header at 1408: channel 0 point count (30 + 4 bytes in)
        (1408 + 34, "<i", 10**9, r"section 0 .* 1000000000 points"),
        (1408 + 4, "<i", 10**7, r"data of section 0"),
    ],
)
def test_absurd_header_numbers_name_the_place(tmp_path, offset, fmt, value, message):
    p = _patched(tmp_path, offset, fmt, value)
    with pytest.raises(FormatError, match=message) as err:
        f = cfs.read_cfs(p)
        f.values(0, 0)
    assert "bad.cfs" in str(err.value)


def test_old_version_and_wrong_magic(tmp_path):
    p = tmp_path / "old.cfs"
    p.write_bytes(b"CEDFILE/" + DEMO.read_bytes()[8:])
    with pytest.raises(FormatError, match="older CFS version"):
        cfs.read_cfs(p)
    q = tmp_path / "no.cfs"
    q.write_bytes(b"XXXXXXXX" + DEMO.read_bytes()[8:])
    assert "CFS marker" in cfs.READER.sniff(q)
    with pytest.raises(FormatError, match="expected the CFS marker"):
        cfs.read_cfs(q)


def test_every_truncation_is_a_format_error(tmp_path):
    data = DEMO.read_bytes()
    p = tmp_path / "cut.cfs"
    meta = {"nerve": "median", "side": "L", "modality": "motor"}
    for cut in range(0, len(data), 3):
        p.write_bytes(data[:cut])
        with pytest.raises(FormatError):
            cfs.load(p, metadata=meta)
        assert cfs.READER.sniff(p) is None or cut < 7
        if cut >= 26:  # a writer that never updated the size field: the deeper checks catch it
            raw = bytearray(data[:cut])
            struct.pack_into("<i", raw, 22, cut)
            p.write_bytes(bytes(raw))
            with pytest.raises(FormatError, match=r"cut\.cfs: .*(byte|section|header|points)"):
                cfs.load(p, metadata=meta)


def test_byte_flips_never_crash(tmp_path):
    rng = np.random.default_rng(7)
    src = cfs.READER.example(tmp_path)
    data = src.read_bytes()
    p = tmp_path / "flip.cfs"
    outcomes = {"ok": 0, "error": 0}
    for _ in range(400):
        raw = bytearray(data)
        for k in rng.integers(0, len(raw), rng.integers(1, 4)):
            raw[k] = int(rng.integers(0, 256))
        p.write_bytes(bytes(raw))
        try:
            cfs.load(p)
            outcomes["ok"] += 1
        except FormatError as exc:
            assert "flip.cfs" in str(exc)
            outcomes["error"] += 1
    assert outcomes["error"] > 0 and outcomes["ok"] > 0


def test_micro_sign_and_greek_mu_are_both_micro():
    """CED's own files write the micro sign (U+00B5); other writers use Greek mu (U+03BC)."""
    from ncsproc.formats.cfs import TIME_UNITS, VOLT_UNITS

    assert VOLT_UNITS["\u00b5V"] == VOLT_UNITS["\u03bcV"] == VOLT_UNITS["uV"] == 1e-6
    assert TIME_UNITS["\u00b5s"] == TIME_UNITS["\u03bcs"] == TIME_UNITS["us"] == 1e-6
