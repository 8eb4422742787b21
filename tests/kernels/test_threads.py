"""Kernels called from several threads at once, and the threaded / dask paths of measure."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import ncsproc
import ncsproc.kernels as K

from .conftest import run_block


@pytest.fixture(scope="module")
def sim_set():
    from ncsproc.simulate import response_set

    return response_set("motor", 96, seed=7)[0]


def test_kernel_from_many_threads_gives_the_same_results(sim_set):
    sig = sim_set["signal"].values
    ref = run_block(sig)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: run_block(sig), range(16)))
    for out, st, fl in results:
        np.testing.assert_array_equal(out, ref[0])
        np.testing.assert_array_equal(st, ref[1])
        np.testing.assert_array_equal(fl, ref[2])


def _same(a, b):
    for name in a.data_vars:
        va, vb = a[name].values, b[name].values
        if va.dtype.kind == "f":
            np.testing.assert_array_equal(va, vb)
        else:
            assert (va == vb).all(), name


@pytest.mark.parametrize("n_threads", [1, 2, 5])
def test_measure_threads_do_not_change_results(sim_set, n_threads):
    _same(ncsproc.measure(sim_set, n_threads=1), ncsproc.measure(sim_set, n_threads=n_threads))


def test_measure_dask_chunks_give_the_same_results(sim_set):
    import dask

    lazy = sim_set.chunk({"trace": 25, "sample": 100})  # sample chunks are merged first
    for scheduler in ("synchronous", "threads"):
        with dask.config.set(scheduler=scheduler):
            _same(ncsproc.measure(sim_set), ncsproc.measure(lazy))


def test_measure_inside_dask_threads(sim_set):
    """measure() may itself be called from worker threads (no numba parallel=True anywhere)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        outs = list(
            pool.map(lambda k: ncsproc.measure(sim_set.isel(trace=slice(k, None, 4))), range(4))
        )
    full = ncsproc.measure(sim_set)
    for k, out in enumerate(outs):
        _same(full.isel(trace=slice(k, None, 4)), out)


def test_no_parallel_or_fastmath_options():
    assert K.JIT_OPTIONS["nogil"] is True
    assert K.JIT_OPTIONS["fastmath"] is False
    assert "parallel" not in K.JIT_OPTIONS
    with pytest.raises(ValueError, match="fastmath"):
        K.jit(fastmath=True)
    with pytest.raises(ValueError, match="parallel"):
        K.jit(parallel=True)
