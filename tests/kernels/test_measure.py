"""The measure layer: Dataset layout, units, parameters, history, validation, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ncsproc
import ncsproc.kernels as K
from ncsproc.errors import SchemaError

from .conftest import REPO, make_set, pulse

VARS = {
    "onset_latency": "s",
    "peak_latency": "s",
    "amplitude": "V",
    "peak_to_peak": "V",
    "negative_duration": "s",
    "total_duration": "s",
    "negative_area": "V s",
    "snr": "dB",
    "f_latency": "s",
}


@pytest.fixture(scope="module")
def traces():
    from ncsproc.simulate import response_set

    return response_set("motor", 12, seed=3)[0]


def test_import_forms(traces):
    from ncsproc.measures import measure

    a = measure(traces)
    b = ncsproc.measure(traces)  # still the function after the submodule was imported
    assert ncsproc.measure is measure
    np.testing.assert_array_equal(a["onset_latency"].values, b["onset_latency"].values)


def test_layout_units_and_coords(traces):
    res = ncsproc.measure(traces)
    assert res.sizes == {"trace": traces.sizes["trace"]}
    assert list(res["trace"].values) == list(traces["trace"].values)
    for name in traces.coords:
        if traces[name].dims == ("trace",):
            assert name in res.coords
            np.testing.assert_array_equal(res[name].values, traces[name].values)
    for name, units in VARS.items():
        assert res[name].attrs["units"] == units
        assert res[name].attrs["long_name"]
        assert res[name].dtype == np.float64
    assert res["status"].dtype == object
    assert set(res["status"].values) <= set(K.STATUS_NAMES.values())
    flags = res["qc_flags"]
    assert flags.dtype == np.int32
    masks = flags.attrs["flag_masks"]
    meanings = flags.attrs["flag_meanings"].split()
    assert len(masks) == len(meanings) and "positive_onset" in meanings
    assert all(int(m) & (int(m) - 1) == 0 for m in masks)  # single bits


def test_attrs_record_parameters_and_history(traces):
    res = ncsproc.measure(traces, k_detect=5.0, sensory={"smooth": 0.3e-3})
    params = json.loads(res.attrs["measure_parameters"])
    assert params["motor"]["k_detect"] == 5.0 and params["sensory"]["k_detect"] == 5.0
    assert params["sensory"]["smooth"] == 0.3e-3
    assert params["motor"]["smooth"] == K.PARAMS[K.PARAM_INDEX["smooth"]].motor
    assert set(params) == {"motor", "sensory", "fwave", "mep"}
    assert set(params["motor"]) == set(K.PARAM_INDEX)
    history = res.attrs["history"].splitlines()
    assert history[:-1] == traces.attrs["history"].splitlines()
    assert "measure 12 traces (ok: 12)" in history[-1]
    assert res.attrs["schema"] == "ncsproc-measures/1"


def test_parameters_change_results(traces):
    a = ncsproc.measure(traces)
    b = ncsproc.measure(traces, min_amplitude=1.0)  # 1 V floor: nothing is a response
    assert (a["status"].values == "ok").all()
    assert (b["status"].values == "no_response").all()
    assert np.isnan(b["amplitude"].values).all()


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(k_detekt=3), "unknown measurement parameter 'k_detekt'"),
        (dict(k_detect=-1), "must be a finite number >= 0"),
        (dict(k_detect="x"), "must be a number"),
        (dict(lobe_fraction=1.5), "between 0 and 1"),
        (dict(motor=3), "must be a dict"),
        (dict(n_threads=0), "n_threads"),
    ],
)
def test_bad_parameters_are_explained(traces, bad, match):
    with pytest.raises(ValueError, match=match):
        ncsproc.measure(traces, **bad)


def test_invalid_trace_set_is_refused(traces):
    with pytest.raises(SchemaError):
        ncsproc.measure(traces.drop_vars("modality"))
    with pytest.raises(SchemaError):
        ncsproc.measure(traces["signal"].to_dataset())
    with pytest.raises(SchemaError):
        ncsproc.measure(traces.signal)


def test_f_latency_only_for_fwave_traces():
    from ncsproc.simulate import response_set

    ts, truth = response_set("fwave", 10, seed=4)
    res = ncsproc.measure(ts)
    found = np.isfinite(res["f_latency"].values).sum()
    assert found >= np.isfinite(truth["f_latency"].values).sum() - 1
    motor = ncsproc.measure(response_set("motor", 5, seed=4)[0])
    assert np.isnan(motor["f_latency"].values).all()


def test_mixed_modalities_rates_and_lengths():
    from ncsproc.schema import concat_trace_sets
    from ncsproc.simulate import response_set

    parts = [
        response_set("motor", 4, seed=1)[0],
        response_set("sensory", 4, seed=1, sampling_rate=10000.0)[0],
        response_set("fwave", 4, seed=1, dtype="float32")[0],
    ]
    both = concat_trace_sets(parts)
    res = ncsproc.measure(both)
    for part in parts:
        alone = ncsproc.measure(part)
        sub = res.sel(trace=part["trace"].values)
        np.testing.assert_allclose(
            sub["onset_latency"].values, alone["onset_latency"].values, rtol=1e-6
        )


def test_empty_trace_set():
    t = np.arange(400) / 20000.0
    ds = make_set(pulse(t, 3e-3, 1e-3)[None, :]).isel(trace=slice(0, 0))
    res = ncsproc.measure(ds)
    assert res.sizes["trace"] == 0 and "onset_latency" in res


def test_numba_kill_switch_gives_the_same_results(tmp_path):
    """NCSPROC_DISABLE_NUMBA=1 runs the plain Python functions: same numbers."""
    code = (
        "import numpy as np, ncsproc, ncsproc.kernels as K\n"
        "from ncsproc.simulate import response_set\n"
        "assert K.NUMBA_DISABLED\n"
        "ts = response_set('motor', 3, seed=9)[0]\n"
        "np.save(r'%s', ncsproc.measure(ts)['onset_latency'].values)\n" % (tmp_path / "py.npy")
    )
    env = dict(os.environ, NCSPROC_DISABLE_NUMBA="1", PYTHONPATH=str(REPO / "src"))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)
    from ncsproc.simulate import response_set

    jit = ncsproc.measure(response_set("motor", 3, seed=9)[0])["onset_latency"].values
    np.testing.assert_allclose(np.load(tmp_path / "py.npy"), jit, rtol=1e-9)


def test_benchmark_script_quick_runs():
    """``python -m benchmarks --quick`` works (no timing is asserted)."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "traces per second" in proc.stdout


def test_every_parameter_is_documented():
    text = (REPO / "formats" / "measures.md").read_text()
    for p in K.PARAMS:
        assert f"| `{p.name}` |" in text, f"{p.name} missing from formats/measures.md"
        assert p.tag in ("[P]", "[P-ncsproc]", "[C]")
