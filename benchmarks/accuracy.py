"""Accuracy of ncsproc and of the peer on simulated traces with exact truth.

``python -m benchmarks --accuracy`` prints the table published in ``formats/measures.md``.
The sets are those of the issue's targets (no pre-trigger baseline, stimulus artefact on):

* motor: CMAPs 1-15 mV, noise 2-10 uV RMS, 20 kHz;
* sensory: SNAPs 3-60 uV, noise 0.2-0.5 uV RMS (30 % with an initial positivity);
* noise: the simulator's pure-noise traces (1-20 uV);
* fwave: M wave + F wave (80 %).
"""

from __future__ import annotations

import numpy as np

FS = 20000.0


def _q(v, p):
    v = np.asarray(v, dtype=float)
    return float(np.percentile(v, p)) if v.size else float("nan")


def onset_rows(name, truth_onset, est_onset):
    """(median abs error, p95 abs error, missed) in ms; a missed onset counts as an error of 1 s."""
    miss = np.isnan(est_onset)
    e = np.abs(np.where(miss, truth_onset + 1.0, est_onset) - truth_onset) * 1e3
    return name, _q(e, 50), _q(e, 95), int(miss.sum())


def run(n=400, seed=2024, peer_n=200, quiet=False):
    """Return a list of table rows ``(set, method, metric, value)``."""
    import ncsproc
    from ncsproc.simulate import response_set

    from . import peer as P

    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    rows = []
    sets = {
        "motor": response_set(
            "motor", n, seed=seed, amplitude=(1e-3, 15e-3), noise_rms=(2e-6, 10e-6)
        ),
        "sensory": response_set(
            "sensory", n, seed=seed, amplitude=(3e-6, 60e-6), noise_rms=(0.2e-6, 0.5e-6)
        ),
    }
    for kind, (ts, truth) in sets.items():
        say(f"{kind}: measuring {n} traces ...")
        res = ncsproc.measure(ts)
        t_on = truth["onset_latency"].values
        a = truth["amplitude"].values
        name = f"{kind} (n={n})"
        _, med, p95, miss = onset_rows(name, t_on, res["onset_latency"].values)
        rows += [
            (name, "ncsproc", "onset median abs error (ms)", med),
            (name, "ncsproc", "onset p95 abs error (ms)", p95),
            (name, "ncsproc", "no onset (count)", miss),
        ]
        if kind == "sensory":
            plain = ~truth["initial_positivity"].values
            _, med2, p952, _ = onset_rows(name, t_on[plain], res["onset_latency"].values[plain])
            rows += [(name, "ncsproc", "onset p95 abs error without initial positivity (ms)", p952)]
            rows += [
                (name, "ncsproc", "onset median abs error without initial positivity (ms)", med2)
            ]
        pk = np.abs(res["peak_latency"].values - truth["peak_latency"].values) * FS
        rows += [
            (name, "ncsproc", "peak latency within 1 sample (%)", 100 * np.mean(pk <= 1)),
            (name, "ncsproc", "peak latency max abs error (samples)", float(np.nanmax(pk))),
        ]
        ae = np.abs(res["amplitude"].values - a)
        if kind == "motor":
            rows.append(
                (name, "ncsproc", "amplitude within 2 % (%)", 100 * np.mean(ae <= 0.02 * a))
            )
            rows.append(
                (name, "ncsproc", "amplitude max abs error (%)", 100 * float(np.nanmax(ae / a)))
            )
        else:
            ok = ae <= np.maximum(0.05 * a, 0.3e-6)
            rows.append(
                (name, "ncsproc", "amplitude within max(5 %, 0.3 uV) (%)", 100 * np.mean(ok))
            )
        for var, unit, scale in (("negative_duration", "ms", 1e3), ("total_duration", "ms", 1e3)):
            e = np.abs(res[var].values - truth[var].values) * scale
            rows.append(
                (name, "ncsproc", f"{var} median abs error ({unit})", _q(e[np.isfinite(e)], 50))
            )
        e = np.abs(res["negative_area"].values / truth["negative_area"].values - 1) * 100
        rows.append(
            (name, "ncsproc", "negative_area median abs error (%)", _q(e[np.isfinite(e)], 50))
        )
        e = np.abs(res["peak_to_peak"].values / truth["peak_to_peak"].values - 1) * 100
        rows.append((name, "ncsproc", "peak_to_peak median abs error (%)", _q(e, 50)))
        rows.append(
            (
                name,
                "ncsproc",
                "called no_response (count)",
                int((res["status"].values == "no_response").sum()),
            )
        )
        if P.available():
            sub = slice(0, min(peer_n, n))
            pname = f"{kind} (first {min(peer_n, n)})"
            ours = onset_rows(pname, t_on[sub], res["onset_latency"].values[sub])
            rows += [
                (pname, "ncsproc", "onset median abs error (ms)", ours[1]),
                (pname, "ncsproc", "onset p95 abs error (ms)", ours[2]),
            ]
            gates = [None] if kind == "motor" else [None, 1e-3]
            for method in P.METHODS:
                for gate in gates:
                    label = f"peer {method}" + ("" if gate is None else " (gate 1 uV)")
                    say(f"{kind}: {label} on {min(peer_n, n)} traces ...")
                    on, ptp, _ = P.peer_measure(ts.isel(trace=sub), method, gate_mV=gate)
                    r = onset_rows(pname, t_on[sub], on)
                    rows += [
                        (pname, label, "onset median abs error (ms)", r[1]),
                        (pname, label, "onset p95 abs error (ms)", r[2]),
                        (pname, label, "no onset (count)", r[3]),
                    ]
                    if gate is None or kind == "sensory":
                        pe = np.abs(ptp / truth["peak_to_peak"].values[sub] - 1) * 100
                        rows.append((pname, label, "peak_to_peak median abs error (%)", _q(pe, 50)))
            pe = np.abs(res["peak_to_peak"].values[sub] / truth["peak_to_peak"].values[sub] - 1)
            rows.append((pname, "ncsproc", "peak_to_peak median abs error (%)", 100 * _q(pe, 50)))

    say("noise and F-wave sets ...")
    ts, _ = response_set("noise", 1000, seed=seed + 1)
    res = ncsproc.measure(ts)
    rows.append(
        (
            "noise (n=1000)",
            "ncsproc",
            "called no_response (%)",
            100 * np.mean(res["status"].values == "no_response"),
        )
    )
    if P.available():
        on, _, _ = P.peer_measure(ts.isel(trace=slice(0, peer_n)), "bigoni")
        rows.append(
            (f"noise (first {peer_n})", "peer bigoni", "no onset (%)", 100 * np.mean(np.isnan(on)))
        )
    ts, truth = response_set("fwave", n, seed=seed + 2)
    res = ncsproc.measure(ts)
    has = np.isfinite(truth["f_latency"].values)
    got = np.isfinite(res["f_latency"].values)
    e = np.abs(res["f_latency"].values - truth["f_latency"].values)[has & got] * 1e3
    name = f"fwave (n={n})"
    rows += [
        (name, "ncsproc", "F found when present (%)", 100 * np.mean(got[has])),
        (name, "ncsproc", "F reported when absent (%)", 100 * np.mean(got[~has])),
        (name, "ncsproc", "f_latency median abs error (ms)", _q(e, 50)),
        (name, "ncsproc", "f_latency p90 abs error (ms)", _q(e, 90)),
    ]
    return rows


def format_rows(rows) -> str:
    lines = ["| set | method | metric | value |", "| --- | --- | --- | ---: |"]
    for s, m, k, v in rows:
        lines.append(
            f"| {s} | {m} | {k} | {v:.3g} |"
            if isinstance(v, float)
            else f"| {s} | {m} | {k} | {v} |"
        )
    return "\n".join(lines)
