"""Marker overrides: a reviewer's corrected markers, applied to the per-trace measures.

A reviewer who disagrees with a marker of :func:`ncsproc.measure` (onset, negative peak, end of
the response, F-wave onset) writes one line per corrected marker in an ``overrides.csv``
(``trace_id,marker,time_ms,reviewer,reason``). :func:`read_overrides` validates the whole file
(every problem named with its line); :func:`review_measures` recomputes, from the trace's own
samples and the baseline and noise the kernel found, every measure that depends on a reviewed
marker, keeps the machine value beside it (``original_<variable>``), marks the trace
(``reviewed``) and lists every recomputed value (:func:`reviews_table`, ``reviews.csv`` of
``ncsproc extract --overrides``). Features, criteria and patterns computed from the returned
measures follow automatically; :func:`original_tables` puts the machine values of the features,
criteria and patterns beside the reviewed ones (``original_<column>``, filled where a value
changed). Format, formulas and tolerances: ``formats/review.md``.

All values are SI inside (s, V, V s); only :func:`reviews_table` gives clinical units.
"""

from __future__ import annotations

from .apply import Review, ReviewProblem, apply_overrides, review_measures
from .outputs import (
    CHANGED_COLUMN,
    ORIGINAL_KEYS,
    ORIGINAL_PREFIX,
    REVIEWS_COLUMNS,
    REVIEWS_KINDS,
    empty_reviews_table,
    is_original_column,
    original_columns,
    original_tables,
    reviews_table,
)
from .overrides import (
    MARKER_VARIABLES,
    MARKERS,
    MEASURED,
    NONE_MARKERS,
    OPTIONAL_COLUMNS,
    OVERRIDE_COLUMNS,
    Override,
    Overrides,
    OverridesError,
    parse_overrides,
    read_overrides,
)

__all__ = [
    "MEASURED",
    "NONE_MARKERS",
    "OPTIONAL_COLUMNS",
    "MARKERS",
    "OVERRIDE_COLUMNS",
    "REVIEWS_COLUMNS",
    "REVIEWS_KINDS",
    "MARKER_VARIABLES",
    "Override",
    "Overrides",
    "OverridesError",
    "ReviewProblem",
    "Review",
    "read_overrides",
    "parse_overrides",
    "review_measures",
    "apply_overrides",
    "reviews_table",
    "empty_reviews_table",
    "ORIGINAL_PREFIX",
    "ORIGINAL_KEYS",
    "CHANGED_COLUMN",
    "is_original_column",
    "original_columns",
    "original_tables",
]
