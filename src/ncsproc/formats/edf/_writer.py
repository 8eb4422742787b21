"""Write trace sets as EDF+D nerve-conduction files (the open export format).

One file per exam and study; one data record per trace (sweep); one voltage signal with
16-bit samples and a physical range chosen to hold the data; an ``EDF Annotations`` signal
whose first TAL keeps time and whose next TALs describe the stimulus in the words of the
EDF+ specification (and, optionally, as an ``<EDF_XMLnote>``). What EDF+ has no place for
(exam id, pseudonymous subject id, age, height) goes to a JSON sidecar ``<file>.json``.
Nothing identifying is written: the patient field is ``X X X X`` and the start date unknown.
"""

from __future__ import annotations

import json
import math
import os
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from ...schema import validate_trace_set
from .._sidecar import decimal_text

DIGITAL_MIN, DIGITAL_MAX = -32768, 32767
_CODES = {"motor": "MNC", "sensory": "SNC", "fwave": "FW"}
_SIDE_WORDS = {"L": "left", "R": "right"}


class EdfWriteError(ValueError):
    """A trace set that EDF+D cannot hold as asked (the message says why and what to do)."""


def write_edf(
    traces, path: str | os.PathLike, *, xmlnote: bool = True, sidecar: bool = True
) -> list[Path]:
    """Write a trace set as EDF+D nerve-conduction files.

    Parameters
    ----------
    traces : xarray.Dataset
        A valid trace set.
    path : path-like
        A file name ending in ``.edf``: the traces must then form one study of one exam.
        Anything else is a folder: one file ``<folder>/<exam_id>/<study>.edf`` per exam and
        study (the contract's one-folder-per-exam layout).
    xmlnote : bool
        Also describe each stimulus as an ``<EDF_XMLnote>`` (duration, intensity, position,
        distance, temperature). The temperature has no place in the text form, so without
        the note it goes to the sidecar.
    sidecar : bool
        Write ``<file>.json`` with what EDF+ cannot hold (``exam_id``, ``subject_id``,
        ``age``, ``height``, a ``study`` name that is not ``<side>_<nerve>_<modality>``),
        so that :func:`ncsproc.read` gives the same trace set back.

    Returns
    -------
    list of pathlib.Path
        The EDF files written, in order.

    Raises
    ------
    EdfWriteError
        Traces that one EDF+D file cannot hold: several studies for one ``.edf`` path; within a
        study, different sampling rates or sweep lengths (an EDF signal has one number of
        samples per data record: write such traces to separate files), recording sites or
        filter settings (one signal header); a side, nerve or modality that is unknown; NaN or
        infinite samples.

    Notes
    -----
    Samples are 16-bit; the physical range is symmetric, ``+-max|x|`` rounded up to what the
    8-character header field can hold, in uV below 1 mV, else mV (V from 1 V), so reading back
    gives every sample to within half a quantisation step. Numbers in the annotations are
    written as exact decimals and read back identical. The sampling rate is stored as samples
    per record over the record duration (an 8-character field); a rate that cannot be written
    exactly is written to the nearest value whose timing error over the sweep stays below a
    tenth of a sample, and refused otherwise.
    """
    validate_trace_set(traces)
    path = Path(path)
    exam = np.asarray(traces["exam_id"].values).astype(str)
    study = np.asarray(traces["study"].values).astype(str)
    keys = list(dict.fromkeys(zip(exam, study, strict=True)))
    if path.suffix.lower() == ".edf":
        if len(keys) != 1:
            raise EdfWriteError(
                f"{path.name}: one EDF+D file holds one study of one exam; the traces hold "
                f"{len(keys)} ({', '.join('/'.join(k) for k in keys[:5])}{', ...' if len(keys) > 5 else ''}); "
                "give a folder to write one file per exam and study"
            )
        targets = [(keys[0], path)]
    else:
        for e, s in keys:
            for part, what in ((e, "exam_id"), (s, "study")):
                if not part or part in (".", "..") or any(c in part for c in '/\\:*?"<>|'):
                    raise EdfWriteError(f"{what} {part!r} cannot be used as a file or folder name")
        targets = [((e, s), path / e / f"{s}.edf") for e, s in keys]
    written = []
    for (e, s), target in targets:
        part = traces.isel(trace=np.flatnonzero((exam == e) & (study == s)))
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_one(part, target, xmlnote=xmlnote, sidecar=sidecar)
        written.append(target)
    return written


def _one(part, name: str, target: Path, *, allow_unknown=False):
    values = np.asarray(part[name].values)
    if values.dtype.kind == "f":
        uniq = np.unique(values[~np.isnan(values)])
        if np.isnan(values).any() and uniq.size:
            uniq = np.append(uniq, np.nan)
        if uniq.size == 0:
            return math.nan
    else:
        uniq = np.unique(values.astype(str))
    if uniq.size != 1:
        raise EdfWriteError(
            f"{target.name}: the traces of one EDF+D file share one {name} (one signal header), "
            f"found {list(uniq[:5])}; write them to separate files"
        )
    value = uniq[0]
    if not allow_unknown and isinstance(value, str) and value == "":
        raise EdfWriteError(f"{target.name}: {name} is unknown; EDF+D needs it in the header")
    return value.item() if hasattr(value, "item") else value


def _fit_ceil(value: float, width: int) -> str:
    """The smallest number >= value that an ASCII field of ``width`` characters can hold."""
    for decimals in range(width, -1, -1):
        q = Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_CEILING)
        text = format(q.normalize(), "f")
        if len(text) <= width:
            return text
    raise EdfWriteError(f"{value!r} does not fit an EDF header field of {width} characters")


def _duration_text(n: int, fs: float, target: Path) -> str:
    exact = Decimal(n) / Decimal(repr(fs))
    text = format(exact.normalize(), "f")
    if len(text) <= 8 and Decimal(n) / Decimal(text) == Decimal(repr(fs)):
        return text
    best = None
    for decimals in range(8, -1, -1):
        q = exact.quantize(Decimal(1).scaleb(-decimals))
        t = format(q.normalize(), "f")
        if len(t) <= 8 and q > 0:
            best = t
            break
    if best is not None:
        fs_back = float(Decimal(n) / Decimal(best))
        drift = abs(n / fs_back - n / fs) * fs  # in samples, over the sweep
        if drift <= 0.1:
            return best
    raise EdfWriteError(
        f"{target.name}: {n} samples at {fs!r} Hz last {exact} s, which the 8-character EDF "
        "record-duration field cannot hold closely enough (timing error above 0.1 sample); "
        "write shorter or longer sweeps"
    )


def _field(text: str, width: int, what: str, target: Path) -> bytes:
    raw = text.encode("ascii")
    if len(raw) > width:
        raise EdfWriteError(
            f"{target.name}: {what} {text!r} is longer than its {width}-character EDF field"
        )
    return raw.ljust(width, b" ")


def _stimulus_text(side: str, site: str, dur: float, inten: float, dist: float) -> str:
    words = ["Stimulus", _SIDE_WORDS[side]]
    if site:
        words.append(site)
    if not math.isnan(dur):
        words.append(f"{decimal_text(dur, Decimal('0.001'))}ms")
    if not math.isnan(inten):
        if not math.isnan(dur):
            words.append("x")
        words.append(f"{decimal_text(inten, Decimal('0.001'))}mA")
    if not math.isnan(dist):
        words.append(f"at {decimal_text(dist, Decimal('0.01'))}cm from recording site")
    return " ".join(words)


def _xmlnote_text(side: str, site: str, dur: float, inten: float, dist: float, temp: float) -> str:
    tag = "Stimulus_" + "".join(c if c.isalnum() else "_" for c in (site or "site"))
    parts = [f"<EDF_XMLnote><{tag}>"]
    if not math.isnan(dur):
        parts.append(f'<duration unit="ms">{decimal_text(dur, Decimal("0.001"))}</duration>')
    if not math.isnan(inten):
        parts.append(
            f'<intensity mode="current" unit="mA">{decimal_text(inten, Decimal("0.001"))}</intensity>'
        )
    parts.append(f"<position>{escape(_SIDE_WORDS[side] + (' ' + site if site else ''))}</position>")
    if not math.isnan(dist):
        parts.append(
            f'<distance mode="stimulus to recording" unit="cm">{decimal_text(dist, Decimal("0.01"))}</distance>'
        )
    if not math.isnan(temp):
        parts.append(f'<temperature unit="degC">{decimal_text(temp)}</temperature>')
    parts.append(f"</{tag}></EDF_XMLnote>")
    return "".join(parts)


def _write_one(part, target: Path, *, xmlnote: bool, sidecar: bool) -> None:
    order = np.argsort(np.asarray(part["record"].values), kind="stable")
    part = part.isel(trace=order)
    records = np.asarray(part["record"].values)
    if np.unique(records).size != records.size:
        raise EdfWriteError(
            f"{target.name}: record numbers repeat within the study ({list(records)}); expected one trace per record"
        )
    n = int(_one(part, "n_samples", target))
    fs = float(_one(part, "sampling_rate", target))
    side = _one(part, "side", target)
    nerve = _one(part, "nerve", target)
    modality = _one(part, "modality", target)
    record_site = _one(part, "record_site", target, allow_unknown=True)
    hp = _one(part, "highpass", target)
    lp = _one(part, "lowpass", target)

    data = np.asarray(part["signal"].values[:, :n], dtype=np.float64)
    if not np.isfinite(data).all():
        raise EdfWriteError(
            f"{target.name}: NaN or infinite samples within n_samples; EDF cannot store them"
        )
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if peak >= 1.0:
        unit, factor = "V", 1.0
    elif peak >= 1e-3:
        unit, factor = "mV", 1e-3
    else:
        unit, factor = "uV", 1e-6
    pmax_text = _fit_ceil(max(peak / factor, 1e-6), 7)
    pmax = float(pmax_text)
    pmin_text = "-" + pmax_text
    pmin = -pmax
    gain = (pmax - pmin) / (DIGITAL_MAX - DIGITAL_MIN)
    digital = np.rint((data / factor - pmin) / gain + DIGITAL_MIN)
    digital = np.clip(digital, DIGITAL_MIN, DIGITAL_MAX).astype("<i2")

    duration_text = _duration_text(n, fs, target)
    duration = Decimal(duration_text)
    t_start = np.asarray(part["t_start"].values, dtype=np.float64)
    spacing = int(math.ceil(float(duration) + float(np.max(np.abs(t_start))))) + 1
    base = int(math.ceil(max(0.0, float(np.max(t_start)))))

    label = "NC " + f"{side}_{record_site}" if record_site else f"NC {side}"
    prefilter = " ".join(
        f"{k}:{decimal_text(v)}Hz" for k, v in (("HP", hp), ("LP", lp)) if not math.isnan(v)
    )
    code = f"{_CODES[modality]}_{side}_{'_'.join(w.capitalize() for w in nerve.split('_'))}_Nerve"

    tal_blocks = []
    for i in range(part.sizes["trace"]):
        start = Decimal(base + i * spacing)
        onset = start - Decimal(repr(float(t_start[i])))
        row = part.isel(trace=i)
        site = str(row["stim_site"].values)
        dur, inten, dist, temp = (
            float(row[k]) for k in ("stim_duration", "stim_intensity", "distance", "temperature")
        )
        block = f"+{start}\x14\x14\x00"
        block += f"{_signed(onset)}\x14{_stimulus_text(side, site, dur, inten, dist)}\x14\x00"
        if xmlnote:
            block += (
                f"{_signed(onset)}\x14{_xmlnote_text(side, site, dur, inten, dist, temp)}\x14\x00"
            )
        tal_blocks.append(block.encode("utf-8"))
    ann_bytes = max(len(b) for b in tal_blocks)
    ann_bytes += ann_bytes % 2
    ann_samples = ann_bytes // 2

    ns = 2
    header = b"".join(
        [
            _field("0", 8, "version", target),
            _field("X X X X", 80, "patient", target),
            _field(f"Startdate X X X X {code}", 80, "recording", target),
            _field("01.01.85", 8, "startdate", target),
            _field("00.00.00", 8, "starttime", target),
            _field(str(256 * (ns + 1)), 8, "header bytes", target),
            _field("EDF+D", 44, "reserved", target),
            _field(str(len(tal_blocks)), 8, "number of records", target),
            _field(duration_text, 8, "record duration", target),
            _field(str(ns), 4, "number of signals", target),
            _field(label, 16, "signal label", target),
            _field("EDF Annotations", 16, "label", target),
            _field("", 80, "transducer", target) * 2,
            _field(unit, 8, "physical dimension", target),
            _field("", 8, "physical dimension", target),
            _field(pmin_text, 8, "physical minimum", target),
            _field("-1", 8, "physical minimum", target),
            _field(pmax_text, 8, "physical maximum", target),
            _field("1", 8, "physical maximum", target),
            _field(str(DIGITAL_MIN), 8, "digital minimum", target) * 2,
            _field(str(DIGITAL_MAX), 8, "digital maximum", target) * 2,
            _field(prefilter, 80, "prefiltering", target),
            _field("", 80, "prefiltering", target),
            _field(str(n), 8, "samples per record", target),
            _field(str(ann_samples), 8, "samples per record", target),
            _field("", 32, "reserved", target) * 2,
        ]
    )
    assert len(header) == 256 * (ns + 1)
    body = b"".join(
        digital[i].tobytes() + tal_blocks[i].ljust(ann_bytes, b"\x00")
        for i in range(len(tal_blocks))
    )
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(header + body)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    if sidecar:
        _write_sidecar(part, target, f"{side}_{nerve}_{modality}", include_temperature=not xmlnote)


def _signed(d: Decimal) -> str:
    text = format(d.normalize(), "f") if d != 0 else "0"
    return text if text.startswith("-") else "+" + text


def _write_sidecar(part, target: Path, derived_study: str, *, include_temperature: bool) -> None:
    names = ["exam_id", "subject_id", "age", "height"]
    if include_temperature:
        names.append("temperature")
    if str(part["study"].values[0]) != derived_study:
        names.append("study")
    top: dict = {}
    per_record: dict[int, dict] = {}
    records = [int(r) for r in part["record"].values]
    for name in names:
        values = part[name].values
        if values.dtype.kind == "f":
            cells = [None if math.isnan(v) else float(v) for v in values]
        else:
            cells = [str(v) or None for v in values]
        if all(c is None for c in cells):
            continue
        if len(set(cells)) == 1:
            top[name] = cells[0]
        else:
            for r, c in zip(records, cells, strict=True):
                if c is not None:
                    per_record.setdefault(r, {"record": r})[name] = c
    if per_record:
        top["records"] = [per_record[r] for r in sorted(per_record)]
    side = target.with_name(target.name + ".json")
    if top:
        side.write_text(json.dumps(top, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    elif side.exists():
        side.unlink()
