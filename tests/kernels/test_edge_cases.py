"""Status codes and edge cases, through ``ncsproc.measure`` and checked against the twin."""

from __future__ import annotations

import numpy as np
import pytest

import ncsproc
import ncsproc.kernels as K

from .conftest import FS, artefact, make_set, measurable_onset, pulse, run_block, run_ref
from .test_twin import assert_close

W = 800
T = np.arange(W) / FS


def _measure_and_twin(x, **kw):
    """Measure one trace with ncsproc.measure; assert the twin agrees; return the row."""
    modality = kw.pop("modality", "motor")
    t_start = kw.pop("t_start", 0.0)
    ds = make_set(np.atleast_2d(x), modality=modality, t_start=t_start, **kw)
    res = ncsproc.measure(ds)
    code = K.MODALITY_CODES[modality]
    sig = ds["signal"].values
    out, st, fl = run_block(sig, modality=code, t_start=t_start, n_samples=ds["n_samples"].values)
    rout, rst, rfl = run_ref(sig, modality=code, t_start=t_start, n_samples=ds["n_samples"].values)
    assert (st == rst).all() and (fl == rfl).all()
    assert_close(out, rout)
    return res.isel(trace=0)


def _flags(row):
    masks = row["qc_flags"].attrs["flag_masks"]
    names = row["qc_flags"].attrs["flag_meanings"].split()
    return {n for m, n in zip(masks, names, strict=True) if int(row["qc_flags"]) & int(m)}


def _values_nan(row):
    return all(
        np.isnan(float(row[v]))
        for v in (
            "onset_latency",
            "peak_latency",
            "amplitude",
            "peak_to_peak",
            "negative_duration",
            "total_duration",
            "negative_area",
            "snr",
            "f_latency",
        )
    )


def test_flat_line_is_no_response():
    row = _measure_and_twin(np.full(W, 1.234e-3))
    assert row["status"].item() == "no_response"
    assert _values_nan(row)


def test_all_nan_is_nonfinite():
    row = _measure_and_twin(np.full(W, np.nan), n_samples=[W])
    assert row["status"].item() == "nonfinite"
    assert _values_nan(row)


def test_nan_in_pretrigger_baseline_is_ignored_and_flagged(rng):
    t = T - 5e-3
    x = rng.normal(0, 5e-6, W) + pulse(t, 4e-3, 2e-3)
    x[20:25] = np.nan
    row = _measure_and_twin(x, t_start=-5e-3)
    assert row["status"].item() == "ok"
    assert {"nan_in_baseline", "pretrigger_baseline"} <= _flags(row)
    assert float(row["onset_latency"]) == pytest.approx(measurable_onset(4e-3, 2e-3), abs=0.15e-3)
    assert float(row["amplitude"]) == pytest.approx(2e-3, rel=0.02)


def test_nan_in_the_response_is_nonfinite(rng):
    x = rng.normal(0, 5e-6, W) + pulse(T, 4e-3, 2e-3)
    x[150] = np.nan
    row = _measure_and_twin(x, n_samples=[W])
    assert row["status"].item() == "nonfinite"
    assert _values_nan(row)


def test_unusable_pretrigger_is_no_baseline(rng):
    t = T - 5e-3
    x = rng.normal(0, 5e-6, W) + pulse(t, 4e-3, 2e-3)
    x[:90] = np.nan  # 90 of the 100 pre-trigger samples
    row = _measure_and_twin(x, t_start=-5e-3)
    assert row["status"].item() == "no_baseline"
    assert _values_nan(row)


def test_saturated_plateau(rng):
    x = rng.normal(0, 5e-6, W) + pulse(T, 4e-3, 5e-3) + artefact(T, 3e-3, 1e-4)
    x = np.clip(x, -3e-3, 3e-3)
    row = _measure_and_twin(x)
    assert row["status"].item() == "saturated"
    assert _values_nan(row)


def test_clipped_artefact_alone_is_not_saturation(rng):
    x = rng.normal(0, 5e-6, W) + pulse(T, 4e-3, 2e-3) + artefact(T, 50e-3, 1e-4)
    x = np.clip(x, -10e-3, 10e-3)  # only the artefact spike reaches the rails
    row = _measure_and_twin(x)
    assert row["status"].item() == "ok"


def test_artefact_only_is_no_response(rng):
    x = rng.normal(0, 5e-6, W) + artefact(T, 10e-3, 2e-4)
    row = _measure_and_twin(x)
    assert row["status"].item() == "no_response"
    assert "artefact_subtracted" in _flags(row)


@pytest.mark.parametrize("tau", [0.1e-3, 0.3e-3])
def test_onset_right_after_the_artefact(rng, tau):
    # the response starts 1.6 ms after the stimulus, inside the artefact's tail
    x = rng.normal(0, 5e-6, W) + pulse(T, 1.6e-3, 3e-3) + artefact(T, 15e-3, tau)
    row = _measure_and_twin(x)
    assert row["status"].item() == "ok"
    assert float(row["onset_latency"]) == pytest.approx(measurable_onset(1.6e-3, 3e-3), abs=0.1e-3)
    assert float(row["peak_latency"]) == pytest.approx(1.6e-3 + 2e-3, abs=1 / FS)
    assert float(row["amplitude"]) == pytest.approx(3e-3, rel=0.02)


def test_negative_first_cmap_values(rng):
    x = rng.normal(0, 5e-6, W) + pulse(T, 4e-3, 2e-3, pos_ratio=0.5)  # negative first
    row = _measure_and_twin(x)
    assert row["status"].item() == "ok"
    assert "positive_onset" not in _flags(row)
    on = measurable_onset(4e-3, 2e-3, pos_ratio=0.5)
    assert float(row["onset_latency"]) == pytest.approx(on, abs=0.1e-3)
    assert float(row["peak_latency"]) == pytest.approx(6e-3, abs=1 / FS)
    assert float(row["amplitude"]) == pytest.approx(2e-3, rel=0.01)
    assert float(row["peak_to_peak"]) == pytest.approx(3e-3, rel=0.02)
    # a lobe that returns with zero slope: its end is blurred by noise (a few samples)
    # durations run from the (measurable) onset to the negative lobe's end at 8 ms
    assert float(row["negative_duration"]) == pytest.approx(8e-3 - on, abs=0.25e-3)
    assert float(row["total_duration"]) == pytest.approx(8e-3 - on, abs=0.25e-3)
    tt = np.linspace(4e-3, 8e-3, 40001)
    area = np.trapezoid(-np.minimum(pulse(tt, 4e-3, 2e-3, pos_ratio=0.5), 0), tt)
    assert float(row["negative_area"]) == pytest.approx(area, rel=0.03)
    assert float(row["snr"]) == pytest.approx(20 * np.log10(2e-3 / 5e-6), abs=1.5)
    assert np.isnan(float(row["f_latency"]))


def test_positive_first_response_is_flagged(rng):
    x = rng.normal(0, 5e-6, W) + pulse(T, 4e-3, 2e-3, init=0.3, t_init=0.5e-3)
    row = _measure_and_twin(x)
    assert row["status"].item() == "ok"
    assert "positive_onset" in _flags(row)
    on = measurable_onset(4e-3, 2e-3, init=0.3, t_init=0.5e-3)
    assert float(row["onset_latency"]) == pytest.approx(on, abs=0.1e-3)
    assert float(row["peak_latency"]) == pytest.approx(4.5e-3 + 2e-3, abs=1 / FS)


def test_one_microvolt_snap(rng):
    t = np.arange(300) / FS
    x = rng.normal(0, 0.05e-6, 300) + pulse(t, 2.5e-3, 1e-6, t_neg=1e-3, t_pos=1.5e-3, power=2)
    x += artefact(t, 0.5e-3, 5e-5)
    row = _measure_and_twin(x, modality="sensory")
    assert row["status"].item() == "ok"
    assert float(row["amplitude"]) == pytest.approx(1e-6, rel=0.05)
    on = measurable_onset(2.5e-3, 1e-6, t_neg=1e-3, t_pos=1.5e-3, power=2)
    assert float(row["onset_latency"]) == pytest.approx(on, abs=0.1e-3)


def test_too_short_trace():
    row = _measure_and_twin(np.zeros(10) + 1e-6)
    assert row["status"].item() == "too_short"


def test_float32_and_float64_agree(rng):
    x = rng.normal(0, 5e-6, (4, W)) + pulse(T, 3.5e-3, 2e-3)[None, :] + artefact(T, 5e-3, 1e-4)
    r64 = ncsproc.measure(make_set(x, dtype="float64"))
    r32 = ncsproc.measure(make_set(x, dtype="float32"))
    assert (r64["status"].values == r32["status"].values).all()
    for v, tol in [("onset_latency", 2e-6), ("peak_latency", 2e-6), ("amplitude", 1e-8)]:
        np.testing.assert_allclose(r32[v].values, r64[v].values, atol=tol)


def test_integer_signal_is_converted_before_the_kernel(rng):
    # integer samples (as a reader might hand over before scaling) are converted explicitly
    x = np.round(rng.normal(0, 5, (1, W)) + 1e3 * pulse(T, 4e-3, 2.0)).astype(np.int32)
    ds = make_set(x.astype(np.float64))
    ds_int = ds.assign(signal=ds["signal"].copy(data=x))
    r_int = ncsproc.measure(ds_int)
    r_f = ncsproc.measure(ds)
    np.testing.assert_array_equal(r_int["onset_latency"].values, r_f["onset_latency"].values)
    assert "converted int32 signal to float64" in r_int.attrs["history"]


@pytest.mark.parametrize("kind", ["normal", "ties", "constant", "descending"])
def test_order_pair_equals_sorting(kind):
    """The branch-free quickselect behind the noise quantile and the baseline medians returns
    the same order statistics as a sort, ties included, and leaves its input alone."""
    from ncsproc.kernels._robust import order_pair, quantile_inplace

    rng = np.random.default_rng(7)
    for _ in range(400):
        m = int(rng.integers(1, 160))
        x = {
            "normal": rng.normal(size=m),
            "ties": rng.integers(0, 4, m).astype(float),
            "constant": np.full(m, 2.5),
            "descending": -np.sort(rng.normal(size=m)),
        }[kind]
        lo = int(rng.integers(0, m))
        v = np.empty(3 * m)
        v[:m] = x
        first, second = order_pair(v, lo, m)
        ranked = np.sort(x)
        assert first == ranked[lo]
        assert second == (ranked[lo + 1] if lo + 1 < m else np.inf)
        np.testing.assert_array_equal(v[:m], x)
        q = float(rng.uniform())
        assert quantile_inplace(v, m, q) == pytest.approx(np.quantile(x, q), rel=1e-15, abs=1e-15)
