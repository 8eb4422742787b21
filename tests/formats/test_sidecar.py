"""Sidecar metadata, applied by ncsproc.read to every reader's output."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import ncsproc
from ncsproc.errors import FormatError
from ncsproc.formats import READERS
from ncsproc.formats._sidecar import decimal_text, normalize, parse_quantity, to_decimal


@pytest.fixture
def spec(tmp_path):
    folder = tmp_path / "V001"
    folder.mkdir()
    return READERS["edf+d"].example(folder)


def _sidecar(path, data, name=None):
    target = path.with_name(name or path.name + ".json")
    target.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return target


def test_sidecar_fills_what_the_file_lacks(spec):
    _sidecar(
        spec,
        {
            "exam_id": "E42",
            "subject_id": "S-0009",
            "height": "172 cm",
            "temperature": 32.5,
            "records": [{"record": 1, "comment": "elbow, repeated"}],
        },
    )
    ds = ncsproc.read(spec)
    assert set(ds.exam_id.values) == {"E42"} and set(ds.subject_id.values) == {"S-0009"}
    assert list(ds.trace.values) == ["E42/R_median_motor/0", "E42/R_median_motor/1"]
    np.testing.assert_array_equal(ds.height.values, [172.0, 172.0])
    np.testing.assert_array_equal(ds.temperature.values, [32.5, 32.5])


def test_without_a_sidecar_the_exam_is_the_folder(spec):
    ds = ncsproc.read(spec)
    assert set(ds.exam_id.values) == {"V001"} and set(ds.subject_id.values) == {""}


def test_bids_style_stem_sidecar(spec):
    _sidecar(spec, {"subject_id": "S1"}, name=spec.stem + ".json")
    assert ncsproc.read(spec).subject_id.values[0] == "S1"


def test_two_sidecars_are_ambiguous(spec):
    _sidecar(spec, {})
    _sidecar(spec, {}, name=spec.stem + ".json")
    with pytest.raises(
        FormatError, match=r"two sidecars found \(MNC_R_median\.edf\.json and MNC_R_median\.json\)"
    ):
        ncsproc.read(spec)


def test_equal_values_are_accepted_and_contradictions_name_both(spec):
    _sidecar(
        spec,
        {"side": "right", "nerve": "Median nerve", "records": [{"record": 0, "distance": "65 mm"}]},
    )
    ncsproc.read(spec)
    _sidecar(spec, {"records": [{"record": 1, "distance": "27 cm"}]})
    with pytest.raises(
        FormatError,
        match=(
            r"MNC_R_median\.edf: MNC_R_median\.edf\.json \(records\[0\]\) says distance = 0\.27 "
            r"m, but the file says 0\.285 for record 1"
        ),
    ):
        ncsproc.read(spec)
    _sidecar(spec, {"side": "L"})
    with pytest.raises(FormatError, match=r"says side = 'L', but the file says 'R'"):
        ncsproc.read(spec)


def test_age_tolerates_completed_years(spec):
    _sidecar(spec, {"age": 50})  # the file gives 50.83 (from the birth date)
    assert ncsproc.read(spec).age.values[0] == pytest.approx(50.83, abs=0.01)
    _sidecar(spec, {"age": 52})
    with pytest.raises(FormatError, match=r"says age = 52\.0 years, but the file says 50\.8"):
        ncsproc.read(spec)


def test_identifying_keys_are_refused(spec):
    _sidecar(spec, {"records": [{"record": 0, "patient_name": "Jane"}]})
    with pytest.raises(
        FormatError, match=r"identifying keys are not accepted in a sidecar: \['patient_name'\]"
    ):
        ncsproc.read(spec)


def test_unknown_keys_are_refused(spec):
    _sidecar(spec, {"distnace": 0.1})
    with pytest.raises(
        FormatError,
        match=(
            r"unknown key\(s\) \['distnace'\].*this reader's keys \['polarity', 'stimuli', "
            r"'window'\]"
        ),
    ):
        ncsproc.read(spec)
    _sidecar(spec, {"_note": "free", "comment": "free too", "layout": "columns"})
    with pytest.raises(FormatError, match=r"unknown key\(s\) \['layout'\]"):
        ncsproc.read(spec)


def test_invalid_json_names_line_and_column(spec):
    _sidecar(spec, '{\n  "exam_id": "E1",\n  "age" 50\n}')
    with pytest.raises(
        FormatError, match=r"MNC_R_median\.edf\.json: line 3, column 9: invalid JSON"
    ):
        ncsproc.read(spec)
    _sidecar(spec, "[1, 2]")
    with pytest.raises(FormatError, match=r"expected a JSON object"):
        ncsproc.read(spec)


def test_bad_values(spec):
    _sidecar(spec, {"distance": "6 furlongs"})
    with pytest.raises(FormatError, match=r"key 'distance': unknown unit 'furlongs'"):
        ncsproc.read(spec)
    _sidecar(spec, {"side": "both"})
    with pytest.raises(FormatError, match=r"side 'both' is not one of L, R, left, right"):
        ncsproc.read(spec)
    _sidecar(spec, {"records": [{"record": 7, "stim_site": "axilla"}]})
    with pytest.raises(
        FormatError, match=r"records\[0\] refers to record 7, but the file has records \[0, 1\]"
    ):
        ncsproc.read(spec)


def test_sidecar_applies_to_native_files_too(tmp_path, make_traces):
    traces = make_traces(n_sites=1)
    path = ncsproc.write(traces, tmp_path / "t.h5")
    _sidecar(path, {"height": 180})
    assert ncsproc.read(path).height.values[0] == 180.0
    _sidecar(path, {"subject_id": "S2"})
    with pytest.raises(FormatError, match=r"says subject_id = 'S2', but the file says 'S1'"):
        ncsproc.read(path)


@pytest.mark.parametrize(
    "value, kind, expected",
    [
        ("6.5 cm", "length", 0.065),
        ("65mm", "length", 0.065),
        ("0.2 ms", "time", 2e-4),
        ("200 \u00b5s", "time", 2e-4),
        ("8,2 mA", "current", 0.0082),
        ("10 kHz", "frequency", 10000.0),
        ("1.72 m", "height", 172.0),
        ("91.4 F", "temperature", 33.0),
        (0.07, "length", 0.07),
        ("-5 ms", "time", -0.005),
    ],
)
def test_quantities(value, kind, expected):
    assert parse_quantity(value, kind, "here") == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("side", "Left", "L"),
        ("side", "r", "R"),
        ("modality", "F-wave", "fwave"),
        ("modality", "SNC", "sensory"),
        ("nerve", "Common Peroneal", "peroneal"),
        ("nerve", "Superficial_Peroneal_Nerve", "superficial_peroneal"),
        ("stim_site", "Below_Elbow", "below elbow"),
        ("record_site", "index finger", "digit II"),
        ("record_site", "dig V", "digit V"),
        ("record_site", "abductor hallucis", "AH"),
        ("record_site", "edb", "EDB"),
        ("record_site", "ankle", "ankle"),
    ],
)
def test_vocabulary(name, value, expected):
    assert normalize(name, value) == expected


def test_decimal_text_round_trips_exactly():
    rng = np.random.default_rng(0)
    for x in rng.uniform(1e-6, 1.0, 200):
        for f in ("1", "0.01", "0.001"):
            from decimal import Decimal

            assert float(to_decimal(decimal_text(float(x), Decimal(f))) * Decimal(f)) == float(x)
    assert decimal_text(2e-4, to_decimal("0.001")) == "0.2"
    assert not math.isnan(parse_quantity("1e-3 s", "time", "x"))
