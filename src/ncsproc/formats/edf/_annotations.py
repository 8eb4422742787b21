"""The text of an EDF+ nerve-conduction file: TALs, stimulus annotations, EDF_XMLnote, labels.

Everything here follows the EDF+ specification (Kemp and Olivan 2003, sections 2.2 and 3.7)
and its co-author's worked examples (MNCV.edf, SNCV.edf), and is liberal in what it accepts:

* a TAL is ``+<onset>[\\x15<duration>]\\x14<annotation>\\x14[<annotation>\\x14...]\\x00``;
  onsets are kept as exact decimals, so times derived from them are exact;
* a stimulus annotation starts with ``Stimulus`` and is read in the specification's words,
  ``Stimulus left wrist 0.2ms x 8.2mA at 6.5cm from recording site``: side (left/right/L/R),
  a site of one or more words, a pulse duration (s, ms, us), an intensity (A, mA, uA) and the
  stimulus-to-recording distance (m, cm, mm); text after ``from recording site`` (or from a
  ``Response``/``Latency``/``Amplitude`` word on) is a measurement and ignored;
* ``<EDF_XMLnote>`` gives the same facts as ``<duration unit=..>``, ``<intensity
  mode="current" unit=..>``, ``<position>``, ``<distance mode="stimulus to recording"
  unit=..>`` and ``<temperature unit=..>``; a ``<measurements>`` block is ignored;
* the recording field's study code ``MNC_L_Median_Nerve`` / ``MNC R Median Nerve.``
  (``MNC`` motor, ``SNC`` sensory, ``FW`` F-wave series), then side and nerve;
* the signal label ``NC L_APB``, ``R APB``, ``NC Second Finger`` (recording site and side);
* ``HP:2Hz LP:10kHz`` prefiltering.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from decimal import Decimal

from ...errors import FormatError
from .._sidecar import convert, normalize, to_decimal

# --------------------------------------------------------------------------------------------
# TALs
# --------------------------------------------------------------------------------------------

_TAL_HEAD = re.compile(rb"([+-]\d+(?:\.\d*)?)(?:\x15(\d+(?:\.\d*)?))?\x14")


@dataclass(frozen=True)
class Annotation:
    onset: Decimal
    duration: Decimal | None
    text: str


@dataclass
class Tal:
    onset: Decimal
    duration: Decimal | None
    texts: list[str]
    offset: int  # byte offset in the file


def parse_tals(raw: bytes, *, where: str, base_offset: int) -> list[Tal]:
    """Split the bytes of one annotation signal in one data record into TALs.

    Parameters
    ----------
    raw : bytes
        The signal's bytes in the record.
    where : str
        ``"<file>: data record <r>"`` for messages.
    base_offset : int
        File offset of ``raw[0]``.
    """
    tals: list[Tal] = []
    pos, n = 0, len(raw)
    while pos < n:
        if raw[pos] == 0:
            pos += 1
            continue
        end = raw.find(b"\x00", pos)
        if end < 0:
            raise FormatError(
                f"{where}, byte {base_offset + pos}: TAL {_show(raw[pos : pos + 60])} is not terminated "
                "by a 0 byte before the end of the record's annotation signal"
            )
        chunk = raw[pos:end]
        m = _TAL_HEAD.match(chunk)
        if not m:
            raise FormatError(
                f"{where}, byte {base_offset + pos}: expected a TAL '+<onset>\\x14...' "
                f"(onset with a sign, then byte 20), found {_show(chunk[:60])}"
            )
        rest = chunk[m.end() :]
        if not rest.endswith(b"\x14"):
            raise FormatError(
                f"{where}, byte {base_offset + end}: TAL {_show(chunk[:60])} does not end with byte 20 "
                "before its 0 byte"
            )
        texts = [t.decode("utf-8", "replace") for t in rest.split(b"\x14")[:-1]]
        onset = Decimal(m.group(1).decode("ascii"))
        duration = Decimal(m.group(2).decode("ascii")) if m.group(2) else None
        tals.append(Tal(onset, duration, texts, base_offset + pos))
        pos = end + 1
    return tals


def _show(b: bytes) -> str:
    return repr(b.decode("latin-1"))


# --------------------------------------------------------------------------------------------
# Stimulus facts
# --------------------------------------------------------------------------------------------


@dataclass
class Stimulus:
    """What one record's annotations say about its stimulus (NaN / "" when they do not)."""

    side: str = ""
    site: str = ""
    duration: float = math.nan
    intensity: float = math.nan
    distance: float = math.nan
    temperature: float = math.nan
    sources: dict = field(default_factory=dict)  # field -> where it came from (for messages)

    def merge(self, other: Stimulus, where: str) -> None:
        """Take ``other``'s facts; a fact both give must agree (FormatError naming both)."""
        for name in ("side", "site", "duration", "intensity", "distance", "temperature"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if _missing(theirs):
                continue
            if _missing(mine):
                setattr(self, name, theirs)
                self.sources[name] = other.sources.get(name, where)
            elif not _same(mine, theirs):
                raise FormatError(
                    f"{where}: {name} is {theirs!r} in {other.sources.get(name, 'one annotation')} "
                    f"but {mine!r} in {self.sources.get(name, 'another annotation')}"
                )


def _missing(v) -> bool:
    return v == "" if isinstance(v, str) else math.isnan(v)


def _same(a, b) -> bool:
    if isinstance(a, str):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


_NUM = r"([-+]?\d+(?:[.,]\d+)?|[-+]?[.,]\d+)"
_DURATION = re.compile(_NUM + r"\s*(ms|us|\u00b5s|\u03bcs|msec|s)(?![\w/])", re.I)
_INTENSITY = re.compile(_NUM + r"\s*(mA|uA|\u00b5A|\u03bcA|A)(?![\w/])")
_DISTANCE = re.compile(r"(?:\bat\s+)?" + _NUM + r"\s*(cm|mm|m)(?![\w/])", re.I)
_PHRASE_END = re.compile(r"from\s+(?:the\s+)?recording\s+(?:site|electrode)", re.I)
_MEASUREMENT = re.compile(r"\b(?:response|latency|amplitude|velocity|cv|area|duration\s*=)\b", re.I)
_SIDE_WORD = re.compile(r"^(left|right|l|r)\b", re.I)
_STIM_WORD = re.compile(r"^\s*stimulus(?=$|[\s_:])", re.I)


def is_stimulus(text: str) -> bool:
    """An annotation naming a stimulus: it starts with the word ``Stimulus``."""
    return bool(_STIM_WORD.match(text))


def is_xmlnote(text: str) -> bool:
    return text.lstrip().startswith("<EDF_XMLnote>")


def parse_stimulus(text: str, where: str) -> Stimulus:
    """Read ``Stimulus right wrist 0.2ms x 8.2mA at 6.5cm from recording site ...``.

    Parts may be missing or in another order after the site; the side and the site come
    first. Measurement text after the phrase is ignored.
    """
    body = _STIM_WORD.sub("", text, count=1).replace("_", " ").strip(" :")
    end = _PHRASE_END.search(body)
    if end:
        body = body[: end.start()]
    else:
        meas = _MEASUREMENT.search(body)
        if meas:
            body = body[: meas.start()]
    stim = Stimulus()
    src = f"stimulus annotation {text.strip()[:80]!r}"
    # side and site: the words before the first number
    first_number = re.search(r"[-+]?\d|[-+]?[.,]\d|\bx\b|\bat\b", body)
    head = body[: first_number.start()] if first_number else body
    tail = body[len(head) :]
    head = head.strip()
    m = _SIDE_WORD.match(head)
    if m:
        stim.side = normalize("side", m.group(1))
        stim.sources["side"] = src
        head = head[m.end() :].strip()
    if head:
        stim.site = normalize("stim_site", head)
        stim.sources["site"] = src
    tail = re.sub(r"\bx\b", " ", tail)
    d = _DISTANCE.search(tail)
    if d:
        stim.distance = _quantity(d.group(1), "length", d.group(2), where)
        stim.sources["distance"] = src
        tail = tail[: d.start()] + " " + tail[d.end() :]
    m = _DURATION.search(tail)
    if m:
        stim.duration = _quantity(m.group(1), "time", m.group(2).replace("msec", "ms"), where)
        stim.sources["duration"] = src
        tail = tail[: m.start()] + " " + tail[m.end() :]
    m = _INTENSITY.search(tail)
    if m:
        stim.intensity = _quantity(m.group(1), "current", m.group(2), where)
        stim.sources["intensity"] = src
    return stim


def _quantity(number: str, kind: str, unit: str, where: str) -> float:
    try:
        value = convert(to_decimal(number), kind, unit)
    except (ValueError, KeyError):
        raise FormatError(f"{where}: cannot read {number}{unit} as a {kind}") from None
    if value < 0:
        raise FormatError(f"{where}: {number}{unit} is negative; expected a {kind} >= 0")
    return value


def parse_xmlnote(text: str, where: str) -> Stimulus:
    """Read the stimulus facts of an ``<EDF_XMLnote>`` (its ``<measurements>`` are ignored)."""
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as exc:
        raise FormatError(f"{where}: EDF_XMLnote is not well-formed XML ({exc})") from None
    stim = Stimulus()
    src = "EDF_XMLnote"

    def walk(el, in_measurements=False):
        tag = el.tag.rsplit("}", 1)[-1].lower()
        if tag == "measurements":
            in_measurements = True
        if not in_measurements:
            value = (el.text or "").strip()
            unit = el.attrib.get("unit", "")
            mode = el.attrib.get("mode", "").strip().lower()
            if tag in ("duration", "intensity", "distance", "temperature") and value:
                if tag != "temperature" and not unit:
                    raise FormatError(
                        f"{where}: EDF_XMLnote <{el.tag}> {value!r} has no unit attribute"
                    )
                try:
                    number = to_decimal(value)
                except ValueError:
                    raise FormatError(
                        f"{where}: EDF_XMLnote <{el.tag}> is {value!r}, expected a number"
                    ) from None
                if tag == "duration":
                    stim.duration = _xml_quantity(number, "time", unit, el, where)
                    stim.sources["duration"] = src
                elif tag == "intensity" and mode in ("", "current"):
                    stim.intensity = _xml_quantity(number, "current", unit, el, where)
                    stim.sources["intensity"] = src
                elif tag == "distance" and mode in (
                    "",
                    "stimulus to recording",
                    "stimulus-recording",
                ):
                    stim.distance = _xml_quantity(number, "length", unit, el, where)
                    stim.sources["distance"] = src
                elif tag == "temperature":
                    stim.temperature = _xml_quantity(number, "temperature", unit, el, where)
                    stim.sources["temperature"] = src
            elif tag == "position" and value:
                words = value.replace("_", " ").strip()
                m = _SIDE_WORD.match(words)
                if m:
                    stim.side = normalize("side", m.group(1))
                    stim.sources["side"] = src
                    words = words[m.end() :].strip()
                if words:
                    stim.site = normalize("stim_site", words)
                    stim.sources["site"] = src
        for child in el:
            walk(child, in_measurements)

    walk(root)
    return stim


def _xml_quantity(number: Decimal, kind: str, unit: str, el, where: str) -> float:
    try:
        value = convert(number, kind, unit)
    except KeyError:
        raise FormatError(f"{where}: EDF_XMLnote <{el.tag}> has unknown unit {unit!r}") from None
    if kind != "temperature" and value < 0:
        raise FormatError(f"{where}: EDF_XMLnote <{el.tag}> is negative ({number} {unit})")
    return value


# --------------------------------------------------------------------------------------------
# Header text: study code, label, prefiltering, dates
# --------------------------------------------------------------------------------------------

STUDY_CODES = {
    "MNC": "motor",
    "MNCV": "motor",
    "SNC": "sensory",
    "SNCV": "sensory",
    "FW": "fwave",
    "FWAVE": "fwave",
}
_MONTHS = {
    m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())
}


@dataclass(frozen=True)
class StudyCode:
    modality: str = ""
    side: str = ""
    nerve: str = ""
    text: str = ""


def parse_study_code(recording: str) -> StudyCode:
    """Find ``MNC_L_Median_Nerve`` (or ``MNC R Median Nerve.``) in the recording field.

    In an EDF+ recording field (``Startdate <date> <admin code> <technician> <equipment>
    [additional subfields]``) the code is looked for in the additional subfields, else in the
    last word; in a plain EDF field, in every word. Nothing is kept of the other subfields.
    """
    tokens = recording.split()
    if tokens[:1] == ["Startdate"]:
        candidates = [" ".join(tokens[5:])] if len(tokens) > 5 else []
        candidates.append(tokens[-1] if tokens else "")
    else:
        candidates = [recording]
    for text in candidates:
        words = [w.strip(".,;") for w in re.split(r"[\s_]+", text) if w.strip(".,;")]
        for i, w in enumerate(words):
            if w.upper() in STUDY_CODES:
                modality = STUDY_CODES[w.upper()]
                rest = words[i + 1 :]
                side = ""
                if rest and rest[0].lower() in ("l", "r", "left", "right"):
                    side = normalize("side", rest[0])
                    rest = rest[1:]
                nerve_words = []
                for r in rest:
                    if r.lower() == "nerve":
                        break
                    nerve_words.append(r)
                nerve = normalize("nerve", "_".join(nerve_words)) if nerve_words else ""
                return StudyCode(modality, side, nerve, " ".join(words[i:]))
    return StudyCode()


_LABEL_TYPES = {"NC", "EMG", "EP", "MNC", "SNC", "FW"}


def parse_label(label: str) -> tuple[str, str]:
    """``NC L_APB`` -> ("L", "APB"); ``R APB`` -> ("R", "APB"); ``NC Second Finger`` -> ("", "digit II")."""
    words = label.split()
    if len(words) > 1 and words[0].upper() in _LABEL_TYPES:
        words = words[1:]
    rest = " ".join(words)
    m = re.match(r"^(L|R|Left|Right)[\s_]+(.+)$", rest, re.I)
    if m:
        return normalize("side", m.group(1)), normalize("record_site", m.group(2))
    return "", normalize("record_site", rest) if rest else ""


_FILTER = re.compile(r"\b(HP|LP)\s*:?\s*(DC|[-+]?\d+(?:[.,]\d+)?)\s*(khz|hz)?", re.I)


def parse_prefiltering(text: str) -> tuple[float, float]:
    """``HP:2Hz LP:10kHz`` -> (2.0, 10000.0); missing corners are NaN; a bare number is Hz."""
    hp = lp = math.nan
    for kind, value, unit in _FILTER.findall(text):
        if value.upper() == "DC":
            number = 0.0
        else:
            number = convert(to_decimal(value), "frequency", unit or "Hz")
        if kind.upper() == "HP" and math.isnan(hp):
            hp = number
        elif kind.upper() == "LP" and math.isnan(lp):
            lp = number
    return hp, lp


def parse_edfplus_date(text: str) -> _dt.date | None:
    """``02-MAY-1951`` -> date; ``X`` or anything else -> None."""
    m = re.fullmatch(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})", text.strip())
    if not m or m.group(2).upper() not in _MONTHS:
        return None
    try:
        return _dt.date(int(m.group(3)), _MONTHS[m.group(2).upper()], int(m.group(1)))
    except ValueError:
        return None


def age_at_exam(patient: str, recording: str, plus: bool) -> float:
    """Age in years (days / 365.25) from the EDF+ birthdate and the recording's Startdate.

    Only the age is returned; the patient field itself (code, sex, birthdate, name) is never
    kept. NaN unless both dates are known (EDF+ only: a plain EDF patient field is free text).
    """
    if not plus:
        return math.nan
    ptoks, rtoks = patient.split(), recording.split()
    if len(ptoks) < 3 or len(rtoks) < 2 or rtoks[0] != "Startdate":
        return math.nan
    birth, start = parse_edfplus_date(ptoks[2]), parse_edfplus_date(rtoks[1])
    if birth is None or start is None or start < birth:
        return math.nan
    return (start - birth).days / 365.25


def parse_edf_startdate(text: str) -> _dt.date | None:
    """The 8-byte header start date ``dd.mm.yy`` -> date (EDF: yy 85-99 is 19yy, 00-84 is 20yy)."""
    m = re.fullmatch(r"(\d{2})\.(\d{2})\.(\d{2})", text.strip())
    if not m:
        return None
    day, month, yy = (int(g) for g in m.groups())
    try:
        return _dt.date(1900 + yy if yy >= 85 else 2000 + yy, month, day)
    except ValueError:
        return None


def header_identity(header) -> dict:
    """``{"patient_id", "exam_date"}`` of an EDF/EDF+ header, for ``ncsproc.read`` only.

    EDF+: the patient code (first subfield of the patient field; ``X`` is unknown) and the
    recording field's ``Startdate dd-MMM-yyyy`` (``X`` is unknown: the header's start date is
    then the EDF+ anonymisation placeholder, not used). Plain EDF: the whole patient field (the
    EDF "local patient identification") and the header's ``dd.mm.yy`` start date. The caller
    (``ncsproc.read``) pseudonymises the identifier or drops it; it is never stored.
    """
    if header.plus:
        ptoks = header.patient.split()
        patient = ptoks[0] if ptoks and ptoks[0] != "X" else None
        rtoks = header.recording.split()
        date = parse_edfplus_date(rtoks[1]) if len(rtoks) > 1 and rtoks[0] == "Startdate" else None
    else:
        patient = header.patient.strip() or None
        date = parse_edf_startdate(header.startdate)
    return {"patient_id": patient, "exam_date": date}
