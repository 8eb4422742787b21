"""Follow-up pages (issue 17 item 5) on a simulated follow-up cohort with exact truth: one page
per subject with >= 2 exams, the plotted points equal ``trajectories.csv``, the normal-limit
band, the red-flag visits, the cohort page (red flags first), no date or name, Chromium."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

KINDS = {"stable": 2, "fast_sural_decline": 2, "slow_sural_decline": 1}
KEY = "report-followup-key-0123456789abcdef"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def fu_report(tmp_path_factory):
    """Extract (shifted dates) and report of a follow-up cohort, plus one single-exam subject."""
    import ncsproc
    from ncsproc.pipeline import extract
    from ncsproc.privacy import Pseudonymizer
    from ncsproc.report import build_report
    from ncsproc.simulate import write_followup_cohort
    from ncsproc.storage import write

    base = tmp_path_factory.mktemp("fu-report")
    truth = write_followup_cohort(base / "in", KINDS, seed=21)
    single, _ = ncsproc.simulate.exam("normal", seed=3, exam_id="SOLO1", subject_id="SOLO")
    (base / "in" / "SOLO1").mkdir()
    write(single, base / "in" / "SOLO1" / "solo.h5")
    res = extract(
        [base / "in"],
        base / "results",
        scheduler="synchronous",
        pseudonymizer=Pseudonymizer(KEY),
        date_precision="shift",
        traces=False,
    )
    assert res.n_errors == 0
    report = build_report(base / "results", base / "report")
    return report, base / "results", truth


def _csv(folder, name):
    return pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)


def _shown(traj):
    """trajectories.csv as the pages show it: motor amplitudes in mV (layout 2 writes
    ``distal_amp_mv`` in mV, layout 1 ``distal_amp_uv`` in uV), under the layout-1 name."""
    t = traj.copy()
    motor_uv = (t["unit"] == "uV") & (t["modality"] == "motor")
    factor = pd.Series(1.0, index=t.index).where(~motor_uv, 1e-3)
    t["variable"] = t["variable"].str.replace(r"_mv$", "_uv", regex=True)
    for col in ("value", "normal_limit"):
        v = pd.to_numeric(t[col], errors="coerce") * factor
        t[col + "_shown"] = v
    return t


def _years(text):
    return float(text) / 365.25


def _subject_pages(report):
    """subject pseudonym -> parsed page, through the page's title."""
    out = {}
    for path in report.followup_pages.values():
        text = path.read_text(encoding="utf-8")
        sid = re.search(r"<title>Follow-up (.*?)</title>", text).group(1)
        out[sid] = text
    return out


def _svgs(text):
    return [ET.fromstring(m) for m in re.findall(r"<svg .*?</svg>", text, flags=re.S)]


def test_one_page_per_subject_with_two_exams(fu_report):
    report, results, truth = fu_report
    subjects = _csv(results, "subjects")
    assert len(truth.subjects) == sum(KINDS.values())
    assert set(_subject_pages(report)) == set(
        subjects.loc[subjects["n_exams"].astype(int) >= 2, "subject_id"]
    )
    # every simulated subject has >= 2 visits; the added single-exam subject gets no page
    assert len(report.followup_pages) == sum(KINDS.values())
    assert (subjects["n_exams"].astype(int) == 1).sum() == 1
    index = report.index.read_text(encoding="utf-8")
    assert 'href="followup.html"' in index


def test_plotted_points_are_the_trajectories(fu_report):
    """Every point's value, visit and interval (data attributes) and its drawn position,
    mapped back through the axes' ticks, equal trajectories.csv; motor amplitudes in mV."""
    report, results, _ = fu_report
    traj = _shown(_csv(results, "trajectories"))
    assert traj["variable"].eq("distal_amp_uv").any()
    pages = _subject_pages(report)
    for sid, text in pages.items():
        mine = traj[traj["subject_id"] == sid]
        figs = re.findall(
            r'<figure data-variable="([^"]+)" data-modality="([^"]+)">.*?(<svg .*?</svg>)',
            text,
            flags=re.S,
        )
        assert {(v, m) for v, m, _ in figs} == set(
            zip(mine["variable"], mine["modality"], strict=True)
        )
        for variable, modality, svg in figs:
            root = ET.fromstring(svg)
            rows = mine[(mine["variable"] == variable) & (mine["modality"] == modality)]
            rows = rows[rows["value"] != ""]
            got = {}
            for g in root.iter(f"{SVG}g"):
                if "series" not in g.get("class", ""):
                    continue
                for c in g.iter(f"{SVG}circle"):
                    got[(g.get("data-nerve"), g.get("data-side"), c.get("data-visit"))] = c
            want = {(r.nerve, r.side, r.visit): r for r in rows.itertuples()}
            assert set(got) == set(want), (sid, variable)
            # axis transform from two tick labels of each axis
            ticks = [t for t in root.iter(f"{SVG}text") if t.get("class") == "tick"]
            xt = [
                (float(t.get("x")), float(t.text))
                for t in ticks
                if t.get("text-anchor") == "middle"
            ]
            yt = [
                (float(t.get("y")) - 3, float(t.text))
                for t in ticks
                if t.get("text-anchor") == "end"
            ]
            (x0, u0), (x1, u1) = xt[0], xt[-1]
            (y0, v0), (y1, v1) = yt[0], yt[-1]
            for k, c in got.items():
                r = want[k]
                assert float(c.get("data-y")) == pytest.approx(r.value_shown, rel=1e-9)
                assert c.get("data-days") == r.days_since_first
                x = u0 + (float(c.get("cx")) - x0) * (u1 - u0) / (x1 - x0)
                y = v0 + (float(c.get("cy")) - y0) * (v1 - v0) / (y1 - y0)
                assert x == pytest.approx(_years(r.days_since_first), abs=0.02 * (u1 - u0))
                assert y == pytest.approx(r.value_shown, abs=0.02 * abs(v1 - v0))
            # the limit band: one per distinct limit of each line, in the shown unit
            bands = {
                (b.get("data-nerve"), b.get("data-side"), float(b.get("data-limit")))
                for b in root.iter(f"{SVG}rect")
                if b.get("class") == "lim-band"
            }
            lim = rows[rows["normal_limit"] != ""]
            want_bands = {(r.nerve, r.side, r.normal_limit_shown) for r in lim.itertuples()}
            assert {(n, s_, round(v, 9)) for n, s_, v in bands} == {
                (n, s_, round(v, 9)) for n, s_, v in want_bands
            }


def test_red_flag_visits_marked(fu_report):
    """The marked points are the sural SNAP visits the truth flags (fast decline)."""
    report, results, truth = fu_report
    subjects = _csv(results, "subjects").set_index("subject_id")
    pages = _subject_pages(report)
    flagged = {sid for sid in pages if subjects.loc[sid, "sensory_red_flag"] == "True"}
    assert len(flagged) == int(truth.subjects["red_flag"].sum()) == KINDS["fast_sural_decline"]
    traj = _csv(results, "trajectories")
    for sid, text in pages.items():
        marks = re.findall(r'class="visit red-flag"[^>]*data-exam="([^"]+)"', text)
        if sid not in flagged:
            assert marks == []
            continue
        days = float(subjects.loc[sid, "red_flag_days"])
        sural = traj[
            (traj["subject_id"] == sid)
            & (traj["nerve"] == "sural")
            & (traj["variable"] == "snap_amp_uv")
            & (pd.to_numeric(traj["days_since_first"], errors="coerce") == days)
        ]
        assert marks and set(marks) <= set(sural["exam_id"])
        assert 'class="banner"' in text


def test_cohort_page_red_flags_first(fu_report):
    report, results, _ = fu_report
    text = (report.out / "followup.html").read_text(encoding="utf-8")
    subjects = _csv(results, "subjects")
    subjects = subjects[subjects["n_exams"].astype(int) >= 2]
    body = text.split('id="followup"', 1)[1]
    listed = re.findall(r'<tr><td data-sort="([^"]+)"><a', body)
    red = sorted(subjects.loc[subjects["sensory_red_flag"] == "True", "subject_id"])
    rest = sorted(subjects.loc[subjects["sensory_red_flag"] != "True", "subject_id"])
    assert listed == red + rest and red
    for sid in listed:
        row = subjects.set_index("subject_id").loc[sid]
        cells = re.search(rf'data-sort="{re.escape(sid)}">.*?</tr>', body).group(0)
        assert f"{_years(row['followup_days']):.2f}" in cells
        assert f">{row['n_exams']}<" in cells


def test_no_date_or_name(fu_report):
    report, _, truth = fu_report
    texts = [p.read_text(encoding="utf-8") for p in report.followup_pages.values()]
    texts.append((report.out / "followup.html").read_text(encoding="utf-8"))
    ident = truth.identity
    forbidden = [*ident["patient_code"], *ident["patient_name"], *ident["birth_date"]]
    forbidden += list(truth.visits["exam_date"])
    for text in texts:
        for word in forbidden:
            assert str(word) not in text
        assert not re.search(r"\b(19|20)\d\d-\d\d-\d\d\b", text)


def test_followup_page_renders_without_errors(browser, fu_report, tmp_path):
    report, _, _ = fu_report
    for path in [*list(report.followup_pages.values())[:2], report.out / "followup.html"]:
        r = browser.load_page(
            path.as_uri(),
            screenshot=tmp_path / f"{path.stem}.png",
            probes={"n": "document.querySelectorAll('circle.visit').length"},
        )
        assert r.loaded
        assert r.problems() == [], "\n".join(r.problems() + r.warnings())
    assert (tmp_path / "followup.png").read_bytes()[:4] == b"\x89PNG"
