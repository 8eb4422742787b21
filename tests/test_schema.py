"""The trace-set contract: the constructor builds valid sets, the validator names every problem."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from ncsproc.errors import SchemaError
from ncsproc.schema import (
    SCHEMA,
    TRACE_COORDS,
    concat_trace_sets,
    make_trace_set,
    select,
    time_axis,
    trace_values,
    validate_trace_set,
)


def test_constructor_builds_the_contract(make_traces):
    ds = make_traces()
    validate_trace_set(ds)
    assert ds["signal"].dims == ("trace", "sample")
    assert ds["signal"].attrs["units"] == "V"
    assert ds.attrs["schema"] == SCHEMA == "ncsproc-traces/1"
    assert ds.attrs["history"].endswith("make_trace_set")
    for spec in TRACE_COORDS:
        assert ds[spec.name].dims == ("trace",)
        if spec.units:
            assert ds[spec.name].attrs["units"] == spec.units
    # ragged input is NaN-padded and n_samples says how much is valid
    assert list(ds["n_samples"].values) == [400, 390]
    assert np.isnan(ds["signal"].values[1, 390:]).all()
    assert not np.isnan(ds["signal"].values[1, :390]).any()
    assert list(ds["trace"].values) == ["E1/L_median_motor/0", "E1/L_median_motor/1"]


def test_2d_input_infers_valid_length_from_padding():
    data = np.zeros((2, 6))
    data[1, 4:] = np.nan
    ds = make_trace_set(
        data,
        sampling_rate=1e4,
        exam_id="E",
        study="s",
        nerve="ulnar",
        side="R",
        modality="sensory",
        stim_site="wrist",
        record_site="digit V",
    )
    assert list(ds["n_samples"].values) == [6, 4]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda ds: ds.drop_vars("nerve"), "coordinate 'nerve'"),
        (lambda ds: ds.assign_coords(distance=ds.distance.assign_attrs(units="mm")), "units 'mm'"),
        (lambda ds: ds.assign_coords(distance=("trace", [70.0, 300.0], {"units": "m"})), "metres"),
        (
            lambda ds: ds.assign_coords(sampling_rate=("trace", [-1.0, 2e4], {"units": "Hz"})),
            "positive finite",
        ),
        (
            lambda ds: ds.assign_coords(n_samples=("trace", [401, 10])),
            "padded width 400",
        ),
        (lambda ds: ds.assign_coords(trace=["a", "a"]), "not unique: 'a'"),
        (lambda ds: ds.assign_coords(side=("trace", ["L", "left"])), "'side' must be one of"),
        (lambda ds: ds.assign_coords(modality=("trace", ["motor", "MNC"])), "'modality'"),
        (lambda ds: ds.assign_coords(nerve=("trace", ["Median", "median"])), "lower case"),
        (
            lambda ds: ds.assign_coords(source_file=("trace", ["/home/x/a.edf", "b.edf"])),
            "never an absolute path",
        ),
        (lambda ds: ds.assign(signal=ds.signal.fillna(0).astype("int16")), "float32 or float64"),
        (lambda ds: ds.assign(signal=ds.signal.assign_attrs(units="mV")), "units 'mV'"),
        (lambda ds: ds.assign_attrs(schema="other/2"), "attribute 'schema'"),
        (lambda ds: ds.assign_attrs(patient_name="Doe^John"), "identifying fields"),
        (lambda ds: ds.assign_coords(birth_date=("trace", ["1950", "1950"])), "identifying"),
    ],
)
def test_validator_rejects_with_a_clear_message(make_traces, mutate, message):
    ds = mutate(make_traces())
    with pytest.raises(SchemaError, match=message) as info:
        validate_trace_set(ds)
    assert isinstance(info.value, ValueError)


def test_samples_after_n_samples_must_be_nan(make_traces):
    ds = make_traces()
    values = ds.signal.values.copy()
    values[1, -1] = 0.0
    bad = ds.assign(signal=(("trace", "sample"), values, ds.signal.attrs))
    with pytest.raises(SchemaError, match="NaN after the trace's n_samples"):
        validate_trace_set(bad)
    validate_trace_set(bad, check_data=False)  # lazy callers may skip the sample check


def test_padding_check_reads_only_the_tails_and_finds_every_violation(make_traces):
    """Random ragged widths and stray samples after n_samples: the offending traces are exactly
    those a plain full-array check finds."""
    rng = np.random.default_rng(11)
    for _ in range(40):
        ds = make_traces(n_sites=4, width=int(rng.integers(40, 60)))
        values = ds.signal.values.copy()
        ns = ds["n_samples"].values
        for i in range(values.shape[0]):
            if ns[i] < values.shape[1] and rng.random() < 0.4:
                values[i, rng.integers(ns[i], values.shape[1])] = 1e-5
        after = np.arange(values.shape[1])[None, :] >= ns[:, None]
        expected = [str(t) for t in ds["trace"].values[(after & ~np.isnan(values)).any(axis=1)]]
        bad = ds.assign(signal=(("trace", "sample"), values, ds.signal.attrs))
        if not expected:
            validate_trace_set(bad)
            continue
        with pytest.raises(SchemaError, match="NaN after the trace's n_samples") as info:
            validate_trace_set(bad)
        (message,) = [p for p in info.value.problems if "NaN after" in p]
        assert message.split("offending traces: ")[1] == ", ".join(repr(t) for t in expected)


def test_every_problem_is_reported_at_once(make_traces):
    ds = make_traces().drop_vars(["nerve", "side"]).assign_attrs(schema="x")
    with pytest.raises(SchemaError) as info:
        validate_trace_set(ds)
    assert len(info.value.problems) == 3
    assert "3 problems" in str(info.value)


def test_select_and_time_axis(make_traces):
    ds = make_traces(n_sites=3, t_start=[-0.002, 0.0, 0.0])
    elbow = select(ds, stim_site="elbow")
    assert list(elbow.stim_site.values) == ["elbow"]
    assert select(ds, stim_site=["wrist", "axilla"]).sizes["trace"] == 2
    assert select(ds, nerve="ulnar").sizes["trace"] == 0
    t = time_axis(ds, 0)
    assert t[0] == -0.002 and len(t) == 400
    np.testing.assert_allclose(np.diff(t), 1 / 20000.0)
    assert len(trace_values(ds, "E1/L_median_motor/1")) == 390


def test_concat_many_files_with_different_rates_and_widths(make_traces):
    a = make_traces(exam_id="E1", width=400, dtype="float32")
    b = make_traces(exam_id="E2", width=1000, sampling_rate=[10000.0, 10000.0], dtype="float64")
    c = concat_trace_sets([a, b])
    validate_trace_set(c)
    assert c.sizes == {"trace": 4, "sample": 1000}
    assert c.signal.dtype == np.float64
    np.testing.assert_array_equal(c.sampling_rate.values, [2e4, 2e4, 1e4, 1e4])
    # every trace keeps its samples exactly and its padding
    np.testing.assert_array_equal(c.signal.values[0, :400], a.signal.values[0].astype(np.float64))
    assert np.isnan(c.signal.values[0, 400:]).all()
    xr.testing.assert_equal(c.isel(trace=[2, 3]).drop_attrs(), b.drop_attrs())
    with pytest.raises(SchemaError, match="not unique"):
        concat_trace_sets([a, a])


def test_concat_keeps_optional_coordinates_that_some_sets_lack(make_traces):
    a = make_traces(exam_id="E1")
    b = make_traces(exam_id="E2").pipe(
        lambda d: d.assign_coords(exam_date=("trace", ["2019", "2019"]))
    )
    c = concat_trace_sets([a, b])
    assert list(c.exam_date.values) == ["", "", "2019", "2019"]
