"""Continuous EDF / EDF+C / BDF+C with stimulus annotations, samples through MNE."""

from __future__ import annotations

import numpy as np
import pytest

import ncsproc
from ncsproc.errors import FormatError
from ncsproc.formats import READERS
from ncsproc.formats.edf import read_edf_continuous

from .edfbuild import ANNOT, build_edf, tal


def test_example_fwave_series(tmp_path):
    path = READERS["edf"].example(tmp_path)
    ds = ncsproc.read(path)
    assert ds.sizes["trace"] == 4
    assert set(ds.study.values) == {"L_ulnar_fwave"} and set(ds.record_site.values) == {"ADM"}
    np.testing.assert_allclose(ds.stim_intensity.values, [0.030, 0.031, 0.032, 0.033], rtol=1e-12)
    np.testing.assert_array_equal(ds.distance.values, [0.07] * 4)
    # default F-wave window: -5 ms .. 100 ms around each stimulus, at 20 kHz
    np.testing.assert_allclose(ds.t_start.values, -0.005, atol=1e-15)
    np.testing.assert_array_equal(ds.n_samples.values, [2100] * 4)
    assert list(ds.record.values) == [0, 1, 2, 3]
    assert ds.attrs["source_format"] == "EDF+C"


def test_sweeps_equal_the_samples_around_each_stimulus(tmp_path):
    """The cut sweeps are the continuous samples (MNE's read) at the right offsets."""
    import mne

    path = READERS["edf"].example(tmp_path)
    ds = ncsproc.read(path)
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    data = raw.get_data()[0]
    for k in range(4):
        stim = 0.1 + 0.2 * k
        i0 = int(round((stim - 0.005) * 20000))
        np.testing.assert_allclose(
            ds.signal.values[k, :2100], data[i0 : i0 + 2100], rtol=1e-12, atol=1e-15
        )


def _continuous(
    tmp_path, *, n_records=10, tals=None, reserved="EDF+C", signals=None, name="c.edf", **kw
):
    signals = signals or [
        {
            "label": "NC R_APB",
            "samples": 1000,
            "dimension": "uV",
            "pmin": "-32768",
            "pmax": "32767",
            "dmin": "-32768",
            "dmax": "32767",
        }
    ]
    tals = tals or {}
    records = []
    for r in range(n_records):
        row = [np.arange(s["samples"]) + r * s["samples"] for s in signals]
        ann = tal(f"{r * 0.1:.1f}") + b"".join(tals.get(r, []))
        records.append(row + [ann])
    return build_edf(
        tmp_path / name,
        signals=signals + [ANNOT],
        records=records,
        reserved=reserved,
        duration="0.1",
        recording=kw.pop("recording", "Startdate X X X X MNC_R_Median_Nerve"),
        **kw,
    )


def test_window_from_the_sidecar_and_exact_sample_times(tmp_path):
    # 10 kHz ramp: sample i has value i (uV); stimulus at 0.23456 s, between samples
    path = _continuous(tmp_path, tals={2: [tal("0.23456", "Stimulus right wrist 0.2ms x 10mA")]})
    (tmp_path / "c.edf.json").write_text('{"window": ["-2 ms", "10 ms"]}')
    ds = ncsproc.read(path)
    first = int(np.ceil((0.23456 - 0.002) * 10000))
    assert ds.n_samples.values[0] == int(np.ceil((0.23456 + 0.010) * 10000)) - first
    assert ds.t_start.values[0] == pytest.approx(first / 10000 - 0.23456, abs=1e-15)
    np.testing.assert_allclose(
        ds.signal.values[0, :3], np.array([first, first + 1, first + 2]) * 1e-6, rtol=1e-12
    )
    assert ds.attrs["sweep_window"] == "-0.002 0.01 s"


def test_sweep_is_clipped_at_the_start_of_the_recording(tmp_path):
    path = _continuous(tmp_path, tals={0: [tal("0.002", "Stimulus right wrist")]})
    ds = ncsproc.read(path)
    assert ds.t_start.values[0] == pytest.approx(-0.002, abs=1e-15)
    assert ds.n_samples.values[0] == 520  # 2 ms before, 50 ms after at 10 kHz


def test_two_rates_are_read_without_resampling(tmp_path):
    signals = [
        {
            "label": "NC R_APB",
            "samples": 1000,
            "dimension": "uV",
            "pmin": "-32768",
            "pmax": "32767",
            "dmin": "-32768",
            "dmax": "32767",
        },
        {
            "label": "NC R_ADM",
            "samples": 250,
            "dimension": "mV",
            "pmin": "-32768",
            "pmax": "32767",
            "dmin": "-32768",
            "dmax": "32767",
        },
    ]
    path = _continuous(tmp_path, signals=signals, tals={3: [tal("0.35", "Stimulus right wrist")]})
    ds = ncsproc.read(path)
    by_site = {s: i for i, s in enumerate(ds.record_site.values)}
    apb, adm = by_site["APB"], by_site["ADM"]
    assert ds.sampling_rate.values[adm] == 2500.0 and ds.sampling_rate.values[apb] == 10000.0
    i0 = int(np.ceil((0.35 - 0.005) * 2500))
    n = int(ds.n_samples.values[adm])
    np.testing.assert_allclose(ds.signal.values[adm, :n], np.arange(i0, i0 + n) * 1e-3, rtol=1e-12)


def test_bdf_plus_c_through_mne(tmp_path):
    signals = [
        {
            "label": "NC L_APB",
            "samples": 1000,
            "dimension": "uV",
            "pmin": "-8388608",
            "pmax": "8388607",
            "dmin": "-8388608",
            "dmax": "8388607",
        }
    ]
    path = _continuous(
        tmp_path,
        signals=signals,
        family="BDF",
        reserved="BDF+C",
        name="c.bdf",
        tals={1: [tal("0.15", "Stimulus left wrist")]},
        recording="Startdate X X X X MNC_L_Median_Nerve",
    )
    ds = ncsproc.read(path)
    assert ds.attrs["source_format"] == "BDF+C"
    i0 = int(np.ceil(0.145 * 10000))
    np.testing.assert_allclose(ds.signal.values[0, :5], np.arange(i0, i0 + 5) * 1e-6, rtol=1e-12)


def test_plain_edf_has_no_stimulus_events(tmp_path):
    path = build_edf(
        tmp_path / "plain.edf",
        signals=[{"label": "APB", "samples": 100, "dimension": "mV"}],
        records=[[np.zeros(100, int)]],
        reserved="",
    )
    with pytest.raises(
        FormatError,
        match=r"plain\.edf: EDF file without an 'EDF Annotations' signal.*no sweep can be cut",
    ):
        ncsproc.read(path)


def test_no_stimulus_annotation(tmp_path):
    path = _continuous(tmp_path, tals={1: [tal("0.15", "Lights off")]})
    with pytest.raises(
        FormatError, match=r"c\.edf: no 'Stimulus \.\.\.' annotation among its 1 annotation"
    ):
        ncsproc.read(path)


def test_edfd_given_to_the_continuous_reader(tmp_path):
    path = _continuous(tmp_path, reserved="EDF+D")
    with pytest.raises(FormatError, match=r"format='edf\+d' \(MNE would merge the sweeps\)"):
        read_edf_continuous(path)


def test_window_outside_the_recording(tmp_path):
    path = _continuous(tmp_path, tals={9: [tal("0.95", "Stimulus right wrist")]})
    (tmp_path / "c.edf.json").write_text('{"window": ["60 ms", "80 ms"]}')
    with pytest.raises(FormatError, match=r"stimulus 0 at \+0\.95 s.*lies outside the recording"):
        ncsproc.read(path)


def test_bad_window_in_sidecar(tmp_path):
    path = _continuous(tmp_path, tals={2: [tal("0.25", "Stimulus right wrist")]})
    (tmp_path / "c.edf.json").write_text('{"window": [0.01, -0.01]}')
    with pytest.raises(
        FormatError, match=r"c\.edf\.json: 'window' is \[0\.01, -0\.01\]; expected start < end"
    ):
        ncsproc.read(path)


def test_plain_edf_with_stimulus_times_from_the_sidecar(tmp_path):
    signal = {
        "label": "R APB",
        "samples": 1000,
        "dimension": "uV",
        "pmin": "-32768",
        "pmax": "32767",
        "dmin": "-32768",
        "dmax": "32767",
    }
    records = [[np.arange(1000) + r * 1000] for r in range(5)]
    path = build_edf(
        tmp_path / "plain.edf",
        signals=[signal],
        records=records,
        reserved="",
        duration="0.1",
        recording="MNC_R_Median",
    )
    (tmp_path / "plain.edf.json").write_text(
        '{"stimuli": ["100 ms", 0.3], "records": [{"record": 0, "stim_site": "wrist"},'
        ' {"record": 1, "stim_site": "elbow"}]}'
    )
    ds = ncsproc.read(path)
    assert list(ds.stim_site.values) == ["wrist", "elbow"] and set(ds.study.values) == {
        "R_median_motor"
    }
    np.testing.assert_allclose(ds.signal.values[1, :2], np.array([2950, 2951]) * 1e-6, rtol=1e-12)
    np.testing.assert_allclose(ds.t_start.values, -0.005, atol=1e-15)


def test_sidecar_stimuli_and_file_annotations_do_not_mix(tmp_path):
    path = _continuous(tmp_path, tals={2: [tal("0.25", "Stimulus right wrist")]})
    (tmp_path / "c.edf.json").write_text('{"stimuli": [0.5]}')
    with pytest.raises(
        FormatError, match=r"the sidecar gives 'stimuli' but the file has 1 stimulus annotation"
    ):
        ncsproc.read(path)
