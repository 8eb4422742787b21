"""``visits.csv``, ``trajectories.csv`` and ``subjects.csv`` of a cohort run (longitudinal
follow-up).

Written by :func:`ncsproc.pipeline.extract` after the merge, from ``nerves.csv``,
``exams.csv`` and the exams' day numbers (carried in the part summaries; shifted by each
subject's secret offset, so no real date is involved). Always written, with their headers,
even when no subject has two exams. A rerun that changes nothing rewrites nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where used (a fast `ncsproc --help`)
    import pandas as pd


__all__ = ["FOLLOWUP_FILES", "write_followup"]

FOLLOWUP_FILES = ("visits", "trajectories", "subjects")

_DECIMALS = {
    "days_since_first": 0,
    "followup_days": 0,
    "red_flag_days": 0,
    "change_from_first_pct": 1,
}

_NERVE_COLUMNS = (
    "exam_id",
    "nerve",
    "side",
    "modality",
    "inexcitable",
    "snap_amp_uv",
    "scv_m_s",
    "distal_amp_uv",
    "dml_ms",
    "cv_m_s",
    "tli",
    "f_min_ms",
    "amp_lln_uv",
    "scv_lln_m_s",
    "dml_uln_ms",
    "cv_lln_m_s",
    "f_min_uln_ms",
)


def _read(path: Path, wanted) -> pd.DataFrame:
    import pandas as pd

    head = pd.read_csv(path, nrows=0).columns
    cols = [c for c in wanted if c in head]
    text = {"exam_id", "subject_id", "nerve", "side", "modality", "inexcitable", "pattern"}
    return pd.read_csv(
        path,
        usecols=cols,
        dtype={c: str for c in cols if c in text},
        keep_default_na=False,
        na_values={c: [""] for c in cols if c not in text},
    )


def _replace_if_changed(tmp: Path, target: Path) -> bool:
    if target.is_file() and target.read_bytes() == tmp.read_bytes():
        tmp.unlink()
        return False
    os.replace(tmp, target)
    return True


def write_followup(
    out: Path,
    exam_days: dict[str, int | None],
    *,
    parquet: bool,
    rule=None,
    tables_version: int = 1,
) -> dict[str, pd.DataFrame]:
    """Compute and write the follow-up tables of the run in ``out``; return them.

    Parameters
    ----------
    out : Path
        The output folder (``nerves.csv`` and ``exams.csv`` already written).
    exam_days : dict
        Exam id -> shifted day number (or None when the exam's date is unknown).
    parquet : bool
        Also write Parquet copies.
    rule : path-like or RedFlagRule, optional
        Red-flag rule file (default: the shipped one).
    tables_version : int
        Layout of the tables in ``out`` and of those written (:mod:`ncsproc.tables`): the
        returned tables are in layout 1 whatever it is.
    """
    from ..features.followup import followup_tables
    from ..tables import from_layout, layout_columns, layout_table, write_csv

    wanted = layout_columns(_NERVE_COLUMNS, tables_version)
    nerves = from_layout(_read(out / "nerves.csv", wanted), tables_version)
    exams = _read(out / "exams.csv", ("exam_id", "subject_id", "pattern"))
    tables = followup_tables(nerves, exams, exam_days, rule)
    staging = out / ".ncsproc" / "followup"
    staging.mkdir(parents=True, exist_ok=True)
    for name in FOLLOWUP_FILES:
        table = layout_table(tables[name], tables_version)
        tmp = staging / f"{name}.csv"
        write_csv(table, tmp, decimals=_DECIMALS)
        _replace_if_changed(tmp, out / f"{name}.csv")
        if parquet:
            ptmp = staging / f"{name}.parquet"
            table.reset_index(drop=True).to_parquet(ptmp, index=False)
            _replace_if_changed(ptmp, out / f"{name}.parquet")
        else:
            stale = out / f"{name}.parquet"
            if stale.exists():
                stale.unlink()
    return tables
