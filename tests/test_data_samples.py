"""The committed samples: present, unchanged, and what data_samples/README.md says they are."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ncsproc
from ncsproc.simulate import GroundTruth, exam
from ncsproc.simulate.files import to_clinical_units, truth_traces_table

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"
PATTERNS = ["normal", "distal_demyelinating", "cidp_like", "axonal"]
EXAMS = ["EX0001", "EX0002", "EX0003", "EX0004"]


def _registry():
    lines = (SAMPLES / "registry.txt").read_text().splitlines()
    return [line.split(maxsplit=1) for line in lines if line.strip()]


def test_registry_hashes_match_every_file():
    entries = _registry()
    for digest, name in entries:
        path = SAMPLES / name
        assert path.is_file(), f"data_samples/{name} listed in registry.txt is missing"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{name} changed"
    listed = {name for _, name in entries}
    on_disk = {
        p.relative_to(SAMPLES).as_posix()
        for folder in ("simulated", "real")
        for p in (SAMPLES / folder).rglob("*")
        if p.is_file()
    }
    assert on_disk == listed
    assert len(listed) > 70


@pytest.fixture(scope="module")
def regenerated():
    """The cohort regenerated with the README's seed (float32, as written)."""
    children = np.random.SeedSequence(7).spawn(len(PATTERNS))
    out = []
    for i, pattern in enumerate(PATTERNS):
        out.append(
            exam(
                pattern,
                seed=children[i],
                exam_id=EXAMS[i],
                subject_id=f"SIM{i + 1:04d}",
                dtype="float32",
            )
        )
    return out


def _read_exam(exam_id):
    files = sorted((SAMPLES / "simulated" / exam_id).glob("*.edf"))
    return files, ncsproc.concat_trace_sets([ncsproc.read(f) for f in files])


@pytest.mark.parametrize("index", range(4))
def test_committed_edf_files_are_what_the_documented_command_writes(index, regenerated, tmp_path):
    traces, _ = regenerated[index]
    written = ncsproc.write_edf(traces, tmp_path)
    committed = sorted((SAMPLES / "simulated" / EXAMS[index]).iterdir())
    assert sorted(p.name for p in committed) == sorted(
        [p.name for p in written] + [p.name + ".json" for p in written]
    )
    for path in written:
        twin = SAMPLES / "simulated" / path.relative_to(tmp_path)
        assert path.read_bytes() == twin.read_bytes(), twin.name
        assert (
            path.with_name(path.name + ".json").read_bytes()
            == twin.with_name(twin.name + ".json").read_bytes()
        )


@pytest.mark.parametrize("index", range(4))
def test_reading_the_samples_gives_the_simulation_to_16_bit_resolution(index, regenerated):
    from ncsproc.formats.edf import read_header

    fresh = regenerated[index][0].sortby("trace")
    files, edf = _read_exam(EXAMS[index])
    edf = edf.sortby("trace")
    ncsproc.validate_trace_set(edf)
    assert list(edf.trace.values) == list(fresh.trace.values)
    assert set(edf.modality.values) == {"motor", "sensory", "fwave"}
    for name in ("distance", "t_start", "sampling_rate", "stim_intensity", "age", "n_samples"):
        np.testing.assert_array_equal(edf[name].values, fresh[name].values, err_msg=name)
    for name in ("exam_id", "subject_id", "study", "nerve", "side", "stim_site", "record_site"):
        assert list(edf[name].values.astype(str)) == list(fresh[name].values.astype(str)), name
    for f in files:
        sig = read_header(f).ordinary_signals[0]
        unit = {"mV": 1e-3, "uV": 1e-6, "V": 1.0}[sig.dimension]
        half_lsb = (
            float(sig.physical_max - sig.physical_min)
            / (sig.digital_max - sig.digital_min)
            * unit
            / 2
        )
        rows = edf.study.values == f.stem
        n = int(edf.n_samples.values[rows][0])
        error = np.abs(
            edf.signal.values[rows][:, :n] - fresh.signal.values[rows][:, :n].astype(np.float64)
        )
        assert error.max() <= half_lsb * (1 + 1e-9), f.name


def test_truth_tables_are_the_simulator_truth(regenerated):
    truth = GroundTruth.concat([t for _, t in regenerated])
    on_disk = pd.read_csv(SAMPLES / "simulated" / "truth_traces.csv")
    expected = truth_traces_table(truth.traces)
    assert list(on_disk["trace"]) == list(expected["trace"])
    np.testing.assert_allclose(on_disk["onset_latency_ms"], expected["onset_latency_ms"], atol=1e-6)
    np.testing.assert_allclose(on_disk["amplitude_uv"], expected["amplitude_uv"], atol=1e-6)
    studies = pd.read_csv(SAMPLES / "simulated" / "truth_studies.csv")
    np.testing.assert_allclose(
        studies["tli"], to_clinical_units(truth.studies)["tli"].astype(float), atol=1e-6
    )
    assert list(pd.read_csv(SAMPLES / "simulated" / "truth_exams.csv")["pattern"]) == PATTERNS
