"""Reviewed values (the ``reviewed`` column and ``reviews.csv`` of ``extract --overrides``)
and tables that disagree with the stored samples, on a modified copy of the sample run."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from .helpers import figures_of, make_legacy, qc_cells, read_table, section, trace_ids_of

REVIEWED = "EX0001/L_median_motor/0"
TAMPERED = "EX0001/L_ulnar_motor/1"


@pytest.fixture
def modified(sample_report, copy_results, tmp_path):
    """The sample run with one onset reviewed (+0.4 ms, end kept) and one peak changed by
    hand without a review; and its report."""
    return _modified(sample_report, copy_results, tmp_path, legacy=False)


@pytest.fixture
def modified_legacy(sample_report, copy_results, tmp_path):
    """:func:`modified` on results written before responses.csv had its extension columns
    (the report re-measures them)."""
    return _modified(sample_report, copy_results, tmp_path, legacy=True)


def _modified(sample_report, copy_results, tmp_path, legacy):
    from ncsproc.report import build_report

    _, run = sample_report
    results = copy_results(run)
    if legacy:
        make_legacy(results)
    responses = read_table(results / "responses.csv")
    ids = trace_ids_of(results / "cohort.h5")
    tid = [
        ids[(r["exam_id"], r["source_file"], r["study"], int(r["record"]))]
        for r in responses.to_dict("records")
    ]
    a, b = tid.index(REVIEWED), tid.index(TAMPERED)
    onset, total = float(responses.at[a, "onset_ms"]), float(responses.at[a, "total_duration_ms"])
    neg = float(responses.at[a, "neg_duration_ms"])
    responses.at[a, "onset_ms"] = f"{onset + 0.4:.3f}"
    responses.at[a, "total_duration_ms"] = f"{total - 0.4:.3f}"
    responses.at[a, "neg_duration_ms"] = f"{neg - 0.4:.3f}"
    responses["reviewed"] = ""
    responses.at[a, "reviewed"] = "onset"
    peak_b = float(responses.at[b, "peak_ms"])
    responses.at[b, "peak_ms"] = f"{peak_b + 0.3:.3f}"
    responses.to_csv(results / "responses.csv", index=False)
    common = {
        "trace_id": REVIEWED,
        "exam_id": "EX0001",
        "marker": "onset",
        "units": "ms",
        "reviewer": "Dr <b>Who</b>",
        "reason": "onset in the noise",
        "line": "2",
    }
    pd.DataFrame(
        [
            {
                **common,
                "variable": "onset_latency",
                "column": "onset_ms",
                "original": onset,
                "reviewed": onset + 0.4,
            },
            {
                **common,
                "variable": "total_duration",
                "column": "total_duration_ms",
                "original": total,
                "reviewed": total - 0.4,
            },
        ]
    ).to_csv(results / "reviews.csv", index=False)
    report = build_report(results, tmp_path / "report")
    flags = dict(
        zip(
            tid,
            (responses["qc_flags"] if "qc_flags" in responses else [""] * len(tid)),
            strict=True,
        )
    )
    return report, {
        "onset": onset,
        "end": round(onset + total, 3),
        "new_onset": onset + 0.4,
        "peak_b": peak_b + 0.3,
        "flags": {k: v or "—" for k, v in flags.items()},
    }


def test_reviewed_marker_is_drawn_with_its_original(modified):
    report, t = modified
    markers = {
        (m["data-trace"], m["data-marker"], "ghost" in m["classes"]): (fig, m)
        for fig in figures_of(report.pages["EX0001"])
        for m in fig.markers
    }
    fig, m = markers[(REVIEWED, "onset", False)]
    assert "reviewed" in m["classes"]
    assert fig.time_of(m["x"]) == pytest.approx(t["new_onset"], abs=1e-3)
    fig, g = markers[(REVIEWED, "onset", True)]
    assert fig.time_of(g["x"]) == pytest.approx(t["onset"], abs=1e-3)
    assert "data-line" not in g  # the ghost is not a control
    fig, e = markers[(REVIEWED, "end", False)]
    assert "reviewed" not in e["classes"]
    assert fig.time_of(e["x"]) == pytest.approx(t["end"], abs=1e-3)
    assert not [k for k in markers if k[2] and k[0] != REVIEWED]
    html = report.pages["EX0001"].read_text(encoding="utf-8")
    assert 'class="badge reviewed"' in html
    reviews = section(html, "reviews", "failures")
    assert "Dr &lt;b&gt;Who&lt;/b&gt;" in reviews and "onset in the noise" in reviews
    index = report.index.read_text(encoding="utf-8")
    assert index.count('data-sort="1">1</td>') >= 1  # one reviewed trace in EX0001's row


def test_table_flags_and_baselines_are_used_as_written(modified):
    """With responses.csv's QC flags and baselines, nothing is re-measured: a value edited by
    hand is drawn as the table says, with the table's baseline and flags, and no warning."""
    report, t = modified
    figs = figures_of(report.pages["EX0001"])
    ((fig, m),) = [
        (f, m)
        for f in figs
        for m in f.markers
        if m["data-trace"] == TAMPERED and m["data-marker"] == "peak"
    ]
    assert fig.time_of(m["x"]) == pytest.approx(t["peak_b"], abs=1e-3)
    assert TAMPERED in fig.bases
    html = report.pages["EX0001"].read_text(encoding="utf-8")
    assert "re-measurement" not in section(html, "traces", "failures")
    assert not report.notes
    shown = qc_cells(report.pages["EX0001"])
    assert shown[REVIEWED] == t["flags"][REVIEWED] and shown[TAMPERED] == t["flags"][TAMPERED]


def test_tables_that_disagree_with_the_samples_are_reported(modified_legacy):
    """Older results (re-measured): the markers are the tables' (even when wrong); no QC flag
    or baseline is taken from a re-measurement that disagrees, and the pages say so."""
    report, t = modified_legacy
    figs = figures_of(report.pages["EX0001"])
    peak = [
        (f, m)
        for f in figs
        for m in f.markers
        if m["data-trace"] == TAMPERED and m["data-marker"] == "peak"
    ]
    ((fig, m),) = peak
    assert fig.time_of(m["x"]) == pytest.approx(t["peak_b"], abs=1e-3)
    assert TAMPERED not in fig.bases  # no baseline drawn for it
    html = report.pages["EX0001"].read_text(encoding="utf-8")
    assert "re-measurement of the stored samples with the run's parameters differs" in html
    assert "peak_ms" in html
    assert any("differs from the tables" in n for n in report.notes)
    # the reviewed trace is not compared (its values come from the review): flags kept
    row = html[html.index(f'data-trace="{REVIEWED}"><td>') :]
    row = row[: row.index("</tr>")]
    assert "artefact_subtracted" in row or "baseline" in row


def test_reviews_table_of_extract_overrides():
    """reviews.csv as ``extract --overrides`` writes it: one row per recomputed value, the
    markers behind it ``;``-joined, ``original`` in the unit of ``column``."""
    from ncsproc.report.data import TraceView, attach_reviews

    rows = [
        ("T/0", "onset", "onset_latency", "ms", 8.039, 7.5, "onset_ms"),
        ("T/0", "onset", "negative_duration", "ms", 4.938, 5.478, "neg_duration_ms"),
        ("T/0", "end;onset", "total_duration", "ms", 4.938, 13.5, "total_duration_ms"),
        ("T/0", "end;onset", "negative_area", "uVms", 15552.35, 15553.5, "neg_area_uvms"),
        ("F/4", "f_onset", "f_latency", "ms", 36.731, 30.0, "f_latency_ms"),
        ("F/3", "f_onset", "f_latency", "ms", 36.435, float("nan"), "f_latency_ms"),
    ]
    reviews = pd.DataFrame(
        rows, columns=["trace_id", "marker", "variable", "units", "original", "reviewed", "column"]
    ).astype(str)
    views = [TraceView(row={}, trace_id=t, markers={}) for t in ("T/0", "F/4", "F/3", "X/1")]
    attach_reviews(views, reviews)
    t0, f4, f3, x1 = views
    assert t0.reviewed == {"onset", "end"}
    assert t0.originals == pytest.approx({"onset": 8.039, "end": 8.039 + 4.938})
    assert f4.reviewed == {"f_onset"} and f4.originals == {"f_onset": 36.731}
    assert f3.originals == {"f_onset": 36.435}  # F wave removed: the original is ghosted
    assert not x1.reviewed and not x1.originals


def test_reviews_table_shows_units_statuses_and_removed_values():
    """A status row (``none`` on a trace) shows the statuses before and after; a value a
    review removed shows ``none``; units in clinical spelling."""
    from ncsproc.report.build import _reviews_table

    reviews = pd.DataFrame(
        [
            {
                "trace_id": "E/S/0",
                "marker": "peak",
                "variable": "status",
                "units": "",
                "original": "",
                "reviewed": "",
                "original_status": "ok",
                "reviewed_status": "no_response",
                "reviewer": "Dr A",
                "reason": "artefact",
                "line": "4",
            },
            {
                "trace_id": "E/F/3",
                "marker": "f_onset",
                "variable": "f_latency",
                "units": "ms",
                "original": "36.435",
                "reviewed": "",
                "original_status": "ok",
                "reviewed_status": "ok",
                "reviewer": "Dr A",
                "reason": "repeater",
                "line": "5",
            },
            {
                "trace_id": "E/M/0",
                "marker": "onset",
                "variable": "negative_area",
                "units": "uVms",
                "original": "17597.860",
                "reviewed": "17598.470",
                "original_status": "ok",
                "reviewed_status": "ok",
                "reviewer": "Dr A",
                "reason": "noise",
                "line": "6",
            },
        ]
    )
    html = _reviews_table(reviews)
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", html)]
    rows = [cells[i : i + 9] for i in range(0, len(cells), 9)]
    assert rows[0][2:6] == ["status", "", "ok", "no_response"]
    assert rows[1][2:6] == ["f_latency", "ms", "36.435", "none"]
    assert rows[2][3:6] == ["µV·ms", "17597.860", "17598.470"] and rows[2][8] == "6"


def test_pattern_and_nerve_values_before_the_review(sample_report, copy_results, tmp_path):
    """exams.csv and nerves.csv of ``extract --overrides`` (reviewed_columns, original_*): the
    pattern and a level before the review beside the reviewed ones on the exam page; a changed
    nerve value with "(was ...)" and its tooltip, a value the machine did not have as "none"."""
    from ncsproc.report import build_report

    _, run = sample_report
    results = copy_results(run)
    exams = read_table(results / "exams.csv")
    exams["reviewed_columns"], exams["original_pattern"] = "", ""
    exams["original_efns_pns_2010"], exams["original_ean_pns_2021"] = "", ""
    first = exams["exam_id"] == "EX0001"
    old_pattern = (
        "distal_demyelinating"
        if exams.loc[first, "pattern"].iloc[0] != "distal_demyelinating"
        else "axonal"
    )
    exams.loc[first, ["reviewed_columns", "original_pattern", "original_efns_pns_2010"]] = [
        "pattern;efns_pns_2010",
        old_pattern,
        "definite",
    ]
    exams.to_csv(results / "exams.csv", index=False)
    nerves = read_table(results / "nerves.csv")
    nerves["reviewed_columns"], nerves["original_dml_ms"], nerves["original_cv_m_s"] = "", "", ""
    row = (nerves["exam_id"] == "EX0001") & (nerves["study"] == "L_median_motor")
    nerves.loc[row, ["reviewed_columns", "original_dml_ms"]] = ["dml_ms;cv_m_s", "2.500"]
    nerves.to_csv(results / "nerves.csv", index=False)
    report = build_report(results, tmp_path / "report")
    html = report.pages["EX0001"].read_text(encoding="utf-8")
    top = html[: html.index('id="pattern"')]
    assert top.count("(before review: ") == 2
    assert old_pattern.replace("_", " ") in top.split("(before review: ")[1]
    assert ">definite<" in top.split("(before review: ")[2]
    head = section(html, "pattern", "criteria").split("</h2>")[0]
    assert "(before review: " in head and old_pattern.replace("_", " ") in head
    table = section(html, "nerves", "segments")
    median = table[table.index("<tr><td>L_median_motor") :]
    median = median[: median.index("</tr>")]
    assert "(was 2.500)" in median and "before review: 2.500" in median
    assert "(was none)" in median  # cv_m_s changed, the machine had no CV
    others = table.replace(median, "")
    assert "(was " not in others
    other = report.pages["EX0002"].read_text(encoding="utf-8")
    assert "before review" not in other and "(was " not in section(other, "nerves", "segments")
