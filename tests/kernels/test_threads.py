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


def _compiled_kernels():
    """Every numba dispatcher of the kernel modules (the functions measure() runs)."""
    import sys

    from numba.core.dispatcher import Dispatcher

    found = {}
    for name, module in sorted(sys.modules.items()):
        if name.startswith("ncsproc.kernels") and module is not None:
            for attr, value in vars(module).items():
                if isinstance(value, Dispatcher):
                    found[f"{name}.{attr}"] = value
    return found


@pytest.mark.skipif(K.NUMBA_DISABLED, reason="NCSPROC_DISABLE_NUMBA: nothing is compiled")
def test_no_parallel_or_fastmath_options():
    # the options of the compiled kernels themselves, not only of the decorator's defaults
    kernels = _compiled_kernels()
    assert len(kernels) >= 5, sorted(kernels)
    for name, dispatcher in kernels.items():
        options = dispatcher.targetoptions
        assert options.get("nogil") is True, name  # threads run it concurrently
        assert not options.get("parallel"), name  # numba's own pool aborts from many threads
        assert not options.get("fastmath"), name  # must agree with the numpy twins exactly
    with pytest.raises(ValueError, match="fastmath"):
        K.jit(fastmath=True)
    with pytest.raises(ValueError, match="parallel"):
        K.jit(parallel=True)


def test_kernels_are_compiled_through_the_one_decorator():
    """No module compiles with numba directly (that would bypass the options above)."""
    import re
    from pathlib import Path

    src = Path(K.__file__).resolve().parents[1]
    direct = re.compile(r"\bnumba\.(n?jit|vectorize|guvectorize)\b|from numba import .*\bn?jit\b")
    found = [
        f"{p.relative_to(src)}:{i}"
        for p in sorted(src.rglob("*.py"))
        if p.name != "_jit.py"
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if direct.search(line)
    ]
    assert not found, found
