"""Shared fixtures: small factory functions (xclim style) so each test builds what it needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data_samples"


@pytest.fixture
def make_traces():
    """Return a factory of small valid trace sets (two sites of one median motor study)."""
    from ncsproc.schema import make_trace_set

    def factory(n_sites: int = 2, width: int = 400, exam_id: str = "E1", dtype="float64", **kw):
        rng = np.random.default_rng(0)
        signals = [rng.normal(0, 1e-5, width - 10 * i) for i in range(n_sites)]
        sites = ["wrist", "elbow", "axilla", "erb"][:n_sites]
        args = dict(
            sampling_rate=20000.0,
            t_start=0.0,
            exam_id=exam_id,
            subject_id="S1",
            study="L_median_motor",
            nerve="median",
            side="L",
            modality="motor",
            stim_site=sites,
            record_site="APB",
            distance=[0.07, 0.30, 0.45, 0.60][:n_sites],
            stim_duration=2e-4,
            dtype=dtype,
        )
        args.update(kw)
        return make_trace_set(signals, **args)

    return factory
