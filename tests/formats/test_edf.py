"""EDF+D nerve conduction: the specification's example, its conventions, and bad files."""

from __future__ import annotations

import datetime
import math

import numpy as np
import pytest

import ncsproc
from ncsproc.errors import FormatError
from ncsproc.formats import READERS
from ncsproc.formats.edf import parse_stimulus, parse_study_code, read_edf_ncs
from ncsproc.formats.edf._annotations import (
    age_at_exam,
    parse_label,
    parse_prefiltering,
    parse_xmlnote,
)
from ncsproc.formats.edf._examples import spec_records

from .edfbuild import ANNOT, SPEC_HEADER, SPEC_TALS, build_edf, tal, write_spec_file

# --------------------------------------------------------------------------------------------
# the EDF+ specification's Motor Nerve Conduction file (section 3.7)
# --------------------------------------------------------------------------------------------


@pytest.fixture
def spec_file(tmp_path):
    folder = tmp_path / "EX1"
    folder.mkdir()
    return write_spec_file(folder / "spec.edf", spec_records())


def test_example_hook_is_the_specification_file_byte_for_byte(tmp_path):
    ours = READERS["edf+d"].example(tmp_path)
    theirs = write_spec_file(tmp_path / "by_hand.edf", spec_records())
    assert ours.read_bytes() == theirs.read_bytes()
    raw = ours.read_bytes()
    assert raw[:768] == SPEC_HEADER
    # data record r: 1000 x 2 bytes of R APB, then 60 x 2 bytes of EDF Annotations
    for r in range(2):
        start = 768 + r * 2120
        assert raw[start + 2000 : start + 2120].rstrip(b"\x00") == SPEC_TALS[r].rstrip(b"\x00")
    assert len(raw) == 768 + 2 * 2120


def test_specification_file_reads_as_two_sweeps(spec_file):
    ds = ncsproc.read(spec_file)
    assert ds.sizes["trace"] == 2
    assert list(ds.trace.values) == ["EX1/R_median_motor/0", "EX1/R_median_motor/1"]
    np.testing.assert_array_equal(ds.distance.values, [0.065, 0.285])
    np.testing.assert_array_equal(ds.stim_intensity.values, [0.0082, 0.0153])
    np.testing.assert_array_equal(ds.stim_duration.values, [0.0002, 0.0002])
    assert list(ds.stim_site.values) == ["wrist", "elbow"]
    assert set(ds.side.values) == {"R"} and set(ds.nerve.values) == {"median"}
    assert set(ds.modality.values) == {"motor"} and set(ds.record_site.values) == {"APB"}
    np.testing.assert_array_equal(ds.sampling_rate.values, [20000.0, 20000.0])
    np.testing.assert_array_equal(ds.t_start.values, [0.0, 0.0])
    np.testing.assert_array_equal(ds.highpass.values, [3.0, 3.0])
    np.testing.assert_array_equal(ds.lowpass.values, [20000.0, 20000.0])
    assert list(ds.record.values) == [0, 1]
    assert set(ds.source_file.values) == {"spec.edf"}
    assert np.isnan(ds.temperature.values).all()
    # age from 02-MAY-1951 to 02-MAR-2002 (the spec's own, made-up patient); nothing else kept
    assert ds.age.values[0] == (datetime.date(2002, 3, 2) - datetime.date(1951, 5, 2)).days / 365.25
    assert set(ds.subject_id.values) == {""}
    # samples: the synthesised CMAPs, negative peak 7.2 mV within one quantisation step
    lsb = 200.0 / 4095 * 1e-3
    for i, onset in enumerate((0.0038, 0.0078)):
        x = ds.signal.values[i]
        assert abs(x.min() + 7.2e-3) <= lsb
        assert np.all(np.abs(x[: int(onset * 20000)]) <= lsb)


def test_specification_patient_field_never_enters_the_trace_set(spec_file):
    ds = ncsproc.read(spec_file)
    text = repr(ds.attrs) + " ".join(
        str(v) for name in ds.variables if ds[name].dtype.kind in "OU" for v in ds[name].values
    )
    for s in ("MCH-0234567", "02-MAY-1951", "Haagse", "Harry", "EMG561", "BK/JOP"):
        assert s not in text


def test_samples_follow_the_header_gain(spec_file):
    ds = ncsproc.read(spec_file)
    digital = spec_records().astype(float)
    expected = (-100 + (digital + 2048) * 200 / 4095) * 1e-3
    np.testing.assert_allclose(ds.signal.values, expected, rtol=0, atol=1e-15)


# --------------------------------------------------------------------------------------------
# the conventions, one at a time
# --------------------------------------------------------------------------------------------


def _signal(**kw):
    base = {
        "label": "NC L_APB",
        "samples": 200,
        "dimension": "mV",
        "pmin": "-25",
        "pmax": "25",
        "dmin": "-32768",
        "dmax": "32767",
        "prefilter": "HP:10Hz LP:10kHz",
    }
    base.update(kw)
    return base


def _file(tmp_path, tals_per_record, name="study.edf", signal=None, data=None, **kw):
    sig = signal or _signal()
    records = []
    for r, tals in enumerate(tals_per_record):
        samples = data[r] if data is not None else np.zeros(int(sig["samples"]), dtype=int)
        records.append([samples, b"".join(tals)])
    return build_edf(tmp_path / name, signals=[sig, ANNOT], records=records, **kw)


def test_neurotraces_style_mncv_file_with_xmlnote_and_temperature(tmp_path):
    xml = (
        '<EDF_XMLnote><Stimulus_wrist><duration unit="ms">0.1</duration>'
        '<intensity mode="current" unit="mA">12.5</intensity><position>left wrist</position>'
        '<distance mode="stimulus to recording" unit="cm">7</distance>'
        '<temperature unit="C">33.5</temperature></Stimulus_wrist>'
        '<measurements><latency unit="ms">3.1</latency><amplitude mode="baseline to peak" '
        'unit="mV">9.4</amplitude></measurements></EDF_XMLnote>'
    )
    path = _file(
        tmp_path,
        [[tal("0"), tal("0", "Stimulus_wrist"), tal("0", xml)]],
        recording="Startdate 01-JAN-2002 emg1 jop N1 MNC_L_Median_Nerve",
        patient="X M 29-JAN-1956 X",
        signal=_signal(samples=500, pmin="-25", pmax="25", dmin="-8985", dmax="10265"),
    )
    ds = ncsproc.read(path)
    assert ds.study.values[0] == "L_median_motor"
    assert ds.stim_site.values[0] == "wrist" and ds.side.values[0] == "L"
    assert ds.stim_duration.values[0] == pytest.approx(1e-4, rel=1e-15)
    assert ds.stim_intensity.values[0] == pytest.approx(0.0125, rel=1e-15)
    assert ds.distance.values[0] == pytest.approx(0.07, rel=1e-15)
    assert ds.temperature.values[0] == 33.5
    assert ds.sampling_rate.values[0] == 10000.0
    assert ds.highpass.values[0] == 10.0 and ds.lowpass.values[0] == 10000.0
    days = (datetime.date(2002, 1, 1) - datetime.date(1956, 1, 29)).days
    assert ds.age.values[0] == days / 365.25


def test_sensory_file_in_microvolts_with_an_unsided_label(tmp_path):
    digital = np.full(500, 9625)
    path = _file(
        tmp_path,
        [[tal("0"), tal("0", "Stimulus left wrist 0.1ms x 10mA at 13cm from recording site")]],
        recording="Startdate 01-JAN-2002 emg1 jop N1 SNC_L_Median_Nerve",
        signal=_signal(
            label="NC Second Finger",
            samples=500,
            dimension="uV",
            pmin="-250",
            pmax="250",
            dmin="-9625",
            dmax="9625",
            prefilter="HP:20Hz LP:3kHz",
        ),
        data=[digital],
        duration="0.02",
    )
    ds = ncsproc.read(path)
    assert ds.modality.values[0] == "sensory" and ds.record_site.values[0] == "digit II"
    assert ds.sampling_rate.values[0] == 25000.0
    np.testing.assert_allclose(ds.signal.values[0], 250e-6, rtol=1e-12)
    assert ds.lowpass.values[0] == 3000.0


@pytest.mark.parametrize(
    "dimension, factor", [("V", 1.0), ("mV", 1e-3), ("uV", 1e-6), ("\xb5V", 1e-6)]
)
def test_physical_dimension_converts_to_volts(tmp_path, dimension, factor):
    path = _file(
        tmp_path,
        [[tal("0")]],
        signal=_signal(dimension=dimension, pmin="-32768", pmax="32767"),
        data=[np.full(200, 1000)],
    )
    ds = ncsproc.read(path)
    np.testing.assert_allclose(ds.signal.values[0], 1000 * factor, rtol=1e-12)


def test_non_voltage_dimension_is_an_error_naming_the_signals(tmp_path):
    path = _file(tmp_path, [[tal("0")]], signal=_signal(dimension="degC"))
    with pytest.raises(FormatError, match=r"study\.edf: no signal with a voltage dimension.*degC"):
        ncsproc.read(path)


def test_stimulus_after_the_record_start_gives_a_pretrigger_baseline(tmp_path):
    # like the spec's VEP example: sampling starts 10 ms before the stimulus
    path = _file(
        tmp_path,
        [
            [tal("0.0000"), tal("0.0100", "Stimulus left wrist 0.2ms")],
            [tal("5"), tal("5.0045", "Stimulus left elbow 0.2ms")],
        ],
    )
    ds = ncsproc.read(path)
    np.testing.assert_array_equal(ds.t_start.values, [-0.01, -0.0045])


def test_a_record_without_stimulus_annotation_starts_at_its_stimulus(tmp_path):
    path = _file(
        tmp_path,
        [[tal("3.5")]],
        recording="Startdate X X X X MNC_R_Ulnar_Nerve",
        signal=_signal(label="NC R_ADM"),
    )
    ds = ncsproc.read(path)
    assert ds.t_start.values[0] == 0.0 and ds.stim_site.values[0] == ""
    assert math.isnan(ds.distance.values[0])


def test_fwave_series_takes_the_one_site_of_its_records(tmp_path):
    path = _file(
        tmp_path,
        [
            [tal("0"), tal("0", "Stimulus right ankle 0.2ms x 40mA")],
            [tal("1")],
            [tal("2"), tal("2", "Stimulus right ankle")],
        ],
        recording="Startdate X X X X FW_R_Tibial_Nerve",
        signal=_signal(label="NC R_AH"),
    )
    ds = ncsproc.read(path)
    assert list(ds.stim_site.values) == ["ankle"] * 3
    assert list(ds.study.values) == ["R_tibial_fwave"] * 3
    np.testing.assert_array_equal(ds.stim_intensity.values[[0, 2]], [0.04, np.nan])
    assert np.isnan(ds.stim_intensity.values[1])


def test_two_signals_give_two_traces_per_record(tmp_path):
    sig_a = _signal(label="NC L_APB")
    sig_b = _signal(label="NC L_ADM", samples=100)
    path = build_edf(
        tmp_path / "two.edf",
        signals=[sig_a, sig_b, ANNOT],
        records=[
            [np.zeros(200, int), np.ones(100, int), tal("0") + tal("0", "Stimulus left wrist")]
        ],
    )
    ds = ncsproc.read(path)
    assert ds.sizes["trace"] == 2
    assert sorted(ds.record_site.values) == ["ADM", "APB"]
    np.testing.assert_array_equal(sorted(ds.sampling_rate.values), [2000.0, 4000.0])
    assert sorted(ds.trace.values)[0].endswith("/0/ADM")


def test_bdf_plus_d_24_bit_samples(tmp_path):
    digital = np.array([-8388608, -1, 0, 1, 8388607] * 40)
    path = build_edf(
        tmp_path / "s.bdf",
        family="BDF",
        reserved="BDF+D",
        signals=[
            _signal(
                samples=200,
                pmin="-8388608",
                pmax="8388607",
                dmin="-8388608",
                dmax="8388607",
                dimension="uV",
            ),
            {"label": "BDF Annotations", "samples": 40},
        ],
        records=[[digital, tal("0")]],
    )
    ds = ncsproc.read(path)
    assert ds.attrs["source_format"] == "BDF+D"
    np.testing.assert_allclose(ds.signal.values[0], digital * 1e-6, rtol=1e-12, atol=1e-18)


def test_polarity_key_of_the_sidecar_inverts(tmp_path):
    path = _file(tmp_path, [[tal("0")]], data=[np.full(200, 100)])
    plain = ncsproc.read(path).signal.values[0]
    (tmp_path / "study.edf.json").write_text('{"polarity": "G2-G1"}')
    np.testing.assert_array_equal(ncsproc.read(path).signal.values[0], -plain)


# --------------------------------------------------------------------------------------------
# the text parsers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, side, site, duration, intensity, distance",
    [
        (
            "Stimulus left wrist 0.2ms x 8.2mA at 6.5cm from recording site",
            "L",
            "wrist",
            2e-4,
            8.2e-3,
            0.065,
        ),
        (
            "Stimulus right elbow 0.2ms x 15.3mA at 28.5cm from recording site Response 7.2mV at "
            "7.8ms (55.0m/s)",
            "R",
            "elbow",
            2e-4,
            15.3e-3,
            0.285,
        ),
        (
            "Stimulus R below elbow 200us x 15300uA at 285mm from recording site",
            "R",
            "below elbow",
            2e-4,
            15.3e-3,
            0.285,
        ),
        (
            "stimulus Left popliteal fossa 0,5 ms x 40 mA at 0.42 m",
            "L",
            "popliteal fossa",
            5e-4,
            0.04,
            0.42,
        ),
        ("Stimulus_elbow", "", "elbow", math.nan, math.nan, math.nan),
        ("Stimulus fibular head 0.1ms Latency 9.8ms", "", "fibular head", 1e-4, math.nan, math.nan),
        ("Stimulus right wrist x 8.2mA", "R", "wrist", math.nan, 8.2e-3, math.nan),
        (
            "Stimulus left ankle at 14cm from recording site 0.2ms",
            "L",
            "ankle",
            math.nan,
            math.nan,
            0.14,
        ),
        ("Stimulus wrist 0.2ms x 150V", "", "wrist", 2e-4, math.nan, math.nan),
    ],
)
def test_stimulus_text(text, side, site, duration, intensity, distance):
    s = parse_stimulus(text, "test")
    assert (s.side, s.site) == (side, site)
    for got, want in ((s.duration, duration), (s.intensity, intensity), (s.distance, distance)):
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(
    "recording, modality, side, nerve",
    [
        ("Startdate 01-JAN-2002 emg1 jop N1 MNC_L_Median_Nerve", "motor", "L", "median"),
        ("Startdate 02-MAR-2002 EMG561 BK/JOP Sony. MNC R Median Nerve.", "motor", "R", "median"),
        ("Startdate 01-JAN-2002 emg1 jop N1 SNC_L_Median_Nerve", "sensory", "L", "median"),
        ("Startdate X X X X FW_R_Tibial_Nerve", "fwave", "R", "tibial"),
        (
            "Startdate X X X X SNC_L_Superficial_Peroneal_Nerve",
            "sensory",
            "L",
            "superficial_peroneal",
        ),
        ("Startdate X X X X MNC_Left_Common_Peroneal_Nerve", "motor", "L", "peroneal"),
        ("Startdate 01-JAN-2002 emg1 jop N1 SEP L_Tibial_Nerve", "", "", ""),
        ("some EDF recording MNC_R_Ulnar", "motor", "R", "ulnar"),
        ("Startdate 01-JAN-2002 MNC jop N1", "", "", ""),
    ],
)
def test_study_code(recording, modality, side, nerve):
    code = parse_study_code(recording)
    assert (code.modality, code.side, code.nerve) == (modality, side, nerve)


@pytest.mark.parametrize(
    "label, side, site",
    [
        ("NC L_APB", "L", "APB"),
        ("R APB", "R", "APB"),
        ("NC Second Finger", "", "digit II"),
        ("EMG L_Biceps_Bra", "L", "Biceps Bra"),
        ("NC R_digit V", "R", "digit V"),
        ("APB", "", "APB"),
        ("NC Left abductor digiti minimi", "L", "ADM"),
    ],
)
def test_signal_label(label, side, site):
    assert parse_label(label) == (side, site)


@pytest.mark.parametrize(
    "text, hp, lp",
    [
        ("HP:2Hz LP:10kHz", 2.0, 10000.0),
        ("HP:0.1Hz LP:75Hz N:50Hz", 0.1, 75.0),
        ("LP:3kHz", math.nan, 3000.0),
        ("HP:DC LP:5kHz", 0.0, 5000.0),
        ("", math.nan, math.nan),
        ("HP: 20 Hz", 20.0, math.nan),
    ],
)
def test_prefiltering(text, hp, lp):
    got = parse_prefiltering(text)
    for g, w in zip(got, (hp, lp), strict=True):
        assert (math.isnan(g) and math.isnan(w)) or g == w


def test_xmlnote_ignores_measurements_and_other_modes():
    s = parse_xmlnote(
        '<EDF_XMLnote><x><intensity mode="voltage" unit="V">100</intensity>'
        '<distance mode="segmental" unit="cm">22</distance><position>right axilla</position></x>'
        '<measurements><duration unit="ms">12</duration></measurements></EDF_XMLnote>',
        "test",
    )
    assert (s.side, s.site) == ("R", "axilla")
    assert math.isnan(s.intensity) and math.isnan(s.distance) and math.isnan(s.duration)


def test_age_needs_both_dates_and_edf_plus():
    assert age_at_exam("X F 02-MAY-1951 X", "Startdate 02-MAY-2001 X X X", True) == pytest.approx(
        50.0, abs=0.01
    )
    assert math.isnan(age_at_exam("X F X X", "Startdate 02-MAY-2001 X X X", True))
    assert math.isnan(age_at_exam("X F 02-MAY-1951 X", "Startdate X X X X", True))
    assert math.isnan(age_at_exam("X F 02-MAY-1951 X", "Startdate 02-MAY-2001 X X X", False))


# --------------------------------------------------------------------------------------------
# damaged and inconsistent files: FormatError naming file, place and expectation
# --------------------------------------------------------------------------------------------


def test_truncated_file_names_the_incomplete_record(spec_file):
    raw = spec_file.read_bytes()
    spec_file.write_bytes(raw[: 768 + 2120 + 500])
    with pytest.raises(
        FormatError,
        match=(
            r"spec\.edf: truncated: .*2 data records of 2120 bytes.*data record 1 \(0-based\) is "
            r"incomplete at byte 2888"
        ),
    ):
        ncsproc.read(spec_file)


def test_bad_number_field_names_its_byte_offset(spec_file):
    raw = bytearray(spec_file.read_bytes())
    raw[236:244] = b"two     "
    spec_file.write_bytes(bytes(raw))
    with pytest.raises(
        FormatError,
        match=(
            r"spec\.edf: header byte 236: field 'number of data records' is 'two     ', expected "
            r"an integer"
        ),
    ):
        ncsproc.read(spec_file)


def test_bad_digital_range_names_the_signal_field(spec_file):
    raw = bytearray(spec_file.read_bytes())
    raw[256 + 16 * 2 + 80 * 2 + 8 * 6 : 256 + 16 * 2 + 80 * 2 + 8 * 7] = (
        b"3000    "  # digital min of signal 1
    )
    spec_file.write_bytes(bytes(raw))
    with pytest.raises(
        FormatError, match=r"header byte 496 \(signal 1\): digital range 3000\.\.2047"
    ):
        ncsproc.read(spec_file)


def test_header_size_mismatch(spec_file):
    raw = bytearray(spec_file.read_bytes())
    raw[184:192] = b"1024    "
    spec_file.write_bytes(bytes(raw))
    with pytest.raises(
        FormatError,
        match=(
            r"header byte 184: header size is 1024 bytes, expected 256 x \(1 \+ 2 signals\) = "
            r"768"
        ),
    ):
        ncsproc.read(spec_file)


def test_malformed_tal_names_record_and_byte(tmp_path):
    path = _file(tmp_path, [[tal("0")], [b"10\x14\x14\x00"]])
    with pytest.raises(FormatError, match=r"study\.edf: data record 1, byte 2168: expected a TAL"):
        ncsproc.read(path)


def test_missing_time_keeping_tal(tmp_path):
    path = _file(tmp_path, [[tal("0", "Stimulus left wrist")]])
    with pytest.raises(
        FormatError,
        match=r"data record 0, byte 1168: the first TAL of a data record must keep time",
    ):
        ncsproc.read(path)


def test_overlapping_records_are_refused(tmp_path):
    path = _file(tmp_path, [[tal("0")], [tal("0.02")]])
    with pytest.raises(
        FormatError, match=r"data record 1: starts at \+0\.02 s, before the end of data record 0"
    ):
        ncsproc.read(path)


def test_two_stimuli_in_one_record(tmp_path):
    path = _file(
        tmp_path, [[tal("0"), tal("0", "Stimulus left wrist"), tal("0.01", "Stimulus left elbow")]]
    )
    with pytest.raises(
        FormatError, match=r"data record 0: stimulus annotations at \+0, \+0\.01 s; expected one"
    ):
        ncsproc.read(path)


def test_contradicting_sides_name_both_places(tmp_path):
    path = _file(tmp_path, [[tal("0"), tal("0", "Stimulus right wrist")]])
    with pytest.raises(
        FormatError,
        match=(
            r"contradicts itself about the side: the recording field says L.*the stimulus "
            r"annotation says R"
        ),
    ):
        ncsproc.read(path)


def test_text_and_xmlnote_must_agree(tmp_path):
    xml = '<EDF_XMLnote><s><distance unit="cm">7</distance></s></EDF_XMLnote>'
    path = _file(
        tmp_path,
        [[tal("0"), tal("0", "Stimulus left wrist at 6.5cm from recording site"), tal("0", xml)]],
    )
    with pytest.raises(
        FormatError, match=r"distance is 0\.07 in EDF_XMLnote but 0\.065 in stimulus annotation"
    ):
        ncsproc.read(path)


def test_broken_xmlnote(tmp_path):
    path = _file(tmp_path, [[tal("0"), tal("0", "<EDF_XMLnote><a>")]])
    with pytest.raises(FormatError, match=r"data record 0: EDF_XMLnote is not well-formed XML"):
        ncsproc.read(path)


def test_edfplus_c_is_refused_by_the_edfd_reader_with_directions(tmp_path):
    path = _file(tmp_path, [[tal("0")]], reserved="EDF+C")
    with pytest.raises(FormatError, match=r"reserved field is 'EDF\+C'.*format='edf'"):
        read_edf_ncs(path)


def test_missing_metadata_points_to_the_sidecar(tmp_path):
    path = _file(
        tmp_path, [[tal("0")]], recording="Startdate X X X X", signal=_signal(label="NC APB")
    )
    bare = ncsproc.read(path)  # read, with what the file does not say unknown
    assert (bare.side.values[0], bare.nerve.values[0], bare.modality.values[0]) == ("", "", "")
    from ncsproc.unknowns import missing_metadata

    (message,) = missing_metadata(bare)
    assert "side, nerve, modality" in message and "sidecar study.edf.json" in message
    (tmp_path / "study.edf.json").write_text(
        '{"side": "left", "nerve": "Median", "modality": "MNC", "exam_id": "E7", '
        '"subject_id": "P001", '
        '"records": [{"record": 0, "stim_site": "wrist", "distance": "6.5 cm"}]}'
    )
    ds = ncsproc.read(path)
    assert ds.trace.values[0] == "E7/L_median_motor/0"
    assert (ds.side.values[0], ds.nerve.values[0], ds.modality.values[0]) == (
        "L",
        "median",
        "motor",
    )
    assert ds.distance.values[0] == pytest.approx(0.065) and ds.subject_id.values[0] == "P001"
    assert "completed from sidecar study.edf.json" in ds.attrs["history"]
