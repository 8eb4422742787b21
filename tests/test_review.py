"""Marker overrides (ncsproc.review): the file format, its validation, the recomputations.

The recomputed values are checked three ways: at the kernel's own marker times they must give
back the kernel's values (within the tolerances stated in formats/review.md); a moved marker
must change exactly the values it should and nothing else; and on noiseless simulated traces
the values are checked against the samples themselves (an independent moving average).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import ncsproc
from ncsproc import kernels as K
from ncsproc.review import (
    MEASURED,
    REVIEWS_COLUMNS,
    Override,
    Overrides,
    OverridesError,
    apply_overrides,
    parse_overrides,
    read_overrides,
    review_measures,
    reviews_table,
)
from ncsproc.simulate import response_set

HEADER = "trace_id,marker,time_ms,reviewer,reason\n"


# -------------------------------------------------------------------------------------------
# fixtures: measured simulated traces
# -------------------------------------------------------------------------------------------
def _concat(*sets):
    from ncsproc.schema import concat_trace_sets

    return concat_trace_sets(list(sets))


@pytest.fixture(scope="module")
def measured():
    """Motor, sensory and F-wave traces with noise and artefacts, and no-response traces."""
    parts = [
        response_set("motor", 24, seed=301),
        response_set("sensory", 16, seed=302),
        response_set("fwave", 16, seed=303),
        response_set("noise", 3, seed=304),
    ]
    traces = _concat(*(p[0] for p in parts))
    return traces, ncsproc.measure(traces, n_threads=1)


@pytest.fixture(scope="module")
def noiseless():
    """Noiseless CMAPs without artefact (baseline exactly 0) and their exact truth."""
    traces, truth = response_set("motor", 6, seed=305, noise_rms=0.0, artefact=False, offset=0.0)
    return traces, truth, ncsproc.measure(traces, n_threads=1)


def _ids(m):
    return np.asarray(m["trace"].values).astype(str)


def _ov(*rows) -> Overrides:
    return Overrides(
        "overrides.csv",
        "0" * 64,
        tuple(
            Override(t, mk, tm, "Dr R", "test", line=i + 2) for i, (t, mk, tm) in enumerate(rows)
        ),
    )


def _smoothed(traces, m, i):
    """The smoothed deviation from the baseline, written independently of ncsproc.review
    (a convolution with windows clipped at the artefact end and the trace end): (s, start)."""
    fs = float(traces["sampling_rate"].values[i])
    t0 = float(traces["t_start"].values[i])
    n = int(traces["n_samples"].values[i])
    y = np.asarray(traces["signal"].values[i, :n], dtype=float)
    prm = __import__("json").loads(m.attrs["measure_parameters"])[str(m["modality"].values[i])]
    h = max(int(math.floor(prm["smooth"] * fs + 0.5)), 1) // 2
    a = int(round((float(m["artefact_end"].values[i]) - t0) * fs))
    d = y[a:] - float(m["baseline_level"].values[i])
    k = np.ones(2 * h + 1)
    s = np.convolve(d, k, mode="same") / np.convolve(np.ones_like(d), k, mode="same")
    return s, a, fs, t0


def _area(traces, m, i, t_on, t_end):
    s, a, fs, t0 = _smoothed(traces, m, i)
    i0 = math.ceil((t_on - t0) * fs - 1e-9)
    i1 = math.floor((t_end - t0) * fs + 1e-9)
    part = s[i0 - a : i1 + 1 - a]
    return -part[part < 0].sum() / fs


def _assert_same_except(before, after, changed: dict[str, set], may_change=None):
    """Every measured variable of every trace equal, except {variable: {trace index}} (which
    must differ) and ``may_change`` (recomputed; checked by the caller)."""
    may_change = may_change or {}
    for v in (*MEASURED, "baseline_level", "noise_sd", "artefact_end", "qc_flags"):
        a = np.asarray(before[v].values)
        b = np.asarray(after[v].values)
        keep = np.ones(a.size, bool)
        keep[list(changed.get(v, ()))] = False
        keep[list(may_change.get(v, ()))] = False
        np.testing.assert_array_equal(a[keep], b[keep], err_msg=v)
        for i in changed.get(v, ()):
            assert not (a[i] == b[i]), (v, i)
    st = changed.get("status", set())
    keep = np.ones(before.sizes["trace"], bool)
    keep[list(st)] = False
    assert (before["status"].values[keep] == after["status"].values[keep]).all()


# -------------------------------------------------------------------------------------------
# the file
# -------------------------------------------------------------------------------------------
def test_a_valid_file(tmp_path):
    text = (
        "\ufeff# corrections of 2024-05-02\n\n"
        "trace_id,marker,time_ms,reviewer,reason,reviewed_at\n"
        'EX1/L_median_motor/0,onset,3.35,Dr A,"noise, then a slow take-off",2024-05-02\n'
        "  # a comment between lines\n"
        "EX1/L_median_motor/1,PEAK,none,Dr A,no response,\n"
        "EX1/L_tibial_fwave/2,f_onset,45.5,Dr B,late F wave,2024-05-02T10:30\n"
    )
    path = tmp_path / "overrides.csv"
    path.write_bytes(text.encode("utf-8"))
    ov = read_overrides(path)
    assert ov.source == "overrides.csv" and len(ov) == 3
    import hashlib

    assert ov.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    a, b, c = ov.rows
    assert (a.trace_id, a.marker, a.time, a.line) == ("EX1/L_median_motor/0", "onset", 0.00335, 4)
    assert a.reason == "noise, then a slow take-off" and a.reviewed_at == "2024-05-02"
    assert b.marker == "peak" and b.is_none and b.line == 6
    assert c.time == 0.0455 and c.reviewer == "Dr B"
    assert ov.for_exam("EX1").rows == ov.rows and not ov.for_exam("EX").rows
    # the digest covers what an exam's outputs depend on, line numbers included
    assert ov.digest() != parse_overrides("\n" + text.lstrip("\ufeff")).digest()
    assert parse_overrides(HEADER).rows == ()


@pytest.mark.parametrize(
    "body, line, expected",
    [
        ("EX1/s/0,onset,abc,Dr A,x\n", 2, "time_ms 'abc' is not a number"),
        ("EX1/s/0,onset,nan,Dr A,x\n", 2, "is not a number"),
        ("EX1/s/0,start,3,Dr A,x\n", 2, "marker 'start' is not one of onset, peak, end, f_onset"),
        ("EX1/s/0,onset,3,,x\n", 2, "reviewer is empty"),
        ("EX1/s/0,onset,3,Dr A,  \n", 2, "reason is empty"),
        (
            "EX1/s/0,onset,3,Dr A,x\nEX1/s/0,onset,4,Dr B,y\n",
            3,
            "a second onset override of trace EX1/s/0 (the first is on line 2)",
        ),
        ("EX1/s/0,end,none,Dr A,x\n", 2, "time_ms none is not allowed for the end marker"),
        ("EX1/s/0,onset,3,Dr A,x,more\n", 2, "6 field(s), expected 5"),
        ("s0,onset,3,Dr A,x\n", 2, "has no exam prefix"),
        ('EX1/s/0,onset,3,Dr A,"x\n', 2, "not a valid CSV line"),
        (
            "EX1/s/0,onset,none,Dr A,x\nEX1/s/0,peak,5,Dr A,x\n",
            3,
            "line 2 says there is no response (onset none), so it cannot also have a peak at 5 ms",
        ),
        (
            "EX1/s/0,onset,6,Dr A,x\nEX1/s/0,peak,5,Dr A,x\n",
            3,
            "the peak (5 ms) must come after the onset (6 ms, line 2)",
        ),
        (
            "EX1/s/0,peak,6,Dr A,x\nEX1/s/0,end,5,Dr A,x\n",
            3,
            "the end (5 ms) must come after the peak",
        ),
    ],
)
def test_each_invalid_line_is_named(body, line, expected):
    with pytest.raises(OverridesError) as err:
        parse_overrides(HEADER + body, source="rev.csv")
    assert f"rev.csv line {line}: " in str(err.value), str(err.value)
    assert expected in str(err.value)


def test_every_problem_is_listed_in_line_order():
    text = (
        "trace_id,marker,time_ms,reviewer,reason,reviewed_at\n"
        "EX1/s/0,onset,abc,Dr A,x,\n"
        "EX1/s/1,onset,6,Dr A,x,\nEX1/s/1,peak,5,Dr A,x,\n"
        "EX1/s/2,onset,3,Dr A,,\n"
        "EX1/s/3,onset,3,Dr A,x,2024-13-01\n"
        "EX1/s/4,onset,3,Dr A,x,2024-12-01\n"
    )
    with pytest.raises(OverridesError) as err:
        parse_overrides(text)
    problems = err.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "overrides.csv line 2",
        "overrides.csv line 4",
        "overrides.csv line 5",
        "overrides.csv line 6",
    ]
    assert "is not an ISO date" in problems[-1]
    assert str(err.value).startswith("overrides.csv: 4 problem(s)")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "no header line; the first line that is not a comment must be trace_id,marker,"),
        ("trace,marker,time_ms,reviewer,reason\n", "missing column(s) ['trace_id']"),
        (HEADER.strip() + ",comment\n", "unknown column(s) ['comment']"),
    ],
)
def test_bad_headers(text, expected):
    with pytest.raises(OverridesError) as err:
        parse_overrides(text)
    assert expected in str(err.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(OverridesError, match="no such file"):
        read_overrides(tmp_path / "missing.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(HEADER.encode() + "EX1/s/0,onset,3,Dr \xe9,x\n".encode("latin-1"))
    with pytest.raises(OverridesError, match="latin1.csv: not UTF-8"):
        read_overrides(bad)


# -------------------------------------------------------------------------------------------
# recomputation
# -------------------------------------------------------------------------------------------
def test_overrides_at_the_measured_times_give_the_kernel_values(measured):
    """The stated tolerances (formats/review.md): latencies and durations exact; area and
    peak-to-peak to 1e-6 for most traces, within 1e-3 on a flat baseline (the kernel's
    subtracted artefact fit is not in its outputs) and a few % on a sloped one; amplitude
    within the noise (raw sample vs the kernel's parabola vertex); snr from that amplitude."""
    traces, m = measured
    ids = _ids(m)
    ok = np.flatnonzero(m["status"].values == "ok")
    rows = []
    for i in ok:
        on = float(m["onset_latency"][i])
        rows += [(ids[i], "onset", on), (ids[i], "peak", float(m["peak_latency"][i]))]
        if np.isfinite(m["total_duration"][i]):
            rows.append((ids[i], "end", on + float(m["total_duration"][i])))
        if np.isfinite(m["f_latency"][i]):
            rows.append((ids[i], "f_onset", float(m["f_latency"][i])))
    r = review_measures(m, traces, _ov(*rows))
    assert not r.problems
    out = r.measures
    for v in ("onset_latency", "peak_latency", "f_latency"):
        np.testing.assert_array_equal(out[v].values, m[v].values)
    for v in ("negative_duration", "total_duration"):
        np.testing.assert_allclose(out[v].values, m[v].values, rtol=1e-12, atol=0)
    slope = (m["qc_flags"].values[ok] & K.F_BASELINE_SLOPE) > 0
    for v in ("negative_area", "peak_to_peak"):
        a, b = m[v].values[ok], out[v].values[ok]
        fin = np.isfinite(a)
        assert (np.isfinite(b) == fin).all()
        rel = np.abs(b[fin] - a[fin]) / np.abs(a[fin])
        assert np.mean(rel <= 1e-6) >= 0.8, (v, np.sort(rel)[-5:])
        assert rel[~slope[fin]].max() <= 1e-3, (v, rel.max())
        assert rel.max() <= 0.05, v
    noise = m["noise_sd"].values[ok]
    amp_err = np.abs(out["amplitude"].values[ok] - m["amplitude"].values[ok])
    assert (amp_err <= 5 * noise).all(), (amp_err / noise).max()
    np.testing.assert_allclose(
        out["snr"].values[ok], 20 * np.log10(out["amplitude"].values[ok] / noise), rtol=1e-12
    )
    assert (out["reviewed"].values[ok] != "").all()
    assert (out["reviewed"].values[m["status"].values != "ok"] == "").all()


def test_an_onset_moved_by_half_a_millisecond(measured):
    traces, m = measured
    ids = _ids(m)
    i = int(
        np.flatnonzero(
            (m["modality"].values == "motor")
            & (m["status"].values == "ok")
            & np.isfinite(m["total_duration"].values)
        )[3]
    )
    on0 = float(m["onset_latency"][i])
    new = on0 + 0.5e-3
    assert new < float(m["peak_latency"][i])
    r = review_measures(m, traces, _ov((ids[i], "onset", new)))
    assert not r.problems
    out = r.measures
    _assert_same_except(
        m,
        out,
        {v: {i} for v in ("onset_latency", "negative_duration", "total_duration", "negative_area")},
    )
    assert out["onset_latency"].values[i] == new
    end_neg = on0 + float(m["negative_duration"][i])
    end_tot = on0 + float(m["total_duration"][i])
    assert out["negative_duration"].values[i] == pytest.approx(end_neg - new, rel=1e-12)
    assert out["total_duration"].values[i] == pytest.approx(end_tot - new, rel=1e-12)
    assert out["negative_area"].values[i] == pytest.approx(
        _area(traces, m, i, new, end_tot), rel=1e-9
    )
    assert out["negative_area"].values[i] < m["negative_area"].values[i]
    # marked, the machine values kept beside
    assert list(out["reviewed"].values).count("onset") == 1 and out["reviewed"].values[i] == "onset"
    for v in ("onset_latency", "negative_duration", "total_duration", "negative_area"):
        np.testing.assert_array_equal(out[f"original_{v}"].values, m[v].values)
    assert "original_amplitude" not in out and "original_status" not in out
    t = reviews_table(r)
    assert list(t.columns) == list(REVIEWS_COLUMNS)
    assert list(t["variable"]) == [
        "onset_latency",
        "negative_duration",
        "total_duration",
        "negative_area",
    ]
    assert set(t["marker"]) == {"onset"} and set(t["line"]) == {"2"}
    assert list(t["units"]) == ["ms", "ms", "ms", "uVms"]
    assert t["original"].iloc[0] == round(on0 * 1e3, 3)
    assert t["reviewed"].iloc[0] == round(new * 1e3, 3)
    assert t["reviewed"].iloc[3] == round(out["negative_area"].values[i] * 1e9, 2)
    assert set(t["overrides_sha256"]) == {"0" * 64}
    assert (t["original_status"] == "ok").all() and (t["reviewed_status"] == "ok").all()


def test_a_peak_override_reads_the_signal(noiseless):
    """On noiseless traces with a zero baseline the amplitude at a sample time is minus that
    sample exactly, half-way it is the mean of the two, and at the simulator's exact peak time
    it is the exact amplitude (to the linear interpolation of a smooth peak at 20 kHz)."""
    traces, truth, m = noiseless
    ids = _ids(m)
    assert (m["baseline_level"].values == 0).all() and (m["status"].values == "ok").all()
    y = traces["signal"].values
    fs = float(traces["sampling_rate"].values[0])
    k = int(round(float(m["peak_latency"][0]) * fs)) + 3  # a sample after the peak
    tk = k / fs
    half = (k + 0.5) / fs
    t_true = float(truth["peak_latency"].values[2])
    r = review_measures(
        m, traces, _ov((ids[0], "peak", tk), (ids[1], "peak", half), (ids[2], "peak", t_true))
    )
    assert not r.problems
    out = r.measures
    _assert_same_except(
        m, out, {v: {0, 1, 2} for v in ("peak_latency", "amplitude", "peak_to_peak", "snr")}
    )
    assert out["amplitude"].values[0] == -y[0, k]
    k1 = int(math.floor(half * fs))
    assert out["amplitude"].values[1] == pytest.approx(-(y[1, k1] + y[1, k1 + 1]) / 2, rel=1e-12)
    assert out["amplitude"].values[2] == pytest.approx(
        float(truth["amplitude"].values[2]), rel=1e-3
    )
    assert out["peak_latency"].values[2] == t_true
    assert out["snr"].values[0] == pytest.approx(
        20 * math.log10(-y[0, k] / float(m["noise_sd"][0])), rel=1e-12
    )
    # peak-to-peak from the smoothed minimum near the reviewed time to the largest value after
    s, a, _, _ = _smoothed(traces, m, 0)
    prm = __import__("json").loads(m.attrs["measure_parameters"])["motor"]
    r_fit = max(int(math.floor(prm["peak_fit"] * fs + 0.5)), 2) // 2
    p = k - r_fit + int(np.argmin(s[k - r_fit - a : k + r_fit + 1 - a]))
    e = math.ceil(prm["search_end"] * fs - 1e-6)
    assert out["peak_to_peak"].values[0] == pytest.approx(
        s[p - a : e - a].max() - s[p - a], rel=1e-9
    )


def test_an_end_override(measured):
    traces, m = measured
    ids = _ids(m)
    ok = np.flatnonzero(
        (m["modality"].values == "motor")
        & (m["status"].values == "ok")
        & np.isfinite(m["total_duration"].values)
    )
    i, j = int(ok[0]), int(ok[1])
    on = float(m["onset_latency"][i])
    end = on + float(m["total_duration"][i]) + 1e-3
    first_return = float(m["onset_latency"][j] + m["negative_duration"][j])
    r = review_measures(m, traces, _ov((ids[i], "end", end), (ids[j], "end", first_return - 1e-4)))
    assert [p.line for p in r.problems] == [3]
    assert "is before the first return to baseline" in r.problems[0].message
    assert r.problems[0].message.startswith(f"overrides.csv line 3: trace {ids[j]}: ")
    out = r.measures
    # the area is recomputed over [onset, new end]; it only grows where the longer window holds
    # samples below baseline (here the positive phase follows, so it may stay the same)
    _assert_same_except(m, out, {"total_duration": {i}}, may_change={"negative_area": {i}})
    assert out["total_duration"].values[i] == pytest.approx(end - on, rel=1e-12)
    assert out["negative_area"].values[i] == pytest.approx(_area(traces, m, i, on, end), rel=1e-9)
    assert out["reviewed"].values[i] == "end" and out["reviewed"].values[j] == ""
    with pytest.raises(OverridesError, match="overrides.csv line 3: trace"):
        apply_overrides(m, traces, _ov((ids[i], "end", end), (ids[j], "end", first_return - 1e-4)))


def test_f_onset_overrides(measured):
    traces, m = measured
    ids = _ids(m)
    mod = m["modality"].values
    fw = np.flatnonzero((mod == "fwave") & np.isfinite(m["f_latency"].values))
    i, j = int(fw[0]), int(fw[1])
    motor = int(np.flatnonzero(mod == "motor")[0])
    new = float(m["f_latency"][i]) + 2e-3
    r = review_measures(
        m,
        traces,
        _ov((ids[i], "f_onset", new), (ids[j], "f_onset", math.nan), (ids[motor], "f_onset", 0.03)),
    )
    assert [p.line for p in r.problems] == [4]
    assert (
        "it is a motor trace; an f_onset override is only for F-wave traces"
        in r.problems[0].message
    )
    out = r.measures
    _assert_same_except(m, out, {"f_latency": {i, j}})
    assert out["f_latency"].values[i] == new and np.isnan(out["f_latency"].values[j])
    assert out["reviewed"].values[i] == "f_onset" == out["reviewed"].values[j]


def test_no_response_by_review_and_a_response_the_kernel_missed(measured):
    traces, m = measured
    ids = _ids(m)
    status = m["status"].values
    ok = int(np.flatnonzero((status == "ok") & (m["modality"].values == "motor"))[0])
    nr = np.flatnonzero(status == "no_response")
    assert nr.size >= 2
    a, b = int(nr[0]), int(nr[1])
    fs = float(traces["sampling_rate"].values[b])
    k = int(5e-3 * fs) + int(np.argmin(traces["signal"].values[b, int(5e-3 * fs) : int(8e-3 * fs)]))
    pk = k / fs  # a sample below the baseline: a "response" the reviewer sees in the noise
    on, end = pk - 2e-3, pk + 3e-3
    r = review_measures(
        m,
        traces,
        _ov(
            (ids[ok], "onset", math.nan),
            (ids[ok], "peak", math.nan),  # the reviewer: no response
            (ids[a], "onset", 0.004),  # alone on a no_response trace: refused
            (ids[b], "onset", on),
            (ids[b], "peak", pk),
            (ids[b], "end", end),
        ),
    )
    assert [p.line for p in r.problems] == [4]
    assert "needs both an onset and a peak line" in r.problems[0].message
    out = r.measures
    assert out["status"].values[ok] == "no_response"
    assert all(np.isnan(out[v].values[ok]) for v in MEASURED)
    assert out["reviewed"].values[ok] == "onset;peak"
    assert out["status"].values[b] == "ok" and out["status"].values[a] == "no_response"
    assert out["onset_latency"].values[b] == on and out["peak_latency"].values[b] == pk
    assert out["total_duration"].values[b] == pytest.approx(5e-3, rel=1e-12)
    assert np.isnan(out["negative_duration"].values[b])  # no first return without the kernel
    assert out["negative_area"].values[b] == pytest.approx(_area(traces, m, b, on, end), rel=1e-9)
    assert out["amplitude"].values[b] == pytest.approx(
        float(m["baseline_level"][b]) - traces["signal"].values[b, k], rel=1e-12
    )
    np.testing.assert_array_equal(out["original_status"].values, status)
    changed = {v: {ok} for v in MEASURED if np.isfinite(m[v].values[ok])}
    for v in (
        "onset_latency",
        "peak_latency",
        "total_duration",
        "negative_area",
        "amplitude",
        "snr",
        "peak_to_peak",
    ):
        changed.setdefault(v, set()).add(b)
    changed["status"] = {ok, b}
    _assert_same_except(m, out, changed)
    t = reviews_table(r)
    row = t[(t["trace_id"] == ids[ok]) & (t["variable"] == "status")]
    assert len(row) == 1 and row["reviewed_status"].iloc[0] == "no_response"
    assert set(t[t["trace_id"] == ids[ok]]["marker"]) == {"onset;peak"}


def test_overrides_that_cannot_apply(measured):
    traces, m = measured
    ids = _ids(m)
    i = int(np.flatnonzero(m["status"].values == "ok")[0])
    n = int(traces["n_samples"].values[i])
    r = review_measures(
        m,
        traces,
        _ov(
            (f"{m['exam_id'].values[i]}/nope/7", "onset", 0.003),
            (ids[i], "peak", (n + 5) / float(traces["sampling_rate"].values[i])),
            (ids[i], "onset", 0.0021),
        ),
    )
    msgs = [p.message for p in r.problems]
    assert "is not a measured trace" in msgs[0] and "copy the id" in msgs[0]
    assert "is outside the trace (0 ms to" in msgs[1] and "line(s) 4" in msgs[1]
    assert msgs[2].startswith("overrides.csv line 4:") and "not applied, because line 3" in msgs[2]
    _assert_same_except(m, r.measures, {})
    with pytest.raises(OverridesError) as err:
        apply_overrides(m, traces, _ov((ids[i], "peak", 1.0)))
    assert "overrides.csv: 1 problem(s)" in str(err.value)


def test_a_peak_must_be_below_the_baseline(noiseless):
    traces, _, m = noiseless
    before = float(m["onset_latency"][0]) - 0.5e-3  # the signal is exactly 0 there
    r = review_measures(m, traces, _ov((_ids(m)[0], "peak", before)))
    assert (
        "is not below the baseline (0.00 uV); the peak marker is the negative peak"
        in r.problems[0].message
    )
    after = float(m["peak_latency"][0]) + 0.5e-3
    r = review_measures(m, traces, _ov((_ids(m)[0], "onset", after)))
    assert "must come before the negative peak" in r.problems[0].message


def test_responses_table_appends_reviewed_only_when_reviewed(measured):
    from ncsproc.tables import RESPONSE_ORDER, responses_table

    traces, m = measured
    assert list(responses_table(m).columns) == list(RESPONSE_ORDER)
    i = int(np.flatnonzero((m["status"].values == "ok") & (m["modality"].values == "motor"))[0])
    out = apply_overrides(m, traces, _ov((_ids(m)[i], "onset", float(m["onset_latency"][i]))))
    t = responses_table(out)
    assert list(t.columns) == [*RESPONSE_ORDER, "reviewed"]
    assert (t["reviewed"] != "").sum() == 1


def test_original_tables_keep_the_machine_values_that_changed():
    """original_<column> beside the reviewed features: filled where the value differs as the CSV
    writes it, named in reviewed_columns (so an empty original there means "no value"); the
    columns a marker cannot change get none."""
    import pandas as pd

    from ncsproc.review import CHANGED_COLUMN, original_columns, original_tables

    nerves = pd.DataFrame(
        {
            "exam_id": ["E1", "E1", "E2"],
            "study": ["a", "b", "a"],
            "dml_ms": [4.0, 3.0, 2.0],
            "distal_distance_mm": [70.0, 70.0, 70.0],
            "dml_uln_ms": [4.2, 4.2, 4.2],
            "evaluable": [True, True, True],
            "efns_pns_2010_met": ["dml", "", ""],
            "efns_pns_2010_not_evaluated": ["", "", ""],
            "n_proximal_ok": [1.0, np.nan, 1.0],
        }
    )
    machine = nerves.iloc[:2].copy()  # only the reviewed exam
    machine.loc[0, ["dml_ms", "efns_pns_2010_met"]] = [3.0, ""]  # the review moved the DML
    machine.loc[1, ["dml_ms", "evaluable", "n_proximal_ok"]] = [np.nan, False, 0.0]
    nerves.loc[0, "dml_ms"] = 3.0000004  # the same value as written (3 decimals)
    criteria = pd.DataFrame(
        {
            "criteria_set": ["s"] * 2,
            "criterion": ["dml", "f_absent"],
            "exam_id": ["E1"] * 2,
            "study": ["a"] * 2,
            "value": pd.Series([150.5, True], dtype=object),
            "state": ["met", "met"],
        }
    )
    m_criteria = criteria.copy()
    m_criteria["value"] = pd.Series([120.25, None], dtype=object)
    m_criteria["state"] = ["not_met", "not_evaluable"]
    out = original_tables(
        {"nerves": nerves, "criteria": criteria}, {"nerves": machine, "criteria": m_criteria}
    )
    n = out["nerves"]
    assert [oc for oc, _ in original_columns("nerves", nerves.columns)] == [
        "original_dml_ms",
        "original_evaluable",
        "original_efns_pns_2010_met",
        "original_n_proximal_ok",
    ]
    assert list(n.columns) == [
        *nerves.columns,
        CHANGED_COLUMN,
        "original_dml_ms",
        "original_evaluable",
        "original_efns_pns_2010_met",
        "original_n_proximal_ok",
    ]
    assert list(n[CHANGED_COLUMN]) == ["efns_pns_2010_met", "dml_ms;evaluable;n_proximal_ok", ""]
    assert np.isnan(n["original_dml_ms"]).all()  # row 0 unchanged as written, row 1 had none
    assert list(n["original_evaluable"]) == ["", "False", ""]
    assert list(n["original_efns_pns_2010_met"]) == ["", "", ""]  # the machine's was empty
    np.testing.assert_array_equal(n["original_n_proximal_ok"], [np.nan, 0.0, np.nan])
    c = out["criteria"]
    assert list(c.columns[-3:]) == [CHANGED_COLUMN, "original_value", "original_state"]
    assert list(c["original_value"]) == [120.25, None]  # a mixed column keeps the values
    assert list(c["original_state"]) == ["not_met", "not_evaluable"]
    empty = original_tables({"nerves": nerves}, None)["nerves"]  # nothing applied
    assert (empty[CHANGED_COLUMN] == "").all() and np.isnan(empty["original_dml_ms"]).all()
