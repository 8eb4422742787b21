"""The trace set: the one in-memory object every reader produces and every kernel consumes.

The contract is section 1 of the interchange specification (documented in
``formats/trace-set.md``). A trace set is an :class:`xarray.Dataset` with dimensions
``trace`` x ``sample``; ``signal`` holds voltages in V, NaN-padded after each trace's
``n_samples`` valid samples, and every per-trace fact is a coordinate on ``trace``, so that
selections and concatenation across files keep the metadata attached.

The schema itself is data (:data:`TRACE_COORDS`): the constructor, the validator and the
documentation all read the same table.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ._version import __version__
from .errors import SchemaError
from .vocab import MODALITIES, SIDES

SCHEMA = "ncsproc-traces/1"


# Attribute or coordinate names that would carry identifying data; never allowed in a trace set.
PRIVACY_BLOCKLIST = (
    "patient_name",
    "patient",
    "name",
    "first_name",
    "last_name",
    "surname",
    "birth_date",
    "birthdate",
    "date_of_birth",
    "dob",
    "patient_id",
    "patient_code",
    "hospital_id",
    "mrn",
    "address",
)


@dataclass(frozen=True)
class CoordSpec:
    """One per-trace coordinate of the trace set."""

    name: str
    kind: str  # "str", "float", "int"
    units: str | None
    description: str
    required: bool = True
    default: object = None


TRACE_COORDS: tuple[CoordSpec, ...] = (
    CoordSpec(
        "trace", "str", None, "unique id within the Dataset, e.g. <exam_id>/<study>/<record>"
    ),
    CoordSpec("sampling_rate", "float", "Hz", "sampling rate of the trace"),
    CoordSpec("t_start", "float", "s", "time of sample 0 relative to the stimulus"),
    CoordSpec("n_samples", "int", None, "valid samples of this trace"),
    CoordSpec("exam_id", "str", None, "one patient visit"),
    CoordSpec("subject_id", "str", None, "pseudonymous subject id; never a name or a birth date"),
    CoordSpec("study", "str", None, "one nerve test within the exam, e.g. L_median_motor"),
    CoordSpec("nerve", "str", None, "lower-case nerve name"),
    CoordSpec("side", "str", None, "L or R"),
    CoordSpec("modality", "str", None, "motor, sensory, fwave or mep"),
    CoordSpec("stim_site", "str", None, "lower-case stimulation site words"),
    CoordSpec("record_site", "str", None, "recording site (muscle or digit)"),
    CoordSpec(
        "distance",
        "float",
        "m",
        "stimulating cathode to active recording electrode",
        default=np.nan,
    ),
    CoordSpec("stim_intensity", "float", "A", "stimulus current", default=np.nan),
    CoordSpec("stim_duration", "float", "s", "stimulus pulse width", default=np.nan),
    CoordSpec(
        "highpass", "float", "Hz", "acquisition high-pass (low-frequency) corner", default=np.nan
    ),
    CoordSpec(
        "lowpass", "float", "Hz", "acquisition low-pass (high-frequency) corner", default=np.nan
    ),
    CoordSpec("temperature", "float", "degC", "limb temperature", default=np.nan),
    CoordSpec("age", "float", "years", "subject age at the exam", default=np.nan),
    CoordSpec("height", "float", "cm", "subject height", default=np.nan),
    CoordSpec("source_file", "str", None, "file name relative to the input root", default=""),
    CoordSpec("record", "int", None, "0-based index of the sweep in its source file"),
)
COORDS_BY_NAME = {c.name: c for c in TRACE_COORDS}

# Groups of the coordinates above, in their order, for code that handles a group as a whole.
EXAM_COORDS = ("exam_id", "subject_id")
"""The coordinates naming the exam and its (pseudonymous) subject."""
STUDY_COORDS = ("study", "nerve", "side", "modality")
"""The coordinates naming a study (one nerve test)."""
SITE_COORDS = ("stim_site", "record_site")
ACQUISITION_COORDS = (
    "distance",
    "stim_intensity",
    "stim_duration",
    "highpass",
    "lowpass",
    "temperature",
)
"""The numeric facts of one acquisition (SI units, NaN when unknown)."""
SUBJECT_COORDS = ("age", "height")
LABEL_COORDS = (*EXAM_COORDS, *STUDY_COORDS, *SITE_COORDS)
"""Every free-text label of a trace (exam, study, sites)."""

_KIND_CHECK = {
    "str": lambda a: a.dtype.kind in "OUS",
    "float": lambda a: a.dtype.kind == "f",
    "int": lambda a: a.dtype.kind in "iu",
}


def _utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def history_line(step: str) -> str:
    """Return one provenance line: ``<UTC time> ncsproc <version>: <step>``."""
    return f"{_utc_now()} ncsproc {__version__}: {step}"


def append_history(ds: xr.Dataset, step: str) -> xr.Dataset:
    """Return ``ds`` with one more ``history`` line (the input is not modified)."""
    out = ds.copy()
    previous = out.attrs.get("history", "")
    out.attrs["history"] = f"{previous}\n{history_line(step)}" if previous else history_line(step)
    return out


def complete_trace_set(ds: xr.Dataset) -> xr.Dataset:
    """Fill in what a hand-made trace set may lack and what cannot change a number.

    The ``history`` attribute (empty) and ``ncsproc_version`` (this version) when missing; the
    contract unit of a coordinate that has none (``distance`` without a ``units`` attribute
    is in m, by the contract); an optional coordinate that is missing altogether (NaN or "":
    unknown). A unit that is present and wrong is left for :func:`validate_trace_set` to
    refuse, since converting it silently could make a number wrong.

    Returns
    -------
    xarray.Dataset
        ``ds`` itself when nothing was missing, otherwise a shallow copy.
    """
    if not isinstance(ds, xr.Dataset):
        return ds
    attrs = {}
    if "history" not in ds.attrs:
        attrs["history"] = ""
    if "ncsproc_version" not in ds.attrs:
        attrs["ncsproc_version"] = __version__
    coords = {}
    n = ds.sizes.get("trace")
    for spec in TRACE_COORDS:
        var = ds.variables.get(spec.name)
        if var is None:
            if spec.default is not None and n is not None:
                values = np.full(n, spec.default, dtype=object if spec.kind == "str" else None)
                coords[spec.name] = ("trace", values, {"units": spec.units} if spec.units else {})
            continue
        if spec.units is not None and "units" not in var.attrs and var.dims == ("trace",):
            coords[spec.name] = (var.dims, var.values, {**var.attrs, "units": spec.units})
    if not attrs and not coords:
        return ds
    out = ds.assign_coords(coords) if coords else ds.copy()
    out.attrs = {**ds.attrs, **attrs}
    return out


def _as_per_trace(name: str, value, n: int, kind: str) -> np.ndarray:
    """Broadcast a scalar or check a sequence of per-trace values, with the contract's dtype."""
    if isinstance(value, str) or np.ndim(value) == 0:
        values = [value] * n
    else:
        values = list(value)
        if len(values) != n:
            raise SchemaError(f"coordinate '{name}' has {len(values)} values for {n} traces")
    if kind == "str":
        return np.array([("" if v is None else str(v)) for v in values], dtype=object)
    if kind == "float":
        return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.asarray(values, dtype=np.int64)


def make_trace_set(
    signals: np.ndarray | Sequence[np.ndarray],
    *,
    sampling_rate: float | Sequence[float],
    t_start: float | Sequence[float] = 0.0,
    exam_id: str | Sequence[str],
    subject_id: str | Sequence[str] = "",
    study: str | Sequence[str],
    nerve: str | Sequence[str],
    side: str | Sequence[str],
    modality: str | Sequence[str],
    stim_site: str | Sequence[str],
    record_site: str | Sequence[str],
    distance: float | Sequence[float] = np.nan,
    stim_intensity: float | Sequence[float] = np.nan,
    stim_duration: float | Sequence[float] = np.nan,
    highpass: float | Sequence[float] = np.nan,
    lowpass: float | Sequence[float] = np.nan,
    temperature: float | Sequence[float] = np.nan,
    age: float | Sequence[float] = np.nan,
    height: float | Sequence[float] = np.nan,
    source_file: str | Sequence[str] = "",
    record: int | Sequence[int] | None = None,
    trace: Sequence[str] | None = None,
    n_samples: Sequence[int] | None = None,
    dtype: type | str = np.float64,
    attrs: Mapping[str, object] | None = None,
    history: str = "make_trace_set",
    validate: bool = True,
    raw: bool = False,
) -> xr.Dataset:
    """Build a valid trace set from arrays and metadata.

    Parameters
    ----------
    signals : array (n_traces, n_samples) or sequence of 1-D arrays
        Voltages in V (G1 - G2). 1-D arrays of different lengths are NaN-padded to the
        longest. A 2-D array is taken as it is; pass ``n_samples`` if it is already padded.
    sampling_rate, t_start : float or sequence of float
        In Hz and s (time of sample 0 relative to the stimulus).
    exam_id, subject_id, study, nerve, side, modality, stim_site, record_site : str or sequence
        Per-trace metadata of the contract; a scalar applies to every trace.
    distance, stim_intensity, stim_duration, highpass, lowpass, temperature, age, height : float
        In m, A, s, Hz, Hz, degC, years and cm; NaN when unknown.
    source_file : str or sequence of str
        Path relative to the input root (never absolute).
    record : int or sequence of int, optional
        Sweep index in the source file; defaults to 0..n-1.
    trace : sequence of str, optional
        Unique trace ids; default ``<exam_id>/<study>/<record>``.
    n_samples : sequence of int, optional
        Valid samples per trace; default: the length of each 1-D input, or the count up to
        the last non-NaN sample of a 2-D input.
    dtype : float32 or float64
        dtype of ``signal``.
    attrs : mapping, optional
        Extra Dataset attributes (never identifying data).
    history : str
        The first ``history`` line's step description.
    validate : bool
        Run :func:`validate_trace_set` on the result (default True).
    raw : bool
        Return the same trace set as a :class:`RawTraces` (plain numpy, no xarray object):
        the readers' raw layer, for callers that gather many files into one Dataset.

    Returns
    -------
    xarray.Dataset or RawTraces
        The trace set.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise SchemaError(f"signal dtype must be float32 or float64, got {dtype}")
    if isinstance(signals, np.ndarray) and signals.ndim == 2:
        data = np.asarray(signals, dtype=dtype)
        if n_samples is None:
            finite = ~np.isnan(data)
            last = np.where(
                finite.any(axis=1), data.shape[1] - np.argmax(finite[:, ::-1], axis=1), 0
            )
            lengths = last.astype(np.int64)
        else:
            lengths = np.asarray(n_samples, dtype=np.int64)
    else:
        arrays = [np.asarray(s, dtype=dtype).ravel() for s in signals]
        lengths = np.array([a.size for a in arrays], dtype=np.int64)
        width = int(lengths.max()) if arrays else 0
        data = np.full((len(arrays), width), np.nan, dtype=dtype)
        for i, a in enumerate(arrays):
            data[i, : a.size] = a
        if n_samples is not None:
            lengths = np.asarray(n_samples, dtype=np.int64)
    n = data.shape[0]

    given = dict(
        sampling_rate=sampling_rate,
        t_start=t_start,
        exam_id=exam_id,
        subject_id=subject_id,
        study=study,
        nerve=nerve,
        side=side,
        modality=modality,
        stim_site=stim_site,
        record_site=record_site,
        distance=distance,
        stim_intensity=stim_intensity,
        stim_duration=stim_duration,
        highpass=highpass,
        lowpass=lowpass,
        temperature=temperature,
        age=age,
        height=height,
        source_file=source_file,
        record=np.arange(n) if record is None else record,
        n_samples=lengths,
    )
    coords: dict[str, tuple] = {}
    values = {
        name: _as_per_trace(name, val, n, COORDS_BY_NAME[name].kind) for name, val in given.items()
    }
    if trace is None:
        trace = [
            f"{e}/{s}/{r}" for e, s, r in zip(values["exam_id"], values["study"], values["record"])
        ]
    values["trace"] = _as_per_trace("trace", trace, n, "str")
    for spec in TRACE_COORDS:
        attrs_c = {"long_name": spec.description}
        if spec.units:
            attrs_c["units"] = spec.units
        coords[spec.name] = ("trace", values[spec.name], attrs_c)

    ds_attrs = {"schema": SCHEMA, "ncsproc_version": __version__, "history": history_line(history)}
    if attrs:
        ds_attrs.update(attrs)
    out = RawTraces(data, dict(SIGNAL_ATTRS), coords, ds_attrs)
    if validate:
        validate_trace_set(out)
    return out if raw else out.to_dataset()


SIGNAL_ATTRS = {"units": "V", "long_name": "voltage, active (G1) minus reference (G2)"}


@dataclass(frozen=True, slots=True)
class _Variable:
    """The part of :class:`xarray.Variable` that the readers' completion and
    :func:`validate_trace_set` use: dims, values, attrs."""

    dims: tuple
    values: np.ndarray
    attrs: dict

    @property
    def dtype(self):
        return self.values.dtype


class RawTraces:
    """A trace set as plain numpy arrays: what a reader's raw layer returns.

    The same content as the trace set :func:`make_trace_set` builds (``signal`` in V, every
    per-trace coordinate, the Dataset attributes), without an xarray object: building one per
    file costs milliseconds, the raw read itself less. It offers the few Dataset members that
    ``ncsproc.read``'s completion and :func:`validate_trace_set` use (``variables``,
    ``sizes``, ``attrs``, ``data_vars``, ``assign_coords``, ``copy``, ``[name]``), so both
    layers are completed and validated by the same code; :meth:`to_dataset` makes the
    Dataset.

    Parameters
    ----------
    signal : ndarray (trace, sample)
        NaN-padded voltages.
    signal_attrs : dict
        Attributes of ``signal``.
    coords : dict
        ``{name: ("trace", values, attrs)}`` in coordinate order.
    attrs : dict
        Dataset attributes.
    """

    __slots__ = ("variables", "attrs")

    def __init__(self, signal: np.ndarray, signal_attrs: dict, coords: Mapping, attrs: dict):
        variables = {"signal": _Variable(("trace", "sample"), signal, signal_attrs)}
        for name, (dims, values, a) in coords.items():
            variables[name] = _Variable(_dims(dims), values, a)
        self.variables = variables
        self.attrs = attrs

    @property
    def data_vars(self) -> tuple[str, ...]:
        return ("signal",)

    @property
    def sizes(self) -> dict[str, int]:
        shape = self.variables["signal"].values.shape
        return {"trace": shape[0], "sample": shape[1]}

    def __getitem__(self, name: str) -> _Variable:
        return self.variables[name]

    def __contains__(self, name: str) -> bool:
        return name in self.variables

    def _coords(self) -> dict:
        return {n: (v.dims, v.values, v.attrs) for n, v in self.variables.items() if n != "signal"}

    def assign_coords(self, coords: Mapping | None = None, **named) -> RawTraces:
        """A new RawTraces with ``coords`` (``{name: (dims, values[, attrs])}``, or as keyword
        arguments) set: existing ones replaced in place, new ones appended (as
        :meth:`xarray.Dataset.assign_coords`)."""
        signal = self.variables["signal"]
        merged = self._coords()
        for name, spec in {**(coords or {}), **named}.items():
            dims, values, *rest = spec
            merged[name] = (dims, np.asarray(values), dict(rest[0]) if rest else {})
        return RawTraces(signal.values, signal.attrs, merged, dict(self.attrs))

    def copy(self) -> RawTraces:
        """A shallow copy (arrays shared, attribute dicts new)."""
        signal = self.variables["signal"]
        return RawTraces(signal.values, dict(signal.attrs), self._coords(), dict(self.attrs))

    def to_dataset(self) -> xr.Dataset:
        """The trace set as an :class:`xarray.Dataset`."""
        signal = self.variables["signal"]
        ds = xr.Dataset(
            {"signal": (signal.dims, signal.values, signal.attrs)}, coords=self._coords()
        )
        ds.attrs = dict(self.attrs)
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> RawTraces:
        """The signal, the per-trace coordinates and the attributes of a trace set."""
        var = ds.variables
        coords = {
            name: (var[name].dims, np.asarray(var[name].values), dict(var[name].attrs))
            for name in ds.coords
            if var[name].dims == ("trace",)
        }
        signal = var["signal"]
        return cls(np.asarray(signal.values), dict(signal.attrs), coords, dict(ds.attrs))


def _dims(dims) -> tuple:
    return (dims,) if isinstance(dims, str) else tuple(dims)


def validate_trace_set(
    ds: xr.Dataset, *, check_data: bool = True, source: str | None = None
) -> None:
    """Check a trace set against the contract and raise one error naming every problem.

    Parameters
    ----------
    ds : xarray.Dataset or RawTraces
        The trace set.
    check_data : bool
        Also check the samples (NaN padding after ``n_samples``); this reads the whole
        ``signal`` array, so a lazy caller may turn it off.
    source : str, optional
        Where the Dataset came from, for the message.

    Raises
    ------
    SchemaError
        Listing every problem found.
    """
    problems: list[str] = []
    if not isinstance(ds, (xr.Dataset, RawTraces)):
        raise SchemaError(f"expected an xarray.Dataset, got {type(ds).__name__}")
    where = f" ({source})" if source else ""

    if ds.attrs.get("schema") != SCHEMA:
        problems.append(f"attribute 'schema' is {ds.attrs.get('schema')!r}, expected {SCHEMA!r}")
    for key in ("ncsproc_version", "history"):
        if key not in ds.attrs:
            problems.append(f"attribute '{key}' is missing")

    if "signal" not in ds.data_vars:
        problems.append("data variable 'signal' (trace, sample) in V is missing")
        signal = None
    else:
        signal = ds.variables["signal"]  # a Variable: no DataArray built
        if signal.dims != ("trace", "sample"):
            problems.append(f"'signal' has dims {signal.dims}, expected ('trace', 'sample')")
        if signal.dtype not in (np.float32, np.float64):
            problems.append(
                f"'signal' has dtype {signal.dtype}, expected float32 or float64 "
                "(convert integer counts to volts in the reader)"
            )
        if signal.attrs.get("units") != "V":
            problems.append(f"'signal' has units {signal.attrs.get('units')!r}, expected 'V'")

    n_trace = ds.sizes.get("trace", 0)
    width = ds.sizes.get("sample", 0)
    present: dict[str, np.ndarray] = {}
    for spec in TRACE_COORDS:
        if spec.name not in ds.variables:
            problems.append(f"coordinate '{spec.name}' ({spec.description}) is missing")
            continue
        var = ds.variables[spec.name]
        if var.dims != ("trace",):
            problems.append(f"coordinate '{spec.name}' has dims {var.dims}, expected ('trace',)")
            continue
        arr = np.asarray(var.values)
        if not _KIND_CHECK[spec.kind](arr):
            problems.append(f"coordinate '{spec.name}' has dtype {arr.dtype}, expected {spec.kind}")
            continue
        if spec.units is not None and var.attrs.get("units") != spec.units:
            problems.append(
                f"coordinate '{spec.name}' has units {var.attrs.get('units')!r}, expected {spec.units!r}"
            )
        present[spec.name] = arr

    def bad(name: str, mask: np.ndarray, expected: str) -> None:
        if mask.any():
            ids = present.get("trace", np.arange(n_trace).astype(str))
            shown = ", ".join(repr(str(ids[i])) for i in np.flatnonzero(mask)[:5])
            more = f" and {int(mask.sum()) - 5} more" if mask.sum() > 5 else ""
            problems.append(f"'{name}' {expected}; offending traces: {shown}{more}")

    if "trace" in present:
        ids = present["trace"]
        uniq, counts = np.unique(ids.astype(str), return_counts=True)
        if (counts > 1).any():
            dup = ", ".join(repr(str(u)) for u in uniq[counts > 1][:5])
            problems.append(f"trace ids are not unique: {dup}")
        bad("trace", np.array([str(t) == "" for t in ids], dtype=bool), "must not be empty")
    if "sampling_rate" in present:
        sr = present["sampling_rate"]
        bad(
            "sampling_rate", ~(np.isfinite(sr) & (sr > 0)), "must be a positive finite number of Hz"
        )
    if "t_start" in present:
        bad(
            "t_start",
            ~np.isfinite(present["t_start"]),
            "must be finite (s relative to the stimulus)",
        )
    if "n_samples" in present:
        ns = present["n_samples"]
        bad("n_samples", (ns < 1) | (ns > width), f"must be between 1 and the padded width {width}")
    # "" is unknown (the contract: what nobody says stays unknown); the steps that need a
    # side, nerve or modality say so per study (ncsproc.unknowns)
    if "side" in present:
        bad(
            "side",
            ~np.isin(present["side"].astype(str), (*SIDES, "")),
            f"must be one of {SIDES} (or '' when unknown)",
        )
    if "modality" in present:
        bad(
            "modality",
            ~np.isin(present["modality"].astype(str), (*MODALITIES, "")),
            f"must be one of {MODALITIES} (or '' when unknown)",
        )
    if "nerve" in present:
        nv = present["nerve"].astype(str)
        bad("nerve", np.array([n != n.lower() for n in nv], dtype=bool), "must be lower case")
    for name in (
        "distance",
        "stim_intensity",
        "stim_duration",
        "highpass",
        "lowpass",
        "age",
        "height",
    ):
        if name in present:
            bad(name, present[name] < 0, "must be >= 0 or NaN")
    if "distance" in present:
        bad(
            "distance",
            present["distance"] > 2.0,
            "must be in metres (values above 2 m look like mm or cm)",
        )
    if "source_file" in present:
        bad(
            "source_file",
            np.array([_looks_absolute(str(p)) for p in present["source_file"]], dtype=bool),
            "must be relative to the input root, never an absolute path",
        )

    blocked = sorted(
        {k for k in list(ds.attrs) + list(ds.variables) if k.lower() in PRIVACY_BLOCKLIST}
    )
    if blocked:
        problems.append(f"identifying fields are not allowed in a trace set: {blocked}")

    if check_data and signal is not None and "n_samples" in present and not problems:
        values = np.asarray(signal.values)
        ns = np.asarray(present["n_samples"])
        width = values.shape[1]
        not_nan_after = np.zeros(values.shape[0], dtype=bool)
        # only the padded tails are read: one block per distinct n_samples below the width
        # (a trace set without padding costs nothing here)
        short = np.flatnonzero(ns < width)
        for k in np.unique(ns[short]):
            rows = short[ns[short] == k]
            tail = values[rows, max(int(k), 0) :]
            not_nan_after[rows] = ~np.isnan(tail).all(axis=1)
        if width:
            bad("signal", not_nan_after, "must be NaN after the trace's n_samples valid samples")

    if problems:
        if where:
            problems = [p + where for p in problems]
        raise SchemaError(problems)


def _looks_absolute(path: str) -> bool:
    return os.path.isabs(path) or (len(path) > 2 and path[1] == ":" and path[2] in "\\/")


def select(
    ds: xr.Dataset,
    *,
    exam_id: str | Iterable[str] | None = None,
    study: str | Iterable[str] | None = None,
    nerve: str | Iterable[str] | None = None,
    side: str | Iterable[str] | None = None,
    modality: str | Iterable[str] | None = None,
    stim_site: str | Iterable[str] | None = None,
    record_site: str | Iterable[str] | None = None,
) -> xr.Dataset:
    """Select traces by metadata; each argument is one value or a collection of values.

    Returns
    -------
    xarray.Dataset
        The traces matching every given criterion, in their original order.
    """
    mask = np.ones(ds.sizes["trace"], dtype=bool)
    criteria = (exam_id, study, nerve, side, modality, stim_site, record_site)
    for name, wanted in zip(("exam_id", *STUDY_COORDS, *SITE_COORDS), criteria, strict=True):
        if wanted is None:
            continue
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        mask &= np.isin(ds[name].values.astype(str), wanted)
    return ds.isel(trace=np.flatnonzero(mask))


def time_axis(ds: xr.Dataset, trace: str | int) -> np.ndarray:
    """Return the time (s, relative to the stimulus) of each valid sample of one trace.

    Parameters
    ----------
    ds : xarray.Dataset
        The trace set.
    trace : str or int
        Trace id, or position along ``trace``.
    """
    one = ds.sel(trace=trace) if isinstance(trace, str) else ds.isel(trace=trace)
    n = int(one["n_samples"])
    return float(one["t_start"]) + np.arange(n) / float(one["sampling_rate"])


def trace_values(ds: xr.Dataset, trace: str | int) -> np.ndarray:
    """Return the valid samples (V) of one trace, without the NaN padding."""
    one = ds.sel(trace=trace) if isinstance(trace, str) else ds.isel(trace=trace)
    return np.asarray(one["signal"].values[: int(one["n_samples"])])


def concat_trace_sets(sets: Sequence[xr.Dataset], *, validate: bool = True) -> xr.Dataset:
    """Concatenate trace sets (from many files or exams) into one.

    Widths differ when sampling rates or sweep lengths differ; every set is NaN-padded to the
    widest. Trace ids must stay unique across the sets. The result's ``signal`` is float64
    when any input is float64.

    Parameters
    ----------
    sets : sequence of xarray.Dataset
        Valid trace sets.
    validate : bool
        Validate the result.

    Returns
    -------
    xarray.Dataset
    """
    if not sets:
        raise SchemaError("concat_trace_sets needs at least one trace set")
    width = max(s.sizes["sample"] for s in sets)
    dtype = np.result_type(*[s["signal"].dtype for s in sets])
    # optional string coordinates (beyond the contract, e.g. exam_date) that only some sets
    # carry are kept, empty where a set does not say
    required = set(COORDS_BY_NAME)
    optional = {
        name: s[name].attrs
        for s in sets
        for name in s.coords
        if name not in required and s[name].dims == ("trace",) and s[name].dtype.kind in "OUS"
    }
    padded = []
    for s in sets:
        missing = {
            n: ("trace", [""] * s.sizes["trace"], a)
            for n, a in optional.items()
            if n not in s.coords
        }
        if missing:
            s = s.assign_coords(missing)
        extra = width - s.sizes["sample"]
        if extra:
            s = s.pad(sample=(0, extra), constant_values=np.nan)
        if s["signal"].dtype != dtype:
            s = s.assign(signal=s["signal"].astype(dtype))
        padded.append(s)
    out = xr.concat(
        padded,
        dim="trace",
        data_vars="all",
        coords="minimal",
        compat="override",
        join="outer",
        combine_attrs="drop",
    )
    for name in ("signal", *COORDS_BY_NAME):
        if name in sets[0].variables:
            out[name].attrs = dict(sets[0][name].attrs)
    out.attrs = {
        "schema": SCHEMA,
        "ncsproc_version": __version__,
        "history": history_line(f"concat_trace_sets of {len(sets)} trace sets"),
    }
    if validate:
        validate_trace_set(out)
    return out


@xr.register_dataset_accessor("ncs")
class TraceSetAccessor:
    """``ds.ncs``: per-trace time and samples of a trace set, for notebooks.

    Traces of one trace set may differ in sampling rate, start and length, so the set has a
    ``sample`` dimension and no shared time coordinate; these give each trace its own.

    Examples
    --------
    >>> ds = ncsproc.read("median.edf")                     # doctest: +SKIP
    >>> ds.ncs.trace(0).plot()                              # doctest: +SKIP
    >>> t = ds.ncs.time("EX0001/L_median_motor/0")          # doctest: +SKIP
    """

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def time(self, trace: str | int) -> np.ndarray:
        """Time (s, from the stimulus) of each valid sample of one trace (id or position)."""
        return time_axis(self._ds, trace)

    def trace(self, trace: str | int) -> xr.DataArray:
        """One trace's valid samples (V) on a ``time`` coordinate (s, from the stimulus)."""
        one = self._ds.sel(trace=trace) if isinstance(trace, str) else self._ds.isel(trace=trace)
        n = int(one["n_samples"])
        t = float(one["t_start"]) + np.arange(n) / float(one["sampling_rate"])
        signal = one["signal"].isel(sample=slice(0, n)).drop_vars(list(one.coords))
        return signal.rename(sample="time").assign_coords(
            time=("time", t, {"units": "s", "long_name": "time from the stimulus"})
        )
