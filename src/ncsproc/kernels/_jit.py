"""The one Numba decorator of ncsproc, with the project defaults.

Every kernel is compiled through :func:`jit`, never through ``numba.njit`` directly, so the
compilation options are set in one place:

* ``nopython=True`` and ``nogil=True``: kernels release the GIL, so threads (ours in
  :func:`ncsproc.measures.measure`, or dask's threaded scheduler) run them concurrently.
* ``fastmath=False``: latencies near sample boundaries must agree with the numpy reference
  twins exactly; reassociation would break that.
* ``parallel=False``: parallelism comes from threads over blocks of traces, never from
  Numba's own thread pool (its default ``workqueue`` layer aborts when entered from several
  Python threads at once).
* ``cache``: on unless the environment variable ``NCSPROC_NUMBA_CACHE`` is ``0``/``false``/
  ``no``/``off`` (the compiled machine code is stored next to the sources in
  ``__pycache__``; turn it off if a process pool ever crashes on a shared cache).
* ``NCSPROC_DISABLE_NUMBA=1`` is the kill switch: :func:`jit` returns the plain Python
  function, which gives identical results (slowly) and lets a debugger step into kernels.

The environment is read once, when :mod:`ncsproc.kernels` is first imported.
"""

from __future__ import annotations

import os

_FALSE = {"0", "false", "no", "off", ""}


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in _FALSE


NUMBA_DISABLED = _env_flag("NCSPROC_DISABLE_NUMBA", False)
NUMBA_CACHE = _env_flag("NCSPROC_NUMBA_CACHE", True)

#: The options every kernel is compiled with (recorded in the measure results).
JIT_OPTIONS = {"nopython": True, "nogil": True, "fastmath": False, "cache": NUMBA_CACHE}


def jit(signature_or_function=None, **overrides):
    """Compile a kernel with the project defaults (see the module docstring).

    Use as ``@jit`` or ``@jit(signatures)``. ``overrides`` exist for tests only; changing
    ``fastmath`` or ``parallel`` here is refused, so the house rules cannot be bypassed by
    accident.
    """
    for forbidden in ("fastmath", "parallel"):
        if forbidden in overrides:
            raise ValueError(
                f"ncsproc kernels are compiled with "
                f"{forbidden}={JIT_OPTIONS.get(forbidden, False)}; "
                f"do not override {forbidden!r} (see ncsproc/kernels/_jit.py)"
            )
    options = {**JIT_OPTIONS, **overrides}

    def wrap(func):
        if NUMBA_DISABLED:
            return func
        import numba

        if signature is None:
            return numba.jit(**options)(func)
        return numba.jit(signature, **options)(func)

    if callable(signature_or_function) and not isinstance(signature_or_function, (list, str)):
        signature = None
        return wrap(signature_or_function)
    signature = signature_or_function
    return wrap
