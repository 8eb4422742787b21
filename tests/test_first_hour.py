"""Issue 19: the first hour of a new user, driven through the command line.

Every ordinary mistake gives one line that says what to do, the documented exit status and no
traceback; every file found is processed or listed with its reason; every trace file opens.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ncsproc
from ncsproc.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data_samples" / "simulated"
REAL = REPO / "data_samples" / "real"
CFS = REAL / "cfs" / "test_file.cfs"


def run(capsys, argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def a_file(tmp_path) -> Path:
    f = tmp_path / "taken"
    f.write_text("not a folder")
    return f


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["simulate", "--patterns", "foo", "--out", "{tmp}/s"], "unknown pattern(s) foo"),
        (["simulate", "--per-pattern", "0", "--out", "{tmp}/s"], ">= 1, got 0"),
        (["simulate", "--per-pattern", "-1", "--out", "{tmp}/s"], ">= 1, got -1"),
        (["simulate", "--out", "{file}"], "is an existing file; give a folder"),
        (["extract", str(SAMPLES), "--out", "{file}"], "is an existing file; give a folder"),
        (["measure", str(SAMPLES), "--out", "{file}"], "is an existing file; give a folder"),
        (["report", "{tmp}", "--out", "{file}"], "is an existing file; give a folder"),
        (["measure", str(CFS), "--out", "{tmp}/m", "--config", "nope"], "bundled: default"),
        (["extract", "{tmp}/missing", "--out", "{tmp}/x", "-q"], "no such file or folder"),
        (["measure", "--out", "{tmp}/m"], "required: PATH"),
    ],
)
def test_a_mistake_is_one_line_with_exit_status_2(capsys, tmp_path, a_file, argv, expected):
    argv = [a.format(tmp=tmp_path, file=a_file) for a in argv]
    code, out, err = run(capsys, argv)
    assert code == 2
    line = one_line(err)
    assert line.startswith(f"ncsproc {argv[0]}") and expected in line
    assert a_file.read_text() == "not a folder"  # never overwritten


@pytest.mark.parametrize("command", ["migrate", "pull"])
def test_a_database_without_server_is_one_line(capsys, command):
    """(push reads the extract folder first, then connects through the same guard.)"""
    pytest.importorskip("psycopg")
    url = "postgresql://nobody@127.0.0.1:9/registry"  # port 9 (discard): nothing listens
    code, _, err = run(capsys, ["registry", command, "--db", url])
    assert code == 2
    line = one_line(err)
    assert "cannot use the database" in line and "server runs" in line


def test_ctrl_c_is_exit_130_with_how_to_resume(capsys, tmp_path, monkeypatch):
    import importlib

    extract_module = importlib.import_module("ncsproc.pipeline.extract")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(extract_module, "extract", interrupted)
    code, _, err = run(capsys, ["extract", SAMPLES, "--out", tmp_path / "x", "-q"])
    assert code == 130
    assert "interrupted; rerun the same command to resume" in one_line(err)


def test_debug_shows_the_traceback(tmp_path, a_file):
    with pytest.raises(Exception, match="existing file"):
        main(["--debug", "simulate", "--out", str(a_file)])


def test_a_folder_of_results_files_is_listed_and_exits_non_zero(capsys, tmp_path):
    folder = tmp_path / "qtrac"
    shutil.copytree(REAL / "qtrac-excitability", folder)
    code, out, err = run(capsys, ["info", folder])
    assert code == 2
    mem = sorted(p.name for p in folder.glob("*.MEM"))
    for name in mem:
        assert f"{name}: not read: holds QTRAC" in out and "ncsproc.read_qtrac(path)" in out
    assert f"0 trace file(s) in 0 exam(s), 0 failed, {len(mem) + 1} file(s) not read" in err

    code, _, err = run(capsys, ["extract", folder, "--out", tmp_path / "x", "-q"])
    assert code == 1  # nothing processed: every results file is in errors.csv
    errors = pd.read_csv(tmp_path / "x" / "errors.csv")
    assert sorted(errors["source_file"]) == mem and set(errors["error"]) == {"NotTraces"}


def test_a_folder_without_any_reader_says_what_it_found(capsys, tmp_path):
    folder = tmp_path / "mats"
    folder.mkdir()
    for name in ("a.mat", "b.mat"):
        (folder / name).write_bytes(b"MATLAB 5.0 MAT-file")
    code, _, err = run(capsys, ["extract", folder, "--out", tmp_path / "x"])
    if code == 1:  # a .mat reader is registered: the files were tried and listed
        assert sorted(pd.read_csv(tmp_path / "x" / "errors.csv")["source_file"]) == [
            "a.mat",
            "b.mat",
        ]
        return
    assert code == 2
    assert "no trace file found" in err and "2 other file(s) not read (a.mat, b.mat)" in err


def test_every_file_found_is_measured_or_in_errors_csv(capsys, tmp_path):
    """A mixed folder: simulated EDF+D exams, the real CFS file (no sidecar), QTRAC results,
    licences and a note; every file (sidecars aside) is in responses.csv or errors.csv."""
    root = tmp_path / "mixed"
    shutil.copytree(SAMPLES / "EX0001", root / "EX0001")
    shutil.copytree(REAL, root / "real")
    (root / "notes.md").write_text("# notes\n")
    code, out, err = run(capsys, ["measure", root, "--out", tmp_path / "m", "--no-progress"])
    assert code == 0
    found = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith((".edf.json", ".mat.json"))
    }
    responses = pd.read_csv(tmp_path / "m" / "responses.csv")
    errors = pd.read_csv(tmp_path / "m" / "errors.csv")
    measured, listed = set(responses["source_file"]), set(errors["source_file"])
    assert measured | listed == found and not measured & listed
    assert measured == {p for p in found if p.endswith((".edf", ".cfs", ".mat"))}
    n_edf = sum(1 for p in found if p.endswith(".edf"))
    n_mat = sum(1 for p in found if p.endswith(".mat"))
    assert (
        f"{n_edf + 1 + n_mat} file(s) measured" in out and f"{len(listed)} file(s) not read" in out
    )
    cfs = responses[responses["source_file"] == "real/cfs/test_file.cfs"]
    assert len(cfs) == 3 and set(cfs["status"]) == {"unknown_modality"}
    assert "sidecar real/cfs/test_file.cfs.json" in err


def test_info_plot_measure_work_on_the_cfs_file_without_sidecar(capsys, tmp_path):
    code, out, _ = run(capsys, ["info", CFS])
    assert code == 0 and "test_file.cfs: 3 traces" in out and "unknown modality" in out
    code, out, _ = run(capsys, ["plot", CFS, "--out", tmp_path / "cfs.png"])
    assert code == 0 and "3 traces, 0 markers" in out
    assert (tmp_path / "cfs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, _ = run(capsys, ["measure", CFS, "--out", tmp_path / "m", "-q"])
    assert code == 0
    ds = ncsproc.read(CFS)  # the samples are the file's: 27.0336 mV at sample 1 of sweep 2
    assert ds.ncs.trace(2).values[1] == pytest.approx(27.033599853515625e-3, rel=1e-15)


def test_config_default_works_from_any_folder(capsys, tmp_path, monkeypatch):
    exam = tmp_path / "EX0001"
    shutil.copytree(SAMPLES / "EX0001", exam)
    monkeypatch.chdir(tmp_path)
    code, _, _ = run(capsys, ["measure", exam, "--out", "a", "-q"])
    assert code == 0
    code, _, _ = run(capsys, ["measure", exam, "--out", "b", "-q", "--config", "default"])
    assert code == 0
    a, b = (pd.read_csv(tmp_path / d / "responses.csv") for d in ("a", "b"))
    pd.testing.assert_frame_equal(a, b)
    code, _, _ = run(capsys, ["measure", exam, "--out", "c", "-q", "--config", "lab-example"])
    assert code == 0
    c = pd.read_csv(tmp_path / "c" / "responses.csv")
    assert not a["onset_ms"].equals(c["onset_ms"])  # k_detect 5 instead of 4 moves onsets


def test_bundled_pipelines_are_the_repository_ones():
    from ncsproc.features._files import data_path

    for f in sorted((REPO / "pipelines").glob("*.toml")):
        assert data_path("pipelines", f.name).read_bytes() == f.read_bytes(), f.name


def test_every_subcommand_help_has_a_description_and_examples():
    import argparse

    def subparsers(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield name, sub
                    yield from ((f"{name} {n}", s) for n, s in subparsers(sub))

    seen = []
    for name, sub in subparsers(build_parser()):
        text = sub.format_help()
        assert sub.description, name
        assert "examples:" in text, name
        seen.append(name)
    assert {"extract", "measure", "info", "simulate", "report", "plot", "registry push"} <= set(
        seen
    )


def test_the_time_accessor_and_plot_of_a_trace_set_in_memory(tmp_path):
    f = SAMPLES / "EX0001" / "L_median_motor.edf"
    ds = ncsproc.read(f)
    one = ds.ncs.trace(1)
    n, fs, t0 = int(ds.n_samples[1]), float(ds.sampling_rate[1]), float(ds.t_start[1])
    assert one.dims == ("time",) and one.sizes["time"] == n
    np.testing.assert_array_equal(one["time"].values, t0 + np.arange(n) / fs)
    np.testing.assert_array_equal(one.values, ncsproc.trace_values(ds, 1))
    np.testing.assert_array_equal(ds.ncs.time(1), one["time"].values)
    result = ncsproc.plot(ds, tmp_path / "m.svg")
    from_file = ncsproc.plot_file(f, tmp_path / "f.svg")
    assert result.n_traces == ds.sizes["trace"] and result.figure is not None
    pd.testing.assert_frame_equal(result.markers, from_file.markers)


def test_measure_fills_missing_attrs_and_contract_units():
    ds = ncsproc.read(SAMPLES / "EX0001" / "L_median_motor.edf")
    bare = ds.copy()
    bare.attrs = {"schema": ds.attrs["schema"]}
    bare["distance"].attrs = {}
    bare = bare.drop_vars("temperature")
    got, want = ncsproc.measure(bare), ncsproc.measure(ds)
    np.testing.assert_array_equal(got["onset_latency"].values, want["onset_latency"].values)
    assert got.attrs["ncsproc_version"] == ncsproc.__version__
    assert got["distance"].attrs["units"] == "m"
    assert np.isnan(got["temperature"].values).all()
    wrong = ds.copy()
    wrong["distance"].attrs = {"units": "mm"}  # converting silently could make a number wrong
    with pytest.raises(ncsproc.SchemaError, match="distance"):
        ncsproc.measure(wrong)
