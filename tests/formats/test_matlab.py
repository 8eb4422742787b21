"""The MATLAB reader: the real MEPFeatX sweeps, level 5 and 7.3 round trips, sidecars, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

import ncsproc
from ncsproc.errors import FormatError
from ncsproc.formats import READERS, detect
from ncsproc.formats.matlab import list_variables, read_matlab

REAL = Path(__file__).resolve().parents[2] / "data_samples" / "real" / "mepfeatx"
# Complete clinical facts, for files that must go through ncsproc.read and its validation.
CLINICAL = {"modality": "motor", "nerve": "median", "side": "R", "record_site": "APB"}


def _sidecar(path: Path, **keys) -> Path:
    Path(str(path) + ".json").write_text(json.dumps(keys), encoding="utf-8")
    return path


def write_mat73(path: Path, variables: dict) -> Path:
    """A MAT-file as MATLAB 7.3 writes it: a 512-byte user block with the header text, then
    HDF5; arrays stored column-major (the HDF5 shape is the MATLAB shape reversed), each with
    its ``MATLAB_class``; text as uint16 characters."""
    header = (
        b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 "
        b"HDF5 schema 1.00 ."
    )
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            if isinstance(value, str):
                data = np.array([[ord(c) for c in value]], dtype=np.uint16)
                ds = f.create_dataset(name, data=data.T)
                ds.attrs["MATLAB_class"] = np.bytes_("char")
                ds.attrs["MATLAB_int_decode"] = np.int32(2)
                continue
            arr = np.asarray(value)
            cls = {"float64": "double", "float32": "single"}.get(str(arr.dtype), str(arr.dtype))
            if arr.size == 0:
                ds = f.create_dataset(name, data=np.array(arr.shape, dtype=np.uint64))
                ds.attrs["MATLAB_empty"] = np.uint8(1)
            else:
                ds = f.create_dataset(name, data=arr.T)
            ds.attrs["MATLAB_class"] = np.bytes_(cls)
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM")
    return path


# --------------------------------------------------------------------------------------------
# the real sweeps
# --------------------------------------------------------------------------------------------


def test_real_id01_is_read_exactly():
    ds = read_matlab(REAL / "ID01.mat")
    meps = scipy.io.loadmat(REAL / "ID01.mat")["meps"]
    assert meps.shape == (451, 152)
    assert ds.sizes["trace"] == 152 and ds.sizes["sample"] == 451
    assert (ds["n_samples"].values == 451).all()
    assert (ds["sampling_rate"].values == 3000.0).all()
    assert np.allclose(ds["t_start"].values, -0.05, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(ds["signal"].values, meps.T * 1e-6)
    assert list(ds["record"].values) == list(range(152))
    assert set(ds["modality"].values) == {"mep"}
    assert set(ds["record_site"].values) == {"FDI"}
    assert set(ds["exam_id"].values) == {"MEPFEATX-ID01"}
    assert set(ds["side"].values) == {""} and set(ds["nerve"].values) == {""}  # unknown
    assert ds.attrs["matlab_variable"] == "meps" and ds.attrs["matlab_version"] == "5"
    # the header text ("Platform: PCWIN64, Created on: Thu Jul 27 ...") never reaches the Dataset
    assert b"Created on: Thu Jul 27" in (REAL / "ID01.mat").read_bytes()[:116]
    texts = [str(v) for v in ds.attrs.values()] + [
        str(x) for name in ds.coords for x in np.asarray(ds[name].values).ravel()
    ]
    assert not [t for t in texts if "PCWIN64" in t or "Jul 27" in t]


def test_real_id02_reads_meps_and_never_raw_meps():
    ds = read_matlab(REAL / "ID02.mat")
    data = scipy.io.loadmat(REAL / "ID02.mat")
    assert ds.sizes["trace"] == 40 and ds.sizes["sample"] == 601
    np.testing.assert_array_equal(ds["signal"].values, data["meps"].T * 1e-6)
    assert not np.array_equal(data["meps"], data["raw_meps"])
    assert set(ds["record_site"].values) == {"TA"}


def test_two_candidate_variables_need_the_variable_key(tmp_path):
    path = shutil.copy(REAL / "ID02.mat", tmp_path / "ID02.mat")
    _sidecar(Path(path), sampling_rate=3000, units="uV", modality="mep")
    with pytest.raises(FormatError) as err:
        read_matlab(path)
    msg = str(err.value)
    assert msg.startswith("ID02.mat: 2 variables could hold the sweeps")
    assert "'meps' (601 x 40 double)" in msg and "'raw_meps' (601 x 40 double)" in msg
    assert '"variable": "meps" in ID02.mat.json' in msg


def test_real_file_without_sidecar_names_the_missing_keys(tmp_path):
    path = shutil.copy(REAL / "ID01.mat", tmp_path / "ID01.mat")
    with pytest.raises(FormatError) as err:
        ncsproc.read(path)
    msg = str(err.value)
    assert msg.startswith("ID01.mat: ")
    assert '"sampling_rate"' in msg and '"units"' in msg and '"modality"' in msg
    assert "to ID01.mat.json" in msg and "motor, sensory, fwave, mep" in msg


def test_detection_picks_matlab_for_both_levels(tmp_path):
    v73 = write_mat73(tmp_path / "a.mat", {"x": np.ones((5, 2))})
    for path in (REAL / "ID01.mat", v73):
        accepted, _ = detect(path)
        assert [r.name for r in accepted] == ["matlab"], path


# --------------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------------


def _sweeps(n_sweeps=4, n_samples=200, seed=3):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 0.5, (n_sweeps, n_samples))  # mV, sweeps x samples


def test_level5_round_trip_sweeps_x_samples_in_mv(tmp_path):
    x = _sweeps()
    path = tmp_path / "EX01" / "ulnar.mat"
    path.parent.mkdir()
    scipy.io.savemat(path, {"data": x, "name": "Doe Jane"})
    _sidecar(
        path,
        orientation="sweeps_x_samples",
        sampling_rate="10 kHz",
        pretrigger="2 ms",
        units="mV",
        **CLINICAL,
    )
    ds = ncsproc.read(path)
    np.testing.assert_array_equal(ds["signal"].values, x * 1e-3)
    assert (ds["sampling_rate"].values == 10000.0).all()
    assert np.allclose(ds["t_start"].values, -0.002, rtol=0, atol=1e-15)
    assert list(ds["trace"].values) == [f"EX01/R_median_motor/{k}" for k in range(4)]
    assert "Doe Jane" not in str(ds)  # only the chosen variable is read


def test_level73_round_trip_samples_x_sweeps_with_a_rate_variable(tmp_path):
    x = _sweeps(3, 150).T  # samples x sweeps, as MATLAB code usually keeps them
    path = write_mat73(
        tmp_path / "tibial.mat",
        {"emg": x.astype(np.float32), "Fs": np.array([[5000.0]]), "subject": "Doe Jane"},
    )
    _sidecar(
        path, variable="emg", sampling_rate_variable="Fs", units="V", t_start=-0.01, **CLINICAL
    )
    assert [v.describe() for v in list_variables(path)] == [
        "'Fs' (1 x 1 double)",
        "'emg' (150 x 3 single)",
        "'subject' (1 x 8 char)",
    ]
    ds = ncsproc.read(path)
    np.testing.assert_array_equal(ds["signal"].values, x.T.astype(np.float32).astype(np.float64))
    assert (ds["sampling_rate"].values == 5000.0).all()
    assert (ds["t_start"].values == -0.01).all()
    assert ds.attrs["matlab_version"] == "7.3"


def test_integer_samples_are_scaled_in_double_precision(tmp_path):
    x = np.arange(-60, 60, dtype=np.int16).reshape(40, 3)  # samples x sweeps
    path = tmp_path / "counts.mat"
    scipy.io.savemat(path, {"counts": x})
    _sidecar(path, sampling_rate=2000, units="uV", **CLINICAL)
    ds = ncsproc.read(path)
    np.testing.assert_array_equal(ds["signal"].values, x.T.astype(np.float64) * 1e-6)


def test_trailing_nan_makes_a_shorter_sweep(tmp_path):
    x = _sweeps(2, 50).T.copy()
    x[40:, 1] = np.nan
    path = tmp_path / "short.mat"
    scipy.io.savemat(path, {"s": x})
    _sidecar(path, sampling_rate=1000, units="mV", **CLINICAL)
    ds = ncsproc.read(path)
    assert list(ds["n_samples"].values) == [50, 40]
    np.testing.assert_array_equal(ds["signal"].values[1, :40], x[:40, 1] * 1e-3)


def test_records_in_the_sidecar_name_sweeps(tmp_path):
    path = tmp_path / "sites.mat"
    scipy.io.savemat(path, {"s": _sweeps(2, 30).T})
    _sidecar(
        path,
        sampling_rate=1000,
        units="mV",
        records=[{"record": 0, "stim_site": "wrist"}, {"record": 1, "stim_site": "elbow"}],
        **CLINICAL,
    )
    assert list(ncsproc.read(path)["stim_site"].values) == ["wrist", "elbow"]


# --------------------------------------------------------------------------------------------
# sidecar checks and errors
# --------------------------------------------------------------------------------------------


def _mat(tmp_path, variables=None, name="f.mat") -> Path:
    path = tmp_path / name
    scipy.io.savemat(path, variables if variables is not None else {"s": _sweeps(2, 30).T})
    return path


@pytest.mark.parametrize(
    "keys, message",
    [
        ({"units": "mV", "modality": "motor"}, r'add "sampling_rate" \(Hz'),
        ({"sampling_rate": 1000, "modality": "motor"}, r'add "units" of the samples'),
        (
            {"sampling_rate": 1000, "units": "mV"},
            r'add "modality" \(one of motor, sensory, fwave, mep',
        ),
        (
            {"sampling_rate": 1000, "units": "mV", "modality": "emg"},
            r"key 'modality': modality 'emg' is not one of motor, sensory, fwave, mep",
        ),
        (
            {"sampling_rate": 1000, "units": "mA", "modality": "motor"},
            r"'units' is 'mA', expected a voltage unit",
        ),
        (
            {"sampling_rate": 1000, "units": "mV", "modality": "motor", "orientation": "rows"},
            r"'orientation' is 'rows', expected one of \['samples_x_sweeps', 'sweeps_x_samples'\]",
        ),
        (
            {"sampling_rate": 1000, "units": "mV", "modality": "motor", "variable": "t"},
            r"names variable 't', which the file does not hold; "
            r"its variables: 's' \(30 x 2 double\)",
        ),
        (
            {"sampling_rate": 1000, "units": "mV", "modality": "motor", "varaible": "s"},
            r"unknown key\(s\) \['varaible'\]",
        ),
        (
            {
                "sampling_rate": 1000,
                "units": "mV",
                "modality": "motor",
                "orientation": "sweeps_x_samples",
            },
            r'gives sweeps of 1 sample|set "orientation"',
        ),
        (
            {
                "sampling_rate": 1000,
                "units": "mV",
                "modality": "motor",
                "t_start": -0.01,
                "pretrigger": "5 ms",
            },
            r"'t_start' \(-0.01 s\) and 'pretrigger' \(0.005 s\) disagree",
        ),
    ],
)
def test_sidecar_problems_are_named(tmp_path, keys, message):
    import re

    path = _mat(tmp_path, {"s": _sweeps(2, 30).T} if "orientation" not in keys else None)
    if keys.get("orientation") == "sweeps_x_samples":
        path = _mat(tmp_path, {"s": np.ones((30, 1))})  # one sweep, samples x sweeps
    _sidecar(path, **keys)
    with pytest.raises(FormatError) as err:
        read_matlab(path)
    assert str(err.value).startswith("f.mat"), str(err.value)
    assert re.search(message, str(err.value)), str(err.value)


def test_sampling_rate_contradicting_the_rate_variable(tmp_path):
    path = _mat(tmp_path, {"s": _sweeps(2, 30).T, "fs": 2000.0})
    _sidecar(path, sampling_rate=1000, sampling_rate_variable="fs", units="mV", modality="motor")
    with pytest.raises(FormatError, match=r"says sampling_rate = 1000.0 Hz, but variable 'fs'"):
        read_matlab(path)


def test_sidecar_t_start_and_pretrigger_agree(tmp_path):
    path = _mat(tmp_path)
    _sidecar(path, sampling_rate=1000, units="mV", t_start="-5 ms", pretrigger=0.005, **CLINICAL)
    assert (ncsproc.read(path)["t_start"].values == -0.005).all()


@pytest.mark.parametrize(
    "variables, message",
    [
        ({"s": np.zeros((0, 3))}, r"no 2-D numeric variable holds sweeps"),
        (
            {"s": "some text"},
            r"no 2-D numeric variable holds sweeps; the file's variables: 's' \(1 char\)",
        ),
        ({"s": np.ones((4, 3, 2))}, r"no 2-D numeric variable"),
        ({"s": np.ones((4, 3)) * (1 + 1j)}, r"holds complex numbers"),
        (
            {"s": np.array([[1.0, np.nan], [np.nan, 2.0], [3.0, 4.0]])},
            r"sweep 0 \(column 1\), sample 1 \(row 2\) is NaN inside the sweep",
        ),
        (
            {"s": np.array([[1.0, np.inf], [2.0, 2.0]])},
            r"sweep 1 \(column 2\), sample 0 \(row 1\) is infinite",
        ),
        (
            {"s": np.array([[1.0, np.nan], [2.0, np.nan]])},
            r"sweep 1 \(column 2\) has no samples \(all NaN\)",
        ),
    ],
)
def test_bad_arrays_are_refused_with_their_place(tmp_path, variables, message):
    import re

    path = _mat(tmp_path, variables)
    _sidecar(path, sampling_rate=1000, units="mV", modality="motor")
    with pytest.raises(FormatError) as err:
        read_matlab(path)
    assert str(err.value).startswith("f.mat: "), str(err.value)
    assert re.search(message, str(err.value)), str(err.value)


def test_chosen_variable_must_be_numeric_and_2d(tmp_path):
    path = _mat(tmp_path, {"s": "text", "x": np.ones((4, 3))})
    _sidecar(path, sampling_rate=1000, units="mV", modality="motor", variable="s")
    with pytest.raises(FormatError, match=r"variable 's' \(1 char\) is not numeric"):
        read_matlab(path)
    one_d = write_mat73(tmp_path / "g.mat", {"v": np.ones((2, 2))})
    with h5py.File(one_d, "a") as f:  # a 1-D dataset, as a non-MATLAB HDF5 writer would make
        d = f.create_dataset("w", data=np.ones(10))
        d.attrs["MATLAB_class"] = np.bytes_("double")
    _sidecar(one_d, sampling_rate=1000, units="mV", modality="motor", variable="w")
    with pytest.raises(FormatError, match=r"'w' \(10 double\) has 1 dimension\(s\)"):
        read_matlab(one_d)


def test_level73_empty_variable(tmp_path):
    path = write_mat73(tmp_path / "e.mat", {"s": np.zeros((0, 3))})
    _sidecar(path, sampling_rate=1000, units="mV", modality="motor")
    with pytest.raises(FormatError, match=r"e\.mat: no 2-D numeric variable holds sweeps"):
        read_matlab(path)


@pytest.mark.parametrize("keep", [10, 116, 128, 200, 600])
def test_truncated_files_name_the_file(tmp_path, keep):
    raw = (REAL / "ID01.mat").read_bytes()[:keep]
    path = tmp_path / "ID01.mat"
    path.write_bytes(raw)
    shutil.copy(REAL / "ID01.mat.json", tmp_path / "ID01.mat.json")
    with pytest.raises(FormatError, match=r"^ID01\.mat: "):
        ncsproc.read(path, format="matlab")


def test_not_a_mat_file(tmp_path):
    path = tmp_path / "x.mat"
    path.write_bytes(b"hello world" * 20)
    with pytest.raises(ncsproc.errors.UnsupportedFormatError, match="matlab: no 'MATLAB 5.0"):
        ncsproc.read(path)
    with pytest.raises(FormatError, match=r"x\.mat: bytes 0-115 hold neither"):
        ncsproc.read(path, format="matlab")


def test_reader_is_registered_with_its_keys():
    reader = READERS["matlab"]
    assert reader.extensions == (".mat",)
    assert set(reader.sidecar_keys) == {
        "variable",
        "orientation",
        "sampling_rate_variable",
        "pretrigger",
        "units",
    }


# --------------------------------------------------------------------------------------------
# the commands
# --------------------------------------------------------------------------------------------


def test_mat_files_go_through_info_and_measure(tmp_path, capsys):
    from ncsproc.cli import main
    from ncsproc.pipeline.inputs import collect_files, trace_suffixes

    assert ".mat" in trace_suffixes()
    exam = tmp_path / "EX07"
    exam.mkdir()
    path = READERS["matlab"].example(exam)
    assert [Path(f.path).name for f in collect_files([tmp_path])] == [path.name]
    assert main(["info", str(exam)]) == 0
    out = capsys.readouterr().out
    assert "median_motor.mat: 3 traces" in out and "valid ncsproc-traces/1" in out
    assert main(["measure", str(exam), "--out", str(tmp_path / "m")]) == 0
    import pandas as pd

    rows = pd.read_csv(tmp_path / "m" / "responses.csv")
    assert len(rows) == 3 and set(rows["source_file"]) == {"median_motor.mat"}
