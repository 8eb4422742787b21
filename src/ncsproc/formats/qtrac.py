"""QTRAC (QtracP) result files: ``.MEM`` (one recording) and ``.MEF`` (a list of MEM files).

A MEM file is text (Windows line ends, Latin-1) written by QtracP: a header of ``Key:  value``
lines, then sections titled in capitals, each a table of labelled rows (``SR.2``, ``TE1.3``,
``MS.17``, ...), then the derived excitability variables (``n.  value  description``), the
``EXTRA VARIABLES`` (``key = value``) and ``EXTRA WAVEFORMS`` (e.g. the MScanFit model). It holds
results, not sweeps, so it does not become a trace set: :func:`read_qtrac` returns an
:class:`xarray.Dataset` of results (layout in ``formats/qtrac.md``); the CMAP scan summary
(maximum CMAP and D50) is analysis, not reading: :func:`ncsproc.features.excitability.cmap_scan`.

Privacy: the header's ``Name:``, ``Operator:`` and ``Comments:`` lines and the folders of the
original ``File:`` path are dropped; only the QZD file name (a date-based code) is kept.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import FormatError, QCWarning
from . import Reader

# Section titles -> table prefix (variables are named <prefix>_<column>).
SECTIONS = {
    "STIMULUS-RESPONSE DATA": "sr",
    "CHARGE DURATION DATA": "qt",
    "STRENGTH-DURATION DATA": "sd",
    "THRESHOLD ELECTROTONUS DATA": "te",
    "RECOVERY CYCLE DATA": "rc",
    "THRESHOLD I/V DATA": "iv",
    "M-SCAN DATA": "mscan",
    "DERIVED EXCITABILITY VARIABLES": "derived",
    "EXTRA VARIABLES": "extra",
    "EXTRA WAVEFORMS": "waveforms",
}
# Row label prefix in the file -> table prefix
_ROW_PREFIX = {
    "SR": "sr",
    "QT": "qt",
    "SD": "sd",
    "TE": "te",
    "RC": "rc",
    "IV": "iv",
    "MS": "mscan",
}
_SET_TABLES = {"te", "rc", "iv"}  # row labels carry a set number: TE1.3
_TABLE_NAMES = {
    "sr": "stimulus-response",
    "qt": "charge-duration",
    "sd": "strength-duration",
    "te": "threshold electrotonus",
    "rc": "recovery cycle",
    "iv": "threshold I/V",
    "mscan": "M-scan",
}

# Column titles (regex on the title) -> (variable suffix, factor to SI, SI units). Units the
# file does not print are QTRAC's: stimulus and threshold currents in mA, Tsd in ms.
_COLUMNS = [
    (r"^% ?max$", "percent_max", 1.0, "%"),
    (r"^stimulus ?\((\d+)\)$", "stimulus_{0}", 1e-3, "A"),
    (r"^duration \(ms\)$", "duration", 1e-3, "s"),
    (r"^threshold \(ma\)$", "threshold", 1e-3, "A"),
    (r"^threshold charge \(ma\.ms\)$", "charge", 1e-6, "C"),
    (r"^%cmap$", "percent_cmap", 1.0, "%"),
    (r"^threshold ?\((\d+)\)$", "threshold_{0}", 1e-3, "A"),
    (r"^tsd$", "tsd", 1e-3, "s"),
    (r"^rheobase$", "rheobase", 1e-3, "A"),
    (r"^delay \(ms\)$", "delay", 1e-3, "s"),
    (r"^current \(%\)$", "current", 1.0, "%"),
    (r"^thresh(old)? redn\. \(%\)$", "threshold_reduction", 1.0, "%"),
    (r"^interval \(ms\)$", "interval", 1e-3, "s"),
    (r"^threshold change \(%\)$", "threshold_change", 1.0, "%"),
    (r"^stim\. \(ma\)$", "stimulus", 1e-3, "A"),
    (r"^amp\. \(mv\)$", "amplitude", 1e-3, "V"),
]

# Units written in parentheses in derived/extra variable names -> (factor to SI, SI units)
_UNITS = {
    "ms": (1e-3, "s"),
    "s": (1.0, "s"),
    "mv": (1e-3, "V"),
    "uv": (1e-6, "V"),
    "µv": (1e-6, "V"),
    "v": (1.0, "V"),
    "ma": (1e-3, "A"),
    "ua": (1e-6, "A"),
    "%": (1.0, "%"),
    "c": (1.0, "degC"),
    "years": (1.0, "years"),
    "min": (60.0, "s"),
    "m": (60.0, "s"),  # minutes, as in QTRAC's section titles "(2.4-1.9m)"
    "ma.ms": (1e-6, "C"),
}

_HEADER_KEEP = {
    "protocol": "protocol",
    "date": "date",
    "start time": "start_time",
    "age": "age",
    "sex": "sex",
    "temperature": "temperature",
    "s/r sites": "sites",
    "nc/disease": "nc_disease",
    "file": "qzd_file",
}
_HEADER_DROP = {"name", "operator", "comments"}  # identifying or free text: never kept

_NERVES = {
    "median": "median",
    "ulnar": "ulnar",
    "cp": "peroneal",
    "peroneal": "peroneal",
    "fibular": "peroneal",
    "tibial": "tibial",
    "pt": "tibial",
    "sural": "sural",
    "radial": "radial",
    "sciatic": "sciatic",
}
_SITES = {
    "wr": "wrist",
    "wrist": "wrist",
    "el": "elbow",
    "elbow": "elbow",
    "kn": "knee",
    "knee": "knee",
    "an": "ankle",
    "ank": "ankle",
    "ankle": "ankle",
    "fh": "fibular head",
}

# What complete recordings of the known protocols hold (taken from the complete real files:
# FESB70821A/B (TRONDNF), rat.MEM (TRONDXM2), the 9 MSCAN-R2 files). Used only to say what a
# short file is missing.
_PROTOCOLS = {
    "TRONDNF": {
        "tables": ("sr", "qt", "te", "rc", "iv"),
        "te_sets": (1, 2, 3, 4),
        "derived": (1, *range(3, 29), 30, 31, 33, 34, 35),
    },
    "TRONDXM2": {
        "tables": ("sr", "sd", "te", "rc", "iv"),
        "te_sets": (1, 2),
        "derived": (1, *range(3, 36)),
    },
    "MSCAN-R2": {"tables": ("mscan",), "te_sets": (), "derived": (6, 9, 17, 18)},
}
_SR_TOP = 98.0  # % of maximum, last SR row of a complete excitability recording
_RC_LAST = 200e-3  # s, last recovery-cycle interval
_IV_LAST = -100.0  # %, last I/V current

_TITLE = re.compile(r"^\s*([A-Z][A-Z0-9 /\-]*[A-Z])\s*(?:\((.*)\))?\s*$")
_ROW = re.compile(r"^([A-Z]+)(\d*)\.(\d+)$")
_HEADER_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z /]*?)\s*:\s*(.*?)\s*$")
_DERIVED = re.compile(r"^\s*(\d+)\.\s+(\S+)\s+(.*?)\s*$")
_ASSIGN = re.compile(r"^\s*([^=]+?)\s*=\s*(.*?)\s*$")
_MAX_CMAP = re.compile(
    r"^\s*Max CMAP\s+([-+\d.eE]+)\s*ms\s*=\s*([-+\d.eE]+)\s*(mV|uV|µV|V)\s*$", re.IGNORECASE
)
_SCANPTS = re.compile(r"^\s*Scanpts\s*:\s*(.*?)\s*$", re.IGNORECASE)


@dataclass
class _Table:
    prefix: str
    title_line: int
    columns: list[tuple[str, float, str, str]] = field(default_factory=list)  # name, f, unit, title
    rows: dict[tuple[int, int], tuple[int, list[float]]] = field(default_factory=dict)
    header_line: int = 0


def _number(text: str, where: str, expected: str) -> Decimal:
    """A decimal number as written (exact, so that unit conversion adds no binary noise)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise FormatError(f"{where}: expected {expected}, got {text!r}") from None
    if not value.is_finite() or not -300 < value.adjusted() < 300:
        raise FormatError(f"{where}: expected {expected}, got {text!r}")
    return value


def _si(value: Decimal, factor: float) -> float:
    """``value * factor`` rounded once: 6.5 mV -> 0.0065 V exactly as written."""
    return float(value * Decimal(repr(factor)))


def _snake(text: str) -> str:
    text = text.replace("%", "pct").replace("\\", " ")
    text = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()
    return text or "unnamed"


def _split_unit(text: str) -> tuple[str, float, str]:
    """('Peak response\\(mV)') -> ('Peak response', 1e-3, 'V'); unit-less names keep factor 1."""
    for m in re.finditer(r"\(([^()]*)\)", text):
        key = m.group(1).strip().lower()
        if key in _UNITS:
            factor, unit = _UNITS[key]
            return (text[: m.start()] + " " + text[m.end() :]).strip(), factor, unit
    return text.strip(), 1.0, ""


def _column(title: str, where: str) -> tuple[str, float, str]:
    norm = re.sub(r"\s+", " ", title.strip().lower())
    for pattern, name, factor, unit in _COLUMNS:
        m = re.match(pattern, norm)
        if m:
            return name.format(*m.groups()), factor, unit
    base, factor, unit = _split_unit(title)
    if not unit:
        raise FormatError(
            f"{where}: column title {title!r} is not a known QTRAC column and names no unit"
        )
    return _snake(base), factor, unit


def _parse_sites(text: str) -> dict[str, str]:
    """'Median Wr-APB' -> nerve median, stim_site wrist, record_site APB (only what it says)."""
    out = {}
    if not text:
        return out
    stim, _, rec = text.rpartition("-")
    if rec.strip():
        out["record_site"] = rec.strip()
    for token in re.split(r"[\s/]+", stim.strip()):
        low = token.lower().strip(".")
        if low in _NERVES and "nerve" not in out:
            out["nerve"] = _NERVES[low]
        elif low in _SITES and "stim_site" not in out:
            out["stim_site"] = _SITES[low]
    return out


def _parse_date(text: str, where: str) -> str:
    m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})", text.strip())
    if not m:
        raise FormatError(f"{where}: expected a date d/m/yy, got {text!r}")
    day, month, year = (int(g) for g in m.groups())
    if year < 100:
        year += 2000 if year < 70 else 1900
    try:
        return _dt.date(year, month, day).isoformat()
    except ValueError:
        raise FormatError(f"{where}: {text!r} is not a valid date (d/m/yy)") from None


class _Parser:
    def __init__(self, path: Path):
        self.path = path
        self.name = path.name
        raw = path.read_bytes()
        if b"\x00" in raw[:4096]:
            raise FormatError(f"{self.name}: NUL bytes in the first 4 kB; a MEM file is text")
        text = raw.decode("latin-1")
        self.lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self.problems: list[str] = []
        if not text.endswith(("\n", "\r")) and self.lines and self.lines[-1].strip():
            self.problems.append(
                f"the file ends inside line {len(self.lines)} (no line end): that line was dropped"
            )
            self.lines = self.lines[:-1]
        if self.lines and self.lines[-1] == "":
            self.lines = self.lines[:-1]
        self.attrs: dict[str, object] = {}
        self.dropped_header: list[str] = []
        self.tables: dict[str, _Table] = {}
        self.max_cmap: list[tuple[float, float]] = []
        self.scanpts: list[int] | None = None
        self.derived: list[tuple[int, float, str, int]] = []
        self.extra: list[tuple[str, str, int]] = []
        self.waveforms: dict[str, tuple[int, list[list[float]], int]] = {}
        self.sections_seen: list[str] = []
        self.skipped_sections: list[str] = []

    def where(self, lineno: int) -> str:
        return f"{self.name}, line {lineno}"

    def parse(self) -> None:
        section = None
        table = None
        wf_name = None
        for i, line in enumerate(self.lines, start=1):
            stripped = line.strip()
            if not stripped:
                continue
            title = _TITLE.match(line)
            if title and not _ROW.match(stripped.split()[0]):
                key = re.sub(r"\s+", " ", title.group(1))
                if key in SECTIONS:
                    section = SECTIONS[key]
                    if section in self.sections_seen:
                        raise FormatError(f"{self.where(i)}: section {key!r} appears a second time")
                    self.sections_seen.append(section)
                    table = None
                    if section in _TABLE_NAMES:
                        table = self.tables[section] = _Table(section, i)
                        note = (title.group(2) or "").strip()
                        if note:  # acquisition time range in minutes, e.g. "2.4-1.9m"
                            self.attrs[f"{section}_title_note"] = note
                    wf_name = None
                    continue
                if section is not None:  # an unknown capitalised section: skip its lines
                    self.skipped_sections.append(key)
                    section = "skip"
                    continue
            if section is None:
                self._header_line(i, line)
            elif section == "skip":
                continue
            elif table is not None:
                self._table_line(i, line, table)
            elif section == "derived":
                self._derived_line(i, line)
            elif section == "extra":
                m = _ASSIGN.match(line)
                if not m:
                    raise FormatError(
                        f"{self.where(i)}: expected 'name = value' in EXTRA VARIABLES"
                    )
                self.extra.append((m.group(1), m.group(2), i))
            elif section == "waveforms":
                wf_name = self._waveform_line(i, line, wf_name)

    def _header_line(self, i: int, line: str) -> None:
        m = _HEADER_LINE.match(line)
        if not m:
            raise FormatError(
                f"{self.where(i)}: expected a header line 'Key:  value' or a section title, "
                f"got {line.strip()[:60]!r}"
            )
        key, value = m.group(1).strip().lower(), m.group(2).strip()
        where = self.where(i)
        if key in _HEADER_DROP:
            return
        if key not in _HEADER_KEEP:
            self.dropped_header.append(m.group(1).strip())
            return
        name = _HEADER_KEEP[key]
        if name == "qzd_file":
            value = re.split(r"[\\/]", value)[-1]
        elif name in ("age", "temperature"):
            value = float(_number(value, where, f"{key} as a number")) if value else float("nan")
        elif name == "date" and value:
            value = _parse_date(value, where)
        elif name == "sex":
            value = value.upper()
        self.attrs[name] = value
        if name == "sites":
            self.attrs.update(_parse_sites(value))

    def _table_line(self, i: int, line: str, table: _Table) -> None:
        where = self.where(i)
        stripped = line.strip()
        first = stripped.split()[0]
        row = _ROW.match(first)
        if row:
            prefix = _ROW_PREFIX.get(row.group(1))
            if prefix != table.prefix:
                raise FormatError(
                    f"{where}: row {first!r} inside the {_TABLE_NAMES[table.prefix]} section "
                    f"(expected rows {[k for k, v in _ROW_PREFIX.items() if v == table.prefix][0]}.n)"
                )
            if not table.columns:
                raise FormatError(f"{where}: data row {first!r} before the column titles")
            set_no = int(row.group(2)) if row.group(2) else 0
            if (table.prefix in _SET_TABLES) != bool(row.group(2)):
                raise FormatError(
                    f"{where}: row label {first!r} has an unexpected form for this table"
                )
            fields = stripped.split()[1:]
            if len(fields) != len(table.columns):
                raise FormatError(
                    f"{where}: row {first!r} has {len(fields)} values, expected "
                    f"{len(table.columns)} ({', '.join(c[3] for c in table.columns)})"
                )
            values = [
                _number(v, where, f"a number in column {c[3]!r}")
                for v, c in zip(fields, table.columns)
            ]
            key = (set_no, int(row.group(3)))
            if key in table.rows:
                raise FormatError(f"{where}: row {first!r} repeats line {table.rows[key][0]}")
            table.rows[key] = (i, values)
            return
        if table.prefix == "sr":
            if stripped.lower().startswith("values are"):
                self.attrs["sr_note"] = stripped
                return
            m = _MAX_CMAP.match(line)
            if m:
                width = _si(_number(m.group(1), where, "a pulse width in ms"), 1e-3)
                amp = _number(m.group(2), where, "an amplitude")
                factor = {"mv": 1e-3, "uv": 1e-6, "µv": 1e-6, "v": 1.0}[m.group(3).lower()]
                self.max_cmap.append((width, _si(amp, factor)))
                return
        if table.prefix == "mscan":
            m = _SCANPTS.match(line)
            if m:
                parts = [p for p in re.split(r"[,\s]+", m.group(1)) if p]
                try:
                    pts = [int(p) for p in parts]
                except ValueError:
                    pts = []
                if len(pts) != 4 or any(b < a for a, b in zip(pts, pts[1:])) or pts[0] < 0:
                    raise FormatError(
                        f"{where}: Scanpts {m.group(1)!r}, expected 4 increasing row numbers"
                    )
                self.scanpts = pts
                return
        if table.columns:
            raise FormatError(
                f"{where}: expected a {table.prefix.upper()} data row in the "
                f"{_TABLE_NAMES[table.prefix]} section, got {stripped[:60]!r}"
            )
        titles = [t.strip() for t in line.split("\t") if t.strip()]
        if len(titles) < 1:
            raise FormatError(f"{where}: expected column titles")
        cols, names = [], set()
        for t in titles:
            name, factor, unit = _column(t, where)
            if name in names:
                raise FormatError(f"{where}: column {t!r} appears twice")
            names.add(name)
            cols.append((name, factor, unit, t))
        table.columns = cols
        table.header_line = i

    def _derived_line(self, i: int, line: str) -> None:
        m = _DERIVED.match(line)
        if m:
            value = _number(
                m.group(2), self.where(i), f"the value of derived variable {m.group(1)}"
            )
            self.derived.append((int(m.group(1)), value, m.group(3), i))
            return
        m = _ASSIGN.match(line)
        if m:
            key = _snake(m.group(1))
            self.attrs[f"qtracp_{key}"] = m.group(2)
            return
        raise FormatError(
            f"{self.where(i)}: expected 'n.  value  description' or 'key = value' in DERIVED "
            f"EXCITABILITY VARIABLES, got {line.strip()[:60]!r}"
        )

    def _waveform_line(self, i: int, line: str, current: str | None) -> str | None:
        stripped = line.strip()
        where = self.where(i)
        if stripped.startswith("!"):
            body = stripped[1:].strip()
            if current is not None and self.waveforms[current][0] < 0 and body.isdigit():
                self.waveforms[current] = (int(body), [], i)
                return current
            if body in self.waveforms:
                raise FormatError(f"{where}: waveform {body!r} appears twice")
            self.waveforms[body] = (-1, [], i)
            return body
        if current is None:
            raise FormatError(f"{where}: waveform data before a '!name' line in EXTRA WAVEFORMS")
        count, rows, start = self.waveforms[current]
        if count < 0:
            raise FormatError(f"{where}: expected '!<number of rows>' after '!{current}'")
        values = [
            float(_number(v, where, f"a number in waveform {current!r}")) for v in stripped.split()
        ]
        if rows and len(values) != len(rows[0]):
            raise FormatError(f"{where}: {len(values)} values, the rows above have {len(rows[0])}")
        if len(rows) >= count:
            raise FormatError(
                f"{where}: waveform {current!r} declares {count} rows (line {start}) but has more"
            )
        rows.append(values)
        return current


def _table_vars(table: _Table, name: str) -> tuple[dict, dict]:
    p = table.prefix
    keys = sorted(table.rows)
    data_vars, coords = {}, {}
    raw = [table.rows[k][1] for k in keys]
    values = np.array(
        [[_si(v, col[1]) for v, col in zip(row, table.columns)] for row in raw], dtype=np.float64
    ).reshape(len(keys), -1)
    if p in _SET_TABLES:
        sets = sorted({k[0] for k in keys})
        points = sorted({k[1] for k in keys})
        si = {s: j for j, s in enumerate(sets)}
        pi = {q: j for j, q in enumerate(points)}
        coords[f"{p}_set"] = (f"{p}_set", np.array(sets, dtype=np.int64))
        coords[f"{p}_point"] = (
            f"{p}_point",
            np.array(points, dtype=np.int64),
            {"long_name": "row number in its set"},
        )
        for c, (col, factor, unit, title) in enumerate(table.columns):
            grid = np.full((len(sets), len(points)), np.nan)
            for r, k in enumerate(keys):
                grid[si[k[0]], pi[k[1]]] = values[r, c]
            data_vars[f"{p}_{col}"] = (
                (f"{p}_set", f"{p}_point"),
                grid,
                {"units": unit, "long_name": title},
            )
    else:
        coords[f"{p}_point"] = (
            f"{p}_point",
            np.array([k[1] for k in keys], dtype=np.int64),
            {"long_name": f"row number ({'MS' if p == 'mscan' else p.upper()}.n)"},
        )
        for c, (col, factor, unit, title) in enumerate(table.columns):
            data_vars[f"{p}_{col}"] = (
                (f"{p}_point",),
                values[:, c],
                {"units": unit, "long_name": title},
            )
    return data_vars, coords


def _completeness(parser: _Parser, ds_vars: dict) -> list[str]:
    """What a short or damaged file is missing, in words."""
    problems = []
    tables = parser.tables
    protocol = str(parser.attrs.get("protocol", "")).upper()
    expect = _PROTOCOLS.get(protocol)
    if expect:
        missing = [t for t in expect["tables"] if t not in tables or not tables[t].rows]
        if missing:
            problems.append(
                f"{protocol} recordings hold the "
                + ", ".join(_TABLE_NAMES[t] for t in expect["tables"])
                + " tables; missing or empty: "
                + ", ".join(_TABLE_NAMES[t] for t in missing)
            )
    for p, table in tables.items():
        if not table.rows:
            continue
        if p == "sr" and "sr_percent_max" in ds_vars:
            top = float(np.nanmax(ds_vars["sr_percent_max"][1]))
            if top < _SR_TOP:
                problems.append(
                    f"the stimulus-response table stops at {top:g} % of maximum (complete "
                    f"recordings reach {_SR_TOP:g} %)"
                )
        if p == "te" and {"te_delay", "te_current"} <= set(ds_vars):
            sets = [k[0] for k in sorted(table.rows)]
            want = expect["te_sets"] if expect else ()
            absent = [s for s in want if s not in sets]
            if absent:
                problems.append(
                    "threshold electrotonus sets "
                    + ", ".join(f"TE{s}" for s in absent)
                    + " are missing"
                )
            for s in sorted(set(sets)):
                rows = [(k[1], table.rows[k]) for k in sorted(table.rows) if k[0] == s]
                cols = [c[0] for c in table.columns]
                d, cur = cols.index("delay"), cols.index("current")
                delays = [r[1][1][d] for r in rows]
                for (n0, _), (n1, (line, _v)), a, b in zip(rows, rows[1:], delays, delays[1:]):
                    if b <= a:
                        problems.append(
                            f"TE{s}.{n1} (line {line}) does not advance in delay ({b:g} ms after {a:g} ms)"
                        )
                last_n, (last_line, last_vals) = rows[-1]
                if last_vals[cur] != 0:
                    problems.append(
                        f"TE{s} stops at {last_vals[d]:g} ms (line {last_line}) while the conditioning "
                        f"current ({last_vals[cur]:g} %) is still on"
                    )
        if p == "rc" and "rc_interval" in ds_vars:
            last = float(np.nanmax(ds_vars["rc_interval"][1]))
            if last < _RC_LAST:
                problems.append(
                    f"the recovery cycle stops at {last * 1e3:g} ms (complete recordings reach "
                    f"{_RC_LAST * 1e3:g} ms)"
                )
        if p == "iv" and "iv_current" in ds_vars:
            last = float(np.nanmin(ds_vars["iv_current"][1]))
            if last > _IV_LAST:
                problems.append(
                    f"the threshold I/V table stops at {last:g} % (complete recordings reach {_IV_LAST:g} %)"
                )
    if "mscan" in tables and tables["mscan"].rows:
        sp = parser.scanpts
        rows = sorted(k[1] for k in tables["mscan"].rows)
        if sp is None:
            problems.append("the M-scan has no 'Scanpts:' line: the scan bounds are unknown")
        else:
            have = set(rows)
            absent = [r for r in range(1, sp[3] + 1) if r not in have]
            if absent:
                shown = ", ".join(f"MS.{r}" for r in absent[:5]) + (
                    " ..." if len(absent) > 5 else ""
                )
                problems.append(
                    f"the M-scan lacks {len(absent)} of rows MS.1 to MS.{sp[3]} named by Scanpts "
                    f"({shown})"
                )
    if "derived" not in parser.sections_seen:
        problems.append("the DERIVED EXCITABILITY VARIABLES section is missing")
    elif expect:
        have = {d[0] for d in parser.derived}
        absent = [n for n in expect["derived"] if n not in have]
        if absent:
            problems.append(
                f"{len(absent)} of the {len(expect['derived'])} derived variables of complete "
                f"{protocol} recordings are missing (numbers {_ranges(absent)})"
            )
    for wf, (count, rows, line) in parser.waveforms.items():
        if count >= 0 and len(rows) < count:
            problems.append(
                f"waveform {wf!r} declares {count} rows (line {line}) but has {len(rows)}"
            )
    return problems


def _ranges(numbers: Sequence[int]) -> str:
    out, start, prev = [], None, None
    for n in sorted(numbers):
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = n
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(out)


def _read_mem(path: Path) -> xr.Dataset:
    parser = _Parser(path)
    parser.parse()
    if not parser.sections_seen and "protocol" not in parser.attrs:
        raise FormatError(
            f"{path.name}: no 'Protocol:' header line and no QTRAC section: not a QTRAC MEM file"
        )
    data_vars: dict[str, tuple] = {}
    coords: dict[str, tuple] = {}
    for table in parser.tables.values():
        if not table.rows:
            continue
        dv, cs = _table_vars(table, path.name)
        data_vars.update(dv)
        coords.update(cs)
    if parser.max_cmap:
        widths = [w for w, _ in parser.max_cmap]
        if len(set(widths)) != len(widths):
            raise FormatError(f"{path.name}: two 'Max CMAP' lines for the same pulse width")
        coords["sr_width"] = (
            "sr_width",
            np.array(widths),
            {"units": "s", "long_name": "test pulse width"},
        )
        data_vars["sr_max_cmap"] = (
            ("sr_width",),
            np.array([a for _, a in parser.max_cmap]),
            {"units": "V", "long_name": "maximal CMAP for this pulse width"},
        )
    for number, value, desc, line in parser.derived:
        base, factor, unit = _split_unit(desc)
        name = "derived_" + _snake(base)
        if name in data_vars:
            raise FormatError(f"{path.name}, line {line}: derived variable {desc!r} appears twice")
        attrs_v = {"units": unit, "long_name": desc.replace("\\", " "), "qtrac_number": number}
        data_vars[name] = ((), _si(value, factor), attrs_v)
    for key, text, line in parser.extra:
        base, factor, unit = _split_unit(key)
        name = re.sub(r"[^0-9A-Za-z]+", "_", base).strip("_") or "unnamed"
        if unit == "%":
            name += "_pct"
        while name in data_vars:
            name += "_2"
        try:
            value = Decimal(text)
            if not value.is_finite() or not -300 < value.adjusted() < 300:
                raise InvalidOperation
        except InvalidOperation:
            parser.attrs[f"extra_{name}"] = text
            continue
        data_vars[name] = ((), _si(value, factor), {"units": unit, "long_name": key})
    model = parser.waveforms.get("MScan Model")
    if model and model[1]:
        rows = np.array(model[1], dtype=np.float64)
        if rows.shape[1] != 4:
            raise FormatError(
                f"{path.name}, line {model[2]}: MScan Model rows have {rows.shape[1]} columns, "
                "expected 4 (unit, threshold mA, amplitude %, relative spread %)"
            )
        coords["msf_unit"] = (
            "msf_unit",
            rows[:, 0].astype(np.int64),
            {"long_name": "MScanFit unit number"},
        )
        data_vars["msf_unit_threshold"] = (
            ("msf_unit",),
            rows[:, 1] * 1e-3,
            {"units": "A", "long_name": "unit threshold"},
        )
        data_vars["msf_unit_amplitude_pct"] = (
            ("msf_unit",),
            rows[:, 2],
            {"units": "%", "long_name": "unit amplitude, % of MSFPeakAmp"},
        )
        data_vars["msf_unit_spread_pct"] = (
            ("msf_unit",),
            rows[:, 3],
            {"units": "%", "long_name": "unit threshold relative spread"},
        )
    other = sorted(k for k in parser.waveforms if k != "MScan Model")
    attrs = {"source_format": "qtrac-mem", "source_file": path.name}
    attrs.update({k: v for k, v in parser.attrs.items()})
    if parser.scanpts is not None:
        attrs["scanpts"] = np.array(parser.scanpts, dtype=np.int64)
    if parser.dropped_header:
        attrs["dropped_header_fields"] = ", ".join(parser.dropped_header)
    if parser.skipped_sections or other:
        attrs["skipped_sections"] = ", ".join(
            parser.skipped_sections + [f"waveform {o}" for o in other]
        )
    problems = parser.problems + _completeness(parser, data_vars)
    if problems:
        attrs["qtrac_problems"] = "\n".join(problems)
        warnings.warn(
            f"{path.name}: incomplete QTRAC recording, partial result: " + "; ".join(problems),
            QCWarning,
            stacklevel=3,
        )
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _read_mef(path: Path) -> xr.Dataset:
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise FormatError(f"{path.name}: NUL bytes; a MEF file is a text list of MEM names")
    lines = raw.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    names = [(i, ln.strip()) for i, ln in enumerate(lines, start=1) if ln.strip()]
    if not names:
        raise FormatError(f"{path.name}: the MEF file lists no MEM file")
    folder = path.parent
    listing = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    files, missing = [], []
    for i, name in names:
        if re.search(r"[\\/:*?\"<>|]", name):
            raise FormatError(f"{path.name}, line {i}: {name!r} is not a MEM file name")
        key = name.lower() if name.lower().endswith(".mem") else name.lower() + ".mem"
        if key in listing:
            files.append(listing[key])
        else:
            missing.append(f"line {i}: {name}")
    if missing:
        raise FormatError(
            f"{path.name}: {len(missing)} listed MEM file(s) not found in {folder.name or '.'}: "
            + "; ".join(missing)
        )
    sets = []
    for f in files:
        ds = _read_mem(f)
        sets.append(_attrs_to_vars(ds))
    out = xr.concat(
        sets,
        dim="recording",
        join="outer",
        data_vars="all",
        coords="different",
        compat="equals",
        fill_value=np.nan,
        combine_attrs="drop",
    )
    for name, var in out.data_vars.items():
        if var.dtype == object:
            out[name] = var.fillna("")
    for name in out.data_vars:
        for s in sets:
            if name in s.variables:
                out[name].attrs = dict(s[name].attrs)
                break
    if "scanpts" in out.variables and not np.isnan(out["scanpts"].values).any():
        out["scanpts"] = out["scanpts"].astype(np.int64)
    out = out.assign_coords(recording=("recording", [f.stem for f in files]))
    out.attrs = {"source_format": "qtrac-mef", "source_file": path.name, "n_recordings": len(files)}
    return out


_PER_RECORDING_ATTRS = ("source_format",)
_HEADER_UNITS = {"age": "years", "temperature": "degC"}


def _attrs_to_vars(ds: xr.Dataset) -> xr.Dataset:
    out = ds.copy()
    for key, value in ds.attrs.items():
        if key in _PER_RECORDING_ATTRS:
            continue
        if key == "scanpts":
            out["scanpts"] = (
                ("scanpts_index",),
                np.asarray(value, dtype=np.float64),
                {"long_name": "Scanpts bounds"},
            )
        elif key in _HEADER_UNITS:
            out[key] = ((), value, {"units": _HEADER_UNITS[key]})
        elif isinstance(value, str):
            out[key] = ((), np.array(value, dtype=object))
        else:
            out[key] = ((), value)
    out.attrs = {}
    return out


def read_qtrac(path: str | os.PathLike) -> xr.Dataset:
    """Read a QTRAC ``.MEM`` file, or every MEM listed in a ``.MEF`` file.

    Parameters
    ----------
    path : path-like
        A MEM file (one recording) or a MEF file (a list of MEM base names, one per line,
        looked up beside the MEF file, case-insensitively).

    Returns
    -------
    xarray.Dataset
        MEM: header facts as attributes (``protocol``, ``date`` ISO, ``start_time``, ``age``,
        ``sex``, ``temperature``, ``sites`` and the parsed ``nerve``, ``stim_site``,
        ``record_site``, ``nc_disease``, ``qzd_file``; for an M-scan ``scanpts``), each table as
        variables on its own dimension in SI units (``sr_*`` on ``sr_point``, ``qt_*``, ``sd_*``,
        ``te_*`` on (``te_set``, ``te_point``), ``rc_*``, ``iv_*``, ``mscan_stimulus`` (A) and
        ``mscan_amplitude`` (V) on ``mscan_point``), the derived variables
        (``derived_<description>``) and extra variables (QtracP's names, e.g. ``MSFNUnits``,
        ``MScD50``, ``MScPeak`` in V) as 0-d variables with ``units``, and the MScanFit model
        (``msf_unit_*``). MEF: the recordings concatenated along ``recording`` (coordinate: MEM
        base name); header facts become variables on ``recording``; tables are aligned on their
        row numbers and padded with NaN.

    Warns
    -----
    QCWarning
        The recording is incomplete (file ends early, tables shorter than the protocol's,
        sections missing); the result holds what is there and ``attrs["qtrac_problems"]`` says
        what is missing.

    Raises
    ------
    FormatError
        A line does not fit the grammar (the message names file, line and expectation), or a
        MEF lists a MEM file that is not there.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() == ".mef":
        return _read_mef(path)
    return _read_mem(path)


# ---------------------------------------------------------------------------------------------
# Registry


def _sniff(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except Exception as exc:  # never raise
        return f"cannot read: {exc}"
    try:
        if b"\x00" in head:
            return "binary content (NUL bytes); QTRAC files are text"
        text = head.decode("latin-1")
        if re.search(r"^\s*Protocol:\s*\S", text, re.M) and (
            re.search(r"^\s*File:\s", text, re.M) or any(t in text for t in SECTIONS)
        ):
            return None
        if Path(path).suffix.lower() == ".mef":
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if lines and all(re.fullmatch(r"[\w\-. ]{1,128}", ln) for ln in lines):
                return None
            return "a .MEF file should list MEM file names, one per line"
        return "no QTRAC header ('File:' and 'Protocol:' lines)"
    except Exception as exc:  # never raise
        return f"cannot inspect: {exc}"


def _example(folder: str | os.PathLike) -> Path:
    """A small M-scan MEM file: a 12-unit staircase, 8 supramaximal and 6 sub-threshold rows."""
    rng = np.random.default_rng(3)
    thresholds = np.sort(rng.uniform(5.0, 9.0, 12))
    sizes = rng.uniform(0.2, 0.8, 12)
    stim = np.concatenate([np.full(8, 12.0), np.linspace(11.5, 4.0, 70), np.linspace(3.95, 3.7, 6)])
    amp = np.array([sizes[thresholds <= s].sum() for s in stim]) + 0.01
    lines = [
        " File:              \tC:\\Qtrac\\Data\\Doe Jane\\EXAM0001.QZD",
        " Name:              \tJane Doe",
        " Protocol:          \tMSCAN-R2",
        " Date:              \t1/2/20",
        " Start time:        \t10:00:00",
        " Age:               \t50",
        " Sex:               \tF",
        " Temperature:       \t32.5",
        " S/R sites:         \tMedian Wr-APB",
        " NC/disease:        \tNC",
        " Operator:          \tDr Nobody",
        " Comments:          \tJane Doe, ward 3",
        "M-SCAN DATA (1.0-0.5m)",
        f"Scanpts: 6, 8, 78, {len(stim)}",
        "Stim. (mA)     \tAmp. (mV)",
    ]
    lines += [f"MS.{i + 1:<12d}\t{s:<15.4g}\t{a:.3f}" for i, (s, a) in enumerate(zip(stim, amp))]
    lines += [
        "DERIVED EXCITABILITY VARIABLES",
        "Program = QTracP 3/4/2020",
        "9.                 \t32.5                \tTemperature ( C)",
        "17.                \t50                  \tAge (years)",
        "18.                \t2                   \tSex (M=1, F=2)",
        "6.                 \t0.000               \tPeak response\\(mV)",
        "",
        "EXTRA VARIABLES",
        "",
        f"MScPeak(mV) = {amp[8:78].max():.2f}",
        "MSFNUnits = 12",
        "",
    ]
    path = Path(folder) / "EXAMPLE.MEM"
    path.write_bytes("\r\n".join(lines).encode("latin-1"))
    return path


READER = Reader(
    name="qtrac",
    # a noun phrase: read() refuses the file with "<name> holds <description>, not recorded
    # traces ...: read it in Python with ncsproc.read_qtrac(path)"
    description="QTRAC/QtracP results (.MEM nerve excitability and CMAP scans, .MEF lists)",
    extensions=(".mem", ".mef"),
    sniff=_sniff,
    load=read_qtrac,
    example=_example,
    kind="results",
    identifying=("Jane Doe", "Doe Jane", "Dr Nobody", "ward 3"),
    function="ncsproc.read_qtrac",
)
