"""The native ncsproc file (HDF5, netCDF4 layout), registered like every other format."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from . import Reader


def _sniff(path: Path) -> str | None:
    from ..storage import is_hdf5

    return None if is_hdf5(path) else "no HDF5 signature at byte 0"


def _load(path: Path) -> xr.Dataset:
    from ..storage import read_native

    return read_native(path)


def _example(folder: Path) -> Path:
    from ..simulate import response_set
    from ..storage import write

    traces, _ = response_set("motor", 3, seed=0, dtype="float32")
    return write(traces, Path(folder) / "example.h5")


READER = Reader(
    name="ncsproc-hdf5",
    description="native ncsproc trace set (HDF5, netCDF4 layout)",
    extensions=(".h5", ".hdf5", ".nc"),
    sniff=_sniff,
    load=_load,
    example=_example,
)
