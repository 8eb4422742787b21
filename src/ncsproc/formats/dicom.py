"""DICOM waveforms: Electromyogram Waveform Storage (nerve conduction) read and write, any
waveform IOD read generically.

Reading goes through pydicom for the file structure and decodes the samples itself (with every
size checked), with pydicom's convention for the physical value (``pydicom.waveforms.
generate_multiplex(as_raw=False)``):

    value = stored * ChannelSensitivity * ChannelSensitivityCorrectionFactor + ChannelBaseline

in the units of ``ChannelSensitivityUnitsSequence`` (UCUM; ``uV``, ``mV``, ``V`` become volts).

* :func:`read_dicom_waveform` reads any waveform IOD (ECG, EEG, EMG, ...) into one
  :class:`xarray.DataArray` per multiplex group: not a trace set.
* :func:`load` (``ncsproc.read``) accepts Electromyogram Waveform Storage
  (``1.2.840.10008.5.1.4.1.1.9.7.2``) only and makes a trace set: one trace per voltage channel of
  each multiplex group. ``t_start`` is ``MultiplexGroupTimeOffset`` (plus the channel's
  ``ChannelSampleSkew``): ncsproc's convention is that each multiplex group holds one sweep
  and its time offset is counted from that sweep's stimulus.
* :func:`write_dicom` writes a trace set as Electromyogram Waveform Storage, one multiplex group
  per trace, 16-bit (or 32-bit) samples, and the trace-set facts that DICOM has no attribute for
  in one waveform annotation per group (``ncsproc-trace {json}``).

Privacy: patient name, ID, birth date and every other identifying attribute are never copied
into a trace set; the birth date is only used, with the study date, to compute the age when
``PatientAge`` is absent. ``subject_id`` is empty unless the caller's metadata (the sidecar)
gives a pseudonymous one.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import re
import struct
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import FormatError
from ..schema import SITE_COORDS, STUDY_COORDS, SUBJECT_COORDS
from . import Reader

EMG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.9.7.2"
ANNOTATION_PREFIX = "ncsproc-trace "

UCUM_VOLTS = {"V": 1.0, "mV": 1e-3, "uV": 1e-6, "nV": 1e-9, "kV": 1e3}
_DTYPES = {
    (8, "SB"): "i1",
    (8, "UB"): "u1",
    (16, "SS"): "i2",
    (16, "US"): "u2",
    (32, "SL"): "i4",
    (32, "UL"): "u4",
    (64, "SV"): "i8",
    (64, "UV"): "u8",
}
MAX_CHANNELS = 65535

# Facts written to (and read from) the per-group annotation; subject_id never is.
_ANNOTATED = (
    "trace",
    "record",
    "exam_id",
    *STUDY_COORDS,
    *SITE_COORDS,
    "distance",
    "stim_intensity",
    "stim_duration",
    "temperature",
    *SUBJECT_COORDS,
)


# ---------------------------------------------------------------------------------------------
# Reading


def _dcmread(path: Path):
    import pydicom

    name = path.name
    with open(path, "rb") as fh:
        head = fh.read(132)
    if len(head) < 132 or head[128:132] != b"DICM":
        raise FormatError(
            f"{name}: no 'DICM' marker at byte 128; expected a DICOM Part 10 file (128-byte "
            "preamble, 'DICM', file meta information)"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # from memory: an element length declared larger than the file then costs nothing
            ds = pydicom.dcmread(io.BytesIO(path.read_bytes()))
            # touch every element so that damage shows here, not later
            for _elem in ds.iterall():
                pass
        except Exception as exc:
            notes = "; ".join(str(w.message) for w in caught[:3])
            raise FormatError(
                f"{name}: damaged DICOM file ({type(exc).__name__}: {exc})"
                + (f"; pydicom also said: {notes}" if notes else "")
            ) from None
    return ds


def _get(item, keyword: str, where: str, *, default=None, kind=str):
    """One attribute as ``kind``, FormatError naming the attribute when it cannot be."""
    try:
        if keyword not in item:
            return default
        value = item.get(keyword)
        if value is None or value == "":
            return default
        if kind is float:
            out = float(value)
            if not np.isfinite(out):
                raise ValueError("not finite")
            return out
        if kind is int:
            return int(value)
        return str(value).strip()
    except Exception as exc:
        raise FormatError(
            f"{where}: {keyword} = {item.get(keyword)!r} is not a valid {kind.__name__} ({exc})"
        ) from None


def _sop_class(ds, name: str) -> str:
    uid = ds.get("SOPClassUID")
    if not uid and getattr(ds, "file_meta", None) is not None:
        uid = ds.file_meta.get("MediaStorageSOPClassUID")
    if not uid:
        raise FormatError(f"{name}: no SOP Class UID (0008,0016) or Media Storage SOP Class UID")
    return str(uid)


def _sop_name(uid: str) -> str:
    try:
        from pydicom.uid import UID

        return UID(uid).name
    except Exception:
        return uid


def _little_endian(ds) -> bool:
    try:
        from pydicom.uid import UID

        ts = ds.file_meta.get("TransferSyntaxUID")
        return True if ts is None else bool(UID(ts).is_little_endian)
    except Exception:
        return True


def _units(channel, where: str) -> str:
    seq = channel.get("ChannelSensitivityUnitsSequence")
    if not seq:
        return ""
    try:
        return str(seq[0].get("CodeValue", "")).strip()
    except Exception as exc:
        raise FormatError(f"{where}: unreadable ChannelSensitivityUnitsSequence ({exc})") from None


def _label(channel, j: int) -> str:
    label = str(channel.get("ChannelLabel", "") or "").strip()
    if label:
        return label
    try:
        src = channel.get("ChannelSourceSequence")
        if src:
            meaning = str(src[0].get("CodeMeaning", "") or "").strip()
            if meaning:
                return meaning
    except Exception:
        pass
    return f"channel {j + 1}"


def _decode_group(item, g: int, name: str, little: bool) -> dict:
    where = f"{name}: multiplex group {g + 1} of the Waveform Sequence"
    n_ch = _get(item, "NumberOfWaveformChannels", where, kind=int)
    n_s = _get(item, "NumberOfWaveformSamples", where, kind=int)
    bits = _get(item, "WaveformBitsAllocated", where, kind=int)
    interp = _get(item, "WaveformSampleInterpretation", where)
    fs = _get(item, "SamplingFrequency", where, kind=float)
    for value, keyword in (
        (n_ch, "NumberOfWaveformChannels"),
        (n_s, "NumberOfWaveformSamples"),
        (bits, "WaveformBitsAllocated"),
        (interp, "WaveformSampleInterpretation"),
        (fs, "SamplingFrequency"),
    ):
        if value is None:
            raise FormatError(f"{where}: {keyword} is missing")
    if not 1 <= n_ch <= MAX_CHANNELS:
        raise FormatError(f"{where}: NumberOfWaveformChannels = {n_ch}, expected 1-{MAX_CHANNELS}")
    if n_s < 1:
        raise FormatError(f"{where}: NumberOfWaveformSamples = {n_s}, expected at least 1")
    if not fs > 0:
        raise FormatError(f"{where}: SamplingFrequency = {fs}, expected > 0 Hz")
    if interp in ("MB", "AB"):
        raise FormatError(
            f"{where}: WaveformSampleInterpretation {interp} (8-bit mu-law/A-law companded) is "
            "not supported; expected SB, UB, SS, US, SL, UL, SV or UV"
        )
    if (bits, interp) not in _DTYPES:
        raise FormatError(
            f"{where}: WaveformBitsAllocated {bits} with WaveformSampleInterpretation {interp!r} is "
            f"not a valid combination; expected one of {sorted(_DTYPES)}"
        )
    dtype = np.dtype(_DTYPES[(bits, interp)]).newbyteorder("<" if little else ">")
    try:
        data = item.get("WaveformData")
        data = b"" if data is None else bytes(data)
    except Exception as exc:
        raise FormatError(f"{where}: unreadable WaveformData ({exc})") from None
    needed = n_ch * n_s * dtype.itemsize
    if len(data) < needed:
        raise FormatError(
            f"{where}: WaveformData holds {len(data)} bytes, expected {n_ch} channels x {n_s} "
            f"samples x {dtype.itemsize} bytes = {needed} (truncated file?)"
        )
    raw = np.frombuffer(data, dtype=dtype, count=n_ch * n_s).reshape(n_s, n_ch)
    chans = item.get("ChannelDefinitionSequence") or []
    if len(chans) != n_ch:
        raise FormatError(
            f"{where}: ChannelDefinitionSequence has {len(chans)} items for {n_ch} channels"
        )
    values = np.empty((n_ch, n_s), dtype=np.float64)
    info = []
    for j, ch in enumerate(chans):
        cw = f"{where}, channel {j + 1}"
        sens = _get(ch, "ChannelSensitivity", cw, default=None, kind=float)
        corr = _get(ch, "ChannelSensitivityCorrectionFactor", cw, default=1.0, kind=float)
        base = _get(ch, "ChannelBaseline", cw, default=0.0, kind=float)
        units = _units(ch, cw) if sens is not None else ""
        values[j] = raw[:, j].astype(np.float64) * (1.0 if sens is None else sens) * corr + base
        factor = UCUM_VOLTS.get(units)
        if factor is not None:
            values[j] *= factor
        if not np.all(np.isfinite(values[j])):
            raise FormatError(
                f"{cw}: ChannelSensitivity {sens}, correction {corr} and baseline {base} give "
                "values that are not finite"
            )
        info.append(
            {
                "label": _label(ch, j),
                "units": "V" if factor is not None else units,
                "ucum": units,
                "highpass": _get(ch, "FilterLowFrequency", cw, default=np.nan, kind=float),
                "lowpass": _get(ch, "FilterHighFrequency", cw, default=np.nan, kind=float),
                "notch": _get(ch, "NotchFilterFrequency", cw, default=np.nan, kind=float),
                "skew": _get(ch, "ChannelSampleSkew", cw, default=0.0, kind=float) * 1e-3,
            }
        )
    offset = _get(item, "MultiplexGroupTimeOffset", where, default=0.0, kind=float) * 1e-3
    return {
        "values": values,
        "channels": info,
        "sampling_rate": fs,
        "time_offset": offset,
        "label": _get(item, "MultiplexGroupLabel", where, default=""),
        "bits": bits,
        "interpretation": interp,
    }


def _groups(ds, name: str) -> list[dict]:
    seq = ds.get("WaveformSequence")
    if not seq:
        raise FormatError(f"{name}: no Waveform Sequence (5400,0100): not a waveform object")
    little = _little_endian(ds)
    return [_decode_group(item, g, name, little) for g, item in enumerate(seq)]


def _quiet(func):
    """Run ``func`` with pydicom's warnings about invalid values silenced (damage is reported
    as FormatError by the checks here, and pydicom's warnings would otherwise leak)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
            return func(*args, **kwargs)

    return wrapper


@_quiet
def read_dicom_waveform(path: str | os.PathLike) -> list[xr.DataArray]:
    """Read the multiplex groups of any DICOM waveform object (ECG, EEG, EMG, ...).

    Parameters
    ----------
    path : path-like
        A DICOM Part 10 file.

    Returns
    -------
    list of xarray.DataArray
        One per multiplex group, dims ``(channel, sample)``, float64. Channels whose
        sensitivity units are volts (UCUM ``V``, ``mV``, ``uV``, ``nV``) are in V; other channels
        keep their physical units (coordinate ``units``; ``ucum`` is the file's code).
        Coordinates: ``label``, ``units``, ``ucum``, ``highpass``/``lowpass``/``notch`` (Hz,
        from FilterLow/High/NotchFilterFrequency), ``sample_skew`` (s), ``time`` (s, from
        ``MultiplexGroupTimeOffset``). Attributes: ``sampling_rate``, ``multiplex_group_label``,
        ``group_index``, ``time_offset``, ``sop_class_uid``, ``sop_class``,
        ``bits_allocated``, ``sample_interpretation``. No patient attribute is returned.
    """
    path = Path(path)
    ds = _dcmread(path)
    sop = _sop_class(ds, path.name)
    out = []
    for g, group in enumerate(_groups(ds, path.name)):
        chans = group["channels"]
        n = group["values"].shape[1]
        da = xr.DataArray(
            group["values"],
            dims=("channel", "sample"),
            coords={
                "channel": np.arange(len(chans)),
                "label": ("channel", [c["label"] for c in chans]),
                "units": ("channel", [c["units"] for c in chans]),
                "ucum": ("channel", [c["ucum"] for c in chans]),
                "highpass": ("channel", [c["highpass"] for c in chans], {"units": "Hz"}),
                "lowpass": ("channel", [c["lowpass"] for c in chans], {"units": "Hz"}),
                "notch": ("channel", [c["notch"] for c in chans], {"units": "Hz"}),
                "sample_skew": ("channel", [c["skew"] for c in chans], {"units": "s"}),
                "time": (
                    "sample",
                    group["time_offset"] + np.arange(n) / group["sampling_rate"],
                    {"units": "s"},
                ),
            },
            name=group["label"] or f"group{g + 1}",
            attrs={
                "sampling_rate": group["sampling_rate"],
                "multiplex_group_label": group["label"],
                "group_index": g,
                "time_offset": group["time_offset"],
                "sop_class_uid": sop,
                "sop_class": _sop_name(sop),
                "bits_allocated": group["bits"],
                "sample_interpretation": group["interpretation"],
            },
        )
        out.append(da)
    return out


def _parse_age(text: str, where: str) -> float:
    m = re.fullmatch(r"(\d{3})([DWMY])", text.strip())
    if not m:
        raise FormatError(f"{where}: PatientAge {text!r}, expected nnnD, nnnW, nnnM or nnnY")
    n = int(m.group(1))
    return {"D": n / 365.25, "W": n * 7 / 365.25, "M": n / 12.0, "Y": float(n)}[m.group(2)]


def _parse_da(text: str) -> _dt.date | None:
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", (text or "").strip()[:8])
    if not m:
        return None
    try:
        return _dt.date(*(int(x) for x in m.groups()))
    except ValueError:
        return None


def _age(ds, name: str) -> float:
    """Age at the exam: PatientAge, or whole years from birth date to the study date."""
    age = _get(ds, "PatientAge", f"{name}: patient module", default=None)
    if age:
        return _parse_age(age, name)
    birth = _parse_da(str(ds.get("PatientBirthDate", "") or ""))
    exam = None
    for keyword in ("StudyDate", "AcquisitionDateTime", "ContentDate", "SeriesDate"):
        exam = _parse_da(str(ds.get(keyword, "") or ""))
        if exam:
            break
    if birth and exam and exam >= birth:
        years = exam.year - birth.year - ((exam.month, exam.day) < (birth.month, birth.day))
        return float(years)
    return float("nan")


def _exam_date(ds) -> _dt.date | None:
    for keyword in ("StudyDate", "AcquisitionDateTime", "ContentDate", "SeriesDate"):
        exam = _parse_da(str(ds.get(keyword, "") or ""))
        if exam:
            return exam
    return None


@_quiet
def _identity(path: str | os.PathLike) -> dict:
    """``PatientID`` and the exam date (StudyDate, else AcquisitionDateTime, ContentDate,
    SeriesDate), for ``ncsproc.read``'s privacy step only: the identifier is pseudonymised or
    dropped there, never stored. Other patient attributes (name, birth date, other IDs) are
    never used."""
    ds = _dcmread(Path(path))
    try:
        patient = str(ds.get("PatientID", "") or "").strip() or None
    except Exception:  # an unreadable value is no identifier
        patient = None
    try:
        date = _exam_date(ds)
    except Exception:
        date = None
    return {"patient_id": patient, "exam_date": date}


def _annotations(ds, name: str) -> dict[tuple[int, int], dict]:
    """ncsproc's per-group annotations: {(group, channel or 0): facts}."""
    out = {}
    seq = ds.get("WaveformAnnotationSequence") or []
    for k, item in enumerate(seq):
        text = str(item.get("UnformattedTextValue", "") or "")
        if not text.startswith(ANNOTATION_PREFIX):
            continue
        where = f"{name}: waveform annotation {k + 1}"
        ref = item.get("ReferencedWaveformChannels")
        try:
            ref = [
                int(v)
                for v in (
                    ref if isinstance(ref, (list, tuple)) or hasattr(ref, "__len__") else [ref]
                )
            ]
        except Exception:
            ref = []
        if len(ref) != 2:
            raise FormatError(
                f"{where}: ReferencedWaveformChannels {ref!r}, expected (group, channel)"
            )
        try:
            facts = json.loads(text[len(ANNOTATION_PREFIX) :])
            if not isinstance(facts, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            raise FormatError(
                f"{where}: text after {ANNOTATION_PREFIX.strip()!r} is not a JSON object ({exc})"
            ) from None
        out[(ref[0], ref[1])] = facts
    return out


_SIDE_WORDS = {"l": "L", "left": "L", "r": "R", "right": "R"}
_MODALITY_WORDS = {
    "motor": "motor",
    "sensory": "sensory",
    "fwave": "fwave",
    "f-wave": "fwave",
    "mnc": "motor",
    "snc": "sensory",
    "fw": "fwave",
}


def _parse_label(label: str) -> dict:
    """Side, nerve and modality from a group label such as ``L_median_motor``, as far as it says."""
    from ..vocab import NERVES

    out = {}
    text = label.lower().replace("f-wave", "fwave").replace("f wave", "fwave")
    tokens = [t for t in re.split(r"[^a-z0-9]+", text) if t]
    joined = "_".join(tokens)
    for nerve in sorted(NERVES, key=len, reverse=True):
        if re.search(rf"(^|_){nerve}(_|$)", joined):
            out["nerve"] = nerve
            break
    sides = {_SIDE_WORDS[t] for t in tokens if t in _SIDE_WORDS}
    if len(sides) == 1:
        out["side"] = sides.pop()
    mods = {_MODALITY_WORDS[t] for t in tokens if t in _MODALITY_WORDS}
    if len(mods) == 1:
        out["modality"] = mods.pop()
    return out


def _clean(key: str, value, where: str):
    """The annotation's ``record`` (an integer)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FormatError(f"{where}: {key} = {value!r} is not an integer") from None


@_quiet
def load(path: str | os.PathLike, metadata: Mapping[str, object] | None = None) -> xr.Dataset:
    """Read an Electromyogram Waveform Storage file into a trace set.

    One trace per voltage channel of each multiplex group (group order, then channel order);
    ``record`` is the group index unless ncsproc's annotation gives the original one.

    Parameters
    ----------
    path : path-like
        The DICOM file.
    metadata : mapping, optional
        A sidecar mapping (same keys and rules as ``<file>.json``: trace-set coordinates for
        every trace, ``"records": [{"record": n, ...}]`` for one; it fills what the file does
        not say, a contradiction is an error). ``subject_id`` can only come from here: it is
        never taken from the DICOM patient module.

    Returns
    -------
    xarray.Dataset
        A trace set. Without nerve, side or modality (from ncsproc's annotation, the
        multiplex group label such as ``L_median_motor``, or ``Laterality``) and without
        ``metadata``, it is returned unvalidated (``ncsproc.read`` completes it from the
        sidecar and validates it); with ``metadata`` that still lacks them, a FormatError
        names the keys.

    Raises
    ------
    FormatError
        Not the EMG SOP class (the message names the class and the generic reader), or a
        damaged file (the message names the group, channel and attribute).
    """
    path = Path(path)
    name = path.name
    ds = _dcmread(path)
    sop = _sop_class(ds, name)
    if sop != EMG_SOP_CLASS:
        raise FormatError(
            f"{name}: DICOM {_sop_name(sop)} ({sop}) is not Electromyogram Waveform Storage "
            f"({EMG_SOP_CLASS}); ncsproc.read takes nerve-conduction waveforms only. Read other "
            "waveforms with ncsproc.formats.dicom.read_dicom_waveform(path)"
        )
    try:
        return _load_emg(ds, path, metadata)
    except FormatError:
        raise
    except Exception as exc:  # damaged values pydicom parses lazily
        raise FormatError(
            f"{name}: damaged Electromyogram waveform file ({type(exc).__name__}: {exc})"
        ) from None


def _load_emg(ds, path: Path, metadata) -> xr.Dataset:
    from ._sidecar import coord_value, normalize_record_site
    from .cfs import finish_trace_set

    name = path.name
    groups = _groups(ds, name)
    notes = _annotations(ds, name)
    age = _age(ds, name)
    size = _get(ds, "PatientSize", f"{name}: patient module", default=np.nan, kind=float)
    height = size * 100.0 if size > 0 else np.nan
    laterality = _SIDE_WORDS.get(str(ds.get("Laterality", "") or "").strip().lower())

    signals, rows, skipped = [], [], []
    n_voltage_per_group = []
    for g, group in enumerate(groups):
        from_label = _parse_label(group["label"])
        n_v = 0
        for j, ch in enumerate(group["channels"]):
            if ch["units"] != "V":
                skipped.append(
                    f"group {g + 1} channel {j + 1} {ch['label']!r} ({ch['ucum'] or 'no units'})"
                )
                continue
            n_v += 1
            site = normalize_record_site(ch["label"])
            row = {
                "highpass": ch["highpass"],
                "lowpass": ch["lowpass"] if ch["lowpass"] > 0 else np.nan,
                "age": age,
                "height": height,
                "record": g,
                "channel": ch["label"] or str(j + 1),
            }
            if site in _KNOWN_SITES or site.startswith("digit "):
                row["record_site"] = site
            if laterality:
                row["side"] = laterality
            row.update(from_label)
            facts = {**notes.get((g + 1, 0), {}), **notes.get((g + 1, j + 1), {})}
            where = f"{name}: ncsproc annotation of multiplex group {g + 1}"
            for key, value in facts.items():
                if key == "trace":
                    row["trace"] = str(value)
                elif key == "record":
                    row["record"] = _clean("record", value, where)
                elif key in _ANNOTATED:
                    row[key] = (
                        coord_value(key, value, f"{where}: {key}") if value is not None else np.nan
                    )
            row["sampling_rate"] = group["sampling_rate"]
            row["t_start"] = group["time_offset"] + ch["skew"]
            signals.append(group["values"][j])
            rows.append(row)
        n_voltage_per_group.append(n_v)
    if not rows:
        raise FormatError(
            f"{name}: no channel in volts (UCUM V, mV, uV); channels: " + "; ".join(skipped)
        )
    attrs = {
        "source_format": "dicom-emg",
        "sop_class_uid": EMG_SOP_CLASS,
        "dicom_group_labels": json.dumps([g["label"] for g in groups]),
    }
    if skipped:
        attrs["dicom_skipped_channels"] = json.dumps(skipped)
    return finish_trace_set(
        signals,
        rows,
        name,
        metadata,
        attrs,
        f"read DICOM EMG waveform {name}",
        several_channels=max(n_voltage_per_group) > 1,
    )


_KNOWN_SITES = {"APB", "ADM", "EDB", "AH", "FDI", "TA", "FCU", "EIP", "EI", "ADQ"}


# ---------------------------------------------------------------------------------------------
# Writing


def _ds_text(value: float) -> str:
    from pydicom.valuerep import format_number_as_ds

    return format_number_as_ds(float(value))


def _sensitivity(peak_uv: float, max_count: int) -> str:
    """A DS string s (uV per count) with peak/s <= max_count."""
    if not peak_uv > 0:
        return "1"
    s = peak_uv / max_count
    text = _ds_text(s)
    while peak_uv / float(text) > max_count:
        s *= 1 + 1e-6
        text = _ds_text(s)
    return text


def write_dicom(traces: xr.Dataset, path: str | os.PathLike, *, bits: int = 16) -> Path:
    """Write a trace set as DICOM Electromyogram Waveform Storage.

    Each trace becomes one multiplex group of one channel (so traces keep their own sampling
    rate, length and ``t_start``): ``SamplingFrequency``, ``MultiplexGroupTimeOffset`` =
    ``t_start`` in ms (from the stimulus, ncsproc's convention), ``MultiplexGroupLabel`` =
    study and ``ChannelLabel`` = recording site (both SH: first 16 characters), filters, and
    samples as signed integers with a per-trace ``ChannelSensitivity`` in uV chosen so that the largest sample uses the full
    range: the round trip is exact to half a sensitivity step (half an LSB). The remaining
    trace-set facts (trace id, record, exam, nerve, side, modality, sites, distance, stimulus,
    temperature, age, height) go into one waveform annotation per group, ``ncsproc-trace
    {json}``. The patient module gets ``PatientAge`` (whole years) and ``PatientSize``; name,
    ID and birth date are left empty and ``subject_id`` is not written.

    Parameters
    ----------
    traces : xarray.Dataset
        A valid trace set of one exam (one DICOM object is one patient's study).
    path : path-like
        Output file.
    bits : {16, 32}
        Sample size: 16 (``SS``, default) or 32 (``SL``).

    Returns
    -------
    pathlib.Path
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    from .._version import __version__
    from ..schema import validate_trace_set

    validate_trace_set(traces)
    if bits not in (16, 32):
        raise ValueError(f"bits must be 16 or 32, got {bits}")
    path = Path(path)
    exams = sorted({str(e) for e in traces["exam_id"].values})
    if len(exams) != 1:
        raise ValueError(
            f"write_dicom writes one exam per file (one DICOM object is one patient's study); "
            f"the trace set holds exams {exams[:5]}: select one with ncsproc.select(ds, exam_id=...)"
        )
    for key in ("age", "height"):
        vals = np.asarray(traces[key].values, dtype=np.float64)
        finite = vals[np.isfinite(vals)]
        if finite.size and not np.all(finite == finite[0]):
            raise ValueError(f"write_dicom: '{key}' differs between traces of one exam")
    max_count = 32767 if bits == 16 else 2**31 - 1
    dtype = "<i2" if bits == 16 else "<i4"

    def code(value, scheme, meaning):
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = scheme
        item.CodeMeaning = meaning
        return item

    now = _dt.datetime.now()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = EMG_SOP_CLASS
    ds.SOPInstanceUID = generate_uid()
    # Patient module (type 2 attributes present but empty: no identifying data)
    ds.PatientName = ""
    ds.PatientID = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    age = np.asarray(traces["age"].values, dtype=np.float64)
    if np.isfinite(age).any():
        ds.PatientAge = f"{int(np.nanmax(age)):03d}Y"
    height = np.asarray(traces["height"].values, dtype=np.float64)
    if np.isfinite(height).any():
        ds.PatientSize = _ds_text(float(np.nanmax(height)) / 100.0)
    # General study, series, equipment, synchronisation, waveform identification
    ds.StudyInstanceUID = generate_uid()
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.Modality = "EMG"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 1
    ds.Manufacturer = "ncsproc"
    ds.SoftwareVersions = __version__
    ds.SynchronizationFrameOfReferenceUID = generate_uid()
    ds.SynchronizationTrigger = "NO TRIGGER"
    ds.AcquisitionTimeSynchronized = "N"
    ds.InstanceNumber = 1
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.AcquisitionContextSequence = Sequence([])

    groups, notes = [], []
    for i in range(traces.sizes["trace"]):
        one = traces.isel(trace=i)
        n = int(one["n_samples"])
        x_uv = np.asarray(one["signal"].values[:n], dtype=np.float64) * 1e6
        if not np.all(np.isfinite(x_uv)):
            raise ValueError(
                f"trace {str(one['trace'].values)!r}: NaN or infinite samples among its n_samples"
            )
        sens = _sensitivity(float(np.max(np.abs(x_uv))) if n else 0.0, max_count)
        counts = np.clip(np.rint(x_uv / float(sens)), -max_count, max_count).astype(dtype)

        ch = Dataset()
        site = str(one["record_site"].values)
        ch.ChannelLabel = site[:16]
        ch.ChannelSourceSequence = Sequence(
            [code("NCS-REC", "99NCSPROC", (site or "recording electrode")[:64])]
        )
        ch.ChannelSensitivity = sens
        ch.ChannelSensitivityUnitsSequence = Sequence([code("uV", "UCUM", "microvolt")])
        ch.ChannelSensitivityCorrectionFactor = "1"
        ch.ChannelBaseline = "0"
        ch.ChannelSampleSkew = "0"
        ch.WaveformBitsStored = bits
        hp, lp = float(one["highpass"]), float(one["lowpass"])
        if np.isfinite(hp):
            ch.FilterLowFrequency = _ds_text(hp)
        if np.isfinite(lp):
            ch.FilterHighFrequency = _ds_text(lp)

        item = Dataset()
        item.MultiplexGroupTimeOffset = _ds_text(float(one["t_start"]) * 1e3)
        item.WaveformOriginality = "ORIGINAL"
        item.NumberOfWaveformChannels = 1
        item.NumberOfWaveformSamples = n
        item.SamplingFrequency = _ds_text(float(one["sampling_rate"]))
        item.MultiplexGroupLabel = str(one["study"].values)[:16]  # SH; the annotation has it whole
        item.ChannelDefinitionSequence = Sequence([ch])
        item.WaveformBitsAllocated = bits
        item.WaveformSampleInterpretation = "SS" if bits == 16 else "SL"
        item.WaveformData = counts.tobytes()
        groups.append(item)

        facts = {}
        for key in _ANNOTATED:
            value = one[key].values.item() if key in one.variables else None
            if isinstance(value, float) and not np.isfinite(value):
                continue
            facts[key] = value
        text = ANNOTATION_PREFIX + json.dumps(facts, separators=(",", ":"), ensure_ascii=False)
        if len(text) > 1024:
            raise ValueError(
                f"trace {facts.get('trace')!r}: its facts need {len(text)} characters, more than the "
                "1024 a DICOM annotation text (ST) holds; shorten the site or study names"
            )
        note = Dataset()
        note.ReferencedWaveformChannels = [i + 1, 0]
        note.AnnotationGroupNumber = i + 1
        note.UnformattedTextValue = text
        notes.append(note)
    ds.WaveformSequence = Sequence(groups)
    ds.WaveformAnnotationSequence = Sequence(notes)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(EMG_SOP_CLASS)
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    tmp = path.with_name(path.name + ".part")
    ds.save_as(tmp, enforce_file_format=True)
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------------------------
# Registry


def _meta_sop_class(buf: bytes) -> str:
    """Media Storage SOP Class UID from the file meta group (explicit VR little endian)."""
    pos = 132
    while pos + 8 <= len(buf):
        group, elem = struct.unpack_from("<HH", buf, pos)
        if group != 0x0002:
            break
        vr = buf[pos + 4 : pos + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"):
            if pos + 12 > len(buf):
                break
            length = struct.unpack_from("<I", buf, pos + 8)[0]
            start = pos + 12
        else:
            length = struct.unpack_from("<H", buf, pos + 6)[0]
            start = pos + 8
        if elem == 0x0002:
            return (
                buf[start : start + length].split(b"\x00", 1)[0].decode("ascii", "replace").strip()
            )
        pos = start + length
    return ""


@_quiet
def _sniff(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
        if len(head) < 132 or head[128:132] != b"DICM":
            return "no 'DICM' marker at byte 128"
        with open(path, "rb") as fh:
            uid = _meta_sop_class(fh.read(65536))
        if uid == EMG_SOP_CLASS:
            return None
        return (
            f"DICOM {_sop_name(uid) if uid else 'object without SOP class'}, not Electromyogram "
            "Waveform Storage (read other waveforms with ncsproc.formats.dicom.read_dicom_waveform)"
        )
    except Exception as exc:  # never raise
        return f"not a readable DICOM file ({type(exc).__name__})"


def _example(folder: str | os.PathLike) -> Path:
    """Three simulated median motor traces written with :func:`write_dicom`."""
    import pydicom

    from ..simulate import response_set

    traces, _ = response_set("motor", 3, seed=0, pretrigger=0.002)
    traces = traces.assign_coords(
        stim_site=("trace", ["wrist", "elbow", "axilla"], traces["stim_site"].attrs),
        highpass=("trace", [2.0, 2.0, 2.0], traces["highpass"].attrs),
        lowpass=("trace", [10000.0] * 3, traces["lowpass"].attrs),
        age=("trace", [54.0] * 3, traces["age"].attrs),
        height=("trace", [172.0] * 3, traces["height"].attrs),
    )
    path = write_dicom(traces, Path(folder) / "example.dcm")
    # identifying attributes a clinical file would carry: they must never reach a trace set
    ds = pydicom.dcmread(path)
    for keyword, value in _EXAMPLE_IDENTIFYING.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)
    return path


_EXAMPLE_IDENTIFYING = {
    "PatientName": "Doe^Jane",
    "PatientID": "PID-0123456",
    "PatientBirthDate": "19700304",
    "OtherPatientIDs": "MRN-7654321",
    "PatientAddress": "12 Example Street",
}


READER = Reader(
    name="dicom",
    description="DICOM Electromyogram Waveform Storage (one trace per voltage channel of each multiplex group)",
    extensions=(".dcm", ".dicom"),
    sniff=_sniff,
    load=load,
    example=_example,
    identifying=("Doe^Jane", "Jane", "PID-0123456", "19700304", "MRN-7654321", "Example Street"),
    function="ncsproc.read",
    identity=_identity,
)
