"""Per-trace measures of a trace set (interchange contract section 2).

:func:`measure` validates a trace set, runs the Numba kernels of :mod:`ncsproc.kernels` over
every trace in one call (threads over contiguous blocks of traces for an in-memory trace set;
one task per chunk of traces for a dask-backed one) and returns an :class:`xarray.Dataset` on
the same ``trace`` dimension with units, long names, QC flags, the parameters used (JSON) and a
``history`` line. The algorithm, its parameters and its validated accuracy are documented in
``formats/measures.md``.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import xarray as xr

from ._version import __version__
from .errors import SchemaError
from .schema import complete_trace_set, history_line, validate_trace_set

__all__ = ["measure", "MEASURE_VARS", "MEASURED_VARS", "DIAGNOSTIC_VARS", "MEASURES_SCHEMA"]

MEASURES_SCHEMA = "ncsproc-measures/1"

# output variable -> (kernel output index name, units, long_name)
MEASURE_VARS: dict[str, tuple[str, str, str]] = {
    "onset_latency": (
        "O_ONSET",
        "s",
        "first departure from baseline of the response (either polarity), from the stimulus",
    ),
    "peak_latency": ("O_PEAK", "s", "latency of the negative peak"),
    "amplitude": ("O_AMPLITUDE", "V", "baseline to negative peak amplitude (positive)"),
    "peak_to_peak": ("O_P2P", "V", "negative peak to the following positive peak"),
    "negative_duration": (
        "O_NEG_DURATION",
        "s",
        "onset to the first return to baseline after the negative peak",
    ),
    "total_duration": (
        "O_TOTAL_DURATION",
        "s",
        "onset to the return to baseline of the last "
        "negative lobe deeper than lobe_fraction of the amplitude (EFNS/PNS "
        "distal CMAP duration)",
    ),
    "negative_area": (
        "O_NEG_AREA",
        "V s",
        "area below baseline between the onset and the end of total_duration (positive)",
    ),
    "snr": ("O_SNR", "dB", "20 log10(amplitude / baseline noise SD)"),
    "f_latency": (
        "O_F_LATENCY",
        "s",
        "F-wave traces: onset of the late response after the M "
        "wave; NaN when there is none (and for other modalities)",
    ),
    "baseline_level": ("O_BASELINE", "V", "baseline level the measures refer to"),
    "noise_sd": ("O_NOISE", "V", "robust noise standard deviation of the trace"),
    "artefact_end": (
        "O_ARTEFACT_END",
        "s",
        "end of the blanked stimulus artefact (nothing earlier is searched)",
    ),
}


#: diagnostics, kept for traces without values (the baseline the values refer to, ...)
DIAGNOSTIC_VARS = ("baseline_level", "noise_sd", "artefact_end")
#: the measured values (NaN when the status is not ``ok``)
MEASURED_VARS = tuple(name for name in MEASURE_VARS if name not in DIAGNOSTIC_VARS)


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _signal_for_kernel(data):
    """Return ``signal`` data the kernels accept: float32/float64 as is, integers converted."""
    dtype = np.dtype(data.dtype)
    if dtype in (np.float32, np.float64):
        return data, None
    if dtype.kind in "iub":
        return data.astype(np.float64), f"converted {dtype} signal to float64 before measuring"
    if dtype.kind == "f":
        return data.astype(np.float32 if dtype.itemsize < 4 else np.float64), (
            f"converted {dtype} signal before measuring"
        )
    raise SchemaError(f"'signal' must be numeric (V), got dtype {dtype}")


def _run_block(signal, n_samples, fs, t_start, modality, table):
    from .kernels import N_OUT, measure_block

    m = signal.shape[0]
    out = np.empty((m, N_OUT), dtype=np.float64)
    status = np.empty(m, dtype=np.int8)
    flags = np.empty(m, dtype=np.int32)
    if m:
        measure_block(signal, n_samples, fs, t_start, modality, table, out, status, flags)
    return out, status, flags


def measure(
    traces: xr.Dataset, *, n_threads: int | None = None, validate: bool = True, **params
) -> xr.Dataset:
    """Measure every trace of a trace set: onset, peak, amplitude, durations, area, SNR, F.

    Parameters
    ----------
    traces : xarray.Dataset
        A trace set (``ncsproc-traces/1``), in memory or dask-backed (chunked along ``trace``;
        ``sample`` is made a single chunk). Integer ``signal`` data is converted to float64
        explicitly before the kernels; float32 is measured as it is, without an upcast copy.
    n_threads : int, optional
        Threads over contiguous blocks of traces for an in-memory trace set (default: the
        number of cores this process may use). A dask-backed trace set is measured with one
        task per chunk by the active dask scheduler instead.
    validate : bool
        Validate the trace set first (default True). The NaN-padding check reads the samples,
        so it is skipped for a dask-backed trace set.
    **params
        Measurement parameters (see ``formats/measures.md`` and
        :data:`ncsproc.kernels.PARAMS`): ``name=value`` for every modality, or
        ``motor={...}``, ``sensory={...}``, ``fwave={...}`` for one modality.

    Returns
    -------
    xarray.Dataset
        On the trace set's ``trace`` dimension, with its per-trace coordinates, the variables
        ``onset_latency``, ``peak_latency`` (s), ``amplitude``, ``peak_to_peak`` (V),
        ``negative_duration``, ``total_duration`` (s), ``negative_area`` (V s), ``snr`` (dB),
        ``f_latency`` (s), ``status`` (str), ``qc_flags`` (int, CF flag masks) and the
        diagnostics ``baseline_level``, ``noise_sd`` (V) and ``artefact_end`` (s). A trace that
        cannot be measured has NaN values and a status other than ``ok``. Attributes record
        the parameters (``measure_parameters``, JSON) and the ``history``.

    Raises
    ------
    SchemaError
        The trace set violates the contract.
    ValueError
        An unknown parameter name or an invalid value.
    """
    from . import kernels as K

    if not isinstance(traces, xr.Dataset):
        raise SchemaError(f"expected an xarray.Dataset trace set, got {type(traces).__name__}")
    traces = complete_trace_set(traces)  # missing history/version attrs, units by contract
    table = K.build_table(params)
    if n_threads is None:
        n_threads = _default_threads()
    n_threads = int(n_threads)
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")

    notes = []
    if "signal" in traces.data_vars:
        data, note = _signal_for_kernel(traces["signal"].data)
        if note:
            notes.append(note)
            traces = traces.assign(signal=traces["signal"].copy(data=data))
    is_dask = hasattr(traces["signal"].data, "dask") if "signal" in traces else False
    if validate:
        validate_trace_set(traces, check_data=not is_dask)

    signal = traces["signal"].data
    n_samples = np.ascontiguousarray(traces["n_samples"].values, dtype=np.int64)
    fs = np.ascontiguousarray(traces["sampling_rate"].values, dtype=np.float64)
    t_start = np.ascontiguousarray(traces["t_start"].values, dtype=np.float64)
    modality_str = traces["modality"].values.astype(str)
    unknown = sorted(set(modality_str) - set(K.MODALITY_CODES))
    if unknown:
        raise SchemaError(f"'modality' values {unknown} are not one of {K.MODALITIES}")
    modality = np.array([K.MODALITY_CODES[m] for m in modality_str], dtype=np.int8)
    n = signal.shape[0]

    if is_dask:
        out, status, flags = _measure_dask(signal, n_samples, fs, t_start, modality, table)
    else:
        signal = np.asarray(signal)
        out = np.empty((n, K.N_OUT), dtype=np.float64)
        status = np.empty(n, dtype=np.int8)
        flags = np.empty(n, dtype=np.int32)
        workers = max(1, min(n_threads, n))
        edges = np.linspace(0, n, workers + 1).astype(int)

        def work(k):
            sl = slice(edges[k], edges[k + 1])
            if edges[k + 1] > edges[k]:
                K.measure_block(
                    signal[sl],
                    n_samples[sl],
                    fs[sl],
                    t_start[sl],
                    modality[sl],
                    table,
                    out[sl],
                    status[sl],
                    flags[sl],
                )

        if workers == 1:
            work(0)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(work, range(workers)))

    return _assemble(traces, out, status, flags, table, notes)


def _measure_dask(signal, n_samples, fs, t_start, modality, table):
    import dask

    if len(signal.chunks[1]) > 1:
        signal = signal.rechunk({1: -1})
    tasks = []
    start = 0
    for i, size in enumerate(signal.chunks[0]):
        sl = slice(start, start + size)
        block = signal.blocks[i, 0]
        tasks.append(
            dask.delayed(_run_block, pure=True)(
                block, n_samples[sl], fs[sl], t_start[sl], modality[sl], table
            )
        )
        start += size
    parts = dask.compute(*tasks)
    if not parts:
        from .kernels import N_OUT

        return np.empty((0, N_OUT)), np.empty(0, np.int8), np.empty(0, np.int32)
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


def _assemble(traces, out, status, flags, table, notes):
    from . import kernels as K

    n = out.shape[0]
    data_vars = {}
    bad = status != K.ST_OK
    for name, (idx_name, units, long_name) in MEASURE_VARS.items():
        col = out[:, getattr(K, idx_name)].copy()
        if name in MEASURED_VARS:
            col[bad] = np.nan
        data_vars[name] = ("trace", col, {"units": units, "long_name": long_name})
    lookup = np.array(
        [K.STATUS_NAMES.get(i, "") for i in range(max(K.STATUS_NAMES) + 1)], dtype=object
    )
    names = lookup[status.astype(np.intp)] if n else np.array([], dtype=object)
    data_vars["status"] = (
        "trace",
        names,
        {
            "long_name": "measurement status: ok, or why the trace has no values",
            "status_meanings": (
                "ok: measured; no_response: no response above noise (not zero); "
                "saturated: the amplifier clipped in the analysis window; "
                "no_baseline: no usable baseline (or the artefact never settles); "
                "nonfinite: NaN/inf samples in the analysis window; too_short: "
                "too few samples for the windows"
            ),
        },
    )
    masks = list(K.FLAG_NAMES)
    data_vars["qc_flags"] = (
        "trace",
        flags.astype(np.int32),
        {
            "long_name": "quality-control flags (bit field)",
            "flag_masks": np.array(masks, dtype=np.int32),
            "flag_meanings": " ".join(K.FLAG_NAMES[m][0] for m in masks),
            "flag_descriptions": "; ".join(
                f"{K.FLAG_NAMES[m][0]}: {K.FLAG_NAMES[m][1]}" for m in masks
            ),
        },
    )
    coords = {name: traces[name] for name in traces.coords if traces[name].dims == ("trace",)}
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs = {
        "schema": MEASURES_SCHEMA,
        "ncsproc_version": __version__,
        "method": "ncsproc.kernels (see `ncsproc docs measures`)",
        "measure_parameters": json.dumps(K.table_as_dict(table), sort_keys=True),
        "parameter_units": json.dumps({p.name: p.units for p in K.PARAMS}, sort_keys=True),
        "numba": json.dumps({"disabled": K.NUMBA_DISABLED, **K.JIT_OPTIONS}, sort_keys=True),
    }
    kinds, counts = np.unique(names, return_counts=True)
    summary = ", ".join(f"{k}: {int(v)}" for k, v in zip(kinds, counts, strict=True))
    step = f"measure {n} traces ({summary})"
    if notes:
        step += "; " + "; ".join(notes)
    previous = traces.attrs.get("history", "")
    line = history_line(step)
    ds.attrs["history"] = f"{previous}\n{line}" if previous else line
    return ds
