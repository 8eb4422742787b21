"""The wide table as files: CSV (fixed decimals, byte-identical reruns) and Parquet (typed)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .table import typed_frame
from .variables import Declarations, RegistryError, load_variables

__all__ = ["read_wide", "wide_csv_text", "write_wide"]


def _cell(v, value) -> str:
    if value is None or value is pd.NA:
        return ""
    if v.type == "number":
        return f"{float(value):.{v.decimals}f}"
    return str(value)


def wide_csv_text(table: pd.DataFrame, decl: Declarations | None = None) -> str:
    """The wide table as CSV text (what :func:`write_wide` writes to a ``.csv`` file)."""
    decl = decl or load_variables()
    cells = {
        v.name: [_cell(v, x) for x in table[v.name].astype(object).tolist()] for v in decl.variables
    }
    frame = pd.DataFrame(cells, columns=decl.names, dtype=object)
    return frame.to_csv(index=False, lineterminator="\n")


def _atomic(path: Path, write) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_wide(
    table: pd.DataFrame, path: str | os.PathLike, decl: Declarations | None = None
) -> Path:
    """Write the wide table to ``path``: ``.csv`` or ``.parquet`` (by the suffix).

    CSV: UTF-8, one header line of variable names, numbers with the variable's fixed decimals,
    empty cells for missing values. Parquet (pyarrow): integers as int64, numbers as float64,
    the rest as strings, nulls for missing values.
    """
    decl = decl or load_variables()
    path = Path(path)
    suffix = path.suffix.lower()
    frame = table[decl.names]
    if suffix == ".csv":
        text = wide_csv_text(frame, decl)
        return _atomic(path, lambda p: p.write_bytes(text.encode("utf-8")))
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise RegistryError(
                "Parquet needs pyarrow: pip install 'ncsproc[parquet]' (or pyarrow)"
            ) from None
        return _atomic(path, lambda p: frame.to_parquet(p, engine="pyarrow", index=False))
    raise RegistryError(f"{path.name}: expected a .csv or .parquet file name")


def read_wide(path: str | os.PathLike, decl: Declarations | None = None) -> pd.DataFrame:
    """Read a wide table written by :func:`write_wide` back, typed like ``build_table``."""
    decl = decl or load_variables()
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        raw = pd.read_parquet(path, engine="pyarrow")
        rows = raw.astype(object).where(raw.notna(), None).to_dict("records")
    else:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
        rows = []
        for rec in raw.to_dict("records"):
            row: dict[str, object] = {}
            for v in decl.variables:
                text = rec.get(v.name, "")
                if text == "":
                    row[v.name] = None
                elif v.type == "integer":
                    row[v.name] = int(text)
                elif v.type == "number":
                    row[v.name] = float(text)
                else:
                    row[v.name] = text
            rows.append(row)
    return typed_frame(rows, decl)
