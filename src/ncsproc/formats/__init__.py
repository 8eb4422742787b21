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
        ``load(path) -> xarray.Dataset`` returning a valid trace set.
    """

    name: str
    description: str
    extensions: tuple[str, ...]
    sniff: Callable[[Path], str | None]
    load: Callable[[Path], xr.Dataset]


def _sniff_native(path: Path) -> str | None:
    from ..storage import is_hdf5

    return None if is_hdf5(path) else "no HDF5 signature at byte 0"


def _load_native(path: Path) -> xr.Dataset:
    from ..storage import read_native

    return read_native(path)


READERS: dict[str, Reader] = {
    "ncsproc-hdf5": Reader(
        name="ncsproc-hdf5",
        description="native ncsproc trace set (HDF5, netCDF4 layout)",
        extensions=(".h5", ".hdf5", ".nc"),
        sniff=_sniff_native,
        load=_load_native,
    ),
}


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
