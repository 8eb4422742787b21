"""The extension columns of responses.csv (``trace_id``, ``qc_flags``, ``baseline_uv``,
``noise_uv``, ``artefact_end_ms``): after the contract's, equal to the trace set and to
``ncsproc.measure`` of the stored traces."""

from __future__ import annotations

import numpy as np
import pandas as pd

EXTENSION = ["trace_id", "qc_flags", "baseline_uv", "noise_uv", "artefact_end_ms"]


def _text(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_extension_columns_follow_the_contract(reference_run):
    from ncsproc.pipeline import read_cohort_table
    from ncsproc.pipeline.outputs import CONTRACT_COLUMNS

    out, _ = reference_run
    from ncsproc.tables import DEFAULT_TABLES_VERSION, layout_columns

    # the contract's columns in the default layout (2: the motor amplitudes' mV columns beside
    # the uV ones; test_tables_layout checks layout 1 is the contract's exactly)
    contract = layout_columns(CONTRACT_COLUMNS["responses"], DEFAULT_TABLES_VERSION)
    header = (out / "responses.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header == contract + EXTENSION
    assert list(read_cohort_table(out / "cohort.h5", "responses").columns) == header
    import pyarrow.parquet as pq  # in the test extra

    assert pq.read_schema(out / "responses.parquet").names == header


def test_trace_ids_are_the_sites_traces(reference_run):
    out, result = reference_run
    responses = _text(out / "responses.csv")
    assert responses["trace_id"].is_unique and (responses["trace_id"] != "").all()
    assert len(responses) == result.n_traces
    sites = _text(out / "sites.csv")
    used = sites[sites["trace"] != ""]
    assert len(used) > 0
    by_id = responses.set_index("trace_id")
    rows = by_id.loc[used["trace"]]
    for col in ("exam_id", "study", "stim_site"):
        assert (rows[col].to_numpy() == used[col].to_numpy()).all(), col
    # the sites' measures are those of the same trace
    for col in ("onset_ms", "amplitude_uv"):
        if col in used:
            assert (rows[col].to_numpy() == used[col].to_numpy()).all(), col


def test_qc_flags_and_diagnostics_equal_measure(reference_run):
    """Decoded independently from the bit field of ``ncsproc.measure`` on cohort.h5's traces
    (the run used the default settings)."""
    import ncsproc
    from ncsproc.kernels import FLAG_NAMES
    from ncsproc.storage import read_native

    out, _ = reference_run
    traces = read_native(out / "cohort.h5")
    m = ncsproc.measure(traces)
    bits = m["qc_flags"].values.astype(int)
    names = [";".join(FLAG_NAMES[mask][0] for mask in sorted(FLAG_NAMES) if b & mask) for b in bits]
    expected = dict(zip(m["trace"].values.astype(str), names, strict=True))
    responses = _text(out / "responses.csv")
    got = dict(zip(responses["trace_id"], responses["qc_flags"], strict=True))
    assert got == expected
    assert any("artefact_subtracted" in v for v in got.values())
    order = {mask: FLAG_NAMES[mask][0] for mask in FLAG_NAMES}
    assert list(order) == sorted(order)  # bit order
    at = pd.Index(responses["trace_id"]).get_indexer(m["trace"].values.astype(str))
    assert (at >= 0).all()
    for col, var, factor, d in (
        ("baseline_uv", "baseline_level", 1e6, 2),
        ("noise_uv", "noise_sd", 1e6, 2),
        ("artefact_end_ms", "artefact_end", 1e3, 3),
    ):
        want = [
            ("" if not np.isfinite(v) else f"{np.round(v * factor, d):.{d}f}")
            for v in m[var].values.astype(float)
        ]
        assert list(responses[col].to_numpy()[at]) == want, col
