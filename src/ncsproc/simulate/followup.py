"""Simulated longitudinal follow-up: subjects with 2-6 visits whose nerves evolve at known rates.

Each visit is one :func:`ncsproc.simulate.exam` with the sural SNAP amplitude fixed to its
trajectory value (the simulator makes the SNAP's negative-peak amplitude exactly that value),
the age advanced by the interval and the pattern of the visit; every other parameter is drawn
afresh per visit as in a cross-sectional cohort. Kinds of subject (:data:`FOLLOWUP_KINDS`):

``stable``
    sural amplitude constant; 2-6 visits over 0.5-12 years; normal or distal pattern.
``slow_sural_decline``
    sural amplitude falls linearly by 8 % of the baseline per year (<= 16 % in the first two
    years: no red flag); 3-6 visits over 2-8 years; distal pattern.
``fast_sural_decline``
    36 % of the baseline per year; the second visit 1.6-2.0 years after the first (a fall of
    58-72 %: red flag), further visits up to 2.2 years (the SNAP stays >= 3 uV); distal.
``distal_to_axonal``
    distal demyelinating pattern, then axonal from a visit >= 2 on; sural amplitude falls by
    3 % of the baseline per year; 3-6 visits over 2-10 years.

The truth (:class:`FollowupTruth`) holds per subject the kind, the exact rate (uV per year),
the red flag by the issue-17 rule (a fall >= 50 % from the first visit, or from >= 6 uV to
< 6 uV, at a visit within 2 years; 6 uV is the sural LLN of ``patterns.toml``), and per visit
the real exam date, the exact days since the first visit, the pattern and the sural amplitude.
:func:`write_followup_cohort` writes EDF+D exam folders whose headers carry a patient code,
name, birth date and the visit's start date, as a clinical export would (the sidecars give no
subject id: the pipeline derives it from the header with the centre key).
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..units import DAYS_PER_YEAR
from .exams import GroundTruth, exam
from .patterns import load_patterns

__all__ = ["FOLLOWUP_KINDS", "FollowupTruth", "followup_cohort", "write_followup_cohort"]

FOLLOWUP_KINDS = ("stable", "slow_sural_decline", "fast_sural_decline", "distal_to_axonal")

SURAL_LLN_UV = 6.0  # patterns.toml [limits.sural_sensory] amplitude_lln
RED_FLAG_FALL_PCT = 50.0
RED_FLAG_WINDOW_DAYS = 2.0 * DAYS_PER_YEAR

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass
class FollowupTruth:
    """Exact truth of a simulated follow-up cohort.

    Attributes
    ----------
    subjects : DataFrame
        ``subject_id, kind, patient_code, n_visits, followup_days, sural_baseline_uv,
        sural_rate_uv_per_year, red_flag, first_pattern, last_pattern``.
    visits : DataFrame
        ``subject_id, exam_id, visit, days_since_first, exam_date, pattern, sural_amp_uv``
        (``exam_date``: the real date written into the file header, ISO).
    exams : GroundTruth
        The per-trace/study/segment/exam truth of every visit.
    identity : DataFrame
        ``subject_id, patient_code, patient_name, birth_date``: what the headers carry.
    """

    subjects: pd.DataFrame
    visits: pd.DataFrame
    exams: GroundTruth
    identity: pd.DataFrame


def _schedule(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, float, list[str]]:
    """Visit times (years, first 0), sural rate (fraction of baseline per year), patterns."""
    if kind == "stable":
        n = int(rng.integers(2, 7))
        span = float(rng.uniform(0.5, 12.0))
        rate = 0.0
        patterns = [str(rng.choice(["normal", "distal_demyelinating"]))] * n
    elif kind == "slow_sural_decline":
        n = int(rng.integers(3, 7))
        span = float(rng.uniform(2.0, 8.0))
        rate = -0.08
        patterns = ["distal_demyelinating"] * n
    elif kind == "fast_sural_decline":
        n = int(rng.integers(2, 5))
        second = float(rng.uniform(1.6, 2.0))
        rest = np.sort(rng.uniform(second, 2.2, n - 2))
        times = np.concatenate([[0.0, second], rest])
        return times, -0.36, ["distal_demyelinating"] * n
    elif kind == "distal_to_axonal":
        n = int(rng.integers(3, 7))
        span = float(rng.uniform(2.0, 10.0))
        rate = -0.03
        switch = int(rng.integers(2, n))  # 0-based index of the first axonal visit (>= 2nd)
        patterns = ["distal_demyelinating"] * switch + ["axonal"] * (n - switch)
    else:
        raise ValueError(f"kind must be one of {FOLLOWUP_KINDS}, got {kind!r}")
    inner = np.sort(rng.uniform(0.0, span, n - 2)) if n > 2 else np.array([])
    return np.concatenate([[0.0], inner, [span]]), rate, patterns


def _red_flag(days: np.ndarray, amps: np.ndarray) -> bool:
    later = (days > 0) & (days <= RED_FLAG_WINDOW_DAYS)
    fall = 100.0 * (1.0 - amps[later] / amps[0])
    crossed = (amps[0] >= SURAL_LLN_UV) & (amps[later] < SURAL_LLN_UV)
    return bool(((fall >= RED_FLAG_FALL_PCT) | crossed).any())


def _visit_config(base: dict, pattern: str, sural_v: float, age: float) -> dict:
    cfg = copy.deepcopy(base)
    sural = cfg["patterns"][pattern]["sural_sensory"]
    sural["amplitude"] = {"value": sural_v, "units": "V", "source": "follow-up", "status": "P"}
    sural["absent_probability"] = {"value": 0.0, "units": "1", "source": "follow-up"}
    cfg["recording"]["age"] = {"value": age, "units": "years", "source": "follow-up"}
    return cfg


def followup_cohort(
    kinds: Sequence[str] | Mapping[str, int], *, seed: int, side: str = "L", **exam_options
):
    """Simulate a follow-up cohort.

    Parameters
    ----------
    kinds : sequence of str or mapping {kind: count}
        The kind of each subject (:data:`FOLLOWUP_KINDS`), in order.
    seed : int
        Subject ``i`` uses child ``i`` of ``SeedSequence(seed)`` (schedule, baseline, dates,
        identity), and its visits the children of that child.
    side : {"L", "R"}
    **exam_options
        Passed to :func:`ncsproc.simulate.exam` (noise, dtype, ...). Default sensory noise
        0.1-0.2 uV RMS (a follow-up laboratory averages its SNAPs more than the
        cross-sectional default 0.3-0.5 uV), so that a trend of ~1 uV per year is measurable.

    Returns
    -------
    exams : list of (exam_id, xarray.Dataset)
        The trace set of every visit, in subject then visit order.
    truth : FollowupTruth
    """
    if isinstance(kinds, Mapping):
        names = [k for k, n in kinds.items() for _ in range(int(n))]
    else:
        names = list(kinds)
    exam_options.setdefault("noise_rms", {"sensory": (0.1e-6, 0.2e-6)})
    base = load_patterns()
    children = np.random.SeedSequence(seed).spawn(len(names))
    exams, truths, subjects, visits, identity = [], [], [], [], []
    for i, (kind, child) in enumerate(zip(names, children, strict=True), start=1):
        rng = np.random.default_rng(child)
        times, rate, patterns = _schedule(kind, rng)
        a0 = float(rng.uniform(16.0, 24.0))  # uV, well above the 6 uV LLN
        age0 = float(rng.uniform(45.0, 75.0))
        first = _dt.date(2004, 1, 1) + _dt.timedelta(days=int(rng.integers(0, 3650)))
        days = np.round(times * DAYS_PER_YEAR).astype(int)
        years = days / DAYS_PER_YEAR  # the exact intervals the files will state
        amps = a0 * (1.0 + rate * years)
        subject = f"FU{i:04d}"
        code = f"MCH-{int(rng.integers(1_000_000, 9_999_999))}"
        birth = first - _dt.timedelta(days=int(round(age0 * DAYS_PER_YEAR)))
        identity.append(
            {
                "subject_id": subject,
                "patient_code": code,
                "patient_name": f"Dupont{i:03d}_Marie",
                "birth_date": birth.isoformat(),
            }
        )
        visit_seeds = child.spawn(len(times))
        for k, (d, amp, pattern) in enumerate(zip(days, amps, patterns, strict=True), start=1):
            exam_id = f"{subject}V{k}"
            date = first + _dt.timedelta(days=int(d))
            age = (date - birth).days / DAYS_PER_YEAR
            cfg = _visit_config(base, pattern, amp * 1e-6, age)
            ds, gt = exam(
                pattern,
                seed=visit_seeds[k - 1],
                exam_id=exam_id,
                subject_id=subject,
                side=side,
                config=cfg,
                **exam_options,
            )
            exams.append((exam_id, ds))
            truths.append(gt)
            visits.append(
                {
                    "subject_id": subject,
                    "exam_id": exam_id,
                    "visit": k,
                    "days_since_first": int(d),
                    "exam_date": date.isoformat(),
                    "pattern": pattern,
                    "sural_amp_uv": float(amp),
                }
            )
        subjects.append(
            {
                "subject_id": subject,
                "kind": kind,
                "patient_code": code,
                "n_visits": len(times),
                "followup_days": int(days[-1]),
                "sural_baseline_uv": a0,
                "sural_rate_uv_per_year": rate * a0,
                "red_flag": _red_flag(days, amps),
                "first_pattern": patterns[0],
                "last_pattern": patterns[-1],
            }
        )
    truth = FollowupTruth(
        subjects=pd.DataFrame(subjects),
        visits=pd.DataFrame(visits),
        exams=GroundTruth.concat(truths),
        identity=pd.DataFrame(identity),
    )
    return exams, truth


def _edf_date(d: _dt.date) -> str:
    return f"{d.day:02d}-{_MONTHS[d.month - 1]}-{d.year:04d}"


def _identify_edf(path: Path, code: str, name: str, birth: _dt.date, date: _dt.date) -> None:
    """Put a clinical export's patient field and start date into an EDF+ header."""
    b = bytearray(path.read_bytes())
    b[8:88] = f"{code} F {_edf_date(birth)} {name}".ljust(80).encode("ascii")
    last = b[88:168].decode("ascii").split()[-1]
    b[88:168] = f"Startdate {_edf_date(date)} EMG561 NCS ncsproc-sim {last}".ljust(80).encode()
    b[168:176] = f"{date.day:02d}.{date.month:02d}.{date.year % 100:02d}".encode("ascii")
    path.write_bytes(bytes(b))


def write_followup_cohort(
    out: str | os.PathLike,
    kinds: Sequence[str] | Mapping[str, int],
    *,
    seed: int = 0,
    dtype: str = "float32",
    **exam_options,
) -> FollowupTruth:
    """Simulate a follow-up cohort and write it as identified EDF+D exam folders.

    Each visit goes to ``out/<exam_id>/<study>.edf`` (+ sidecar without ``subject_id`` or
    ``age``: the header's patient code and birth date say them); the truth to
    ``out/truth_followup_subjects.csv`` and ``out/truth_followup_visits.csv`` (these two hold
    the real dates and codes: they are the hospital side of the simulation, never an input
    of the pipeline).
    """
    from ..formats.edf import write_edf

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    exams, truth = followup_cohort(kinds, seed=seed, dtype=dtype, **exam_options)
    ident = truth.identity.set_index("subject_id")
    visits = truth.visits.set_index("exam_id")
    for exam_id, ds in exams:
        v = visits.loc[exam_id]
        who = ident.loc[v["subject_id"]]
        for path in write_edf(ds, out):
            _identify_edf(
                path,
                who["patient_code"],
                who["patient_name"],
                _dt.date.fromisoformat(who["birth_date"]),
                _dt.date.fromisoformat(v["exam_date"]),
            )
            side = path.with_name(path.name + ".json")
            doc = json.loads(side.read_text())
            doc.pop("subject_id", None)
            doc.pop("age", None)
            side.write_text(json.dumps(doc))
    truth.subjects.to_csv(out / "truth_followup_subjects.csv", index=False)
    truth.visits.to_csv(out / "truth_followup_visits.csv", index=False)
    return truth
