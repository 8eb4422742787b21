"""Reader registry and the generic :func:`read` entry point.

Every reader is registered explicitly in :data:`READERS`. :func:`read` picks a reader by
content (magic bytes, structure) before extension, and when nothing fits it says which
readers were tried and why each declined. It then completes the trace set from a sidecar
(``<file>.json``, see :mod:`ncsproc.formats._sidecar`) and validates it, for every reader
alike.
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
_BUILTIN_MODULES = ("native", "edf", "dicom", "cfs", "qtrac", "text")

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


def read(path: str | os.PathLike, format: str | None = None) -> xr.Dataset:
    """Read any supported file into a trace set.

    Parameters
    ----------
    path : path-like
        The file.
    format : str, optional
        A registry name (see ``ncsproc formats``) to skip detection.

    Returns
    -------
    xarray.Dataset
        A valid trace set. What the file does not say comes from its sidecar ``<file>.json``
        when there is one; ``exam_id``, when neither says, is the name of the folder holding
        the file (the contract's one-folder-per-exam rule).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    UnsupportedFormatError
        No reader recognises the file (the message lists every reader and its reason), or
        the file holds results rather than traces (the message names the function to use).
    FormatError
        The recognised reader found the file damaged or inconsistent, the sidecar contradicts
        the file, or facts the trace set needs are missing from both.
    """
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
            f"{path.name}: this is a {reader.description} file: it holds results, not traces, so "
            f"ncsproc.read cannot return a trace set; read it with {reader.function_name}(path)"
        )
    failures: list[tuple[Reader, FormatError]] = []
    for reader in candidates:
        if reader.kind != "traces":
            continue
        try:
            ds = reader.load(path)
        except FormatError as exc:
            failures.append((reader, exc))
            continue
        return _complete(ds, path, reader)
    if len(failures) == 1:
        raise failures[0][1]
    raise FormatError(
        f"{path.name}: recognised by {len(failures)} readers, and each failed: "
        + " | ".join(f"{r.name}: {e}" for r, e in failures)
    )


def _complete(ds: xr.Dataset, path: Path, reader: Reader) -> xr.Dataset:
    """Sidecar, default exam id and study, trace ids, validation: the same for every reader."""
    from ..schema import append_history, validate_trace_set
    from ._sidecar import apply_sidecar, load_sidecar

    if reader.kind != "traces":
        return ds
    old_exam = np.asarray(ds["exam_id"].values).astype(str) if "exam_id" in ds else None
    old_study = np.asarray(ds["study"].values).astype(str) if "study" in ds else None
    data, side = load_sidecar(path)
    if data is not None:
        ds = apply_sidecar(ds, data, side, path.name, reader.sidecar_keys)
    if old_exam is not None and old_study is not None:
        ds = _default_ids(ds, path, old_exam, old_study)
    unknown = [
        name
        for name in ("side", "nerve", "modality")
        if name in ds and (np.asarray(ds[name].values).astype(str) == "").any()
    ]
    if unknown:
        raise FormatError(
            f"{path.name}: read with '{reader.name}', but the file does not say the "
            f"{', '.join(unknown)} of its traces; nothing is guessed: give "
            f"{' and '.join(repr(u) for u in unknown)} in a sidecar {path.name}.json "
            "(see formats/readers.md)"
        )
    try:
        validate_trace_set(ds, source=path.name)
    except SchemaError as exc:
        problems = "\n".join(f"  - {p}" for p in exc.problems)
        hint = (
            f"\nWhat the file does not say can be given in a sidecar {path.name}.json "
            "(see formats/readers.md)."
        )
        raise FormatError(
            f"{path.name}: read with '{reader.name}', but the trace set is incomplete or invalid:\n"
            f"{problems}{hint}"
        ) from exc
    if data is not None:
        ds = append_history(ds, f"completed from sidecar {side.name}")
    return ds


def _default_ids(
    ds: xr.Dataset, path: Path, old_exam: np.ndarray, old_study: np.ndarray
) -> xr.Dataset:
    exam = np.asarray(ds["exam_id"].values).astype(str).astype(object)
    study = np.asarray(ds["study"].values).astype(str).astype(object)
    folder = path.resolve().parent.name or path.stem
    exam[exam == ""] = folder
    missing = study == ""
    if missing.any():
        side = np.asarray(ds["side"].values).astype(str)
        nerve = np.asarray(ds["nerve"].values).astype(str)
        modality = np.asarray(ds["modality"].values).astype(str)
        for i in np.flatnonzero(missing):
            if side[i] and nerve[i] and modality[i]:
                study[i] = f"{side[i]}_{nerve[i]}_{modality[i]}"
            else:
                study[i] = path.stem
    changed = (exam != old_exam) | (study != old_study)
    if not changed.any():
        return ds
    ids = np.asarray(ds["trace"].values).astype(str).astype(object)
    for i in np.flatnonzero(changed):
        prefix = f"{old_exam[i]}/{old_study[i]}/"
        if ids[i].startswith(prefix):
            ids[i] = f"{exam[i]}/{study[i]}/{ids[i][len(prefix) :]}"
    attrs = {name: dict(ds[name].attrs) for name in ("exam_id", "study", "trace")}
    ds = ds.assign_coords(
        exam_id=("trace", exam, attrs["exam_id"]),
        study=("trace", study, attrs["study"]),
    )
    ds = ds.assign_coords(trace=("trace", ids, attrs["trace"]))
    return ds
