"""Delimited text (CSV, TSV, vendor ASCII exports) described by a JSON sidecar or a dialect.

The way in for machines whose formats are not public: the samples are a table of numbers, and
what the table means (layout, sampling rate, units, stimulus offset, per-trace metadata) is
said by the sidecar ``<file>.json`` (or ``<stem>.json``), by a registered *dialect* (a small
declarative mapping of the same keys, see :func:`register_dialect`), or by both (the sidecar
names the dialect and adds or overrides keys). Full reference: ``formats/text.md``; how to add
a vendor dialect: ``formats/readers.md``.

Layouts:

* ``"columns"`` (default): one column per trace, one row per sample; optional header row of
  column names, optional time column. Columns may end early (shorter traces).
* ``"rows"``: one row per trace; optional first cell with the trace's label.
* ``"long"``: one row per sample with a trace-label column, a value column and an optional
  time column.

Nothing is guessed that changes a number: the unit of the samples (``units``) is required;
the sampling rate comes from ``sampling_rate``, ``sample_interval`` or a uniformly spaced time
column; ``t_start`` from ``t_start``, ``stimulus_sample`` or the time column, else 0 (the sweep
starts at the stimulus, as the contract says).
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import FormatError
from ..schema import COORDS_BY_NAME, LABEL_COORDS, make_trace_set
from . import Reader
from ._sidecar import SIDECAR_COORDS, coord_value, load_sidecar, parse_quantity, unit_factor

if TYPE_CHECKING:
    import xarray as xr

# Keys this reader reads itself (besides the trace-set coordinates).
STRUCTURE_KEYS = (
    "dialect",
    "layout",
    "delimiter",
    "decimal",
    "encoding",
    "skip_lines",
    "header",
    "sample_interval",
    "time_column",
    "time_unit",
    "units",
    "polarity",
    "stimulus_sample",
    "trace_column",
    "value_column",
    "label_column",
    "traces",
    "columns_are",
    "header_fields",
)
# Keys whose presence in a sidecar says "this is a table described here".
_DESCRIBES_TABLE = ("dialect", "layout", "units", "sample_interval", "time_column", "sampling_rate")
DIALECT_KEYS = STRUCTURE_KEYS + SIDECAR_COORDS + ("signature", "description")
LAYOUTS = ("columns", "rows", "long")
# header_fields targets that never enter the trace set: ncsproc.read pseudonymises the patient
# identifier (or drops it) and reduces the exam date (see _identity).
IDENTITY_FIELDS = ("patient_id", "exam_date")
MAX_BYTES = 256 * 1024 * 1024

DIALECTS: dict[str, dict] = {}


def register_dialect(name: str, mapping: dict) -> None:
    """Register a vendor dialect: default sidecar keys for one export layout.

    Parameters
    ----------
    name : str
        The dialect's name; a sidecar selects it with ``"dialect": name``.
    mapping : dict
        Any sidecar key (layout, delimiter, decimal, skip_lines, header_fields, units, ...) plus
        ``signature``: a regular expression matched against the first 4 KB of a file; files
        that match are read with this dialect even without a sidecar. ``description`` is free
        text (where the layout was learnt, which software version).

    Raises
    ------
    ValueError
        Unknown keys, a bad signature, or a name already registered.
    """
    unknown = sorted(set(mapping) - set(DIALECT_KEYS))
    if unknown:
        raise ValueError(
            f"dialect {name!r}: unknown keys {unknown}; accepted: {sorted(DIALECT_KEYS)}"
        )
    if name in DIALECTS:
        raise ValueError(f"dialect {name!r} is already registered")
    if "signature" in mapping:
        re.compile(mapping["signature"])
    if mapping.get("layout", "columns") not in LAYOUTS:
        raise ValueError(f"dialect {name!r}: layout must be one of {LAYOUTS}")
    DIALECTS[name] = dict(mapping)


def unregister_dialect(name: str) -> None:
    """Remove a registered dialect (for tests and interactive work)."""
    DIALECTS.pop(name, None)


# --------------------------------------------------------------------------------------------
# detection
# --------------------------------------------------------------------------------------------


def _head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(4096)


def _matching_dialect(head: bytes) -> str | None:
    text = head.decode("latin-1")
    for name, d in DIALECTS.items():
        sig = d.get("signature")
        if sig and re.search(sig, text, re.M):
            return name
    return None


def _sniff(path: Path) -> str | None:
    try:
        head = _head(path)
    except OSError as exc:
        return f"cannot read ({exc})"
    if b"\x00" in head:
        return "binary content (NUL bytes), not delimited text"
    try:
        data, side = load_sidecar(path)
    except FormatError as exc:
        return f"sidecar unusable: {exc}"
    if data is not None and any(k in data for k in _DESCRIBES_TABLE):
        return None
    if _matching_dialect(head):
        return None
    return (
        f"text, but no sidecar {path.name}.json says what the table holds (layout, units, sampling "
        "rate) and no registered dialect recognises its first lines"
    )


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


def _config(path: Path, head: bytes) -> tuple[dict, str, dict]:
    """Merge dialect and sidecar: (config, description of the source, sidecar or {})."""
    data, side = load_sidecar(path)
    data = data or {}
    name = data.get("dialect")
    if name is None and not any(k in data for k in _DESCRIBES_TABLE):
        name = _matching_dialect(head)
    config: dict = {}
    source = side.name if side else "defaults"
    if name is not None:
        if name not in DIALECTS:
            raise FormatError(
                f"{side.name if side else path.name}: dialect {name!r} is not registered; "
                f"registered dialects: {sorted(DIALECTS) or 'none'}"
            )
        config.update(
            {k: v for k, v in DIALECTS[name].items() if k not in ("signature", "description")}
        )
        source = f"dialect {name!r}" + (f" and {side.name}" if side else "")
    config.update({k: v for k, v in data.items() if k != "dialect"})
    return config, source, data


def _opt_int(config, key, default, where, minimum=0):
    v = config.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise FormatError(f"{where}: '{key}' must be an integer >= {minimum}, found {v!r}")
    return v


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def read_text(path) -> xr.Dataset:
    """Read a delimited-text export described by its sidecar or a registered dialect.

    Parameters
    ----------
    path : path-like
        The text file.

    Returns
    -------
    xarray.Dataset
        The traces; metadata nobody gives stay unknown (``ncsproc.read`` then says which).
    """
    path = Path(path)
    name = path.name
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise FormatError(
            f"{name}: {size} bytes; text exports above {MAX_BYTES} bytes are not supported"
        )
    raw = path.read_bytes()
    config, source, sidecar = _config(path, raw[:4096])
    where = f"{name} ({source})"
    encoding = config.get("encoding", "utf-8-sig")
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        pos = getattr(exc, "start", None)
        line = raw[:pos].count(b"\n") + 1 if pos is not None else "?"
        raise FormatError(
            f"{name}: line {line}, byte {pos}: cannot decode as {encoding!r} ({exc})"
        ) from None
    if "\x00" in text:
        pos = text.index("\x00")
        raise FormatError(f"{name}: line {text[:pos].count(chr(10)) + 1}: NUL byte in a text file")
    lines = text.splitlines()

    layout = config.get("layout", "columns")
    if layout not in LAYOUTS:
        raise FormatError(f"{where}: 'layout' is {layout!r}, expected one of {LAYOUTS}")
    skip = _opt_int(config, "skip_lines", 0, where)
    header = config.get("header", layout != "rows")
    if not isinstance(header, bool):
        raise FormatError(f"{where}: 'header' must be true or false, found {header!r}")

    values: dict[str, object] = {}  # file-level coordinate values, with where each came from
    origin: dict[str, str] = {}

    def give(key, value, src):
        if key in values and values[key] != value:
            raise FormatError(
                f"{name}: {key} is {value!r} in {src} but {values[key]!r} in {origin[key]}"
            )
        values[key] = value
        origin[key] = src

    # vendor preamble: "Key: value" lines mapped by header_fields
    fields_map = config.get("header_fields", {})
    if not isinstance(fields_map, dict):
        raise FormatError(f"{where}: 'header_fields' must map preamble keys to sidecar keys")
    if len(lines) < skip:
        raise FormatError(
            f"{name}: {len(lines)} lines, but skip_lines says the table starts after line {skip}"
        )
    for lineno, line in enumerate(lines[:skip], start=1):
        m = re.match(r"^\s*([^:=\t;]+?)\s*[:=\t;]\s*(.*?)\s*$", line)
        if not m or m.group(1) not in fields_map:
            continue
        key = fields_map[m.group(1)]
        if key in IDENTITY_FIELDS:
            continue  # read only by _identity, for ncsproc.read's privacy step; never stored
        if key not in SIDECAR_COORDS and key not in ("units", "sample_interval", "stimulus_sample"):
            raise FormatError(
                f"{where}: header_fields maps {m.group(1)!r} to {key!r}, which is not a sidecar key"
            )
        give(
            key,
            _structure_or_coord(key, m.group(2), f"{name}: line {lineno} ({m.group(1)})"),
            f"line {lineno}",
        )
    for key in SIDECAR_COORDS + ("units", "sample_interval", "stimulus_sample"):
        if key in config:
            give(key, _structure_or_coord(key, config[key], f"{where}: key '{key}'"), source)

    if "units" not in values:
        raise FormatError(
            f'{where}: the unit of the samples is not given; add "units": "mV" (or V, uV) to the '
            "sidecar or dialect"
        )
    factor = values.pop("units")
    polarity = config.get("polarity", "G1-G2")
    if polarity not in ("G1-G2", "G2-G1"):
        raise FormatError(
            f"{where}: 'polarity' is {polarity!r}, expected 'G1-G2' or 'G2-G1' (inverted)"
        )
    sign = -1.0 if polarity == "G2-G1" else 1.0

    table = lines[skip:]
    first = skip + 1  # file line number of table[0]
    delimiter = _delimiter(config, table, where)
    decimal = config.get("decimal", ".")
    if decimal not in (".", ","):
        raise FormatError(f"{where}: 'decimal' is {decimal!r}, expected '.' or ','")
    if decimal == "," and delimiter == ",":
        raise FormatError(f"{where}: decimal ',' needs another delimiter (';' or tab)")
    rows = _split(table, delimiter, first, name)

    columns: list[str] = []
    if header:
        while rows and not any(c.strip() for c in rows[0][1]):
            rows.pop(0)
        if not rows:
            raise FormatError(
                f"{name}: line {first}: expected a header row of column names, found no table"
            )
        columns = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
    rows = [(n, cells) for n, cells in rows if any(c.strip() for c in cells)]
    if not rows:
        raise FormatError(f"{name}: no data rows after line {skip + (1 if header else 0)}")

    def number(cell, lineno, col):
        s = cell.strip()
        if decimal == ",":
            s = s.replace(",", ".")
        try:
            v = float(s)
        except ValueError:
            raise FormatError(
                f"{name}: line {lineno}, column {col + 1}: expected a number, found {cell!r}"
            ) from None
        if not math.isfinite(v):
            raise FormatError(
                f"{name}: line {lineno}, column {col + 1}: expected a finite number, found {cell!r}"
            )
        return v

    time_values = None
    labels: list[str]
    traces: list[np.ndarray]
    if layout == "columns":
        time_col = _column_index(config.get("time_column"), columns, where)
        ncol = max(len(c) for _, c in rows)
        if columns and len(columns) < ncol:
            raise FormatError(
                f"{name}: line {rows[0][0]}: {ncol} cells, but the header names {len(columns)} columns"
            )
        ncol = max(ncol, len(columns))
        data = np.full((len(rows), ncol), np.nan)
        for r, (lineno, cells) in enumerate(rows):
            for c, cell in enumerate(cells):
                if cell.strip():
                    data[r, c] = number(cell, lineno, c)
        keep = [c for c in range(ncol) if c != time_col]
        if not keep:
            raise FormatError(f"{name}: no sample column besides the time column")
        labels = [
            columns[c] if c < len(columns) and columns[c] else f"column {c + 1}" for c in keep
        ]
        traces = []
        for c in keep:
            col = data[:, c]
            traces.append(_leading_valid(col, [n for n, _ in rows], c, name))
        if time_col is not None:
            time_values = _leading_valid(data[:, time_col], [n for n, _ in rows], time_col, name)
    elif layout == "rows":
        label_col = config.get("label_column", False)
        if not isinstance(label_col, bool):
            raise FormatError(f"{where}: 'label_column' must be true or false for layout 'rows'")
        labels, traces = [], []
        for lineno, cells in rows:
            cells = list(cells)
            while cells and not cells[-1].strip():
                cells.pop()
            label = cells.pop(0).strip() if label_col and cells else f"row {lineno}"
            vals = np.array([number(c, lineno, i + int(label_col)) for i, c in enumerate(cells)])
            if vals.size == 0:
                raise FormatError(f"{name}: line {lineno}: a trace row without samples")
            labels.append(label)
            traces.append(vals)
    else:  # long
        if not columns:
            raise FormatError(f"{where}: layout 'long' needs a header row naming its columns")
        tcol = _column_index(config.get("trace_column"), columns, where, required="trace_column")
        vcol = _column_index(config.get("value_column"), columns, where, required="value_column")
        time_col = _column_index(config.get("time_column"), columns, where)
        groups: dict[str, list[tuple[float, float | None]]] = {}
        for lineno, cells in rows:
            need = max(c for c in (tcol, vcol, time_col) if c is not None)
            if len(cells) <= need:
                raise FormatError(
                    f"{name}: line {lineno}: {len(cells)} cells, expected at least {need + 1}"
                )
            label = cells[tcol].strip()
            v = number(cells[vcol], lineno, vcol)
            t = number(cells[time_col], lineno, time_col) if time_col is not None else None
            groups.setdefault(label, []).append((v, t))
        labels = list(groups)
        traces = [np.array([v for v, _ in g]) for g in groups.values()]
        if time_col is not None:
            times = [np.array([t for _, t in g]) for g in groups.values()]
            for lab, t in zip(labels, times, strict=True):
                if not np.array_equal(t, times[0][: t.size]) and not np.array_equal(
                    t[: times[0].size], times[0]
                ):
                    raise FormatError(
                        f"{name}: trace {lab!r} has a different time axis from trace {labels[0]!r}"
                    )
            time_values = max(times, key=len)

    # sampling rate and t_start
    time_unit = config.get("time_unit", "s")
    try:
        tfactor = float(unit_factor("time", time_unit))
    except KeyError:
        raise FormatError(f"{where}: 'time_unit' is {time_unit!r}, expected s, ms or us") from None
    if time_values is not None:
        if time_values.size < 2:
            raise FormatError(f"{name}: the time column needs at least two values")
        t = time_values * tfactor
        step = (t[-1] - t[0]) / (t.size - 1)
        if not step > 0:
            raise FormatError(f"{name}: the time column does not increase ({t[0]!r} .. {t[-1]!r})")
        err = np.max(np.abs(t - (t[0] + step * np.arange(t.size))))
        if err > 0.01 * step:
            bad = int(np.argmax(np.abs(t - (t[0] + step * np.arange(t.size)))))
            raise FormatError(
                f"{name}: time column not uniformly spaced: sample {bad} is at {t[bad]!r} s, "
                f"expected {t[0] + step * bad!r} s (step {step!r} s)"
            )
        if "sampling_rate" not in values:
            give("sampling_rate", 1.0 / step, "the time column")
        elif not math.isclose(values["sampling_rate"], 1.0 / step, rel_tol=1e-4):
            raise FormatError(
                f"{name}: the time column's step ({step!r} s) contradicts sampling rate "
                f"{values['sampling_rate']!r} Hz ({origin['sampling_rate']})"
            )
        if "t_start" in values:
            if abs(values["t_start"] - float(t[0])) > 0.01 * step:
                raise FormatError(
                    f"{name}: t_start {values['t_start']!r} s ({origin['t_start']}) contradicts the time "
                    f"column, which starts at {float(t[0])!r} s"
                )
        else:
            give("t_start", float(t[0]), "the time column")
    if "sample_interval" in values:
        interval = values.pop("sample_interval")
        fs = 1.0 / interval
        if "sampling_rate" in values and not math.isclose(
            values["sampling_rate"], fs, rel_tol=1e-6
        ):
            raise FormatError(
                f"{name}: sample_interval {interval!r} s ({origin['sample_interval']}) contradicts sampling rate "
                f"{values['sampling_rate']!r} Hz ({origin['sampling_rate']})"
            )
        values.setdefault("sampling_rate", fs)
    if "sampling_rate" not in values:
        raise FormatError(
            f'{where}: the sampling rate is not given; add "sampling_rate" (Hz or "20 kHz"), '
            '"sample_interval" or a "time_column"'
        )
    fs = values["sampling_rate"]
    if not (math.isfinite(fs) and fs > 0):
        raise FormatError(f"{where}: sampling rate {fs!r} Hz, expected a positive number")
    if "stimulus_sample" in values:
        k = values.pop("stimulus_sample")
        t0 = -k / fs
        if "t_start" in values and not math.isclose(
            values["t_start"], t0, rel_tol=1e-9, abs_tol=1e-12
        ):
            raise FormatError(
                f"{name}: stimulus_sample {k} gives t_start {t0!r} s, but {origin['t_start']} gives {values['t_start']!r} s"
            )
        values.setdefault("t_start", t0)
    values.setdefault("t_start", 0.0)

    # per-trace metadata
    per = [dict() for _ in traces]
    columns_are = config.get("columns_are")
    if columns_are is not None:
        if columns_are not in SIDECAR_COORDS or COORDS_BY_NAME[columns_are].kind != "str":
            raise FormatError(
                f"{where}: 'columns_are' must name a text coordinate (e.g. stim_site), found {columns_are!r}"
            )
        for i, lab in enumerate(labels):
            per[i][columns_are] = coord_value(columns_are, lab, f"{name}: trace label {lab!r}")
    specs = config.get("traces", [])
    if not isinstance(specs, list):
        raise FormatError(f"{where}: 'traces' must be a list of objects")
    if specs and not all(isinstance(s, dict) for s in specs):
        raise FormatError(f"{where}: 'traces' must be a list of objects")
    by_label = any("column" in s for s in specs)
    if not by_label and specs and len(specs) != len(traces):
        raise FormatError(
            f"{where}: 'traces' lists {len(specs)} entries for {len(traces)} traces in the file"
        )
    for k, spec in enumerate(specs):
        if by_label:
            lab = str(spec.get("column", ""))
            if lab not in labels:
                raise FormatError(
                    f"{where}: traces[{k}] names column {lab!r}; the file's traces are {labels}"
                )
            i = labels.index(lab)
        else:
            i = k
        for key, v in spec.items():
            if key == "column" or key.startswith("_") or key in ("comment", "description"):
                continue
            if key not in SIDECAR_COORDS:
                raise FormatError(
                    f"{where}: traces[{k}]: unknown key {key!r}; expected trace-set coordinates"
                )
            value = coord_value(key, v, f"{where}: traces[{k}].{key}")
            if key in values and not _same(key, values[key], value):
                raise FormatError(
                    f"{name}: traces[{k}] says {key} = {value!r}, but {origin[key]} says {values[key]!r}"
                )
            per[i][key] = value

    n = len(traces)
    kwargs = {}
    for key in SIDECAR_COORDS:
        column_vals = [p.get(key, values.get(key)) for p in per]
        if all(v is None for v in column_vals):
            continue
        kind = COORDS_BY_NAME[key].kind
        kwargs[key] = [
            (math.nan if kind == "float" else "") if v is None else v for v in column_vals
        ]
    for key in LABEL_COORDS:
        kwargs.setdefault(key, "")
    study = kwargs["study"]
    study = [study] * n if isinstance(study, str) else study
    signals = [sign * tr * factor for tr in traces]
    return make_trace_set(
        signals,
        record=list(range(n)),
        trace=[
            f"{e}/{s}/{i}"
            for i, (e, s) in enumerate(zip(_listify(kwargs["exam_id"], n), study, strict=True))
        ],
        source_file=name,
        attrs={"source_format": "text", "text_source": source},
        history=f"read {name} (delimited text, {source})",
        validate=False,
        **kwargs,
    )


def _listify(v, n):
    return [v] * n if isinstance(v, str) else list(v)


def _same(key, a, b) -> bool:
    if COORDS_BY_NAME[key].kind == "float":
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)
    return a == b


def _structure_or_coord(key, value, where):
    if key == "units":
        if not isinstance(value, str):
            raise FormatError(f"{where}: expected a unit (V, mV, uV), found {value!r}")
        try:
            return float(unit_factor("voltage", value))
        except KeyError:
            raise FormatError(
                f"{where}: unit {value!r} is not a voltage; expected V, mV, uV or nV"
            ) from None
    if key == "sample_interval":
        v = parse_quantity(value, "time", where)
        if not (math.isfinite(v) and v > 0):
            raise FormatError(f"{where}: sample interval {value!r}, expected a positive time")
        return v
    if key == "stimulus_sample":
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise FormatError(
                f"{where}: expected the 0-based sample index of the stimulus, found {value!r}"
            )
        return value
    return coord_value(key, value, where)


def _delimiter(config, table, where) -> str | None:
    d = config.get("delimiter")
    if d is None:
        sample = next((line for line in table if line.strip()), "")
        for cand in ("\t", ";", ","):
            if cand in sample:
                return cand
        return None  # whitespace
    if d in ("whitespace", " "):
        return None
    if d == "tab":
        return "\t"
    if not isinstance(d, str) or len(d) != 1:
        raise FormatError(
            f"{where}: 'delimiter' must be one character, 'tab' or 'whitespace', found {d!r}"
        )
    return d


def _split(table, delimiter, first: int, name: str):
    """Cells of each table line, with the file line number (1-based) of the line."""
    rows = []
    if delimiter is None:
        for i, line in enumerate(table):
            rows.append((first + i, line.split()))
    else:
        reader = csv.reader(io.StringIO("\n".join(table)), delimiter=delimiter, strict=True)
        try:
            for cells in reader:
                rows.append((first + reader.line_num - 1, cells))
        except csv.Error as exc:
            raise FormatError(f"{name}: line {first + reader.line_num - 1}: {exc}") from None
    return rows


def _column_index(spec, columns, where, required=None):
    if spec is None:
        if required:
            raise FormatError(
                f"{where}: layout 'long' needs '{required}' (a column name or 0-based index)"
            )
        return None
    if isinstance(spec, int) and not isinstance(spec, bool):
        if spec < 0 or (columns and spec >= len(columns)):
            raise FormatError(f"{where}: column index {spec} out of range")
        return spec
    if spec in columns:
        return columns.index(spec)
    raise FormatError(f"{where}: no column named {spec!r}; the header names {columns}")


def _leading_valid(col: np.ndarray, linenos, c, name) -> np.ndarray:
    """The samples of one column; empty cells may only end it (a shorter trace)."""
    valid = ~np.isnan(col)
    if not valid.any():
        raise FormatError(f"{name}: column {c + 1} has no samples")
    last = int(np.flatnonzero(valid)[-1])
    holes = np.flatnonzero(~valid[: last + 1])
    if holes.size:
        raise FormatError(
            f"{name}: line {linenos[holes[0]]}, column {c + 1}: empty cell inside the trace "
            "(expected a number; only the end of a column may be empty)"
        )
    return col[: last + 1]


_MONTHS = {
    m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())
}


def _text_date(text: str):
    """``2024-03-15``, ``15.03.2024``, ``20240315`` or ``15-MAR-2024`` -> date, else None."""
    import datetime as _dt

    t = text.strip()
    for pattern, order in (
        (r"(\d{4})-(\d{2})-(\d{2})", "ymd"),
        (r"(\d{1,2})\.(\d{1,2})\.(\d{4})", "dmy"),
        (r"(\d{4})(\d{2})(\d{2})", "ymd"),
        (r"(\d{1,2})-([A-Za-z]{3})-(\d{4})", "dMy"),
    ):
        m = re.fullmatch(pattern, t)
        if not m:
            continue
        a, b, c = m.groups()
        try:
            if order == "ymd":
                return _dt.date(int(a), int(b), int(c))
            if order == "dmy":
                return _dt.date(int(c), int(b), int(a))
            if b.lower() in _MONTHS:
                return _dt.date(int(c), _MONTHS[b.lower()], int(a))
        except ValueError:
            return None
    return None


def _identity(path) -> dict:
    """Preamble fields that ``header_fields`` maps to ``patient_id`` or ``exam_date``, for
    ``ncsproc.read``'s privacy step only (the identifier is pseudonymised or dropped there)."""
    path = Path(path)
    raw = path.read_bytes()[:MAX_BYTES]
    config, _source, _ = _config(path, raw[:4096])
    fields_map = config.get("header_fields", {})
    if not isinstance(fields_map, dict):
        fields_map = {}
    wanted = {k for k, v in fields_map.items() if v in IDENTITY_FIELDS}
    out: dict = {"patient_id": None, "exam_date": None}
    if not wanted:
        return out
    skip = config.get("skip_lines", 0)
    text = raw.decode(config.get("encoding", "utf-8-sig"), errors="replace")
    for lineno, line in enumerate(text.splitlines()[: skip if isinstance(skip, int) else 0], 1):
        m = re.match(r"^\s*([^:=\t;]+?)\s*[:=\t;]\s*(.*?)\s*$", line)
        if not m or m.group(1) not in wanted:
            continue
        target, value = fields_map[m.group(1)], m.group(2)
        if target == "patient_id":
            out["patient_id"] = value or None
        elif value:
            date = _text_date(value)
            if date is None:
                raise FormatError(
                    f"{path.name}: line {lineno} ({m.group(1)}): the exam date is not in a known "
                    "form; expected YYYY-MM-DD, DD.MM.YYYY, YYYYMMDD or DD-MMM-YYYY"
                )
            out["exam_date"] = date
    return out


# --------------------------------------------------------------------------------------------
# example and registration
# --------------------------------------------------------------------------------------------


def _example(folder: Path) -> Path:
    """A motor study exported as CSV (one column per stimulation site) with its sidecar."""
    import json

    from ..simulate import response_set

    traces, _ = response_set("motor", 3, seed=1, pretrigger=0.003)
    n = int(traces.n_samples.values.min())
    sites = ["wrist", "below elbow", "above elbow"]
    path = Path(folder) / "ulnar_motor.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("Time (ms)," + ",".join(s.title() for s in sites) + "\n")
        t0 = float(traces.t_start.values[0])
        for i in range(n):
            cells = [f"{(t0 + i / 20000.0) * 1e3:.4f}"] + [
                f"{traces.signal.values[k, i] * 1e3:.5f}" for k in range(3)
            ]
            f.write(",".join(cells) + "\n")
    sidecar = {
        "layout": "columns",
        "time_column": "Time (ms)",
        "time_unit": "ms",
        "units": "mV",
        "study": "L_ulnar_motor",
        "nerve": "ulnar",
        "side": "L",
        "modality": "motor",
        "record_site": "ADM",
        "columns_are": "stim_site",
        "stim_duration": "0.2 ms",
        "traces": [
            {"column": "Wrist", "distance": "7 cm"},
            {"column": "Below Elbow", "distance": "26 cm"},
            {"column": "Above Elbow", "distance": "36 cm"},
        ],
    }
    Path(str(path) + ".json").write_text(json.dumps(sidecar, indent=1), encoding="utf-8")
    return path


READER = Reader(
    name="text",
    description="delimited text (CSV/TSV/ASCII export) described by a JSON sidecar or a dialect",
    extensions=(".csv", ".tsv", ".txt", ".asc", ".dat"),
    sniff=_sniff,
    load=read_text,
    example=_example,
    sidecar_keys=STRUCTURE_KEYS,
    function="ncsproc.formats.text.read_text",
    identity=_identity,
)
