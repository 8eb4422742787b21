"""Time of the follow-up tables (trajectories.csv, subjects.csv) for a large cohort.

Builds nerves.csv / exams.csv of N subjects x V visits (9 studies per exam, the simulator's
layout) with synthetic values, then times :func:`ncsproc.pipeline.followup.write_followup`
(read the two tables, compute, write CSV). Usage:
``python benchmarks/bench_followup.py [subjects] [visits]`` (default 10000 x 4).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

STUDIES = [
    ("median", "motor"),
    ("ulnar", "motor"),
    ("peroneal", "motor"),
    ("tibial", "motor"),
    ("ulnar", "fwave"),
    ("tibial", "fwave"),
    ("median", "sensory"),
    ("ulnar", "sensory"),
    ("sural", "sensory"),
]


def build(folder: Path, n_subjects: int, n_visits: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n_exams = n_subjects * n_visits
    exam = np.array([f"S{i // n_visits:05d}V{i % n_visits + 1}" for i in range(n_exams)])
    subject = np.array([f"S{i // n_visits:05d}" for i in range(n_exams)])
    days = {e: int(d) for e, d in zip(exam, rng.integers(0, 4000, n_exams), strict=True)}
    pd.DataFrame({"exam_id": exam, "subject_id": subject, "pattern": "normal"}).to_csv(
        folder / "exams.csv", index=False
    )
    rows = len(STUDIES)
    n = n_exams * rows
    frame = pd.DataFrame(
        {
            "exam_id": np.repeat(exam, rows),
            "subject_id": np.repeat(subject, rows),
            "nerve": np.tile([s[0] for s in STUDIES], n_exams),
            "side": "L",
            "modality": np.tile([s[1] for s in STUDIES], n_exams),
            "inexcitable": "False",
        }
    )
    for col in ("snap_amp_uv", "scv_m_s", "distal_amp_uv", "dml_ms", "cv_m_s", "tli", "f_min_ms"):
        frame[col] = np.round(rng.uniform(1, 60, n), 3)
    for col in ("amp_lln_uv", "scv_lln_m_s", "dml_uln_ms", "cv_lln_m_s", "f_min_uln_ms"):
        frame[col] = 5.0
    frame.to_csv(folder / "nerves.csv", index=False)
    return days


def main(argv):
    from ncsproc.pipeline.followup import write_followup

    n_subjects = int(argv[1]) if len(argv) > 1 else 10_000
    n_visits = int(argv[2]) if len(argv) > 2 else 4
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        days = build(folder, n_subjects, n_visits)
        t0 = time.perf_counter()
        tables = write_followup(folder, days, parquet=False)
        seconds = time.perf_counter() - t0
    print(
        f"{n_subjects} subjects x {n_visits} visits: {len(tables['trajectories'])} trajectory "
        f"rows, {len(tables['subjects'])} subjects, {seconds:.2f} s"
    )


if __name__ == "__main__":
    main(sys.argv)
