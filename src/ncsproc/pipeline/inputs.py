"""Inputs of a cohort run: files, folders and globs, grouped into exams, with content hashes.

The client does only cheap work here (listing, grouping, hashing); deciding whether a file
found inside a folder is a trace file (content sniffing) happens in the tasks, in parallel.
Paths are absolute only inside :class:`InputFile` (workers need them); every name that can
reach an output is relative to the input root (``source_file``) or to the exam folder.
"""

from __future__ import annotations

import csv
import glob as _glob
import hashlib
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from .._version import __version__

__all__ = [
    "InputFile",
    "ExamJob",
    "Plan",
    "UsageError",
    "plan_inputs",
    "hash_exams",
    "trace_suffixes",
    "MANIFEST_COLUMNS",
]

MANIFEST_REQUIRED = ("source_file", "exam_id")
MANIFEST_OPTIONAL = ("subject_id", "age", "height", "sex", "exam_date")
MANIFEST_COLUMNS = MANIFEST_REQUIRED + MANIFEST_OPTIONAL
_SEX = {
    "f": "F",
    "female": "F",
    "w": "F",
    "woman": "F",
    "m": "M",
    "male": "M",
    "man": "M",
    "x": "X",
    "other": "X",
    "diverse": "X",
    "": "",
    "u": "",
    "unknown": "",
}


class UsageError(ValueError):
    """The command was given something it cannot run on (exit status 2): a missing path, a
    malformed manifest, no input file at all."""


@dataclass(frozen=True)
class InputFile:
    """One candidate input file.

    Attributes
    ----------
    path : str
        Absolute path, for the workers only (never written to an output).
    source_file : str
        Path relative to the input root (POSIX separators): what the tables show.
    explicit : bool
        Named on the command line (or by a glob, or the manifest): always read, so a damaged
        file is reported. Files found by walking a folder are read only when a trace reader
        recognises them (a folder also holds sidecars, notes and tables).
    """

    path: str
    source_file: str
    explicit: bool


@dataclass
class ExamJob:
    """One exam to process: its id, its files and what the manifest says about it."""

    exam_id: str
    label: str
    files: tuple[InputFile, ...]
    meta: dict = field(default_factory=dict)
    folder_names: tuple[str, ...] = ()
    problem: tuple[str, str] | None = None
    content_sha256: str = ""
    key: str = ""
    file_sha256: dict = field(default_factory=dict)  # source_file -> SHA-256 of its bytes
    overrides: tuple = ()  # ncsproc.review.Override lines of this exam (they enter its key)

    @property
    def n_files(self) -> int:
        return len(self.files)


@dataclass
class Plan:
    """Exams to process and the input problems found while planning (rows of errors.csv)."""

    exams: list[ExamJob]
    errors: list[dict]
    mode: str  # "folders" or "manifest"
    n_candidates: int
    skipped: list[InputFile] = field(default_factory=list)
    """Files found beside exam folders that no trace reader recognises (not an exam)."""
    ignored: list[InputFile] = field(default_factory=list)
    """Files found in the folders without a reader's extension (notes, licences, ...)."""


def trace_suffixes() -> tuple[str, ...]:
    """File extensions of every registered trace-set reader (sidecars are not inputs)."""
    from ..formats import READERS

    return tuple(sorted({e for r in READERS.values() if r.kind == "traces" for e in r.extensions}))


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _glob_root(pattern: str) -> Path:
    parts = Path(pattern).parts
    lead = []
    for p in parts:
        if _is_glob(p):
            break
        lead.append(p)
    return Path(*lead) if lead else Path(".")


def _abs(path) -> Path:
    """Absolute and normalised, without resolving symbolic links: a linked exam folder keeps
    the name it has where the user put it (its exam id)."""
    return Path(os.path.abspath(path))


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def collect_files(
    paths,
    *,
    exclude: tuple[Path, ...] = (),
    suffixes: tuple[str, ...] | None = None,
    others: list[InputFile] | None = None,
) -> list[InputFile]:
    """Expand files, folders (recursively) and globs into candidate input files.

    Inside folders only files with a trace reader's extension are taken, never hidden files or
    folders (``.ncsproc``), nor anything under ``exclude`` (the output folder). A file named
    explicitly (or matched by a glob) is always taken. The other files found in the folders
    (not hidden, not a sidecar) are appended to ``others`` when it is given, so that a caller
    can say why each was not read.

    Raises
    ------
    UsageError
        A path does not exist and is not a glob that matches something.
    """
    suffixes = tuple(suffixes if suffixes is not None else trace_suffixes())
    excl = tuple(_abs(e) for e in exclude)
    found: dict[str, InputFile] = {}

    def excluded(f: Path) -> bool:
        return any(f == e or e in f.parents for e in excl)

    def walk(folder: Path):
        root = _abs(folder)
        visited: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            d = Path(dirpath)
            real = os.path.realpath(d)
            if real in visited:  # a symbolic link back into the tree: do not loop
                dirnames[:] = []
                continue
            visited.add(real)
            dirnames[:] = sorted(
                n for n in dirnames if not n.startswith(".") and not excluded(d / n)
            )
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                f = d / name
                if excluded(f):
                    continue
                if Path(name).suffix.lower() not in suffixes:
                    if others is not None and not _is_sidecar(f):
                        others.append(InputFile(str(f), _rel(f, root), False))
                    continue
                key = str(f)
                if key not in found:
                    found[key] = InputFile(key, _rel(f, root), False)

    def take(f: Path, root: Path):
        f = _abs(f)
        key = str(f)
        if key not in found and not excluded(f):
            found[key] = InputFile(key, _rel(f, _abs(root)), True)

    for raw in paths:
        raw = os.fspath(raw)
        p = Path(raw)
        if p.is_dir():
            walk(p)
        elif p.is_file():
            take(p, p.parent)
        elif _is_glob(raw):
            matches = sorted(_glob.glob(raw, recursive=True))
            if not matches:
                raise UsageError(f"{raw}: the pattern matches no file or folder")
            root = _glob_root(raw)
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    walk(mp)
                elif mp.is_file():
                    take(mp, root)
        else:
            raise UsageError(f"{raw}: no such file or folder")
    return sorted(found.values(), key=lambda f: f.path)


def _is_sidecar(path: Path) -> bool:
    """A ``<file>.json`` or ``<stem>.json`` beside the file it completes (never an input)."""
    if path.suffix.lower() != ".json":
        return False
    inner = path.with_suffix("")
    return inner.is_file() or any(
        p.stem == path.stem and p != path for p in path.parent.glob(f"{_glob.escape(path.stem)}.*")
    )


def results_suffixes() -> tuple[str, ...]:
    """File extensions of the registered results readers (QTRAC ``.MEM``, ...)."""
    from ..formats import READERS

    return tuple(sorted({e for r in READERS.values() if r.kind != "traces" for e in r.extensions}))


def why_not_read(path: str | os.PathLike) -> tuple[str, str]:
    """(error, reason) for a file found in a folder that is not read as a trace file.

    ``error`` is ``NotTraces`` (a results file of a registered reader: the reason names the
    function that reads it), ``NotRecognised`` (a reader's extension, but no reader recognises
    the content: the reason is that reader's) or ``NoReader`` (no reader for the extension).
    """
    from ..formats import READERS, detect

    path = Path(path)
    suffix = path.suffix.lower()
    known = {e for r in READERS.values() for e in r.extensions}
    if suffix not in known:
        what = f"'{suffix}' files" if suffix else "files without an extension"
        return "NoReader", f"no ncsproc reader for {what} (`ncsproc formats` lists them)"
    accepted, reasons = detect(path)
    for reader in accepted:
        if reader.kind != "traces":
            return (
                "NotTraces",
                f"holds {reader.description}, not recorded traces: read it in Python with "
                f"{reader.function_name}(path)",
            )
    if accepted:
        return "NotRecognised", "recognised as traces"  # pragma: no cover - caller reads it
    mine = [r for r in reasons if r.split(":", 1)[0] in _names_for(suffix)]
    return "NotRecognised", "not a trace file: " + "; ".join(mine or reasons[:1])


def _names_for(suffix: str) -> set[str]:
    from ..formats import READERS

    return {r.name for r in READERS.values() if suffix in r.extensions}


def describe_not_read(files: list[InputFile], limit: int = 5) -> str:
    """``3 file(s) not read: a.mat, README.md, LICENSE`` (the first ``limit`` names)."""
    names = [f.source_file for f in files]
    shown = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
    return f"{len(names)} other file(s) not read ({shown})"


def _folder_label(folder: Path, files: list[InputFile]) -> str:
    """Exam folder relative to its input root (``EX0001/``), from a file's source_file."""
    f = files[0]
    parent = Path(f.source_file).parent.as_posix()
    return (parent if parent != "." else folder.name) + "/"


def _is_trace_file(path: str) -> bool:
    from ..formats import detect

    try:
        accepted, _ = detect(path)
    except Exception:  # detection never raises by contract; if it does, let the task report it
        return True
    return any(r.kind == "traces" for r in accepted)


def _beside_exam_folders(files: list[InputFile]) -> tuple[list[InputFile], list[InputFile]]:
    """(kept, skipped): the files found in a folder that also holds exam folders (the folder
    given, ``site_a/`` of ``site_a/EX1/``) form an exam only when a trace reader recognises one
    of them by its content; otherwise they are skipped (truth tables, notes, a registry...).

    Only those few files are sniffed here; every other file found in a folder is sniffed by
    its task, in parallel. A file named on the command line is always kept."""
    by_folder: dict[Path, list[InputFile]] = {}
    for f in files:
        by_folder.setdefault(Path(f.path).parent, []).append(f)
    parents = {p for folder in by_folder for p in folder.parents if p in by_folder}
    skipped: list[InputFile] = []
    for folder in sorted(parents):
        walked = [f for f in by_folder[folder] if not f.explicit]
        if walked and not any(_is_trace_file(f.path) for f in walked):
            skipped.extend(walked)
    if not skipped:
        return files, []
    drop = {f.path for f in skipped}
    return [f for f in files if f.path not in drop], skipped


def _group_by_folder(files: list[InputFile]) -> tuple[list[ExamJob], list[dict]]:
    by_folder: dict[Path, list[InputFile]] = {}
    for f in files:
        by_folder.setdefault(Path(f.path).parent, []).append(f)
    by_name: dict[str, list[Path]] = {}
    for folder in by_folder:
        by_name.setdefault(folder.name, []).append(folder)
    exams = []
    for folder in sorted(by_folder):
        group = by_folder[folder]
        job = ExamJob(
            exam_id=folder.name,
            label=_folder_label(folder, group),
            files=tuple(group),
            folder_names=(folder.name,),
        )
        clash = by_name[folder.name]
        if len(clash) > 1:
            others = sorted(_folder_label(c, by_folder[c]) for c in clash)
            job.problem = (
                "DuplicateExamId",
                f"exam id {folder.name!r} is the name of {len(clash)} folders "
                f"({', '.join(others)}); one folder per exam, named by the exam id: rename "
                "one, or group the files with a manifest",
            )
        exams.append(job)
    return exams, []


def _float_cell(text: str, name: str, where: str) -> float:
    if text.strip() == "":
        return math.nan
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"{where}: {name} {text!r} is not a number") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{where}: {name} {text!r} must be a finite number >= 0")
    return v


def _date_cell(text: str, where: str) -> str:
    """A manifest ``exam_date`` (partial ISO date, for formats whose header has none)."""
    from ..privacy import parse_partial_date

    try:
        parse_partial_date(text)
    except ValueError:
        # the value itself is not quoted: it is an identifying fact
        raise ValueError(
            f"{where}: exam_date is not an ISO date (YYYY-MM-DD, YYYY-MM or YYYY)"
        ) from None
    return text.strip()


def read_manifest(path: Path) -> list[dict]:
    """Rows of a manifest CSV (header required), each with its 1-based ``line``.

    Raises
    ------
    UsageError
        Unreadable file, missing required columns, unknown columns (typos or identifying
        fields), or no rows.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"manifest {path.name}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"manifest {path.name}: cannot be read as UTF-8 CSV ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in MANIFEST_REQUIRED if c not in header]
    if missing:
        raise UsageError(
            f"manifest {path.name}: required column(s) {missing} missing; the header must name "
            f"{list(MANIFEST_REQUIRED)} and may name {list(MANIFEST_OPTIONAL)}"
        )
    unknown = [h for h in header if h not in MANIFEST_COLUMNS]
    if unknown:
        raise UsageError(
            f"manifest {path.name}: unknown column(s) {unknown}; accepted: "
            f"{list(MANIFEST_COLUMNS)} (identifying fields such as names or birth dates are "
            "never accepted: give a pseudonymous subject_id)"
        )
    if len(set(header)) != len(header):
        raise UsageError(f"manifest {path.name}: a column is named twice in {header}")
    rows = []
    for i, row in enumerate(reader, start=2):
        clean = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(clean.values()):
            continue
        clean["line"] = i
        rows.append(clean)
    if not rows:
        raise UsageError(f"manifest {path.name}: no rows")
    return rows


def _group_by_manifest(files: list[InputFile], manifest: Path) -> tuple[list[ExamJob], list[dict]]:
    from ..formats import detect

    rows = read_manifest(manifest)
    mdir = _abs(manifest).parent
    by_path = {f.path: f for f in files}
    by_rel: dict[str, list[InputFile]] = {}
    for f in files:
        by_rel.setdefault(f.source_file, []).append(f)
    errors: list[dict] = []
    assigned: dict[str, tuple[str, int]] = {}
    exam_rows: dict[str, list[tuple[dict, InputFile]]] = {}
    for row in rows:
        entry = row["source_file"]
        where = f"{manifest.name} line {row['line']}"
        if not entry or not row["exam_id"]:
            raise UsageError(f"{where}: source_file and exam_id must not be empty")
        candidates = []
        p = Path(entry)
        cand = _abs(p if p.is_absolute() else mdir / p)
        if str(cand) in by_path:
            candidates.append(by_path[str(cand)])
        for f in by_rel.get(Path(entry).as_posix(), []):
            if f not in candidates:
                candidates.append(f)
        shown = p.name if p.is_absolute() else p.as_posix()
        if not candidates:
            errors.append(
                {
                    "source_file": shown,
                    "error": "NotFound",
                    "message": f"{where}: listed in the manifest (exam {row['exam_id']!r}) but not "
                    "among the input files",
                    "exam_id": row["exam_id"],
                    "stage": "plan",
                }
            )
            continue
        if len(candidates) > 1:
            raise UsageError(
                f"{where}: {entry!r} matches {len(candidates)} input files "
                f"({', '.join(c.source_file for c in candidates)}); write the path relative to "
                "the manifest's folder"
            )
        f = candidates[0]
        if f.path in assigned:
            other_exam, other_line = assigned[f.path]
            if other_exam != row["exam_id"]:
                raise UsageError(
                    f"{where}: {f.source_file} is assigned to exam {row['exam_id']!r}, but line "
                    f"{other_line} assigns it to {other_exam!r}"
                )
            continue
        assigned[f.path] = (row["exam_id"], row["line"])
        f = replace(f, explicit=True)
        exam_rows.setdefault(row["exam_id"], []).append((row, f))
    for f in files:
        if f.path in assigned:
            continue
        if not f.explicit:
            accepted, _ = detect(f.path)
            if not any(r.kind == "traces" for r in accepted):
                continue  # not a trace file: a folder's notes, tables or the manifest itself
        errors.append(
            {
                "source_file": f.source_file,
                "error": "NotInManifest",
                "message": f"a trace file among the inputs, but {manifest.name} does not assign it "
                "to an exam; it was not processed",
                "exam_id": "",
                "stage": "plan",
            }
        )
    exams = []
    for exam_id in sorted(exam_rows):
        pairs = exam_rows[exam_id]
        group = sorted((f for _, f in pairs), key=lambda f: f.source_file)
        meta: dict = {}
        problem = None
        for row, _f in pairs:
            where = f"{manifest.name} line {row['line']}"
            try:
                vals = {
                    "subject_id": row.get("subject_id", ""),
                    "age": _float_cell(row.get("age", ""), "age", where),
                    "height": _float_cell(row.get("height", ""), "height", where),
                }
                sex = row.get("sex", "")
                if sex.lower() not in _SEX:
                    raise ValueError(f"{where}: sex {sex!r} is not one of F, M, X or empty")
                vals["sex"] = _SEX[sex.lower()]
                vals["exam_date"] = _date_cell(row.get("exam_date", ""), where)
            except ValueError as exc:
                problem = ("ManifestError", str(exc))
                break
            for k, v in vals.items():
                empty = v == "" if isinstance(v, str) else math.isnan(v)
                if empty:
                    continue
                if k in meta and meta[k] != v:
                    # dates are identifying: never quoted
                    shown = (
                        f"{k} {v!r} here but {meta[k]!r}"
                        if k != "exam_date"
                        else ("another exam_date here than")
                    )
                    problem = (
                        "ManifestError",
                        f"{where}: exam {exam_id!r} has {shown} on an earlier line; "
                        "one value per exam",
                    )
                    break
                meta[k] = v
            if problem:
                break
        meta = {
            "subject_id": meta.get("subject_id", ""),
            "age": meta.get("age", math.nan),
            "height": meta.get("height", math.nan),
            "sex": meta.get("sex", ""),
            "exam_date": meta.get("exam_date", ""),
        }
        parents = sorted({Path(f.source_file).parent.as_posix() for f in group})
        label = parents[0] + "/" if len(parents) == 1 and parents[0] != "." else f"{exam_id}/"
        exams.append(
            ExamJob(
                exam_id=exam_id,
                label=label,
                files=tuple(group),
                meta=meta,
                folder_names=tuple(sorted({Path(f.path).parent.name for f in group})),
                problem=problem,
            )
        )
    return exams, errors


def plan_inputs(paths, *, manifest=None, exclude: tuple = ()) -> Plan:
    """Collect the input files and group them into exams.

    Parameters
    ----------
    paths : sequence of path-like
        Files, folders (searched recursively) and globs.
    manifest : path-like, optional
        CSV with ``source_file, exam_id`` and optionally ``subject_id, age, height, sex``;
        ``source_file`` is relative to the manifest's folder or to an input root. Without one,
        every folder holding input files is one exam named by the folder, except a folder that
        also holds exam folders and none of whose own files a trace reader recognises (its
        files are in ``Plan.skipped``).
    exclude : tuple of path-like
        Never inputs (the output folder, the manifest).

    Returns
    -------
    Plan

    Raises
    ------
    UsageError
    """
    if not paths:
        raise UsageError("no input paths given")
    excl = tuple(exclude) + ((Path(manifest),) if manifest is not None else ())
    others: list[InputFile] = []
    files = collect_files(paths, exclude=excl, others=others)
    results_ext = results_suffixes()
    not_traces, ignored = [], []
    for f in others:
        (not_traces if Path(f.path).suffix.lower() in results_ext else ignored).append(f)
    skipped: list[InputFile] = []
    if manifest is None:
        files, skipped = _beside_exam_folders(files)
        exams, errors = _group_by_folder(files)
        mode = "folders"
    else:
        exams, errors = _group_by_manifest(files, Path(manifest))
        mode = "manifest"
    for f in not_traces:  # QTRAC results and the like: named in errors.csv, never dropped
        error, reason = why_not_read(f.path)
        if error == "NotRecognised" and reason == "recognised as traces":  # pragma: no cover
            continue
        errors.append(
            {
                "source_file": f.source_file,
                "error": error,
                "message": f"{Path(f.path).name}: {reason}",
                "exam_id": "",
                "stage": "plan",
            }
        )
    return Plan(
        exams=exams,
        errors=errors,
        mode=mode,
        n_candidates=len(files) + len(not_traces),
        skipped=skipped,
        ignored=ignored,
    )


def sidecars_of(path: str) -> list[Path]:
    """The sidecar files that :func:`ncsproc.read` would apply to ``path`` (if they exist)."""
    from ..formats._sidecar import sidecar_candidates

    p = Path(path)
    return [s for s in sidecar_candidates(p) if s != p and s.is_file()]


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _exam_content(job: ExamJob, sha256=_file_sha256) -> str:
    files = []
    for f in job.files:
        try:
            digest = sha256(f.path)
        except OSError as exc:
            digest = f"unreadable:{type(exc).__name__}"
        sides = []
        for s in sidecars_of(f.path):
            try:
                sides.append([s.name, sha256(str(s))])
            except OSError as exc:
                sides.append([s.name, f"unreadable:{type(exc).__name__}"])
        job.file_sha256[f.source_file] = digest
        files.append([f.source_file, bool(f.explicit), digest, sides])
    meta = {
        k: (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in sorted(job.meta.items())
    }
    doc = {"exam_id": job.exam_id, "meta": meta, "files": files, "folders": list(job.folder_names)}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def exam_key(content_sha256: str, settings_sha256: str, version: str = __version__) -> str:
    """Catalogue key of an exam: content hash, ncsproc version and settings hash together."""
    text = f"ncsproc-extract-exam/2:{content_sha256}:{version}:{settings_sha256}"
    return hashlib.sha256(text.encode()).hexdigest()


def hash_exams(exams: list[ExamJob], settings_sha256: str, *, threads: int = 4, index=None) -> None:
    """Fill ``content_sha256`` and ``key`` of every exam (SHA-256 of its files and sidecars,
    its id, its folder and its manifest facts), hashing files in a few threads.

    ``index`` (a :class:`~ncsproc.pipeline.hashindex.HashIndex`) gives the SHA-256 of files
    unchanged since they were last hashed without reading them."""
    sha256 = _file_sha256 if index is None else index.sha256
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        digests = list(pool.map(lambda job: _exam_content(job, sha256), exams))
    for job, digest in zip(exams, digests, strict=True):
        job.content_sha256 = digest
        job.key = exam_key(digest, settings_sha256)
