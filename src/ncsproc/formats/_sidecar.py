"""Metadata from a JSON sidecar, and the vocabulary every reader normalises to.

A file often lacks facts a trace set needs (the exam id, a pseudonymous subject id, the age,
a distance the machine never exported). They can come from a *sidecar*: a JSON object in
``<file name>.json`` next to the file (``median.edf.json``), or, BIDS style, ``<stem>.json``
(``median.json``). :func:`ncsproc.read` applies it to the output of every reader, once:

* a top-level key named like a trace-set coordinate (``exam_id``, ``subject_id``, ``nerve``,
  ``distance``, ``age``, ...) applies to every trace of the file;
* ``"records": [{"record": 0, "stim_site": "wrist", "distance": "6.5 cm"}, ...]`` applies to
  the traces of one record (sweep) of the file;
* a value the file does not give (NaN or empty) is filled in; a value equal to the file's is
  accepted; a value that contradicts the file raises a :class:`~ncsproc.errors.FormatError`
  naming both; nothing is invented;
* numbers are in the coordinate's contract unit (m, A, s, Hz, degC, years, cm), or a string
  with a unit (``"6.5 cm"``, ``"0.2 ms"``, ``"8.2 mA"``, ``"10 kHz"``);
* identifying keys (:data:`ncsproc.schema.PRIVACY_BLOCKLIST`) are refused;
* reader-specific keys (a text file's layout, an EDF file's sweep window) are accepted only
  by the reader that declares them (``Reader.sidecar_keys``); any other key is an error, so a
  misspelt key never goes unnoticed. ``comment``, ``description`` and keys starting with ``_``
  are free notes.

The normalisers (:func:`normalize`) turn the many spellings found in files into the
contract's vocabulary (``left`` -> ``L``, ``Median`` -> ``median``, ``Second Finger`` ->
``digit II``); readers use them too, so the sidecar and the file are compared like for like.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..schema import COORDS_BY_NAME, LABEL_COORDS, PRIVACY_BLOCKLIST
from ..units import (  # noqa: F401  (convert, to_decimal, unit_factor: used by the readers)
    QUANTITIES,
    UnitError,
    convert,
    to_decimal,
    unit_factor,
)
from ..units import parse_quantity as _parse_quantity

# --------------------------------------------------------------------------------------------
# Units: the one table and parser of :mod:`ncsproc.units` (re-exported for the readers)
# --------------------------------------------------------------------------------------------

UNITS = QUANTITIES  # kind -> {lower-case unit: factor to the contract unit}

# Coordinate -> quantity kind (the contract unit is the kind's factor-1 unit, except height: cm).
QUANTITY_KIND = {
    "distance": "length",
    "stim_intensity": "current",
    "stim_duration": "time",
    "highpass": "frequency",
    "lowpass": "frequency",
    "temperature": "temperature",
    "age": "years",
    "height": "height",
    "sampling_rate": "frequency",
    "t_start": "time",
}


def parse_quantity(value, kind: str, where: str) -> float:
    """A number (already in the contract unit) or a string ``"<number> <unit>"``, to a float.

    Raises
    ------
    FormatError
        Naming ``where`` and the units accepted for ``kind``.
    """
    try:
        return _parse_quantity(value, kind)
    except UnitError as exc:
        raise FormatError(f"{where}: {exc}") from None


def decimal_text(value: float, factor: Decimal = Decimal(1)) -> str:
    """Write ``value / factor`` as the shortest exact decimal text (no exponent).

    ``float(to_decimal(decimal_text(x, f)) * f) == x`` for every finite float ``x`` and
    power-of-ten ``f``, so numbers written this way read back identical.
    """
    d = Decimal(repr(float(value))) / factor
    d = d.normalize()
    text = format(d, "f")
    return "0" if text in ("-0", "0") else text


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

_SIDES = {"l": "L", "left": "L", "r": "R", "right": "R", "lt": "L", "rt": "R"}
_MODALITIES = {
    "motor": "motor",
    "mnc": "motor",
    "mncv": "motor",
    "motor nerve conduction": "motor",
    "cmap": "motor",
    "sensory": "sensory",
    "snc": "sensory",
    "sncv": "sensory",
    "sensory nerve conduction": "sensory",
    "snap": "sensory",
    "fwave": "fwave",
    "f wave": "fwave",
    "f-wave": "fwave",
    "f_wave": "fwave",
    "fw": "fwave",
    "f response": "fwave",
    "f-response": "fwave",
    "mep": "mep",
    "motor evoked potential": "mep",
}
_NERVE_SYNONYMS = {
    "common_peroneal": "peroneal",
    "deep_peroneal": "peroneal",
    "fibular": "peroneal",
    "common_fibular": "peroneal",
    "deep_fibular": "peroneal",
    "superficial_fibular": "superficial_peroneal",
    "posterior_tibial": "tibial",
}
_DIGITS = {
    "1": "I",
    "i": "I",
    "first": "I",
    "thumb": "I",
    "2": "II",
    "ii": "II",
    "second": "II",
    "index": "II",
    "3": "III",
    "iii": "III",
    "third": "III",
    "middle": "III",
    "4": "IV",
    "iv": "IV",
    "fourth": "IV",
    "ring": "IV",
    "5": "V",
    "v": "V",
    "fifth": "V",
    "little": "V",
}
_DIGIT_RE = re.compile(
    r"^(?:(?:digit|dig|d|finger|toe)\s*(?P<a>[1-5]|i{1,3}|iv|v)|(?P<b>first|second|third|fourth|fifth|"
    r"index|middle|ring|little|thumb)(?:\s+(?:finger|digit))?)$"
)
_MUSCLES = {
    "abductor pollicis brevis": "APB",
    "abductor digiti minimi": "ADM",
    "abductor digiti quinti": "ADM",
    "extensor digitorum brevis": "EDB",
    "abductor hallucis": "AH",
    "first dorsal interosseous": "FDI",
    "tibialis anterior": "TA",
    "flexor carpi ulnaris": "FCU",
    "extensor indicis proprius": "EIP",
    "extensor indicis": "EI",
}


def _words(text: str) -> str:
    return " ".join(str(text).replace("_", " ").split())


def normalize(name: str, value):
    """Return ``value`` of coordinate ``name`` in the contract's vocabulary.

    Raises ValueError when a side or modality is not recognised (other names are free text,
    only their spelling is normalised). Empty strings stay empty (unknown).
    """
    if name in LABEL_COORDS:
        text = "" if value is None else str(value).strip()
        if text == "":
            return ""
        if name == "side":
            key = text.lower()
            if key not in _SIDES:
                raise ValueError(f"side {text!r} is not one of L, R, left, right")
            return _SIDES[key]
        if name == "modality":
            key = _words(text).lower()
            if key not in _MODALITIES:
                raise ValueError(
                    f"modality {text!r} is not one of motor, sensory, fwave, mep (or MNC, SNC, FW)"
                )
            return _MODALITIES[key]
        if name == "nerve":
            key = "_".join(_words(text).lower().replace("-", " ").split())
            if key.endswith("_nerve"):
                key = key[: -len("_nerve")]
            return _NERVE_SYNONYMS.get(key, key)
        if name == "stim_site":
            return _words(text).lower()
        if name == "record_site":
            return normalize_record_site(text)
        return text
    return value


def normalize_record_site(text: str) -> str:
    """``Second Finger`` -> ``digit II``, ``abductor pollicis brevis`` / ``apb`` -> ``APB``."""
    words = _words(text)
    key = words.lower()
    m = _DIGIT_RE.match(key)
    if m:
        return "digit " + _DIGITS[m.group("a") or m.group("b")]
    if key in _MUSCLES:
        return _MUSCLES[key]
    if re.fullmatch(r"[a-z]{2,4}", key) and key.upper() in set(_MUSCLES.values()) | {"ADQ"}:
        return key.upper()
    return words


# --------------------------------------------------------------------------------------------
# The sidecar file
# --------------------------------------------------------------------------------------------

FREE_KEYS = ("comment", "description")
# File-level facts that are not trace-set coordinates; ncsproc.read applies them itself
# (``exam_date``: partial ISO date, reduced to read's date_precision; the file's date wins).
IDENTITY_KEYS = ("exam_date",)
# Coordinates a sidecar may give. `trace`, `n_samples`, `record` and `source_file` describe
# the file's own structure and are never taken from a sidecar.
SIDECAR_COORDS = tuple(
    name for name in COORDS_BY_NAME if name not in ("trace", "n_samples", "record", "source_file")
)
_TOLERANCE = {"age": 1.0, "height": 0.5, "temperature": 0.05}  # absolute, in contract units
_REL_TOL = 1e-6


def sidecar_candidates(path: Path) -> list[Path]:
    """The two places a sidecar of ``path`` may be: ``<name>.json`` then ``<stem>.json``."""
    path = Path(path)
    first = path.with_name(path.name + ".json")
    second = path.with_name(path.stem + ".json")
    return [first] if second == first or path.suffix == "" else [first, second]


def find_sidecar(path: Path) -> Path | None:
    """Return the sidecar of ``path`` or None; both spellings present is an error."""
    found = [p for p in sidecar_candidates(path) if p.is_file() and p != Path(path)]
    if len(found) > 1:
        raise FormatError(
            f"{Path(path).name}: two sidecars found ({found[0].name} and {found[1].name}); "
            "keep one so that it is clear which applies"
        )
    return found[0] if found else None


def load_sidecar(path: Path) -> tuple[dict, Path] | tuple[None, None]:
    """Read the sidecar of ``path``: ``(mapping, sidecar_path)`` or ``(None, None)``.

    Raises
    ------
    FormatError
        The sidecar is not a JSON object (the message gives the line and column), or it holds
        an identifying key.
    """
    side = find_sidecar(path)
    if side is None:
        return None, None
    try:
        raw = side.read_bytes()
        if len(raw) > 16 * 1024 * 1024:
            raise FormatError(
                f"{side.name}: {len(raw)} bytes; a sidecar is expected to be small (< 16 MB)"
            )
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FormatError(f"{side.name}: byte {exc.start}: expected UTF-8 text (JSON)") from None
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"{side.name}: line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg})"
        ) from None
    if not isinstance(data, dict):
        raise FormatError(
            f"{side.name}: expected a JSON object {{...}} at the top level, found {type(data).__name__}"
        )
    blocked = sorted(k for k in _all_keys(data) if k.lower() in PRIVACY_BLOCKLIST)
    if blocked:
        raise FormatError(
            f"{side.name}: identifying keys are not accepted in a sidecar: {blocked}; "
            "give a pseudonymous subject_id instead"
        )
    return data, side


def _all_keys(data) -> Iterable[str]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield str(k)
            yield from _all_keys(v)
    elif isinstance(data, list):
        for v in data:
            yield from _all_keys(v)


def check_keys(data: Mapping, side: Path, allowed: Iterable[str]) -> None:
    """Refuse keys that no one reads (typos), naming the accepted ones."""
    allowed = set(SIDECAR_COORDS) | set(FREE_KEYS) | set(IDENTITY_KEYS) | set(allowed) | {"records"}
    unknown = sorted(k for k in data if k not in allowed and not str(k).startswith("_"))
    if unknown:
        own = set(allowed) - set(SIDECAR_COORDS) - set(FREE_KEYS) - set(IDENTITY_KEYS) - {"records"}
        raise FormatError(
            f"{side.name}: unknown key(s) {unknown}; a sidecar accepts trace-set coordinates "
            f"{sorted(SIDECAR_COORDS)}, 'records', 'exam_date', free notes ('comment', '_...') and "
            f"this reader's keys {sorted(own)}"
        )


def coord_value(name: str, value, where: str):
    """Parse and normalise one sidecar value of coordinate ``name``."""
    spec = COORDS_BY_NAME[name]
    if spec.kind == "float":
        return (
            parse_quantity(value, QUANTITY_KIND.get(name, ""), where)
            if name in QUANTITY_KIND
            else _plain_float(value, where)
        )
    if spec.kind == "str":
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise FormatError(f"{where}: expected a string, found {value!r}")
        try:
            return normalize(name, str(value))
        except ValueError as exc:
            raise FormatError(f"{where}: {exc}") from None
    raise FormatError(f"{where}: '{name}' cannot be given in a sidecar")


def _plain_float(value, where):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise FormatError(f"{where}: expected a number, found {value!r}")


def _agree(name: str, file_value, side_value) -> bool:
    if COORDS_BY_NAME[name].kind == "float":
        if math.isnan(side_value):
            return True
        tol = _TOLERANCE.get(name)
        if tol is not None:
            return abs(file_value - side_value) <= tol
        return math.isclose(file_value, side_value, rel_tol=_REL_TOL, abs_tol=1e-12)
    return normalize(name, file_value) == side_value


def _show(value) -> str:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return repr(str(value))


def _unknown(kind: str, value) -> bool:
    if kind == "float":
        return bool(np.isnan(value))
    return str(value) == ""


def apply_sidecar(ds, data: Mapping, side: Path, source: str, allowed: Iterable[str] = ()):
    """Return ``ds`` completed from the sidecar ``data``; contradictions raise FormatError.

    Parameters
    ----------
    ds : xarray.Dataset
        A trace set as a reader made it (unknown values NaN or "").
    data : mapping
        The sidecar's content.
    side : Path
        The sidecar file (for messages).
    source : str
        The data file's name (for messages).
    allowed : iterable of str
        The reader's own sidecar keys (not applied here, only accepted).
    """
    updates = sidecar_updates(ds, data, side, source, allowed)
    if not updates:
        return ds.copy()
    return ds.assign_coords(
        {
            name: ("trace", values, dict(ds.variables[name].attrs))
            for name, values in updates.items()
        }
    )


def sidecar_updates(
    ds, data: Mapping, side: Path, source: str, allowed: Iterable[str] = ()
) -> dict[str, np.ndarray]:
    """The per-trace coordinate values the sidecar ``data`` changes, without touching ``ds``.

    Same checks as :func:`apply_sidecar` (which applies them): returns ``{name: values}`` for
    every coordinate the sidecar names (float64, or an object array of str), in the order the
    sidecar first names them.
    """
    check_keys(data, side, allowed)
    n = ds.sizes["trace"]
    records = np.asarray(_values(ds, "record"))
    updates: dict[str, np.ndarray] = {}

    def column(name):
        if name not in updates:
            kind = COORDS_BY_NAME[name].kind
            updates[name] = np.array(
                _values(ds, name), dtype=object if kind == "str" else np.float64
            )
        return updates[name]

    def put(name, value, mask, where):
        col = column(name)
        kind = COORDS_BY_NAME[name].kind
        for i in np.flatnonzero(mask):
            current = col[i]
            if _unknown(kind, current):
                col[i] = value
            elif not _agree(name, current, value):
                unit = COORDS_BY_NAME[name].units or ""
                raise FormatError(
                    f"{source}: {side.name} ({where}) says {name} = {_show(value)}{(' ' + unit) if unit else ''}, "
                    f"but the file says {_show(current)} for record {int(records[i])}; "
                    "a sidecar may only add what the file does not give"
                )

    everything = np.ones(n, dtype=bool)
    for name, value in data.items():
        if name in SIDECAR_COORDS:
            put(
                name,
                coord_value(name, value, f"{side.name}: key '{name}'"),
                everything,
                f"key '{name}'",
            )
    entries = data.get("records", [])
    if not isinstance(entries, list):
        raise FormatError(
            f"{side.name}: 'records' must be a list of objects with a 'record' number"
        )
    for k, entry in enumerate(entries):
        where = f"records[{k}]"
        if not isinstance(entry, dict) or "record" not in entry:
            raise FormatError(
                f"{side.name}: {where}: expected an object with a 'record' number, found {entry!r}"
            )
        rec = entry["record"]
        if not isinstance(rec, int) or isinstance(rec, bool):
            raise FormatError(f"{side.name}: {where}: 'record' must be an integer, found {rec!r}")
        mask = records == rec
        if not mask.any():
            raise FormatError(
                f"{source}: {side.name} {where} refers to record {rec}, but the file has records "
                f"{sorted(set(int(r) for r in records))}"
            )
        for name, value in entry.items():
            if name == "record" or name in FREE_KEYS or str(name).startswith("_"):
                continue
            if name not in SIDECAR_COORDS:
                raise FormatError(
                    f"{side.name}: {where}: unknown key {name!r}; expected trace-set coordinates"
                )
            put(name, coord_value(name, value, f"{side.name}: {where}.{name}"), mask, where)
    return {
        name: (
            values.astype(np.float64)
            if COORDS_BY_NAME[name].kind == "float"
            else np.array([str(v) for v in values], dtype=object)
        )
        for name, values in updates.items()
    }


def _values(ds, name: str):
    """The values of variable ``name`` of ``ds`` (no DataArray built; KeyError as ``ds[name]``)."""
    return ds.variables[name].values if name in ds.variables else ds[name].values
