"""Writing the cohort tables and ``cohort.h5`` from the per-exam parts, streaming.

The client reads the parts one exam at a time in ``exam_id`` order and appends them to every
output (CSV, Parquet when pyarrow is installed, HDF5), flushing every ~100,000 cells, so memory
does not grow with the cohort. Every output goes to a temporary file renamed into place at the
end.

Byte-identical tables whatever the batching, scheduler or worker count: a column's type is
decided over the whole cohort (integers mixed with floats are floats, anything else mixed is
text), floats are written with the fixed decimals of :func:`ncsproc.tables.write_csv` and
:func:`ncsproc.features.csv_decimals`, and the result is what ``write_csv`` would write for the
concatenation of the exams' tables (a test checks exactly that).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._version import __version__
from ..tables import CONTRACT_COLUMNS as TABLE_CONTRACT_COLUMNS
from ..tables import DEFAULT_TABLES_VERSION, layout_columns, to_layout
from ..units import MOTOR_AMPLITUDE_MODALITIES, column_unit
from .parts import decode_part

if TYPE_CHECKING:  # pandas is imported where used (a fast `ncsproc --help`)
    import pandas as pd

__all__ = [
    "merge_outputs",
    "CohortSchema",
    "TABLE_FILES",
    "CONTRACT_COLUMNS",
    "read_cohort_table",
    "open_cohort_traces",
    "merge_kinds",
    "column_units",
]

TABLE_FILES = ("responses", "segments", "nerves", "exams", "criteria", "sites", "reviews", "errors")
"""Tables written (``<name>.csv``); the first four and ``errors`` are the contract's;
``reviews`` lists the values recomputed from marker overrides (header only without them)."""

REVIEW_COLUMNS = {
    "responses": "reviewed",
    "sites": "reviewed",
    "nerves": "reviewed_traces",
    "exams": "reviewed_traces",
}
"""Text columns appended (last) to these tables when a run has ``--overrides``; empty for
exams and rows nobody reviewed."""

ERROR_COLUMNS = ("source_file", "error", "message", "exam_id", "stage")

CONTRACT_COLUMNS = {
    **TABLE_CONTRACT_COLUMNS,
    "criteria": ("criteria_set", "criterion", "exam_id", "study"),
    "sites": ("exam_id", "study", "stim_site"),
    "reviews": (),  # fixed by ncsproc.review.REVIEWS_COLUMNS (see merge_outputs)
    "errors": ERROR_COLUMNS,
}
"""Columns used when no exam produced a table at all (the header is still written)."""

_FLUSH_CELLS = 100_000  # rows x columns buffered before a flush (bounds the client's memory)
_TRACE_BLOCK = 256  # traces per HDF5 chunk of cohort.h5's signal (compressed in threads)
_COMPRESS_THREADS = 2


def column_units(name: str) -> str | None:
    """Unit of a table column from its suffix (``onset_ms`` -> ``ms``), None when unitless."""
    return column_unit(name)


def merge_kinds(kinds: set[str]) -> str:
    """Cohort-wide kind of a column from its per-exam kinds (``n``: column absent).

    Same kind -> that kind; integers, floats and absent -> float; anything else mixed ->
    object (written as text), as :func:`pandas.concat` would do.
    """
    present = kinds - {"n"}
    if not present:
        return "f"
    if len(kinds) == 1:
        return next(iter(kinds))
    if present <= {"f", "i"}:
        return "f"
    return "o"


def _decimals(columns: list[str]) -> dict[str, int]:
    """Decimals of every column as :func:`ncsproc.tables.write_csv` with
    :func:`ncsproc.features.csv_decimals` writes them (counts as integers, ``original_<c>`` as
    ``c``)."""
    import pandas as pd

    from ..features import csv_decimals
    from ..tables import ORIGINAL_PREFIX, column_decimals

    names = {c[len(ORIGINAL_PREFIX) :] if c.startswith(ORIGINAL_PREFIX) else c for c in columns}
    return column_decimals(columns, csv_decimals(pd.DataFrame(columns=sorted(names))))


def _text(v) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)


class _TableSink:
    """One table: CSV (+ Parquet) (+ a group of cohort.h5), appended in exam order."""

    def __init__(
        self,
        name,
        columns,
        kinds,
        total_rows,
        out: Path,
        tag: str,
        h5,
        parquet,
        fill=None,
        const=None,
    ):
        """``h5``: an open h5netcdf file in which the table's group is created (the data are
        written later through :meth:`attach`, with plain h5py, which is much faster).
        ``fill``: {column: value} for parts without that column (default: empty);
        ``const``: {column: value} written in every row whatever the parts hold."""
        import pandas as pd

        from ..tables import DEFAULT_DECIMALS

        self.name = name
        self.columns = list(columns)
        self.kinds = dict(kinds)
        self.fill = dict(fill or {})
        self.const = dict(const or {})
        self.dec = _decimals(self.columns)
        self.default_dec = DEFAULT_DECIMALS
        self.total = int(total_rows)
        self.written = 0
        self.buffer: list[tuple[dict, int]] = []
        self.buffered = 0
        self.final = out / f"{name}.csv"
        self.tmp = out / f".{name}.csv.{tag}.tmp"
        self.fh = open(self.tmp, "w", encoding="utf-8", newline="")
        self.fh.write(pd.DataFrame(columns=self.columns).to_csv(index=False, lineterminator="\n"))
        self.pq = None
        if parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            types = {"f": pa.float64(), "i": pa.int64(), "b": pa.bool_()}
            self.schema = pa.schema(
                [pa.field(c, types.get(self.kinds[c], pa.string())) for c in self.columns]
            )
            self.pq_final = out / f"{name}.parquet"
            self.pq_tmp = out / f".{name}.parquet.{tag}.tmp"
            self.pq = pq.ParquetWriter(self.pq_tmp, self.schema)
        self.h5vars = None
        if h5 is not None:
            import h5py

            g = (
                h5.create_group(f"tables/{name}")
                if "tables" not in h5.groups
                else h5.groups["tables"].create_group(name)
            )
            g.attrs["columns"] = json.dumps(self.columns)
            g.dimensions["row"] = self.total
            self.h5vars = {}
            for c in self.columns:
                kind = self.kinds[c]
                if kind == "f":
                    v = g.create_variable(c, ("row",), dtype="f8", fillvalue=np.nan)
                elif kind == "i":
                    v = g.create_variable(c, ("row",), dtype="i8")
                elif kind == "b":
                    v = g.create_variable(c, ("row",), dtype="i1")
                    v.attrs["dtype"] = "bool"
                else:
                    v = g.create_variable(c, ("row",), dtype=h5py.string_dtype())
                unit = column_units(c)
                if unit:
                    v.attrs["units"] = unit

    def attach(self, h5py_file) -> None:
        """Write the data through this open h5py file (after the netCDF layout is made)."""
        self.h5vars = {c: h5py_file[f"tables/{self.name}/{c}"] for c in self.columns}

    def append(self, cols: dict, n: int) -> None:
        if n == 0:
            return
        self.buffer.append((cols, n))
        self.buffered += n
        if self.buffered * len(self.columns) >= _FLUSH_CELLS:
            self.flush()

    def _column(self, c: str) -> np.ndarray:
        kind = self.kinds[c]
        parts = []
        for cols, n in self.buffer:
            a = cols.get(c)
            if c in self.const:
                a = np.full(n, self.const[c], dtype=object)
            elif a is None and c in self.fill:
                a = np.full(n, self.fill[c], dtype=object)
            elif a is None:
                a = np.full(n, np.nan) if kind in "fi" else np.full(n, np.nan, dtype=object)
            parts.append(a)
        if kind == "f":
            return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])
        if kind == "i":
            return np.concatenate([np.asarray(p, dtype=np.int64) for p in parts])
        if kind == "b":
            return np.concatenate([np.asarray(p, dtype=bool) for p in parts])
        return np.concatenate([np.asarray(p, dtype=object) for p in parts])

    def flush(self) -> None:
        import pandas as pd

        if not self.buffer:
            return
        n = self.buffered
        csv_cols, typed = {}, {}
        for c in self.columns:
            values = self._column(c)
            kind = self.kinds[c]
            if kind == "f":
                # exactly write_csv's f"{v:.{d}f}" (on Python floats: 4 x faster than on numpy
                # scalars), "" for NaN and inf; the typed copy is the text parsed back
                fmt = f"{{:.{self.dec.get(c, self.default_dec)}f}}".format
                finite = np.isfinite(values).tolist()
                text = [fmt(v) if ok else "" for v, ok in zip(values.tolist(), finite, strict=True)]
                csv_cols[c] = text
                typed[c] = np.array([float(t) if t else np.nan for t in text], dtype=np.float64)
            else:
                csv_cols[c] = values
                typed[c] = values
        frame = pd.DataFrame(csv_cols, columns=self.columns)
        frame.to_csv(self.fh, header=False, index=False, lineterminator="\n")
        text = {}  # text columns as the CSV shows them (None for an empty cell)
        for c in self.columns:
            kind = self.kinds[c]
            if kind == "s":
                text[c] = typed[c]
            elif kind not in "fib":
                text[c] = [_text(v) for v in typed[c]]
        if self.pq is not None:
            import pyarrow as pa

            arrays = []
            for c in self.columns:
                kind = self.kinds[c]
                if kind in "fib":
                    arrays.append(pa.array(typed[c], type=self.schema.field(c).type))
                else:
                    arrays.append(pa.array(text[c], type=pa.string()))
            self.pq.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        if self.h5vars is not None:
            sl = slice(self.written, self.written + n)
            for c in self.columns:
                kind = self.kinds[c]
                if kind == "b":
                    v = typed[c].astype(np.int8)
                elif kind in "fi":
                    v = typed[c]
                elif kind == "s":
                    v = typed[c]
                else:
                    v = np.array([t if t is not None else "" for t in text[c]], dtype=object)
                self.h5vars[c][sl] = v
        self.written += n
        self.buffer, self.buffered = [], 0

    def close(self) -> list[tuple[Path, Path]]:
        self.flush()
        self.fh.close()
        done = [(self.tmp, self.final)]
        if self.pq is not None:
            self.pq.close()
            done.append((self.pq_tmp, self.pq_final))
        return done

    def abort(self) -> None:
        try:
            self.fh.close()
            if self.pq is not None:
                self.pq.close()
        except Exception:
            pass
        for p in (self.tmp, getattr(self, "pq_tmp", None)):
            if p is not None and Path(p).exists():
                Path(p).unlink()


class _TraceSink:
    """The cohort trace set at the root of cohort.h5 (netCDF4 layout, like ncsproc.write)."""

    def __init__(self, h5, total: int, width: int, dtype, history: str):
        import h5py

        from ..schema import SCHEMA, TRACE_COORDS

        self.specs = TRACE_COORDS
        h5.attrs["schema"] = SCHEMA
        h5.attrs["history"] = history
        h5.dimensions["trace"] = total
        h5.dimensions["sample"] = width
        self.width = width
        self.dtype = np.dtype(dtype)
        sdt = h5py.string_dtype()
        for spec in TRACE_COORDS:
            if spec.kind == "str":
                v = h5.create_variable(spec.name, ("trace",), dtype=sdt)
            elif spec.kind == "float":
                v = h5.create_variable(spec.name, ("trace",), dtype="f8", fillvalue=np.nan)
            else:
                v = h5.create_variable(spec.name, ("trace",), dtype="i8")
            v.attrs["long_name"] = spec.description
            if spec.units is not None:
                v.attrs["units"] = spec.units
        rows = max(1, min(total, _TRACE_BLOCK))
        sig = h5.create_variable(
            "signal",
            ("trace", "sample"),
            dtype=self.dtype,
            chunks=(rows, max(1, width)),
            compression="gzip",
            compression_opts=1,
            fillvalue=np.nan,
        )
        sig.attrs["units"] = "V"
        sig.attrs["long_name"] = "voltage, active (G1) minus reference (G2)"
        sig.attrs["coordinates"] = " ".join(s.name for s in TRACE_COORDS if s.name != "trace")
        self.vars = None
        self.buffer: list[dict] = []
        self.buffered = 0
        self.written = 0
        self.pool = None
        self.pending: list = []

    def attach(self, h5py_file) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.vars = {name: h5py_file[name] for name in ["signal", *(s.name for s in self.specs)]}
        # gzip of whole chunks in threads (zlib releases the GIL), written with
        # write_direct_chunk: the bytes HDF5's deflate filter would store, made in parallel
        self.pool = ThreadPoolExecutor(max_workers=_COMPRESS_THREADS)

    def _put_chunk(self, row0: int, block: np.ndarray) -> None:
        import zlib

        if block.shape[0] < _TRACE_BLOCK:  # the last chunk is stored whole, NaN-filled
            full = np.full((_TRACE_BLOCK, self.width), np.nan, dtype=self.dtype)
            full[: block.shape[0]] = block
            block = full
        data = np.ascontiguousarray(block, dtype=self.dtype.newbyteorder("<"))
        self.pending.append((row0, self.pool.submit(zlib.compress, data.tobytes(), 1)))
        while len(self.pending) > 2 * _COMPRESS_THREADS:
            self._drain_one()

    def _drain_one(self) -> None:
        row0, fut = self.pending.pop(0)
        self.vars["signal"].id.write_direct_chunk((row0, 0), fut.result())

    def append(self, arrays: dict) -> None:
        n = arrays["signal"].shape[0]
        self.buffer.append(arrays)
        self.buffered += n
        if self.buffered >= _TRACE_BLOCK:
            self._write(final=False)

    def _write(self, final: bool) -> None:
        if not self.buffer:
            return
        n = self.buffered if final else (self.buffered // _TRACE_BLOCK) * _TRACE_BLOCK
        signal = np.full((self.buffered, self.width), np.nan, dtype=self.dtype)
        i = 0
        for a in self.buffer:
            s = a["signal"]
            signal[i : i + s.shape[0], : s.shape[1]] = s
            i += s.shape[0]
        coords = {
            spec.name: np.concatenate([a[spec.name] for a in self.buffer]) for spec in self.specs
        }
        sl = slice(self.written, self.written + n)
        for j in range(0, n, _TRACE_BLOCK):
            self._put_chunk(self.written + j, signal[j : min(n, j + _TRACE_BLOCK)])
        for spec in self.specs:
            v = coords[spec.name][:n]
            if spec.kind == "str":
                v = np.asarray(v, dtype=object)
            self.vars[spec.name][sl] = v
        self.written += n
        rest = self.buffered - n
        if rest:
            keep = {"signal": signal[n:]}
            keep.update({k: c[n:] for k, c in coords.items()})
            self.buffer, self.buffered = [keep], rest
        else:
            self.buffer, self.buffered = [], 0

    def close(self) -> None:
        self._write(final=True)
        while self.pending:
            self._drain_one()
        self.pool.shutdown()

    def abort(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def _utc() -> str:
    import datetime as _dt

    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def parquet_available() -> bool:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


class CohortSchema:
    """Cohort-wide columns, their kinds (merged in exam order), row and trace totals,
    accumulated from the part heads one exam at a time (nothing per exam is kept)."""

    def __init__(self):
        self.order: dict[str, dict[str, set]] = {name: {} for name in TABLE_FILES}
        self.seen: dict[str, dict[str, int]] = {name: {} for name in TABLE_FILES}
        self.nonempty = dict.fromkeys(TABLE_FILES, 0)
        self.rows = dict.fromkeys(TABLE_FILES, 0)
        self.empty_columns: dict[str, dict[str, str]] = {name: {} for name in TABLE_FILES}
        self.n_traces = 0
        self.width = 0
        self.dtypes: set[str] = set()
        self.part_errors = 0

    def add(self, head: dict) -> None:
        for name, t in head["schema"].items():
            if not t["rows"]:  # an empty table says nothing about the column types
                for c, kind in t["columns"]:
                    self.empty_columns[name].setdefault(c, kind)
                continue
            self.nonempty[name] += 1
            self.rows[name] += t["rows"]
            for c, kind in t["columns"]:
                self.order[name].setdefault(c, set()).add(kind)
                self.seen[name][c] = self.seen[name].get(c, 0) + 1
        tr = head.get("traces")
        if tr:
            self.n_traces += tr["n"]
            self.width = max(self.width, tr["width"])
            self.dtypes.add(tr["dtype"])
        self.part_errors += len(head["summary"].get("errors", []))

    def result(self, traces: bool):
        order = {name: {c: set(k) for c, k in cols.items()} for name, cols in self.order.items()}
        for name, cols in order.items():
            for c, kinds in cols.items():
                if self.seen[name][c] < self.nonempty[name]:
                    kinds.add("n")  # absent from some exams' tables: empty cells there
            for c, kind in self.empty_columns[name].items():  # columns of empty tables only
                if c not in cols:
                    cols[c] = {kind, "n"} if self.nonempty[name] else {kind}
        order["errors"] = {c: {"s"} for c in ERROR_COLUMNS}
        dtype = (
            np.result_type(*[np.dtype(d) for d in sorted(self.dtypes)])
            if self.dtypes
            else np.dtype("f8")
        )
        n = self.n_traces if traces else 0
        return order, dict(self.rows), n, self.width, dtype


def _review_schema(order: dict, review: dict | None) -> tuple[dict, dict, dict]:
    """Column order, forced kinds, fills and constants of the review columns and tables."""
    from ..review import REVIEWS_COLUMNS, REVIEWS_KINDS

    kinds: dict[str, dict[str, str]] = {name: {} for name in order}
    fills: dict[str, dict] = {name: {} for name in order}
    consts: dict[str, dict] = {name: {} for name in order}
    order["reviews"] = {c: {REVIEWS_KINDS[c]} for c in REVIEWS_COLUMNS}
    kinds["reviews"] = dict(REVIEWS_KINDS)
    if review is not None:
        from ..review import CHANGED_COLUMN, ORIGINAL_KEYS, is_original_column, original_columns

        consts["reviews"]["overrides_sha256"] = review["sha256"]
        for name in TABLE_FILES:
            col = REVIEW_COLUMNS.get(name)
            if name not in ORIGINAL_KEYS and col is None:
                continue
            given = order[name]
            order[name] = {c: k for c, k in given.items() if c != col and not is_original_column(c)}
            if not order[name]:  # a table without any column stays as the contract's header
                continue
            if col is not None:
                order[name][col] = {"s"}
                kinds[name][col] = "s"
                fills[name][col] = ""
            if name not in ORIGINAL_KEYS:
                continue
            order[name][CHANGED_COLUMN] = {"s"}
            kinds[name][CHANGED_COLUMN] = "s"
            fills[name][CHANGED_COLUMN] = ""
            # original_<c>: a float where c is a number, text ("" when empty) where c is text
            # or a boolean, the machine value itself where c is mixed (criteria.value)
            for oc, c in original_columns(name, list(order[name])):
                base = merge_kinds(order[name][c])
                kind = "f" if base in "fi" else ("s" if base in "bs" else "o")
                order[name][oc] = {kind}
                kinds[name][oc] = kind
                if kind == "s":
                    fills[name][oc] = ""
    return kinds, fills, consts


def _motor_traces(responses: dict) -> set:
    """Trace ids of an exam's motor-like traces (their reviews are in mV in layout 2)."""
    if "trace_id" not in responses or "modality" not in responses:
        return set()
    modality = np.asarray(responses["modality"], dtype=object)
    keep = np.isin(modality, MOTOR_AMPLITUDE_MODALITIES)
    return set(np.asarray(responses["trace_id"], dtype=object)[keep].tolist())


def merge_outputs(
    out: Path,
    entries: list[dict],
    errors: list[dict],
    *,
    settings,
    traces: bool,
    parquet: bool,
    schema: CohortSchema,
    review: dict | None = None,
) -> dict[str, tuple]:
    """Write every output of a run from the parts of its exams.

    Parameters
    ----------
    out : Path
        Output folder.
    entries : list of dict
        ``{"exam_id", "path"}`` per exam with a part, sorted by exam id.
    errors : list of dict
        Rows of errors.csv not stored in parts (planning, infrastructure).
    settings : Settings
    traces : bool
        Write the trace set into cohort.h5.
    parquet : bool
        Also write Parquet copies.
    schema : CohortSchema
        The part heads of ``entries``, accumulated.
    review : dict, optional
        ``{"sha256": ...}`` of the run's overrides file: the review columns are appended to
        every row of ``responses``, ``sites``, ``nerves`` and ``exams`` (empty where nobody
        reviewed) and the file's SHA-256 fills ``reviews.overrides_sha256``.

    Returns
    -------
    dict
        ``{file name: (sha256, bytes)}`` of every file written.
    """
    import h5netcdf
    import pandas as pd

    tag = f"{os.getpid()}"
    version = getattr(settings, "tables_version", DEFAULT_TABLES_VERSION)
    order, rows, n_traces, width, dtype = schema.result(traces)
    forced, fills, consts = _review_schema(order, review)
    error_rows = list(errors)
    rows["errors"] = len(error_rows) + schema.part_errors

    import h5py

    h5_tmp = out / f".cohort.h5.{tag}.tmp"
    sinks: dict[str, _TableSink] = {}
    h5 = None
    trace_sink = None
    try:
        # 1. the netCDF4 layout (groups, dimensions, variables, attributes) with h5netcdf
        with h5netcdf.File(h5_tmp, "w") as nc:
            nc.attrs["content"] = "ncsproc-cohort/1"
            nc.attrs["ncsproc_version"] = __version__
            nc.attrs["settings"] = json.dumps(settings.describe(), sort_keys=True)
            nc.attrs["tables"] = json.dumps(list(TABLE_FILES))
            nc.attrs["tables_version"] = int(version)
            nc.create_group("tables")
            for name in TABLE_FILES:
                cols = order[name] or {c: {"s"} for c in CONTRACT_COLUMNS[name]}
                kinds = {c: forced[name].get(c) or merge_kinds(k) for c, k in cols.items()}
                written = layout_columns(list(cols), version)
                kinds.update({c: "f" for c in written if c not in kinds})  # the mV columns
                sinks[name] = _TableSink(
                    name,
                    written,
                    kinds,
                    rows[name],
                    out,
                    tag,
                    nc,
                    parquet,
                    fill=fills[name],
                    const=consts[name],
                )
            trace_sink = None
            if traces and n_traces:
                history = (
                    f"{_utc()} ncsproc {__version__}: extract of {len(entries)} exam(s), "
                    f"settings {settings.name} ({settings.sha256[:12]})"
                )
                trace_sink = _TraceSink(nc, n_traces, width, dtype, history)
        # 2. the data, streamed exam by exam, with plain h5py
        h5 = h5py.File(h5_tmp, "r+")
        for sink in sinks.values():
            sink.attach(h5)
        if trace_sink is not None:
            trace_sink.attach(h5)
        all_errors = list(error_rows)
        for e in entries:
            data = Path(e["path"]).read_bytes()
            part = decode_part(data, traces=trace_sink is not None, frames=False)
            motor = _motor_traces(part["columns"].get("responses", {}))
            for name, cols in part["columns"].items():
                n = len(next(iter(cols.values()))) if cols else 0
                sinks[name].append(to_layout(cols, version, motor_traces=motor), n)
            all_errors.extend(part["summary"].get("errors", []))
            tr = part.get("traces")
            if trace_sink is not None and tr is not None:
                trace_sink.append(tr["arrays"])
        if trace_sink is not None:
            trace_sink.close()
        # errors: every file or exam that could not be processed, in a stable order
        err = pd.DataFrame(
            [{c: str(r.get(c, "")) for c in ERROR_COLUMNS} for r in all_errors],
            columns=list(ERROR_COLUMNS),
        )
        err = err.sort_values(list(ERROR_COLUMNS), kind="stable").reset_index(drop=True)
        sinks["errors"].append({c: err[c].to_numpy(dtype=object) for c in ERROR_COLUMNS}, len(err))
        renames = []
        for name in TABLE_FILES:
            renames.extend(sinks[name].close())
        h5.close()
        h5 = None
        renames.append((h5_tmp, out / "cohort.h5"))
    except BaseException:
        for s in sinks.values():
            s.abort()
        if trace_sink is not None:
            trace_sink.abort()
        if h5 is not None:
            try:
                h5.close()
            except Exception:
                pass
        if h5_tmp.exists():
            h5_tmp.unlink()
        raise
    written = {}
    for tmp, final in renames:
        os.replace(tmp, final)
        written[final.name] = _sha256(final)
    if not parquet:
        for name in TABLE_FILES:
            stale = out / f"{name}.parquet"
            if stale.exists():
                stale.unlink()
    return written


def read_cohort_table(path: str | os.PathLike, name: str) -> pd.DataFrame:
    """One table of a ``cohort.h5`` as a DataFrame (columns in the CSV's order)."""
    import pandas as pd
    import xarray as xr

    with xr.open_dataset(path, engine="h5netcdf", group=f"tables/{name}") as ds:
        columns = json.loads(ds.attrs["columns"])
        df = ds.to_dataframe().reset_index(drop=True) if ds.sizes.get("row", 0) else None
    if df is None:
        return pd.DataFrame(columns=columns)
    return df[columns]


def open_cohort_traces(path: str | os.PathLike):
    """The cohort trace set of a ``cohort.h5`` (same as ``ncsproc.read(path)``)."""
    from ..storage import read_native

    return read_native(path)
