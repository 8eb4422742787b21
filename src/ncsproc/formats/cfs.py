"""CED Filing System (``.cfs``) files, as written by CED Signal: a small pure-numpy parser.

The layout (little-endian) is CED's published CFS structure (``cfs.h`` of the CFS library):

=====================  ======================================================================
file header, 178 B     ``CEDFILE"`` marker, original name (lstr, 14 B), file size, time and
                       date (8 chars each), channel / file-variable / section-variable counts,
                       file- and section-header sizes, offset of the last section header,
                       section count, disk block size, comment (lstr, 74 B), offset of the
                       section pointer table, 40 spare bytes
channel table          48 B per channel: name (lstr, 22 B), y units (10 B), x units (10 B),
                       data type, kind (0 equal spaced, 1 matrix, 2 subsidiary), byte
                       spacing between points, other channel
variable descriptors   36 B each: description (lstr, 22 B), type, 0, units (lstr, 10 B),
                       offset in the variable area; ``n_file_vars + 1`` then
                       ``n_ds_vars + 1`` descriptors (the extra one holds the area size)
file variable values   right after the descriptors
data sections          data (any layout the per-channel offsets and spacing describe), and a
                       section header: previous header offset, data start, data size, flags,
                       16 spare bytes, 24 B per channel (first-point offset, points, y scale,
                       y offset, x increment, x offset), then the section's variable values
pointer table          one int32 per section: offset of its header
=====================  ======================================================================

A value is ``stored * y_scale + y_offset`` in the channel's y units; the time of point ``i``
is ``x_offset + i * x_increment`` in its x units. Every offset and count is checked against
the file size before anything is read or allocated.

Trace-set mapping (see ``formats/cfs.md``): each data section (a Signal *frame*) of each
equal-spaced channel whose y units are volts (``V``, ``mV``, ``uV``/``µV``, ``nV``) and x units
are time becomes one trace; ``t_start`` is the section's x offset (Signal: time of the first
point relative to the sweep trigger). Channels in other units are not nerve-conduction traces
and are listed in the ``cfs_skipped_channels`` attribute. Nerve, side and modality are not part
of the CFS format: they come from CFS file or section variables named after the trace-set
coordinate (``nerve``, ``side``, ...), or from the ``metadata`` mapping (the sidecar), else the
file is refused with a message naming the keys.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import FormatError
from ..schema import ACQUISITION_COORDS, LABEL_COORDS, SUBJECT_COORDS
from . import Reader

MAGIC = b'CEDFILE"'
_PART_MAGIC = b"CEDFILE"

_HEAD = struct.Struct("<8s14si8s8shhhHHiHH74si40s")  # 178 bytes
_CHAN = struct.Struct("<22s10s10sBBhh")  # 48 bytes
_VAR = struct.Struct("<22sBB10sH")  # 36 bytes
_DSHEAD = struct.Struct("<iiiH16s")  # 30 bytes
_DSCHAN = struct.Struct("<iiffff")  # 24 bytes

# CFS data types: INT1, WRD1, INT2, WRD2, INT4, RL4, RL8, LSTR
_DTYPES = {0: "<i1", 1: "<u1", 2: "<i2", 3: "<u2", 4: "<i4", 5: "<f4", 6: "<f8"}
_LSTR = 7
_TYPE_NAMES = {0: "INT1", 1: "WRD1", 2: "INT2", 3: "WRD2", 4: "INT4", 5: "RL4", 6: "RL8", 7: "LSTR"}
_KINDS = {0: "equalspaced", 1: "matrix", 2: "subsidiary"}

MAX_CHANNELS = 100  # CFS library limit
MAX_VARS = 100  # CFS library limit

VOLT_UNITS = {"V": 1.0, "mV": 1e-3, "uV": 1e-6, "\u00b5V": 1e-6, "\u03bcV": 1e-6, "nV": 1e-9}
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6}

# CFS variables named after these trace-set coordinates fill them (numbers with their units).
_STR_KEYS = LABEL_COORDS
_NUM_KEYS = (*ACQUISITION_COORDS, *SUBJECT_COORDS)
FILE_KEYS = (*_STR_KEYS, *_NUM_KEYS)
REQUIRED_KEYS = ("nerve", "side", "modality")


@dataclass
class CfsChannel:
    """One entry of the channel table."""

    number: int
    name: str
    y_units: str
    x_units: str
    dtype_code: int
    kind: str
    spacing: int
    other_channel: int


@dataclass
class CfsVariable:
    """A file or data-section variable: description, CFS type, units and value."""

    description: str
    type_name: str
    units: str
    value: object


@dataclass
class CfsSectionChannel:
    """Per-channel entry of a data-section header."""

    data_offset: int
    points: int
    y_scale: float
    y_offset: float
    x_increment: float
    x_offset: float


@dataclass
class CfsSection:
    """One data section (a Signal frame)."""

    index: int
    header_offset: int
    data_start: int
    data_size: int
    flags: int
    channels: list[CfsSectionChannel]
    variables: list[CfsVariable]


@dataclass
class CfsFile:
    """A parsed CFS file. Samples are read on demand by :meth:`values` (the file stays in memory)."""

    path: Path
    name: str
    file_size: int
    time: str
    date: str
    comment: str
    channels: list[CfsChannel]
    file_variables: list[CfsVariable]
    section_variable_descriptors: list[tuple[str, str, str]]
    sections: list[CfsSection]
    _buf: bytes = field(repr=False, default=b"")

    def values(self, channel: int, section: int) -> np.ndarray:
        """Samples of one channel in one section, in the channel's y units (float64)."""
        ch = self.channels[channel]
        sec = self.sections[section]
        info = sec.channels[channel]
        if ch.kind != "equalspaced" or ch.dtype_code == _LSTR:
            raise FormatError(
                f"{self.path.name}: channel {channel} ({ch.name!r}) is a {ch.kind} channel of type "
                f"{_TYPE_NAMES.get(ch.dtype_code)}; only equal-spaced numeric channels hold samples"
            )
        raw = _channel_raw(self._buf, self.path.name, ch, sec, info)
        return raw.astype(np.float64) * np.float64(info.y_scale) + np.float64(info.y_offset)

    def times(self, channel: int, section: int) -> np.ndarray:
        """Time (x units) of each point of one channel in one section."""
        info = self.sections[section].channels[channel]
        return np.float64(info.x_offset) + np.arange(info.points) * np.float64(info.x_increment)


def _lstr(raw: bytes) -> str:
    """Decode a CED length-prefixed string field (length byte, characters, padding)."""
    if not raw:
        return ""
    n = min(raw[0], len(raw) - 1)
    return raw[1 : 1 + n].split(b"\x00", 1)[0].decode("latin-1").strip()


def _fixed(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1").strip()


def _need(buf: bytes, name: str, offset: int, size: int, what: str) -> None:
    if offset < 0 or size < 0 or offset + size > len(buf):
        raise FormatError(
            f"{name}: {what} at byte {offset} needs {size} bytes but the file has {len(buf)} bytes "
            "(truncated or corrupt file)"
        )


def _channel_raw(buf: bytes, name: str, ch: CfsChannel, sec: CfsSection, info: CfsSectionChannel):
    dtype = np.dtype(_DTYPES[ch.dtype_code])
    where = f"section {sec.index} (header at byte {sec.header_offset}), channel {ch.number} ({ch.name!r})"
    if info.points < 0:
        raise FormatError(f"{name}: {where}: negative point count {info.points}")
    if info.points == 0:
        return np.zeros(0, dtype=dtype)
    spacing = ch.spacing
    if spacing < dtype.itemsize:
        raise FormatError(
            f"{name}: channel {ch.number} ({ch.name!r}) in the channel table has a point spacing of "
            f"{spacing} bytes, less than its {dtype.itemsize}-byte data type"
        )
    first = sec.data_start + info.data_offset
    span = (info.points - 1) * spacing + dtype.itemsize
    if info.data_offset < 0 or info.data_offset + span > sec.data_size:
        raise FormatError(
            f"{name}: {where}: {info.points} points from offset {info.data_offset} with spacing "
            f"{spacing} need {info.data_offset + span} bytes but the section holds {sec.data_size}"
        )
    _need(buf, name, first, span, f"{where} data")
    if spacing == dtype.itemsize:
        return np.frombuffer(buf, dtype=dtype, count=info.points, offset=first)
    strided = np.lib.stride_tricks.as_strided(
        np.frombuffer(buf, dtype=np.uint8, count=span, offset=first),
        shape=(info.points, dtype.itemsize),
        strides=(spacing, 1),
    )
    return np.ascontiguousarray(strided).view(dtype).ravel()


def _read_vars(buf, name, descs, base, area_size, what):
    out = []
    bounds = [d[3] for d in descs] + [area_size]
    for i, (desc, vtype, units, offset) in enumerate(descs):
        size = bounds[i + 1] - offset
        where = f"{what} variable {i} ({desc!r}) at byte {base + offset}"
        if vtype == _LSTR:
            if size < 1:
                raise FormatError(f"{name}: {where}: string variable has no room ({size} bytes)")
            _need(buf, name, base + offset, size, where)
            value = _lstr(buf[base + offset : base + offset + size])
        elif vtype in _DTYPES:
            dt = np.dtype(_DTYPES[vtype])
            if size < dt.itemsize:
                raise FormatError(
                    f"{name}: {where}: {_TYPE_NAMES[vtype]} needs {dt.itemsize} bytes, the next "
                    f"variable starts {size} bytes later"
                )
            _need(buf, name, base + offset, dt.itemsize, where)
            value = np.frombuffer(buf, dtype=dt, count=1, offset=base + offset)[0].item()
        else:
            raise FormatError(f"{name}: {where}: unknown variable type code {vtype} (expected 0-7)")
        out.append(CfsVariable(desc, _TYPE_NAMES[vtype], units, value))
    return out


def read_cfs(path: str | os.PathLike) -> CfsFile:
    """Parse a CFS file: header, channel table, variables and data-section headers.

    Parameters
    ----------
    path : path-like
        The ``.cfs`` file.

    Returns
    -------
    CfsFile
        Samples are converted on demand with :meth:`CfsFile.values` (y units).

    Raises
    ------
    FormatError
        The file is not a CFS file, is truncated, or its offsets and counts are inconsistent;
        the message names the byte offset and what was expected.
    """
    path = Path(path)
    buf = path.read_bytes()
    name = path.name
    if len(buf) < _HEAD.size:
        raise FormatError(
            f"{name}: {len(buf)} bytes, shorter than the {_HEAD.size}-byte CFS file header"
        )
    (
        marker,
        fname,
        file_size,
        time_s,
        date_s,
        n_chan,
        n_fvar,
        n_dvar,
        head_size,
        ds_head_size,
        end_pnt,
        n_sec,
        _blk,
        comment,
        table_pos,
        _spare,
    ) = _HEAD.unpack_from(buf, 0)
    if not marker.startswith(_PART_MAGIC):
        raise FormatError(f"{name}: bytes 0-7 are {marker!r}, expected the CFS marker {MAGIC!r}")
    if marker != MAGIC:
        raise FormatError(
            f"{name}: CFS marker {marker!r} at byte 0 is an older CFS version; only {MAGIC!r} "
            "(CFS version 2, CED Signal and the current CFS library) is supported"
        )
    if file_size > len(buf):
        raise FormatError(
            f"{name}: the header (byte 22) gives a file size of {file_size} bytes but the file has "
            f"{len(buf)} bytes (truncated file)"
        )
    if not 1 <= n_chan <= MAX_CHANNELS:
        raise FormatError(f"{name}: channel count {n_chan} at byte 42, expected 1-{MAX_CHANNELS}")
    for value, what, at in ((n_fvar, "file variable", 44), (n_dvar, "data-section variable", 46)):
        if not 0 <= value <= MAX_VARS:
            raise FormatError(f"{name}: {what} count {value} at byte {at}, expected 0-{MAX_VARS}")

    pos = _HEAD.size
    _need(buf, name, pos, n_chan * _CHAN.size, f"channel table of {n_chan} channels")
    channels = []
    for i in range(n_chan):
        cname, yu, xu, dtype_code, kind, spacing, other = _CHAN.unpack_from(
            buf, pos + i * _CHAN.size
        )
        if dtype_code not in _TYPE_NAMES:
            raise FormatError(
                f"{name}: channel {i} at byte {pos + i * _CHAN.size}: data type code {dtype_code}, "
                "expected 0-7 (INT1, WRD1, INT2, WRD2, INT4, RL4, RL8, LSTR)"
            )
        if kind not in _KINDS:
            raise FormatError(
                f"{name}: channel {i} at byte {pos + i * _CHAN.size}: kind {kind}, expected 0 "
                "(equal spaced), 1 (matrix) or 2 (subsidiary)"
            )
        channels.append(
            CfsChannel(
                i, _lstr(cname), _lstr(yu), _lstr(xu), dtype_code, _KINDS[kind], spacing, other
            )
        )
    pos += n_chan * _CHAN.size

    n_desc = n_fvar + 1 + n_dvar + 1
    _need(buf, name, pos, n_desc * _VAR.size, f"{n_desc} variable descriptors")
    raw_descs = []
    for i in range(n_desc):
        desc, vtype, _zero, units, offset = _VAR.unpack_from(buf, pos + i * _VAR.size)
        raw_descs.append((_lstr(desc), vtype, _lstr(units), offset))
    pos += n_desc * _VAR.size
    file_descs, file_area = raw_descs[:n_fvar], raw_descs[n_fvar][3]
    ds_descs, ds_area = raw_descs[n_fvar + 1 : n_fvar + 1 + n_dvar], raw_descs[-1][3]
    for descs, area, what in ((file_descs, file_area, "file"), (ds_descs, ds_area, "data-section")):
        offsets = [d[3] for d in descs] + [area]
        if any(b < a for a, b in zip(offsets, offsets[1:])):
            raise FormatError(
                f"{name}: {what} variable offsets {offsets} (descriptors from byte "
                f"{_HEAD.size + n_chan * _CHAN.size}) are not increasing"
            )
    expected_head = pos + file_area
    if head_size < expected_head:
        raise FormatError(
            f"{name}: file header size {head_size} (byte 48) is smaller than the {expected_head} bytes "
            f"its {n_chan} channels and {n_fvar}+{n_dvar} variables need"
        )
    _need(buf, name, pos, file_area, "file variable values")
    file_vars = _read_vars(buf, name, file_descs, pos, file_area, "file")

    ds_head_needed = _DSHEAD.size + n_chan * _DSCHAN.size + ds_area
    if ds_head_size < ds_head_needed:
        raise FormatError(
            f"{name}: data-section header size {ds_head_size} (byte 50) is smaller than the "
            f"{ds_head_needed} bytes {n_chan} channels and {n_dvar} section variables need"
        )
    # Section pointer table; without it, follow the chain back from the last header.
    if n_sec > 0 and table_pos > 0:
        _need(buf, name, table_pos, 4 * n_sec, f"pointer table of {n_sec} sections (byte 134)")
        offsets = np.frombuffer(buf, dtype="<i4", count=n_sec, offset=table_pos).tolist()
    else:
        offsets, at = [], end_pnt
        seen = set()
        while at > 0 and len(offsets) < n_sec:
            if at in seen:
                raise FormatError(f"{name}: data-section header chain loops at byte {at}")
            seen.add(at)
            _need(buf, name, at, 4, "data-section header")
            offsets.append(at)
            at = struct.unpack_from("<i", buf, at)[0]
        offsets.reverse()
        if len(offsets) != n_sec:
            raise FormatError(
                f"{name}: the header declares {n_sec} data sections but the header chain from byte "
                f"{end_pnt} holds {len(offsets)}"
            )
    sections = []
    for s, off in enumerate(offsets):
        _need(buf, name, off, ds_head_needed, f"header of data section {s}")
        _last, data_start, data_size, flags, _sp = _DSHEAD.unpack_from(buf, off)
        if data_size < 0:
            raise FormatError(
                f"{name}: data section {s} (header at byte {off}): negative data size"
            )
        _need(buf, name, data_start, data_size, f"data of section {s} (header at byte {off})")
        infos = []
        for c in range(n_chan):
            d_off, pts, ys, yo, xs, xo = _DSCHAN.unpack_from(
                buf, off + _DSHEAD.size + c * _DSCHAN.size
            )
            infos.append(CfsSectionChannel(d_off, pts, ys, yo, xs, xo))
        var_base = off + _DSHEAD.size + n_chan * _DSCHAN.size
        ds_vars = _read_vars(buf, name, ds_descs, var_base, ds_area, f"section {s}")
        sections.append(CfsSection(s, off, data_start, data_size, flags, infos, ds_vars))

    return CfsFile(
        path=path,
        name=_lstr(fname),
        file_size=file_size,
        time=_fixed(time_s),
        date=_fixed(date_s),
        comment=_lstr(comment),
        channels=channels,
        file_variables=file_vars,
        section_variable_descriptors=[(d[0], _TYPE_NAMES.get(d[1], "?"), d[2]) for d in ds_descs],
        sections=sections,
        _buf=buf,
    )


# ---------------------------------------------------------------------------------------------
# Trace set


def _variable_metadata(variables: Sequence[CfsVariable], where: str) -> dict:
    """Trace-set facts from CFS variables named after a coordinate (case-insensitive)."""
    from ._sidecar import coord_value

    out = {}
    for var in variables:
        key = var.description.strip().lower().replace(" ", "_")
        if key not in FILE_KEYS:
            continue
        value = var.value
        if key in _NUM_KEYS:
            if isinstance(value, str):
                raise FormatError(
                    f"{where}: variable {var.description!r} holds text, expected a number"
                )
            value = f"{value!r} {var.units}" if var.units else float(value)
        out[key] = coord_value(key, value, f"{where}: variable {var.description!r}")
    return out


def finish_trace_set(
    signals: list[np.ndarray],
    rows: list[dict],
    name: str,
    metadata: Mapping[str, object] | None,
    attrs: dict,
    history: str,
    *,
    several_channels: bool,
) -> xr.Dataset:
    """Build the trace set of one file from per-trace rows, complete it from ``metadata``.

    Shared by the CFS and DICOM readers. Unknown facts are "" or NaN. ``metadata`` (a sidecar
    mapping) is applied with the sidecar's rules (fills what the file does not say, a
    contradiction is an error). Without ``metadata``, a set that lacks nerve, side or modality
    is returned unvalidated (``ncsproc.read`` applies the sidecar, then validates and names
    what is missing); with ``metadata``, such a set raises a FormatError naming the keys.
    """
    from pathlib import PurePath

    from ..schema import COORDS_BY_NAME, make_trace_set, validate_trace_set
    from ._sidecar import apply_sidecar

    def col(key):
        spec = COORDS_BY_NAME[key]
        default = "" if spec.kind == "str" else (0 if spec.kind == "int" else np.nan)
        return [r.get(key, default) for r in rows]

    given_ids = [r.get("trace", "") for r in rows]
    values = {k: col(k) for k in COORDS_BY_NAME if k not in ("trace", "n_samples")}
    values["source_file"] = name
    ds = make_trace_set(
        signals,
        trace=[f"#{i}" for i in range(len(rows))],
        attrs=attrs,
        history=history,
        validate=False,
        **values,
    )
    if metadata:
        ds = apply_sidecar(ds, dict(metadata), PurePath(f"{name} metadata"), name)
    side, nerve, modality = (ds[k].values.astype(str) for k in ("side", "nerve", "modality"))
    study = ds["study"].values.astype(object)
    for i in range(len(rows)):
        if not study[i] and side[i] and nerve[i] and modality[i]:
            study[i] = f"{side[i]}_{nerve[i]}_{modality[i]}"
    exam = ds["exam_id"].values.astype(str)
    record = ds["record"].values
    ids = []
    for i, row in enumerate(rows):
        if given_ids[i]:
            ids.append(str(given_ids[i]))
            continue
        tid = f"{exam[i]}/{study[i]}/{record[i]}"
        if several_channels:
            tid += f"/{row.get('channel', i)}"
        ids.append(tid)
    ds = ds.assign_coords(
        study=("trace", np.array([str(s) for s in study], dtype=object), ds["study"].attrs),
        trace=("trace", np.array(ids, dtype=object), ds["trace"].attrs),
    )
    missing = [k for k in REQUIRED_KEYS if (ds[k].values.astype(str) == "").any()]
    if missing:  # unknown stays unknown; ncsproc.read completes it from a sidecar, validates
        return ds
    try:
        validate_trace_set(ds, source=name)
    except Exception as exc:
        raise FormatError(
            f"{name}: the file's facts do not make a valid trace set: {exc}"
        ) from None
    return ds


def load(path: str | os.PathLike, metadata: Mapping[str, object] | None = None) -> xr.Dataset:
    """Read a CFS file into a trace set: one trace per data section and voltage channel.

    Parameters
    ----------
    path : path-like
        The ``.cfs`` file.
    metadata : mapping, optional
        A sidecar mapping (same keys and rules as ``<file>.json``: trace-set coordinates
        applying to every trace, ``"records": [{"record": <section>, ...}]`` for one section;
        it fills what the file does not say, a contradiction is an error), plus ``channels``:
        the names of the voltage channels to read (default all).

    Returns
    -------
    xarray.Dataset
        A trace set. Facts come from CFS file variables, then section variables, named after a
        coordinate (``nerve``, ``side``, ``modality``, ``stim_site``, ``record_site``,
        ``study``, ``exam_id``, ``subject_id``, and with units ``distance``, ``stim_intensity``,
        ``stim_duration``, ``highpass``, ``lowpass``, ``temperature``, ``age``, ``height``).
        Without nerve, side or modality and without ``metadata``, the set is returned
        unvalidated (``ncsproc.read`` completes it from the sidecar ``<file>.json`` and
        validates it); with ``metadata`` that still lacks them, a FormatError names the keys.
    """
    path = Path(path)
    cfs = read_cfs(path)
    name = path.name
    metadata = dict(metadata or {})
    wanted = metadata.pop("channels", None)
    if isinstance(wanted, str):
        wanted = [wanted]
    voltage, skipped = [], []
    for ch in cfs.channels:
        ok = (
            ch.kind == "equalspaced"
            and ch.dtype_code != _LSTR
            and ch.y_units in VOLT_UNITS
            and ch.x_units in TIME_UNITS
        )
        if ok and (wanted is None or ch.name in wanted):
            voltage.append(ch)
        else:
            skipped.append(f"{ch.name} ({ch.y_units} vs {ch.x_units}, {ch.kind})")
    if wanted is not None:
        missing = sorted(set(wanted) - {c.name for c in voltage})
        if missing:
            raise FormatError(
                f"{name}: metadata 'channels' names {missing}, which are not voltage channels of "
                f"this file; its channels: {[f'{c.name} ({c.y_units})' for c in cfs.channels]}"
            )
    if not voltage:
        raise FormatError(
            f"{name}: no channel holds voltages over time (y units V, mV, uV; x units s, ms); "
            f"channels: {[f'{c.name} ({c.y_units} vs {c.x_units}, {c.kind})' for c in cfs.channels]}"
        )
    if not cfs.sections:
        raise FormatError(f"{name}: the file has no data sections (header byte 56 is 0)")

    file_meta = _variable_metadata(cfs.file_variables, f"{name} file variables")
    signals, rows = [], []
    for sec in cfs.sections:
        sec_meta = _variable_metadata(sec.variables, f"{name} section {sec.index} variables")
        for ch in voltage:
            info = sec.channels[ch.number]
            where = f"{name}: section {sec.index} (header at byte {sec.header_offset}), channel {ch.name!r}"
            dt = float(info.x_increment) * TIME_UNITS[ch.x_units]
            if not (np.isfinite(dt) and dt > 0):
                raise FormatError(
                    f"{where}: x increment {info.x_increment} {ch.x_units}, expected > 0"
                )
            if not np.isfinite(info.x_offset):
                raise FormatError(f"{where}: x offset {info.x_offset} is not finite")
            if info.points < 1:
                raise FormatError(f"{where}: {info.points} points, expected at least 1")
            rate = 1.0 / dt
            # x increments are float32: 1/float32(5e-5) is 20000.0005 Hz. Snap to the integer
            # rate when the difference is within float32 rounding.
            if abs(rate - round(rate)) <= 4 * np.finfo(np.float32).eps * rate:
                rate = float(round(rate))
            values = cfs.values(ch.number, sec.index) * VOLT_UNITS[ch.y_units]
            if not np.all(np.isfinite(values)):
                raise FormatError(f"{where}: samples are not finite (NaN or infinite floats)")
            signals.append(values)
            row = {**file_meta, **sec_meta}
            row.update(
                sampling_rate=rate,
                t_start=float(info.x_offset) * TIME_UNITS[ch.x_units],
                record=sec.index,
                channel=ch.name,
            )
            rows.append(row)

    attrs = {
        "source_format": "cfs",
        "cfs_channels": json.dumps([c.name for c in voltage]),
        "cfs_skipped_channels": json.dumps(skipped),
    }
    return finish_trace_set(
        signals,
        rows,
        name,
        metadata,
        attrs,
        f"read CFS file {name}",
        several_channels=len(voltage) > 1,
    )


# ---------------------------------------------------------------------------------------------
# Minimal writer (tests, examples)


def _pack_lstr(text: str, size: int) -> bytes:
    raw = text.encode("latin-1")[: size - 2]
    return (bytes([len(raw)]) + raw).ljust(size, b"\x00")


def _var_layout(variables):
    """(description, type code, units, size) for each (description, units, example value)."""
    out = []
    for desc, units, value in variables:
        if isinstance(value, str):
            out.append((desc, _LSTR, units, 1 + 30))
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            out.append((desc, 4, units, 4))
        else:
            out.append((desc, 6, units, 8))
    return out


def _pack_vars(layout, values) -> bytes:
    chunks = []
    for (_d, code, _u, size), value in zip(layout, values):
        if code == _LSTR:
            chunks.append(_pack_lstr(str(value), size))
        else:
            chunks.append(np.array([value], dtype=_DTYPES[code]).tobytes())
    return b"".join(chunks)


def _descriptors(layout) -> bytes:
    out, offset = [], 0
    for desc, code, units, size in layout:
        out.append(_VAR.pack(_pack_lstr(desc, 22), code, 0, _pack_lstr(units, 10), offset))
        offset += size
    out.append(_VAR.pack(_pack_lstr("Spare", 22), 0, 0, _pack_lstr("", 10), offset))
    return b"".join(out)


def write_cfs(
    path: str | os.PathLike,
    channels: Sequence[tuple[str, str, str]],
    sections: Sequence[Mapping],
    *,
    file_variables: Sequence[tuple[str, str, object]] = (),
    section_variables: Sequence[tuple[str, str]] = (),
    comment: str = "",
    time: str = "00:00:00",
    date: str = "01/01/00",
    original_name: str | None = None,
) -> Path:
    """Write a small CFS (version 2) file with INT2 equal-spaced channels, interleaved.

    Meant for tests and the reader's example file; it follows the layout CED's library
    writes (file header, then each section's data followed by its header, then the pointer
    table).

    Parameters
    ----------
    channels : sequence of (name, y_units, x_units)
    sections : sequence of mappings
        ``data``: one 1-D array per channel (y units, equal lengths), ``x_increment``,
        ``x_offset`` (x units), and ``variables``: values for ``section_variables``.
    file_variables : sequence of (description, units, value)
        str values become LSTR, int INT4, float RL8.
    section_variables : sequence of (description, units)
        Types are taken from the first section's values.
    """
    path = Path(path)
    n_chan = len(channels)
    f_layout = _var_layout(file_variables)
    d_values0 = list(sections[0].get("variables", ())) if sections else []
    d_layout = _var_layout([(d, u, v) for (d, u), v in zip(section_variables, d_values0)])
    f_area = sum(x[3] for x in f_layout)
    d_area = sum(x[3] for x in d_layout)
    head_size = (
        _HEAD.size + n_chan * _CHAN.size + (len(f_layout) + len(d_layout) + 2) * _VAR.size + f_area
    )
    ds_head_size = _DSHEAD.size + n_chan * _DSCHAN.size + d_area

    body = bytearray()
    offsets = []
    last = 0
    for sec in sections:
        data = [np.asarray(d, dtype=np.float64) for d in sec["data"]]
        npts = len(data[0])
        scales = []
        block = np.zeros((npts, n_chan), dtype="<i2")
        for c, d in enumerate(data):
            peak = float(np.max(np.abs(d))) if d.size else 0.0
            scale = np.float32(peak / 32000.0 if peak > 0 else 1.0)
            scales.append(scale)
            block[:, c] = np.rint(d / np.float64(scale)).astype("<i2")
        data_start = head_size + len(body)
        body += block.tobytes()
        head = bytearray(_DSHEAD.pack(last, data_start, block.nbytes, 0, b"\x00" * 16))
        for c in range(n_chan):
            head += _DSCHAN.pack(2 * c, npts, scales[c], 0.0, sec["x_increment"], sec["x_offset"])
        head += _pack_vars(d_layout, sec.get("variables", ()))
        last = head_size + len(body)
        offsets.append(last)
        body += head
    table_pos = head_size + len(body)
    body += np.asarray(offsets, dtype="<i4").tobytes()
    total = head_size + len(body)

    header = _HEAD.pack(
        MAGIC,
        _pack_lstr((original_name or path.name.upper())[:12], 14),
        total,
        time.encode()[:8].ljust(8),
        date.encode()[:8].ljust(8),
        n_chan,
        len(f_layout),
        len(d_layout),
        head_size,
        ds_head_size,
        offsets[-1] if offsets else 0,
        len(sections),
        1,
        _pack_lstr(comment, 74),
        table_pos,
        b"\x00" * 40,
    )
    chans = b"".join(
        _CHAN.pack(_pack_lstr(n, 22), _pack_lstr(yu, 10), _pack_lstr(xu, 10), 2, 0, 2 * n_chan, 0)
        for n, yu, xu in channels
    )
    out = (
        header
        + chans
        + _descriptors(f_layout)
        + _descriptors(d_layout)
        + _pack_vars(f_layout, [v for _d, _u, v in file_variables])
    )
    assert len(out) == head_size
    path.write_bytes(out + bytes(body))
    return path


def _example(folder: str | os.PathLike) -> Path:
    """A small CFS file: two median motor frames (wrist, elbow) from the simulator, with the
    trace-set facts stored as CFS file and section variables."""
    from ..simulate import response_set

    traces, _ = response_set("motor", 2, seed=0, pretrigger=0.002)
    secs = []
    for i, site in enumerate(("wrist", "elbow")):
        n = int(traces.n_samples[i])
        secs.append(
            {
                "data": [np.asarray(traces.signal[i, :n]) * 1e3],
                "x_increment": 1.0 / float(traces.sampling_rate[i]),
                "x_offset": float(traces.t_start[i]),
                "variables": [site, (0.07, 0.28)[i] * 100],
            }
        )
    return write_cfs(
        Path(folder) / "example.cfs",
        [("APB", "mV", "s")],
        secs,
        file_variables=[
            ("nerve", "", "median"),
            ("side", "", "L"),
            ("modality", "", "motor"),
            ("record_site", "", "APB"),
            ("temperature", "C", 32.5),
        ],
        section_variables=[("stim_site", ""), ("distance", "cm")],
        comment="Doe Jane 04/03/1970",  # identifying free text: never reaches the trace set
        original_name="DOEJANE.CFS",
    )


def _identity(path: str | os.PathLike) -> dict:
    """The exam date from the file header's date (``dd/mm/yy``, the day CED Signal wrote the
    file; yy 80-99 is 19yy, 00-79 is 20yy), for ``ncsproc.read``'s date reduction. CFS has no
    patient identifier field: the free-text comment is never used."""
    import datetime as _dt
    import re

    with open(path, "rb") as fh:
        head = fh.read(_HEAD.size)
    date = None
    if len(head) == _HEAD.size:
        m = re.fullmatch(r"(\d{2})/(\d{2})/(\d{2})", _fixed(_HEAD.unpack_from(head, 0)[4]))
        if m:
            day, month, yy = (int(g) for g in m.groups())
            try:
                date = _dt.date(1900 + yy if yy >= 80 else 2000 + yy, month, day)
            except ValueError:
                date = None
    return {"patient_id": None, "exam_date": date}


def _sniff(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except Exception as exc:  # never raise
        return f"cannot read: {exc}"
    if head.startswith(_PART_MAGIC):
        return None
    return f"no CFS marker {MAGIC!r} at byte 0"


READER = Reader(
    name="cfs",
    description="CED Filing System (Signal) sweeps; voltage channels, one trace per frame",
    extensions=(".cfs",),
    sniff=_sniff,
    load=load,
    example=_example,
    identifying=("Doe Jane", "DOEJANE", "04/03/1970"),
    function="ncsproc.read",
    identity=_identity,
)
