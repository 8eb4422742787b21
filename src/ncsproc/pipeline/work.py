"""The unit of work of a cohort run: one task processes a few exams (runs on a worker).

:func:`process_batch` reads every file of its exams, measures all their traces in one call,
computes the feature tables of all of them in one call (per-call overhead amortised over the
batch), splits the results per exam and writes one part file per exam
(:mod:`ncsproc.pipeline.parts`). It returns only small summaries; tables and traces reach the
client through the part files. Nothing here raises for bad input: a file that cannot be read
becomes an error row of its exam, an exam that cannot be measured becomes an error row, and
the rest of the batch carries on.
"""

from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path

import numpy as np

from .._version import __version__
from .inputs import ExamJob, InputFile
from .parts import encode_part, write_atomic

__all__ = ["process_batch", "build_dataset", "TRANSIENT_ERRORS", "scrub", "EXTRA_EXAM_COLUMNS"]

TRANSIENT_ERRORS = (OSError, MemoryError)
"""Errors that may not happen again (a vanished file, an I/O error, memory): an exam that met
one is reported but not cached, so the next run tries it again."""

EXTRA_EXAM_COLUMNS = ("exam_date", "sex", "n_files", "n_files_failed", "n_traces")
_AGE_TOL = 1.0  # years: a manifest age within a year of the file's agrees (integer ages)
_HEIGHT_TOL = 1.0  # cm
_ABS_PATH = re.compile(r"(?<![\w.~-])(?:/[^/\s'\"():;,]+)+/?")


def scrub(message: str, job: ExamJob | None = None) -> str:
    """Remove absolute paths from a message: input files become their ``source_file``,
    exam folders their label, any other absolute path its last component."""
    if job is not None:
        for f in sorted(job.files, key=lambda f: -len(f.path)):
            message = message.replace(f.path, f.source_file)
        for f in job.files:
            folder = str(Path(f.path).parent)
            message = message.replace(folder + os.sep, "").replace(folder, job.label.rstrip("/"))
    return _ABS_PATH.sub(lambda m: Path(m.group(0).rstrip("/")).name, message)


def _error(source_file: str, exc: BaseException, job: ExamJob, stage: str) -> dict:
    text = str(exc)
    return {
        "source_file": source_file,
        "error": type(exc).__name__,
        "message": scrub(text, job) if text else type(exc).__name__,
        "exam_id": job.exam_id,
        "stage": stage,
        "transient": isinstance(exc, TRANSIENT_ERRORS),
    }


class FileData:
    """The arrays of one file's trace set: ``signal`` and every per-trace coordinate."""

    __slots__ = ("signal", "coords", "attrs", "signal_attrs", "exam_days")

    def __init__(self, ds):
        from ..schema import TRACE_COORDS

        var = ds.variables
        self.signal = np.asarray(var["signal"].values)
        self.signal_attrs = dict(var["signal"].attrs)
        self.coords = {c.name: np.asarray(var[c.name].values) for c in TRACE_COORDS}
        self.attrs = {c.name: dict(var[c.name].attrs) for c in TRACE_COORDS}
        # optional exam date (already reduced to the allowed precision by read())
        n = self.signal.shape[0]
        self.coords["exam_date"] = (
            np.asarray(var["exam_date"].values, dtype=object)
            if "exam_date" in var
            else np.array([""] * n, dtype=object)
        )
        self.attrs["exam_date"] = dict(var["exam_date"].attrs) if "exam_date" in var else {}
        self.exam_days: list[int] = []  # internal shifted day numbers (see _exam_dates)

    @property
    def n(self) -> int:
        return self.signal.shape[0]


def _apply_identity(fd: FileData, f: InputFile, job: ExamJob, manifest: bool) -> None:
    """Exam id from the grouping, manifest facts, ``source_file`` relative to the root.

    A value the file (or its sidecar) states and the grouping or manifest contradicts is an
    error of the file (nothing is guessed); a value it does not state is filled in.
    """
    from ..errors import FormatError

    n = fd.n
    c = fd.coords
    folder = Path(f.path).parent.name
    exam = c["exam_id"].astype(str)
    how = "the manifest" if manifest else "its folder"
    stated = sorted({str(e) for e in exam if e and e != job.exam_id and e != folder})
    if stated:
        raise FormatError(
            f"{f.source_file}: the file or its sidecar says exam_id {stated[0]!r}, but {how} "
            f"makes it exam {job.exam_id!r}; correct one of them (nothing is guessed)"
        )
    subject = job.meta.get("subject_id", "")
    if subject:
        current = c["subject_id"].astype(str)
        other = sorted({str(s) for s in current if s and s != subject})
        if other:
            raise FormatError(
                f"{f.source_file}: the file or its sidecar says subject_id {other[0]!r}, but the "
                f"manifest says {subject!r}"
            )
        c["subject_id"] = np.array([subject] * n, dtype=object)
    elif not any(str(v) for v in c["subject_id"]):
        # no key-derived pseudonym, no sidecar or manifest id: the exam folder's id stands in
        # (the CLI says so); nothing is derived from the file's patient fields
        c["subject_id"] = np.array([job.exam_id] * n, dtype=object)
    for name, tol in (("age", _AGE_TOL), ("height", _HEIGHT_TOL)):
        value = job.meta.get(name, math.nan)
        if isinstance(value, float) and math.isnan(value):
            continue
        current = np.asarray(c[name], dtype=np.float64)
        known = np.isfinite(current)
        if known.any() and (np.abs(current[known] - value) > tol).any():
            raise FormatError(
                f"{f.source_file}: the file or its sidecar says {name} "
                f"{float(current[known][0]):g}, but the manifest says {value:g}"
            )
        c[name] = np.where(known, current, value)
    # trace ids "<exam_id>/...": unique across the cohort (exam ids are, and ids within an
    # exam are checked), so the cohort trace set of cohort.h5 is valid
    ids = c["trace"].astype(str).astype(object)
    own = f"{job.exam_id}/"
    for i in range(n):
        if ids[i].startswith(own):
            continue
        prefix = f"{exam[i]}/" if exam[i] else ""
        rest = ids[i][len(prefix) :] if prefix and ids[i].startswith(prefix) else ids[i]
        ids[i] = own + rest
    c["trace"] = ids
    c["exam_id"] = np.array([job.exam_id] * n, dtype=object)
    c["source_file"] = np.array([f.source_file] * n, dtype=object)


def _exam_dates(fd: FileData, f: InputFile, job: ExamJob, settings) -> None:
    """Turn the file's full exam date (read at day precision) into what may leave the worker.

    The ``exam_date`` coordinate becomes the date reduced to the settings' precision, or with
    ``"shift"`` the date moved by the subject's secret offset; ``fd.exam_days`` gets the
    shifted day number (real day + the subject's offset, keyed on the centre key), from which
    the follow-up tables compute exact intervals under every precision. The real date is
    dropped here. A manifest ``exam_date`` fills in a file that states none.
    """
    from ..errors import FormatError
    from ..privacy import date_offset_days, dates_agree, day_number, reduce_date, shift_date

    raw = np.asarray(fd.coords["exam_date"], dtype=object).astype(str)
    given = str(job.meta.get("exam_date", "") or "")
    if given:
        stated = sorted({d for d in raw if d})
        if any(not dates_agree(d, given) for d in stated):
            raise FormatError(
                f"{f.source_file}: the manifest's exam_date does not agree with the exam date "
                "the file (or its sidecar) gives; correct one of them (nothing is guessed)"
            )
        raw = np.where(raw == "", given, raw)
    precision = getattr(settings, "date_precision", "year")
    pseudonymizer = getattr(settings, "pseudonymizer", None)
    subjects = np.asarray(fd.coords["subject_id"]).astype(str)
    offsets: dict[str, int] = {}
    shown, days = [], set()
    for date, subject in zip(raw.tolist(), subjects.tolist(), strict=True):
        if subject not in offsets:
            offsets[subject] = date_offset_days(pseudonymizer, subject)
        day = day_number(date) if date else None
        if day is not None:
            days.add(day + offsets[subject])
        if precision == "shift":
            shown.append(shift_date(date, offsets[subject]) if date else "")
        else:
            shown.append(reduce_date(date, precision))
    fd.coords["exam_date"] = np.array(shown, dtype=object)
    if fd.attrs.get("exam_date") is not None:
        fd.attrs["exam_date"] = {
            "long_name": "exam date, reduced to the run's date precision "
            f"({precision}; 'shift': moved by the subject's secret offset)"
        }
    fd.exam_days = sorted(days)


def build_dataset(files: list[FileData], history: str):
    """One trace set from the arrays of many files (NaN padding to the widest; one xarray
    object per task instead of one concatenation per file)."""
    import xarray as xr

    from ..schema import SCHEMA, TRACE_COORDS, history_line

    width = max(fd.signal.shape[1] for fd in files)
    dtype = np.result_type(*[fd.signal.dtype for fd in files])
    n = sum(fd.n for fd in files)
    signal = np.full((n, width), np.nan, dtype=dtype)
    i = 0
    for fd in files:
        signal[i : i + fd.n, : fd.signal.shape[1]] = fd.signal
        i += fd.n
    first = files[0]
    coords = {
        name: ("trace", np.concatenate([fd.coords[name] for fd in files]), first.attrs[name])
        for name in (*(spec.name for spec in TRACE_COORDS), "exam_date")
    }
    return xr.Dataset(
        {"signal": (("trace", "sample"), signal, first.signal_attrs)},
        coords=coords,
        attrs={"schema": SCHEMA, "ncsproc_version": __version__, "history": history_line(history)},
    )


def read_file(path: str, *, format=None, pseudonymizer=None, date_precision: str = "day"):
    """One input file as plain arrays (:func:`ncsproc.formats.read_raw`): the raw layer, so
    that a task builds one xarray object for all its files instead of one per file."""
    from ..formats import read_raw

    return read_raw(path, format=format, pseudonymizer=pseudonymizer, date_precision=date_precision)


def _read_exam(job: ExamJob, manifest: bool, settings=None):
    """Read the files of one exam: (file arrays, file errors, files skipped)."""
    from ..formats import detect
    from ..unknowns import missing_metadata

    files, errors, skipped = [], [], 0
    for f in job.files:
        known = None
        if not f.explicit:
            try:
                accepted, _ = detect(f.path)
            except Exception as exc:  # detection never raises by contract; be safe
                errors.append(_error(f.source_file, exc, job, "read"))
                continue
            if not any(r.kind == "traces" for r in accepted):
                skipped += 1
                continue
            if len(accepted) == 1:  # what read_raw would detect again
                known = accepted[0].name
        try:
            ds = read_file(
                f.path,
                format=known,
                pseudonymizer=getattr(settings, "pseudonymizer", None),
                # the full date stays in the worker: _exam_dates reduces or shifts it
                date_precision="day",
            )
            missing = missing_metadata(
                ds.assign_coords(source_file=("trace", [f.source_file] * ds.sizes["trace"]))
            )
            if missing:  # the nerve features and criteria need side, nerve and modality
                errors.append(
                    {
                        "source_file": f.source_file,
                        "error": "MissingMetadata",
                        "message": scrub("; ".join(missing), job),
                        "exam_id": job.exam_id,
                        "stage": "read",
                        "transient": False,
                    }
                )
                continue
            fd = FileData(ds)
            _apply_identity(fd, f, job, manifest)
            _exam_dates(fd, f, job, settings)
            files.append(fd)
        except Exception as exc:  # a bad file is data: reported, the exam goes on
            errors.append(_error(f.source_file, exc, job, "read"))
    return files, errors, skipped


def _exam_arrays(files: list[FileData]) -> dict:
    width = max(fd.signal.shape[1] for fd in files)
    dtype = np.result_type(*[fd.signal.dtype for fd in files])
    signal = np.full((sum(fd.n for fd in files), width), np.nan, dtype=dtype)
    i = 0
    for fd in files:
        signal[i : i + fd.n, : fd.signal.shape[1]] = fd.signal
        i += fd.n
    first = files[0]
    return {
        "signal": signal,
        "signal_attrs": first.signal_attrs,
        "coords": {k: np.concatenate([fd.coords[k] for fd in files]) for k in first.coords},
        "attrs": first.attrs,
    }


def _check_exam(job: ExamJob, files: list[FileData]) -> None:
    from ..errors import SchemaError

    ids = np.concatenate([fd.coords["trace"] for fd in files]).astype(str)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = ", ".join(repr(str(u)) for u in uniq[counts > 1][:5])
        raise SchemaError(f"exam {job.exam_id}: trace ids are not unique across its files: {dup}")


def _split(table, exam_ids) -> dict:
    """A batch table as columns (converted once), cut per exam; rows keep their order."""
    from .parts import table_columns

    cols = table_columns(table)
    out = {e: [(n, a[:0]) for n, a in cols] for e in exam_ids}
    if len(table):
        eids = np.asarray(table["exam_id"].to_numpy(), dtype=str)
        order = np.argsort(eids, kind="stable")
        ids = eids[order]
        cols = [(n, a[order]) for n, a in cols]
        uniq, starts = np.unique(ids, return_index=True)
        ends = [*starts[1:], len(ids)]
        for e, a, b in zip(uniq, starts, ends, strict=True):
            out[str(e)] = [(n, arr[a:b]) for n, arr in cols]
    return out


def _feature_tables(measures, settings) -> dict:
    from .. import features

    return features.tables(
        measures, limits=settings.limits, rules=settings.rules, criteria=list(settings.criteria)
    )


def _tables_for(measures, settings, review=None, machine=None) -> dict:
    """The tables of a batch's measures; with a review, also the review columns, the
    ``original_*`` columns (from ``machine``, the measures before the review) and ``reviews``."""
    from ..tables import responses_table

    t = _feature_tables(measures, settings)
    t["responses"] = responses_table(measures, extended=True)
    if review is not None:
        from ..review import original_tables, reviews_table

        _add_review_columns(t, measures)
        t = original_tables(t, _machine_tables(measures, machine, settings))
        # the file's SHA-256 is a property of the run, not of the exam: merge_outputs fills it
        # in, so an exam's part depends only on its own override lines
        t["reviews"] = reviews_table(review, overrides_sha256="")
    return t


def _machine_tables(reviewed, machine, settings) -> dict | None:
    """The feature tables of the exams with an applied override, from their machine measures
    (features, criteria and patterns are per exam, so the other exams are left out); None
    when no override was applied."""
    if machine is None:
        return None
    marks = np.asarray(reviewed["reviewed"].values).astype(str)
    exams = np.asarray(reviewed["exam_id"].values).astype(str)
    mine = np.unique(exams[marks != ""])
    if not len(mine):
        return None
    keep = np.isin(np.asarray(machine["exam_id"].values).astype(str), mine)
    return _feature_tables(machine.isel(trace=np.flatnonzero(keep)), settings)


TABLES = ("responses", "segments", "nerves", "exams", "criteria", "sites")
REVIEW_COLUMNS = {
    "responses": "reviewed",
    "sites": "reviewed",
    "nerves": "reviewed_traces",
    "exams": "reviewed_traces",
}
"""Columns appended to the tables of an exam that has marker overrides (``--overrides``),
followed by ``reviewed_columns`` and the ``original_*`` columns
(:func:`ncsproc.review.original_columns`)."""


def _add_review_columns(t: dict, measures) -> None:
    """``sites.reviewed`` (the corrected markers of the trace used at the site) and
    ``reviewed_traces`` of ``nerves`` (the reviewed traces of the study and of the F-wave study
    it takes its F waves from) and ``exams`` (of the exam), ``;``-joined and sorted."""
    ids = np.asarray(measures["trace"].values).astype(str)
    marks = np.asarray(measures["reviewed"].values).astype(str)
    exam = np.asarray(measures["exam_id"].values).astype(str)
    study = np.asarray(measures["study"].values).astype(str)
    mark = dict(zip(ids, marks, strict=True))
    by_study: dict[tuple[str, str], set] = {}
    by_exam: dict[str, set] = {}
    for i in np.flatnonzero(marks != ""):
        by_study.setdefault((exam[i], study[i]), set()).add(ids[i])
        by_exam.setdefault(exam[i], set()).add(ids[i])

    def text(values) -> str:
        return ";".join(sorted(values))

    sites = t["sites"].copy()
    sites["reviewed"] = np.array([mark.get(str(x), "") for x in sites["trace"]], dtype=object)
    t["sites"] = sites
    nerves = t["nerves"].copy()
    f_study = (
        [f if isinstance(f, str) else "" for f in nerves["f_study"]]
        if "f_study" in nerves
        else [""] * len(nerves)
    )
    nerves["reviewed_traces"] = np.array(
        [
            text(by_study.get((e, s), set()) | (by_study.get((e, f), set()) if f else set()))
            for e, s, f in zip(nerves["exam_id"], nerves["study"], f_study, strict=True)
        ],
        dtype=object,
    )
    t["nerves"] = nerves
    exams = t["exams"].copy()
    exams["reviewed_traces"] = np.array(
        [text(by_exam.get(str(e), set())) for e in exams["exam_id"]], dtype=object
    )
    t["exams"] = exams


def _review(measures, traces, jobs: list[ExamJob]):
    """Apply the marker overrides of ``jobs`` to a batch's measures.

    Returns (measures, Review or None, {job key: error rows}); an override that cannot be
    applied is an error row of its exam (stage ``review``), the others are applied.
    """
    rows = [r for job in jobs for r in job.overrides]
    if not rows:
        return measures, None, {}
    from ..review import Overrides, review_measures

    source = rows[0].source
    result = review_measures(measures, traces, Overrides(source, "", tuple(rows)))
    owner = {(r.trace_id, r.line): job for job in jobs for r in job.overrides}
    errors: dict[str, list[dict]] = {}
    for p in result.problems:
        job = owner[(p.trace_id, p.line)]
        errors.setdefault(job.key, []).append(
            {
                "source_file": source,
                "error": "OverrideError",
                "message": p.message,
                "exam_id": job.exam_id,
                "stage": "review",
                "transient": False,
            }
        )
    return result.measures, result, errors


def _measure_and_tabulate(ds, jobs: list[ExamJob], settings, n_threads: int):
    from ..measures import measure

    machine = measure(ds, n_threads=n_threads, **settings.measure)
    measures, review, errors = _review(machine, ds, jobs)
    return _tables_for(measures, settings, review, machine), errors


def _review_layout(tables: dict, reviewed: bool) -> dict:
    """An exam without override lines has no review columns, no ``original_*`` columns and no
    ``reviews`` table (its part does not depend on anyone else's overrides); an exam with some
    has them, last: the review column, then the originals."""
    from ..review import is_original_column

    out = {}
    for name, cols in tables.items():
        if name == "reviews":
            if reviewed:
                out[name] = cols
            continue
        col = REVIEW_COLUMNS.get(name)
        rest = [(n, a) for n, a in cols if n != col and not is_original_column(n)]
        mine = [(n, a) for n, a in cols if n == col]
        mine += [(n, a) for n, a in cols if is_original_column(n)]
        out[name] = rest + (mine if reviewed else [])
    return out


def process_batch(
    jobs: list[ExamJob], settings, parts_dir: str, with_traces: bool, manifest: bool = False
) -> list[dict]:
    """Process a few exams; write one part file per exam; return one small summary each.

    Parameters
    ----------
    jobs : list of ExamJob
        The exams (their keys already computed).
    settings : Settings
        Loaded settings (measure parameters, limits, rules, criteria).
    parts_dir : str
        Folder of the part files (``DIR/.ncsproc/parts``); must be visible to the client.
    with_traces : bool
        Also store each exam's trace set in its part (for ``cohort.h5``).
    manifest : bool
        Exams come from a manifest (only changes the wording of messages).

    Returns
    -------
    list of dict
        Per exam: ``key, exam_id, status, cacheable, part, part_sha256, n_files, n_read,
        n_skipped, n_traces, n_errors, errors, seconds``.
    """
    t0 = time.perf_counter()
    n_threads = 1
    read_ok: list[tuple[ExamJob, list[FileData]]] = []
    errors: dict[str, list[dict]] = {}
    counts: dict[str, dict] = {}
    for job in jobs:
        files, errs, skipped = _read_exam(job, manifest, settings)
        errors[job.key] = errs
        counts[job.key] = {
            "n_files": len(job.files) - skipped,
            "n_read": len(files),
            "n_skipped": skipped,
            "n_traces": 0,
        }
        if not files:
            continue
        try:
            _check_exam(job, files)
        except Exception as exc:
            errs.append(_error(job.label, exc, job, "exam"))
            continue
        counts[job.key]["n_traces"] = int(sum(fd.n for fd in files))
        read_ok.append((job, files))

    results: dict[str, dict] = {}
    if read_ok:
        try:
            task_ds = build_dataset(
                [fd for _, fl in read_ok for fd in fl], f"extract: {len(read_ok)} exam(s)"
            )
            tables, review_errors = _measure_and_tabulate(
                task_ds, [job for job, _ in read_ok], settings, n_threads
            )
            ids = [job.exam_id for job, _ in read_ok]
            split = {name: _split(tables[name], ids) for name in tables}
            for job, _ in read_ok:
                results[job.key] = {name: split[name][job.exam_id] for name in tables}
        except Exception:
            # isolate the exam that fails: measure and tabulate each one alone
            review_errors = {}
            for job, fl in read_ok:
                try:
                    ds = build_dataset(fl, f"extract: exam {job.exam_id}")
                    t, errs = _measure_and_tabulate(ds, [job], settings, n_threads)
                    results[job.key] = {
                        name: _split(t[name], [job.exam_id])[job.exam_id] for name in t
                    }
                    review_errors.update(errs)
                except Exception as exc:
                    errors[job.key].append(_error(job.label, exc, job, "measure"))
        for key, errs in review_errors.items():
            errors[key].extend(errs)

    traces_by_key = {job.key: fl for job, fl in read_ok}
    out = []
    for job in jobs:
        errs = errors[job.key]
        c = counts[job.key]
        tables = results.get(job.key)
        if tables is not None:
            tables = dict(tables)
            exams = list(tables["exams"])
            n_rows = len(exams[0][1]) if exams else 0
            # the exam date as far as the settings let it leave the readers (default: the
            # year): the earliest one the exam's files state, empty when none does
            dates = sorted(
                str(d) for fd in traces_by_key.get(job.key, []) for d in fd.coords["exam_date"] if d
            )
            extra = {
                "exam_date": np.array([dates[0] if dates else ""] * n_rows, dtype=object),
                "sex": np.array([job.meta.get("sex", "")] * n_rows, dtype=object),
                "n_files": np.full(n_rows, c["n_files"], dtype=np.int64),
                "n_files_failed": np.full(n_rows, c["n_files"] - c["n_read"], dtype=np.int64),
                "n_traces": np.full(n_rows, c["n_traces"], dtype=np.int64),
            }
            tables["exams"] = exams + [(k, v) for k, v in extra.items() if k not in dict(exams)]
            tables = _review_layout(tables, bool(job.overrides))
            status = "done"
        else:
            tables = {}
            status = "failed" if errs else "empty"
            for r in job.overrides:
                errs.append(
                    {
                        "source_file": r.source,
                        "error": "OverrideError",
                        "message": f"{r.where}: trace {r.trace_id}: the {r.marker} override was not "
                        "applied: no trace of this exam could be measured (see its other errors)",
                        "exam_id": job.exam_id,
                        "stage": "review",
                        "transient": False,
                    }
                )
        summary = {
            "key": job.key,
            "exam_id": job.exam_id,
            "label": job.label,
            "status": status,
            "cacheable": not any(e["transient"] for e in errs),
            "n_errors": len(errs),
            "errors": errs,
            "ncsproc_version": __version__,
            **c,
        }
        traces = traces_by_key.get(job.key) if (with_traces and tables) else None
        # the earliest (shifted) day number the exam's files give: exact intervals between a
        # subject's exams under every date precision (never a real date)
        days = sorted(d for fd in traces_by_key.get(job.key, []) for d in fd.exam_days)
        summary["exam_day"] = days[0] if (days and tables) else None
        summary["has_traces"] = traces is not None
        if traces is not None:
            summary["width"] = int(max(fd.signal.shape[1] for fd in traces))
            summary["signal_dtype"] = str(np.result_type(*[fd.signal.dtype for fd in traces]))
        try:
            data = encode_part(summary, tables, _exam_arrays(traces) if traces else None)
            rel = f"{job.key[:2]}/{job.key}.part"
            digest = write_atomic(Path(parts_dir) / rel, data)
            summary.update(part=rel, part_sha256=digest, part_bytes=len(data))
        except Exception as exc:
            errs.append(_error(job.label, exc, job, "write"))
            summary.update(
                part=None, part_sha256=None, cacheable=False, status="failed", n_errors=len(errs)
            )
        out.append(summary)
    elapsed = time.perf_counter() - t0
    for s in out:
        s["seconds"] = elapsed / max(1, len(out))
    return out
