"""Shared test helpers for reader authors: the conformance suite and a fuzzer.

Every registered reader (:data:`ncsproc.formats.READERS`) is tested the same way on the small
file its ``example(folder)`` hook writes. A plugin author runs the same checks on a new reader::

    from ncsproc.testing import check_reader, fuzz_reader

    def test_my_reader(tmp_path):
        check_reader(MY_READER, tmp_path)          # raises AssertionError naming the check
        fuzz_reader(MY_READER, tmp_path, n=200)    # only FormatError or a valid trace set

The checks (:data:`CHECKS`), for ``kind == "traces"`` readers:

* ``valid``: ``ncsproc.read`` returns a trace set that passes ``validate_trace_set``;
* ``voltages``: after removing each trace's median, its peak ``|x|`` is 1e-7 .. 1e-1 V (a
  scale bug - mV or uV taken as V - lands outside);
* ``time_axis``: ``t_start`` finite and within a second of the stimulus, ``sampling_rate``
  positive and finite;
* ``deterministic``: two reads give identical Datasets (``history`` compared without its
  time stamps);
* ``hdf5_roundtrip``: ``ncsproc.write`` then ``ncsproc.read`` gives an identical Dataset;
* ``privacy``: no name of :data:`ncsproc.schema.PRIVACY_BLOCKLIST` among variables and
  attributes, and none of the reader's ``identifying`` strings (the patient name, birth date
  or code its example file carries) anywhere in the Dataset's values or attributes;
* ``dispatch``: ``ncsproc.read(path)`` picks this reader by content.

``kind == "results"`` readers get ``deterministic`` and ``privacy`` only (on ``load``).
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

__all__ = [
    "CHECKS",
    "RESULTS_CHECKS",
    "check_reader",
    "checks_for",
    "fuzz_reader",
    "mutations",
    "read_bounded",
    "ReadTimeout",
]


def _read(reader, path: Path):
    from .formats import read

    if reader.kind == "traces":
        return read(path, format=reader.name)
    return reader.load(path)


# --------------------------------------------------------------------------------------------
# conformance checks: each takes (reader, path of its example, folder for scratch files)
# --------------------------------------------------------------------------------------------


def check_valid(reader, path: Path, folder: Path) -> None:
    """The example reads into a valid trace set."""
    from .schema import validate_trace_set

    ds = _read(reader, path)
    validate_trace_set(ds, source=path.name)
    assert ds.sizes["trace"] >= 1, f"{reader.name}: {path.name} gave no traces"


def check_voltages(reader, path: Path, folder: Path) -> None:
    """Each trace, median removed, peaks between 0.1 uV and 100 mV."""
    ds = _read(reader, path)
    sig = np.asarray(ds["signal"].values, dtype=np.float64)
    for i, n in enumerate(np.asarray(ds["n_samples"].values)):
        x = sig[i, : int(n)]
        peak = float(np.max(np.abs(x - np.median(x))))
        assert 1e-7 <= peak <= 1e-1, (
            f"{reader.name}: trace {ds['trace'].values[i]!r} peaks at {peak:.3g} V after baseline "
            "removal, outside 1e-7..1e-1 V (a unit or scale bug?)"
        )


def check_time_axis(reader, path: Path, folder: Path) -> None:
    """Finite t_start within +-1 s of the stimulus, positive finite sampling rate."""
    ds = _read(reader, path)
    t0 = np.asarray(ds["t_start"].values, dtype=float)
    fs = np.asarray(ds["sampling_rate"].values, dtype=float)
    assert np.isfinite(t0).all() and (np.abs(t0) <= 1.0).all(), f"{reader.name}: t_start {t0}"
    assert np.isfinite(fs).all() and (fs > 0).all(), f"{reader.name}: sampling_rate {fs}"


_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", re.M)


def _without_stamps(ds):
    out = ds.copy()
    if "history" in out.attrs:
        out.attrs["history"] = _STAMP.sub("", str(out.attrs["history"]))
    return out


def check_deterministic(reader, path: Path, folder: Path) -> None:
    """Two reads give identical Datasets (history time stamps aside)."""
    import xarray as xr

    a, b = _read(reader, path), _read(reader, path)
    xr.testing.assert_identical(_without_stamps(a), _without_stamps(b))


def check_raw_layer(reader, path: Path, folder: Path) -> None:
    """``read_raw`` (the raw layer the cohort pipeline uses) gives what the Dataset path gives:
    the reader's ``load`` completed by ``read``'s sidecar, privacy and validation steps."""
    import xarray as xr

    from .formats import _complete, read_raw
    from .schema import RawTraces

    raw = read_raw(path, format=reader.name)
    assert isinstance(raw, RawTraces), f"{reader.name}: read_raw gave {type(raw).__name__}"
    via_load = _complete(reader.load(path), path, reader)
    xr.testing.assert_identical(_without_stamps(raw.to_dataset()), _without_stamps(via_load))


def check_hdf5_roundtrip(reader, path: Path, folder: Path) -> None:
    """Native write then read gives the identical Dataset."""
    import xarray as xr

    from .formats import read
    from .storage import write

    ds = _read(reader, path)
    target = Path(folder) / f"roundtrip-{reader.name.replace('+', 'plus')}.h5"
    write(ds, target)
    back = read(target)
    xr.testing.assert_identical(back, ds)


def _strings(ds) -> Iterator[tuple[str, str]]:
    for key, value in ds.attrs.items():
        yield f"attribute {key!r}", str(value)
    for name, var in ds.variables.items():
        for key, value in var.attrs.items():
            yield f"attribute {key!r} of {name!r}", str(value)
        values = np.asarray(var.values)
        if values.dtype.kind in "OUS":
            for v in values.ravel():
                yield f"variable {name!r}", str(v)


def check_privacy(reader, path: Path, folder: Path) -> None:
    """No blocklisted field names, and none of the example's identifying strings anywhere."""
    from .schema import PRIVACY_BLOCKLIST

    ds = _read(reader, path)
    names = [k for k in list(ds.attrs) + list(ds.variables) if str(k).lower() in PRIVACY_BLOCKLIST]
    assert not names, f"{reader.name}: identifying fields in the Dataset: {names}"
    wanted = [s for s in getattr(reader, "identifying", ()) if s]
    for where, text in _strings(ds):
        low = text.lower()
        for s in wanted:
            assert s.lower() not in low, f"{reader.name}: identifying string {s!r} found in {where}"


def check_dispatch(reader, path: Path, folder: Path) -> None:
    """``ncsproc.read(path)`` chooses this reader by content."""
    import xarray as xr

    from .formats import detect, read

    accepted, reasons = detect(path)
    assert accepted, f"{reader.name}: no reader recognises its own example: {reasons}"
    assert accepted[0].name == reader.name, (
        f"{reader.name}: read() would pick {accepted[0].name!r} for {path.name} "
        f"(accepted: {[r.name for r in accepted]})"
    )
    xr.testing.assert_identical(
        _without_stamps(read(path)), _without_stamps(read(path, format=reader.name))
    )


CHECKS: dict[str, Callable] = {
    "valid": check_valid,
    "voltages": check_voltages,
    "time_axis": check_time_axis,
    "deterministic": check_deterministic,
    "raw_layer": check_raw_layer,
    "hdf5_roundtrip": check_hdf5_roundtrip,
    "privacy": check_privacy,
    "dispatch": check_dispatch,
}
RESULTS_CHECKS = ("deterministic", "privacy")


def checks_for(reader) -> list[str]:
    """Names of the checks that apply to ``reader`` (by its ``kind``)."""
    return list(CHECKS) if reader.kind == "traces" else list(RESULTS_CHECKS)


def check_reader(reader, folder, checks=None) -> Path:
    """Write the reader's example into ``folder`` and run the conformance checks on it.

    Parameters
    ----------
    reader : ncsproc.formats.Reader
    folder : path-like
        An empty scratch folder.
    checks : iterable of str, optional
        Subset of :data:`CHECKS`; default all that apply to the reader's kind.

    Returns
    -------
    pathlib.Path
        The example file.
    """
    folder = Path(folder)
    path = Path(reader.example(folder))
    for name in checks or checks_for(reader):
        CHECKS[name](reader, path, folder)
    return path


# --------------------------------------------------------------------------------------------
# fuzzing
# --------------------------------------------------------------------------------------------


class ReadTimeout(Exception):
    """A read exceeded its time budget (a reader must never hang)."""


@contextlib.contextmanager
def _alarm(seconds: float):
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def handler(signum, frame):
        raise ReadTimeout(f"read took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def read_bounded(reader, path: Path, *, seconds: float = 5.0, max_bytes: int | None = None):
    """Read ``path`` with ``reader`` within a time (and optionally memory) budget.

    Returns the Dataset, or the :class:`~ncsproc.errors.FormatError` raised; any other
    exception propagates, as does :class:`ReadTimeout`. With ``max_bytes``, the peak of
    traced Python/numpy allocations during the read must stay below it (an allocation sized
    from an unchecked header field fails this).
    """
    from .errors import FormatError

    start = time.perf_counter()
    tracing = max_bytes is not None and not tracemalloc.is_tracing()
    if tracing:
        tracemalloc.start()
    try:
        with _alarm(seconds), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = _read(reader, path)
            except FormatError as exc:
                result = exc
        if max_bytes is not None:
            _, peak = tracemalloc.get_traced_memory()
            if peak > max_bytes:
                raise AssertionError(
                    f"{reader.name}: reading {path.name} allocated {peak} bytes at peak, above the "
                    f"budget of {max_bytes} bytes (a size taken from the file without a check?)"
                )
    finally:
        if tracing:
            tracemalloc.stop()
    elapsed = time.perf_counter() - start
    if elapsed > seconds:
        raise ReadTimeout(
            f"{reader.name}: reading {path.name} took {elapsed:.2f} s (budget {seconds} s)"
        )
    return result


_NUMBER = re.compile(rb"(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w.])")


def mutations(data: bytes, seed: int = 0, n: int = 100) -> Iterator[tuple[str, bytes, bool]]:
    """Damaged variants of ``data``: ``(description, bytes, sizes_absurd)``.

    Truncations at many offsets (header and body), random byte flips, ASCII numbers in the
    first 4 KB replaced by absurd values (huge, negative, zero, not a number), and 4- and
    8-byte fields set to huge values (declared sizes). ``sizes_absurd`` marks the variants
    that declare huge sizes, for a memory budget.
    """
    rng = np.random.default_rng(seed)
    size = len(data)
    per = max(1, n // 4)
    # truncations: the first bytes, every header-ish offset, and random ones
    cuts = sorted(
        set([0, 1, 7, 8, 100, 255, 256, 257, 511, 767, 768, 769, size // 2, size - 1])
        | set(int(x) for x in rng.integers(0, max(size, 1), per))
    )
    for cut in cuts:
        if 0 <= cut < size:
            yield f"truncated at byte {cut}", data[:cut], False
    for _ in range(per):
        buf = bytearray(data)
        k = int(rng.integers(1, 9))
        for pos in rng.integers(0, size, k):
            buf[int(pos)] = int(rng.integers(0, 256))
        yield f"{k} random byte(s) changed", bytes(buf), False
    numbers = list(_NUMBER.finditer(data[:4096]))
    if numbers:
        for _ in range(per):
            m = numbers[int(rng.integers(0, len(numbers)))]
            width = m.end() - m.start()
            new = [b"99999999", b"-99999999", b"0", b"-1", b"1e308", b"nan", b"2147483648", b"x"][
                int(rng.integers(0, 8))
            ]
            new = new[:width].ljust(width) if width >= 2 else new[:1]
            yield (
                f"number at byte {m.start()} set to {new!r}",
                data[: m.start()] + new + data[m.end() :],
                True,
            )
    for _ in range(per // 2 + 1):
        buf = bytearray(data)
        pos = int(rng.integers(0, max(size - 8, 1)))
        width = 8 if rng.random() < 0.5 else 4
        buf[pos : pos + width] = (
            b"\xff" * width if rng.random() < 0.5 else b"\x7f" + b"\xff" * (width - 1)
        )
        yield f"{width}-byte field at byte {pos} set huge", bytes(buf[:size]), True


def fuzz_reader(
    reader,
    folder,
    *,
    n: int = 100,
    seed: int = 0,
    seconds: float = 5.0,
    max_bytes: int = 256 * 1024 * 1024,
) -> dict[str, int]:
    """Read damaged copies of the reader's example; fail on anything but FormatError or a valid set.

    Parameters
    ----------
    reader : ncsproc.formats.Reader
    folder : path-like
        Scratch folder (the example is written there, then overwritten by each variant under
        the same name, so a sidecar next to it keeps applying).
    n : int
        About how many variants.
    seed : int
        Seed of the variants.
    seconds : float
        Time budget per read.
    max_bytes : int
        Peak allocation budget for the variants that declare huge sizes.

    Returns
    -------
    dict
        Counts of ``{"error": ..., "valid": ...}``.

    Raises
    ------
    AssertionError
        A variant made the reader raise something else than FormatError, return an invalid
        trace set, run past its time budget or allocate past ``max_bytes``; the message names
        the variant.
    """
    from .errors import FormatError
    from .schema import validate_trace_set

    folder = Path(folder)
    path = Path(reader.example(folder))
    original = path.read_bytes()
    counts = {"error": 0, "valid": 0}
    try:
        for what, variant, absurd in mutations(original, seed=seed, n=n):
            path.write_bytes(variant)
            try:
                result = read_bounded(
                    reader, path, seconds=seconds, max_bytes=max_bytes if absurd else None
                )
            except ReadTimeout as exc:
                raise AssertionError(f"{reader.name}: {what}: {exc}") from None
            except AssertionError:
                raise
            except Exception as exc:
                raise AssertionError(
                    f"{reader.name}: {what}: raised {type(exc).__name__} instead of FormatError: {exc}"
                ) from exc
            if isinstance(result, FormatError):
                msg = str(result)
                assert path.name in msg or "sidecar" in msg or path.stem in msg, (
                    f"{reader.name}: {what}: the FormatError does not name the file: {msg}"
                )
                counts["error"] += 1
            else:
                if reader.kind == "traces":
                    try:
                        validate_trace_set(result)
                    except Exception as exc:
                        raise AssertionError(
                            f"{reader.name}: {what}: returned an invalid trace set: {exc}"
                        ) from exc
                    sig = np.asarray(result["signal"].values, dtype=float)
                    assert not np.isinf(sig).any(), f"{reader.name}: {what}: infinite samples"
                counts["valid"] += 1
    finally:
        path.write_bytes(original)
    return counts
