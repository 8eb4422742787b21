"""The registry's table definitions (SQLAlchemy Core), shared by :mod:`.db` and :mod:`.migrations`.

Both the database access (push, pull) and the migrations build the same tables; they live here
so that neither module has to import the other to get them (``db`` imports ``migrations`` to
check a database's schema, ``migrations`` imports only this module).
"""

from __future__ import annotations

import datetime as _dt

from .variables import Declarations, RegistryError

__all__ = [
    "EXAM_TABLE",
    "KEY_COLUMNS",
    "META_COLUMNS",
    "MIGRATIONS_TABLE",
    "SOURCE_TABLE",
    "display_url",
    "migrations_table",
    "schema_tables",
]

EXAM_TABLE = "ncs_exam"
SOURCE_TABLE = "ncs_exam_source"
MIGRATIONS_TABLE = "ncsproc_registry_migrations"
META_COLUMNS = ("record_sha256", "imported_at", "updated_at")
KEY_COLUMNS = ("centre", "subject_pseudonym", "exam_id")


def _sa():
    try:
        import sqlalchemy
    except ImportError:  # pragma: no cover - a dependency of ncsproc
        raise RegistryError(
            "the registry database needs SQLAlchemy 2: pip install 'sqlalchemy>=2'"
        ) from None
    return sqlalchemy


def _normalise_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def display_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    sa = _sa()
    try:
        return sa.engine.make_url(_normalise_url(str(url))).render_as_string(hide_password=True)
    except Exception:
        return "<database URL>"


def _column_type(sa, kind: str):
    if kind == "integer":
        return sa.BigInteger()
    if kind == "real":
        return sa.Float(precision=53)
    return sa.Text()


def schema_tables(decl: Declarations, since: int | None = None, metadata=None):
    """SQLAlchemy ``Table`` objects of the registry (variables up to schema version ``since``)."""
    sa = _sa()
    md = metadata if metadata is not None else sa.MetaData()
    upto = decl.schema_version if since is None else since
    cols = [sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True)]
    checks = []
    for v in decl.variables:
        if v.since > upto:
            continue
        name, kind = v.column_spec()
        col = sa.Column(name, _column_type(sa, kind), nullable=not v.required)
        cols.append(col)
        if v.type == "category":
            checks.append(
                sa.CheckConstraint(col.in_(list(v.choices)), name=f"ck_{EXAM_TABLE}_{name}")
            )
    cols += [
        sa.Column("record_sha256", sa.Text, nullable=False),
        sa.Column("imported_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    ]
    exam = sa.Table(
        EXAM_TABLE,
        md,
        *cols,
        *checks,
        sa.UniqueConstraint(*KEY_COLUMNS, name=f"uq_{EXAM_TABLE}_key"),
        sa.Index(f"ix_{EXAM_TABLE}_centre_exam", "centre", "exam_id"),
    )
    source = sa.Table(
        SOURCE_TABLE,
        md,
        sa.Column(
            "exam_pk",
            sa.Integer,
            sa.ForeignKey(f"{EXAM_TABLE}.pk", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("ordinal", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.CheckConstraint("length(sha256) = 64", name=f"ck_{SOURCE_TABLE}_sha256"),
    )
    return exam, source


def migrations_table(metadata=None):
    sa = _sa()
    md = metadata if metadata is not None else sa.MetaData()
    return sa.Table(
        MIGRATIONS_TABLE,
        md,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("checksum", sa.Text, nullable=False),
        sa.Column("ncsproc_version", sa.Text, nullable=False),
        sa.Column("applied_at", sa.Text, nullable=False),
    )


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
