"""Native storage: a trace set written to HDF5 (netCDF4 layout through h5netcdf) and read back.

The file is plain HDF5 (readable with h5py, HDFView or netCDF tools) and round-trips to an
identical Dataset, attributes included. ``signal`` is stored compressed and chunked by
blocks of traces, so a part of a large cohort file can be read without reading the rest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import FormatError, SchemaError
from .schema import SCHEMA, complete_trace_set, select, validate_trace_set

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_TRACES_PER_CHUNK = 1024


def is_hdf5(path: str | os.PathLike) -> bool:
    """Return True when ``path`` starts with the HDF5 signature (never raises)."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == HDF5_MAGIC
    except OSError:
        return False


def write(traces: xr.Dataset, path: str | os.PathLike, *, compression_level: int = 4) -> Path:
    """Write a trace set to a native ncsproc HDF5 file.

    Parameters
    ----------
    traces : xarray.Dataset
        A valid trace set (checked before anything is written).
    path : path-like
        Destination; written to a temporary file first and renamed, so a crash never
        leaves a half-written file under the final name.
    compression_level : int
        gzip level for ``signal`` (0 disables compression).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    traces = complete_trace_set(traces)  # missing history/version attrs, units by contract
    validate_trace_set(traces, check_data=False)
    path = Path(path)
    n_trace, width = traces.sizes["trace"], traces.sizes["sample"]
    encoding: dict[str, dict] = {
        "signal": {"chunksizes": (max(1, min(n_trace, _TRACES_PER_CHUNK)), max(1, width))}
    }
    if compression_level:
        encoding["signal"].update(zlib=True, complevel=int(compression_level), shuffle=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        traces.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def open_trace_set(path: str | os.PathLike, *, chunks: Mapping | str | None = None) -> xr.Dataset:
    """Open a native file lazily: metadata are read, samples only when used.

    Parameters
    ----------
    path : path-like
        A file written by :func:`write`.
    chunks : mapping or "auto", optional
        Passed to :func:`xarray.open_dataset`; give chunks (e.g. ``{"trace": 10000}``) for a
        dask-backed trace set, or None for xarray's lazy (non-dask) arrays.

    Returns
    -------
    xarray.Dataset
        The trace set; the file stays open until the Dataset is closed.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if not is_hdf5(path):
        raise FormatError(
            f"{path.name}: byte 0: expected the HDF5 signature of a native ncsproc file, "
            "found something else (is this an export that needs another reader?)"
        )
    import h5py

    try:
        with h5py.File(path, "r") as f:
            schema = f.attrs.get("schema")
    except Exception as exc:  # h5py raises several types for damaged files
        raise FormatError(f"{path.name}: damaged HDF5 file, cannot be opened: {exc}") from exc
    if isinstance(schema, bytes):
        schema = schema.decode("utf-8", "replace")
    if schema != SCHEMA:
        raise FormatError(
            f"{path.name}: root attribute 'schema' is {schema!r}, expected {SCHEMA!r}; "
            "this HDF5 file was not written by ncsproc.write"
        )
    try:
        return xr.open_dataset(path, engine="h5netcdf", chunks=chunks)
    except Exception as exc:
        raise FormatError(f"{path.name}: cannot be read as an ncsproc trace set: {exc}") from exc


def read_native(
    path: str | os.PathLike,
    *,
    traces: slice | np.ndarray | list | None = None,
    **criteria: str | list[str],
) -> xr.Dataset:
    """Read a native file into memory, optionally only some traces.

    Parameters
    ----------
    path : path-like
        A file written by :func:`write`.
    traces : slice or integer array, optional
        Positions along ``trace`` to read.
    **criteria
        Metadata selection passed to :func:`ncsproc.schema.select` (``nerve="median"``,
        ``study=[...]``, ...); only the matching traces' samples are read from disk.

    Returns
    -------
    xarray.Dataset
        The (partial) trace set, validated.
    """
    name = Path(path).name
    with open_trace_set(path) as lazy:
        part = lazy
        if traces is not None:
            part = part.isel(trace=traces)
        if criteria:
            part = select(part, **criteria)
        try:
            ds = part.load()
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            # h5py raises these for damaged chunks, failed decompression or bad attributes
            raise FormatError(
                f"{name}: damaged native ncsproc file, samples cannot be read "
                f"({type(exc).__name__}: {exc})"
            ) from exc
    for var in ds.variables:
        ds[var].encoding = {}
    try:
        validate_trace_set(ds, source=name)
    except SchemaError as exc:
        raise FormatError(f"{name}: not a valid trace set: {exc}") from exc
    return ds
