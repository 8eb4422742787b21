"""How the pages show numbers to a clinician: criteria values with the decimals and unit of
their quantity (the exact value in a tooltip), CMAP amplitudes in mV, criteria levels sorted by
strength, count axes in whole numbers, noise of a study without a response at a clinical gain,
labelled copy buttons. Every expected value comes from the tables of the same extract run."""

from __future__ import annotations

import math
import re
from html import unescape
from html.parser import HTMLParser

import pytest

from .helpers import figures_of, read_table, section, trace_ids_of


class _Cells(HTMLParser):
    """Rows of every ``<table>`` in a piece of HTML: ``[(text, attrs), ...]`` per row."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: list[dict] = []
        self._cell = None
        self._in_head = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"head": [], "rows": []})
        elif tag == "thead":
            self._in_head = True
        elif tag == "tbody":
            self._in_head = False
        elif tag == "tr" and self.tables and not self._in_head:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell = ["", dict(attrs), tag]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            text, a, kind = self._cell
            if kind == "th" and self._in_head:
                self.tables[-1]["head"].append(text.strip())
            else:
                self.tables[-1]["rows"][-1].append((text.strip(), a))
            self._cell = None


def _tables(html: str) -> list[dict]:
    p = _Cells()
    p.feed(html)
    p.close()
    return p.tables


def test_format_value_and_threshold():
    from ncsproc.report.build import format_threshold, format_value, quantity

    assert quantity("dml_pct_uln") == ("%", 1) and quantity("cv_pct_lln") == ("%", 1)
    assert quantity("distal_duration_ms") == ("ms", 3) and quantity("cv_m_s") == ("m/s", 2)
    assert quantity("snap_amp_uv") == ("µV", 2) and quantity("tli") == ("", None)
    x = 235.9546433554769
    assert format_value("dml_pct_uln", x) == "236.0 %"
    assert format_value("dml_pct_uln", repr(x)) == "236.0 %"  # table text
    assert format_value("max_td_pct", "-0.04") == "0.0 %"  # no "-0.0"
    assert format_value("distal_duration_ms", "6.3140000000000001") == "6.314 ms"
    assert format_value("tli", 0.15730001) == "0.1573"
    for text in ("True", "False", ""):
        assert format_value("f_absent", text) == text
    assert format_threshold("dml_pct_uln", "150.0") == "150 %"
    assert format_threshold("f_absent", "True") == "True"
    assert format_threshold("x", 0.5) == "0.5"


def test_criteria_values_are_formatted(sample_report):
    """Every value and threshold cell of the criteria tables shows its criteria.csv number
    with the decimals and unit of its quantity; the exact text stays in the tooltip and the
    sort key; no long raw float is left on the page."""
    from ncsproc.report.build import SET_NAMES, format_threshold, format_value

    result, run = sample_report
    criteria = read_table(run / "criteria.csv")
    n_checked = 0
    for exam_id, path in result.pages.items():
        html = path.read_text(encoding="utf-8")
        crit = section(html, "criteria", "nerves")
        n_sets = 0
        for s, label in SET_NAMES.items():
            part = crit[crit.index(f"<h3>{label}:") :]
            part = part[: part.find("<h3>", 4)] if "<h3>" in part[4:] else part
            rows = criteria[(criteria["exam_id"] == exam_id) & (criteria["criteria_set"] == s)]
            tables = [t for t in _tables(part) if "value_name" in t["head"]]
            met = rows[rows["state"] == "met"]
            # "criteria met" (when any), then every row, both in criteria.csv's order
            assert len(tables) == (2 if len(met) else 1), (exam_id, s)
            for t, src in zip(tables, [met, rows] if len(met) else [rows], strict=True):
                h = t["head"]
                iv, ith, iname = h.index("value"), h.index("threshold"), h.index("value_name")
                assert len(t["rows"]) == len(src)
                for cells, r in zip(t["rows"], src.to_dict("records"), strict=True):
                    name, value = r["value_name"], r["value"]
                    assert cells[iname][0] == name
                    text, a = cells[iv]
                    assert text == format_value(name, value)
                    if _is_num(value) and math.isfinite(float(value)):
                        assert float(a["data-sort"]) == float(value)
                        if text != value:
                            assert a["title"] == value
                        if name.endswith(("_pct_uln", "_pct_lln", "_pct")):
                            assert re.fullmatch(r"-?\d+\.\d %", text), text
                            assert float(text[:-2]) == pytest.approx(float(value), abs=0.05)
                        n_checked += 1
                    assert cells[ith][0] == format_threshold(name, r["threshold"])
            n_sets += 1
        assert n_sets == len(SET_NAMES)
        # no raw float with more than 4 decimals in the criteria section's text
        visible = unescape(re.sub(r"<[^>]+>", " ", re.sub(r'title="[^"]*"', "", crit)))
        visible = (
            visible[: visible.find("pattern_evidence (raw JSON)")]
            if "pattern_evidence (raw JSON)" in visible
            else visible
        )
        assert not re.search(r"\d\.\d{5,}", visible), exam_id
    assert n_checked > 50


def _is_num(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def test_criteria_evidence_sentences_are_formatted(sample_report):
    """The clauses that reached a level show their values formatted, exact in the tooltip."""
    from ncsproc.report.build import format_value

    result, run = sample_report
    html = result.pages["EX0002"].read_text(encoding="utf-8")
    crit = section(html, "criteria", "nerves")
    spans = re.findall(r'<span class="val" title="([^"]+)">([^<]+)</span>', crit)
    assert spans
    for exact, shown in spans:  # the shown number is the exact one at the shown decimals
        number = unescape(shown).split()[0]
        decimals = len(number.split(".")[1]) if "." in number else 0
        assert float(number) == pytest.approx(float(exact), abs=0.51 * 10.0**-decimals)
        assert len(exact) >= len(number) or exact == number
    criteria = read_table(run / "criteria.csv")
    met = criteria[(criteria["exam_id"] == "EX0002") & (criteria["state"] == "met")]
    assert len(met)
    for r in met.to_dict("records"):  # each clause's value as in the criteria tables
        assert format_value(r["value_name"], r["value"]) in unescape(crit)


def test_cmap_amplitudes_in_mv(sample_report):
    """Motor amplitudes show in mV (nerves.csv and responses.csv hold µV): the nerves table,
    the features line and the motor trace tables; SNAPs stay in µV."""
    result, run = sample_report
    nerves = read_table(run / "nerves.csv")
    html = result.pages["EX0001"].read_text(encoding="utf-8")
    t = _tables(section(html, "nerves", "segments"))[0]
    assert "distal CMAP mV" in t["head"] and "SNAP µV" in t["head"]
    i = t["head"].index("distal CMAP mV")
    rows = nerves[nerves["exam_id"] == "EX0001"]
    n = 0
    for r in rows.to_dict("records"):
        if not r["distal_amp_uv"]:
            continue
        cells = next(c for c in t["rows"] if c[0][0].startswith(r["study"]))
        text, a = cells[i]
        mv = f"{float(r['distal_amp_uv']) / 1000:.2f}"
        if r["amp_pct_lln"]:  # under it: % of the limit and the limit, in mV too
            mv += f"{float(r['amp_pct_lln']):.0f} % LLN ({float(r['amp_lln_uv']) / 1000:.2f})"
            assert text.startswith(mv), (text, mv)
        else:
            assert text == mv, (text, mv)
        assert float(a["data-sort"]) == float(r["distal_amp_uv"])
        assert r["distal_amp_uv"] in a["title"]
        n += 1
    assert n >= 4
    traces = section(html, "traces", "failures")
    assert "amplitude mV" in traces and "amplitude µV" in traces
    assert "distal CMAP mV" in traces


def test_index_sorts_criteria_levels_by_strength(sample_report):
    from ncsproc.report.build import LEVEL_RANK

    result, run = sample_report
    exams = read_table(run / "exams.csv")
    index = result.index.read_text(encoding="utf-8")
    t = _tables(index[index.index('id="exams"') - 60 :])[0]
    for s, name in (("efns_pns_2010", "EFNS/PNS 2010"), ("ean_pns_2021", "EAN/PNS 2021")):
        i = t["head"].index(name)
        for cells, level in zip(t["rows"], exams[s], strict=True):
            text, a = cells[i]
            assert text == level
            assert a["data-sort"] == f"{LEVEL_RANK.get(level, 5)} {level}"
    assert (
        LEVEL_RANK["definite"]
        < LEVEL_RANK["probable"]
        < LEVEL_RANK["possible"]
        < LEVEL_RANK["none"]
    )


def test_cohort_charts_have_units_and_whole_counts(sample_report):
    result, _ = sample_report
    index = result.index.read_text(encoding="utf-8")
    charts = index[index.index("<h2>Cohort</h2>") : index.index("<h2>Failures</h2>")]
    for label in ("DML (ms)", "CV (m/s)", "TLI (ratio)", "SNAP amplitude (µV)"):
        assert label in charts, label
    # count axes (exams per pattern, sural histogram): whole-number ticks only
    for svg in re.findall(
        r'<svg[^>]*aria-label="(?:exams per pattern|sural SNAP amplitude '
        r'distribution)".*?</svg>',
        charts,
        flags=re.S,
    ):
        ticks = re.findall(
            r'<text class="tick" x="[\d.]+" y="[\d.]+" text-anchor="end">'
            r"([^<]+)</text>",
            svg,
        )
        assert ticks and all(float(x) == int(float(x)) for x in ticks), ticks
    assert ">distal demyelinating</text>" in charts  # drawn label, not the identifier


def test_no_response_noise_at_a_clinical_gain(sample_report):
    """A study without any measured response is drawn at least at the clinical gain of its
    modality (its noise is not magnified into something that looks like a response)."""
    from ncsproc.report.layout import NO_RESPONSE_GAIN

    result, run = sample_report
    responses = read_table(run / "responses.csv")
    ok_ids = set()
    ids = trace_ids_of(run / "cohort.h5")
    for r in responses.to_dict("records"):
        if r["status"] == "ok" and r["modality"] != "fwave":
            ok_ids.add(ids[(r["exam_id"], r["source_file"], r["study"], int(r["record"]))])
    n = 0
    for path in result.pages.values():
        for fig in figures_of(path):
            modality = fig.attrs["data-modality"]
            if modality == "fwave" or set(fig.lanes) & ok_ids:
                continue
            assert float(fig.attrs["data-gain-v-per-div"]) >= NO_RESPONSE_GAIN[modality]
            n += 1
    assert n >= 1, "the samples hold studies without a response"


def test_gain_labels():
    from ncsproc.report.layout import format_gain, format_volts

    assert format_gain(1.0) == "1 V/div" and format_gain(2e-3) == "2 mV/div"
    assert format_gain(5e-4) == "500 µV/div" and format_volts(1e-5) == "10 µV"


def test_copy_buttons_are_labelled(sample_report):
    result, _ = sample_report
    html = result.pages["EX0001"].read_text(encoding="utf-8")
    buttons = re.findall(r"<button([^>]*)>([OPEF])</button>", html)
    assert len(buttons) > 50
    for a, _letter in buttons:
        label = unescape(re.search(r'aria-label="([^"]*)"', a)[1])
        tid = unescape(re.search(r'data-line="([^",]*)', a)[1])
        assert "overrides.csv" in label and tid in label, label
