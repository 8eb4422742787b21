"""The results catalogue of a cohort output folder (SQLite, ``DIR/.ncsproc/catalog.sqlite``).

One row per computed exam, keyed by ``exam_key`` = SHA-256 of (the exam's content hash, the
ncsproc version, the settings hash), pointing at the exam's part file. The client is the only
writer; each finished task is committed in one transaction, so a run killed at any moment
leaves the catalogue consistent (a part without a row is simply recomputed), and a rerun skips
every exam whose row and part are there. The catalogue holds no absolute path and no patient
data: exam ids, relative part names, hashes and counts. This is not the patient registry
(``ncsproc.registry``); it only tracks which inputs were processed with which settings.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
from pathlib import Path

__all__ = ["Catalog", "CATALOG_SCHEMA"]

CATALOG_SCHEMA = "ncsproc-catalog/1"

_DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exams (
    exam_key TEXT PRIMARY KEY,
    exam_id TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    ncsproc_version TEXT NOT NULL,
    settings_sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    part TEXT NOT NULL,
    part_sha256 TEXT NOT NULL,
    part_bytes INTEGER NOT NULL,
    has_traces INTEGER NOT NULL,
    n_files INTEGER NOT NULL,
    n_skipped INTEGER NOT NULL,
    n_traces INTEGER NOT NULL,
    n_errors INTEGER NOT NULL,
    width INTEGER,
    signal_dtype TEXT,
    run_id INTEGER NOT NULL,
    finished_utc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS exams_by_id ON exams (exam_id);
CREATE TABLE IF NOT EXISTS settings (
    settings_sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_utc TEXT NOT NULL,
    finished_utc TEXT,
    status TEXT NOT NULL,
    ncsproc_version TEXT NOT NULL,
    settings_sha256 TEXT NOT NULL,
    scheduler TEXT NOT NULL,
    n_exams INTEGER,
    n_cached INTEGER,
    n_computed INTEGER,
    n_failed INTEGER,
    n_errors INTEGER,
    seconds REAL
);
CREATE TABLE IF NOT EXISTS outputs (
    name TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    plan_sha256 TEXT NOT NULL,
    run_id INTEGER NOT NULL
);
"""


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Catalog:
    """Open (or create) the catalogue of an output folder's cache.

    Parameters
    ----------
    path : path-like
        ``DIR/.ncsproc/catalog.sqlite``.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.executescript(_DDL)
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (CATALOG_SCHEMA,))
        elif row[0] != CATALOG_SCHEMA:
            raise RuntimeError(
                f"{self.path.name}: catalogue schema {row[0]!r}, expected {CATALOG_SCHEMA!r}; "
                "delete the .ncsproc folder to start afresh"
            )

    # -- runs ---------------------------------------------------------------------------------
    def start_run(self, version: str, settings, scheduler: str) -> int:
        """Record a new run (and mark runs that never finished as interrupted)."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")
            self.db.execute(
                "INSERT OR IGNORE INTO settings VALUES (?, ?, ?)",
                (settings.sha256, settings.name, json.dumps(settings.identity(), sort_keys=True)),
            )
            cur = self.db.execute(
                "INSERT INTO runs (started_utc, status, ncsproc_version, settings_sha256, "
                "scheduler) VALUES (?, 'running', ?, ?, ?)",
                (_now(), version, settings.sha256, scheduler),
            )
        return int(cur.lastrowid or 0)  # sqlite3 sets it after an INSERT

    def finish_run(self, run_id: int, status: str, **counts) -> None:
        cols = ["n_exams", "n_cached", "n_computed", "n_failed", "n_errors", "seconds"]
        values = [counts.get(c) for c in cols]
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute(
                f"UPDATE runs SET finished_utc = ?, status = ?, "
                f"{', '.join(c + ' = ?' for c in cols)} WHERE run_id = ?",
                (_now(), status, *values, run_id),
            )

    # -- exams --------------------------------------------------------------------------------
    def lookup(self, keys) -> dict[str, dict]:
        """Rows of the given exam keys that are in the catalogue: ``{key: row}``."""
        keys = list(keys)
        out: dict[str, dict] = {}
        self.db.row_factory = sqlite3.Row
        try:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                q = f"SELECT * FROM exams WHERE exam_key IN ({','.join('?' * len(chunk))})"
                for row in self.db.execute(q, chunk):
                    out[row["exam_key"]] = dict(row)
        finally:
            self.db.row_factory = None
        return out

    def record(
        self, run_id: int, settings_sha256: str, content: dict[str, str], summaries: list[dict]
    ) -> int:
        """Commit the cacheable exams of one finished task; return how many were recorded."""
        rows = []
        now = _now()
        for s in summaries:
            if not s.get("cacheable") or not s.get("part"):
                continue
            rows.append(
                (
                    s["key"],
                    s["exam_id"],
                    content[s["key"]],
                    s["ncsproc_version"],
                    settings_sha256,
                    s["status"],
                    s["part"],
                    s["part_sha256"],
                    s["part_bytes"],
                    int(bool(s.get("has_traces"))),
                    s["n_files"],
                    s["n_skipped"],
                    s["n_traces"],
                    s["n_errors"],
                    s.get("width"),
                    s.get("signal_dtype"),
                    run_id,
                    now,
                )
            )
        if rows:
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany(
                    "INSERT OR REPLACE INTO exams VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        return len(rows)

    def forget(self, keys) -> None:
        """Drop rows (a part failed its check): the next run recomputes those exams."""
        keys = list(keys)
        if keys:
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany("DELETE FROM exams WHERE exam_key = ?", [(k,) for k in keys])

    # -- outputs ------------------------------------------------------------------------------
    def outputs(self) -> dict[str, dict]:
        rows = self.db.execute("SELECT name, sha256, bytes, plan_sha256 FROM outputs").fetchall()
        return {r[0]: {"sha256": r[1], "bytes": r[2], "plan_sha256": r[3]} for r in rows}

    def set_outputs(self, run_id: int, plan_sha256: str, files: dict[str, tuple[str, int]]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM outputs")
            self.db.executemany(
                "INSERT INTO outputs VALUES (?, ?, ?, ?, ?)",
                [(n, h, b, plan_sha256, run_id) for n, (h, b) in sorted(files.items())],
            )

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM exams").fetchone()[0])

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
