"""Nerve-level features, normal limits, electrodiagnostic criteria and anti-MAG patterns.

The chain, each step usable on its own:

1. :func:`study_features` - sites (repeats resolved), motor segments (CV, conduction block,
   dispersion), per-study features (DML, CV, TLI, residual latency, SNAP, F waves);
2. :func:`apply_limits` - comparison with a versioned normal-limit file (:func:`load_limits`);
3. :func:`evaluate_criteria` - EFNS/PNS 2010 and EAN/PNS 2021 criteria from data files
   (:func:`load_criteria`), with per-nerve evidence and the level reached per exam;
4. :func:`classify` - anti-MAG pattern per exam from a versioned rule file (:func:`load_rules`);

and :func:`tables`, which runs all of them and returns the contract's ``segments``, ``nerves``
and ``exams`` tables (plus ``criteria`` evidence and ``sites``). Data-file schemas and every
choice made here: ``formats/features.md``.
"""

from __future__ import annotations

from ._expr import RuleError
from .build import COMPARISON_COLUMNS, DECIMALS, classify, csv_decimals, tables
from .criteria import (
    CriteriaEvaluation,
    CriteriaSet,
    CriterionResult,
    LevelResult,
    evaluate_criteria,
    load_criteria,
)
from .limits import MEASURES, NormalLimits, apply_limits, load_limits
from .patterns import PATTERNS, PatternResult, PatternRules, load_rules
from .studies import (
    SITE_RANK,
    StudyFeatures,
    measures_from_truth,
    site_table,
    study_features,
    trace_frame,
)

__all__ = [
    "COMPARISON_COLUMNS",
    "DECIMALS",
    "MEASURES",
    "PATTERNS",
    "SITE_RANK",
    "CriteriaEvaluation",
    "CriteriaSet",
    "CriterionResult",
    "LevelResult",
    "NormalLimits",
    "PatternResult",
    "PatternRules",
    "RuleError",
    "StudyFeatures",
    "apply_limits",
    "classify",
    "csv_decimals",
    "evaluate_criteria",
    "load_criteria",
    "load_limits",
    "load_rules",
    "measures_from_truth",
    "site_table",
    "study_features",
    "tables",
    "trace_frame",
]
