"""The cohort pipeline: ``ncsproc extract`` on Dask (interchange contract section 4).

>>> from ncsproc.pipeline import extract
>>> result = extract(["cohort/"], "results", scheduler="processes", workers=2)  # doctest: +SKIP
>>> result.exit_status, result.summary()                                         # doctest: +SKIP

* :func:`extract` - files, folders or globs in; ``responses.csv``, ``segments.csv``,
  ``nerves.csv``, ``exams.csv``, ``errors.csv`` (plus ``criteria.csv``, ``sites.csv``,
  ``reviews.csv``), Parquet copies and ``cohort.h5`` out; resumable through a catalogue of
  per-exam results; ``overrides=`` applies a reviewer's marker overrides
  (:mod:`ncsproc.review`, ``formats/review.md``);
* :func:`load_settings` - a ``pipelines/<name>.toml`` settings file;
* :func:`plan_inputs` - the exams a run would process (folders or a manifest);
* :func:`read_cohort_table` and :func:`open_cohort_traces` - read ``cohort.h5`` back.

Contract as implemented, outputs, catalogue and how to run on a cluster: ``formats/cohort.md``.
"""

from __future__ import annotations

from .extract import ExtractResult, auto_batch_size, extract
from .inputs import MANIFEST_COLUMNS, ExamJob, InputFile, Plan, UsageError, plan_inputs
from .outputs import TABLE_FILES, open_cohort_traces, read_cohort_table
from .progress import Progress, ProgressDisplay
from .settings import ConfigError, Settings, load_settings

__all__ = [
    "extract",
    "ExtractResult",
    "auto_batch_size",
    "load_settings",
    "Settings",
    "ConfigError",
    "plan_inputs",
    "Plan",
    "ExamJob",
    "InputFile",
    "UsageError",
    "MANIFEST_COLUMNS",
    "TABLE_FILES",
    "read_cohort_table",
    "open_cohort_traces",
    "Progress",
    "ProgressDisplay",
]
