"""Write simulated cohorts to disk: one folder per exam and the ground truth as CSV tables.

The layout follows the contract's exam grouping (one folder per exam, named by the exam id), so
a simulated cohort is read by ``ncsproc measure`` (and later ``ncsproc extract``) exactly like
real exam folders. Truth tables are written in clinical units with the unit in the column name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import xarray as xr

from ..tables import write_csv
from .exams import GroundTruth, exam

# SI column -> (clinical column, factor). Columns not listed are written as they are
# (dimensionless ratios, percentages, counts, m/s, ids).
_TIME = ("_ms", 1e3)
_VOLT = ("_uv", 1e6)
_AREA = ("_uvms", 1e9)
_DIST = ("_mm", 1e3)
CLINICAL_UNITS: dict[str, tuple[str, float]] = {
    **{
        c: _TIME
        for c in (
            "onset_latency",
            "peak_latency",
            "positive_peak_latency",
            "negative_duration",
            "total_duration",
            "f_latency",
            "artefact_tau",
            "dml",
            "distal_duration",
            "distal_negative_duration",
            "residual_latency",
            "terminal_delay",
            "snap_onset",
            "snap_peak",
            "m_onset",
            "f_min",
            "f_mean",
            "f_max",
            "f_chronodispersion",
            "measurable_onset_latency",
            "f_measurable_latency",
            "dml_measurable",
            "residual_latency_measurable",
            "snap_onset_measurable",
            "m_onset_measurable",
            "f_min_measurable",
            "f_mean_measurable",
            "f_max_measurable",
        )
    },
    **{
        c: _VOLT
        for c in (
            "amplitude",
            "peak_to_peak",
            "f_amplitude",
            "noise_rms",
            "artefact_amplitude",
            "mains_amplitude",
            "offset",
            "clip_level",
            "distal_amplitude",
            "snap_amplitude",
            "noise_mains_amplitude",
            "noise_wander_p2p",
        )
    },
    **{c: _AREA for c in ("negative_area", "distal_area")},
    **{c: _DIST for c in ("distal_distance", "distance")},
    "drift": ("_uv_per_s", 1e6),
    "cv": ("_m_s", 1.0),
    "cv_max": ("_m_s", 1.0),
    "min_cv": ("_m_s", 1.0),
    "scv": ("_m_s", 1.0),
    **{c: ("_m_s", 1.0) for c in ("cv_measurable", "min_cv_measurable", "scv_measurable")},
    **{
        c: ("_hz", 1.0)
        for c in ("noise_highpass", "noise_lowpass", "noise_pink_low", "noise_mains_frequency")
    },
    "noise_emg_rate": ("_hz", 1.0),
}


def to_clinical_units(table: pd.DataFrame) -> pd.DataFrame:
    """Return a truth table with SI columns converted to clinical units and renamed."""
    out = {}
    for column in table.columns:
        if column in CLINICAL_UNITS:
            suffix, factor = CLINICAL_UNITS[column]
            out[column + suffix] = table[column].astype(float) * factor
        else:
            out[column] = table[column]
    return pd.DataFrame(out)


def truth_traces_table(truth: xr.Dataset) -> pd.DataFrame:
    """Per-trace truth as a table (one row per trace id), in clinical units."""
    table = truth.reset_coords(drop=True).to_dataframe().reset_index()
    return to_clinical_units(table)


def write_cohort(
    out: str | os.PathLike,
    *,
    patterns: Sequence[str],
    per_pattern: int = 1,
    seed: int = 0,
    dtype: str = "float32",
    file_format: str = "edf",
) -> list[Path]:
    """Simulate exams and write them as exam folders plus ground-truth tables.

    Parameters
    ----------
    out : path-like
        Output folder. Each exam goes to the folder ``out/<exam_id>/``; the truth to
        ``out/truth_traces.csv``, ``truth_studies.csv``, ``truth_segments.csv`` and
        ``truth_exams.csv``.
    patterns : sequence of str
        Patterns to simulate, ``per_pattern`` exams each, in this order.
    per_pattern : int
        Exams per pattern.
    seed : int
        Cohort seed; exam ``i`` (0-based, in order) uses ``SeedSequence(seed)``'s child ``i``,
        as :func:`ncsproc.simulate.cohort` does.
    dtype : {"float32", "float64"}
        Sample type of the written files.
    file_format : {"edf", "hdf5"}
        ``"edf"``: one EDF+D file per study, ``<exam_id>/<study>.edf`` with its JSON sidecar
        (16-bit samples, the open export format); ``"hdf5"``: one native file per exam,
        ``<exam_id>/<exam_id>.h5`` (exact samples, gzip level 9).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    import numpy as np

    from ..formats.edf import write_edf
    from ..storage import write

    if file_format not in ("edf", "hdf5"):
        raise ValueError(f"file_format must be 'edf' or 'hdf5', got {file_format!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    children = np.random.SeedSequence(seed).spawn(len(patterns) * per_pattern)
    written, truths = [], []
    index = 0
    for pattern in patterns:
        for _ in range(per_pattern):
            exam_id, subject_id = f"EX{index + 1:04d}", f"SIM{index + 1:04d}"
            traces, truth = exam(
                pattern, seed=children[index], exam_id=exam_id, subject_id=subject_id, dtype=dtype
            )
            if file_format == "edf":
                written.extend(write_edf(traces, out))
            else:
                path = out / exam_id / f"{exam_id}.h5"
                path.parent.mkdir(exist_ok=True)
                rel = path.relative_to(out).as_posix()
                traces = traces.assign_coords(
                    source_file=("trace", [rel] * traces.sizes["trace"], traces.source_file.attrs)
                )
                written.append(write(traces, path, compression_level=9))
            truths.append(truth)
            index += 1
    truth = GroundTruth.concat(truths)
    write_csv(truth_traces_table(truth.traces), out / "truth_traces.csv", decimals=_DECIMALS)
    for name in ("studies", "segments", "exams"):
        table = to_clinical_units(getattr(truth, name))
        write_csv(table, out / f"truth_{name}.csv", decimals=_DECIMALS)
    return written


# Truth is exact: keep enough decimals that a comparison is never limited by the file.
_DECIMALS = {
    **{c + s: 6 for c, (s, _) in CLINICAL_UNITS.items()},
    "tli": 6,
    "tli_measurable": 6,
    "age": 2,
    "height": 2,
    "temperature": 2,
}
