"""``extract``: the cohort pipeline (interchange contract section 4), as a library function.

Plan (client): collect files, group them into exams (folders or a manifest), hash every exam
(SHA-256 of its files and sidecars), look the keys up in the catalogue. Compute (Dask): tasks
of a few exams each read, measure and tabulate, and write one part file per exam. Commit
(client): each finished task is recorded in the catalogue at once. Merge (client): the tables
and ``cohort.h5`` are written from the parts of every exam of the plan, streaming, in exam
order, atomically. A rerun recomputes nothing that is in the catalogue and rewrites nothing
that is already up to date.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .._version import __version__
from .catalog import Catalog
from .execute import resolve_scheduler
from .followup import write_followup
from .hashindex import HashIndex
from .inputs import ExamJob, UsageError, describe_not_read, hash_exams, plan_inputs
from .outputs import TABLE_FILES, CohortSchema, merge_outputs, parquet_available
from .parts import read_part_head
from .progress import Progress
from .settings import load_settings, with_privacy
from .work import process_batch, scrub

__all__ = ["extract", "ExtractResult", "CACHE_DIR", "auto_batch_size"]

logger = logging.getLogger("ncsproc.pipeline")

CACHE_DIR = ".ncsproc"
MAX_BATCH = 8
"""Most exams per task: the feature tables cost ~45 ms for one exam and ~8 ms per exam in a
batch of 8 (per-call overhead); beyond 8 the gain is small and load balance suffers."""


@dataclass
class ExtractResult:
    """What a run did.

    Attributes
    ----------
    out : Path
        Output folder.
    n_exams, n_files, n_traces : int
        Exams with at least one trace file, trace files read, traces measured (cached
        exams included).
    n_errors : int
        Rows of errors.csv (files or exams that could not be processed).
    n_cached, n_computed : int
        Exams with results taken from the catalogue / computed by this run (they add up to
        ``n_exams``; an exam none of whose files could be measured is in neither).
    seconds : float
        Wall time of the run.
    timings : dict
        Seconds per phase: plan, hash, compute, merge.
    outputs_written : bool
        False when every output was already up to date.
    """

    out: Path
    n_exams: int = 0
    n_files: int = 0
    n_traces: int = 0
    n_errors: int = 0
    n_cached: int = 0
    n_computed: int = 0
    seconds: float = 0.0
    scheduler: str = ""
    settings_sha256: str = ""
    timings: dict = field(default_factory=dict)
    outputs_written: bool = True

    @property
    def exit_status(self) -> int:
        """0 when every file and exam was processed, 1 when errors.csv has rows."""
        return 1 if self.n_errors else 0

    def summary(self) -> str:
        return (
            f"{self.n_exams} exam(s) ({self.n_computed} computed, {self.n_cached} cached), "
            f"{self.n_files} file(s), {self.n_traces} trace(s), {self.n_errors} failure(s) "
            f"in {self.seconds:.1f} s"
        )


def auto_batch_size(n_exams: int, parallelism: int) -> int:
    """Exams per task: at least 4 tasks per worker for load balance, at most ``MAX_BATCH``."""
    if n_exams <= 0:
        return 1
    return max(1, min(MAX_BATCH, math.ceil(n_exams / (4 * max(1, parallelism)))))


def _problem_row(job: ExamJob) -> dict:
    error, message = job.problem
    return {
        "source_file": job.label,
        "error": error,
        "message": scrub(message, job),
        "exam_id": job.exam_id,
        "stage": "plan",
    }


def _clean_stale(out: Path, parts: Path) -> None:
    """Remove temporary files left by a killed run (never anything else)."""
    for folder in (out, *([p for p in parts.iterdir() if p.is_dir()] if parts.is_dir() else [])):
        for tmp in folder.glob(".*.tmp"):
            try:
                tmp.unlink()
            except OSError:  # pragma: no cover - another run may own it
                pass


class _DirLock:
    """An exclusive lock on an output folder's cache for the duration of a run (released by
    the system if the process dies), so two runs never write one DIR at the same time."""

    def __init__(self, path: Path):
        self.path = path
        self.fh = None

    def __enter__(self):
        import fcntl

        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.close()
            raise UsageError(
                f"another ncsproc extract is writing to {self.path.parent.parent.name}/ "
                "(its cache is locked); wait for it or use another --out"
            ) from None
        except OSError:  # a filesystem without locks: go on unlocked
            pass
        return self

    def __exit__(self, *exc):
        if self.fh is not None:
            self.fh.close()


def _indexed_sha256(index: HashIndex, path: Path) -> str | None:
    try:
        return index.sha256(str(path))
    except OSError:
        return None


def _verify(path: Path, sha256: str, index: HashIndex) -> dict | None:
    """The part's head when the file is there and its SHA-256 matches, else None (the
    SHA-256 of a part unchanged since its last check comes from the index: a rerun stats
    its parts instead of reading them)."""
    try:
        digest = index.sha256(str(path))
    except OSError:
        return None
    if digest != sha256:
        return None
    index.remember(str(path), digest)  # a part of this run's cache: trusted once checked
    try:
        return read_part_head(path)
    except (OSError, ValueError):
        return None


def extract(
    paths: Sequence,
    out,
    *,
    manifest=None,
    config=None,
    scheduler=None,
    workers: int | None = None,
    traces: bool = True,
    parquet: bool | None = None,
    batch_size: int | None = None,
    retries: int = 2,
    force: bool = False,
    progress: Callable[[Progress], None] | None = None,
    pseudonymizer=None,
    date_precision: str = "year",
    overrides=None,
) -> ExtractResult:
    """Run the cohort pipeline: files, folders or globs in, the contract's tables out.

    Parameters
    ----------
    paths : sequence of path-like
        Files, folders (searched recursively) and globs.
    out : path-like
        Output folder (created): ``responses.csv``, ``segments.csv``, ``nerves.csv``,
        ``exams.csv``, ``errors.csv``, ``criteria.csv``, ``sites.csv``, ``cohort.h5``, Parquet
        copies, and the cache ``.ncsproc/`` (catalogue and per-exam parts).
    manifest : path-like, optional
        Exam grouping CSV (``source_file, exam_id`` and optionally ``subject_id, age,
        height, sex``); default: one folder per exam, named by the exam id.
    config : path-like or Settings, optional
        Settings file (``pipelines/<name>.toml``); default: built-in defaults.
    scheduler : str or distributed.Client, optional
        ``"synchronous"``, ``"threads"`` (default), ``"processes"``, a ``distributed.Client``,
        a scheduler address (``tcp://host:port``) or scheduler file. Never started here.
    workers : int, optional
        Threads or processes of a local scheduler (default: available cores).
    traces : bool
        Store the cohort trace set in ``cohort.h5`` (default True).
    parquet : bool, optional
        Write Parquet copies (default: when pyarrow is installed).
    batch_size : int, optional
        Exams per task (default: :func:`auto_batch_size`). Never changes the results.
    retries : int
        Resubmissions of tasks whose worker died (default 2).
    force : bool
        Recompute every exam even when the catalogue has it.
    progress : callable, optional
        Called with a :class:`~ncsproc.pipeline.progress.Progress` after every task.
    pseudonymizer : ncsproc.privacy.Pseudonymizer, optional
        The centre's key (:func:`ncsproc.privacy.pseudonymizer_from`): subject ids become
        keyed pseudonyms of the files' patient identifiers. Without one, nothing is derived
        from patient fields: the manifest's subject id or the exam folder's id is used.
    date_precision : {"none", "year", "month", "day", "shift"}
        How much of the exam date the outputs keep (default: the year); ``"shift"`` (needs a
        key): each subject's dates moved by one secret offset (:func:`ncsproc.privacy.
        date_offset_days`), to the day. ``trajectories.csv`` and ``subjects.csv`` count exact
        days since each subject's first exam under every precision.
    overrides : path-like or ncsproc.review.Overrides, optional
        Marker overrides (``overrides.csv``, ``formats/review.md``), validated before anything
        runs and applied after the measurement of each exam they concern; those exams'
        cache keys include their override lines, so editing the file recomputes exactly the
        exams whose lines changed. Adds ``reviewed`` / ``reviewed_traces`` columns, fills
        ``reviews.csv`` and records the file's SHA-256 in ``provenance.json``.

    Returns
    -------
    ExtractResult

    Raises
    ------
    UsageError
        No input, a path that does not exist, a malformed manifest.
    ncsproc.review.OverridesError
        An invalid overrides file (every problem listed).
    ConfigError
        An invalid settings file.
    ValueError
        An unknown scheduler, or one that cannot be reached.
    """
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    _check_date_precision(date_precision, pseudonymizer)
    settings = with_privacy(load_settings(config), pseudonymizer, date_precision)
    review = _load_overrides(overrides)
    if parquet is None:
        parquet = parquet_available()
    elif parquet and not parquet_available():
        raise UsageError("Parquet copies need pyarrow: pip install 'ncsproc[parquet]'")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / CACHE_DIR
    parts_dir = cache / "parts"
    parts_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    plan = plan_inputs(paths, manifest=manifest, exclude=(out,))
    if not plan.exams and not plan.errors:
        found = f"; found {describe_not_read(plan.ignored)}" if plan.ignored else ""
        raise UsageError(
            f"no trace file found in {', '.join(str(p) for p in paths)}{found}; "
            "`ncsproc formats` lists the formats ncsproc reads"
        )
    timings["plan"] = time.perf_counter() - t0
    valid = [e for e in plan.exams if e.problem is None]
    t0 = time.perf_counter()
    index = HashIndex(cache / "hash-index.json")
    hash_exams(valid, settings.sha256, index=index)
    review_errors = _assign_overrides(review, plan.exams, valid)
    timings["hash"] = time.perf_counter() - t0
    logger.info(
        "%d candidate file(s) in %d exam(s) (%s); settings %s (%s)",
        plan.n_candidates,
        len(plan.exams),
        plan.mode,
        settings.name,
        settings.sha256[:12],
    )
    if plan.skipped:
        names = [f.source_file for f in plan.skipped]
        logger.info(
            "skipped %d file(s) beside the exam folders that no trace reader "
            "recognises (not an exam): %s",
            len(names),
            ", ".join(names[:5]) + (", ..." if len(names) > 5 else ""),
        )
    if plan.ignored:
        logger.info("%s: no reader for their extension", describe_not_read(plan.ignored))
    n_not_traces = sum(1 for e in plan.errors if e.get("error") == "NotTraces")
    if n_not_traces:
        logger.info(
            "%d result file(s) that hold no traces (QTRAC .MEM, ...): listed in errors.csv",
            n_not_traces,
        )

    with _DirLock(cache / "lock"):
        runner = resolve_scheduler(scheduler, workers)
        result = ExtractResult(out=out, scheduler=runner.label, settings_sha256=settings.sha256)
        catalog = Catalog(cache / "catalog.sqlite")
        try:
            _clean_stale(out, parts_dir)
            run_id = catalog.start_run(__version__, settings, runner.label)
            done, todo = _partition(
                valid,
                catalog.lookup(e.key for e in valid),
                parts_dir,
                force=force,
                traces=traces,
            )
            result.n_cached = sum(1 for r in done.values() if r["status"] == "done")
            extra_errors = list(plan.errors) + [_problem_row(e) for e in plan.exams if e.problem]
            extra_errors += review_errors
            run = _Run(
                out=out,
                parts_dir=parts_dir,
                settings=settings,
                catalog=catalog,
                run_id=run_id,
                index=index,
                traces=bool(traces),
                parquet=bool(parquet),
                manifest=plan.mode == "manifest",
                review=review,
                valid=valid,
                content={e.key: e.content_sha256 for e in valid},
                done=done,
                extra_errors=extra_errors,
            )

            t0 = time.perf_counter()
            _compute(run, runner, todo, batch_size, retries, progress)
            timings["compute"] = time.perf_counter() - t0
            result.n_computed = sum(
                1 for r in done.values() if not r["cached"] and r["status"] == "done"
            )

            t0 = time.perf_counter()
            exam_days = _merge(run, result)
            timings["merge"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            write_followup(
                out, exam_days, parquet=bool(parquet), tables_version=settings.tables_version
            )
            timings["followup"] = time.perf_counter() - t0
            result.seconds = time.perf_counter() - t_start
            timings["total"] = result.seconds
            result.timings = timings
            catalog.finish_run(
                run_id,
                "finished",
                n_exams=len(plan.exams),
                n_cached=result.n_cached,
                n_computed=result.n_computed,
                n_failed=sum(1 for r in done.values() if r.get("status") == "failed"),
                n_errors=result.n_errors,
                seconds=result.seconds,
            )
        finally:
            catalog.close()
            runner.close()
    return result


@dataclass
class _Run:
    """What the steps of one run share: plain data, and the catalogue handle."""

    out: Path
    parts_dir: Path
    settings: object
    catalog: Catalog
    run_id: int
    index: HashIndex
    traces: bool
    parquet: bool
    manifest: bool
    review: object
    valid: list[ExamJob]
    content: dict[str, str]  # exam key -> content SHA-256
    done: dict[str, dict]  # exam key -> {"part", "part_sha256", "status", "n_errors", "cached"}
    extra_errors: list[dict]  # errors.csv rows that no part holds


def _partition(
    valid: list[ExamJob], rows: dict, parts_dir: Path, *, force: bool, traces: bool
) -> tuple[dict[str, dict], list[ExamJob]]:
    """(done, todo): the exams whose catalogue row and part file can be used, and the rest."""
    done: dict[str, dict] = {}  # key -> {"part", "part_sha256", "status", ...}
    todo: list[ExamJob] = []
    for job in valid:
        row = rows.get(job.key)
        usable = (
            row is not None
            and not force
            and (not traces or row["has_traces"] or row["status"] != "done")
            and (parts_dir / row["part"]).is_file()
            and (parts_dir / row["part"]).stat().st_size == row["part_bytes"]
        )
        if usable:
            done[job.key] = {
                "part": row["part"],
                "part_sha256": row["part_sha256"],
                "status": row["status"],
                "n_errors": row["n_errors"],
                "cached": True,
            }
        else:
            todo.append(job)
    return done, todo


def _compute(run: _Run, runner, todo: list[ExamJob], batch_size, retries: int, progress) -> None:
    """Run the tasks of ``todo`` on ``runner``; commit each finished task to the catalogue at
    once and record its exams in ``run.done`` (failed tasks become rows of
    ``run.extra_errors``)."""
    catalog, run_id, settings, content = run.catalog, run.run_id, run.settings, run.content
    done, extra_errors, parts_dir, traces = run.done, run.extra_errors, run.parts_dir, run.traces
    t0 = time.perf_counter()
    size = batch_size or auto_batch_size(len(todo), runner.parallelism)
    batches = [todo[i : i + size] for i in range(0, len(todo), size)]
    files_total = sum(j.n_files for j in todo)
    state = {"files": 0, "exams": 0, "failures": len(extra_errors)}
    n_from_cache = len(done)  # fixed before the compute adds this run's exams to ``done``
    state["failures"] += sum(int(r["n_errors"]) for r in done.values())

    def report(finished=False):
        if progress is not None and batches:
            progress(
                Progress(
                    state["files"],
                    files_total,
                    state["exams"],
                    len(todo),
                    state["failures"],
                    n_from_cache,
                    time.perf_counter() - t0,
                    finished,
                )
            )

    def on_done(i, summaries):
        catalog.record(run_id, settings.sha256, content, summaries)
        for s in summaries:
            keep = {k: s.get(k) for k in ("part", "part_sha256", "status", "n_errors")}
            if not s.get("part"):  # nothing on disk: its errors must travel here
                keep["errors"] = s["errors"]
            done[s["key"]] = dict(keep, cached=False)
            state["failures"] += int(s["n_errors"])
        state["files"] += sum(j.n_files for j in batches[i])
        state["exams"] += len(batches[i])
        report()

    def on_failed(i, exc):
        for job in batches[i]:
            extra_errors.append(
                {
                    "source_file": job.label,
                    "error": type(exc).__name__,
                    "message": "the task processing this exam failed (a worker died or the "
                    f"cluster was lost) after {retries} retries: {scrub(str(exc), job)}; it is "
                    "not cached, so the next run tries again",
                    "exam_id": job.exam_id,
                    "stage": "worker",
                }
            )
            state["failures"] += 1
        state["files"] += sum(j.n_files for j in batches[i])
        state["exams"] += len(batches[i])
        report()

    if batches:
        logger.info(
            "computing %d exam(s) in %d task(s) of <= %d on %s (%d cached)",
            len(todo),
            len(batches),
            size,
            runner.label,
            len(done),
        )
    report()
    try:
        runner.run(
            process_batch,
            batches,
            (settings, str(parts_dir.resolve()), bool(traces), run.manifest),
            on_done,
            on_failed,
            retries=retries,
        )
    finally:
        runner.close()
    report(finished=True)


def _merge(run: _Run, result: ExtractResult) -> dict[str, int | None]:
    """Write the tables and ``cohort.h5`` from the parts of every exam of the plan (in exam
    order; nothing when they are up to date) and ``provenance.json``; count the exams, files,
    traces and errors into ``result``. Returns each exam's shifted day number (follow-up)."""
    out, parts_dir, settings, catalog, run_id = (
        run.out,
        run.parts_dir,
        run.settings,
        run.catalog,
        run.run_id,
    )
    valid, done, extra_errors, index, review = (
        run.valid,
        run.done,
        run.extra_errors,
        run.index,
        run.review,
    )
    traces, parquet = run.traces, run.parquet
    entries, schema = [], CohortSchema()
    order = sorted(valid, key=lambda e: e.exam_id)
    checks = [(job, done.get(job.key)) for job in order]

    def verify(jr):
        row = jr[1]
        if row is None or not row.get("part"):
            return None
        return _verify(parts_dir / row["part"], row["part_sha256"], index)

    def verified_heads():  # SHA-256 checks in a few threads, a bounded window at a time
        with ThreadPoolExecutor(max_workers=4) as pool:
            for i in range(0, len(checks), 256):
                yield from pool.map(verify, checks[i : i + 256])

    corrupt, no_traces = [], []
    exam_days: dict[str, int | None] = {}
    for (job, row), head in zip(checks, verified_heads(), strict=True):
        if row is None or not row.get("part"):
            if row is not None:  # computed, but the part could not be written
                extra_errors.extend(
                    {k: v for k, v in e.items() if k != "transient"} for e in row["errors"]
                )
            continue
        if head is None:
            corrupt.append(job.key)
            extra_errors.append(
                {
                    "source_file": job.label,
                    "error": "CacheCorrupt",
                    "message": "the cached result of this exam is missing or fails its SHA-256 "
                    "check; it was dropped from the catalogue and the next run recomputes it",
                    "exam_id": job.exam_id,
                    "stage": "merge",
                }
            )
            continue
        path = str(parts_dir / row["part"])
        exam_days[job.exam_id] = head["summary"].get("exam_day")
        schema.add(head)
        entries.append(
            {"exam_id": job.exam_id, "path": path, "key": job.key, "sha256": row["part_sha256"]}
        )
        s = head["summary"]
        if s["status"] == "done":
            result.n_exams += 1
        elif s["status"] == "empty":
            no_traces.append(job.label)
        result.n_files += int(s["n_read"])
        result.n_traces += int(s["n_traces"])
        result.n_errors += len(s.get("errors", []))
    catalog.forget(corrupt)
    result.n_errors += len(extra_errors)
    if no_traces:  # a folder of notes or tables only: no exam (and not an error)
        logger.info(
            "%d folder(s) held no trace file and are not exams: %s",
            len(no_traces),
            ", ".join(no_traces[:5]) + (", ..." if len(no_traces) > 5 else ""),
        )

    plan_doc = {
        # /2: counts written as integers, original_* columns of reviewed exams (outputs of
        # an older layout are rewritten even when every exam comes from the cache)
        "format": "ncsproc-extract-outputs/2",
        "version": __version__,
        "exams": [[e["key"], e["sha256"]] for e in entries],
        "errors": sorted(json.dumps(r, sort_keys=True) for r in extra_errors),
        "traces": bool(traces),
        "parquet": bool(parquet),
        "tables": list(TABLE_FILES),
        "overrides": None if review is None else [review.source, review.sha256],
    }
    plan_sha = hashlib.sha256(json.dumps(plan_doc, sort_keys=True).encode()).hexdigest()
    previous = catalog.outputs()
    expected = {f"{n}.csv" for n in TABLE_FILES} | {"cohort.h5"}
    if parquet:
        expected |= {f"{n}.parquet" for n in TABLE_FILES}
    up_to_date = (
        set(previous) == expected
        and all(p["plan_sha256"] == plan_sha for p in previous.values())
        and all(
            (out / n).is_file() and (out / n).stat().st_size == p["bytes"]
            for n, p in previous.items()
        )
    )
    if up_to_date:
        up_to_date = all(
            _indexed_sha256(index, out / n) == p["sha256"] for n, p in previous.items()
        )
    if up_to_date:
        result.outputs_written = False
        logger.info("outputs are up to date; nothing written")
    else:
        written = merge_outputs(
            out,
            entries,
            extra_errors,
            settings=settings,
            traces=bool(traces),
            parquet=bool(parquet),
            schema=schema,
            review=None if review is None else {"sha256": review.sha256},
        )
        catalog.set_outputs(run_id, plan_sha, written)
        for name, entry in written.items():
            index.remember(str(out / name), entry[0])
    _write_provenance(out, valid, settings, review)
    index.save()
    return exam_days


def _check_date_precision(precision: str, pseudonymizer) -> None:
    from ..privacy import EXTRACT_DATE_PRECISIONS

    if precision not in EXTRACT_DATE_PRECISIONS:
        raise UsageError(
            f"date precision {precision!r}: expected one of {list(EXTRACT_DATE_PRECISIONS)}"
        )
    if precision == "shift" and pseudonymizer is None:
        raise UsageError(
            "--date-precision shift moves each subject's dates by a secret offset derived from "
            "the centre key: give the key (NCSPROC_PSEUDONYM_KEY or --key-file), or choose "
            "another precision"
        )


def _load_overrides(overrides):
    """The validated overrides (None without); an invalid file raises OverridesError."""
    if overrides is None:
        return None
    from ..review import Overrides, read_overrides

    return overrides if isinstance(overrides, Overrides) else read_overrides(overrides)


def _assign_overrides(review, exams: list[ExamJob], valid: list[ExamJob]) -> list[dict]:
    """Give each exam its override lines and fold them into its cache key; return the
    errors.csv rows of lines that belong to no exam this run processes."""
    if review is None:
        return []
    from ..review import Overrides

    by_id = {e.exam_id: e for e in exams}
    ids = sorted(by_id, key=len, reverse=True)  # the longest matching exam id wins
    lines: dict[str, list] = {}
    errors = []
    for r in review.rows:
        exam = next((e for e in ids if r.trace_id.startswith(f"{e}/")), None)
        if exam is None:
            known = ", ".join(sorted(by_id)[:5]) + (", ..." if len(by_id) > 5 else "")
            errors.append(
                {
                    "source_file": review.source,
                    "error": "OverrideError",
                    "message": f"{r.where}: trace {r.trace_id!r} belongs to no exam of this run "
                    f"(exams: {known}); copy the id from the trace column of sites.csv",
                    "exam_id": "",
                    "stage": "review",
                }
            )
            continue
        lines.setdefault(exam, []).append(r)
    usable = {id(e) for e in valid}
    for exam, rows in lines.items():
        job = by_id[exam]
        if id(job) not in usable:
            errors.extend(
                {
                    "source_file": review.source,
                    "error": "OverrideError",
                    "message": f"{r.where}: trace {r.trace_id}: the {r.marker} override was not "
                    "applied: the exam was not processed (see its error)",
                    "exam_id": exam,
                    "stage": "review",
                }
                for r in rows
            )
            continue
        job.overrides = tuple(rows)
        digest = Overrides(review.source, "", tuple(rows)).digest()
        # "overrides/2": parts of reviewed exams carry the original_* columns (a part cached
        # before they existed is recomputed)
        job.key = hashlib.sha256(f"{job.key}:overrides/2:{digest}".encode()).hexdigest()
    return errors


def _write_provenance(out: Path, exams, settings, review=None) -> None:
    """``provenance.json``: what the registry export records about where the numbers came
    from (SHA-256 of every input file, settings hash, key fingerprint, date precision, and
    with ``--overrides`` the overrides file's name, SHA-256 and number of lines)."""
    import pandas as pd

    from ..registry import write_provenance

    # the files that gave traces (a folder walk also meets tables and notes; failed files are
    # in errors.csv, not here)
    read = pd.read_csv(out / "responses.csv", usecols=["exam_id", "source_file"], dtype=str)
    used = set(zip(read["exam_id"], read["source_file"], strict=True))
    sources = sorted(
        (job.exam_id, source_file, digest)
        for job in exams
        for source_file, digest in job.file_sha256.items()
        if (job.exam_id, source_file) in used
    )
    staging = out / CACHE_DIR / "provenance"
    staging.mkdir(parents=True, exist_ok=True)
    fresh = write_provenance(
        staging,
        sources=sources,
        settings_sha256=settings.sha256,
        pseudonymizer=settings.pseudonymizer,
        date_precision=settings.date_precision,
        tables_version=settings.tables_version,
    )
    if review is not None:  # an extension of the registry's format (it ignores unknown keys)
        doc = json.loads(fresh.read_text(encoding="utf-8"))
        doc["overrides"] = {
            "file": review.source,
            "sha256": review.sha256,
            "rows": len(review.rows),
        }
        fresh.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    target = out / fresh.name
    if target.is_file() and target.read_bytes() == fresh.read_bytes():
        fresh.unlink()  # a rerun that changes nothing touches nothing
    else:
        os.replace(fresh, target)
