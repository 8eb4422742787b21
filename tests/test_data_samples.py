"""The committed sample cohort: present, unchanged, and what its README says it is."""

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


def _registry():
    lines = (SAMPLES / "registry.txt").read_text().splitlines()
    return [line.split(maxsplit=1) for line in lines if line.strip()]


def test_registry_hashes_match_every_file():
    entries = _registry()
    assert len(entries) >= 8
    for digest, name in entries:
        path = SAMPLES / name
        assert path.is_file(), f"data_samples/{name} listed in registry.txt is missing"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{name} changed"
    listed = {name for _, name in entries}
    on_disk = {p.relative_to(SAMPLES).as_posix() for p in (SAMPLES / "simulated").rglob("*") if p.is_file()}
    assert on_disk == listed


def test_samples_are_the_documented_simulation():
    """Regenerate with seed 7 (as the README says) and compare samples and truth exactly."""
    children = np.random.SeedSequence(7).spawn(len(PATTERNS))
    truths = []
    for i, pattern in enumerate(PATTERNS):
        exam_id = f"EX{i + 1:04d}"
        committed = ncsproc.read(SAMPLES / "simulated" / exam_id / f"{exam_id}.h5")
        fresh, truth = exam(pattern, seed=children[i], exam_id=exam_id, subject_id=f"SIM{i + 1:04d}", dtype="float32")
        np.testing.assert_array_equal(committed.signal.values, fresh.signal.values)
        assert list(committed.trace.values) == list(fresh.trace.values)
        for name in ("distance", "t_start", "sampling_rate", "age"):
            np.testing.assert_array_equal(committed[name].values, fresh[name].values)
        assert set(committed.source_file.values) == {f"{exam_id}/{exam_id}.h5"}
        assert committed.attrs["simulate_pattern"] == pattern
        truths.append(truth)
    truth = GroundTruth.concat(truths)
    on_disk = pd.read_csv(SAMPLES / "simulated" / "truth_traces.csv")
    expected = truth_traces_table(truth.traces)
    np.testing.assert_allclose(on_disk["onset_latency_ms"], expected["onset_latency_ms"], atol=1e-6)
    np.testing.assert_allclose(on_disk["amplitude_uv"], expected["amplitude_uv"], atol=1e-6)
    studies = pd.read_csv(SAMPLES / "simulated" / "truth_studies.csv")
    np.testing.assert_allclose(
        studies["tli"], to_clinical_units(truth.studies)["tli"].astype(float), atol=1e-6
    )
    assert list(pd.read_csv(SAMPLES / "simulated" / "truth_exams.csv")["pattern"]) == PATTERNS


@pytest.mark.parametrize("exam_id", ["EX0001", "EX0002", "EX0003", "EX0004"])
def test_sample_exam_is_a_valid_trace_set(exam_id):
    ds = ncsproc.read(SAMPLES / "simulated" / exam_id / f"{exam_id}.h5")
    ncsproc.validate_trace_set(ds)
    assert set(ds.modality.values) == {"motor", "sensory", "fwave"}
    assert ds.signal.dtype == np.float32
