"""The real-sweep harness (benchmarks/real_sweeps.py) runs and lines the sweeps up with MEPFeatX.

Only what is true today and must stay true: every sweep is read, measured and given a status,
and the reference rows are the features tables' own. The accuracy asserts (onsets within 1 ms,
...) belong with the MEP preset.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for ``benchmarks``

from benchmarks import real_sweeps as R  # noqa: E402

STATUSES = {
    "ok",
    "no_response",
    "saturated",
    "no_baseline",
    "nonfinite",
    "too_short",
    "window_edge",
}


@pytest.fixture(scope="module")
def rows():
    return R.evaluate()


def test_every_sweep_of_both_files_is_measured(rows):
    for name, n in (("ID01", 152), ("ID02", 40)):
        part = rows[rows["file"] == f"{name}.mat"]
        # the sweep count is the MAT-file's own (meps is samples x sweeps)
        assert scipy.io.loadmat(R.SAMPLES / f"{name}.mat")["meps"].shape[1] == n
        assert list(part["sweep"]) == list(range(n))
    assert list(rows.columns) == R.COLUMNS
    assert set(rows["status"]) <= STATUSES
    ok = rows["status"] == "ok"
    assert np.isfinite(rows.loc[ok, ["onset_latency_ms", "peak_to_peak_uv"]]).all().all()
    assert rows.loc[~ok, ["onset_latency_ms", "peak_to_peak_uv"]].isna().all().all()
    assert (rows["response"] == ok.astype(float)).all()
    for name in R.FILES:
        assert rows.attrs["mode"][name].startswith(("modality as read", "motor + "))


def test_reference_columns_are_the_features_tables(rows):
    for name, n_response in (("ID01", 152), ("ID02", 20)):
        table = pd.read_csv(R.SAMPLES / f"{name}_features.csv")
        part = rows[rows["file"] == f"{name}.mat"].reset_index(drop=True)
        assert len(table) == len(part)
        response = table["Amplitude"] > 0
        assert int(response.sum()) == n_response  # ID02: paired pulses, half suppressed
        assert (part["ref_response"] == response.astype(float)).all()
        np.testing.assert_array_equal(
            part.loc[response, "ref_onset_latency_ms"], table.loc[response, "Latency"]
        )
        np.testing.assert_array_equal(
            part.loc[response, "ref_peak_to_peak_uv"], table.loc[response, "Amplitude"]
        )
        assert (
            part.loc[~response, ["ref_onset_latency_ms", "ref_peak_to_peak_uv"]].isna().all().all()
        )


def test_summary_counts_add_up(rows):
    s = R.summary(rows)
    assert s["n_sweeps"] == 192 and s["n_ref_response"] == 172
    assert sum(s["status_counts"].values()) == 192
    assert s["both_response"] + s["ref_only"] + s["ours_only"] + s["neither"] == 192
    for key in ("onset_within_1ms", "p2p_within_1pct", "response_agreement"):
        assert 0.0 <= s[key] <= 1.0, key


def test_summary_on_hand_made_rows():
    df = pd.DataFrame(
        {
            "file": ["a.mat"] * 4,
            "sweep": [0, 1, 2, 3],
            "ref_response": [1.0, 1.0, 1.0, 0.0],
            "ref_onset_latency_ms": [20.0, 20.0, 20.0, np.nan],
            "ref_peak_to_peak_uv": [100.0, 100.0, 100.0, np.nan],
            "response": [1.0, 1.0, 0.0, 1.0],
            "onset_latency_ms": [20.5, 17.0, np.nan, 30.0],
            "peak_to_peak_uv": [100.5, 90.0, np.nan, 50.0],
            "status": ["ok", "ok", "no_baseline", "ok"],
            "flags": [""] * 4,
        }
    )
    s = R.summary(df)
    assert s["onset_within_1ms"] == pytest.approx(1 / 3)  # the missing onset counts as outside
    assert s["onset_median_error_ms"] == pytest.approx(-1.25)  # median of +0.5 and -3
    assert s["onset_median_abs_error_ms"] == pytest.approx(1.75)
    assert s["p2p_within_1pct"] == pytest.approx(1 / 3)
    assert s["response_agreement"] == pytest.approx(0.5)
    assert (s["both_response"], s["ref_only"], s["ours_only"], s["neither"]) == (2, 1, 1, 0)
    assert s["status_counts"] == {"ok": 3, "no_baseline": 1}


def test_peer_runs_on_the_same_sweeps():
    peer = R.evaluate_peer()
    if peer is None:
        pytest.skip("mep-cmap-analyser (the peer) is not installed")
    assert len(peer) == 192 and set(peer["status"]) <= {"ok", "no_onset"}
    assert R.summary(peer)["n_ref_response"] == 172


def test_mep_preset_meets_the_real_sweep_targets(rows):
    """Issue 14's targets on the real MEPFeatX sweeps (MEP preset): onset within 1 ms of the
    reference for >= 80 % of the responses, no `no_baseline`, responses and non-responses as the
    reference says; peak-to-peak within 1 % for >= 95 % (measured 2026-12-07: 83.7 %, none,
    100 %, 95.9 %; version 1: 25 %, 7 sweeps, 97.9 %, 97.7 %)."""
    s = R.summary(rows)
    assert s["onset_within_1ms"] >= 0.80
    assert "no_baseline" not in s["status_counts"]
    assert s["response_agreement"] == 1.0
    assert s["p2p_within_1pct"] >= 0.95
    # the tibialis anterior file alone (paired pulses, half suppressed) is the hard one: MEPFeatX
    # puts its onsets about 1.6 ms after ours; it is reported, not asserted
    assert abs(s["onset_median_error_ms"]) <= 0.2
