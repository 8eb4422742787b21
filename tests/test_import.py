"""Layering: ``import ncsproc`` stays light; heavy modules load only when used."""

from __future__ import annotations

import subprocess
import sys


def test_import_ncsproc_is_light():
    code = (
        "import sys, ncsproc; "
        "heavy = [m for m in ('numba', 'dask', 'h5py', 'h5netcdf', 'xarray', 'scipy') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_resolve_lazily():
    import ncsproc

    assert callable(ncsproc.make_trace_set)
    assert callable(ncsproc.read) and callable(ncsproc.write)
    assert ncsproc.__version__.count(".") == 2
