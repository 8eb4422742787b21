"""Read EDF+D nerve-conduction files (own layer) and continuous EDF/BDF with stimulus events.

EDF+D (``read_edf_ncs``): one trace per data record and voltage signal. The first TAL of
each record keeps time (the record's start); the record's stimulus annotation gives the
stimulus time, so ``t_start = record start - stimulus onset`` (0 when the record has no
stimulus annotation: the record then starts at its stimulus, as the contract says).

EDF / EDF+C / BDF / BDF+C (``read_edf_continuous``): samples through MNE
(``mne.io.read_raw_edf`` / ``read_raw_bdf``, one call per sampling rate so nothing is
resampled), stimulus times from the file's own ``Stimulus ...`` annotations; one sweep per
stimulus and voltage signal, cut from the sidecar's ``window`` (default -5..50 ms, F-wave
files -5..100 ms, relative to the stimulus).
"""

from __future__ import annotations

import math
import warnings
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...errors import FormatError
from ...schema import (
    ACQUISITION_COORDS,
    SITE_COORDS,
    STUDY_COORDS,
    RawTraces,
    make_trace_set,
)
from .._sidecar import load_sidecar, parse_quantity, unit_factor
from ._annotations import (
    Stimulus,
    age_at_exam,
    is_stimulus,
    is_xmlnote,
    parse_label,
    parse_prefiltering,
    parse_stimulus,
    parse_study_code,
    parse_tals,
    parse_xmlnote,
)
from ._header import Header, Signal, digital_samples, read_header, record_bytes_view

if TYPE_CHECKING:
    import xarray as xr

SIDECAR_KEYS = ("polarity", "window", "stimuli")
DEFAULT_WINDOW = (-0.005, 0.050)
DEFAULT_WINDOW_FWAVE = (-0.005, 0.100)


# --------------------------------------------------------------------------------------------
# shared pieces
# --------------------------------------------------------------------------------------------


# Per-trace fields an EDF reader collects for each trace (the rest come from read(): sidecar,
# exam folder).
_PER_TRACE_KEYS = (
    "sampling_rate",
    "t_start",
    *STUDY_COORDS,
    *SITE_COORDS,
    *ACQUISITION_COORDS,
    "record",
    "trace",
)


def _append_trace(
    meta, fs, t_start, study, code, side, stim, record_site, hp, lp, record, suffix
) -> None:
    """Append one trace's facts to the per-trace lists (keys :data:`_PER_TRACE_KEYS`)."""
    for key, value in (
        ("sampling_rate", fs),
        ("t_start", t_start),
        ("study", study),
        ("nerve", code.nerve),
        ("side", side),
        ("modality", code.modality),
        ("stim_site", stim.site),
        ("record_site", record_site),
        ("distance", stim.distance),
        ("stim_intensity", stim.intensity),
        ("stim_duration", stim.duration),
        ("highpass", hp),
        ("lowpass", lp),
        ("temperature", stim.temperature),
        ("record", record),
        ("trace", f"/{study}/{record}{suffix}"),
    ):
        meta[key].append(value)


def _trace_set(signals, meta, age, name, attrs, skipped, history):
    """The reader's trace set: ids and subject left for read() to fill, no validation here."""
    if skipped:
        attrs = {**attrs, "skipped_signals": ", ".join(skipped)}
    return make_trace_set(
        signals,
        exam_id="",
        subject_id="",
        age=age,
        source_file=name,
        attrs=attrs,
        history=history,
        validate=False,
        raw=True,
        **meta,
    )


def _voltage_factor(sig: Signal) -> float | None:
    try:
        return float(unit_factor("voltage", sig.dimension))
    except KeyError:
        return None


def _options(path: Path) -> dict:
    """This reader's own sidecar keys: ``polarity``, ``window`` and ``stimuli``."""
    data, side = load_sidecar(path)
    out = {"flip": False, "window": None, "stimuli": None}
    if not data:
        return out
    pol = data.get("polarity", "G1-G2")
    if pol not in ("G1-G2", "G2-G1"):
        raise FormatError(
            f"{side.name}: 'polarity' is {pol!r}, expected 'G1-G2' (as stored) or 'G2-G1' (inverted)"
        )
    out["flip"] = pol == "G2-G1"
    if "window" in data:
        w = data["window"]
        if not (isinstance(w, list) and len(w) == 2):
            raise FormatError(
                f"{side.name}: 'window' must be [start, end] relative to the stimulus, found {w!r}"
            )
        lo = parse_quantity(w[0], "time", f"{side.name}: window[0]")
        hi = parse_quantity(w[1], "time", f"{side.name}: window[1]")
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise FormatError(
                f"{side.name}: 'window' is {w!r}; expected start < end (s or '<n> ms')"
            )
        out["window"] = (lo, hi)
    if "stimuli" in data:
        st = data["stimuli"]
        if not isinstance(st, list) or not st:
            raise FormatError(
                f"{side.name}: 'stimuli' must be a non-empty list of stimulus times from the "
                f"start of the recording (s or '<n> ms'), found {st!r}"
            )
        times = [parse_quantity(v, "time", f"{side.name}: stimuli[{i}]") for i, v in enumerate(st)]
        if not all(math.isfinite(t) and t >= 0 for t in times) or times != sorted(set(times)):
            raise FormatError(
                f"{side.name}: 'stimuli' must be increasing times >= 0 s, found {st!r}"
            )
        out["stimuli"] = [Decimal(repr(t)) for t in times]
    return out


def _voltage_signals(h: Header) -> tuple[list[tuple[Signal, float]], list[str]]:
    volts, skipped = [], []
    for s in h.ordinary_signals:
        f = _voltage_factor(s)
        if f is None:
            skipped.append(s.label)
        else:
            volts.append((s, f))
    if not volts:
        dims = {s.label: s.dimension for s in h.ordinary_signals}
        raise FormatError(
            f"{h.path.name}: no signal with a voltage dimension (V, mV, uV); signals and their "
            f"physical dimensions: {dims}"
        )
    return volts, skipped


def _record_tals(h: Header, records: np.ndarray, r: int):
    """(time-keeping onset, [(onset, text), ...]) of data record ``r``."""
    where = f"{h.path.name}: data record {r}"
    start = None
    annotations = []
    for j, s in enumerate(h.annotation_signals):
        base = h.header_bytes + r * h.record_bytes + s.offset
        tals = parse_tals(
            bytes(records[r, s.offset : s.offset + s.nbytes]), where=where, base_offset=base
        )
        for t_index, tal in enumerate(tals):
            texts = tal.texts
            if j == 0 and t_index == 0:
                if not texts or texts[0] != "":
                    raise FormatError(
                        f"{where}, byte {tal.offset}: the first TAL of a data record must keep time "
                        f"('+<onset>\\x14\\x14'), found onset {tal.onset} with annotation {texts[:1]!r}"
                    )
                start = tal.onset
                texts = texts[1:]
            annotations.extend((tal.onset, t) for t in texts if t.strip())
    if start is None:
        raise FormatError(
            f"{where}: no time-keeping TAL (the record's annotation signal is empty); "
            "every EDF+ data record starts with '+<onset>\\x14\\x14'"
        )
    return start, annotations


def _stimulus_of(texts, where: str) -> Stimulus:
    stim = Stimulus()
    for text in texts:
        if is_stimulus(text):
            stim.merge(parse_stimulus(text, where), where)
    for text in texts:
        if is_xmlnote(text):
            stim.merge(parse_xmlnote(text, where), where)
    return stim


def _resolve_side(candidates: dict[str, str], where: str) -> str:
    known = {k: v for k, v in candidates.items() if v}
    values = set(known.values())
    if len(values) > 1:
        detail = ", ".join(f"{k} says {v}" for k, v in known.items())
        raise FormatError(f"{where}: the file contradicts itself about the side: {detail}")
    return values.pop() if values else ""


# --------------------------------------------------------------------------------------------
# EDF+D
# --------------------------------------------------------------------------------------------


def read_edf_ncs(path) -> xr.Dataset:
    """Read an EDF+D (or BDF+D) nerve-conduction file: one trace per data record and signal.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    xarray.Dataset
        A trace set; what the file does not say is NaN or "" (use :func:`ncsproc.read` to
        complete it from a sidecar and validate it).
    """
    return read_edf_ncs_raw(path).to_dataset()


def read_edf_ncs_raw(path) -> RawTraces:
    """:func:`read_edf_ncs` as plain arrays (the raw layer: no xarray object).

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    RawTraces
        A trace set; what the file does not say is NaN or "" (use :func:`ncsproc.read` to
        complete it from a sidecar and validate it).
    """
    path = Path(path)
    h = read_header(path)
    name = path.name
    if not h.discontinuous:
        raise FormatError(
            f"{name}: header byte 192: reserved field is {h.reserved[:44]!r}, expected 'EDF+D' "
            "(one sweep per data record); read EDF, EDF+C and BDF files with format='edf'"
        )
    if not h.annotation_signals:
        raise FormatError(
            f"{name}: an {h.variant} file needs an 'EDF Annotations' signal to keep time; none found"
        )
    opts = _options(path)
    if opts["stimuli"] is not None:
        raise FormatError(
            f"{name}: the sidecar's 'stimuli' (stimulus times of a continuous recording) does not "
            "apply to EDF+D, whose data records are the sweeps"
        )
    volts, skipped = _voltage_signals(h)
    records = record_bytes_view(h)
    code = parse_study_code(h.recording)
    age = age_at_exam(h.patient, h.recording, h.plus)

    starts, onsets, stims = [], [], []
    for r in range(h.n_records):
        where = f"{name}: data record {r}"
        start, annotations = _record_tals(h, records, r)
        if starts and start < starts[-1] + h.duration:
            raise FormatError(
                f"{where}: starts at +{start} s, before the end of data record {r - 1} "
                f"(+{starts[-1]} s + {h.duration} s); EDF+D data records must not overlap"
            )
        stim_onsets = sorted({on for on, text in annotations if is_stimulus(text)})
        if len(stim_onsets) > 1:
            raise FormatError(
                f"{where}: stimulus annotations at {', '.join('+' + str(o) for o in stim_onsets)} s; "
                "expected one stimulus per data record"
            )
        stim = _stimulus_of([t for _, t in annotations], where)
        starts.append(start)
        onsets.append(stim_onsets[0] if stim_onsets else None)
        stims.append(stim)

    if code.modality == "fwave":
        sites = {s.site for s in stims if s.site}
        if len(sites) == 1:
            only = sites.pop()
            for s in stims:
                if not s.site:
                    s.site = only

    signals, meta = (
        [],
        {k: [] for k in _PER_TRACE_KEYS},
    )
    decoded = []
    for sig, factor in volts:
        values = sig.to_physical(digital_samples(h, records, sig)) * factor
        if opts["flip"]:
            values = -values
        hp, lp = parse_prefiltering(sig.prefiltering)
        label_side, record_site = parse_label(sig.label)
        decoded.append((sig, values, hp, lp, label_side, record_site))
    several = len(decoded) > 1
    for r in range(h.n_records):
        stim = stims[r]
        t_start = float(starts[r] - onsets[r]) if onsets[r] is not None else 0.0
        for sig, values, hp, lp, label_side, record_site in decoded:
            where = f"{name}: data record {r}, signal {sig.label!r}"
            side = _resolve_side(
                {
                    "the recording field": code.side,
                    "the signal label": label_side,
                    "the stimulus annotation": stim.side,
                },
                where,
            )
            study = ""  # read() names it <side>_<nerve>_<modality> unless a sidecar says otherwise
            signals.append(values[r])
            _append_trace(
                meta,
                float(Decimal(sig.samples) / h.duration),
                t_start,
                study,
                code,
                side,
                stim,
                record_site,
                hp,
                lp,
                r,
                f"/{record_site or sig.index}" if several else "",
            )
    return _trace_set(
        signals,
        meta,
        age,
        name,
        {"source_format": h.variant},
        skipped,
        f"read {name} ({h.variant}, ncsproc EDF+D layer)",
    )


# --------------------------------------------------------------------------------------------
# EDF / EDF+C / BDF (continuous) through MNE
# --------------------------------------------------------------------------------------------


def read_edf_continuous(path) -> xr.Dataset:
    """Cut sweeps around the ``Stimulus ...`` annotations of a continuous EDF+/BDF+ file.

    Parameters
    ----------
    path : path-like
        An EDF, EDF+C, BDF or BDF+C file.

    Returns
    -------
    xarray.Dataset
        One trace per stimulus and voltage signal (``record`` = the stimulus's 0-based index
        in time order); unknown metadata NaN or "".
    """
    return read_edf_continuous_raw(path).to_dataset()


def read_edf_continuous_raw(path) -> RawTraces:
    """:func:`read_edf_continuous` as plain arrays (the raw layer: no xarray object).

    Parameters
    ----------
    path : path-like
        An EDF, EDF+C, BDF or BDF+C file.

    Returns
    -------
    RawTraces
        One trace per stimulus and voltage signal (``record`` = the stimulus's 0-based index
        in time order); unknown metadata NaN or "".
    """
    path = Path(path)
    h = read_header(path)
    name = path.name
    if h.discontinuous:
        raise FormatError(
            f"{name}: header byte 192: reserved field is {h.variant!r}: one sweep per data record; "
            "read it with format='edf+d' (MNE would merge the sweeps)"
        )
    opts = _options(path)
    if not h.annotation_signals and opts["stimuli"] is None:
        raise FormatError(
            f"{name}: {h.variant} file without an 'EDF Annotations' signal: it carries no stimulus "
            "events, so no sweep can be cut; ncsproc needs 'Stimulus ...' annotations (EDF+/BDF+), "
            "stimulus times in the sidecar ('stimuli'), or an EDF+D file with one sweep per "
            "data record"
        )
    volts, skipped = _voltage_signals(h)
    labels = [s.label for s, _ in volts]
    if len(set(labels)) != len(labels):
        raise FormatError(
            f"{name}: signal labels are not unique ({labels}); expected one label per signal"
        )
    records = record_bytes_view(h)
    code = parse_study_code(h.recording)
    age = age_at_exam(h.patient, h.recording, h.plus)

    by_onset: dict[Decimal, list[str]] = {}
    t0 = Decimal(0) if not h.annotation_signals else None
    for r in range(h.n_records if h.annotation_signals else 0):
        start, annotations = _record_tals(h, records, r)
        if t0 is None:
            t0 = start
        for onset, text in annotations:
            by_onset.setdefault(onset, []).append(text)
    stimuli = sorted(on for on, texts in by_onset.items() if any(is_stimulus(t) for t in texts))
    if opts["stimuli"] is not None:
        if stimuli:
            raise FormatError(
                f"{name}: the sidecar gives 'stimuli' but the file has {len(stimuli)} stimulus "
                "annotation(s) of its own; keep one source of stimulus times"
            )
        stimuli = [t0 + t for t in opts["stimuli"]]
        for on in stimuli:
            by_onset.setdefault(on, [])
    if not stimuli:
        n_ann = sum(len(v) for v in by_onset.values())
        raise FormatError(
            f"{name}: no 'Stimulus ...' annotation among its {n_ann} annotation(s); "
            "sweeps are cut around stimulus annotations"
        )
    if opts["window"] is not None:
        w0, w1 = opts["window"]
    else:
        w0, w1 = DEFAULT_WINDOW_FWAVE if code.modality == "fwave" else DEFAULT_WINDOW
    w0, w1 = Decimal(repr(w0)), Decimal(repr(w1))

    data = _mne_samples(h, volts, records)
    stims = [_stimulus_of(by_onset[on], f"{name}: stimulus at +{on} s") for on in stimuli]
    total = h.n_records

    signals, meta = (
        [],
        {k: [] for k in _PER_TRACE_KEYS},
    )
    several = len(volts) > 1
    for k, onset in enumerate(stimuli):
        rel = onset - t0
        stim = stims[k]
        for sig, _factor in volts:
            values = data[sig.label]
            if opts["flip"]:
                values = -values
            fs = Decimal(sig.samples) / h.duration
            n_total = total * sig.samples
            i0 = int(((rel + w0) * fs).to_integral_value(rounding=ROUND_CEILING))
            i1 = int(((rel + w1) * fs).to_integral_value(rounding=ROUND_CEILING))
            i0, i1 = max(i0, 0), min(i1, n_total)
            where = f"{name}: stimulus {k} at +{onset} s, signal {sig.label!r}"
            if i1 - i0 < 1:
                raise FormatError(
                    f"{where}: the sweep window {float(w0) * 1e3:g}..{float(w1) * 1e3:g} ms lies outside "
                    f"the recording (0..{float(total * h.duration):g} s)"
                )
            hp, lp = parse_prefiltering(sig.prefiltering)
            label_side, record_site = parse_label(sig.label)
            side = _resolve_side(
                {
                    "the recording field": code.side,
                    "the signal label": label_side,
                    "the stimulus annotation": stim.side,
                },
                where,
            )
            study = ""  # read() names it <side>_<nerve>_<modality> unless a sidecar says otherwise
            signals.append(values[i0:i1])
            _append_trace(
                meta,
                float(fs),
                float(Decimal(i0) / fs - rel),
                study,
                code,
                side,
                stim,
                record_site,
                hp,
                lp,
                k,
                f"/{record_site or sig.index}" if several else "",
            )
    attrs = {"source_format": h.variant, "sweep_window": f"{float(w0)!r} {float(w1)!r} s"}
    return _trace_set(
        signals,
        meta,
        age,
        name,
        attrs,
        skipped,
        f"read {name} ({h.variant} through MNE, sweeps cut around stimulus annotations)",
    )


def _mne_samples(
    h: Header, volts: list[tuple[Signal, float]], records: np.ndarray
) -> dict[str, np.ndarray]:
    """Samples in V per signal label, read by MNE one sampling rate at a time (no resampling)."""
    import mne

    volts_by_label = [(s.label, f) for s, f in volts]
    reader = mne.io.read_raw_bdf if h.family == "BDF" else mne.io.read_raw_edf
    groups: dict[int, list[Signal]] = {}
    for sig, _ in volts:
        groups.setdefault(sig.samples, []).append(sig)
    out: dict[str, np.ndarray] = {}
    for samples, sigs in groups.items():
        try:
            with open(h.path, "rb") as fh, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                raw = reader(
                    fh,
                    include=[s.label for s in sigs],
                    stim_channel=None,
                    preload=True,
                    verbose="error",
                )
                data = raw.get_data()
                names = list(raw.ch_names)
        except Exception as exc:  # MNE raises many types; the header was checked already
            raise FormatError(
                f"{h.path.name}: MNE could not read the samples: {type(exc).__name__}: {exc}"
            ) from exc
        expected = h.n_records * samples
        if data.shape != (len(sigs), expected) or names != [s.label for s in sigs]:
            raise FormatError(
                f"{h.path.name}: MNE returned {data.shape} samples for {names}, expected "
                f"{(len(sigs), expected)} for {[s.label for s in sigs]}"
            )
        for i, s in enumerate(sigs):
            factor = dict(volts_by_label)[s.label]
            values = data[i].astype(np.float64) * (factor / _mne_unit_factor(s.dimension))
            # MNE's scaling must equal the header's: check it on the first data record
            mine = s.to_physical(digital_samples(h, records[:1], s))[0] * factor
            if not np.allclose(values[:samples], mine, rtol=1e-9, atol=1e-15):
                raise FormatError(
                    f"{h.path.name}: signal {s.label!r}: MNE's samples differ from the header's "
                    "scaling (physical/digital ranges and dimension); refusing to guess which is right"
                )
            out[s.label] = values
    return out


def _mne_unit_factor(dimension: str) -> float:
    """The factor MNE (1.x) applies for a physical dimension: uV 1e-6, mV 1e-3, anything else 1."""
    if dimension in ("\u03bcV", "\u00b5V", "\x83\xcaV", "uV"):
        return 1e-6
    if dimension == "mV":
        return 1e-3
    return 1.0
