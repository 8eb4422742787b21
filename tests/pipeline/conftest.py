"""Fixtures of the cohort-pipeline tests: small simulated cohorts with exact ground truth."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PATTERNS = ["normal", "distal_demyelinating", "cidp_like", "axonal"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "distributed: starts a dask scheduler and workers as separate processes on loopback "
        "(runs in the default suite; deselect with -m 'not distributed')",
    )


@pytest.fixture(scope="session")
def cohort(tmp_path_factory) -> Path:
    """Eight simulated exams (two per pattern) as EDF+D exam folders, plus the truth CSVs."""
    from ncsproc.simulate import write_cohort

    root = tmp_path_factory.mktemp("cohort")
    write_cohort(root, patterns=PATTERNS, per_pattern=2, seed=11)
    return root


@pytest.fixture(scope="session")
def reference_run(cohort, tmp_path_factory):
    """One uninterrupted run of the whole cohort (synchronous scheduler): the reference."""
    from ncsproc.pipeline import extract

    out = tmp_path_factory.mktemp("reference") / "out"
    result = extract([cohort], out, scheduler="synchronous")
    return out, result


@pytest.fixture
def copy_exams(cohort, tmp_path):
    """Copy some exam folders of the cohort into a fresh folder (to damage or extend)."""

    def factory(names, dest: Path | None = None) -> Path:
        dest = dest or tmp_path / "in"
        dest.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copytree(cohort / name, dest / name)
        return dest

    return factory
