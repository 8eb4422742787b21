"""Reading and validating ``overrides.csv``: the reviewer's corrected markers."""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import math
import os
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ..measures import MEASURED_VARS

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
