"""Adapter to the peer package ``mep-cmap-analyser`` (optional; ``pip install .[bench]``).

Its default onset detector is ``detection.defaults.DEFAULT_ONSET_METHOD = "bigoni"`` (the
derivative-run detector of Bigoni et al. 2022); with its default ``onset_agreement=True`` the
pipeline reports the median across five detectors (``methods_median``: bigoni,
bigoni_walkback, rms_envelope, cusum, peak_fraction) where it exists. Both are run through the
package's own single dispatch point, ``detection.dispatch.dispatch_onset``, with the package's
default parameters. The package works in mV and ms; the adapter converts.

The window handed to it: from ``search_start`` (1 ms motor/F, 0.5 ms sensory after the stimulus;
its own 2 ms artefact floor still applies) to the end of the sweep. Its default amplitude gate
(``min_peak_amplitude = 0.05`` mV) rejects every SNAP; ``gate_uV`` scales it for sensory traces
so that the comparison measures the detector rather than the gate.
"""

from __future__ import annotations

import time

import numpy as np

METHODS = ("bigoni", "methods_median")


def available() -> bool:
    try:
        import mep_cmap.detection.dispatch  # noqa: F401
    except Exception:  # pragma: no cover - optional dependency
        return False
    return True


def peer_measure(
    traces,
    method: str = "bigoni",
    *,
    gate_mV: float | None = None,
    search_start_ms: float | None = None,
):
    """Run the peer's onset detector and peak-to-peak on every trace.

    Returns ``(onset_s, ptp_V, seconds_per_trace)``; onsets the peer rejects are NaN.
    """
    from mep_cmap.detection.dispatch import dispatch_onset
    from mep_cmap.detection.quantification import compute_ptp

    x = np.asarray(traces["signal"].values, dtype=np.float64) * 1e3  # mV
    fs = traces["sampling_rate"].values
    t0 = traces["t_start"].values
    ns = traces["n_samples"].values
    mod = traces["modality"].values.astype(str)
    onset = np.full(x.shape[0], np.nan)
    ptp = np.full(x.shape[0], np.nan)
    params = None if gate_mV is None else {"min_peak_amplitude": gate_mV}
    t = time.perf_counter()
    for i in range(x.shape[0]):
        sig = x[i, : ns[i]]
        pre_ms = max(0.0, -t0[i] * 1e3)
        end_ms = ns[i] / fs[i] * 1e3 - pre_ms
        start = search_start_ms
        if start is None:
            start = 0.5 if mod[i] == "sensory" else 1.0
        lat = dispatch_onset(
            sig,
            fs[i],
            params,
            pre_ms=pre_ms,
            search_start_ms=start,
            search_end_ms=end_ms,
            method=method,
        )
        if lat is not None:
            onset[i] = lat * 1e-3 + 0.0
        i0 = int(round((pre_ms + start) * fs[i] / 1e3))
        ptp[i] = compute_ptp(sig, i0, ns[i]) * 1e-3
    dt = (time.perf_counter() - t) / max(x.shape[0], 1)
    return onset, ptp, dt
