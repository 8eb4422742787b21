"""Delimited text with a JSON sidecar, and vendor dialects."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ncsproc
from ncsproc.errors import FormatError
from ncsproc.formats import READERS, text


def _write(tmp_path, name, body, sidecar=None):
    folder = tmp_path / "EXT1"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(body, encoding="utf-8")
    if sidecar is not None:
        (folder / (name + ".json")).write_text(json.dumps(sidecar), encoding="utf-8")
    return path


META = {"nerve": "median", "side": "L", "modality": "motor", "record_site": "APB"}


def test_example_reads_with_its_sidecar(tmp_path):
    path = READERS["text"].example(tmp_path)
    ds = ncsproc.read(path)
    assert ds.sizes["trace"] == 3
    assert list(ds.stim_site.values) == ["wrist", "below elbow", "above elbow"]
    np.testing.assert_allclose(ds.distance.values, [0.07, 0.26, 0.36])
    np.testing.assert_allclose(ds.t_start.values, -0.003, atol=1e-12)
    np.testing.assert_allclose(ds.sampling_rate.values, 20000.0, rtol=1e-6)
    assert set(ds.study.values) == {"L_ulnar_motor"}


def test_columns_layout_units_and_sampling_rate(tmp_path):
    body = "wrist,elbow\n0.0,1.0\n0.5,-2.5\n1.0,\n"
    path = _write(
        tmp_path,
        "m.csv",
        body,
        {
            "units": "mV",
            "sampling_rate": "10 kHz",
            "columns_are": "stim_site",
            "distance": None,
            **META,
        },
    )
    ds = ncsproc.read(path)
    assert list(ds.stim_site.values) == ["wrist", "elbow"]
    np.testing.assert_array_equal(ds.n_samples.values, [3, 2])  # a column may end early
    np.testing.assert_allclose(ds.signal.values[1, :2], [1e-3, -2.5e-3])
    assert ds.sampling_rate.values[0] == 10000.0 and ds.t_start.values[0] == 0.0
    assert list(ds.trace.values) == ["EXT1/L_median_motor/0", "EXT1/L_median_motor/1"]
    assert set(ds.source_file.values) == {"m.csv"}


def test_rows_layout_with_labels_decimal_comma_and_inverted_polarity(tmp_path):
    body = "Wrist;1,5;2,5;-1\nElbow;0,25;0;0\n"
    path = _write(
        tmp_path,
        "r.txt",
        body,
        {
            "layout": "rows",
            "label_column": True,
            "decimal": ",",
            "units": "uV",
            "sample_interval": "50 us",
            "stimulus_sample": 1,
            "polarity": "G2-G1",
            "columns_are": "stim_site",
            **META,
        },
    )
    ds = ncsproc.read(path)
    np.testing.assert_allclose(ds.signal.values[0], [-1.5e-6, -2.5e-6, 1e-6])
    assert ds.sampling_rate.values[0] == pytest.approx(20000.0)
    assert ds.t_start.values[0] == pytest.approx(-5e-5)
    assert list(ds.stim_site.values) == ["wrist", "elbow"]


def test_long_layout_with_time_column(tmp_path):
    lines = ["sweep\tt_ms\tvalue"]
    for sweep in ("A", "B"):
        for i in range(4):
            lines.append(f"{sweep}\t{-0.1 + i * 0.05:.2f}\t{i if sweep == 'A' else -i}")
    path = _write(
        tmp_path,
        "l.tsv",
        "\n".join(lines) + "\n",
        {
            "layout": "long",
            "trace_column": "sweep",
            "value_column": "value",
            "time_column": "t_ms",
            "time_unit": "ms",
            "units": "mV",
            **META,
            "traces": [
                {"column": "A", "stim_site": "wrist"},
                {"column": "B", "stim_site": "elbow"},
            ],
        },
    )
    ds = ncsproc.read(path)
    assert ds.sampling_rate.values[0] == pytest.approx(20000.0)
    assert ds.t_start.values[0] == pytest.approx(-1e-4)
    np.testing.assert_allclose(ds.signal.values[1], [0, -1e-3, -2e-3, -3e-3])
    assert list(ds.stim_site.values) == ["wrist", "elbow"]


def test_per_trace_metadata_by_position(tmp_path):
    path = _write(
        tmp_path,
        "p.csv",
        "a,b\n1,2\n3,4\n",
        {
            "units": "mV",
            "sampling_rate": 20000,
            **META,
            "traces": [
                {"stim_site": "wrist", "distance": "65 mm"},
                {"stim_site": "elbow", "distance": 0.28},
            ],
        },
    )
    ds = ncsproc.read(path)
    np.testing.assert_allclose(ds.distance.values, [0.065, 0.28])


# --------------------------------------------------------------------------------------------
# vendor dialects
# --------------------------------------------------------------------------------------------

VENDOR = """ACME EMG export v2.1
Nerve: Ulnar
Side: Right
Test: Motor
Sampling Rate: 20 kHz
Sensitivity unit: mV
Pre-trigger samples: 40
Recording site: ADM
Time(ms)\tWrist\tB.Elbow
"""


@pytest.fixture
def acme():
    text.register_dialect(
        "acme-v2",
        {
            "signature": r"^ACME EMG export v2\.",
            "description": "made-up vendor for the test",
            "skip_lines": 8,
            "delimiter": "tab",
            "header_fields": {
                "Nerve": "nerve",
                "Side": "side",
                "Test": "modality",
                "Sampling Rate": "sampling_rate",
                "Sensitivity unit": "units",
                "Pre-trigger samples": "stimulus_sample",
                "Recording site": "record_site",
            },
            "time_column": 0,
            "time_unit": "ms",
            "columns_are": "stim_site",
        },
    )
    yield "acme-v2"
    text.unregister_dialect("acme-v2")


def _acme_file(tmp_path, name="acme.txt"):
    rows = [f"{(i - 40) * 0.05:.2f}\t{i * 0.01:.2f}\t{-i * 0.01:.2f}" for i in range(100)]
    folder = tmp_path / "EXA"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(VENDOR + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_registered_dialect_reads_without_a_sidecar(tmp_path, acme):
    path = _acme_file(tmp_path)
    ds = ncsproc.read(path)
    assert set(ds.study.values) == {"R_ulnar_motor"} and set(ds.record_site.values) == {"ADM"}
    assert list(ds.stim_site.values) == ["wrist", "b.elbow"]
    assert ds.t_start.values[0] == pytest.approx(-0.002)
    assert ds.sampling_rate.values[0] == pytest.approx(20000.0)
    np.testing.assert_allclose(ds.signal.values[0, :3], [0, 1e-5, 2e-5])
    assert ds.attrs["text_source"] == "dialect 'acme-v2'"


def test_sidecar_adds_to_a_dialect_and_contradictions_are_named(tmp_path, acme):
    path = _acme_file(tmp_path)
    side = path.with_name(path.name + ".json")
    side.write_text(
        json.dumps(
            {
                "dialect": "acme-v2",
                "subject_id": "P7",
                "records": [{"record": 0, "distance": "7 cm"}],
            }
        )
    )
    ds = ncsproc.read(path)
    assert ds.subject_id.values[0] == "P7" and ds.distance.values[0] == pytest.approx(0.07)
    side.write_text(json.dumps({"dialect": "acme-v2", "side": "L"}))
    with pytest.raises(
        FormatError,
        match=r"acme\.txt: side is 'L' in dialect 'acme-v2' and acme\.txt\.json but 'R' in line 3",
    ):
        ncsproc.read(path)


def test_dialect_keys_are_checked():
    with pytest.raises(ValueError, match=r"unknown keys \['sampling'\]"):
        text.register_dialect("bad", {"sampling": 1})
    with pytest.raises(ValueError, match=r"layout must be one of"):
        text.register_dialect("bad", {"layout": "diagonal"})


def test_unregistered_dialect(tmp_path):
    path = _write(tmp_path, "x.csv", "1\n", {"dialect": "nope"})
    with pytest.raises(FormatError, match=r"x\.csv\.json: dialect 'nope' is not registered"):
        ncsproc.read(path)


# --------------------------------------------------------------------------------------------
# errors name file, line and expectation
# --------------------------------------------------------------------------------------------


def test_units_are_required(tmp_path):
    path = _write(
        tmp_path, "u.csv", "a\n1\n", {"layout": "columns", "sampling_rate": 20000, **META}
    )
    with pytest.raises(
        FormatError, match=r"u\.csv \(u\.csv\.json\): the unit of the samples is not given"
    ):
        ncsproc.read(path)


def test_not_a_voltage_unit(tmp_path):
    path = _write(tmp_path, "u.csv", "a\n1\n", {"units": "mA", "sampling_rate": 20000, **META})
    with pytest.raises(FormatError, match=r"unit 'mA' is not a voltage"):
        ncsproc.read(path)


def test_sampling_rate_is_required(tmp_path):
    path = _write(tmp_path, "s.csv", "a\n1\n", {"units": "mV", **META})
    with pytest.raises(FormatError, match=r"the sampling rate is not given"):
        ncsproc.read(path)


def test_a_bad_number_names_line_and_column(tmp_path):
    path = _write(
        tmp_path, "n.csv", "a,b\n1,2\n3,x4\n", {"units": "mV", "sampling_rate": 20000, **META}
    )
    with pytest.raises(
        FormatError, match=r"n\.csv: line 3, column 2: expected a number, found 'x4'"
    ):
        ncsproc.read(path)


def test_a_hole_inside_a_column(tmp_path):
    path = _write(
        tmp_path, "h.csv", "a,b\n1,2\n3,\n5,6\n", {"units": "mV", "sampling_rate": 20000, **META}
    )
    with pytest.raises(FormatError, match=r"h\.csv: line 3, column 2: empty cell inside the trace"):
        ncsproc.read(path)


def test_time_column_must_be_uniform(tmp_path):
    path = _write(
        tmp_path,
        "t.csv",
        "t,a\n0,1\n1,2\n2.5,3\n3,4\n",
        {"units": "mV", "time_column": "t", "time_unit": "ms", **META},
    )
    with pytest.raises(FormatError, match=r"t\.csv: time column not uniformly spaced: sample 2"):
        ncsproc.read(path)


def test_time_column_contradicts_the_sampling_rate(tmp_path):
    path = _write(
        tmp_path,
        "t.csv",
        "t,a\n0,1\n0.05,2\n0.1,3\n",
        {"units": "mV", "time_column": "t", "time_unit": "ms", "sampling_rate": "10 kHz", **META},
    )
    with pytest.raises(
        FormatError, match=r"time column's step .* contradicts sampling rate 10000\.0 Hz"
    ):
        ncsproc.read(path)


def test_undecodable_text(tmp_path):
    path = _write(tmp_path, "d.csv", "a\n1\n", {"units": "mV", "sampling_rate": 20000, **META})
    path.write_bytes(b"a\n1\n\xff\xfe2\n")
    with pytest.raises(FormatError, match=r"d\.csv: line 3, byte 4: cannot decode as 'utf-8-sig'"):
        ncsproc.read(path)


def test_missing_metadata_is_not_invented(tmp_path):
    path = _write(tmp_path, "m.csv", "a\n1\n2\n", {"units": "mV", "sampling_rate": 20000})
    ds = ncsproc.read(path)  # nothing invented: unknown stays unknown ("")
    assert set(ds.side.values) == set(ds.nerve.values) == set(ds.modality.values) == {""}
    from ncsproc.unknowns import UNKNOWN_MODALITY, measure_known

    assert set(measure_known(ds)["status"].values) == {UNKNOWN_MODALITY}


def test_text_without_sidecar_is_not_claimed(tmp_path):
    path = _write(tmp_path, "plain.csv", "1,2\n3,4\n")
    with pytest.raises(
        ncsproc.UnsupportedFormatError, match=r"text: text, but no sidecar plain\.csv\.json"
    ):
        ncsproc.read(path)
