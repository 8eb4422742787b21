"""Fixtures of the report tests: one extract run of data_samples/simulated and its report,
built once per session; a hostile cohort; a copy with reviewed and tampered values."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data_samples"

HOSTILE = "<script>alert(1)</script>\"'&"
"""Text that must never reach a page unescaped."""
HOSTILE_EDF = "<script>alert</script>\"'&"
"""The same through an EDF+ stimulus annotation (the annotation grammar stops a site at a
number, so this one has none)."""


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> Path:
    """``ncsproc extract data_samples/simulated`` (synchronous scheduler)."""
    from ncsproc.pipeline import extract

    out = tmp_path_factory.mktemp("report-run") / "results"
    result = extract([SAMPLES / "simulated"], out, scheduler="synchronous", progress=None)
    assert result.exit_status == 0, result.summary()
    return out


@pytest.fixture(scope="session")
def sample_report(sample_run, tmp_path_factory):
    """The report of :func:`sample_run`: ``(ReportResult, results folder)``."""
    from ncsproc.report import build_report

    out = tmp_path_factory.mktemp("report") / "report"
    return build_report(sample_run, out), sample_run


def _hostile_native_exam(folder: Path, exam_id: str) -> Path:
    """One simulated exam as a native file whose exam id, study and sites are hostile."""
    import ncsproc
    from ncsproc.storage import write

    tr, _ = ncsproc.simulate.exam(
        "distal_demyelinating",
        seed=5,
        exam_id=exam_id,
        subject_id="SIMH" + HOSTILE,
        dtype="float32",
    )
    study = tr["study"].values.astype(object)
    study = np.where(study == "L_median_motor", "L_median_motor" + HOSTILE, study).astype(str)
    sites = np.array([s + HOSTILE for s in tr["stim_site"].values.astype(str)])
    tr = tr.assign_coords(
        study=("trace", study, tr["study"].attrs), stim_site=("trace", sites, tr["stim_site"].attrs)
    )
    tr = tr.assign_coords(
        trace=(
            "trace",
            [
                f"{e}/{s}/{r}"
                for e, s, r in zip(
                    tr["exam_id"].values, tr["study"].values, tr["record"].values, strict=True
                )
            ],
        )
    )
    folder.mkdir(parents=True, exist_ok=True)
    return write(tr, folder / "exam.h5")


def _hostile_edf_exam(root: Path, exam_id: str, site_suffix: str) -> list[Path]:
    """One study of a simulated exam as EDF+D whose stimulus annotations hold ``site_suffix``."""
    import ncsproc
    from ncsproc.formats.edf import write_edf

    tr, _ = ncsproc.simulate.exam(
        "normal", seed=3, exam_id=exam_id, subject_id="SIMH2", dtype="float32"
    )
    tr = tr.isel(trace=np.flatnonzero(tr["study"].values == "L_median_motor"))
    sites = np.array([s + site_suffix for s in tr["stim_site"].values.astype(str)])
    tr = tr.assign_coords(stim_site=("trace", sites, tr["stim_site"].attrs))
    return write_edf(tr, root)


@pytest.fixture(scope="session")
def hostile_run(tmp_path_factory) -> Path:
    """A cohort whose metadata try to inject markup, extracted with a manifest:

    * ``../EX/<script>...`` (exam id with ``/`` and ``..``): a native file whose study and
      stimulation sites carry the hostile text;
    * ``EXH1``: an EDF+D study whose stimulus annotation names the site
      ``wrist<script>alert</script>"'&``;
    * ``EXH2``: an EDF+D study whose annotation and XML note disagree about a hostile site:
      the reader refuses it, and its error message (with the text) goes to errors.csv.
    """
    from ncsproc.pipeline import extract

    root = tmp_path_factory.mktemp("hostile")
    inputs = root / "in"
    exam_id = "../EX/" + HOSTILE
    native = _hostile_native_exam(inputs / "x", exam_id)
    edf1 = _hostile_edf_exam(inputs, "EXH1", HOSTILE_EDF)
    edf2 = _hostile_edf_exam(inputs, "EXH2", HOSTILE)
    manifest = inputs / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["source_file", "exam_id"])
        w.writerow([native.relative_to(inputs).as_posix(), exam_id])
        for p in edf1:
            w.writerow([p.relative_to(inputs).as_posix(), "EXH1"])
        for p in edf2:
            w.writerow([p.relative_to(inputs).as_posix(), "EXH2"])
    out = root / "results"
    result = extract([inputs], out, manifest=manifest, scheduler="synchronous", progress=None)
    assert result.exit_status == 1  # EXH2's file is refused, on purpose
    return out


@pytest.fixture(scope="session")
def hostile_report(hostile_run, tmp_path_factory):
    from ncsproc.report import build_report

    out = tmp_path_factory.mktemp("hostile-report") / "report"
    return build_report(hostile_run, out), hostile_run


@pytest.fixture(scope="session")
def require_chromium():
    """The path of Debian's chromium; a skip when missing, a failure if
    ``NCSPROC_REQUIRE_CHROMIUM=1`` (set by ``.ci/run``)."""
    from .chromium import CHROMIUM

    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        message = (
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) "
            "to run the rendering test"
        )
        if os.environ.get("NCSPROC_REQUIRE_CHROMIUM"):
            pytest.fail(message + " (NCSPROC_REQUIRE_CHROMIUM is set)")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(require_chromium):
    from .chromium import Chromium

    with Chromium(require_chromium) as c:
        yield c


@pytest.fixture
def copy_results(tmp_path):
    """A copy of an extract output folder (tables and cohort.h5) to modify."""

    def factory(src: Path) -> Path:
        dest = tmp_path / "results"
        dest.mkdir()
        for p in src.iterdir():
            if p.is_file():
                shutil.copy2(p, dest / p.name)
        return dest

    return factory
