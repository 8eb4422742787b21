"""Speed of the measurement kernels and of ``ncsproc.measure`` (see ``python -m benchmarks -h``).

Reports, from one run on ``n_traces`` x ``n_samples`` float32 motor traces (simulated CMAPs with
artefact and noise; ``unique`` distinct traces tiled to the full size):

* kernel-only and whole-``measure`` (xarray assembly included) traces per second;
* the ratio of those times to one numpy pass over the same array (``signal.sum()``), a proxy
  for the memory-bandwidth limit;
* the speed-up over the numpy reference twin and over the peer ``mep-cmap-analyser`` (both
  timed on a subset and extrapolated per trace);
* the scaling of ``measure`` from 1 to 2 threads.

Each timing is the best of ``repeat`` runs (the machine is shared and noisy).
"""

from __future__ import annotations

import time

import numpy as np


def _best(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def make_traces(n_traces: int, n_samples: int, unique: int, seed: int = 0):
    """A float32 trace set of ``n_traces`` motor traces (``unique`` simulated ones, tiled)."""
    import xarray as xr

    from ncsproc.simulate import response_set

    fs = 20000.0
    unique = min(unique, n_traces)
    ts, _ = response_set("motor", unique, seed=seed, sweep=n_samples / fs, dtype="float32")
    reps = -(-n_traces // unique)
    sig = np.ascontiguousarray(np.tile(ts["signal"].values, (reps, 1))[:n_traces])
    idx = np.arange(n_traces) % unique
    big = ts.isel(trace=idx)
    big = big.assign_coords(
        trace=(
            "trace",
            np.array([f"B/{i}" for i in range(n_traces)], dtype=object),
            ts["trace"].attrs,
        )
    )
    big = big.assign(signal=xr.Variable(("trace", "sample"), sig, ts["signal"].attrs))
    return big


def run(
    n_traces=100_000,
    n_samples=1000,
    unique=1000,
    twin_subset=200,
    peer_subset=200,
    repeat=3,
    quiet=False,
):
    """Run the speed benchmark; return a list of ``(label, value, unit)`` rows."""
    import ncsproc
    import ncsproc.kernels as K
    from ncsproc.kernels._reference import ref_measure_block

    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    say(f"preparing {n_traces} x {n_samples} float32 traces ({unique} simulated, tiled) ...")
    traces = make_traces(n_traces, n_samples, unique)
    sig = traces["signal"].values
    ns = traces["n_samples"].values.astype(np.int64)
    fs = traces["sampling_rate"].values.astype(np.float64)
    t0 = traces["t_start"].values.astype(np.float64)
    mod = np.zeros(n_traces, np.int8)
    table = K.default_table()
    out = np.empty((n_traces, K.N_OUT))
    st = np.empty(n_traces, np.int8)
    fl = np.empty(n_traces, np.int32)

    def kernel(m=n_traces):
        K.measure_block(sig[:m], ns[:m], fs[:m], t0[:m], mod[:m], table, out[:m], st[:m], fl[:m])

    kernel(min(n_traces, 10))  # compile or load the cache
    ncsproc.measure(traces.isel(trace=slice(0, 10)), n_threads=1)

    say("timing numpy pass, kernel, measure (1 and 2 threads) ...")
    t_sum = _best(lambda: sig.sum(), repeat)
    t_kernel = _best(kernel, repeat)
    t_m1 = _best(lambda: ncsproc.measure(traces, n_threads=1, validate=False), repeat)
    t_m2 = _best(lambda: ncsproc.measure(traces, n_threads=2, validate=False), repeat)
    t_val = _best(lambda: ncsproc.measure(traces, n_threads=2), 1)

    k = min(twin_subset, n_traces)
    say(f"timing the numpy reference twin on {k} traces ...")
    t_twin = (
        _best(lambda: ref_measure_block(sig[:k], ns[:k], fs[:k], t0[:k], mod[:k], table), 1) / k
    )
    t_kernel_sub = _best(lambda: kernel(k), repeat) / k

    rows = [
        ("traces", n_traces, ""),
        ("samples per trace", n_samples, ""),
        ("numpy pass signal.sum()", t_sum * 1e3, "ms"),
        ("kernel only, 1 thread", t_kernel * 1e3, "ms"),
        ("kernel traces per second, 1 thread", n_traces / t_kernel, "traces/s"),
        ("kernel / numpy pass", t_kernel / t_sum, "x"),
        ("measure(), 1 thread, no validation", t_m1 * 1e3, "ms"),
        ("measure(), 2 threads, no validation", t_m2 * 1e3, "ms"),
        ("measure(), 2 threads, with validation", t_val * 1e3, "ms"),
        ("measure traces per second, 1 thread", n_traces / t_m1, "traces/s"),
        ("measure traces per second, 2 threads", n_traces / t_m2, "traces/s"),
        ("measure 1 thread / numpy pass", t_m1 / t_sum, "x"),
        ("scaling 1 -> 2 threads (measure)", t_m1 / t_m2, "x"),
        ("numpy twin per trace", t_twin * 1e6, "us"),
        ("speed-up over the numpy twin (per trace, 1 thread)", t_twin / (t_kernel / n_traces), "x"),
    ]
    from . import peer

    if peer.available() and peer_subset:
        kp = min(peer_subset, n_traces)
        say(f"timing the peer (mep-cmap-analyser, default 'bigoni' detector) on {kp} traces ...")
        _, _, t_peer = peer.peer_measure(traces.isel(trace=slice(0, kp)), "bigoni")
        rows += [
            ("peer per trace (onset + peak-to-peak)", t_peer * 1e6, "us"),
            ("speed-up over the peer (per trace, 1 thread)", t_peer / (t_kernel / n_traces), "x"),
        ]
    else:
        rows.append(("peer", float("nan"), "not installed (pip install .[bench])"))
    rows.append(("kernel per trace on the twin subset", t_kernel_sub * 1e6, "us"))
    return rows


def format_rows(rows) -> str:
    lines = ["| measure | value | unit |", "| --- | ---: | --- |"]
    for label, value, unit in rows:
        if isinstance(value, (int, np.integer)):
            v = f"{value:,d}"
        elif value != value:
            v = "n/a"
        elif abs(value) >= 1000:
            v = f"{value:,.0f}"
        else:
            v = f"{value:.3g}"
        lines.append(f"| {label} | {v} | {unit} |")
    return "\n".join(lines)
