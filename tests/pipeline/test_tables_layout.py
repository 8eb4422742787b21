"""Tables layout versions: v2 (motor amplitudes in mV) by default, v1 (the contract's uV
columns) on request; every amplitude column checked against the unit table and the simulator's
truth, and every reader of a folder (report, registry, follow-up) sees the same values."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ncsproc.pipeline import extract
from ncsproc.pipeline.outputs import CONTRACT_COLUMNS
from ncsproc.pipeline.settings import ConfigError, load_settings, with_tables_version
from ncsproc.tables import (
    MOTOR_ONLY,
    RENAMED,
    SPLIT_BY_MODALITY,
    from_layout,
    layout_columns,
    read_tables_version,
    to_layout,
)
from ncsproc.units import CLINICAL, MOTOR_AMPLITUDE_MODALITIES, column_unit

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples" / "simulated"

# physiological ranges, in the unit the column names: a motor amplitude written in uV (or a
# sensory one in mV) falls outside by a factor of 1000
RANGE = {"mV": (0.05, 60.0), "uV": (0.5, 300.0), "mV ms": (0.05, 300.0), "uV ms": (0.5, 3000.0)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    src = tmp_path_factory.mktemp("layout") / "in"
    shutil.copytree(SAMPLES / "EX0001", src / "EX0001")
    out = {}
    for version in (1, 2):
        settings = load_settings(None)
        if version == 1:
            settings = with_tables_version(settings, 1)
        folder = tmp_path_factory.mktemp(f"v{version}") / "out"
        extract([src], folder, config=settings, scheduler="synchronous", parquet=False)
        out[version] = folder
    return out


def _csv(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv", keep_default_na=False, na_values=[""])


def _truth() -> pd.DataFrame:
    return pd.read_csv(SAMPLES / "truth_traces.csv").set_index("trace")


def test_default_is_v2_and_the_folder_says_so(runs):
    assert load_settings(None).tables_version == 2
    assert json.loads((runs[2] / "provenance.json").read_text())["tables_version"] == 2
    assert read_tables_version(runs[1]) == 1 and read_tables_version(runs[2]) == 2


def test_v1_writes_the_contract_columns_exactly(runs):
    for name in ("responses", "segments", "nerves", "exams"):
        header = list(_csv(runs[1], name).columns)
        contract = list(CONTRACT_COLUMNS[name])
        assert header[: len(contract)] == contract, name
    r = _csv(runs[1], "responses").set_index("trace_id")
    truth = _truth()
    ok = r[r["status"] == "ok"]
    # amplitudes in uV, motor and sensory alike, as the simulator's truth (also in uV)
    np.testing.assert_allclose(
        ok["amplitude_uv"], truth.loc[ok.index, "amplitude_uv"], rtol=0.05, atol=2.0
    )
    assert not any(c.endswith(("_mv", "_mvms")) for c in r.columns)


def test_v2_no_motor_amplitude_in_a_uv_column(runs):
    truth = _truth()
    for name in ("responses", "sites", "nerves"):
        t = _csv(runs[2], name)
        motor = t["modality"].isin(MOTOR_AMPLITUDE_MODALITIES)
        assert motor.any() and (~motor).any(), name
        for c in t.columns:
            unit = column_unit(c)
            if unit not in RANGE:
                continue
            if c in ("baseline_uv", "noise_uv"):  # diagnostics of the trace, not amplitudes
                continue
            values = pd.to_numeric(t[c], errors="coerce")
            rows = motor if unit.startswith("mV") else ~motor
            # the other modality's rows are empty in this column
            assert values[~rows].isna().all(), f"{name}.{c} has values of the wrong modality"
            present = values[rows].dropna().abs()
            if c.startswith("amp_lln"):
                continue  # a limit: checked below
            lo, hi = RANGE[unit]
            assert present.between(lo, hi).all(), f"{name}.{c}: {present.tolist()} not in {unit}"
        assert not any(c in t.columns for c in MOTOR_ONLY), name
    r = _csv(runs[2], "responses").set_index("trace_id")
    ok = r[(r["status"] == "ok") & r["modality"].isin(MOTOR_AMPLITUDE_MODALITIES)]
    np.testing.assert_allclose(
        ok["amplitude_mv"], truth.loc[ok.index, "amplitude_uv"] / 1000, rtol=0.05, atol=0.002
    )
    nerves = _csv(runs[2], "nerves")
    motor = nerves[nerves["modality"] == "motor"]
    # the default limits file's motor amplitude limits are 1-6 mV, the sensory ones 5-20 uV
    assert motor["amp_lln_mv"].dropna().between(1.0, 10.0).all()
    sensory = nerves[nerves["modality"] == "sensory"]
    assert sensory["amp_lln_uv"].dropna().between(2.0, 30.0).all()


def test_v2_values_are_the_v1_values_in_mv(runs):
    for name in ("responses", "sites", "nerves"):
        v1, v2 = _csv(runs[1], name), _csv(runs[2], name)
        assert len(v1) == len(v2)
        motor = v1["modality"].isin(MOTOR_AMPLITUDE_MODALITIES)
        for uv, mv in (*SPLIT_BY_MODALITY.items(), *MOTOR_ONLY.items()):
            if uv not in v1.columns:
                continue
            factor = CLINICAL["uV"][0] / CLINICAL["mV"][0]
            np.testing.assert_allclose(
                v2.loc[motor, mv], v1.loc[motor, uv] / factor, atol=0.0005, err_msg=f"{name}.{mv}"
            )
            if uv in v2.columns:
                np.testing.assert_array_equal(v2.loc[~motor, uv], v1.loc[~motor, uv])
    t1, t2 = _csv(runs[1], "trajectories"), _csv(runs[2], "trajectories")
    amp1 = t1[t1["variable"] == "distal_amp_uv"].reset_index(drop=True)
    amp2 = t2[t2["variable"] == "distal_amp_mv"].reset_index(drop=True)
    assert len(amp1) and len(amp1) == len(amp2) and set(amp2["unit"]) == {"mV"}
    np.testing.assert_allclose(amp2["value"], amp1["value"] / 1000, atol=0.0005)


def test_v2_names_the_efns_duration_for_what_it_is(runs):
    # the contract's total_duration_ms is onset to the end of the last negative lobe (EFNS/PNS
    # CMAP duration); layout 2 writes the same values as efns_duration_ms
    assert RENAMED == {"total_duration_ms": "efns_duration_ms"}
    truth = _truth()
    for name in ("responses", "sites"):
        v1, v2 = _csv(runs[1], name), _csv(runs[2], name)
        assert "total_duration_ms" in v1.columns and "efns_duration_ms" not in v1.columns
        assert "efns_duration_ms" in v2.columns and "total_duration_ms" not in v2.columns
        np.testing.assert_array_equal(v2["efns_duration_ms"], v1["total_duration_ms"])
    r = _csv(runs[2], "responses").set_index("trace_id")
    ok = r[r["status"] == "ok"]
    end = ok["onset_ms"] + ok["efns_duration_ms"]
    true_end = truth.loc[ok.index, "onset_latency_ms"] + truth.loc[ok.index, "total_duration_ms"]
    assert np.median(np.abs(end - true_end)) <= 0.1
    # a folder of layout 2 written before the rename still reads
    old = _csv(runs[2], "responses").rename(columns={"efns_duration_ms": "total_duration_ms"})
    back = from_layout(old, 2)
    assert "total_duration_ms" in back.columns and "efns_duration_ms" not in back.columns


def test_readers_of_the_folder_see_one_layout(runs):
    from ncsproc.privacy import Pseudonymizer
    from ncsproc.registry import build_table
    from ncsproc.report.data import load_results

    a, b = load_results(runs[1]).tables, load_results(runs[2]).tables
    for name in ("responses", "nerves", "sites"):
        assert list(a[name].columns) == list(b[name].columns), name
        for c in a[name].columns:
            if column_unit(c) in RANGE:
                x = pd.to_numeric(a[name][c], errors="coerce")
                y = pd.to_numeric(b[name][c], errors="coerce")
                np.testing.assert_allclose(y, x, atol=0.5, err_msg=f"{name}.{c}")
    key = Pseudonymizer(b"layout-test-key-" * 2)
    w1 = build_table(runs[1], centre="T1", pseudonymizer=key)
    w2 = build_table(runs[2], centre="T1", pseudonymizer=key)
    assert not w1.problems and not w2.problems
    w1, w2 = w1.table, w2.table
    amps = [c for c in w1.columns if c.endswith(("_mv", "_uv"))]
    assert amps and w1[amps].notna().any().any()
    pd.testing.assert_frame_equal(w1[amps], w2[amps], atol=1e-3)


def test_round_trip_and_columns_agree():
    cols = {
        "modality": np.array(["motor", "sensory", "fwave"], dtype=object),
        "amplitude_uv": np.array([5000.0, 20.0, np.nan]),
        "distal_amp_uv": np.array([4000.0, np.nan, 3000.0]),
        "original_amplitude_uv": np.array([4900.0, 21.0, np.nan]),
        "original_total_duration_ms": np.array([5.5, 1.0, np.nan]),
    }
    written = to_layout(cols, 2)
    assert list(written) == layout_columns(list(cols), 2)
    assert list(written) == [
        "modality",
        "amplitude_mv",
        "amplitude_uv",
        "distal_amp_mv",
        "original_amplitude_mv",
        "original_amplitude_uv",
        "original_efns_duration_ms",
    ]
    np.testing.assert_array_equal(written["amplitude_mv"], [5.0, np.nan, np.nan])
    np.testing.assert_array_equal(written["amplitude_uv"], [np.nan, 20.0, np.nan])
    back = from_layout(pd.DataFrame(written), 2)
    pd.testing.assert_frame_equal(back, pd.DataFrame(cols)[list(back.columns)])
    assert to_layout(cols, 1) == cols


def test_bad_versions_are_refused(tmp_path):
    toml = tmp_path / "lab.toml"
    toml.write_text('[pipeline]\nname = "lab"\ntables_version = 3\n')
    with pytest.raises(ConfigError, match=r"lab.toml: \[pipeline\] tables_version = 3"):
        load_settings(toml)
    toml.write_text('[pipeline]\nname = "lab"\ntables_version = 1\n')
    assert load_settings(toml).tables_version == 1
    (tmp_path / "provenance.json").write_text('{"tables_version": 9}')
    with pytest.raises(ValueError, match="tables_version 9"):
        read_tables_version(tmp_path)
