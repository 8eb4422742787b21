"""Physiological simulator of nerve-conduction traces with exact ground truth.

* :func:`response_set` - independent motor, sensory, F-wave or noise-only traces with per-trace
  truth, for the accuracy tests of the measurement kernels;
* :func:`exam` and :func:`cohort` - whole exams of the four anti-MAG electrodiagnostic
  patterns (``normal``, ``distal_demyelinating``, ``cidp_like``, ``axonal``) with per-trace,
  per-study, per-segment and per-exam truth (:class:`GroundTruth`);
* noise families (:data:`NOISE_FAMILIES`: white, band-limited, 1/f, mains, background EMG,
  baseline wander; :mod:`ncsproc.simulate.noise`) and unit-potential shape families
  (:data:`SHAPE_FAMILIES`; :mod:`ncsproc.simulate.waveforms`) for both.

The model and the exact truth definitions are documented in
:mod:`ncsproc.simulate.waveforms` (unit potentials, disturbances, truth),
:mod:`ncsproc.simulate.population` (fibre velocities, terminal delays, block, dispersion,
F waves) and :mod:`ncsproc.simulate.exams` (exams); the parameters, each with its source
and status tag, are in ``patterns.toml`` (:func:`load_patterns`).
"""

from __future__ import annotations

from .exams import GroundTruth, cohort, exam
from .files import write_cohort
from .followup import FOLLOWUP_KINDS, FollowupTruth, followup_cohort, write_followup_cohort
from .noise import NOISE_FAMILIES
from .patterns import PATTERNS, load_patterns
from .responses import response_set
from .truth import TRUTH_VARS
from .waveforms import SHAPE_FAMILIES

__all__ = [
    "response_set",
    "exam",
    "cohort",
    "GroundTruth",
    "write_cohort",
    "load_patterns",
    "PATTERNS",
    "TRUTH_VARS",
    "NOISE_FAMILIES",
    "SHAPE_FAMILIES",
    "FOLLOWUP_KINDS",
    "FollowupTruth",
    "followup_cohort",
    "write_followup_cohort",
]
