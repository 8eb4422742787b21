"""Fixtures of the kernel tests: hand-made waveforms, kernel runners, the repo on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for ``benchmarks.peer`` (the peer adapter)

FS = 20000.0


def pulse(
    t, onset, amp, *, t_neg=4e-3, t_pos=6e-3, pos_ratio=0.4, init=0.0, t_init=0.3e-3, power=2.5
):
    """Compact-support CMAP/SNAP-like response (V) at times ``t`` (s).

    Optional initial positivity of height ``init * amp`` and length ``t_init`` starting at
    ``onset``; then a negative lobe ``-amp sin^power`` of length ``t_neg`` (its minimum, exactly
    ``-amp``, at its middle) and a positive lobe ``pos_ratio * amp sin^power`` of length
    ``t_pos``. Zero before ``onset`` and after the last lobe; the start grows like
    ``(t - onset)^power`` (2.5 by default, the motor ``edge_power``).
    """
    t = np.asarray(t, dtype=float)
    x = np.zeros_like(t)
    s = onset
    if init > 0:
        u = (t - s) / t_init
        m = (u >= 0) & (u <= 1)
        x[m] += init * amp * np.abs(np.sin(np.pi * u[m])) ** power
        s += t_init
    u = (t - s) / t_neg
    m = (u >= 0) & (u <= 1)
    x[m] -= amp * np.abs(np.sin(np.pi * u[m])) ** power
    s += t_neg
    u = (t - s) / t_pos
    m = (u >= 0) & (u <= 1)
    x[m] += pos_ratio * amp * np.abs(np.sin(np.pi * u[m])) ** power
    return x


def measurable_onset(onset, amp, fraction=0.01, **shape):
    """Measurable onset of :func:`pulse` (s): where it first departs from 0 by ``fraction`` of
    its amplitude (issue 14's truth), found on a 1 MHz grid."""
    t = onset + np.arange(0, 20e-3, 1e-6)
    x = np.abs(pulse(t, onset, amp, **shape))
    return float(t[np.argmax(x >= fraction * amp)])


def artefact(t, amp, tau):
    """Stimulus artefact ``amp (1 - t/tau) exp(-t/tau)`` for t >= 0."""
    t = np.asarray(t, dtype=float)
    tt = np.maximum(t, 0.0) / tau
    return np.where(t >= 0, amp * (1 - tt) * np.exp(-tt), 0.0)


def make_set(signals, *, modality="motor", t_start=0.0, fs=FS, dtype="float64", n_samples=None):
    """A valid trace set around 2-D ``signals`` (V)."""
    from ncsproc.schema import make_trace_set

    signals = np.atleast_2d(np.asarray(signals))
    study = {"motor": "L_median_motor", "sensory": "L_median_sensory", "fwave": "L_ulnar_fwave"}
    return make_trace_set(
        signals,
        sampling_rate=fs,
        t_start=t_start,
        exam_id="T",
        study=study[modality],
        nerve="median",
        side="L",
        modality=modality,
        stim_site="wrist",
        record_site="APB",
        dtype=dtype,
        n_samples=n_samples,
    )


def run_block(signal, *, modality=0, fs=FS, t_start=0.0, n_samples=None, table=None):
    """Run the Numba block kernel directly on a 2-D array; returns ``(out, status, flags)``."""
    import ncsproc.kernels as K

    signal = np.atleast_2d(signal)
    m = signal.shape[0]
    ns = (
        np.full(m, signal.shape[1], np.int64)
        if n_samples is None
        else np.asarray(n_samples, np.int64)
    )
    out = np.empty((m, K.N_OUT))
    st = np.empty(m, np.int8)
    fl = np.empty(m, np.int32)
    K.measure_block(
        signal,
        ns,
        np.full(m, fs),
        np.full(m, float(t_start)),
        np.full(m, modality, np.int8),
        K.default_table() if table is None else table,
        out,
        st,
        fl,
    )
    return out, st, fl


def run_ref(signal, *, modality=0, fs=FS, t_start=0.0, n_samples=None, table=None):
    """The numpy twin of :func:`run_block`."""
    import ncsproc.kernels as K
    from ncsproc.kernels._reference import ref_measure_block

    signal = np.atleast_2d(signal)
    m = signal.shape[0]
    ns = (
        np.full(m, signal.shape[1], np.int64)
        if n_samples is None
        else np.asarray(n_samples, np.int64)
    )
    return ref_measure_block(
        signal,
        ns,
        np.full(m, fs),
        np.full(m, float(t_start)),
        np.full(m, modality, np.int8),
        K.default_table() if table is None else table,
    )


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
