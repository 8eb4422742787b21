"""Pre-epoched sweeps saved from MATLAB (``.mat``, MAT-file levels 5 and 7.3).

A MAT-file holds named arrays and nothing about what they mean. The sweeps are one 2-D numeric
variable (samples x sweeps, or sweeps x samples); its sampling rate, time zero, unit and the
clinical facts come from the sidecar ``<file>.json`` (full reference: ``formats/matlab.md``):

* ``variable``: which array holds the sweeps (default: the only 2-D numeric variable with more
  than one element; scalars such as a sampling rate do not count);
* ``orientation``: ``"samples_x_sweeps"`` (default, MATLAB's column-per-sweep habit) or
  ``"sweeps_x_samples"``;
* ``sampling_rate`` (Hz, or ``"3 kHz"``) or ``sampling_rate_variable`` (a scalar variable of
  the file holding it in Hz); required;
* ``t_start`` (s, time of sample 0 relative to the stimulus: ``-0.05`` or ``"-50 ms"``) or
  ``pretrigger`` (s before the stimulus: ``"50 ms"``); default 0 (the sweep starts at the
  stimulus, as the contract says);
* ``units`` of the samples (``"uV"``, ``"mV"``, ``"V"``); required;
* ``modality`` (motor, sensory, fwave, mep); required, since the measurement's windows depend
  on it; every other clinical coordinate (nerve, side, sites, ids, ...) is optional and stays
  unknown when nobody gives it.

Level 5 files (header text ``MATLAB 5.0 MAT-file``) are read with :mod:`scipy.io`; level 7.3
files are HDF5 with a 512-byte MATLAB header in the user block, read with :mod:`h5py`
(MATLAB writes arrays column-major, so an HDF5 dataset's shape is the MATLAB shape reversed).
Only the chosen variable (and the sampling-rate scalar, when named) is read: other variables,
which may hold names, and the header text, which holds the date the file was written, never
reach the trace set.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import FormatError
from ..vocab import MODALITIES
from . import Reader
from ._sidecar import coord_value, load_sidecar, parse_quantity, unit_factor

# Keys this reader reads itself (besides the trace-set coordinates).
SIDECAR_KEYS = ("variable", "orientation", "sampling_rate_variable", "pretrigger", "units")
ORIENTATIONS = ("samples_x_sweeps", "sweeps_x_samples")
NUMERIC_CLASSES = (
    "double",
    "single",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
)
V5_TEXT = b"MATLAB 5.0 MAT-file"
V73_TEXT = b"MATLAB 7.3 MAT-file"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
V73_USERBLOCK = 512
# A damaged header can declare a huge array; refuse before allocating (a compressed level-5
# variable may be larger than its file, so the limit is generous).
MAX_ARRAY_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class MatVariable:
    """One variable of a MAT-file: name, MATLAB shape and MATLAB class."""

    name: str
    shape: tuple[int, ...]
    matlab_class: str

    @property
    def numeric(self) -> bool:
        return self.matlab_class in NUMERIC_CLASSES

    def describe(self) -> str:
        return f"{self.name!r} ({' x '.join(str(d) for d in self.shape)} {self.matlab_class})"


# ---------------------------------------------------------------------------------------------
# The two file levels


def mat_version(path: str | os.PathLike) -> str:
    """``"5"`` or ``"7.3"`` from the header text; FormatError for anything else."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(V73_USERBLOCK + len(HDF5_SIGNATURE))
    if V5_TEXT in head[:116]:
        return "5"
    if V73_TEXT in head[:116]:
        if head[V73_USERBLOCK:] != HDF5_SIGNATURE:
            raise FormatError(
                f"{path.name}: the header says MATLAB 7.3 but byte {V73_USERBLOCK} does not hold "
                "the HDF5 signature (truncated or damaged file)"
            )
        return "7.3"
    if head[:4] == b"\x00\x00\x00\x00" or not head:
        raise FormatError(
            f"{path.name}: bytes 0-115 do not hold a MAT-file header text; a MATLAB 4 (or "
            "empty) file is not supported: save it from MATLAB with save(..., '-v7')"
        )
    raise FormatError(
        f"{path.name}: bytes 0-115 hold neither 'MATLAB 5.0 MAT-file' nor 'MATLAB 7.3 MAT-file'"
    )


def _damaged(name: str, version: str, exc: Exception) -> FormatError:
    return FormatError(
        f"{name}: not a readable MATLAB {version} MAT-file ({type(exc).__name__}: {exc}); "
        "truncated or damaged?"
    )


def list_variables(path: str | os.PathLike) -> list[MatVariable]:
    """The variables of a MAT-file (names, MATLAB shapes, classes), without reading their data.

    Raises
    ------
    FormatError
        The file is not a MATLAB 5 or 7.3 MAT-file, or is damaged.
    """
    path = Path(path)
    version = mat_version(path)
    try:
        if version == "5":
            import scipy.io

            return [
                MatVariable(str(n), tuple(int(d) for d in shape), str(cls))
                for n, shape, cls in scipy.io.whosmat(path)
            ]
        return _list_v73(path)
    except FormatError:
        raise
    except Exception as exc:  # scipy and h5py raise many types on damaged files
        raise _damaged(path.name, version, exc) from None


def _h5_class(obj) -> str:
    raw = obj.attrs.get("MATLAB_class", b"")
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
    if not text and hasattr(obj, "dtype"):
        text = {"f": "double", "i": "int64", "u": "uint64"}.get(obj.dtype.kind, str(obj.dtype))
    return text


def _list_v73(path: Path) -> list[MatVariable]:
    import h5py

    out = []
    with h5py.File(path, "r") as f:
        for key in f:
            if key.startswith("#"):  # #refs#, #subsystem#: MATLAB's own storage
                continue
            obj = f[key]
            cls = _h5_class(obj)
            if isinstance(obj, h5py.Dataset):
                if obj.attrs.get("MATLAB_empty", 0):
                    shape = (0, 0)
                elif obj.dtype.names:  # complex numbers: a (real, imag) compound
                    cls = f"complex {cls}"
                    shape = tuple(int(d) for d in obj.shape[::-1])
                else:
                    shape = tuple(int(d) for d in obj.shape[::-1])
            else:
                shape = ()
                cls = cls or "struct"
            out.append(MatVariable(key, shape, cls))
    return out


def _read_variable(path: Path, version: str, var: MatVariable) -> np.ndarray:
    """The data of one variable, in its MATLAB shape."""
    try:
        if version == "5":
            import scipy.io

            data = scipy.io.loadmat(
                path, variable_names=[var.name], squeeze_me=False, struct_as_record=True
            )
            if var.name not in data:
                raise FormatError(f"{path.name}: variable {var.name!r} could not be read")
            return np.asarray(data[var.name])
        import h5py

        with h5py.File(path, "r") as f:
            obj = f[var.name]
            if obj.attrs.get("MATLAB_empty", 0):
                return np.zeros((0, 0))
            return np.asarray(obj[()]).T
    except FormatError:
        raise
    except Exception as exc:
        raise _damaged(path.name, version, exc) from None


# ---------------------------------------------------------------------------------------------
# Settings from the sidecar


def _text_setting(data: dict, key: str, where: str) -> str | None:
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise FormatError(f"{where}: key '{key}' must be a non-empty string, found {value!r}")
    return value.strip()


def _choose_variable(name: str, variables: list[MatVariable], wanted: str | None, sidecar: str):
    if wanted is not None:
        for var in variables:
            if var.name == wanted:
                return var
        listed = ", ".join(v.describe() for v in variables) or "none"
        raise FormatError(
            f"{name}: {sidecar} names variable {wanted!r}, which the file does not hold; "
            f"its variables: {listed}"
        )
    candidates = [
        v for v in variables if v.numeric and len(v.shape) == 2 and math.prod(v.shape) > 1
    ]
    if len(candidates) == 1:
        return candidates[0]
    listed = ", ".join(v.describe() for v in variables) or "none"
    if not candidates:
        raise FormatError(
            f"{name}: no 2-D numeric variable holds sweeps; the file's variables: {listed}"
        )
    raise FormatError(
        f"{name}: {len(candidates)} variables could hold the sweeps "
        f"({', '.join(v.describe() for v in candidates)}); say which with "
        f'"variable": "{candidates[0].name}" in {sidecar}'
    )


def _check_shape(name: str, var: MatVariable, orientation: str, sidecar: str) -> None:
    what = f"{name}: variable {var.describe()}"
    if not var.numeric:
        raise FormatError(
            f"{what} is not numeric; the sweeps must be a real {', '.join(NUMERIC_CLASSES[:2])} "
            "or integer matrix"
        )
    if len(var.shape) != 2:
        raise FormatError(
            f"{what} has {len(var.shape)} dimension(s); expected a 2-D matrix of samples x sweeps "
            'or sweeps x samples (set "orientation")'
        )
    if 0 in var.shape:
        raise FormatError(f"{what} is empty")
    n_samples = var.shape[0] if orientation == "samples_x_sweeps" else var.shape[1]
    if n_samples == 1:
        other = ORIENTATIONS[1 - ORIENTATIONS.index(orientation)]
        raise FormatError(
            f"{what} read as {orientation} gives sweeps of 1 sample; if each row is a sweep, "
            f'set "orientation": "{other}" in {sidecar}'
        )
    itemsize = 8
    if math.prod(var.shape) * itemsize > MAX_ARRAY_BYTES:
        raise FormatError(
            f"{what} declares {math.prod(var.shape) * itemsize} bytes of samples, more than the "
            f"{MAX_ARRAY_BYTES} bytes this reader accepts (damaged header?)"
        )


def _scalar_rate(path: Path, version: str, variables, key_value: str, sidecar: str) -> float:
    var = _choose_variable(path.name, variables, key_value, sidecar)
    if not var.numeric or math.prod(var.shape) != 1:
        raise FormatError(
            f"{path.name}: sampling_rate_variable names {var.describe()}; expected a numeric "
            "scalar (1 x 1) holding the sampling rate in Hz"
        )
    value = np.asarray(_read_variable(path, version, var)).ravel()
    if value.size != 1 or np.iscomplexobj(value):
        raise FormatError(f"{path.name}: variable {var.name!r} is not a real scalar")
    rate = float(value[0])
    if not (math.isfinite(rate) and rate > 0):
        raise FormatError(
            f"{path.name}: variable {var.name!r} (sampling_rate_variable) holds {rate!r}; "
            "expected a positive sampling rate in Hz"
        )
    return rate


# ---------------------------------------------------------------------------------------------
# The trace set


def _sweeps(name: str, var: MatVariable, array: np.ndarray, orientation: str) -> list[int]:
    """Valid sample count of each sweep (rows of ``array``); NaN may only end a sweep."""
    if np.iscomplexobj(array):
        raise FormatError(f"{name}: variable {var.name!r} holds complex numbers; expected real")
    if array.dtype.kind not in "fiu":
        raise FormatError(
            f"{name}: variable {var.name!r} holds {array.dtype} values; expected numbers"
        )
    if array.dtype.kind != "f":
        return [array.shape[1]] * array.shape[0]
    sweep_is = "column" if orientation == "samples_x_sweeps" else "row"
    sample_is = "row" if sweep_is == "column" else "column"
    inf = np.isinf(array)
    if inf.any():
        j, k = (int(x) for x in np.argwhere(inf)[0])
        raise FormatError(
            f"{name}: variable {var.name!r}, sweep {j} ({sweep_is} {j + 1}), sample {k} "
            f"({sample_is} {k + 1}) is infinite"
        )
    counts = []
    nan = np.isnan(array)
    for j in range(array.shape[0]):
        if not nan[j].any():
            counts.append(array.shape[1])
            continue
        valid = np.flatnonzero(~nan[j])
        if valid.size == 0:
            raise FormatError(
                f"{name}: variable {var.name!r}, sweep {j} ({sweep_is} {j + 1}) has no samples "
                "(all NaN)"
            )
        last = int(valid[-1])
        holes = np.flatnonzero(nan[j, : last + 1])
        if holes.size:
            k = int(holes[0])
            raise FormatError(
                f"{name}: variable {var.name!r}, sweep {j} ({sweep_is} {j + 1}), sample {k} "
                f"({sample_is} {k + 1}) is NaN inside the sweep; only the end of a sweep may "
                "be NaN (a shorter sweep)"
            )
        counts.append(last + 1)
    return counts


def read_matlab(path: str | os.PathLike) -> xr.Dataset:
    """Read the sweeps of a MAT-file (level 5 or 7.3) described by its sidecar.

    Parameters
    ----------
    path : path-like
        The ``.mat`` file; its sidecar ``<file>.json`` (or ``<stem>.json``) gives what the
        file does not say (keys in the module docstring and ``formats/matlab.md``).

    Returns
    -------
    xarray.Dataset
        One trace per sweep, ``record`` = the sweep's 0-based index, samples in V. The
        sidecar's clinical coordinates are applied (its ``records`` entries too); what nobody
        gives stays unknown ("" or NaN), and then the set is returned unvalidated
        (``ncsproc.read`` completes and validates it).

    Raises
    ------
    FormatError
        The file is not a readable MAT-file; the sampling rate, unit or modality is not
        given (the message names the sidecar keys to add); the variable is missing,
        ambiguous, not a real 2-D numeric matrix, or holds NaN inside or infinite samples.
    """
    from ..schema import make_trace_set, validate_trace_set
    from ._sidecar import apply_sidecar

    path = Path(path)
    name = path.name
    data, side = load_sidecar(path)
    data = data or {}
    sidecar = side.name if side is not None else f"{name}.json"
    where = f"{sidecar}"
    version = mat_version(path)
    variables = list_variables(path)

    orientation = _text_setting(data, "orientation", where) or ORIENTATIONS[0]
    if orientation not in ORIENTATIONS:
        raise FormatError(
            f"{where}: 'orientation' is {orientation!r}, expected one of {list(ORIENTATIONS)}"
        )
    rate_variable = _text_setting(data, "sampling_rate_variable", where)
    rate = None
    if "sampling_rate" in data:
        rate = parse_quantity(data["sampling_rate"], "frequency", f"{where}: key 'sampling_rate'")
    if rate_variable is not None:
        from_file = _scalar_rate(path, version, variables, rate_variable, sidecar)
        if rate is not None and not math.isclose(rate, from_file, rel_tol=1e-6):
            raise FormatError(
                f"{name}: {sidecar} says sampling_rate = {rate!r} Hz, but variable "
                f"{rate_variable!r} holds {from_file!r} Hz"
            )
        rate = from_file
    units = _text_setting(data, "units", where)
    modality = None
    if "modality" in data:
        modality = coord_value("modality", data["modality"], f"{where}: key 'modality'")

    missing = []
    if rate is None:
        missing.append('"sampling_rate" (Hz, e.g. 3000 or "3 kHz"; or "sampling_rate_variable")')
    if units is None:
        missing.append('"units" of the samples ("uV", "mV" or "V")')
    if not modality:
        missing.append(
            f'"modality" (one of {", ".join(MODALITIES)}: the measurement windows depend on it)'
        )
    if missing:
        raise FormatError(
            f"{name}: a MAT-file does not say what its numbers mean, and it cannot be measured "
            f"without it: add {'; '.join(missing)} to {sidecar} (see `ncsproc docs matlab`)"
        )
    if not (math.isfinite(rate) and rate > 0):
        raise FormatError(f"{where}: sampling rate {rate!r} Hz, expected a positive number")
    try:
        factor = float(unit_factor("voltage", units))
    except KeyError:
        raise FormatError(
            f"{where}: 'units' is {units!r}, expected a voltage unit: uV, mV or V"
        ) from None

    t_start = 0.0
    if "t_start" in data:
        t_start = parse_quantity(data["t_start"], "time", f"{where}: key 't_start'")
    if "pretrigger" in data:
        pre = parse_quantity(data["pretrigger"], "time", f"{where}: key 'pretrigger'")
        if not (math.isfinite(pre) and pre >= 0):
            raise FormatError(f"{where}: 'pretrigger' is {pre!r} s, expected >= 0")
        if "t_start" in data and not math.isclose(t_start, -pre, rel_tol=1e-9, abs_tol=1e-12):
            raise FormatError(
                f"{where}: 't_start' ({t_start!r} s) and 'pretrigger' ({pre!r} s) disagree; "
                "t_start = -pretrigger (give one of them)"
            )
        t_start = -pre
    if not math.isfinite(t_start):
        raise FormatError(f"{where}: 't_start' is {t_start!r}, expected a finite time in s")

    var = _choose_variable(name, variables, _text_setting(data, "variable", where), sidecar)
    _check_shape(name, var, orientation, sidecar)
    array = _read_variable(path, version, var)
    if array.ndim != 2 or tuple(array.shape) != var.shape:
        raise FormatError(
            f"{name}: variable {var.name!r} declared {var.shape} but holds {array.shape} "
            "(damaged file?)"
        )
    sweeps = array.T if orientation == "samples_x_sweeps" else array
    counts = _sweeps(name, var, sweeps, orientation)
    if sweeps.dtype.kind != "f":
        sweeps = sweeps.astype(np.float64)
    signal = np.ascontiguousarray(sweeps, dtype=np.float64) * factor
    n = signal.shape[0]
    ds = make_trace_set(
        signal,
        n_samples=counts,
        sampling_rate=rate,
        t_start=t_start,
        exam_id="",
        study="",
        nerve="",
        side="",
        modality=modality,
        stim_site="",
        record_site="",
        source_file=name,
        record=list(range(n)),
        trace=[f"//{j}" for j in range(n)],
        attrs={
            "source_format": "matlab",
            "matlab_version": version,
            "matlab_variable": var.name,
            "matlab_orientation": orientation,
        },
        history=(
            f"read {name} (MATLAB {version} MAT-file, variable {var.name!r} "
            f"{' x '.join(str(d) for d in var.shape)} {orientation}, {units})"
        ),
        validate=False,
    )
    if side is not None:
        ds = apply_sidecar(ds, data, side, name, SIDECAR_KEYS)
    ds = _ids(ds)
    if all((ds[k].values.astype(str) != "").all() for k in ("side", "nerve", "modality")):
        try:
            validate_trace_set(ds, source=name)
        except Exception as exc:
            raise FormatError(f"{name}: the sweeps do not make a valid trace set: {exc}") from None
    return ds


def _ids(ds: xr.Dataset) -> xr.Dataset:
    """``study`` = ``<side>_<nerve>_<modality>`` when all are known; ids ``<exam>/<study>/<k>``."""
    side, nerve, modality, study, exam = (
        ds[k].values.astype(str) for k in ("side", "nerve", "modality", "study", "exam_id")
    )
    study = np.array(
        [
            s or (f"{a}_{b}_{c}" if a and b and c else "")
            for s, a, b, c in zip(study, side, nerve, modality, strict=True)
        ],
        dtype=object,
    )
    ids = np.array(
        [f"{e}/{s}/{int(r)}" for e, s, r in zip(exam, study, ds["record"].values, strict=True)],
        dtype=object,
    )
    return ds.assign_coords(
        study=("trace", study, ds["study"].attrs), trace=("trace", ids, ds["trace"].attrs)
    )


load = read_matlab


# ---------------------------------------------------------------------------------------------
# Detection, example, registration


def _sniff(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(116)
    except Exception as exc:  # never raise
        return f"cannot read: {exc}"
    if V5_TEXT in head or V73_TEXT in head:
        return None
    return "no 'MATLAB 5.0 MAT-file' or 'MATLAB 7.3 MAT-file' text in bytes 0-115"


def _example(folder: str | os.PathLike) -> Path:
    """Three simulated median motor sweeps saved from "MATLAB" (level 5, samples x sweeps, uV),
    with a scalar ``fs`` variable, a ``patient`` text variable that must never be read, and the
    sidecar that says what the numbers mean."""
    import json

    import scipy.io

    from ..simulate import response_set

    traces, _ = response_set("motor", 3, seed=2, pretrigger=0.002)
    n = int(traces.n_samples.values.min())
    sweeps_uv = np.asarray(traces.signal.values[:, :n]).T * 1e6  # samples x sweeps
    path = Path(folder) / "median_motor.mat"
    scipy.io.savemat(
        path,
        {
            "sweeps": sweeps_uv,
            "fs": np.array([[float(traces.sampling_rate.values[0])]]),
            "patient": "Doe Jane 1970-03-04",
        },
        format="5",
        do_compression=False,
    )
    sidecar = {
        "variable": "sweeps",
        "orientation": "samples_x_sweeps",
        "sampling_rate_variable": "fs",
        "pretrigger": f"{-float(traces.t_start.values[0]) * 1e3:g} ms",
        "units": "uV",
        "modality": "motor",
        "nerve": "median",
        "side": "L",
        "record_site": "APB",
        "records": [
            {"record": 0, "stim_site": "wrist"},
            {"record": 1, "stim_site": "elbow"},
            {"record": 2, "stim_site": "axilla"},
        ],
    }
    Path(str(path) + ".json").write_text(json.dumps(sidecar, indent=1), encoding="utf-8")
    return path


READER = Reader(
    name="matlab",
    description="pre-epoched sweeps in a MATLAB MAT-file (level 5 or 7.3) described by a sidecar",
    extensions=(".mat",),
    sniff=_sniff,
    load=read_matlab,
    example=_example,
    identifying=("Doe Jane", "1970-03-04"),
    sidecar_keys=SIDECAR_KEYS,
    function="ncsproc.formats.matlab.read_matlab",
)
