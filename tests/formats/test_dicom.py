"""DICOM waveforms: pydicom's ECG read generically, EMG written and read back, privacy, damage."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.sequence import Sequence
from pydicom.waveforms import generate_multiplex

import ncsproc
from ncsproc.errors import FormatError
from ncsproc.formats import dicom
from ncsproc.simulate import response_set

ECG = get_testdata_file("waveform_ecg.dcm")


# --------------------------------------------------------------------------------------------
# Generic waveform path: pydicom's 12-lead ECG


def test_ecg_groups_equal_pydicom():
    groups = dicom.read_dicom_waveform(ECG)
    ref = pydicom.dcmread(ECG)
    assert [g.attrs["multiplex_group_label"] for g in groups] == ["RHYTHM", "MEDIAN BEAT"]
    assert [g.shape for g in groups] == [(12, 10000), (12, 1200)]
    for i, (g, multiplex) in enumerate(
        zip(groups, generate_multiplex(ref, as_raw=False), strict=True)
    ):
        expected = ref.waveform_array(i)  # (samples, channels), in the sensitivity units (uV)
        np.testing.assert_allclose(g.values.T * 1e6, expected, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(g.values.T * 1e6, multiplex, rtol=1e-12, atol=1e-9)
        assert set(g["units"].values) == {"V"} and set(g["ucum"].values) == {"uV"}
        assert g.attrs["sampling_rate"] == 1000.0
        assert g.attrs["sop_class"] == "12-lead ECG Waveform Storage"
        # the file gives 0.05-300 Hz for every channel but the first of MEDIAN BEAT
        filtered = slice(None) if i == 0 else slice(1, None)
        np.testing.assert_allclose(g["highpass"].values[filtered], 0.05)
        np.testing.assert_allclose(g["lowpass"].values[filtered], 300.0)
        assert i == 0 or (np.isnan(g["highpass"].values[0]) and np.isnan(g["lowpass"].values[0]))
    labels = list(groups[0]["label"].values)
    assert labels[0] == "Lead I (Einthoven)" and labels[-1] == "Lead V6"
    # sensitivity 1.25 uV per count, baseline 0: a count is 1.25e-6 V
    raw = ref.WaveformSequence[0]
    counts = np.frombuffer(raw.WaveformData, dtype="<i2").reshape(10000, 12)
    np.testing.assert_allclose(groups[0].values[3, :50], counts[:50, 3] * 1.25e-6, rtol=1e-12)
    np.testing.assert_allclose(groups[0]["time"].values[[0, -1]], [0.0, 9.999])


def test_ecg_is_refused_by_the_nerve_conduction_path(tmp_path):
    assert "12-lead ECG Waveform Storage" in dicom.READER.sniff(__import__("pathlib").Path(ECG))
    with pytest.raises(
        FormatError,
        match=(
            r"12-lead ECG Waveform Storage .* is not Electromyogram Waveform "
            r"Storage.*read_dicom_waveform"
        ),
    ):
        dicom.load(ECG)
    with pytest.raises(ncsproc.UnsupportedFormatError, match="read_dicom_waveform"):
        ncsproc.read(ECG)


def test_age_from_patient_age_or_birth_date():
    ref = pydicom.dcmread(ECG)
    assert dicom._age(ref, "ecg") == 42.0  # PatientAge 042Y
    del ref.PatientAge
    assert (ref.PatientBirthDate, ref.StudyDate) == ("19710123", "20130125")
    assert dicom._age(ref, "ecg") == 42.0
    ref.StudyDate = "20130122"  # the day before the birthday
    assert dicom._age(ref, "ecg") == 41.0
    assert dicom._parse_age("006M", "x") == 0.5
    assert dicom._parse_age("014W", "x") == pytest.approx(14 * 7 / 365.25)
    with pytest.raises(FormatError, match="PatientAge '42'"):
        dicom._parse_age("42", "x")


# --------------------------------------------------------------------------------------------
# Write and read back


def _traces():
    ds, _ = response_set("motor", 4, seed=3, pretrigger=0.003)
    n = ds.sizes["trace"]
    return ds.assign_coords(
        stim_site=(
            "trace",
            ["wrist", "elbow", "below elbow", "above elbow"],
            ds["stim_site"].attrs,
        ),
        record_site=("trace", ["APB", "APB", "ADM", "digit II"], ds["record_site"].attrs),
        highpass=("trace", [2.0, 2.0, 20.0, np.nan], ds["highpass"].attrs),
        lowpass=("trace", [10000.0, 10000.0, 3000.0, np.nan], ds["lowpass"].attrs),
        age=("trace", [63.7] * n, ds["age"].attrs),
        height=("trace", [171.5] * n, ds["height"].attrs),
        temperature=("trace", [32.1, 32.1, 31.9, np.nan], ds["temperature"].attrs),
        subject_id=("trace", ["S0042"] * n, ds["subject_id"].attrs),
        sampling_rate=("trace", [20000.0, 20000.0, 10000.0, 48000.0], ds["sampling_rate"].attrs),
        t_start=("trace", [-0.003, -0.003, -0.0015, 0.0], ds["t_start"].attrs),
    )


@pytest.mark.parametrize("bits", [16, 32])
def test_round_trip_to_half_an_lsb(tmp_path, bits):
    traces = _traces()
    path = dicom.write_dicom(traces, tmp_path / "rt.dcm", bits=bits)
    back = dicom.load(path)
    ncsproc.validate_trace_set(back)
    assert list(back["trace"].values) == list(traces["trace"].values)
    for name in (
        "exam_id",
        "study",
        "nerve",
        "side",
        "modality",
        "stim_site",
        "record_site",
        "record",
        "n_samples",
    ):
        assert list(back[name].values) == list(traces[name].values), name
    for name in (
        "distance",
        "stim_intensity",
        "stim_duration",
        "highpass",
        "lowpass",
        "temperature",
        "age",
        "height",
    ):
        np.testing.assert_allclose(back[name].values, traces[name].values, rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(
        back["sampling_rate"].values, traces["sampling_rate"].values, rtol=1e-12
    )
    np.testing.assert_allclose(back["t_start"].values, traces["t_start"].values, rtol=0, atol=1e-12)
    assert set(back["subject_id"].values) == {
        ""
    }  # never written, never read from the patient module
    raw = pydicom.dcmread(path)
    assert raw.SOPClassUID == dicom.EMG_SOP_CLASS and raw.Modality == "EMG"
    assert raw.PatientAge == "063Y" and float(raw.PatientSize) == pytest.approx(1.715)
    for i, group in enumerate(raw.WaveformSequence):
        ch = group.ChannelDefinitionSequence[0]
        assert ch.ChannelSensitivityUnitsSequence[0].CodeValue == "uV"
        lsb = float(ch.ChannelSensitivity) * 1e-6
        a = ncsproc.trace_values(back, i)
        b = ncsproc.trace_values(traces, i)
        err = np.abs(a - b)
        assert err.max() <= lsb / 2 * (1 + 1e-9)
        assert err.max() > lsb / 8  # the data really are quantised: the bound is not vacuous
        counts = np.frombuffer(group.WaveformData, dtype="<i2" if bits == 16 else "<i4")
        assert (
            np.abs(counts).max() >= (32767 if bits == 16 else 2**31 - 1) * 0.999
        )  # full range used
    # pydicom decodes the same values
    for i in range(traces.sizes["trace"]):
        np.testing.assert_allclose(
            raw.waveform_array(i)[:, 0] * 1e-6, ncsproc.trace_values(back, i), rtol=1e-12
        )


def test_write_refuses_several_exams(tmp_path, make_traces):
    from ncsproc.schema import concat_trace_sets

    two = concat_trace_sets([make_traces(exam_id="E1"), make_traces(exam_id="E2")])
    with pytest.raises(ValueError, match="one exam per file"):
        dicom.write_dicom(two, tmp_path / "x.dcm")


def test_public_writer_and_read_end_to_end(tmp_path):
    assert ncsproc.write_dicom is dicom.write_dicom
    folder = tmp_path / "EX77"
    folder.mkdir()
    path = dicom.READER.example(folder)
    assert dicom.READER.sniff(path) is None
    ds = ncsproc.read(path)
    ncsproc.validate_trace_set(ds)
    assert ds.sizes["trace"] == 3
    assert list(ds["stim_site"].values) == ["wrist", "elbow", "axilla"]
    assert set(ds["age"].values) == {54.0}


def test_identifying_attributes_never_reach_the_trace_set(tmp_path):
    path = dicom.READER.example(tmp_path)
    raw = pydicom.dcmread(path)
    assert str(raw.PatientName) == "Doe^Jane" and raw.PatientBirthDate == "19700304"
    ds = dicom.load(path)
    text = repr(ds.attrs) + "\n".join(
        str(v)
        for name in ds.variables
        if ds[name].dtype.kind in "OUS"
        for v in np.ravel(ds[name].values)
    )
    for secret in dicom.READER.identifying:
        assert secret not in text
    # with the birth date and a study date but no PatientAge, only the age comes through
    del raw.PatientAge
    raw.StudyDate = "20240303"
    raw.save_as(path, enforce_file_format=True)
    ds = dicom.load(path)
    assert set(ds["age"].values) == {54.0}  # from ncsproc's annotation (exact age)
    for item in raw.WaveformAnnotationSequence:
        item.UnformattedTextValue = item.UnformattedTextValue.replace('"age":54.0,', "")
    raw.save_as(path, enforce_file_format=True)
    assert set(dicom.load(path)["age"].values) == {53.0}  # birthday 4 March, study 3 March 2024


# --------------------------------------------------------------------------------------------
# Files written elsewhere: no ncsproc annotation, other units, baseline and correction


def _foreign(tmp_path, label="Left median MNC", channel_label="APB", units="uV", **chan):
    traces = _traces().isel(trace=[0, 1])
    path = dicom.write_dicom(traces, tmp_path / "foreign.dcm")
    raw = pydicom.dcmread(path)
    del raw.WaveformAnnotationSequence
    for group in raw.WaveformSequence:
        group.MultiplexGroupLabel = label
        ch = group.ChannelDefinitionSequence[0]
        ch.ChannelLabel = channel_label
        ch.ChannelSensitivityUnitsSequence[0].CodeValue = units
        for key, value in chan.items():
            setattr(ch, key, value)
    raw.save_as(path, enforce_file_format=True)
    return path, traces


def test_foreign_file_labels_say_side_nerve_modality(tmp_path):
    path, traces = _foreign(tmp_path)
    ds = dicom.load(path)
    ncsproc.validate_trace_set(ds)
    assert set(ds["side"].values) == {"L"} and set(ds["nerve"].values) == {"median"}
    assert set(ds["modality"].values) == {"motor"} and set(ds["record_site"].values) == {"APB"}
    assert list(ds["record"].values) == [0, 1]  # the multiplex group index
    assert set(ds["exam_id"].values) == {""}  # ncsproc.read uses the folder name
    np.testing.assert_allclose(ds["t_start"].values, [-0.003, -0.003], atol=1e-12)
    assert json.loads(ds.attrs["dicom_group_labels"]) == ["Left median MNC"] * 2


def test_foreign_file_without_labels_reads_with_unknowns_until_the_sidecar(tmp_path):
    path, _ = _foreign(tmp_path, label="Sweep", channel_label="EMG1")
    ds = dicom.load(path)
    assert set(ds["side"].values) == {""} and set(ds["record_site"].values) == {""}
    partial = dicom.load(path, metadata={"nerve": "ulnar"})  # unknown stays unknown
    assert set(partial["nerve"].values) == {"ulnar"} and set(partial["modality"].values) == {""}
    ncsproc.validate_trace_set(partial)
    ds = dicom.load(
        path, metadata={"nerve": "ulnar", "side": "R", "modality": "motor", "subject_id": "S9"}
    )
    ncsproc.validate_trace_set(ds)
    assert set(ds["subject_id"].values) == {"S9"} and set(ds["study"].values) == {"R_ulnar_motor"}


@pytest.mark.parametrize(("units", "factor"), [("uV", 1e-6), ("mV", 1e-3), ("V", 1.0)])
def test_units_baseline_and_correction_follow_pydicom(tmp_path, units, factor):
    path, _ = _foreign(
        tmp_path, units=units, ChannelBaseline="-3.5", ChannelSensitivityCorrectionFactor="0.98"
    )
    ds = dicom.load(path)
    raw = pydicom.dcmread(path)
    for i in range(2):
        expected = raw.waveform_array(i)[:, 0] * factor  # raw x sensitivity x correction + baseline
        np.testing.assert_allclose(ncsproc.trace_values(ds, i), expected, rtol=1e-12, atol=1e-18)


def test_non_voltage_channels_are_skipped(tmp_path):
    path, _ = _foreign(tmp_path, units="mm[Hg]")
    with pytest.raises(FormatError, match=r"no channel in volts .*mm\[Hg\]"):
        dicom.load(path)
    groups = dicom.read_dicom_waveform(path)  # the generic path keeps them, in their units
    assert list(groups[0]["units"].values) == ["mm[Hg]"]


# --------------------------------------------------------------------------------------------
# Damaged files


def _example_bytes(tmp_path):
    return dicom.READER.example(tmp_path).read_bytes()


def test_every_truncation_is_a_format_error(tmp_path):
    data = _example_bytes(tmp_path)
    p = tmp_path / "cut.dcm"
    for cut in list(range(0, len(data), 37)):
        p.write_bytes(data[:cut])
        with pytest.raises(FormatError, match=r"cut\.dcm"):
            dicom.load(p)
        assert isinstance(dicom.READER.sniff(p), (str, type(None)))


@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        (
            "NumberOfWaveformSamples",
            10**9,
            r"WaveformData holds \d+ bytes, expected 1 channels x 1000000000 samples",
        ),
        ("NumberOfWaveformChannels", 0, r"NumberOfWaveformChannels = 0"),
        ("WaveformSampleInterpretation", "MB", r"mu-law/A-law companded"),
        (
            "WaveformBitsAllocated",
            12,
            r"WaveformBitsAllocated 12 with WaveformSampleInterpretation 'SS'",
        ),
        ("SamplingFrequency", "0", r"SamplingFrequency = 0.0, expected > 0 Hz"),
        (
            "ChannelDefinitionSequence",
            Sequence([]),
            r"ChannelDefinitionSequence has 0 items for 1 channels",
        ),
    ],
)
def test_inconsistent_groups_name_group_and_attribute(tmp_path, keyword, value, message):
    path = dicom.READER.example(tmp_path)
    raw = pydicom.dcmread(path)
    setattr(raw.WaveformSequence[1], keyword, value)
    raw.save_as(path, enforce_file_format=True)
    with pytest.raises(
        FormatError, match=r"example\.dcm: multiplex group 2 of the Waveform Sequence.*" + message
    ):
        dicom.load(path)


def test_byte_flips_never_crash(tmp_path):
    rng = np.random.default_rng(5)
    data = _example_bytes(tmp_path)
    p = tmp_path / "flip.dcm"
    outcomes = {"ok": 0, "error": 0}
    for _ in range(250):
        raw = bytearray(data)
        for k in rng.integers(0, len(raw), rng.integers(1, 4)):
            raw[k] = int(rng.integers(0, 256))
        p.write_bytes(bytes(raw))
        assert isinstance(dicom.READER.sniff(p), (str, type(None)))
        try:
            dicom.load(p)
            outcomes["ok"] += 1
        except FormatError as exc:
            assert "flip.dcm" in str(exc)
            outcomes["error"] += 1
    assert outcomes["ok"] > 0


def test_not_dicom(tmp_path):
    p = tmp_path / "x.dcm"
    p.write_bytes(b"\x00" * 200)
    assert "DICM" in dicom.READER.sniff(p)
    with pytest.raises(FormatError, match=r"x\.dcm: no 'DICM' marker at byte 128"):
        dicom.load(p)
    with pytest.raises(FormatError, match="DICM"):
        dicom.read_dicom_waveform(p)


def test_annotation_json_damage_is_named(tmp_path):
    path = dicom.READER.example(tmp_path)
    raw = pydicom.dcmread(path)
    raw.WaveformAnnotationSequence[1].UnformattedTextValue = dicom.ANNOTATION_PREFIX + "{not json"
    raw.save_as(path, enforce_file_format=True)
    with pytest.raises(
        FormatError, match=r"waveform annotation 2: text after 'ncsproc-trace' is not a JSON object"
    ):
        dicom.load(path)
