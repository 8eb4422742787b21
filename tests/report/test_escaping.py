"""Text from input files reaches the pages as text: a cohort whose exam id, study, stimulation
sites, subject id, stimulus annotation and error message carry markup."""

from __future__ import annotations

import html
import re

from .conftest import HOSTILE, HOSTILE_EDF
from .helpers import figures_of, parse_line, read_table


def _pages(result):
    return [result.index, *result.pages.values()]


def test_hostile_metadata_is_escaped(hostile_report):
    result, run = hostile_report
    exams = read_table(run / "exams.csv")
    errors = read_table(run / "errors.csv")
    exam_id = "../EX/" + HOSTILE
    # the cohort really carries the hostile text where the pages show it
    assert exam_id in set(exams["exam_id"])
    assert any(HOSTILE_EDF in s for s in read_table(run / "responses.csv")["stim_site"])
    assert any("<script>" in m for m in errors["message"]), "EXH2's refusal names the text"
    assert set(result.pages) == {exam_id, "EXH1", "EXH2"}
    for path in _pages(result):
        text = path.read_text(encoding="utf-8")
        assert "<script>alert" not in text, path.name
        assert text.lower().count("<script") == 1, "one script element: the report's own"
    page = result.pages[exam_id].read_text(encoding="utf-8")
    escaped = html.escape(HOSTILE)  # &lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;
    assert f"Exam <code>{html.escape(exam_id)}</code>" in page
    assert "L_median_motor" + escaped in page  # the study
    assert "wrist" + escaped in page  # a site
    assert "SIMH" + escaped in page  # the subject id
    edf = result.pages["EXH1"].read_text(encoding="utf-8")
    assert "wrist" + html.escape(HOSTILE_EDF) in edf  # from the stimulus annotation
    failed = result.pages["EXH2"].read_text(encoding="utf-8")
    assert "FormatError" in failed and "&lt;script&gt;" in failed
    index = result.index.read_text(encoding="utf-8")
    assert html.escape(exam_id) in index and "&lt;script&gt;" in index


def test_hostile_page_names_and_links(hostile_report):
    result, _ = hostile_report
    for path in result.pages.values():
        assert path.parent == result.out / "exams"
        assert re.fullmatch(r"[A-Za-z0-9_-]+-[0-9a-f]{10}\.html", path.name), path.name
        assert f'href="exams/{path.name}"' in result.index.read_text(encoding="utf-8")
    assert sorted(p.name for p in result.out.rglob("*.html")) == sorted(
        ["index.html", *(p.name for p in result.pages.values())]
    )


def test_hostile_trace_ids_in_attributes(hostile_report):
    """Trace ids with quotes and markup survive in data attributes and copy lines intact."""
    result, _ = hostile_report
    exam_id = "../EX/" + HOSTILE
    figs = figures_of(result.pages[exam_id])
    markers = [m for f in figs for m in f.markers]
    assert len(markers) > 50
    for m in markers:
        assert m["data-trace"].startswith(exam_id + "/")
        fields = parse_line(m["data-line"])
        assert fields[0] == m["data-trace"] and fields[1] == m["data-marker"]
