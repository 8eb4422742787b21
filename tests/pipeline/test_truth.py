"""End to end on simulated cohorts: values against the simulator's exact truth, and the
pipeline against the plain library path (read -> measure -> features) it parallelises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ncsproc.tables import DEFAULT_TABLES_VERSION, from_layout, layout_table, read_tables_version

from .helpers import REPO, run_cli

# Tolerances. The measures are validated on single traces in tests/kernels (motor onset median
# error 0.02 ms, p95 0.08 ms; amplitude within 2 %) and the features in tests/features (DML
# within 2 %; CV and TLI move by up to ~5 % because proximal onsets of dispersed CMAPs are off
# by 0.1-0.5 ms, formats/features.md). The cohort here is fixed (seed 11), so these bounds are
# deterministic checks with a margin, not statistics: a regression of the pipeline (wrong
# unit, wrong trace, wrong site, wrong exam) moves values by far more.
DML_MAX, DML_MEDIAN = 0.05, 0.015
CV_MAX, CV_MEDIAN = 0.06, 0.02
TLI_MAX, TLI_MEDIAN = 0.06, 0.02
AMP_MAX = 0.02
ONSET_MEDIAN_MS, ONSET_P95_MS = 0.05, 0.30


def _read(path):
    """A table of a results folder in layout 1 (the uV columns the truth is compared with)."""
    return from_layout(pd.read_csv(path), read_tables_version(Path(path).parent))


def test_values_match_ground_truth(cohort, reference_run):
    out, result = reference_run
    assert result.exit_status == 0 and result.n_exams == 8 and result.n_errors == 0
    nerves = _read(out / "nerves.csv")
    truth = _read(cohort / "truth_studies.csv").add_suffix("_t")
    m = nerves.merge(truth, left_on=["exam_id", "study"], right_on=["exam_id_t", "study_t"])
    assert len(m) == len(nerves) == len(truth)
    motor = m[m["modality"] == "motor"]
    assert len(motor) == 32 and motor["dml_ms"].notna().all()
    for col, tcol, worst, typical in (
        # issue 14: against the truths from the measurable onsets at each site
        ("dml_ms", "dml_measurable_ms_t", DML_MAX, DML_MEDIAN),
        ("cv_m_s", "cv_measurable_m_s_t", CV_MAX, CV_MEDIAN),
        ("tli", "tli_measurable_t", TLI_MAX, TLI_MEDIAN),
    ):
        rel = ((motor[col] - motor[tcol]) / motor[tcol]).abs()
        assert rel.notna().all(), col
        assert rel.max() <= worst, (col, rel.max())
        assert rel.median() <= typical, (col, rel.median())
    amp = (
        (motor["distal_amp_uv"] - motor["distal_amplitude_uv_t"]) / motor["distal_amplitude_uv_t"]
    ).abs()
    assert amp.max() <= AMP_MAX
    # units: ms, uV, m/s in the tables (a factor of 1000 would be caught above); distances mm
    assert motor["dml_ms"].between(1.5, 20).all()
    assert motor["cv_m_s"].between(10, 90).all()

    exams = _read(out / "exams.csv").merge(
        _read(cohort / "truth_exams.csv"), on="exam_id", suffixes=("", "_t")
    )
    assert (exams["pattern"] == exams["pattern_t"]).all(), exams[
        ["exam_id", "pattern", "pattern_t"]
    ]

    responses = _read(out / "responses.csv")
    traces = _read(cohort / "truth_traces.csv")
    responses["trace"] = (
        responses["exam_id"] + "/" + responses["study"] + "/" + responses["record"].astype(str)
    )
    r = responses.merge(traces, on="trace", suffixes=("", "_t"))
    assert len(r) == len(responses) == len(traces) == result.n_traces
    ok = r[(r["status"] == "ok") & r["has_response"] & (r["modality"] == "motor")]
    err = (ok["onset_ms"] - ok["measurable_onset_latency_ms"]).abs()  # issue 14 truth
    assert err.median() <= ONSET_MEDIAN_MS and err.quantile(0.95) <= ONSET_P95_MS
    segments = _read(out / "segments.csv")
    assert segments["distance_mm"].between(50, 600).all()


def test_pipeline_equals_the_library_path(cohort, reference_run):
    """Same numbers, same bytes as ncsproc.read -> concat -> measure -> features.tables ->
    write_csv on the whole cohort at once (independent concatenation and no batching)."""
    import ncsproc
    from ncsproc import features
    from ncsproc.schema import concat_trace_sets
    from ncsproc.tables import responses_table, write_csv

    out, _ = reference_run
    sets = []
    for f in sorted(cohort.rglob("*.edf")):
        ds = ncsproc.read(f)
        rel = f.relative_to(cohort).as_posix()
        sets.append(ds.assign_coords(source_file=("trace", [rel] * ds.sizes["trace"])))
    m = ncsproc.measure(concat_trace_sets(sets))
    t = features.tables(m)
    t["responses"] = responses_table(m, extended=True)
    for name in ("responses", "segments", "nerves", "criteria", "sites", "exams"):
        path = out.parent / f"ref_{name}.csv"
        table = layout_table(t[name], DEFAULT_TABLES_VERSION)  # what extract writes
        write_csv(table, path, features.csv_decimals(table))
        expected = pd.read_csv(path, dtype=str, keep_default_na=False)
        got = pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)
        if name == "exams":  # the pipeline appends sex, n_files, n_files_failed, n_traces
            assert list(got.columns[: len(expected.columns)]) == list(expected.columns)
            got = got[expected.columns]
            assert (pd.read_csv(out / "exams.csv")["n_files"] == 9).all()
        else:
            assert path.read_bytes() == (out / f"{name}.csv").read_bytes(), name
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_cohort_h5_holds_the_tables_and_the_traces(cohort, reference_run):
    import ncsproc
    from ncsproc.pipeline import open_cohort_traces, read_cohort_table

    out, result = reference_run
    for name in ("responses", "nerves", "exams", "segments", "errors"):
        h5 = read_cohort_table(out / "cohort.h5", name)
        csv = pd.read_csv(out / f"{name}.csv")
        text = pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)
        assert list(h5.columns) == list(csv.columns) and len(h5) == len(csv)
        for col in csv.columns:
            if h5[col].dtype.kind == "f":  # the CSV's rounded values, exactly
                np.testing.assert_array_equal(h5[col].to_numpy(float), csv[col].to_numpy(float))
            elif h5[col].dtype.kind in "iub":
                assert (h5[col].astype(str) == text[col]).all(), (name, col)
            else:
                assert (h5[col].astype(str).to_numpy() == text[col].to_numpy()).all(), (name, col)
    import pyarrow.parquet as pq  # in the test extra

    p = pq.read_table(out / "nerves.parquet").to_pandas()
    pd.testing.assert_frame_equal(
        p[["exam_id", "study", "dml_ms", "tli"]],
        pd.read_csv(out / "nerves.csv")[["exam_id", "study", "dml_ms", "tli"]],
        check_dtype=False,
    )
    traces = open_cohort_traces(out / "cohort.h5")  # validated trace set, in exam order
    assert traces.sizes["trace"] == result.n_traces
    again = ncsproc.read(out / "cohort.h5")
    assert again.sizes["trace"] == result.n_traces
    one = ncsproc.read(cohort / "EX0003" / "L_ulnar_motor.edf")
    sel = traces.where(traces["source_file"] == "EX0003/L_ulnar_motor.edf", drop=True)
    assert sel.sizes["trace"] == one.sizes["trace"]
    w = one.sizes["sample"]
    np.testing.assert_array_equal(sel["signal"].values[:, :w], one["signal"].values)
    assert np.isnan(sel["signal"].values[:, w:]).all()
    assert list(traces["exam_id"].values) == sorted(traces["exam_id"].values)


def test_sample_cohort_main_job(tmp_path):
    """The README's main job: data_samples/simulated, exit 0, patterns of truth_exams.csv."""
    samples = REPO / "data_samples" / "simulated"
    proc = run_cli(
        [
            "extract",
            samples,
            "--out",
            tmp_path / "results",
            "--scheduler",
            "threads",
            "--workers",
            "2",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 exam(s)" in proc.stderr and "0 failure(s)" in proc.stderr
    exams = pd.read_csv(tmp_path / "results" / "exams.csv")
    truth = pd.read_csv(samples / "truth_exams.csv")
    assert exams["pattern"].tolist() == truth["pattern"].tolist()
    header = "source_file,error,message,exam_id,stage\n"
    assert (tmp_path / "results" / "errors.csv").read_text() == header
