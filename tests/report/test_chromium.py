"""Rendering in headless Chromium (Debian's ``chromium``): the index and exam pages load from
the file system without a console error, an uncaught exception, a failed load or a CSP
violation; the controls work; screenshots are saved. A negative control proves the checker
sees each kind of error, so this test cannot pass by seeing nothing."""

from __future__ import annotations

import json

from .helpers import figures_of

_CLICK_MARKER = """(function () {
  var g = document.querySelector('g.mk[data-line]');
  g.dispatchEvent(new MouseEvent('click', {bubbles: true}));
  var box = g.closest('section').querySelector('textarea.ovr-out');
  return [g.getAttribute('data-line'), box.value,
          document.activeElement === box, box.selectionEnd - box.selectionStart];
})()"""
_CLICK_BUTTON = """(function () {
  var b = document.querySelectorAll('button.cp')[3];
  b.click();
  return [b.getAttribute('data-line'),
          b.closest('section').querySelector('textarea.ovr-out').value];
})()"""
_MARKER_BOXES = """Array.from(document.querySelectorAll('g.mk line')).map(function (l) {
  var b = l.getBBox(); return b.height > 0 && b.width >= 0; }).filter(Boolean).length"""
_SORT = """(function () {
  var th = document.querySelector('#exams thead th');
  function firsts() { return Array.from(document.querySelectorAll('#exams tbody tr'))
      .map(function (r) { return r.cells[0].textContent; }); }
  th.click(); var up = firsts(); var s1 = th.getAttribute('aria-sort');
  th.click(); var down = firsts(); var s2 = th.getAttribute('aria-sort');
  return [up, s1, down, s2];
})()"""


def _png(path):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_console_checker_catches_errors(browser, tmp_path, sample_report):
    """Negative control: deliberate errors of every kind are reported."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>bad</title></head><body>"
        "<p>negative control</p>"
        "<script>console.log('fine'); console.error('deliberate-console-error');</script>"
        "<script>throw new Error('deliberate-exception');</script>"
        "<script>Promise.reject(new Error('deliberate-rejection'));</script>"
        "<img src='deliberately-missing.png'></body></html>",
        encoding="utf-8",
    )
    r = browser.load_page(bad.as_uri())
    problems = "\n".join(r.problems())
    assert r.loaded
    assert "console.error: deliberate-console-error" in problems
    assert "deliberate-exception" in problems and "exception:" in problems
    assert "deliberate-rejection" in problems
    assert "deliberately-missing.png" in problems
    assert "fine" not in problems  # console.log is not an error
    # markup injected into a report page: CSP blocks it, and the checker reports the block
    result, _ = sample_report
    page = result.pages["EX0001"].read_text(encoding="utf-8")
    injected = tmp_path / "injected.html"
    injected.write_text(page.replace("<h1>", "<script>alert(1)</script><h1>", 1), encoding="utf-8")
    r = browser.load_page(injected.as_uri())
    problems = "\n".join(r.problems())
    assert "Content Security Policy" in problems and "dialog" not in problems


def test_report_renders_without_errors(browser, sample_report, tmp_path):
    result, _ = sample_report
    index = browser.load_page(
        result.index.as_uri(),
        screenshot=tmp_path / "index.png",
        probes={"sort": _SORT, "js": "document.documentElement.className"},
    )
    assert index.loaded
    assert index.problems() == [], "\n".join(index.problems() + index.warnings())
    up, s1, down, s2 = index.probes["sort"]
    assert up == sorted(up) and down == sorted(up, reverse=True)
    assert (s1, s2) == ("ascending", "descending")
    assert "js" in index.probes["js"]
    assert _png(tmp_path / "index.png")

    path = result.pages["EX0002"]
    n_markers = sum(len(f.markers) for f in figures_of(path))
    exam = browser.load_page(
        path.as_uri(),
        screenshot=tmp_path / "exam-EX0002.png",
        probes={
            "n": "document.querySelectorAll('g.mk').length",
            "boxes": _MARKER_BOXES,
            "marker": _CLICK_MARKER,
            "button": _CLICK_BUTTON,
        },
    )
    assert exam.loaded
    assert exam.problems() == [], "\n".join(exam.problems() + exam.warnings())
    assert exam.probes["n"] == n_markers > 100
    assert exam.probes["boxes"] == n_markers  # every marker is rendered with a size
    line, box, focused, selected = exam.probes["marker"]
    assert box == line and line.startswith("EX0002/") and focused and selected == len(line)
    line, box = exam.probes["button"]
    assert box == line and line.count(",") == 4
    assert _png(tmp_path / "exam-EX0002.png")
    print(
        json.dumps(
            {"screenshots": [str(tmp_path / "index.png"), str(tmp_path / "exam-EX0002.png")]}
        )
    )


def test_hostile_page_renders_without_errors(browser, hostile_report, tmp_path):
    result, _ = hostile_report
    for exam_id, path in result.pages.items():
        r = browser.load_page(path.as_uri(), probes={"title": "document.title"})
        assert r.loaded and r.problems() == [], (exam_id, r.problems())
        assert r.probes["title"].startswith(f"Exam {exam_id} ")  # shown as text
    r = browser.load_page(result.index.as_uri(), screenshot=tmp_path / "hostile-index.png")
    assert r.problems() == []
