"""Reader registry and the generic :func:`read` entry point.

Every reader is registered explicitly in :data:`READERS`. :func:`read` picks a reader by
content (magic bytes, structure) before extension, and when nothing fits it says which
readers were tried and why each declined. It then completes the trace set from a sidecar
(``<file>.json``, see :mod:`ncsproc.formats._sidecar`), applies the privacy boundary (a reader's
``identity`` hook: the patient identifier becomes a keyed pseudonym or nothing, the exam date is
reduced; see :mod:`ncsproc.privacy`) and validates it, for every reader alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import FormatError, SchemaError, UnsupportedFormatError


@dataclass(frozen=True)
class Reader:
    """One registered format.

    Attributes
    ----------
    name : str
        Registry key, also accepted as ``read(path, format=name)``.
    description : str
        One line for ``ncsproc formats``.
    extensions : tuple of str
        Usual file extensions (lower case, with dot); a hint, not a requirement: when several
        readers recognise a file by content, the one whose extensions match is tried first.
    sniff : callable
        ``sniff(path) -> str | None``: None when the file looks like this format, otherwise
        the reason it does not. Must be cheap and never raise.
    load : callable
        ``load(path) -> xarray.Dataset``: a trace set (``kind="traces"``) or a results
        Dataset (``kind="results"``, e.g. QTRAC threshold tracking, read by its own function).
        A trace set may leave what the file does not say unknown (NaN, or "" for strings,
        ``exam_id`` included): :func:`read` completes it from a sidecar and validates it.
        Damaged or inconsistent files raise :class:`~ncsproc.errors.FormatError` naming the
        file, the place (byte offset, record, line) and what was expected.
    example : callable
        ``example(folder) -> Path``: writes (or copies) a small valid file of this format into
        ``folder`` and returns its path. The shared conformance and fuzz suites run on it, so
        every registered reader is tested the same way.
    kind : {"traces", "results"}
        ``read`` returns trace sets only; a results file gets a message naming its function.
    identifying : tuple of str
        Identifying strings (patient name, birth date, code) that the example file carries in
        its header; the conformance suite checks that none of them reaches the Dataset.
    sidecar_keys : tuple of str
        Keys of a sidecar that this reader reads itself (layout, sweep window, ...); any other
        key that is not a trace-set coordinate is refused as a likely typo.
    function : str, optional
        The public function that reads this format, named in messages (for a results reader,
        e.g. ``"ncsproc.read_qtrac"``). Default ``ncsproc.read_<module name>``.
    identity : callable, optional
        ``identity(path) -> dict | None``: the identifying facts of the file's header that
        :func:`read` needs and never stores: ``{"patient_id": str | None, "exam_date":
        datetime.date | None}``. Called after ``load`` succeeded; tolerant (an unparsable field
        is None). ``patient_id`` becomes a keyed pseudonym (``subject_id``) only through
        :func:`read`'s ``pseudonymizer``; ``exam_date`` becomes the optional ``exam_date``
        coordinate, reduced to ``read``'s ``date_precision``. None for formats without them.
    raw : callable, optional
        ``raw(path) -> ncsproc.schema.RawTraces``: the reader's raw layer, the same trace set
        as ``load`` as plain numpy arrays (no xarray object, no validation beyond the format's
        own). :func:`read_raw` (the cohort pipeline) uses it; ``load`` must equal
        ``raw(path).to_dataset()``. None: :func:`read_raw` converts ``load``'s Dataset.
    """

    name: str
    description: str
    extensions: tuple[str, ...]
    sniff: Callable[[Path], str | None]
    load: Callable[[Path], xr.Dataset]
    example: Callable[[Path], Path]
    kind: str = "traces"
    identifying: tuple[str, ...] = ()
    sidecar_keys: tuple[str, ...] = ()
    function: str | None = None
    identity: Callable[[Path], dict | None] | None = None
    raw: Callable[[Path], object] | None = None

    @property
    def function_name(self) -> str:
        """The public function that reads this format (see ``function``)."""
        if self.function:
            return self.function
        module = getattr(self.load, "__module__", "") or ""
        return (
            f"ncsproc.read_{module.rsplit('.', 1)[-1]}"
            if module
            else f"ncsproc.read (format={self.name!r})"
        )


# Built-in readers, in detection order: each module ``ncsproc.formats.<name>`` defines
# ``READER`` (a :class:`Reader`), or ``READERS`` (a tuple of them) when it reads several
# variants. Order matters only when two formats could claim one file; content sniffing (magic
# bytes, structure) keeps that rare, and a matching extension breaks the tie.
_BUILTIN_MODULES = ("native", "edf", "dicom", "cfs", "qtrac", "matlab", "text")

READERS: dict[str, Reader] = {}


def _register_builtins() -> None:
    import importlib

    for module_name in _BUILTIN_MODULES:
        module = importlib.import_module(f"{__name__}.{module_name}")
        readers = getattr(module, "READERS", None) or (module.READER,)
        for reader in readers:
            if reader.name in READERS:
                raise RuntimeError(f"reader name {reader.name!r} registered twice")
            READERS[reader.name] = reader


_register_builtins()


def list_formats() -> list[Reader]:
    """Return the registered readers, in registry order."""
    return list(READERS.values())


def detect(path: str | os.PathLike) -> tuple[list[Reader], list[str]]:
    """Return the readers that recognise ``path`` by content (best first) and why the others declined.

    When several recognise it, those whose ``extensions`` include the file's suffix come first;
    otherwise registry order is kept.
    """
    path = Path(path)
    accepted, reasons = [], []
    for reader in READERS.values():
        try:
            reason = reader.sniff(path)
        except Exception as exc:  # a sniffer must never raise; treat it as a refusal
            reason = f"sniff failed ({type(exc).__name__}: {exc})"
        if reason is None:
            accepted.append(reader)
        else:
            reasons.append(f"{reader.name}: {reason}")
    suffix = path.suffix.lower()
    accepted.sort(key=lambda r: suffix not in r.extensions)
    return accepted, reasons


def read(
    path: str | os.PathLike,
    format: str | None = None,
    *,
    pseudonymizer=None,
    date_precision: str = "year",
) -> xr.Dataset:
    """Read any supported file into a trace set.

    Parameters
    ----------
    path : path-like
        The file.
    format : str, optional
        A registry name (see ``ncsproc formats``) to skip detection.
    pseudonymizer : ncsproc.privacy.Pseudonymizer, optional
        The centre's keyed pseudonymizer (:func:`ncsproc.privacy.pseudonymizer_from`). With
        it, traces whose ``subject_id`` neither the file's metadata nor the sidecar gives get
        the pseudonym of the patient identifier in the file's header (when the header has one).
        Without it, nothing is derived from the identifier: ``subject_id`` stays as the sidecar
        gives it, or empty.
    date_precision : {"year", "none", "month", "day"}
        How much of the exam date (header, else the sidecar's ``exam_date``) the optional
        ``exam_date`` coordinate keeps: ``"2024"``, ``""``, ``"2024-03"`` or ``"2024-03-15"``.

    Returns
    -------
    xarray.Dataset
        A valid trace set. What the file does not say comes from its sidecar ``<file>.json``
        when there is one; ``exam_id``, when neither says, is the name of the folder holding
        the file (the contract's one-folder-per-exam rule). It has an ``exam_date``
        coordinate (partial ISO date, "" when unknown). No name, birth date, patient
        identifier or free-text header field is ever in it.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    UnsupportedFormatError
        No reader recognises the file (the message lists every reader and its reason), or
        the file holds results rather than traces (the message names the function to use).
    FormatError
        The recognised reader found the file damaged or inconsistent, the sidecar contradicts
        the file, facts the trace set needs are missing from both, or a ``subject_id`` given
        for the file is its raw patient identifier.
    """
    return _read(path, format, pseudonymizer, date_precision, raw=False)


def read_raw(
    path: str | os.PathLike,
    format: str | None = None,
    *,
    pseudonymizer=None,
    date_precision: str = "year",
):
    """:func:`read` without the xarray object: the raw layer that the cohort pipeline uses.

    Same detection, sidecar, privacy boundary and validation as :func:`read`, and the same
    content (``read_raw(p).to_dataset()`` equals ``read(p)``), as a
    :class:`~ncsproc.schema.RawTraces` of plain numpy arrays. Readers with a raw layer
    (``Reader.raw``: EDF, EDF+D) never build a Dataset; for the others the Dataset that
    ``load`` returns is taken apart.

    Parameters and errors: as :func:`read`.

    Returns
    -------
    ncsproc.schema.RawTraces
    """
    return _read(path, format, pseudonymizer, date_precision, raw=True)


def _read(path, format, pseudonymizer, date_precision: str, raw: bool):
    from ..privacy import DATE_PRECISIONS

    if date_precision not in DATE_PRECISIONS:
        raise ValueError(f"date_precision {date_precision!r}, expected one of {DATE_PRECISIONS}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if format is not None:
        if format not in READERS:
            raise UnsupportedFormatError(
                f"{path.name}: unknown format {format!r}; registered formats: {sorted(READERS)}"
            )
        candidates = [READERS[format]]
    else:
        candidates, reasons = detect(path)
        if not candidates:
            raise UnsupportedFormatError(
                f"{path.name}: no reader recognises this file. Tried: " + "; ".join(reasons)
            )
    if candidates[0].kind != "traces":
        reader = candidates[0]
        raise UnsupportedFormatError(
            f"{path.name} holds {reader.description}, not recorded traces, so ncsproc.read "
            "cannot make a trace set of it (nor can ncsproc plot, info or measure): read it in "
            f"Python with {reader.function_name}(path)"
        )
    failures: list[tuple[Reader, FormatError]] = []
    for reader in candidates:
        if reader.kind != "traces":
            continue
        try:
            # read() goes through the reader's public load (a Dataset), read_raw() through its
            # raw layer when it has one
            ds = reader.raw(path) if raw and reader.raw is not None else reader.load(path)
        except FormatError as exc:
            failures.append((reader, exc))
            continue
        ds = _complete(ds, path, reader, pseudonymizer, date_precision)
        if raw:
            from ..schema import RawTraces

            return ds if isinstance(ds, RawTraces) else RawTraces.from_dataset(ds)
        return ds
    if len(failures) == 1:
        raise failures[0][1]
    raise FormatError(
        f"{path.name}: recognised by {len(failures)} readers, and each failed: "
        + " | ".join(f"{r.name}: {e}" for r, e in failures)
    )


class _CoordUpdates:
    """Per-trace coordinate changes of a trace set (a Dataset or a
    :class:`~ncsproc.schema.RawTraces`), collected and then applied at once.

    Each ``assign_coords`` re-merges and re-aligns every coordinate of the Dataset, so the steps
    of :func:`_complete` (sidecar, default ids, privacy) record their new values here and
    :meth:`apply` makes the one updated Dataset.
    """

    def __init__(self, ds: xr.Dataset):
        self.ds = ds
        self.new: dict[str, tuple[np.ndarray, dict]] = {}  # name -> (values, attrs)

    def __contains__(self, name: str) -> bool:
        return name in self.new or name in self.ds.variables

    def values(self, name: str) -> np.ndarray:
        """The current values of ``name``: the pending ones, else the Dataset's."""
        if name in self.new:
            return self.new[name][0]
        return np.asarray(self.ds.variables[name].values)

    def set(self, name: str, values: np.ndarray, attrs: dict | None = None) -> None:
        """Give ``name`` new per-trace ``values`` (with ``attrs``, default the current ones)."""
        if attrs is None:
            attrs = self.new[name][1] if name in self.new else dict(self.ds.variables[name].attrs)
        self.new[name] = (values, attrs)

    def apply(self) -> xr.Dataset:
        """A new Dataset: the input with every pending change."""
        if not self.new:
            return self.ds.copy()
        return self.ds.assign_coords(
            {name: ("trace", values, attrs) for name, (values, attrs) in self.new.items()}
        )


def _complete(
    ds: xr.Dataset, path: Path, reader: Reader, pseudonymizer=None, date_precision: str = "year"
) -> xr.Dataset:
    """Sidecar, default ids, privacy, validation: the same for every reader (and for a
    Dataset or a :class:`~ncsproc.schema.RawTraces` alike: the same type comes back)."""
    from ..schema import validate_trace_set
    from ._sidecar import load_sidecar, sidecar_updates

    if reader.kind != "traces":
        return ds
    coords = _CoordUpdates(ds)
    old_exam = coords.values("exam_id").astype(str) if "exam_id" in coords else None
    old_study = coords.values("study").astype(str) if "study" in coords else None
    data, side = load_sidecar(path)
    if data is not None:
        for name, values in sidecar_updates(ds, data, side, path.name, reader.sidecar_keys).items():
            coords.set(name, values)
    if old_exam is not None and old_study is not None:
        _default_ids(coords, path, old_exam, old_study)
    history = _apply_identity(coords, path, reader, data, pseudonymizer, date_precision)
    ds = coords.apply()  # a new Dataset: its history can be extended in place
    for step in history:
        _append_history_in_place(ds, step)
    try:
        validate_trace_set(ds, source=path.name)
    except SchemaError as exc:
        problems = "\n".join(f"  - {p}" for p in exc.problems)
        hint = (
            f"\nWhat the file does not say can be given in a sidecar {path.name}.json "
            "(see `ncsproc docs readers`)."
        )
        raise FormatError(
            f"{path.name}: read with '{reader.name}', but the trace set is incomplete or invalid:\n"
            f"{problems}{hint}"
        ) from exc
    if data is not None:
        _append_history_in_place(ds, f"completed from sidecar {side.name}")
    return ds


def _append_history_in_place(ds: xr.Dataset, step: str) -> None:
    """:func:`ncsproc.schema.append_history` for a Dataset made here (no copy needed)."""
    from ..schema import history_line

    previous = ds.attrs.get("history", "")
    line = history_line(step)
    ds.attrs = {**ds.attrs, "history": f"{previous}\n{line}" if previous else line}


def _default_ids(
    coords: _CoordUpdates, path: Path, old_exam: np.ndarray, old_study: np.ndarray
) -> None:
    """Empty ``exam_id`` -> the folder name, empty ``study`` -> ``<side>_<nerve>_<modality>``."""
    exam = coords.values("exam_id").astype(str).astype(object)
    study = coords.values("study").astype(str).astype(object)
    folder = path.resolve().parent.name or path.stem
    exam[exam == ""] = folder
    missing = study == ""
    if missing.any():
        side = coords.values("side").astype(str)
        nerve = coords.values("nerve").astype(str)
        modality = coords.values("modality").astype(str)
        for i in np.flatnonzero(missing):
            if side[i] and nerve[i] and modality[i]:
                study[i] = f"{side[i]}_{nerve[i]}_{modality[i]}"
            else:
                study[i] = path.stem
    changed = (exam != old_exam) | (study != old_study)
    if not changed.any():
        return
    ids = coords.values("trace").astype(str).astype(object)
    for i in np.flatnonzero(changed):
        prefix = f"{old_exam[i]}/{old_study[i]}/"
        if ids[i].startswith(prefix):
            ids[i] = f"{exam[i]}/{study[i]}/{ids[i][len(prefix) :]}"
    coords.set("exam_id", exam)
    coords.set("study", study)
    coords.set("trace", ids)


EXAM_DATE_ATTRS = {
    "long_name": "exam date, reduced to the precision read() was asked for "
    "(partial ISO 8601: YYYY, YYYY-MM or YYYY-MM-DD; empty when unknown)"
}


def _apply_identity(
    coords: _CoordUpdates,
    path: Path,
    reader: Reader,
    sidecar: dict | None,
    pseudonymizer,
    precision: str,
) -> list[str]:
    """The privacy boundary: pseudonymous ``subject_id`` and a reduced ``exam_date``.

    The raw identifier lives only in this function's locals; messages never quote it. Returns
    the history steps to record.
    """
    from ..privacy import dates_agree, normalize_identifier, parse_partial_date, reduce_date

    name = path.name
    ident = (reader.identity(path) if reader.identity is not None else None) or {}
    patient = normalize_identifier(ident.get("patient_id"))
    file_date = ident.get("exam_date")

    subject = coords.values("subject_id").astype(str).astype(object)
    if patient is not None:
        given = [i for i, s in enumerate(subject) if s and normalize_identifier(s) == patient]
        if given:
            raise FormatError(
                f"{name}: the subject_id given for this file (sidecar or file metadata) is the "
                "patient identifier of the file's header; a subject_id must be pseudonymous: "
                "remove it and pass a pseudonym key (NCSPROC_PSEUDONYM_KEY or --key-file) so that "
                "ncsproc derives one"
            )
    steps = []
    if pseudonymizer is not None and patient is not None and (subject == "").any():
        pseudonym = pseudonymizer.pseudonym(patient)
        subject[subject == ""] = pseudonym
        coords.set("subject_id", subject)
        steps.append(
            f"subject_id pseudonymised (HMAC-SHA256 of the header's patient identifier, "
            f"key id {pseudonymizer.key_id})"
        )

    side_date = None
    if sidecar is not None and "exam_date" in sidecar:
        raw = sidecar["exam_date"]
        try:
            if not isinstance(raw, str):
                raise ValueError("not a string")
            parse_partial_date(raw)
        except ValueError:
            raise FormatError(
                f"{name}: sidecar key 'exam_date' must be an ISO date string "
                '("YYYY-MM-DD", "YYYY-MM" or "YYYY")'
            ) from None
        side_date = raw.strip() or None
    if file_date is not None and side_date is not None and not dates_agree(file_date, side_date):
        raise FormatError(
            f"{name}: the sidecar's exam_date does not agree with the exam date of the file's "
            "header; a sidecar may only add what the file does not give"
        )
    date = file_date if file_date is not None else side_date
    n = coords.ds.sizes["trace"]
    if date is not None:
        values = np.array([reduce_date(date, precision)] * n, dtype=object)
    elif "exam_date" in coords:  # a native file keeps its (already reduced) dates
        values = np.array(
            [reduce_date(v, precision) for v in coords.values("exam_date").astype(str)],
            dtype=object,
        )
    elif reader.identity is not None:  # every reader with header facts gives the coordinate
        values = np.array([""] * n, dtype=object)
    else:  # a native file without dates stays as it was written
        values = None
    if values is not None:
        coords.set("exam_date", values, dict(EXAM_DATE_ATTRS))
    return steps
