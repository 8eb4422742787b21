"""push and export: the registry entry points (re-exported by ncsproc.registry)."""

from __future__ import annotations

import os
from pathlib import Path

from ..privacy import Pseudonymizer
from .db import DEFAULT_DB, PushReport, connect, write_table
from .files import write_wide
from .migrations import migrate
from .table import RegistryConfig, WideTable, build_table
from .variables import Declarations

__all__ = ["export", "push"]


def push(
    folder: str | os.PathLike,
    db: str = DEFAULT_DB,
    *,
    pseudonymizer: Pseudonymizer | None,
    centre: str | None = None,
    date_precision: str | None = None,
    config: RegistryConfig | None = None,
    variables: Declarations | None = None,
) -> PushReport:
    """Import an extract output folder into a registry database.

    The schema is created or migrated first; then each exam is written in its own transaction
    (all of it or nothing): inserted when new, updated when its values changed, left alone when
    they did not (a re-import changes nothing). Refused exams (invalid values, no provenance,
    an exam id already registered under another subject) and database failures are listed in
    the report; the other exams are still imported.

    Parameters
    ----------
    folder : path-like
        Output of ``ncsproc extract``.
    db : str
        Database URL (default ``sqlite:///registry.db``).
    pseudonymizer, centre, date_precision, config, variables
        As for :func:`build_table`.

    Returns
    -------
    PushReport
    """
    wide = build_table(
        folder,
        centre=centre,
        pseudonymizer=pseudonymizer,
        date_precision=date_precision,
        config=config,
        variables=variables,
    )
    engine = connect(db)
    try:
        report = PushReport(failed=list(wide.problems))
        report.migrations = migrate(engine, wide.declarations)
        write_table(engine, wide, report)
    finally:
        engine.dispose()
    return report


def export(
    folder: str | os.PathLike,
    out: str | os.PathLike | list,
    *,
    pseudonymizer: Pseudonymizer | None,
    centre: str | None = None,
    date_precision: str | None = None,
    config: RegistryConfig | None = None,
    variables: Declarations | None = None,
) -> WideTable:
    """Write the wide table of an extract folder to CSV and/or Parquet files.

    ``out`` is one path or a list (``.csv``, ``.parquet``). Refused exams are left out and
    listed in the returned table's ``problems``.
    """
    wide = build_table(
        folder,
        centre=centre,
        pseudonymizer=pseudonymizer,
        date_precision=date_precision,
        config=config,
        variables=variables,
    )
    for path in out if isinstance(out, (list, tuple)) else [out]:
        write_wide(wide.table, Path(path), wide.declarations)
    return wide
