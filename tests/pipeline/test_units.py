"""The pieces: part files, cohort-wide column types, message scrubbing, settings, batching."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ncsproc.pipeline.extract import MAX_BATCH, auto_batch_size
from ncsproc.pipeline.inputs import ExamJob, InputFile
from ncsproc.pipeline.outputs import CohortSchema, merge_kinds, merge_outputs
from ncsproc.pipeline.parts import decode_part, encode_part, read_part_head, write_atomic
from ncsproc.pipeline.work import scrub


def _frames():
    floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
    text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
    cell = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), floats, text)
    return st.integers(0, 6).flatmap(
        lambda n: st.fixed_dictionaries(
            {
                "f": st.lists(floats, min_size=n, max_size=n),
                "i": st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n),
                "b": st.lists(st.booleans(), min_size=n, max_size=n),
                "s": st.lists(text, min_size=n, max_size=n),
                "o": st.lists(cell, min_size=n, max_size=n),
            }
        )
    )


@settings(max_examples=60, deadline=None)
@given(_frames())
def test_part_round_trip_is_exact(cols):
    df = pd.DataFrame(
        {
            "f": np.array(cols["f"], dtype=np.float64),
            "i": np.array(cols["i"], dtype=np.int64),
            "b": np.array(cols["b"], dtype=bool),
            "s": pd.Series(cols["s"], dtype=object),
            "o": pd.Series(cols["o"], dtype=object),
        }
    )
    data = encode_part({"exam_id": "E1"}, {"t": df})
    back = decode_part(data)["tables"]["t"]
    np.testing.assert_array_equal(back["f"].to_numpy(), df["f"].to_numpy())  # NaN == NaN here
    assert back["i"].tolist() == df["i"].tolist() and back["b"].tolist() == df["b"].tolist()
    assert back["s"].tolist() == df["s"].tolist()
    for a, b in zip(back["o"].tolist(), df["o"].tolist(), strict=True):
        if b is None or (isinstance(b, float) and math.isnan(b)):
            assert a is None or (isinstance(a, float) and math.isnan(a))
        else:
            assert a == b and type(a) is type(b)


def test_part_head_and_atomic_write(tmp_path):
    tr = {
        "signal": np.arange(6.0).reshape(2, 3),
        "signal_attrs": {"units": "V"},
        "coords": {"trace": np.array(["a", "b"], dtype=object), "record": np.array([0, 1])},
        "attrs": {"trace": {}, "record": {}},
    }
    data = encode_part({"exam_id": "E"}, {"t": pd.DataFrame({"x": [1.5]})}, tr)
    sha = write_atomic(tmp_path / "p" / "x.part", data)
    assert len(sha) == 64 and not list((tmp_path / "p").glob(".*"))
    head = read_part_head(tmp_path / "p" / "x.part")
    assert head["schema"] == {"t": {"rows": 1, "columns": [["x", "f"]]}}
    assert head["traces"] == {"n": 2, "width": 3, "dtype": "<f8"}
    back = decode_part(data, traces=True)["traces"]["arrays"]
    np.testing.assert_array_equal(back["signal"], tr["signal"])
    with pytest.raises(ValueError, match="not an ncsproc part"):
        decode_part(b"garbage" * 4)


@pytest.mark.parametrize(
    "kinds, expected",
    [
        ({"f"}, "f"),
        ({"i"}, "i"),
        ({"i", "f"}, "f"),
        ({"i", "n"}, "f"),
        ({"b"}, "b"),
        ({"b", "n"}, "o"),
        ({"s", "j"}, "o"),
        ({"s"}, "s"),
        ({"n"}, "f"),
    ],
)
def test_merge_kinds(kinds, expected):
    assert merge_kinds(kinds) == expected


def _merge_nerves(tmp_path, exams):
    """Write one part per exam's ``nerves`` table, merge them as extract does; return DIR."""
    from ncsproc.pipeline.settings import load_settings

    parts, schema = [], CohortSchema()
    for i, t in enumerate(exams):
        data = encode_part({"exam_id": t["exam_id"][0], "errors": []}, {"nerves": t})
        path = tmp_path / f"{i}.part"
        path.write_bytes(data)
        parts.append({"exam_id": t["exam_id"][0], "path": str(path)})
        schema.add(read_part_head(path))
    out = tmp_path / "out"
    out.mkdir()
    merge_outputs(
        out, parts, [], settings=load_settings(), traces=False, parquet=False, schema=schema
    )
    return out


def test_streamed_tables_equal_write_csv_of_the_concatenation(tmp_path):
    """Column types decided over the cohort: ints in one exam and floats in another are
    floats everywhere; bools next to missing values become text; quoting is pandas'."""
    from ncsproc.tables import write_csv

    exams = [
        pd.DataFrame(
            {
                "exam_id": ["A", "A"],
                "n": np.array([1, 2]),
                "dml_ms": [3.1234567, 4.0],
                "flag": [True, False],
                "note": ['x, "quoted"', "line\nbreak"],
            }
        ),
        pd.DataFrame(
            {
                "exam_id": ["B"],
                "n": [np.nan],
                "dml_ms": [np.nan],
                "flag": pd.Series([np.nan], dtype=object),
                "note": ["plain"],
            }
        ),
        pd.DataFrame(
            {"exam_id": ["C"], "n": np.array([7]), "dml_ms": [1e-9], "flag": [True], "note": [""]}
        ),
    ]
    out = _merge_nerves(tmp_path, exams)
    ref = tmp_path / "ref.csv"
    from ncsproc.features import csv_decimals

    table = pd.concat(exams, ignore_index=True)
    write_csv(table, ref, csv_decimals(table))
    assert (out / "nerves.csv").read_bytes() == ref.read_bytes()


def test_counts_are_written_as_integers(tmp_path):
    """n_proximal_ok, f_n_waves, ...: floats in the feature tables wherever some rows have no
    count, written as whole numbers (empty when missing), in the pipeline and by write_csv."""
    from ncsproc.tables import is_count_column, write_csv

    assert all(
        map(
            is_count_column,
            (
                "n_proximal_ok",
                "f_n_waves",
                "n_traces",
                "original_n_proximal_ok",
                "original_f_n_stimuli",
            ),
        )
    )
    assert not any(map(is_count_column, ("n", "nerve", "snr_db", "min_cv_m_s", "f_min_ms")))
    exams = [
        pd.DataFrame(
            {
                "exam_id": ["A", "A"],
                "n_proximal_ok": [1.0, np.nan],
                "f_n_waves": [0.0, 12.0],
                "dml_ms": [3.0, np.nan],
            }
        ),
        pd.DataFrame(
            {
                "exam_id": ["B"],
                "n_proximal_ok": np.array([2]),
                "f_n_waves": [np.nan],
                "dml_ms": [4.25],
            }
        ),
    ]
    out = _merge_nerves(tmp_path, exams)
    expected = "exam_id,n_proximal_ok,f_n_waves,dml_ms\nA,1,0,3.000\nA,,12,\nB,2,,4.250\n"
    assert (out / "nerves.csv").read_text() == expected
    write_csv(pd.concat(exams, ignore_index=True), tmp_path / "ref.csv")
    assert (tmp_path / "ref.csv").read_text() == expected


def test_scrub_removes_absolute_paths():
    job = ExamJob("EX1", "site/EX1/", (InputFile("/data/site/EX1/a.edf", "site/EX1/a.edf", True),))
    msg = "[Errno 2] No such file or directory: '/data/site/EX1/a.edf' (see /home/u/x/y.log)"
    out = scrub(msg, job)
    assert "/data" not in out and "/home" not in out
    assert "site/EX1/a.edf" in out and "y.log" in out
    assert scrub("5 m/s over 10 mm, uV/ms", None) == "5 m/s over 10 mm, uV/ms"


def test_auto_batch_size():
    assert auto_batch_size(0, 2) == 1
    assert auto_batch_size(5, 2) == 1
    assert auto_batch_size(40, 2) == 5
    assert auto_batch_size(100_000, 2) == MAX_BATCH
    assert auto_batch_size(100_000, 1000) == MAX_BATCH and auto_batch_size(100, 1000) == 1


def test_settings_files(tmp_path):
    from ncsproc.pipeline import ConfigError, load_settings

    default = load_settings()
    assert load_settings("pipelines/default.toml").sha256 == default.sha256
    lab = load_settings("pipelines/lab-example.toml")
    assert lab.sha256 != default.sha256 and lab.measure["k_detect"] == 5.0
    assert lab.limits.label == "lab-example@2026.1"
    bad = tmp_path / "bad.toml"
    for text, message in [
        ('[pipeline]\nname="x"\n[measure]\nsmooth = "abc"\n', "not a number"),
        ('[pipeline]\nname="x"\n[features]\nlimits = "nope.toml"\n', "no such file"),
        ('[pipeline]\nname="x"\n[features]\nrules = "unknown-rules"\n', "not a file shipped"),
        ('[pipeline]\nname="x"\n[extra]\n', "unknown table"),
        ("[measure]\nk_detect = 5\n", r"name \(a string\) is required"),
        ('[pipeline]\nname="x"\n[features]\ncriteria = ["efns-pns-2010"]\n', "ean_pns_2021"),
    ]:
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_settings(bad)
    bad.write_text(
        '[pipeline]\nname="x"\n[measure]\nsmooth = "0.2 ms"\n[measure.motor]\n'
        'min_amplitude = "20 uV"\n'
    )
    s = load_settings(bad)
    assert s.measure == {"smooth": pytest.approx(2e-4), "motor": {"min_amplitude": 2e-5}}


def test_scheduler_names():
    from ncsproc.pipeline.execute import SchedulerError, resolve_scheduler

    assert resolve_scheduler("threads", 3).workers == 3
    assert resolve_scheduler("sync").kind == "synchronous"
    assert resolve_scheduler(None).kind == "threads"
    with pytest.raises(SchedulerError, match="unknown scheduler"):
        resolve_scheduler("bogus")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(SchedulerError, match="cannot connect"):
            resolve_scheduler("tcp://127.0.0.1:1")


def test_progress_display_lines_and_bar():
    import io

    from ncsproc.pipeline import Progress, ProgressDisplay

    log = io.StringIO()  # not a terminal: plain lines, throttled, and always the last one
    show = ProgressDisplay(log, interval=3600)
    show(Progress(0, 90, 0, 10, 0, 2, 0.0))
    show(Progress(45, 90, 5, 10, 1, 2, 5.0))  # within the interval: not printed
    show(Progress(90, 90, 10, 10, 1, 2, 10.0, finished=True))
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("ncsproc extract: 90/90 files (100.0 %)")
    assert "9.0 files/s" in lines[-1] and "1 failure(s)" in lines[-1]
    tty = io.StringIO()
    bar = ProgressDisplay(tty, bar=True)
    bar(Progress(30, 90, 3, 10, 0, 0, 3.0))
    bar(Progress(90, 90, 10, 10, 0, 0, 9.0, finished=True))
    out = tty.getvalue()
    assert "90/90" in out and "file/s" in out and "failures 0" in out
    assert Progress(30, 90, 3, 10, 0, 0, 3.0).eta == 6.0
