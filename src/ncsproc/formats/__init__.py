"""Reader registry and the generic :func:`read` entry point.

Every reader is registered explicitly in :data:`READERS`. :func:`read` picks a reader by
content (magic bytes, structure) before extension, and when nothing fits it says which
readers were tried and why each declined.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from ..errors import FormatError, UnsupportedFormatError


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
        Usual file extensions (lower case, with dot); a hint, not a requirement.
    sniff : callable
        ``sniff(path) -> str | None``: None when the file looks like this format, otherwise
        the reason it does not. Must be cheap and never raise.
    load : callable
        ``load(path) -> xarray.Dataset``: a valid trace set (``kind="traces"``) or a results
        Dataset (``kind="results"``, e.g. QTRAC threshold tracking, read by its own function).
    example : callable
        ``example(folder) -> Path``: writes (or copies) a small valid file of this format into
        ``folder`` and returns its path. The shared conformance and fuzz suites run on it, so
        every registered reader is tested the same way.
    kind : {"traces", "results"}
        ``read`` returns trace sets only; a results file gets a message naming its function.
    """

    name: str
    description: str
    extensions: tuple[str, ...]
    sniff: Callable[[Path], str | None]
    load: Callable[[Path], xr.Dataset]
    example: Callable[[Path], Path]
    kind: str = "traces"


# Built-in readers, in detection order: each module ``ncsproc.formats.<name>`` defines
# ``READER`` (a :class:`Reader`). Order matters only when two formats could claim one file;
# content sniffing (magic bytes, structure) keeps that rare.
_BUILTIN_MODULES = ("native",)

READERS: dict[str, Reader] = {}


def _register_builtins() -> None:
    import importlib

    for module_name in _BUILTIN_MODULES:
        module = importlib.import_module(f"{__name__}.{module_name}")
        reader = module.READER
        if reader.name in READERS:
            raise RuntimeError(f"reader name {reader.name!r} registered twice")
        READERS[reader.name] = reader


_register_builtins()


def list_formats() -> list[Reader]:
    """Return the registered readers, in registry order."""
    return list(READERS.values())


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
        A valid trace set.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    UnsupportedFormatError
        No reader recognises the file; the message lists every reader and its reason.
    FormatError
        The recognised reader found the file damaged or inconsistent.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if format is not None:
        if format not in READERS:
            raise UnsupportedFormatError(
                f"{path.name}: unknown format {format!r}; registered formats: {sorted(READERS)}"
            )
        return READERS[format].load(path)
    reasons = []
    for reader in READERS.values():
        reason = reader.sniff(path)
        if reason is None:
            return reader.load(path)
        reasons.append(f"{reader.name}: {reason}")
    raise UnsupportedFormatError(
        f"{path.name}: no reader recognises this file. Tried: " + "; ".join(reasons)
    )
