"""Native HDF5 storage: round trip unchanged, partial and lazy reads, clear errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import xarray as xr

import ncsproc
from ncsproc.errors import FormatError, UnsupportedFormatError
from ncsproc.storage import open_trace_set, read_native, write


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_identical(tmp_path, make_traces, dtype):
    ds = make_traces(n_sites=3, dtype=dtype, temperature=33.5, age=61.0)
    path = write(ds, tmp_path / "exam.h5")
    back = ncsproc.read(path)
    xr.testing.assert_identical(ds, back)
    assert back.signal.dtype == np.dtype(dtype)
    assert back.n_samples.dtype.kind == "i" and back.record.dtype.kind == "i"
    # plain HDF5 that other tools can open
    with h5py.File(path) as f:
        assert f.attrs["schema"] == "ncsproc-traces/1"
        assert f["signal"].shape == (3, 400)


def test_partial_read_reads_only_the_selected_traces(tmp_path, make_traces):
    ds = make_traces(n_sites=4)
    path = write(ds, tmp_path / "exam.h5")
    part = read_native(path, stim_site=["elbow", "erb"])
    xr.testing.assert_identical(part.drop_attrs(), ds.isel(trace=[1, 3]).drop_attrs())
    assert read_native(path, traces=slice(0, 2)).sizes["trace"] == 2


def test_lazy_open_is_dask_backed(tmp_path, make_traces):
    pytest.importorskip("dask")
    path = write(make_traces(n_sites=4), tmp_path / "exam.h5")
    with open_trace_set(path, chunks={"trace": 4}) as lazy:
        assert lazy.signal.chunks is not None
        assert float(lazy.signal.isel(trace=0, sample=0)) == pytest.approx(
            float(make_traces(n_sites=4).signal[0, 0])
        )


def test_write_is_atomic_and_refuses_invalid_sets(tmp_path, make_traces):
    bad = make_traces().assign_attrs(schema="nope")
    with pytest.raises(ncsproc.SchemaError):
        write(bad, tmp_path / "bad.h5")
    assert list(tmp_path.iterdir()) == []


def test_errors_name_the_file_and_what_was_expected(tmp_path, make_traces):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(
        UnsupportedFormatError, match=r"notes.h5: no reader .*ncsproc-hdf5: no HDF5"
    ):
        ncsproc.read(text)
    with pytest.raises(FormatError, match="notes.h5: byte 0: expected the HDF5 signature"):
        read_native(text)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(FormatError, match="foreign.h5: root attribute 'schema'"):
        ncsproc.read(foreign)
    truncated = tmp_path / "truncated.h5"
    good = write(make_traces(), tmp_path / "good.h5").read_bytes()
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(FormatError, match="truncated.h5"):
        ncsproc.read(truncated)
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        ncsproc.read(tmp_path / "missing.h5")
