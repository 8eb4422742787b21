"""Versioned registry schema and its migrations.

Schema version ``N`` is what migrations ``1..N`` built:

* **1** (initial): ``ncs_exam`` with the columns of every variable declared ``since = 1``,
  ``ncs_exam_source`` and ``ncsproc_registry_migrations``;
* **N >= 2**: ``ALTER TABLE ncs_exam ADD COLUMN`` for every variable declared ``since = N``
  (new variables are added this way, never renamed or re-typed);
* **2** (follow-up, issue 17): ``visit``, ``since_first_days``, ``followup_days``,
  ``sensory_red_flag``, and the view ``ncs_visit`` (one row per exam: centre, subject
  pseudonym, exam id, visit, days since the first).

The applied versions are rows of ``ncsproc_registry_migrations`` with a checksum of the columns
each one created; a database whose checksum differs from this ncsproc's (built from other
declarations) or whose version is newer is refused rather than guessed at. All pending
migrations run in one transaction (PostgreSQL and, with ncsproc's connection setup, SQLite have
transactional DDL), under an advisory lock on PostgreSQL so that two pushes cannot migrate at
once.

Released checksums are frozen in :data:`FROZEN_CHECKSUMS`: changing a released variable's name
or storage type makes :func:`list_migrations` raise, so it cannot happen by accident.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .._version import __version__
from .schema import (
    EXAM_TABLE,
    MIGRATIONS_TABLE,
    _now,
    _sa,
    display_url,
    migrations_table,
    schema_tables,
)
from .variables import Declarations, RegistryError, load_variables

__all__ = [
    "FOLLOWUP_VERSION",
    "FROZEN_CHECKSUMS",
    "Migration",
    "check_schema",
    "list_migrations",
    "migrate",
    "schema_version",
    "VISIT_VIEW",
]

FROZEN_CHECKSUMS: dict[tuple[str, int], str] = {
    ("imagine-ncs", 1): "2e3d3d98b5397921b62fbf5c4fa4641cb44e724bf84d9b5330e04bf895fe2adb",
    ("imagine-ncs", 2): "d8e0822a04d0e207d1450aca0b32836661817c358d41ec16bc3192f5b4b8d7bd",
}
"""(declarations id, schema version) -> checksum of the columns that version created."""

FOLLOWUP_VERSION = 2
"""Schema version that added the follow-up variables and the :data:`VISIT_VIEW` view."""
VISIT_VIEW = "ncs_visit"
"""View of the visits: one row per exam (centre, subject pseudonym, exam id, visit number,
days since the subject's first exam)."""

_LOCK_KEY = 0x6E63_7372  # "ncsr": pg_advisory_xact_lock key of registry migrations


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    checksum: str
    apply: Callable


def _initial(decl: Declarations):
    def apply(conn):
        sa = _sa()
        md = sa.MetaData()
        exam, source = schema_tables(decl, since=1, metadata=md)
        md.create_all(conn, tables=[exam, source])

    return apply


def _add_columns(decl: Declarations, version: int):
    def apply(conn):
        sa = _sa()
        prep = conn.dialect.identifier_preparer
        for v in decl.variables:
            if v.since != version:
                continue
            name, kind = v.column_spec()
            typ = {"integer": sa.BigInteger(), "real": sa.Float(precision=53)}.get(kind, sa.Text())
            # identifiers from the declarations (naming rule checked), types from this table
            ddl = (
                f"ALTER TABLE {prep.quote(EXAM_TABLE)} ADD COLUMN {prep.quote(name)} "
                f"{typ.compile(dialect=conn.dialect)}"
            )
            conn.exec_driver_sql(ddl)
        if version == FOLLOWUP_VERSION and {"visit", "since_first_days"} <= set(decl.names):
            q = prep.quote
            conn.exec_driver_sql(
                f"CREATE VIEW {q(VISIT_VIEW)} AS SELECT centre, subject_pseudonym, exam_id, "
                f"visit, since_first_days FROM {q(EXAM_TABLE)}"
            )

    return apply


def list_migrations(decl: Declarations | None = None) -> list[Migration]:
    """The migrations of a set of declarations (version 1 .. ``schema_version``)."""
    decl = decl or load_variables()
    out = []
    for version in range(1, decl.schema_version + 1):
        checksum = decl.columns_checksum(since=version)
        frozen = FROZEN_CHECKSUMS.get((decl.id, version))
        if frozen is not None and frozen != checksum:
            raise RegistryError(
                f"{decl.label}: the variables of released schema version {version} changed "
                "(a name or storage type); released variables are never changed: declare new "
                f"variables with since = {decl.schema_version + 1} and raise [meta] schema_version"
            )
        if version == 1:
            out.append(Migration(1, "initial schema", checksum, _initial(decl)))
        else:
            out.append(
                Migration(
                    version,
                    f"add the variables of schema version {version}",
                    checksum,
                    _add_columns(decl, version),
                )
            )
    return out


def _applied(conn) -> dict[int, str]:
    sa = _sa()
    if not sa.inspect(conn).has_table(MIGRATIONS_TABLE):
        return {}
    table = migrations_table()
    return {
        r.version: r.checksum for r in conn.execute(sa.select(table.c.version, table.c.checksum))
    }


def _check(applied: dict[int, str], known: list[Migration], where: str, allow_newer=False) -> None:
    latest = max(m.version for m in known)
    newer = sorted(v for v in applied if v > latest)
    if newer and not allow_newer:
        raise RegistryError(
            f"{where}: the registry schema is at version {max(applied)}, newer than this "
            f"ncsproc knows ({latest}); upgrade ncsproc"
        )
    for m in known:
        if m.version in applied and applied[m.version] != m.checksum:
            raise RegistryError(
                f"{where}: schema version {m.version} of this database was built from other "
                "variable declarations (checksum differs); refusing to write into it"
            )


def migrate(engine, decl: Declarations | None = None) -> list[int]:
    """Apply the pending migrations in one transaction; return the versions applied."""

    sa = _sa()
    decl = decl or load_variables()
    known = list_migrations(decl)
    where = display_url(str(engine.url))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        md = sa.MetaData()
        table = migrations_table(md)
        md.create_all(conn, tables=[table], checkfirst=True)
        applied = _applied(conn)
        _check(applied, known, where)
        done = []
        for m in known:
            if m.version in applied:
                continue
            m.apply(conn)
            conn.execute(
                sa.insert(table).values(
                    version=m.version,
                    name=m.name,
                    checksum=m.checksum,
                    ncsproc_version=__version__,
                    applied_at=_now(),
                )
            )
            done.append(m.version)
    return done


def schema_version(engine) -> int:
    """The registry schema version of a database (0: no registry schema)."""
    with engine.connect() as conn:
        applied = _applied(conn)
    return max(applied) if applied else 0


def check_schema(engine, decl: Declarations | None = None, *, allow_newer: bool = False) -> None:
    """Refuse a database without the registry schema, older than the declarations, or built
    from other declarations (or newer than them, unless ``allow_newer``: reading the known
    columns of a newer registry is safe, writing into it is not)."""

    decl = decl or load_variables()
    known = list_migrations(decl)
    where = display_url(str(engine.url))
    with engine.connect() as conn:
        applied = _applied(conn)
    if not applied:
        raise RegistryError(f"{where}: no ncsproc registry in this database (push to it first)")
    _check(applied, known, where, allow_newer=allow_newer)
    pending = [m.version for m in known if m.version not in applied]
    if pending:
        raise RegistryError(
            f"{where}: registry schema version {max(applied)}, this ncsproc needs "
            f"{decl.schema_version}; run: ncsproc registry migrate --db URL"
        )
