"""The reviewer's round trip, as a user does it: copy ready lines from an exam page, correct
the time and fill in reviewer and reason in ``overrides.csv``, rerun ``extract --overrides``,
rebuild the report, and find the reviewed values beside the originals. Every expected number is
read from the tables of the runs (the kernels may change), never hard-coded."""

from __future__ import annotations

import csv
import io
import re
import shutil
from html import unescape

import pytest

from .conftest import SAMPLES
from .helpers import figures_of, parse_line, read_table, section, trace_ids_of

EXAM = "EX0002"


def _line(fields: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(fields)
    return buf.getvalue()


@pytest.fixture(scope="module")
def reviewed_round_trip(sample_report, tmp_path_factory):
    """Lines copied from the sample report's page of EX0002: the onset of the distal motor
    trace of its first motor study moved 0.3 ms earlier, and the F-wave onset of one sweep
    removed (``none``); extract --overrides on a copy of the run (its cache included), then
    the report."""
    from ncsproc.pipeline import extract
    from ncsproc.report import build_report

    result, run = sample_report
    figs = figures_of(result.pages[EXAM])
    motor = next(
        f
        for f in figs
        if f.attrs["data-modality"] == "motor"
        and any(m["data-marker"] == "onset" for m in f.markers)
    )
    onset = next(m for m in motor.markers if m["data-marker"] == "onset")
    fwave = next(f for f in figs if f.attrs["data-modality"] == "fwave")
    f_on = next(m for m in fwave.markers if m["data-marker"] == "f_onset")
    rows = []
    for m, time in (
        (onset, f"{float(parse_line(onset['data-line'])[2]) - 0.3:.3f}"),
        (f_on, "none"),
    ):
        tid, marker, t, reviewer, reason = parse_line(m["data-line"])  # the copied line
        assert (tid, marker, reviewer, reason) == (m["data-trace"], m["data-marker"], "", "")
        rows.append(_line([tid, marker, time, "Dr <b>R</b>", "read at x4 gain, in noise"]))
    root = tmp_path_factory.mktemp("round-trip")
    overrides = root / "overrides.csv"
    overrides.write_text(
        "trace_id,marker,time_ms,reviewer,reason\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    results = root / "results"
    shutil.copytree(run, results)  # with .ncsproc/: only EX0002 is recomputed
    r = extract(
        [SAMPLES / "simulated"],
        results,
        scheduler="synchronous",
        progress=None,
        overrides=overrides,
    )
    assert r.exit_status == 0, r.summary()
    report = build_report(results, root / "report")
    return {
        "report": report,
        "results": results,
        "before": run,
        "onset": (onset["data-trace"], float(onset["data-time-ms"]), float(parse_line(rows[0])[2])),
        "f": (f_on["data-trace"], float(f_on["data-time-ms"])),
    }


def test_reviewed_markers_drawn_beside_the_originals(reviewed_round_trip):
    rt = reviewed_round_trip
    tid, before, after = rt["onset"]
    responses = read_table(rt["results"] / "responses.csv")
    ids = trace_ids_of(rt["results"] / "cohort.h5")
    row = next(
        r
        for r in responses.to_dict("records")
        if ids[(r["exam_id"], r["source_file"], r["study"], int(r["record"]))] == tid
    )
    assert float(row["onset_ms"]) == pytest.approx(after, abs=5e-4) and row["reviewed"] == "onset"
    marks = {
        (m["data-trace"], m["data-marker"], "ghost" in m["classes"]): (f, m)
        for f in figures_of(rt["report"].pages[EXAM])
        for m in f.markers
    }
    fig, m = marks[(tid, "onset", False)]
    assert "reviewed" in m["classes"]
    assert fig.time_of(m["x"]) == pytest.approx(after, abs=1e-3)
    fig, g = marks[(tid, "onset", True)]
    assert fig.time_of(g["x"]) == pytest.approx(before, abs=1e-3)
    f_tid, f_before = rt["f"]
    assert (f_tid, "f_onset", False) not in marks  # removed F wave: only its ghost remains
    fig, g = marks[(f_tid, "f_onset", True)]
    assert fig.time_of(g["x"]) == pytest.approx(f_before, abs=1e-3)
    html = rt["report"].pages[EXAM].read_text(encoding="utf-8")
    traces = section(html, "traces", "reviews")
    row = traces[traces.index(f'<tr data-trace="{tid}">') :]
    row = row[: row.index("</tr>")]
    assert f"(was {before:.3f})" in row and f"{after:.3f}" in row
    row = traces[traces.index(f'<tr data-trace="{f_tid}">') :]
    row = row[: row.index("</tr>")]
    assert "none" in row and f"(was {f_before:.3f})" in row


def test_reviews_table_with_units_and_originals(reviewed_round_trip):
    rt = reviewed_round_trip
    reviews = read_table(rt["results"] / "reviews.csv")
    mine = reviews[reviews["exam_id"] == EXAM]
    assert len(mine) >= 3  # onset, its durations and area; the F latency
    html = rt["report"].pages[EXAM].read_text(encoding="utf-8")
    part = section(html, "reviews", "failures")
    assert 'href="#reviews"' in html
    assert "Dr &lt;b&gt;R&lt;/b&gt;" in part and "<b>R</b>" not in part
    text = unescape(re.sub(r"<[^>]+>", "|", part))
    for r in mine.to_dict("records"):
        unit = {"uV": "µV", "uVms": "µV·ms"}.get(r["units"], r["units"])
        reviewed = r["reviewed"] or "none"
        assert f"|{r['variable']}|" in text
        assert f"|{unit}|" in text and f"|{r['original']}|" in text and f"|{reviewed}|" in text
    tid, before, after = rt["onset"]
    onset = mine[(mine["trace_id"] == tid) & (mine["variable"] == "onset_latency")].iloc[0]
    assert float(onset["original"]) == pytest.approx(before, abs=5e-4)
    assert float(onset["reviewed"]) == pytest.approx(after, abs=5e-4)


def test_recomputed_features_are_marked_reviewed(reviewed_round_trip):
    """The nerves table and the features line flag the studies whose values use reviewed
    markers and show the values of the reviewed run (the DML moved with the onset)."""
    rt = reviewed_round_trip
    nerves = read_table(rt["results"] / "nerves.csv")
    before = read_table(rt["before"] / "nerves.csv")
    tid, _, _ = rt["onset"]
    mine = nerves[(nerves["exam_id"] == EXAM) & (nerves["reviewed_traces"] != "")]
    assert tid in ";".join(mine["reviewed_traces"])
    html = rt["report"].pages[EXAM].read_text(encoding="utf-8")
    table = section(html, "nerves", "segments")
    for r in nerves[nerves["exam_id"] == EXAM].to_dict("records"):
        cell = table[table.index(f"<tr><td>{r['study']}") :]
        cell = cell[: cell.index("</td>")]
        assert ('class="badge reviewed"' in cell) == bool(r["reviewed_traces"]), r["study"]
    study = next(r for r in mine.to_dict("records") if tid in r["reviewed_traces"])
    old = before[(before["exam_id"] == EXAM) & (before["study"] == study["study"])].iloc[0]
    assert study["dml_ms"] != old["dml_ms"]
    row = table[table.index(f"<tr><td>{study['study']}") :]
    row = row[: row.index("</tr>")]
    assert f">{study['dml_ms']}<" in row
    traces = section(html, "traces", "reviews")
    assert "these values use reviewed markers of" in traces
    index = rt["report"].index.read_text(encoding="utf-8")
    exams = index[index.index('id="exams"') :]
    row = exams[exams.index(f">{EXAM}</a>") :]
    row = row[: row.index("</tr>")]
    assert row.rstrip().endswith('data-sort="2">2</td>')  # two reviewed traces


def test_values_before_the_review_are_shown_beside_the_reviewed_ones(reviewed_round_trip):
    """original_* of nerves.csv and exams.csv: "(was ...)" under a changed nerve value (and in
    its tooltip), the pattern and levels before the review beside the reviewed ones."""
    rt = reviewed_round_trip
    nerves = read_table(rt["results"] / "nerves.csv")
    before = read_table(rt["before"] / "nerves.csv")
    html = rt["report"].pages[EXAM].read_text(encoding="utf-8")
    table = section(html, "nerves", "segments")
    mine = nerves[nerves["exam_id"] == EXAM]
    changed = mine[mine["reviewed_columns"] != ""]
    assert len(changed) and "dml_ms" in ";".join(changed["reviewed_columns"])
    for r in mine.to_dict("records"):
        row = table[table.index(f"<tr><td>{r['study']}") :]
        row = row[: row.index("</tr>")]
        old = before[(before["exam_id"] == EXAM) & (before["study"] == r["study"])].iloc[0]
        assert r["original_dml_ms"] == (
            "" if "dml_ms" not in r["reviewed_columns"] else old["dml_ms"]
        )
        if r["original_dml_ms"]:
            assert f"(was {old['dml_ms']})" in row and f"before review: {old['dml_ms']}" in row
            assert f">{r['dml_ms']}<" in row or f">{r['dml_ms']}<span" in row
        if not r["reviewed_columns"]:
            assert "(was " not in row and "before review" not in row
    exams = read_table(rt["results"] / "exams.csv")
    exam = exams[exams["exam_id"] == EXAM].iloc[0]
    top = html[: html.index('id="pattern"')]
    head = section(html, "pattern", "criteria")
    if exam["original_pattern"]:
        shown = exam["original_pattern"].replace("_", " ")
        assert "(before review: " in top and shown in top.split("(before review: ")[1]
        assert "(before review: " in head.split("</h2>")[0]
    else:
        assert "pattern" not in exam["reviewed_columns"].split(";")
        assert "before review" not in head.split("</h2>")[0]
    assert top.count("(before review: ") == sum(
        1 for c in ("pattern", "efns_pns_2010", "ean_pns_2021") if exam[f"original_{c}"]
    )
