"""Reading the numbers behind the report's drawings back from its HTML (stdlib parser)."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class Figure:
    attrs: dict
    lanes: list[str] = field(default_factory=list)  # data-trace of each lane, top to bottom
    markers: list[dict] = field(default_factory=list)
    bases: dict[str, float] = field(default_factory=dict)  # lane -> y of the baseline line

    def time_of(self, x: float) -> float:
        """Map an x position back to ms through the figure's stated axis transform."""
        return float(self.attrs["data-t0-ms"]) + (x - float(self.attrs["data-x0"])) / float(
            self.attrs["data-px-per-ms"]
        )


class FigureParser(HTMLParser):
    """Collect every trace figure: its axis transform, its lanes and its markers (the first
    ``<line>`` of each ``g.mk`` gives the drawn x position)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.figures: list[Figure] = []
        self._stack: list[tuple[str, dict]] = []
        self._marker: dict | None = None
        self._depth_marker = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "svg" and "traces" in classes:
            self.figures.append(Figure(a))
        elif self.figures and tag == "g" and "lane" in classes:
            self.figures[-1].lanes.append(a.get("data-trace", ""))
        elif self.figures and tag == "g" and "mk" in classes:
            self._marker = {**a, "classes": classes, "x": None, "lane": self.figures[-1].lanes[-1]}
            self.figures[-1].markers.append(self._marker)
        elif tag == "line" and self._marker is not None and self._marker["x"] is None:
            assert a["x1"] == a["x2"], "a marker is a vertical line"
            self._marker["x"] = float(a["x1"])
        elif tag == "circle" and self._marker is not None:
            self._marker["cy"] = float(a["cy"])
        elif tag == "line" and "base" in classes and self.figures:
            self.figures[-1].bases[self.figures[-1].lanes[-1]] = float(a["y1"])
        if tag == "g":
            self._stack.append((tag, a))

    def handle_endtag(self, tag):
        if tag == "g" and self._stack:
            _, a = self._stack.pop()
            if "mk" in (a.get("class") or "").split():
                self._marker = None


def figures_of(path: Path) -> list[Figure]:
    p = FigureParser()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    return p.figures


def expected_markers(responses: pd.DataFrame, trace_ids: dict) -> dict[tuple[str, str], float]:
    """``{(trace id, marker): time ms}`` straight from responses.csv (ok traces only):
    onset = onset_ms, peak = peak_ms, end = onset_ms + total_duration_ms, f_onset =
    f_latency_ms."""
    out = {}
    for r in responses.to_dict("records"):
        if r["status"] != "ok":
            continue
        tid = trace_ids[(r["exam_id"], r["source_file"], r["study"], int(r["record"]))]
        onset, peak = float(r["onset_ms"]), float(r["peak_ms"])
        total = float(r["total_duration_ms"]) if r["total_duration_ms"] != "" else math.nan
        f = float(r["f_latency_ms"]) if r["f_latency_ms"] != "" else math.nan
        for name, t in (("onset", onset), ("peak", peak), ("end", onset + total), ("f_onset", f)):
            if math.isfinite(t):
                out[(tid, name)] = t
    return out


def trace_ids_of(cohort_h5: Path) -> dict:
    """``(exam_id, source_file, study, record) -> trace id`` from cohort.h5's coordinates."""
    import h5py

    with h5py.File(cohort_h5, "r") as f:

        def col(name):
            v = f[name][()]
            return (
                [x.decode() if isinstance(x, bytes) else str(x) for x in v]
                if v.dtype.kind in "OSU"
                else list(v)
            )

        keys = zip(
            col("exam_id"),
            col("source_file"),
            col("study"),
            [int(x) for x in col("record")],
            strict=True,
        )
        return dict(zip(keys, col("trace"), strict=True))


def read_table(path: Path) -> pd.DataFrame:
    """A table of a results folder as text, in layout 1 (the uV columns the report works on:
    a layout-2 folder's mV columns are turned back, as the report's loader does)."""
    from ncsproc.tables import from_layout, read_tables_version

    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return from_layout(table, read_tables_version(Path(path).parent))


def parse_line(line: str) -> list[str]:
    return next(csv.reader(io.StringIO(line)))


def section(html: str, start_id: str, end_id: str) -> str:
    a = html.index(f'<h2 id="{start_id}">')
    b = html.index(f'<h2 id="{end_id}">', a)
    return html[a:b]


def is_125(x: float) -> bool:
    e = math.floor(math.log10(x))
    m = x / 10.0**e
    return any(np.isclose(m, s) for s in (1.0, 2.0, 5.0, 10.0))


EXTENSION_COLUMNS = ("trace_id", "qc_flags", "baseline_uv", "noise_uv", "artefact_end_ms")
"""``responses.csv`` columns added after the contract's (``ncsproc.tables``)."""


def make_legacy(results: Path) -> Path:
    """Turn a copied results folder into one written before ``responses.csv`` had the
    extension columns (trace id, QC flags, diagnostics): the report must re-measure."""
    responses = read_table(results / "responses.csv")
    responses.drop(columns=list(EXTENSION_COLUMNS)).to_csv(results / "responses.csv", index=False)
    return results


def qc_cells(page: Path) -> dict[str, str]:
    """Trace id -> the text of the "QC flags" cell of its row in a page's trace tables
    (flag names ``;``-joined as in ``responses.csv``; ``—`` for none)."""
    import re
    from html import unescape

    html = page.read_text(encoding="utf-8")
    out = {}
    for tid, body in re.findall(r'<tr data-trace="([^"]*)">(.*?)</tr>', html, flags=re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", body, flags=re.S)
        text = unescape(re.sub(r"<[^>]+>", "", cells[11]))
        out[unescape(tid)] = ";".join(t.strip() for t in text.split(","))
    return out
