"""Measurement v2 (issue 14) on the simulator's noise, shape and rate families.

Truth: the measurable onset (first 1 % departure of the noiseless response). Seeds here chose
no constant. The cells asserted are the ones the published tables (formats/measures.md) show
met; the ones not met are listed there with their numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.families import noise_row, response_row

import ncsproc

PRE = 0.05  # a 50 ms pre-trigger


# 1/f noise is left out: p95 0.08 ms on the published seed but 0.73 ms on this one (two
# sweeps of 40): not reliably within the target (formats/measures.md)
@pytest.mark.parametrize("family", ["white", "bandlimited", "mains"])
def test_motor_onset_with_a_pretrigger(family):
    r = response_row("motor", family, "standard", 20000.0, PRE, 40, 4101)
    assert r["measured"] == 1.0
    assert r["onset_p95_ms"] <= 0.15
    assert abs(r["onset_bias_ms"]) <= 0.05
    assert r["amplitude_ok"] >= 0.97


@pytest.mark.parametrize("shape", ["biphasic_sharp", "triphasic", "slow_rise"])
def test_motor_onset_of_every_shape(shape):
    r = response_row("motor", "bandlimited", shape, 20000.0, PRE, 40, 4102)
    assert r["onset_p95_ms"] <= 0.15
    assert abs(r["onset_bias_ms"]) <= 0.05


@pytest.mark.parametrize("family", ["white", "pink", "mains"])
def test_snap_onset_with_a_pretrigger(family):
    r = response_row("sensory", family, "standard", 20000.0, PRE, 60, 4103)
    assert r["onset_p95_ms"] <= 0.20
    assert abs(r["onset_bias_ms"]) <= 0.05


def test_white_and_bandlimited_without_a_pretrigger():
    for family in ("white", "bandlimited"):
        r = response_row("motor", family, "standard", 20000.0, 0.0, 40, 4104)
        assert r["onset_p95_ms"] <= 0.15 and abs(r["onset_bias_ms"]) <= 0.05, family


@pytest.mark.parametrize("family", ["white", "bandlimited", "pink", "mains"])
def test_pure_noise_with_a_pretrigger_is_no_response(family):
    assert noise_row("motor", family, 20000.0, PRE, 100, 4105)["no_response"] >= 0.97


def test_five_kilohertz_within_one_and_a_half_samples():
    r = response_row("motor", "bandlimited", "standard", 5000.0, PRE, 40, 4106)
    assert r["onset_p95_samples"] <= 1.5


def test_mains_is_removed_only_where_there_is_mains():
    from ncsproc.simulate import response_set

    flag = 8192  # mains_removed
    for family, want in (("mains", 0.9), ("pink", 0.1)):
        ts, _ = response_set("motor", 30, seed=4107, noise=family, pretrigger=PRE)
        removed = (ncsproc.measure(ts)["qc_flags"].values & flag) > 0
        assert (removed.mean() >= want) if family == "mains" else (removed.mean() <= want)


def test_peak_beyond_the_search_window_is_window_edge():
    """A response that starts inside the search window and peaks after it is `window_edge`,
    never `ok` with a made-up amplitude (issue 14 item 4)."""
    from ncsproc.simulate import response_set

    ts, truth = response_set(
        "motor", 40, seed=4108, amplitude=5e-3, noise_rms=5e-6, pretrigger=0.02
    )
    res = ncsproc.measure(ts, motor={"search_end": 4.0e-3})
    status = res["status"].values
    cut = (truth["measurable_onset_latency"].values < 3.5e-3) & (
        truth["peak_latency"].values > 4.5e-3
    )
    assert cut.sum() >= 3
    assert (status[cut] == "window_edge").all()
    assert np.isnan(res["amplitude"].values[status == "window_edge"]).all()


@pytest.mark.parametrize(
    "settings, names",
    [
        ({"blank_min": 5e-3}, "blank_min"),
        ({"motor": {"search_end": 1e-3}}, "search_end"),
        ({"baseline_min": 0.1}, "baseline_min"),
        ({"peak_smoothed": 0.5}, "peak_smoothed"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_inconsistent_settings_raise_one_value_error(settings, names):
    from ncsproc.simulate import response_set

    ts, _ = response_set("motor", 2, seed=4109)
    with pytest.raises(ValueError, match=names):
        ncsproc.measure(ts, **settings)
