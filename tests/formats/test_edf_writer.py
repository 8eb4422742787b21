"""ncsproc.write_edf: EDF+D files that ncsproc, edfio and MNE read back."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ncsproc
from ncsproc.formats.edf import EdfWriteError, read_header
from ncsproc.simulate import exam, response_set

SAMPLE_COORDS = [
    "trace",
    "sampling_rate",
    "t_start",
    "n_samples",
    "exam_id",
    "subject_id",
    "study",
    "nerve",
    "side",
    "modality",
    "stim_site",
    "record_site",
    "distance",
    "stim_intensity",
    "stim_duration",
    "highpass",
    "lowpass",
    "temperature",
    "age",
    "height",
    "record",
]


def _lsb(path):
    """Half a quantisation step of the file's signal, in V."""
    h = read_header(path)
    s = h.ordinary_signals[0]
    factor = {"V": 1.0, "mV": 1e-3, "uV": 1e-6}[s.dimension]
    return float(s.physical_max - s.physical_min) / (s.digital_max - s.digital_min) * factor


def _read_all(paths):
    return ncsproc.concat_trace_sets([ncsproc.read(p) for p in paths]).sortby("trace")


@pytest.fixture(scope="module")
def exam_traces():
    traces, _ = exam("cidp_like", seed=11, exam_id="EXW1", subject_id="SIMW1")
    return traces


def test_exam_round_trip_to_half_an_lsb(exam_traces, tmp_path):
    paths = ncsproc.write_edf(exam_traces, tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in paths) == sorted(
        f"EXW1/{s}.edf" for s in set(exam_traces.study.values)
    )
    back = _read_all(paths)
    ref = exam_traces.sortby("trace")
    for name in SAMPLE_COORDS:
        a, b = ref[name].values, back[name].values
        if a.dtype.kind == "f":
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert list(a.astype(str)) == list(b.astype(str)), name
    for p in paths:
        ds = ncsproc.read(p)
        half = _lsb(p) / 2
        for t in ds.trace.values:
            n = int(ds.n_samples.sel(trace=t))
            x = ds.signal.sel(trace=t).values[:n]
            y = ref.signal.sel(trace=t).values[:n]
            assert np.max(np.abs(x - y)) <= half * (1 + 1e-9), (p.name, t)
            assert np.max(np.abs(x - y)) > 0 or half < 1e-9


def test_files_open_in_edfio_and_mne(exam_traces, tmp_path):
    import edfio
    import mne

    paths = ncsproc.write_edf(exam_traces, tmp_path)
    for p in paths:
        ds = ncsproc.read(p)
        edf = edfio.read_edf(p)
        assert edf.signals[0].sampling_frequency == ds.sampling_rate.values[0]
        assert sum(1 for a in edf.annotations if a.text.startswith("Stimulus")) == ds.sizes["trace"]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            raw = mne.io.read_raw_edf(p, preload=True, verbose="error")
        # MNE reads EDF+D as contiguous: the sweeps one after the other, same samples
        n = int(ds.n_samples.values[0])
        np.testing.assert_allclose(
            raw.get_data()[0][:n], ds.signal.values[0, :n], rtol=1e-9, atol=1e-12
        )


def test_header_and_annotations_follow_the_conventions(tmp_path):
    traces, _ = response_set("sensory", 2, seed=4, pretrigger=0.002)
    traces = traces.assign_coords(
        highpass=("trace", [20.0, 20.0], traces.highpass.attrs),
        lowpass=("trace", [3000.0, 3000.0], traces.lowpass.attrs),
    )
    path = ncsproc.write_edf(traces, tmp_path / "snap.edf")[0]
    h = read_header(path)
    assert h.reserved == "EDF+D" and h.patient == "X X X X"
    assert h.recording == "Startdate X X X X SNC_L_Median_Nerve"
    sig = h.ordinary_signals[0]
    assert (
        sig.label == "NC L_digit II"
        and sig.dimension == "uV"
        and sig.prefiltering == "HP:20Hz LP:3000Hz"
    )
    assert (sig.digital_min, sig.digital_max) == (
        -32768,
        32767,
    ) and sig.physical_min == -sig.physical_max
    raw = path.read_bytes()
    assert (
        b"\x14Stimulus left wrist 0.2ms x " in raw
        and b"mA at " in raw
        and b"cm from recording site\x14\x00" in raw
    )
    assert b'<EDF_XMLnote><Stimulus_wrist><duration unit="ms">0.2</duration>' in raw
    back = ncsproc.read(path)
    np.testing.assert_array_equal(back.t_start.values, traces.t_start.values)
    assert float(back.t_start.values[0]) == -0.002


def test_positive_t_start_and_no_xmlnote(tmp_path):
    traces, _ = response_set("motor", 2, seed=5)
    traces = traces.assign_coords(
        t_start=("trace", [0.0015, 0.0015], traces.t_start.attrs),
        temperature=("trace", [31.5, 31.5], traces.temperature.attrs),
    )
    path = ncsproc.write_edf(traces, tmp_path / "m.edf", xmlnote=False)[0]
    assert b"EDF_XMLnote" not in path.read_bytes()
    sidecar = json.loads((tmp_path / "m.edf.json").read_text())
    assert sidecar["temperature"] == 31.5 and sidecar["exam_id"] == "RS5-motor"
    back = ncsproc.read(path)
    np.testing.assert_array_equal(back.t_start.values, [0.0015, 0.0015])
    np.testing.assert_array_equal(back.temperature.values, [31.5, 31.5])
    assert list(back.trace.values) == list(traces.trace.values)


def test_values_that_vary_go_to_per_record_sidecar_entries(tmp_path):
    traces, _ = response_set("motor", 3, seed=6)
    traces = traces.assign_coords(age=("trace", [50.0, 50.0, 51.0], traces.age.attrs))
    path = ncsproc.write_edf(traces, tmp_path / "m.edf")[0]
    sidecar = json.loads((tmp_path / "m.edf.json").read_text())
    assert sidecar["records"] == [
        {"record": 0, "age": 50.0},
        {"record": 1, "age": 50.0},
        {"record": 2, "age": 51.0},
    ]
    np.testing.assert_array_equal(ncsproc.read(path).age.values, [50.0, 50.0, 51.0])


def test_a_study_name_that_is_not_derived_goes_to_the_sidecar(tmp_path):
    traces, _ = response_set("motor", 1, seed=7)
    traces = traces.assign_coords(study=("trace", ["median motor (repeat)"]))
    traces = traces.assign_coords(trace=("trace", ["RS7-motor/median motor (repeat)/0"]))
    path = ncsproc.write_edf(traces, tmp_path / "m.edf")[0]
    back = ncsproc.read(path)
    assert back.study.values[0] == "median motor (repeat)"
    assert back.trace.values[0] == "RS7-motor/median motor (repeat)/0"


def test_writing_is_deterministic(exam_traces, tmp_path):
    a = ncsproc.write_edf(exam_traces, tmp_path / "a")
    b = ncsproc.write_edf(exam_traces, tmp_path / "b")
    for p, q in zip(a, b, strict=True):
        assert p.read_bytes() == q.read_bytes()
        assert (
            p.with_name(p.name + ".json").read_bytes() == q.with_name(q.name + ".json").read_bytes()
        )


# --------------------------------------------------------------------------------------------
# what EDF+D cannot hold is refused with a reason
# --------------------------------------------------------------------------------------------


def test_several_studies_into_one_file(exam_traces, tmp_path):
    with pytest.raises(
        EdfWriteError,
        match=r"x\.edf: one EDF\+D file holds one study of one exam; the traces hold 9",
    ):
        ncsproc.write_edf(exam_traces, tmp_path / "x.edf")


def test_different_sampling_rates_in_one_study(tmp_path):
    traces, _ = response_set("motor", 2, seed=1)
    traces = traces.assign_coords(
        sampling_rate=("trace", [20000.0, 10000.0], traces.sampling_rate.attrs)
    )
    with pytest.raises(
        EdfWriteError, match=r"share one sampling_rate.*write them to separate files"
    ):
        ncsproc.write_edf(traces, tmp_path / "x.edf")


def test_different_sweep_lengths_in_one_study(make_traces, tmp_path):
    traces = make_traces()
    with pytest.raises(EdfWriteError, match=r"share one n_samples"):
        ncsproc.write_edf(traces, tmp_path / "x.edf")


def test_unknown_side_and_bad_samples(make_traces, tmp_path):
    traces = make_traces(n_sites=1)
    nan = traces.copy(deep=True)
    nan["signal"][0, 3] = np.nan
    nan = nan.assign_coords(n_samples=("trace", [400], traces.n_samples.attrs))
    with pytest.raises(EdfWriteError, match=r"NaN or infinite samples"):
        ncsproc.write_edf(nan, tmp_path / "x.edf")


def test_sampling_rate_that_the_duration_field_cannot_hold(make_traces, tmp_path):
    from pathlib import Path

    from ncsproc.formats.edf._writer import _duration_text

    traces = make_traces(n_sites=1, sampling_rate=48000.0)
    path = ncsproc.write_edf(traces, tmp_path / "ok.edf")[
        0
    ]  # 400 samples: 0.008333 s, drift < 0.1 sample
    fs_back = ncsproc.read(path).sampling_rate.values[0]
    assert fs_back != 48000.0 and abs(400 / fs_back - 400 / 48000.0) * 48000.0 <= 0.1
    assert _duration_text(1087, 20000.0, Path("x.edf")) == "0.05435"
    # an 8-character field keeps 1 us over sweeps shorter than 10 s; only absurd sweeps fail
    with pytest.raises(
        EdfWriteError,
        match=r"x\.edf: 123456789 samples at 7\.0 Hz .* record-duration field cannot hold",
    ):
        _duration_text(123456789, 7.0, Path("x.edf"))


def test_public_name_is_lazy():
    assert ncsproc.write_edf.__module__ == "ncsproc.formats.edf._writer"


@settings(max_examples=200, deadline=None)
@given(
    site=st.sampled_from(["wrist", "below elbow", "popliteal fossa", "fibular head", ""]),
    side=st.sampled_from(["L", "R"]),
    duration=st.one_of(st.just(math.nan), st.floats(1e-6, 1e-2)),
    intensity=st.one_of(st.just(math.nan), st.floats(1e-6, 0.1)),
    distance=st.one_of(st.just(math.nan), st.floats(1e-3, 1.5)),
    temperature=st.one_of(st.just(math.nan), st.floats(20.0, 40.0)),
)
def test_stimulus_annotations_read_back_exactly(
    site, side, duration, intensity, distance, temperature
):
    """Whatever the writer says in words or XML, the parsers give back the same floats."""
    from ncsproc.formats.edf import parse_stimulus, parse_xmlnote
    from ncsproc.formats.edf._writer import _stimulus_text, _xmlnote_text

    for s in (
        parse_stimulus(_stimulus_text(side, site, duration, intensity, distance), "t"),
        parse_xmlnote(_xmlnote_text(side, site, duration, intensity, distance, temperature), "t"),
    ):
        assert (s.side, s.site) == (side, site)
        for got, want in ((s.duration, duration), (s.intensity, intensity), (s.distance, distance)):
            assert (math.isnan(got) and math.isnan(want)) or got == want
    xml = parse_xmlnote(_xmlnote_text(side, site, duration, intensity, distance, temperature), "t")
    assert (
        math.isnan(xml.temperature) and math.isnan(temperature)
    ) or xml.temperature == temperature
