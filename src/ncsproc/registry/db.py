"""The registry database: SQLite (embedded default) or PostgreSQL, through SQLAlchemy Core.

Tables (all names fixed; columns generated from the variable declarations):

* ``ncs_exam``: one row per exam: ``pk``, every declared variable (``text``, ``integer`` or
  ``double``), ``record_sha256`` (hash of the values), ``imported_at``, ``updated_at``; unique
  key (``centre``, ``subject_pseudonym``, ``exam_id``);
* ``ncs_exam_source``: ``exam_pk``, ``ordinal``, ``sha256``: the SHA-256 of each source file;
* ``ncsproc_registry_migrations``: ``version``, ``name``, ``checksum``, ``ncsproc_version``,
  ``applied_at``: the schema versions applied (:mod:`ncsproc.registry.migrations`).

Every statement is built with SQLAlchemy Core and sends values as bound parameters; identifiers
come from the declarations only (checked against the naming rule). One transaction per exam:
an exam is written completely or not at all, and an exam whose values did not change is not
written at all (a re-import changes nothing, not even a time stamp).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from .migrations import check_schema
from .schema import (
    EXAM_TABLE,
    KEY_COLUMNS,
    META_COLUMNS,
    MIGRATIONS_TABLE,
    SOURCE_TABLE,
    _normalise_url,
    _now,
    _sa,
    display_url,
    migrations_table,
    schema_tables,
)
from .table import typed_frame
from .variables import Declarations, RegistryError, load_variables

DEFAULT_DB = "sqlite:///registry.db"

__all__ = [
    "DEFAULT_DB",
    "EXAM_TABLE",
    "MIGRATIONS_TABLE",
    "SOURCE_TABLE",
    "PushReport",
    "connect",
    "display_url",
    "pull",
    "migrations_table",
    "schema_tables",
    "write_table",
]


def connect(url: str, *, readonly: bool = False):
    """A SQLAlchemy engine for ``url`` (``sqlite:///file.db``, ``postgresql://user@host/db``;
    plain ``postgresql://`` URLs use psycopg 3).

    SQLite gets transactional DDL (ncsproc issues ``BEGIN IMMEDIATE`` itself, so that concurrent
    writers queue instead of failing; ``BEGIN`` when ``readonly``) and foreign keys. With
    ``readonly``, a SQLite file that does not exist is an error instead of a new empty file.
    """
    sa = _sa()
    url = _normalise_url(str(url))
    try:
        parsed = sa.engine.make_url(url)
    except Exception:
        raise RegistryError(
            f"{url!r} is not a database URL (e.g. sqlite:///registry.db or "
            "postgresql://user@host:5432/registry)"
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise RegistryError(
            f"{display_url(url)}: only SQLite and PostgreSQL registries are supported"
        )
    if readonly and parsed.get_backend_name() == "sqlite":
        from pathlib import Path

        database = parsed.database or ""
        if database not in ("", ":memory:") and not Path(database).is_file():
            raise RegistryError(f"{display_url(url)}: no such SQLite file (push to it first)")
    try:
        engine = sa.create_engine(parsed)
    except ImportError as exc:
        raise RegistryError(
            f"{display_url(url)}: the database driver is missing ({exc}); for PostgreSQL: "
            "pip install 'ncsproc[postgres]'"
        ) from None
    if parsed.get_backend_name() == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # let ncsproc say BEGIN (DDL included)
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn):
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


@dataclass
class PushReport:
    """What :func:`ncsproc.registry.push` did, exam by exam (exam ids)."""

    inserted: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    migrations: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        n = len(self.inserted) + len(self.updated) + len(self.unchanged) + len(self.failed)
        return (
            f"{n} exams: {len(self.inserted)} inserted, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.failed)} refused or failed"
        )


class _Conflict(Exception):
    pass


def _write_exam(conn, exam, source, row: dict, sha: str, digests: list[str]) -> str:
    sa = _sa()
    key = [exam.c[k] == row[k] for k in KEY_COLUMNS]
    existing = conn.execute(
        sa.select(exam.c.pk, exam.c.record_sha256).where(*key).with_for_update()
    ).first()
    other = conn.execute(
        sa.select(exam.c.pk).where(
            exam.c.centre == row["centre"],
            exam.c.exam_id == row["exam_id"],
            exam.c.subject_pseudonym != row["subject_pseudonym"],
        )
    ).first()
    if other is not None:
        raise _Conflict(
            "this centre's exam id is already in the registry under another subject pseudonym "
            "(another key, or a changed subject id?); nothing was written"
        )
    if existing is not None and existing.record_sha256 == sha:
        return "unchanged"
    now = _now()
    values = {k: row[k] for k in row}
    values["record_sha256"] = sha
    if existing is None:
        result = conn.execute(sa.insert(exam).values(**values, imported_at=now, updated_at=now))
        pk = result.inserted_primary_key[0]
        status = "inserted"
    else:
        pk = existing.pk
        conn.execute(sa.update(exam).where(exam.c.pk == pk).values(**values, updated_at=now))
        conn.execute(sa.delete(source).where(source.c.exam_pk == pk))
        status = "updated"
    conn.execute(
        sa.insert(source),
        [{"exam_pk": pk, "ordinal": i, "sha256": d} for i, d in enumerate(digests)],
    )
    return status


def _db_message(exc: Exception) -> str:
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    return f"database refused the exam ({type(orig).__name__}: {first}); nothing was written"


def write_table(engine, wide, report: PushReport | None = None) -> PushReport:
    """Write a :class:`~ncsproc.registry.table.WideTable` into a migrated registry database,
    one transaction per exam."""
    sa = _sa()
    report = report or PushReport()
    exam, source = schema_tables(wide.declarations)
    records = wide.table.astype(object).where(wide.table.notna(), None).to_dict("records")
    for row in records:
        rid = row["record_id"]
        try:
            with engine.begin() as conn:
                status = _write_exam(
                    conn, exam, source, row, wide.record_sha256[rid], wide.sources[rid]
                )
        except _Conflict as exc:
            report.failed.append((row["exam_id"], str(exc)))
            continue
        except sa.exc.SQLAlchemyError as exc:
            report.failed.append((row["exam_id"], _db_message(exc)))
            continue
        getattr(report, status).append(row["exam_id"])
    return report


def _has_table(engine, name: str) -> bool:
    sa = _sa()
    return sa.inspect(engine).has_table(name)


def pull(
    db: str,
    *,
    centre: str | None = None,
    meta: bool = False,
    variables: Declarations | None = None,
) -> pd.DataFrame:
    """Read the registry back as the wide table (one row per exam, declared variables, typed).

    Parameters
    ----------
    db : str
        Database URL.
    centre : str, optional
        Only this centre's exams.
    meta : bool
        Also return ``record_sha256``, ``imported_at`` and ``updated_at``.
    variables : Declarations, optional

    Returns
    -------
    pandas.DataFrame
        Sorted by (centre, subject_pseudonym, exam_id).
    """

    sa = _sa()
    decl = variables or load_variables()
    engine = connect(db, readonly=True)
    try:
        check_schema(engine, decl, allow_newer=True)
        exam, _ = schema_tables(decl)
        cols = [exam.c[n] for n in decl.names] + ([exam.c[m] for m in META_COLUMNS] if meta else [])
        query = sa.select(*cols).order_by(*[exam.c[k] for k in KEY_COLUMNS])
        if centre is not None:
            query = query.where(exam.c.centre == centre)
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
    finally:
        engine.dispose()
    frame = typed_frame(rows, decl)
    if meta:
        for m in META_COLUMNS:
            frame[m] = pd.array([r[m] for r in rows], dtype=pd.StringDtype("python"))
    return frame


def dump_text(engine) -> Iterable[str]:
    """Every value of every table of the database as text (for privacy checks)."""
    sa = _sa()
    insp = sa.inspect(engine)
    md = sa.MetaData()
    with engine.connect() as conn:
        for name in insp.get_table_names():
            table = sa.Table(name, md, autoload_with=conn)
            yield name
            for col in table.columns:
                yield col.name
            for row in conn.execute(sa.select(table)):
                for value in row:
                    if value is not None:
                        yield str(value)
