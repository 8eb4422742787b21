"""Units: SI inside, clinical units at the edges, one table and one quantity parser.

Everything ncsproc computes is in SI units (V, s, m, Hz, A). Values become clinical units
(ms, mV, uV, mm, m/s) only where they leave the program, in table columns whose name ends with
the unit (``onset_ms``, ``distal_amp_mv``); :data:`COLUMN_UNITS` maps those suffixes to the
unit, :data:`CLINICAL` maps a clinical unit to its factor from SI, and :func:`parse_quantity`
reads ``"<number> <unit>"`` strings (settings files, sidecars, limit files) into SI.

Amplitudes: motor responses (CMAP, F-wave series, MEP) are in mV and sensory ones (SNAP) in uV,
as clinicians read them (:data:`MOTOR_AMPLITUDE_MODALITIES`); the tables layout versions of
:mod:`ncsproc.tables` decide which columns carry which (``formats/tables.md``).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

__all__ = [
    "CLINICAL",
    "COLUMN_UNITS",
    "MOTOR_AMPLITUDE_MODALITIES",
    "QUANTITIES",
    "UnitError",
    "column_unit",
    "convert",
    "parse_quantity",
    "to_clinical",
    "to_decimal",
    "unit_factor",
]


class UnitError(ValueError):
    """A quantity or unit could not be read; the message says what was expected."""


MOTOR_AMPLITUDE_MODALITIES = ("motor", "fwave", "mep")
"""Modalities whose amplitudes are reported in mV (the others, ``sensory``, in uV)."""

DAYS_PER_YEAR = 365.25
"""Days of a (Julian) year: follow-up intervals in days -> years (slopes per year, plots)."""

# --------------------------------------------------------------------------------------------
# Clinical units of the tables: unit -> (factor from SI, decimals written)
# --------------------------------------------------------------------------------------------

CLINICAL: dict[str, tuple[float, int]] = {
    "ms": (1e3, 3),
    "mV": (1e3, 3),
    "uV": (1e6, 2),
    "mV ms": (1e6, 3),
    "uV ms": (1e9, 2),
    "mm": (1e3, 1),
    "m/s": (1.0, 2),
    "dB": (1.0, 1),
}
"""Clinical unit -> (factor that turns the SI value into it, decimals written in the tables)."""

COLUMN_UNITS: tuple[tuple[str, str], ...] = (
    ("_mvms", "mV ms"),
    ("_uvms", "uV ms"),
    ("_mv", "mV"),
    ("_uv", "uV"),
    ("_ms", "ms"),
    ("_mm", "mm"),
    ("_m_s", "m/s"),
    ("_pct_uln", "%"),
    ("_pct_lln", "%"),
    ("_pct", "%"),
    ("_db", "dB"),
    ("_hz", "Hz"),
    ("_years", "years"),
    ("_cm", "cm"),
    ("_c", "degC"),
)
"""Column-name suffix -> unit of the column (the first suffix that matches wins)."""


def column_unit(name: str) -> str | None:
    """Unit of a table column from its suffix (``onset_ms`` -> ``ms``), None when unitless."""
    for suffix, unit in COLUMN_UNITS:
        if name.endswith(suffix):
            return unit
    return None


def to_clinical(value, unit: str):
    """An SI value (float or array) in the clinical ``unit`` of :data:`CLINICAL`, unrounded."""
    return value * CLINICAL[unit][0]


# --------------------------------------------------------------------------------------------
# The quantity parser: "<number> <unit>" -> SI (or the contract unit of the quantity)
# --------------------------------------------------------------------------------------------

_MICRO = ("u", "\u00b5", "\u03bc")  # u, micro sign, greek mu


def _table(**factors: str) -> dict[str, Decimal]:
    """Unit table keyed by lower-case unit; ``u`` also stands for the micro sign and greek mu."""
    out = {}
    for unit, factor in factors.items():
        if unit.startswith("u"):
            for m in _MICRO:
                out[m + unit[1:]] = Decimal(factor)
        else:
            out[unit] = Decimal(factor)
    return out


# Lower-case unit -> factor to the contract unit (so "mA" and "ma" are one unit; no quantity
# here has a mega- prefix that lower-casing could confuse with milli-).
QUANTITIES: dict[str, dict[str, Decimal]] = {
    "time": _table(s="1", sec="1", ms="0.001", us="0.000001"),
    "current": _table(a="1", ma="0.001", ua="0.000001"),
    "length": _table(m="1", cm="0.01", mm="0.001"),
    "frequency": _table(hz="1", khz="1000"),
    "voltage": _table(v="1", mv="0.001", uv="0.000001", nv="0.000000001"),
    "years": _table(y="1", yr="1", yrs="1", year="1", years="1"),
    "height": _table(cm="1", m="100", mm="0.1"),
}
"""Quantity kind -> {lower-case unit: exact factor to the kind's contract unit} (SI, except
``height``: cm, and ``years``)."""

_TEMPERATURE_UNITS = {"c", "degc", "\u00b0c", "celsius", "deg c", "\u00bac"}
_FAHRENHEIT_UNITS = {"f", "degf", "\u00b0f", "fahrenheit"}

_QUANTITY_RE = re.compile(r"^\s*([-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


def to_decimal(text: str) -> Decimal:
    """Parse a decimal number (``.`` or ``,`` as decimal mark); ValueError if it is not one."""
    try:
        value = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    return value


def unit_factor(kind: str, unit: str) -> Decimal:
    """Factor that turns ``unit`` into the contract unit of ``kind``; KeyError if unknown."""
    table = QUANTITIES[kind]
    key = unit.strip().lower()
    if key in table:
        return table[key]
    raise KeyError(unit)


def convert(value: Decimal, kind: str, unit: str) -> float:
    """A decimal value in ``unit``, in the contract unit of ``kind`` (exactly, then a float)."""
    if kind == "temperature":
        key = unit.strip().lower()
        if key in _TEMPERATURE_UNITS or key == "":
            return float(value)
        if key in _FAHRENHEIT_UNITS:
            return float((value - 32) * 5 / 9)
        raise KeyError(unit)
    if unit.strip() == "":
        return float(value)
    return float(value * unit_factor(kind, unit))


def accepted_units(kinds: tuple[str, ...]) -> list[str]:
    """The units :func:`parse_quantity` accepts for ``kinds`` (for error messages)."""
    out: set[str] = set()
    for kind in kinds:
        out |= {"C", "degC", "F"} if kind == "temperature" else set(QUANTITIES.get(kind, {}))
    return sorted(out)


def parse_quantity(value, kind: str | tuple[str, ...], *, unitless: bool = True) -> float:
    """A number (already in the contract unit) or a ``"<number> <unit>"`` string, to a float.

    Parameters
    ----------
    value : int, float, str or None
        ``0.0002``, ``"0.2 ms"``, ``"6,5 cm"``, ``"inf"``; None is NaN.
    kind : str or tuple of str
        The quantity kind(s) of :data:`QUANTITIES` (or ``temperature``) the unit may belong
        to: ``("time", "voltage")`` accepts ``"0.2 ms"`` and ``"20 uV"`` alike.
    unitless : bool
        Accept a string without a unit (the number is then in the contract unit).

    Returns
    -------
    float
        In the contract unit of the kind (SI for time, voltage, length, current, frequency).

    Raises
    ------
    UnitError
        Saying what was found and the units accepted; the caller adds where.
    """
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    if isinstance(value, bool) or not isinstance(value, (int, float, str, type(None))):
        raise UnitError(f"expected a number or a '<number> <unit>' string, found {value!r}")
    if value is None:
        return math.nan
    if isinstance(value, (int, float)):
        return float(value)
    if value.strip().lower() in ("inf", "infinity"):
        return math.inf
    m = _QUANTITY_RE.match(value)
    if not m or (not unitless and not m.group(2)):
        raise UnitError(
            f"expected '<number> <unit>' with a unit of {accepted_units(kinds)}, found {value!r}"
        )
    number, unit = m.groups()
    for k in kinds:
        try:
            return convert(to_decimal(number), k, unit)
        except KeyError:
            continue
    raise UnitError(f"unknown unit {unit!r} in {value!r}; expected one of {accepted_units(kinds)}")
