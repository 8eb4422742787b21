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

import csv
import datetime as _dt
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .measures import MEASURED_VARS

__all__ = [
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

MARKERS = ("onset", "peak", "end", "f_onset")
"""Markers a reviewer can correct."""
OVERRIDE_COLUMNS = ("trace_id", "marker", "time_ms", "reviewer", "reason")
"""Required columns of ``overrides.csv``, in this order in the files ncsproc writes."""
OPTIONAL_COLUMNS = ("reviewed_at",)
"""Optional columns of ``overrides.csv`` (``reviewed_at``: ISO date or date and time)."""
NONE_MARKERS = ("onset", "peak", "f_onset")
"""Markers that accept ``none``: onset/peak ``none`` = no response, f_onset ``none`` = no F wave."""

MEASURED = MEASURED_VARS
"""The measured variables of :func:`ncsproc.measure` (NaN when the status is not ``ok``)."""

MARKER_VARIABLES: dict[str, tuple[str, ...]] = {
    "onset": ("onset_latency", "negative_duration", "total_duration", "negative_area"),
    "peak": ("peak_latency", "amplitude", "peak_to_peak", "snr"),
    "end": ("total_duration", "negative_area"),
    "f_onset": ("f_latency",),
}
"""The variables each marker's override recomputes (a status change recomputes all of them)."""

# variable -> (responses.csv column, units, factor from SI, decimals)
_CLINICAL = {
    "onset_latency": ("onset_ms", "ms", 1e3, 3),
    "peak_latency": ("peak_ms", "ms", 1e3, 3),
    "amplitude": ("amplitude_uv", "uV", 1e6, 2),
    "peak_to_peak": ("p2p_uv", "uV", 1e6, 2),
    "negative_duration": ("neg_duration_ms", "ms", 1e3, 3),
    "total_duration": ("total_duration_ms", "ms", 1e3, 3),
    "negative_area": ("neg_area_uvms", "uVms", 1e9, 2),
    "snr": ("snr_db", "dB", 1.0, 1),
    "f_latency": ("f_latency_ms", "ms", 1e3, 3),
    "status": ("status", "", 1.0, 0),
}

REVIEWS_COLUMNS = (
    "trace_id",
    "exam_id",
    "marker",
    "variable",
    "units",
    "original",
    "reviewed",
    "reviewer",
    "reason",
    "overrides_sha256",
    "column",
    "original_status",
    "reviewed_status",
    "line",
    "reviewed_at",
)
"""Columns of ``reviews.csv``: one row per value a review recomputed."""
REVIEWS_KINDS = {c: "s" for c in REVIEWS_COLUMNS} | {"original": "f", "reviewed": "f"}
"""Column kinds of ``reviews.csv`` (``f`` float, ``s`` text), fixed whatever the rows."""

NOISE_FLOOR = 1e-12
"""V: the kernel's floor under the noise SD (thresholds of noise-free traces stay meaningful)."""
_EPS = 1e-9  # samples: index rounding slack (a time the kernel wrote as t0 + i/fs maps back to i)


class OverridesError(ValueError):
    """An overrides file (or an override) is invalid; ``problems`` lists every one of them,
    each naming the file, the line and what was expected."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(
            f"{source}: {len(self.problems)} problem(s) with the marker overrides; fix them and "
            f"run again (format: `ncsproc docs review`):\n{lines}"
        )


@dataclass(frozen=True)
class Override:
    """One line of an overrides file.

    Attributes
    ----------
    trace_id : str
        The trace id (``<exam_id>/...``, the ``trace`` column of ``sites.csv``).
    marker : str
        One of :data:`MARKERS`.
    time : float
        Corrected marker time in s from the stimulus; NaN for ``none``.
    reviewer, reason : str
        Who and why (non-empty).
    reviewed_at : str
        ISO date (optional column; empty when absent).
    line : int
        Line number in the file (1-based, comments and blank lines counted).
    source : str
        File name (never its folder).
    time_text : str
        ``time_ms`` as written.
    """

    trace_id: str
    marker: str
    time: float
    reviewer: str
    reason: str
    reviewed_at: str = ""
    line: int = 0
    source: str = "overrides.csv"
    time_text: str = ""

    @property
    def is_none(self) -> bool:
        """The reviewer says there is nothing to mark (``time_ms`` = ``none``)."""
        return math.isnan(self.time)

    @property
    def where(self) -> str:
        return f"{self.source} line {self.line}"

    def identity(self) -> list:
        """What this line changes in the outputs (for cache keys)."""
        return [
            self.trace_id,
            self.marker,
            self.time_text,
            repr(self.time),
            self.reviewer,
            self.reason,
            self.reviewed_at,
            self.line,
            self.source,
        ]


@dataclass(frozen=True)
class Overrides:
    """The validated lines of an overrides file.

    Attributes
    ----------
    source : str
        File name (never its folder).
    sha256 : str
        SHA-256 of the file's bytes ("" when built in memory).
    rows : tuple of Override
        In file order.
    """

    source: str = "overrides.csv"
    sha256: str = ""
    rows: tuple = ()

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    @property
    def trace_ids(self) -> list[str]:
        return sorted({r.trace_id for r in self.rows})

    def for_exam(self, exam_id: str) -> Overrides:
        """The lines whose trace id starts with ``<exam_id>/``."""
        prefix = f"{exam_id}/"
        return Overrides(
            self.source, self.sha256, tuple(r for r in self.rows if r.trace_id.startswith(prefix))
        )

    def digest(self) -> str:
        """SHA-256 of what these lines change (trace, marker, time, reviewer, reason, date,
        line number, file name): the part of a cache key that the overrides contribute."""
        doc = json.dumps(
            [r.identity() for r in self.rows],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(doc.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ReviewProblem:
    """An override that could not be applied (its trace keeps its machine values)."""

    trace_id: str
    line: int
    marker: str
    message: str


@dataclass
class Review:
    """Result of :func:`review_measures`.

    Attributes
    ----------
    measures : xarray.Dataset
        The measures with the reviewed values, ``reviewed`` and ``original_<variable>``.
    problems : list of ReviewProblem
        Overrides not applied, and why (every other override is applied).
    changes : list of dict
        One entry per recomputed value (SI units): ``trace_id, exam_id, marker, variable,
        original, reviewed, reviewer, reason, original_status, reviewed_status, line,
        reviewed_at``.
    overrides : Overrides
    """

    measures: xr.Dataset
    problems: list = field(default_factory=list)
    changes: list = field(default_factory=list)
    overrides: Overrides = field(default_factory=Overrides)


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------
def read_overrides(path: str | os.PathLike) -> Overrides:
    """Read and validate an ``overrides.csv``.

    Parameters
    ----------
    path : path-like
        UTF-8 CSV (BOM accepted) with the header ``trace_id,marker,time_ms,reviewer,reason``
        (optionally ``reviewed_at``); lines starting with ``#`` and blank lines are ignored.

    Returns
    -------
    Overrides

    Raises
    ------
    OverridesError
        The file is missing or unreadable, or any line is invalid; the message lists every
        problem with the file name, the line and what was expected.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise OverridesError(p.name, [f"{path}: no such file"]) from None
    except OSError as exc:
        raise OverridesError(p.name, [f"{path}: cannot be read ({exc.strerror or exc})"]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OverridesError(
            p.name, [f"{p.name}: not UTF-8 text (byte {exc.start}); save the file as UTF-8 CSV"]
        ) from None
    return parse_overrides(text, source=p.name, sha256=hashlib.sha256(data).hexdigest())


def _time_seconds(text: str) -> float | None:
    """``time_ms`` text -> seconds (exact decimal conversion); None when not a finite number."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    return float(value / 1000)


def _iso_date(text: str) -> bool:
    try:
        _dt.date.fromisoformat(text)
        return True
    except ValueError:
        pass
    try:
        _dt.datetime.fromisoformat(text)
        return True
    except ValueError:
        return False


def parse_overrides(text: str, source: str = "overrides.csv", sha256: str = "") -> Overrides:
    """Validate the text of an overrides file (see :func:`read_overrides`).

    Parameters
    ----------
    text : str
        The file's content.
    source : str
        File name used in messages and outputs.
    sha256 : str
        SHA-256 of the file's bytes (default: of ``text`` encoded as UTF-8).

    Returns
    -------
    Overrides

    Raises
    ------
    OverridesError
        Every problem found, each with its line.
    """
    sha256 = sha256 or hashlib.sha256(text.encode("utf-8")).hexdigest()
    expected = ",".join(OVERRIDE_COLUMNS)
    problems: list[tuple[int, str]] = []
    header: list[str] | None = None
    rows: list[Override] = []
    seen: dict[tuple[str, str], int] = {}

    def bad(line: int, what: str) -> None:
        problems.append((line, f"{source} line {line}: {what}"))

    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            fields = next(csv.reader([line], strict=True))
        except csv.Error as exc:
            bad(
                lineno,
                f"not a valid CSV line ({exc}); quote a field that holds a comma or a "
                "quote, one override per line",
            )
            continue
        if header is None:
            header = [f.strip() for f in fields]
            missing = [c for c in OVERRIDE_COLUMNS if c not in header]
            unknown = [c for c in header if c not in OVERRIDE_COLUMNS + OPTIONAL_COLUMNS]
            dup = sorted({c for c in header if header.count(c) > 1})
            if missing or unknown or dup:
                what = []
                if missing:
                    what.append(f"missing column(s) {missing}")
                if unknown:
                    what.append(f"unknown column(s) {unknown}")
                if dup:
                    what.append(f"repeated column(s) {dup}")
                bad(
                    lineno,
                    f"header {line.strip()!r}: {'; '.join(what)}; expected the header "
                    f"{expected} (optionally ,{','.join(OPTIONAL_COLUMNS)})",
                )
                raise OverridesError(source, [p for _, p in problems])
            continue
        if len(fields) != len(header):
            bad(
                lineno,
                f"{len(fields)} field(s), expected {len(header)} ({','.join(header)}); "
                "quote a reason that contains a comma, and write times with a decimal point",
            )
            continue
        rec = {k: v.strip() for k, v in zip(header, fields, strict=True)}
        n_before = len(problems)
        trace_id, marker, time_text = rec["trace_id"], rec["marker"].lower(), rec["time_ms"]
        if not trace_id:
            bad(
                lineno,
                "trace_id is empty; give the trace id as in the trace column of "
                "sites.csv (e.g. EX0001/L_median_motor/0)",
            )
        elif "/" not in trace_id:
            bad(
                lineno,
                f"trace_id {trace_id!r} has no exam prefix; trace ids are "
                "'<exam_id>/...' as in the trace column of sites.csv "
                "(e.g. EX0001/L_median_motor/0)",
            )
        if marker not in MARKERS:
            bad(lineno, f"marker {rec['marker']!r} is not one of {', '.join(MARKERS)}")
        time = math.nan
        if time_text.lower() == "none":
            if marker in MARKERS and marker not in NONE_MARKERS:
                bad(
                    lineno,
                    f"time_ms none is not allowed for the {marker} marker (none means "
                    "no response for onset/peak and no F wave for f_onset); give the end time "
                    "in ms",
                )
        else:
            seconds = _time_seconds(time_text)
            if seconds is None:
                bad(
                    lineno,
                    f"time_ms {time_text!r} is not a number; give the corrected marker "
                    "time in ms from the stimulus (e.g. 4.35), or none (onset/peak: no "
                    "response; f_onset: no F wave)",
                )
            else:
                time = seconds
        for col in ("reviewer", "reason"):
            if not rec[col]:
                bad(lineno, f"{col} is empty; every override needs a {col} (free text)")
        at = rec.get("reviewed_at", "")
        if at and not _iso_date(at):
            bad(
                lineno,
                f"reviewed_at {at!r} is not an ISO date; give YYYY-MM-DD (or "
                "YYYY-MM-DDTHH:MM) or leave it empty",
            )
        if trace_id and marker in MARKERS:
            first = seen.get((trace_id, marker))
            if first is not None:
                bad(
                    lineno,
                    f"a second {marker} override of trace {trace_id} (the first is on "
                    f"line {first}); keep one of the two lines",
                )
            else:
                seen[(trace_id, marker)] = lineno
        if len(problems) == n_before:
            rows.append(
                Override(
                    trace_id,
                    marker,
                    time,
                    rec["reviewer"],
                    rec["reason"],
                    at,
                    lineno,
                    source,
                    time_text,
                )
            )
    if header is None:
        problems.append(
            (
                0,
                f"{source}: no header line; the first line that is not a comment "
                f"must be {expected}",
            )
        )
    problems.extend(_check_traces(rows, source))
    if problems:
        raise OverridesError(source, [p for _, p in sorted(problems, key=lambda p: p[0])])
    return Overrides(source, sha256, tuple(rows))


def _ms(t: float) -> str:
    return f"{t * 1e3:g} ms"


def _check_traces(rows: list[Override], source: str) -> list[tuple[int, str]]:
    """Consistency of the lines of one trace (what needs no samples): (line, problem)."""
    out = []
    by_trace: dict[str, dict[str, Override]] = {}
    for r in rows:
        by_trace.setdefault(r.trace_id, {})[r.marker] = r
    for tid, m in by_trace.items():
        nr = [m[k] for k in ("onset", "peak") if k in m and m[k].is_none]
        if nr:
            for k, r in m.items():
                if r in nr:
                    continue
                out.append(
                    (
                        r.line,
                        f"{source} line {r.line}: trace {tid}: line {nr[0].line} says there is no "
                        f"response ({nr[0].marker} none), so it cannot also have "
                        + (f"a {k} at {r.time_text} ms" if not r.is_none else f"{k} none")
                        + "; remove one of the lines",
                    )
                )
            continue
        order = [(k, m[k]) for k in ("onset", "peak", "end") if k in m]
        for (k1, a), (k2, b) in zip(order, order[1:], strict=False):
            if not a.time < b.time:
                out.append(
                    (
                        b.line,
                        f"{source} line {b.line}: trace {tid}: the {k2} "
                        f"({b.time_text} ms) must come after the {k1} ({a.time_text} ms, "
                        f"line {a.line})",
                    )
                )
        f = m.get("f_onset")
        if f is not None and not f.is_none:
            for k in ("onset", "peak"):
                if k in m and not m[k].time < f.time:
                    out.append(
                        (
                            f.line,
                            f"{source} line {f.line}: trace {tid}: the F-wave "
                            f"onset ({f.time_text} ms) must come after the {k} "
                            f"({m[k].time_text} ms, line {m[k].line})",
                        )
                    )
    return out


# ----------------------------------------------------------------------------------------------
# recomputation from the samples
# ----------------------------------------------------------------------------------------------
class _Skip(Exception):
    """An override of one trace cannot be applied: (line, marker, message)."""

    def __init__(self, row: Override, message: str):
        super().__init__(message)
        self.row = row
        self.message = message


def _time_index(t: float, t0: float, fs: float) -> int:
    """The kernel's ``time_index``: first sample at or after ``t``."""
    v = (t - t0) * fs - 1e-6
    if not v < 1e15:
        return 1 << 60
    return int(math.ceil(v))


def _n_of(duration: float, fs: float, minimum: int) -> int:
    """The kernel's ``n_of``: samples in ``duration`` (rounded), at least ``minimum``."""
    v = duration * fs
    if not v < 1e15:
        return 1 << 60
    return max(int(math.floor(v + 0.5)), minimum)


class _Trace:
    """One trace's samples and the kernel's baseline, for the recomputations."""

    def __init__(
        self,
        y: np.ndarray,
        fs: float,
        t0: float,
        params: dict,
        is_f: bool,
        baseline: float,
        noise: float,
        artefact_end: float,
    ):
        self.y = y
        self.n = y.size
        self.fs = fs
        self.t0 = t0
        self.prm = params
        self.is_f = is_f
        self.level = baseline
        self.noise = noise
        self.h = _n_of(params["smooth"], fs, 1) // 2
        a = (artefact_end - t0) * fs
        self.a = int(round(a)) if math.isfinite(a) else 0
        self._s: dict[int, np.ndarray] = {}

    def index(self, t: float) -> float:
        """Fractional sample index of time ``t``."""
        return (t - self.t0) * self.fs

    def smoothed(self, start: int) -> np.ndarray:
        """Centred moving average (``smooth``) of signal - baseline over [start, n), windows
        clipped to [start, n) (the kernel's detection signal, with start = artefact end)."""
        s = self._s.get(start)
        if s is None:
            seg = self.y[start:] - self.level
            c = np.concatenate(([0.0], np.cumsum(seg)))
            i = np.arange(start, self.n)
            lo = np.maximum(i - self.h, start)
            hi = np.minimum(i + self.h + 1, self.n)
            s = (c[hi - start] - c[lo - start]) / (hi - lo)
            self._s[start] = s
        return s

    def area(self, t_on: float, t_end: float) -> float:
        """Area below baseline from onset to end: dt x sum of max(-s, 0) over the samples
        ceil(onset) .. floor(end) of the smoothed deviation s (the kernel's definition)."""
        i0 = int(math.ceil(self.index(t_on) - _EPS))
        i1 = int(math.floor(self.index(t_end) + _EPS))
        start = max(min(self.a, i0), 0)
        s = self.smoothed(start)
        part = s[max(i0, start) - start : i1 + 1 - start]
        return float(-part[part < 0.0].sum()) / self.fs

    def value_at(self, t: float) -> float:
        """Raw signal at ``t``, linear interpolation between the two nearest samples."""
        x = self.index(t)
        j = min(max(int(math.floor(x + _EPS)), 0), self.n - 1)
        f = x - j
        if j + 1 >= self.n or f <= _EPS:
            return float(self.y[j])
        return float(self.y[j] * (1.0 - f) + self.y[j + 1] * f)

    def peak_to_peak(self, t_peak: float) -> float:
        """Largest smoothed deviation after the peak sample p (to the end of the search window,
        or of the M wave of an F-wave trace) minus the smoothed deviation at p; p is the
        smallest smoothed sample within ``peak_fit``/2 of the reviewed time (the kernel's
        parabola vertex lies that close to its smoothed minimum)."""
        c = min(max(int(round(self.index(t_peak))), 0), self.n - 1)
        r = _n_of(self.prm["peak_fit"], self.fs, 2) // 2
        start = max(min(self.a, c - r), 0)
        s = self.smoothed(start)
        lo, hi = max(c - r, start), min(c + r + 1, self.n)
        p = lo + int(np.argmin(s[lo - start : hi - start]))
        e = min(_time_index(self.prm["search_end"], self.t0, self.fs), self.n)
        if p >= e:
            e = self.n
        e_lobe = e
        if self.is_f:
            sig_s = max(self.noise, NOISE_FLOOR) / math.sqrt(2 * self.h + 1)
            thr = self.prm["k_f"] * sig_s
            run = _n_of(self.prm["f_gap"], self.fs, 1)
            quiet = np.abs(s[p - start :]) <= thr
            if quiet.size >= run:
                full = np.flatnonzero(
                    np.lib.stride_tricks.sliding_window_view(quiet, run).all(axis=1)
                )
                if full.size:
                    e_m = p + int(full[0])
                    if e_m + run < e:
                        e_lobe = e_m + run
        seg = s[p - start : e_lobe - start]
        return float(seg.max() - seg[0])

    def in_range(self, t: float) -> bool:
        x = self.index(t)
        return -_EPS <= x <= self.n - 1 + _EPS

    def range_text(self) -> str:
        return f"{_ms(self.t0)} to {_ms(self.t0 + (self.n - 1) / self.fs)}"


def _recompute(
    tr: _Trace | None, values: dict, status: str, modality: str, marks: dict[str, Override]
) -> tuple[dict, str, dict[str, set]]:
    """New values of one trace: (values, status, {variable: markers that set it}).

    Raises _Skip naming the first line that cannot be applied.
    """
    new = dict(values)
    by: dict[str, set] = {}

    def touch(var: str, marker: str) -> None:
        by.setdefault(var, set()).add(marker)

    first = min(marks.values(), key=lambda r: r.line)
    nr = [marks[k] for k in ("onset", "peak") if k in marks and marks[k].is_none]
    if nr:  # the reviewer says there is no response
        for var in MEASURED:
            new[var] = math.nan
            for r in nr:
                touch(var, r.marker)
        return new, "no_response", by
    if "f_onset" in marks and modality != "fwave":
        raise _Skip(
            marks["f_onset"],
            f"it is a {modality} trace; an f_onset override is only for "
            "F-wave traces (modality fwave)",
        )
    if tr is None or not (math.isfinite(tr.level) and math.isfinite(tr.noise)):
        raise _Skip(
            first,
            f"status {status}: the kernel found no baseline for this trace, so no "
            "value can be referred to it; it cannot be reviewed",
        )
    for r in marks.values():
        if not r.is_none and not tr.in_range(r.time):
            raise _Skip(
                r,
                f"time {_ms(r.time)} of the {r.marker} is outside the trace "
                f"({tr.range_text()}); give a time within the recorded sweep",
            )
    new_status = status
    if status != "ok":
        missing = [k for k in ("onset", "peak") if k not in marks]
        if missing:
            raise _Skip(
                first,
                f"the trace has status {status} (no measured response), so a "
                "reviewed response needs both an onset and a peak line (and an end line "
                f"for the durations and the area); {' and '.join(missing)} missing",
            )
        for var in MEASURED:
            new[var] = math.nan
        new_status = "ok"
    onset = new["onset_latency"]
    neg_end = onset + new["negative_duration"]
    tot_end = onset + new["total_duration"]
    area_due = set()
    if "onset" in marks:
        onset = marks["onset"].time
        new["onset_latency"] = onset
        new["negative_duration"] = neg_end - onset
        new["total_duration"] = tot_end - onset
        for var in MARKER_VARIABLES["onset"]:
            touch(var, "onset")
        area_due.add("onset")
    if "end" in marks:
        tot_end = marks["end"].time
        new["total_duration"] = tot_end - onset
        for var in MARKER_VARIABLES["end"]:
            touch(var, "end")
        area_due.add("end")
    if area_due:
        new["negative_area"] = math.nan
        if math.isfinite(onset) and math.isfinite(tot_end):
            new["negative_area"] = tr.area(onset, tot_end)
            if not math.isfinite(new["negative_area"]):
                raise _Skip(
                    marks.get("onset") or marks["end"],
                    "the trace has non-finite "
                    f"samples between the onset ({_ms(onset)}) and the end "
                    f"({_ms(tot_end)}); the area cannot be computed",
                )
    if "peak" in marks:
        tp = marks["peak"].time
        amp = tr.level - tr.value_at(tp)
        if not math.isfinite(amp):
            raise _Skip(marks["peak"], f"the signal is not finite at the reviewed peak ({_ms(tp)})")
        if not amp > 0.0:
            raise _Skip(
                marks["peak"],
                f"the signal at the reviewed peak ({_ms(tp)}) is not "
                f"below the baseline ({amp * 1e6:.2f} uV); the peak marker is the "
                "negative peak",
            )
        new["peak_latency"] = tp
        new["amplitude"] = amp
        new["snr"] = 20.0 * math.log10(amp / tr.noise) if tr.noise > 0.0 else math.inf
        new["peak_to_peak"] = tr.peak_to_peak(tp)
        for var in MARKER_VARIABLES["peak"]:
            touch(var, "peak")
    if "f_onset" in marks:
        new["f_latency"] = marks["f_onset"].time
        touch("f_latency", "f_onset")
    # the markers must stay in order with the machine values they did not replace
    peak = new["peak_latency"]
    if not onset < peak:
        r = marks.get("onset") or marks["peak"]
        raise _Skip(
            r,
            f"the onset ({_ms(onset)}) must come before the negative peak "
            f"({_ms(peak)}); correct the {'peak' if r.marker == 'onset' else 'onset'} "
            "too, or check the time",
        )
    if math.isfinite(tot_end) and not peak < tot_end:
        r = marks.get("end") or marks.get("peak") or marks["onset"]
        raise _Skip(
            r,
            f"the end of the response ({_ms(tot_end)}) must come after the negative "
            f"peak ({_ms(peak)})",
        )
    if "end" in marks and math.isfinite(neg_end) and tot_end < neg_end:
        raise _Skip(
            marks["end"],
            f"the end ({_ms(tot_end)}) is before the first return to "
            f"baseline after the peak ({_ms(neg_end)}, end of negative_duration); the end "
            "marker is the end of the last negative lobe",
        )
    f = new["f_latency"]
    if "f_onset" in marks and math.isfinite(f) and not f > peak:
        raise _Skip(
            marks["f_onset"],
            f"the F-wave onset ({_ms(f)}) must come after the M wave's negative peak ({_ms(peak)})",
        )
    return new, new_status, by


def _params(measures: xr.Dataset) -> dict:
    text = measures.attrs.get("measure_parameters")
    if text:
        return json.loads(text)
    from . import kernels as K

    return K.table_as_dict(K.default_table())


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def review_measures(measures: xr.Dataset, traces: xr.Dataset, overrides: Overrides) -> Review:
    """Apply marker overrides to per-trace measures; report the ones that cannot be applied.

    Parameters
    ----------
    measures : xarray.Dataset
        Output of :func:`ncsproc.measure` (``trace`` ids, ``modality``, ``status``, the measured
        variables, ``baseline_level``, ``noise_sd``, ``artefact_end``, ``measure_parameters``).
    traces : xarray.Dataset
        The trace set that was measured (its ``signal`` is read for the reviewed traces only).
    overrides : Overrides
        From :func:`read_overrides`.

    Returns
    -------
    Review
        ``measures`` with the reviewed values, the string variable ``reviewed`` (``;``-joined
        sorted markers of the applied overrides, "" for other traces), ``original_<variable>``
        (the machine value of every trace, for every variable a review recomputed) and
        ``original_status`` when a status changed; ``problems`` (the overrides not applied: an
        unknown trace id, a time outside the trace, f_onset on another modality, a lone onset or
        peak on a trace without a response, markers out of order...; every override of such a
        trace is left out, the others are applied); ``changes`` (one entry per recomputed value).
    """
    ids = np.asarray(measures["trace"].values).astype(str)
    index = {t: i for i, t in enumerate(ids)}
    tr_ids = np.asarray(traces["trace"].values).astype(str)
    tr_index = {t: i for i, t in enumerate(tr_ids)}
    params = _params(measures)
    by_trace: dict[str, dict[str, Override]] = {}
    for r in overrides:
        by_trace.setdefault(r.trace_id, {})[r.marker] = r
    exam_of = (
        np.asarray(measures["exam_id"].values).astype(str)
        if "exam_id" in measures
        else np.full(ids.size, "", dtype=object)
    )
    modality = np.asarray(measures["modality"].values).astype(str)
    status = np.asarray(measures["status"].values).astype(str)
    cols = {v: np.asarray(measures[v].values, dtype=np.float64) for v in MEASURED}
    aux = {
        v: np.asarray(measures[v].values, dtype=np.float64)
        for v in ("baseline_level", "noise_sd", "artefact_end")
    }
    new_cols = {v: c.copy() for v, c in cols.items()}
    new_status = status.astype(object).copy()
    reviewed = np.full(ids.size, "", dtype=object)
    touched: set[str] = set()
    problems: list[ReviewProblem] = []
    changes: list[dict] = []

    for tid in sorted(by_trace):
        marks = by_trace[tid]
        lines = sorted(marks.values(), key=lambda r: r.line)
        i = index.get(tid)
        if i is None:
            exam = tid.split("/", 1)[0]
            known = [t for t in ids if t.startswith(f"{exam}/")]
            hint = (
                f"exam {exam} has {len(known)} trace(s), e.g. {', '.join(known[:3])}"
                if known
                else "no measured trace has this exam prefix"
            )
            for r in lines:
                problems.append(
                    ReviewProblem(
                        tid,
                        r.line,
                        r.marker,
                        (
                            f"{r.where}: trace {tid!r} is not a measured trace ({hint}); copy the "
                            f"id from "
                            "the trace column of sites.csv"
                        ),
                    )
                )
            continue
        values = {v: float(cols[v][i]) for v in MEASURED}
        tr = None
        if tid in tr_index and math.isfinite(aux["baseline_level"][i]):
            j = tr_index[tid]
            n = int(traces["n_samples"].values[j])
            y = np.asarray(traces["signal"][j].values, dtype=np.float64)[:n]
            mod = modality[i]
            tr = _Trace(
                y,
                float(traces["sampling_rate"].values[j]),
                float(traces["t_start"].values[j]),
                params[mod],
                mod == "fwave",
                float(aux["baseline_level"][i]),
                float(aux["noise_sd"][i]),
                float(aux["artefact_end"][i]),
            )
        try:
            new, st, by = _recompute(tr, values, status[i], modality[i], marks)
        except _Skip as skip:
            others = [r.line for r in lines if r is not skip.row]
            tail = (
                (
                    f" (so the other override line(s) {', '.join(map(str, others))} of this "
                    "trace were not applied either)"
                )
                if others
                else ""
            )
            problems.append(
                ReviewProblem(
                    tid,
                    skip.row.line,
                    skip.row.marker,
                    f"{skip.row.where}: trace {tid}: {skip.message}{tail}",
                )
            )
            for r in lines:
                if r is not skip.row:
                    problems.append(
                        ReviewProblem(
                            tid,
                            r.line,
                            r.marker,
                            (
                                f"{r.where}: trace {tid}: not applied, because line "
                                f"{skip.row.line} of "
                                "the same trace cannot be"
                            ),
                        )
                    )
            continue
        for v in MEASURED:
            new_cols[v][i] = new[v]
        new_status[i] = st
        reviewed[i] = ";".join(sorted(marks))
        touched.update(by)
        rows_before = len(changes)
        for v in MEASURED:
            if v not in by or (_same(values[v], new[v]) and math.isnan(values[v])):
                continue
            changes.append(
                _change(tid, exam_of[i], v, values[v], new[v], sorted(by[v]), marks, status[i], st)
            )
        if st != status[i] or len(changes) == rows_before:
            changes.append(
                _change(
                    tid,
                    exam_of[i],
                    "status",
                    math.nan,
                    math.nan,
                    sorted(marks),
                    marks,
                    status[i],
                    st,
                )
            )

    problems.sort(key=lambda p: p.line)
    out = measures.copy()
    for v in MEASURED:
        if v in touched:
            out[v] = (measures[v].dims, new_cols[v], dict(measures[v].attrs))
    if (new_status != status).any():
        out["status"] = (measures["status"].dims, new_status, dict(measures["status"].attrs))
    for v in MEASURED:
        if v in touched:
            attrs = dict(measures[v].attrs)
            attrs["long_name"] = f"machine value of {v} before the marker review"
            out[f"original_{v}"] = (measures[v].dims, cols[v].copy(), attrs)
    if (new_status != status).any():
        out["original_status"] = (
            measures["status"].dims,
            status.astype(object),
            {"long_name": "machine status before the marker review"},
        )
    out["reviewed"] = (
        measures["status"].dims,
        reviewed,
        {
            "long_name": "markers corrected by a reviewer (';'-joined, sorted; empty: none)",
            "overrides": overrides.source,
            "overrides_sha256": overrides.sha256,
        },
    )
    n_traces = int((reviewed != "").sum())
    if n_traces or overrides.rows:
        from .schema import history_line

        line = history_line(
            f"review: {len(overrides.rows) - len(problems)} marker override(s) of "
            f"{overrides.source} ({overrides.sha256[:12] or 'in memory'}) applied to {n_traces} "
            f"trace(s), {len(problems)} not applied"
        )
        prev = measures.attrs.get("history", "")
        out.attrs["history"] = f"{prev}\n{line}" if prev else line
    return Review(out, problems, changes, overrides)


def _change(tid, exam, var, before, after, markers, marks, st0, st1) -> dict:
    rows = [marks[m] for m in markers]
    reviewers = list(dict.fromkeys(r.reviewer for r in rows))
    reasons = list(dict.fromkeys(r.reason for r in rows))
    dates = list(dict.fromkeys(r.reviewed_at for r in rows if r.reviewed_at))
    return {
        "trace_id": tid,
        "exam_id": str(exam),
        "marker": ";".join(markers),
        "variable": var,
        "original": before,
        "reviewed": after,
        "reviewer": "; ".join(reviewers),
        "reason": "; ".join(reasons),
        "original_status": str(st0),
        "reviewed_status": str(st1),
        "line": ";".join(str(r.line) for r in sorted(rows, key=lambda r: r.line)),
        "reviewed_at": "; ".join(dates),
    }


def apply_overrides(measures: xr.Dataset, traces: xr.Dataset, overrides: Overrides) -> xr.Dataset:
    """Apply marker overrides; every one of them must apply.

    Parameters
    ----------
    measures, traces, overrides
        As for :func:`review_measures`.

    Returns
    -------
    xarray.Dataset
        The reviewed measures (see :func:`review_measures`).

    Raises
    ------
    OverridesError
        Some override cannot be applied (all of them are listed).
    """
    result = review_measures(measures, traces, overrides)
    if result.problems:
        raise OverridesError(overrides.source, [p.message for p in result.problems])
    return result.measures


# ----------------------------------------------------------------------------------------------
# the reviews table
# ----------------------------------------------------------------------------------------------
def empty_reviews_table() -> pd.DataFrame:
    """``reviews.csv`` without rows (columns and kinds of :data:`REVIEWS_COLUMNS`)."""
    return pd.DataFrame(
        {
            c: pd.Series([], dtype=np.float64 if REVIEWS_KINDS[c] == "f" else object)
            for c in REVIEWS_COLUMNS
        }
    )


def reviews_table(review: Review, overrides_sha256: str | None = None) -> pd.DataFrame:
    """One row per value a review recomputed, in clinical units (``reviews.csv``).

    Parameters
    ----------
    review : Review
        From :func:`review_measures`.
    overrides_sha256 : str, optional
        Written in every row (default: the overrides file's SHA-256).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`REVIEWS_COLUMNS`: ``original`` and ``reviewed`` in the units of the
        matching ``responses.csv`` column (``column``; ms, uV, uVms, dB), rounded to its
        decimals, NaN where there is no value; a status change is a row of variable ``status``
        (the statuses in ``original_status``/``reviewed_status``). Sorted by exam, trace, the
        variables' order in ``responses.csv``.
    """
    sha = review.overrides.sha256 if overrides_sha256 is None else overrides_sha256
    order = {v: k for k, v in enumerate((*MEASURED, "status"))}
    rows = []
    for c in sorted(
        review.changes, key=lambda c: (c["exam_id"], c["trace_id"], order[c["variable"]])
    ):
        column, units, factor, decimals = _CLINICAL[c["variable"]]
        rows.append(
            {
                **c,
                "units": units,
                "original": float(np.round(c["original"] * factor, decimals)),
                "reviewed": float(np.round(c["reviewed"] * factor, decimals)),
                "overrides_sha256": sha,
                "column": column,
            }
        )
    if not rows:
        return empty_reviews_table()
    table = pd.DataFrame(rows)
    for c in REVIEWS_COLUMNS:
        if REVIEWS_KINDS[c] == "f":
            table[c] = table[c].astype(np.float64)
    return table[list(REVIEWS_COLUMNS)].reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# the machine values beside the reviewed features, criteria and patterns
# ----------------------------------------------------------------------------------------------
ORIGINAL_PREFIX = "original_"
"""Prefix of the columns that hold the machine value of a reviewed feature (``original_dml_ms``)."""
CHANGED_COLUMN = "reviewed_columns"
"""Column before the ``original_*`` ones: the columns whose value the review changed in the row
(``;``-joined, in the table's order). Their ``original_<column>`` holds the machine value, so an
empty original there means the machine had no value (not "unchanged")."""
ORIGINAL_KEYS = {
    "segments": ("exam_id", "study", "segment_index"),
    "nerves": ("exam_id", "study"),
    "exams": ("exam_id",),
    "criteria": ("criteria_set", "criterion", "exam_id", "study"),
}
"""The feature tables that get ``original_*`` columns, and the columns identifying a row."""
_NOT_REVIEWABLE = {
    # what the study is and how it was recorded, which normal limits were used: no marker
    # changes them
    "nerves": frozenset(
        (
            "exam_id",
            "subject_id",
            "study",
            "nerve",
            "side",
            "modality",
            "record_site",
            "n_traces",
            "n_sites",
            "sites",
            "site_order",
            "distal_site",
            "distal_distance_mm",
            "f_study",
            "highpass_hz",
            "lowpass_hz",
            "temperature_c",
            "age_years",
            "height_cm",
            "limits_version",
            "limits_sha256",
            "limits_status",
            "limits_missing",
            "reviewed_traces",
        )
    ),
    "segments": frozenset(
        (
            "exam_id",
            "study",
            "nerve",
            "side",
            "distal_site",
            "proximal_site",
            "distance_mm",
            "subject_id",
            "segment_index",
        )
    ),
}
_LIMIT_VALUE = ("_uln_", "_lln_")  # dml_uln_ms, amp_lln_uv: the limit used, not a feature


def is_original_column(name: str) -> bool:
    """One of the columns :func:`original_tables` adds (``reviewed_columns``, ``original_*``)."""
    return name == CHANGED_COLUMN or name.startswith(ORIGINAL_PREFIX)


def original_columns(table: str, columns) -> list[tuple[str, str]]:
    """The ``(original_<column>, column)`` pairs a feature table gets with marker overrides.

    ``nerves`` and ``segments``: every column a marker can change (features, comparisons with
    the normal limits, criteria met, statuses, the traces a segment uses), not the study's
    identity and recording (ids, sites, distances, filters, temperature, age, height, F-wave
    study), the normal limits used (``*_uln_*``, ``*_lln_*``, ``limits_*``: a limit only
    empties or fills with its feature) nor the criteria's explanations (``*_not_evaluated``:
    ``criteria.csv`` keeps each criterion's original state). ``exams``: ``pattern`` and the
    level of every criteria set. ``criteria``: ``value`` and ``state``. In the table's order.
    """
    cols = [str(c) for c in columns if not is_original_column(str(c))]
    if table == "criteria":
        chosen = [c for c in cols if c in ("value", "state")]
    elif table == "exams":
        have = set(cols)
        sets = [c for c in cols if f"{c}_status" in have and f"{c}_version" in have]
        chosen = [c for c in ("pattern", *sets) if c in have]
    elif table in _NOT_REVIEWABLE:
        fixed = _NOT_REVIEWABLE[table]
        chosen = [
            c
            for c in cols
            if c not in fixed
            and c != "reviewed"
            and not c.endswith("_not_evaluated")
            and not any(s in c for s in _LIMIT_VALUE)
        ]
    else:
        return []
    return [(ORIGINAL_PREFIX + c, c) for c in chosen]


def _cell(v) -> str:
    """A value as text, "" for a missing one (how a text cell of the tables shows it)."""
    if v is None or v is pd.NA:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "" if math.isnan(v) else repr(float(v))
    return str(v)


def _number_text(values: np.ndarray, decimals: int) -> list[str]:
    return [f"{v:.{decimals}f}" if math.isfinite(v) else "" for v in values.tolist()]


def original_tables(reviewed: dict, machine: dict | None) -> dict:
    """The reviewed feature tables with the machine values beside them.

    Parameters
    ----------
    reviewed : dict of pandas.DataFrame
        :func:`ncsproc.features.tables` of the reviewed measures (``segments``, ``nerves``,
        ``exams``, ``criteria``; other tables are passed through).
    machine : dict of pandas.DataFrame or None
        The same tables of the measures before the review (they may cover only the reviewed
        exams); None: nothing was reviewed.

    Returns
    -------
    dict of pandas.DataFrame
        The tables of :data:`ORIGINAL_KEYS` with :data:`CHANGED_COLUMN` and the columns of
        :func:`original_columns` appended: ``reviewed_columns`` names the columns whose value
        differs from the machine value as the CSV writes it (floats at their fixed decimals),
        ``original_<column>`` holds the machine value there and is empty (NaN, "" or None)
        elsewhere, and in rows the machine tables do not have. A float column's original is a
        float, a text or boolean column's original is text, a mixed column's
        (``criteria.value``) holds the machine value itself.
    """
    from .features import csv_decimals
    from .tables import column_decimals

    out = dict(reviewed)
    for name, keys in ORIGINAL_KEYS.items():
        t = reviewed.get(name)
        if t is None:
            continue
        pairs = original_columns(name, t.columns)
        m = None if machine is None else machine.get(name)
        n = len(t)
        idx = np.full(n, -1, dtype=np.int64)
        if m is not None and len(m) and n and all(k in t and k in m for k in keys):
            where = {
                tuple(_cell(v) for v in row): i
                for i, row in enumerate(zip(*(m[k].tolist() for k in keys), strict=True))
            }
            idx = np.array(
                [
                    where.get(tuple(_cell(v) for v in row), -1)
                    for row in zip(*(t[k].tolist() for k in keys), strict=True)
                ],
                dtype=np.int64,
            )
        found = idx >= 0
        take = np.where(found, idx, 0)
        dec = column_decimals(list(t.columns), csv_decimals(t))
        changed: list[list[str]] = [[] for _ in range(n)]
        new = {}
        for oc, c in pairs:
            a = t[c].to_numpy()
            has = m is not None and c in m.columns and found.any()
            b = m[c].to_numpy()[take] if m is not None and has else np.array([])
            if a.dtype.kind in "fiu":
                col = np.full(n, np.nan)
                if has:
                    try:
                        bf = np.asarray(b, dtype=np.float64)
                    except (TypeError, ValueError):
                        bf = np.array([np.nan if _cell(v) == "" else float(v) for v in b])
                    d = dec.get(c, 3)
                    differ = found & (
                        np.array(_number_text(a.astype(np.float64), d), dtype=object)
                        != np.array(_number_text(bf, d), dtype=object)
                    )
                    col[differ] = bf[differ]
                    for i in np.flatnonzero(differ):
                        changed[i].append(c)
            else:
                at = [_cell(v) for v in a.tolist()]
                text = a.dtype.kind == "b" or all(isinstance(v, str) for v in a.tolist())
                col = np.array([""] * n if text else [None] * n, dtype=object)
                if has:
                    bl = b.tolist()
                    for i in np.flatnonzero(found):
                        if _cell(bl[i]) != at[i]:
                            col[i] = _cell(bl[i]) if text else bl[i]
                            changed[i].append(c)
            new[oc] = col
        t = t.copy()
        t[CHANGED_COLUMN] = np.array([";".join(c) for c in changed], dtype=object)
        for oc, col in new.items():
            t[oc] = col
        out[name] = t
    return out
