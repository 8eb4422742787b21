"""Per-exam part files: the cached result of one exam (tables, errors, optionally traces).

A part is one file, ``DIR/.ncsproc/parts/<key[:2]>/<key>.part``, written atomically by the task
that computed the exam and read back by the client when it writes the cohort tables. Layout::

    b"NCSPART1" | n_a (8 bytes LE) | A (UTF-8 JSON) | n_b (8 bytes LE) | B (UTF-8 JSON) | blob

``A`` is small: the exam's summary and the schema of its tables (columns, kinds, rows) and
traces (count, width, dtype), so the client can plan the cohort files reading only ``A``.
``B`` holds every table column (strings and mixed columns as JSON lists, exact: Python's float
repr round-trips) and the offsets of the binary arrays (numeric columns and the trace samples,
little endian; the samples zlib-compressed). Reading never
unpickles anything, so a part cannot run code; the catalogue keeps each part's SHA-256 and the
client checks it before use.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas is imported where used (a fast `ncsproc --help`)
    import pandas as pd

__all__ = [
    "encode_part",
    "decode_part",
    "read_part_head",
    "write_atomic",
    "column_kind",
    "table_columns",
    "PART_MAGIC",
]

PART_MAGIC = b"NCSPART1"


def column_kind(values) -> str:
    """``f`` float, ``i`` integer, ``b`` bool, ``s`` strings only, ``j`` anything else
    (of a numpy array or a pandas Series)."""
    kind = values.dtype.kind
    if kind == "f":
        return "f"
    if kind in "iu":
        return "i"
    if kind == "b":
        return "b"
    if all(type(v) is str for v in (values.tolist() if hasattr(values, "tolist") else values)):
        return "s"
    return "j"


def table_columns(df: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """A table as ``[(name, numpy array), ...]`` (what :func:`encode_part` stores), so that a
    batch table is converted once and sliced per exam."""
    return [(str(name), df[name].to_numpy()) for name in df.columns]


def _jsonable(v):
    import pandas as pd

    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return None if math.isnan(v) else v
    if isinstance(v, str):
        return v
    if v is pd.NA or v is pd.NaT:
        return None
    return str(v)


class _Blob:
    def __init__(self):
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> tuple[int, int]:
        off = self.size
        self.parts.append(data)
        self.size += len(data)
        return off, len(data)


def _encode_array(arr: np.ndarray, blob: _Blob, compress: bool = False) -> dict:
    le = arr.dtype.newbyteorder("<")
    data = np.ascontiguousarray(arr).astype(le, copy=False).tobytes()
    if compress:
        data = zlib.compress(data, 1)
    off, n = blob.add(data)
    return {
        "dtype": le.str,
        "shape": list(arr.shape),
        "offset": off,
        "nbytes": n,
        "zlib": bool(compress),
    }


def _encode_table(table, blob: _Blob) -> dict:
    import pandas as pd

    columns = table_columns(table) if isinstance(table, pd.DataFrame) else table
    cols = []
    rows = 0
    for name, values in columns:
        rows = len(values)
        kind = column_kind(values)
        entry: dict = {"name": name, "kind": kind}
        if kind == "f":
            entry["array"] = _encode_array(np.asarray(values, dtype=np.float64), blob)
        elif kind == "i":
            entry["array"] = _encode_array(np.asarray(values, dtype=np.int64), blob)
        elif kind == "b":
            entry["array"] = _encode_array(np.asarray(values, dtype=bool), blob)
        elif kind == "s":
            entry["values"] = values.tolist()
        else:
            entry["values"] = [_jsonable(v) for v in values.tolist()]
        cols.append(entry)
    return {"rows": int(rows), "columns": cols}


def encode_part(summary: dict, tables: dict, traces: dict | None = None) -> bytes:
    """Serialise one exam's summary, tables and (optionally) traces to part bytes.

    ``tables``: name -> DataFrame, or name -> ``[(column, numpy array), ...]``
    (:func:`table_columns`).

    ``traces``: ``{"signal": 2-D array, "signal_attrs": dict, "coords": {name: 1-D array},
    "attrs": {name: dict}}`` (one exam's trace set as arrays).
    """
    blob = _Blob()
    header: dict = {"tables": {}, "traces": None}
    schema: dict = {}
    for name, df in tables.items():
        header["tables"][name] = t = _encode_table(df, blob)
        schema[name] = {
            "rows": t["rows"],
            "columns": [[c["name"], c["kind"]] for c in t["columns"]],
        }
    tr_schema = None
    if traces is not None:
        tr: dict = {"coords": {}, "attrs": {}}
        tr["signal"] = _encode_array(traces["signal"], blob, compress=True)
        tr["signal_attrs"] = {k: str(v) for k, v in traces["signal_attrs"].items()}
        for name, values in traces["coords"].items():
            entry = {"attrs": {k: str(v) for k, v in traces["attrs"][name].items()}}
            if values.dtype.kind in "OUS":
                entry["values"] = [str(v) for v in values.tolist()]
            else:
                entry["array"] = _encode_array(values, blob)
            tr["coords"][name] = entry
        header["traces"] = tr
        tr_schema = {
            "n": int(traces["signal"].shape[0]),
            "width": int(traces["signal"].shape[1]),
            "dtype": traces["signal"].dtype.str,
        }
    a = json.dumps(
        {"summary": summary, "schema": schema, "traces": tr_schema},
        separators=(",", ":"),
        allow_nan=True,
    ).encode("utf-8")
    b = json.dumps(header, separators=(",", ":"), allow_nan=True).encode("utf-8")
    return b"".join(
        [PART_MAGIC, len(a).to_bytes(8, "little"), a, len(b).to_bytes(8, "little"), b, *blob.parts]
    )


def read_part_head(path: str | os.PathLike) -> dict:
    """Only the small first header of a part file: ``{"summary", "schema", "traces"}``."""
    with open(path, "rb") as fh:
        start = fh.read(16)
        if start[:8] != PART_MAGIC:
            raise ValueError(f"{Path(path).name}: not an ncsproc part file (bad magic)")
        n = int.from_bytes(start[8:16], "little")
        return json.loads(fh.read(n).decode("utf-8"))


def _decode_array(entry: dict, blob: memoryview) -> np.ndarray:
    raw = blob[entry["offset"] : entry["offset"] + entry["nbytes"]]
    if entry.get("zlib"):
        raw = zlib.decompress(raw)
    # a copy, so that the part's bytes are not kept alive by the arrays cut from them
    arr = np.frombuffer(raw, dtype=np.dtype(entry["dtype"])).copy()
    return arr.reshape(entry["shape"])


def decode_part(data: bytes, *, traces: bool = False, frames: bool = True) -> dict:
    """Inverse of :func:`encode_part`: ``{"summary", "tables", "columns", "schema", "traces"}``.

    ``columns`` maps a table name to ``{column: numpy array}`` (floats, int64, bools, or object
    arrays of strings and mixed values with NaN for missing); ``tables`` the same as DataFrames
    (when ``frames``); ``schema`` ``[(column, kind), ...]``; ``traces`` (when asked for and
    present) ``{"arrays": {"signal", <coordinate>...}, "attrs": {...}}``.
    """
    import pandas as pd

    if data[:8] != PART_MAGIC:
        raise ValueError("not an ncsproc part file (bad magic)")
    na = int.from_bytes(data[8:16], "little")
    head = json.loads(data[16 : 16 + na].decode("utf-8"))
    nb = int.from_bytes(data[16 + na : 24 + na], "little")
    header = json.loads(data[24 + na : 24 + na + nb].decode("utf-8"))
    blob = memoryview(data)[24 + na + nb :]
    tables, schema, columns = {}, {}, {}
    for name, t in header["tables"].items():
        cols = {}
        for c in t["columns"]:
            kind = c["kind"]
            if kind in "fib":
                cols[c["name"]] = _decode_array(c["array"], blob)
            elif kind == "s":
                cols[c["name"]] = np.array(c["values"], dtype=object)
            else:
                cols[c["name"]] = np.array(
                    [np.nan if v is None else v for v in c["values"]], dtype=object
                )
        columns[name] = cols
        schema[name] = [(c["name"], c["kind"]) for c in t["columns"]]
        if frames:
            tables[name] = pd.DataFrame(cols, columns=[c["name"] for c in t["columns"]])
    out = {
        "summary": head["summary"],
        "tables": tables,
        "columns": columns,
        "schema": schema,
        "traces": None,
    }
    if traces and header.get("traces") is not None:
        tr = header["traces"]
        arrays = {"signal": _decode_array(tr["signal"], blob)}
        attrs = {"signal": tr["signal_attrs"]}
        for name, entry in tr["coords"].items():
            if "values" in entry:
                arrays[name] = np.array(entry["values"], dtype=object)
            else:
                arrays[name] = _decode_array(entry["array"], blob)
            attrs[name] = entry["attrs"]
        out["traces"] = {"arrays": arrays, "attrs": attrs}
    return out


def write_atomic(path: str | os.PathLike, data: bytes) -> str:
    """Write bytes to ``path`` through a temporary file and a rename; return their SHA-256.

    No fsync: a killed process never leaves a half-written file under the final name, and after
    a power loss a damaged part fails its SHA-256 check and is recomputed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(data):x}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return hashlib.sha256(data).hexdigest()
