"""Reading an ``ncsproc extract`` output folder for the report.

The report shows what the tables say: every number on a page, and every marker of a trace
figure, is read from the CSV tables of one extract run (cells kept as their exact text). The
samples come from that run's ``cohort.h5``, matched to the ``responses.csv`` rows by the
table's ``trace_id``. Each trace's QC flags and baseline level are the table's ``qc_flags``
and ``baseline_uv`` columns.

Results written before those columns existed (no ``trace_id``/``qc_flags``/``baseline_uv`` in
``responses.csv``) are matched by (exam, source file, study, record), and their QC flags and
baseline come from running :func:`ncsproc.measure` again on the stored samples with the run's
stored parameters, used **only for the traces whose recomputed measures equal the tables** (at
the tables' precision); the pages say so when any differ (e.g. the kernels changed since the
run) and show no flags or baseline for them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import NcsprocError
from ..tables import SPLIT_BY_MODALITY, TABLES_VERSION_KEY, TABLES_VERSIONS, from_layout
from ..units import CLINICAL, MOTOR_AMPLITUDE_MODALITIES
from .layout import MARKERS

__all__ = [
    "ReportError",
    "Results",
    "TraceView",
    "load_results",
    "num",
    "marker_times",
    "split_reviewed",
    "split_flags",
    "WARNING_FLAGS",
]

REQUIRED = ("responses", "exams")
TABLE_QC_COLUMNS = ("trace_id", "qc_flags", "baseline_uv")
"""``responses.csv`` columns (``ncsproc extract`` since they were added) that give the report
each trace's id, QC flags and baseline without re-measuring."""
OPTIONAL = (
    "nerves",
    "segments",
    "sites",
    "criteria",
    "errors",
    "reviews",
    "trajectories",
    "subjects",
)

WARNING_FLAGS = frozenset(
    {
        "positive_onset",
        "no_return_to_baseline",
        "nan_in_baseline",
        "artefact_unsettled",
        "onset_at_artefact_end",
        "peak_at_window_end",
        "onset_backtracked",
    }
)
"""QC flags counted as warnings (a reason to look at the markers). The others
(``pretrigger_baseline``, ``post_artefact_baseline``, ``artefact_subtracted``,
``baseline_refined``, ``baseline_slope``, ``no_f_wave``) describe how the trace was measured
and are listed but not counted."""

# responses.csv columns compared with a re-measurement, and their decimals in the CSV
_COMPARED = {
    "onset_ms": 3,
    "peak_ms": 3,
    "amplitude_uv": 2,
    "p2p_uv": 2,
    "neg_duration_ms": 3,
    "total_duration_ms": 3,
    "neg_area_uvms": 2,
    "f_latency_ms": 3,
}


class ReportError(NcsprocError):
    """The results folder cannot be made into a report (the message says how to fix it)."""


def num(values) -> np.ndarray:
    """Float array of table cells (text); empty or non-numeric cells -> NaN."""
    return pd.to_numeric(
        pd.Series(values, dtype=object).replace("", np.nan), errors="coerce"
    ).to_numpy(dtype=float)


def _f(text) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except (TypeError, ValueError):
        return math.nan


def marker_times(row) -> dict[str, float]:
    """Marker times (ms) of one ``responses.csv`` row, as the table states them.

    onset = ``onset_ms``; peak = ``peak_ms``; end = ``onset_ms + total_duration_ms`` (rounded
    to the tables' 1 us); f_onset = ``f_latency_ms``. Markers without a value are left out.
    """
    onset, peak = _f(row.get("onset_ms")), _f(row.get("peak_ms"))
    total, f = _f(row.get("total_duration_ms")), _f(row.get("f_latency_ms"))
    out = {"onset": onset, "peak": peak, "end": round(onset + total, 3), "f_onset": f}
    return {k: v for k, v in out.items() if math.isfinite(v)}


def split_flags(text) -> list[str]:
    """The QC flag names of a ``responses.csv`` ``qc_flags`` cell (``;``-joined, in bit
    order), empty for none."""
    if not isinstance(text, str):
        return []
    return [t.strip() for t in text.split(";") if t.strip()]


def split_reviewed(text) -> set[str]:
    """The markers named by a ``reviewed`` cell (``"onset;peak"``), empty for none."""
    if not isinstance(text, str):
        return set()
    return {t.strip() for t in text.replace(",", ";").split(";") if t.strip()}


@dataclass(eq=False)
class TraceView:
    """One trace as the report draws it: the table row, its markers and its samples."""

    row: dict
    trace_id: str | None
    markers: dict[str, float]
    reviewed: set[str] = field(default_factory=set)
    originals: dict[str, float] = field(default_factory=dict)
    t_ms: np.ndarray | None = None
    v: np.ndarray | None = None
    baseline: float | None = None
    qc_flags: list[str] | None = None
    verified: bool | None = None  # None: not checked (no samples, or re-measurement off)
    mismatch: str = ""

    @property
    def status(self) -> str:
        return self.row.get("status", "")

    @property
    def modality(self) -> str:
        return self.row.get("modality", "")

    @property
    def distance_mm(self) -> float:
        return _f(self.row.get("distance_mm"))

    @property
    def record(self) -> int:
        r = _f(self.row.get("record"))
        return int(r) if math.isfinite(r) else 0


@dataclass
class Results:
    """The tables of one extract run (cells as text) and access to its traces."""

    root: Path
    tables: dict[str, pd.DataFrame]
    provenance: dict
    settings: dict | None
    cohort_h5: Path | None
    traces_note: str = ""
    _groups: dict = field(default_factory=dict, repr=False)

    def table(self, name: str) -> pd.DataFrame:
        return self.tables.get(name, pd.DataFrame())

    def exam_ids(self) -> list[str]:
        """Exams of ``exams.csv``, then exams that only appear in ``errors.csv``."""
        ids = list(dict.fromkeys(self.table("exams").get("exam_id", pd.Series([])).tolist()))
        errs = self.table("errors")
        if "exam_id" in errs:
            known = set(ids)
            ids.extend(sorted({e for e in errs["exam_id"] if e and e not in known}))
        return ids

    def rows(self, name: str, exam_id: str) -> pd.DataFrame:
        """The rows of one exam in a table (grouped once per table, not scanned per exam)."""
        t = self.table(name)
        if t.empty or "exam_id" not in t:
            return t.iloc[0:0]
        groups = self._groups.get(name)
        if groups is None:
            groups = self._groups[name] = t.groupby("exam_id", sort=False).indices
        idx = groups.get(exam_id)
        return t.iloc[idx] if idx is not None else t.iloc[0:0]

    # ------------------------------------------------------------------ traces
    @property
    def has_table_qc(self) -> bool:
        """``responses.csv`` holds ``trace_id``, ``qc_flags`` and ``baseline_uv``: no
        re-measurement is needed for QC flags and baselines."""
        return all(c in self.table("responses") for c in TABLE_QC_COLUMNS)

    def exam_traces(
        self, exam_ids: list[str], *, remeasure: bool = True
    ) -> Iterator[tuple[str, list[TraceView]]]:
        """Yield ``(exam_id, traces)`` for each exam, in the order given, reading the samples
        of one exam at a time (memory does not grow with the cohort).

        With the table's ``trace_id``, ``qc_flags`` and ``baseline_uv`` (:attr:`has_table_qc`)
        the traces are matched by id and nothing is re-measured (``remeasure`` is moot); for
        older results, by (exam, source file, study, record), and ``remeasure`` re-measures
        the samples for QC flags and baselines (:meth:`_verify`)."""
        reviews = self.table("reviews")
        from_table = self.has_table_qc
        ds = None
        index: dict = {}
        if self.cohort_h5 is not None:
            from ..storage import open_trace_set

            try:
                ds = open_trace_set(self.cohort_h5)
            except Exception as exc:  # a damaged file: the pages say so, the tables remain
                self.traces_note = (
                    f"{self.cohort_h5.name}: the trace set could not be opened "
                    f"({type(exc).__name__}: {exc}); no trace figures"
                )
                ds = None
        try:
            if ds is not None:
                keys = (
                    ds["trace"].values.astype(str)
                    if from_table
                    else zip(
                        ds["exam_id"].values.astype(str),
                        ds["source_file"].values.astype(str),
                        ds["study"].values.astype(str),
                        (str(int(r)) for r in ds["record"].values),
                        strict=True,
                    )
                )
                for i, key in enumerate(keys):
                    # a key that is not unique cannot be matched safely: no samples for it
                    index[key] = None if key in index else i
            for exam_id in exam_ids:
                rows = self.rows("responses", exam_id)
                views = []
                positions = []
                for row in rows.to_dict("records"):
                    if from_table:
                        tid = str(row.get("trace_id") or "") or None
                        key = tid
                    else:
                        tid = None
                        key = (
                            exam_id,
                            row.get("source_file", ""),
                            row.get("study", ""),
                            _record_key(row.get("record")),
                        )
                    pos = index.get(key)
                    positions.append(pos)
                    view = TraceView(
                        row=row,
                        trace_id=tid,
                        markers=marker_times(row),
                        reviewed=split_reviewed(row.get("reviewed")),
                    )
                    if from_table:
                        view.qc_flags = split_flags(row.get("qc_flags"))
                        b = _f(row.get("baseline_uv"))
                        view.baseline = b * 1e-6 if math.isfinite(b) else None  # V
                    views.append(view)
                if ds is not None and any(p is not None for p in positions):
                    self._attach_samples(ds, views, positions, remeasure and not from_table)
                attach_reviews(views, reviews)
                yield exam_id, views
        finally:
            if ds is not None:
                ds.close()

    def _attach_samples(self, ds, views, positions, remeasure):
        wanted = sorted({p for p in positions if p is not None})
        sub = ds.isel(trace=wanted).load()
        where = {p: k for k, p in enumerate(wanted)}
        signal = sub["signal"].values
        n = sub["n_samples"].values.astype(int)
        fs = sub["sampling_rate"].values.astype(float)
        t0 = sub["t_start"].values.astype(float)
        ids = sub["trace"].values.astype(str)
        for view, pos in zip(views, positions, strict=True):
            if pos is None:
                continue
            k = where[pos]
            view.trace_id = str(ids[k])
            view.v = np.asarray(signal[k, : n[k]], dtype=float)
            view.t_ms = (t0[k] + np.arange(n[k]) / fs[k]) * 1e3
        if remeasure:
            self._verify(sub, views, positions)

    def _verify(self, sub, views, positions):
        """Re-measure and keep QC flags and baselines of the traces that match the tables."""
        from ..measures import measure
        from ..tables import responses_table

        params = (self.settings or {}).get("measure")
        try:
            m = measure(sub, **(params or {}))
        except Exception as exc:  # parameters of another version, a schema problem, ...
            note = f"re-measurement failed ({type(exc).__name__}: {exc})"
            for view in views:
                view.verified, view.mismatch = False, note
            return
        table = responses_table(m)
        table.index = _index_of(table, m)
        flags = m["qc_flags"].values.astype(np.int64)
        masks = [int(x) for x in np.atleast_1d(m["qc_flags"].attrs["flag_masks"])]
        names = m["qc_flags"].attrs["flag_meanings"].split()
        base = m["baseline_level"].values.astype(float)
        tid = m["trace"].values.astype(str)
        pos_of = {t: i for i, t in enumerate(tid)}
        for view, pos in zip(views, positions, strict=True):
            if pos is None or view.trace_id is None:
                continue
            i = pos_of[view.trace_id]
            mine = table.loc[view.trace_id]
            problems = []
            if str(mine["status"]) != view.status:
                problems.append(f"status {mine['status']} vs {view.status}")
            if not view.reviewed:  # a reviewed trace's values come from the review
                motor = view.row.get("modality") in MOTOR_AMPLITUDE_MODALITIES
                layout2 = self.provenance.get(TABLES_VERSION_KEY, 1) == 2
                for col, d in _COMPARED.items():
                    if layout2 and motor and col in SPLIT_BY_MODALITY:
                        d = CLINICAL["mV"][1] - 3  # written in mV: 1 uV resolution
                    a, b = float(mine[col]), _f(view.row.get(col))
                    if math.isnan(a) and math.isnan(b):
                        continue
                    if not (abs(a - b) <= 1.01 * 10.0**-d):
                        problems.append(f"{col} {a:.{d}f} vs {view.row.get(col) or 'empty'}")
            view.verified = not problems
            view.mismatch = "; ".join(problems)
            if view.verified:
                view.qc_flags = [
                    nm for nm, mask in zip(names, masks, strict=True) if flags[i] & mask
                ]
                view.baseline = float(base[i]) if math.isfinite(base[i]) else None


def _index_of(table: pd.DataFrame, m) -> pd.Index:
    """Trace ids of a ``responses_table`` (which sorts its rows) by its identifying columns."""
    key = {
        (str(e), str(s), str(st), int(r)): str(t)
        for e, s, st, r, t in zip(
            m["exam_id"].values,
            m["source_file"].values,
            m["study"].values,
            m["record"].values,
            m["trace"].values,
            strict=True,
        )
    }
    return pd.Index(
        [
            key[(str(e), str(s), str(st), int(r))]
            for e, s, st, r in zip(
                table["exam_id"], table["source_file"], table["study"], table["record"], strict=True
            )
        ]
    )


def _record_key(value) -> str:
    r = _f(value)
    return str(int(r)) if math.isfinite(r) else str(value)


def attach_reviews(views: list[TraceView], reviews: pd.DataFrame) -> None:
    """Mark reviewed markers and their original times (ms) from ``reviews.csv`` rows.

    ``reviews.csv`` (written by ``extract --overrides``) has one row per recomputed value:
    ``trace_id, exam_id, marker, variable, units, original, reviewed, reviewer, reason, ...,
    column``; ``column`` names the ``responses.csv`` column (``onset_ms``, ``peak_ms``,
    ``total_duration_ms``, ``f_latency_ms``) whose value before the review is ``original``.
    The original end is the original onset plus the original total duration. Any other row
    (amplitude, area, status, ...) is shown in the page's table, not drawn.
    """
    if reviews is None or reviews.empty or "trace_id" not in reviews or "marker" not in reviews:
        return
    by_trace: dict[str, list[dict]] = {}
    for r in reviews.to_dict("records"):
        by_trace.setdefault(str(r.get("trace_id", "")), []).append(r)
    for view in views:
        rows = by_trace.get(view.trace_id or "\0", [])
        if not rows:
            continue
        orig: dict[str, float] = {}
        for r in rows:
            # a value recomputed from several corrected markers names them all ("end;onset")
            view.reviewed.update(
                m for m in split_reviewed(str(r.get("marker", ""))) if m in MARKERS
            )
            name, value = _review_value(r)
            if name:
                orig[name] = value
        onset = orig.get("onset", view.markers.get("onset", math.nan))
        for marker in view.reviewed:
            if marker == "onset" and "onset" in orig:
                view.originals["onset"] = orig["onset"]
            elif marker == "peak" and "peak" in orig:
                view.originals["peak"] = orig["peak"]
            elif marker == "f_onset" and "f_latency" in orig:
                view.originals["f_onset"] = orig["f_latency"]
            elif marker == "end":
                if "end" in orig:
                    view.originals["end"] = orig["end"]
                elif "total_duration" in orig and math.isfinite(onset):
                    view.originals["end"] = round(onset + orig["total_duration"], 3)
        view.originals = {k: v for k, v in view.originals.items() if math.isfinite(v)}


_REVIEW_NAMES = {
    "onset_ms": "onset",
    "onset_latency": "onset",
    "peak_ms": "peak",
    "peak_latency": "peak",
    "total_duration_ms": "total_duration",
    "total_duration": "total_duration",
    "f_latency_ms": "f_latency",
    "f_latency": "f_latency",
    "end_ms": "end",
}


def _review_value(r: dict) -> tuple[str | None, float]:
    """``(name, original in ms)`` of one reviews.csv row, for the marker times only.

    ``column`` (the responses.csv column, ``original`` in its units) is preferred; else
    ``variable`` with ``units`` (``ms``, or ``s`` for an SI variable name without units).
    """
    column = str(r.get("column", "") or "")
    variable = str(r.get("variable", "") or "")
    value = _f(r.get("original"))
    if column in _REVIEW_NAMES:
        return _REVIEW_NAMES[column], value
    if variable in _REVIEW_NAMES:
        units = str(r.get("units", "") or "")
        in_ms = variable.endswith("_ms") or units == "ms"
        return _REVIEW_NAMES[variable], value if in_ms else value * 1e3
    return None, value


def load_results(results_dir: str | os.PathLike) -> Results:
    """Read the tables, ``provenance.json`` and the settings of an extract output folder.

    Raises
    ------
    ReportError
        The folder or a required table (``responses.csv``, ``exams.csv``) is missing or
        unreadable; the message names the file and how to fix it.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise ReportError(f"{root}: no such folder; give the --out folder of `ncsproc extract`")
    tables: dict[str, pd.DataFrame] = {}
    for name in (*REQUIRED, *OPTIONAL):
        path = root / f"{name}.csv"
        if not path.exists():
            if name in REQUIRED:
                raise ReportError(
                    f"{path}: not found; this is not the output folder of `ncsproc extract` "
                    f"(run `ncsproc extract PATH... --out {root}` first)"
                )
            continue
        try:
            tables[name] = pd.read_csv(
                path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8"
            )
        except Exception as exc:
            raise ReportError(
                f"{path}: cannot be read as a CSV table ({exc}); rerun "
                "`ncsproc extract` to rewrite it"
            ) from exc
    provenance = {}
    prov_path = root / "provenance.json"
    if prov_path.exists():
        try:
            provenance = json.loads(prov_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ReportError(
                f"{prov_path}: not valid JSON ({exc}); rerun `ncsproc extract`"
            ) from exc
    # the report works on layout 1 (uV columns) whatever layout the folder was written in
    version = provenance.get(TABLES_VERSION_KEY, 1) if isinstance(provenance, dict) else 1
    if version not in TABLES_VERSIONS:
        raise ReportError(
            f"{prov_path}: {TABLES_VERSION_KEY} {version!r}; this ncsproc reads "
            f"{list(TABLES_VERSIONS)} (update ncsproc)"
        )
    tables = {name: from_layout(t, version) for name, t in tables.items()}
    settings = None
    cohort = root / "cohort.h5"
    cohort_h5 = None
    note = ""
    if cohort.exists():
        settings, has_traces, note = _cohort_attrs(cohort)
        cohort_h5 = cohort if has_traces else None
        if not has_traces and all(c in tables["responses"] for c in TABLE_QC_COLUMNS):
            note = note.replace(
                "no trace figures, QC flags or review controls",
                "no trace figures or review controls",
            )
    else:
        note = "cohort.h5 is missing: no trace figures (the tables are shown)"
    return Results(
        root=root,
        tables=tables,
        provenance=provenance,
        settings=settings,
        cohort_h5=cohort_h5,
        traces_note=note,
    )


def _cohort_attrs(path: Path) -> tuple[dict | None, bool, str]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("settings")
            schema = f.attrs.get("schema")
            has_signal = "signal" in f
    except Exception as exc:
        return None, False, f"{path.name}: cannot be opened ({exc}); no trace figures"
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if isinstance(schema, bytes):
        schema = schema.decode("utf-8", "replace")
    try:
        settings = json.loads(raw) if raw else None
    except ValueError:
        settings = None
    if not (schema and has_signal):
        return (
            settings,
            False,
            (
                "cohort.h5 holds no traces (extract --no-traces): no trace "
                "figures, QC flags or review controls"
            ),
        )
    return settings, True, ""
