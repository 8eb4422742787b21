"""Real databases for the registry tests: SQLite always, PostgreSQL whenever one can be had.

PostgreSQL, in this order:

1. ``NCSPROC_TEST_POSTGRES_URL`` (e.g. ``postgresql://user@host:5432/postgres``): a server the
   tests may create and drop databases on;
2. otherwise a throwaway server started from the installed binaries (``/usr/lib/postgresql/*/
   bin``, or ``initdb`` on PATH): ``initdb`` into a temporary folder (as the ``postgres``
   system user when the tests run as root, since initdb refuses root), listening only on a
   Unix socket in that folder, stopped and deleted at the end of the session;
3. otherwise the PostgreSQL tests are skipped with the reason, unless
   ``NCSPROC_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), which turns the skip into a failure.

Each test gets a fresh database (``CREATE DATABASE``; dropped afterwards).
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from ncsproc.privacy import Pseudonymizer

KEY = "test-centre-key-7f3a9c1e5b2d8f4a6c0e"
OTHER_KEY = "another-centre-key-0b1c2d3e4f5a6b7c"


class _Unavailable(Exception):
    pass


def _bindir() -> Path:
    found = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        try:
            found.append((int(Path(d).parent.name.split(".")[0]), Path(d)))
        except ValueError:
            continue
    for _, d in sorted(found, reverse=True):
        if (d / "initdb").exists() and (d / "pg_ctl").exists():
            return d
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    raise _Unavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) are installed; install the "
        "distribution's postgresql package (.ci/postgres.sh does) or set "
        "NCSPROC_TEST_POSTGRES_URL"
    )


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise _Unavailable(
            "running as root (initdb refuses root) and there is no 'postgres' system user to "
            "run the server as"
        ) from None
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--"]
    su = shutil.which("su")
    if su:
        return ["__su__"]
    raise _Unavailable("running as root and neither runuser nor su is available")


def _run(prefix: list[str], argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    if prefix == ["__su__"]:
        import shlex

        cmd = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(shlex.quote(a) for a in argv)]
    else:
        cmd = prefix + argv
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


class _Server:
    def __init__(self):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise _Unavailable("psycopg (PostgreSQL driver) is not installed") from None
        bindir = _bindir()
        prefix = _as_server_user()
        self.folder = Path(tempfile.mkdtemp(prefix="ncsproc-pg-"))
        self.prefix, self.bindir = prefix, bindir
        if prefix:
            shutil.chown(self.folder, user="postgres")
        self.data = self.folder / "data"
        self.port = 54329
        self.started = False
        atexit.register(self.stop)
        r = _run(
            prefix,
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            timeout=60,
        )
        if r.returncode != 0:
            self.stop()
            raise _Unavailable(f"initdb failed: {(r.stderr or r.stdout).strip()[-500:]}")
        options = (
            f"-k {self.folder} -c listen_addresses='' -p {self.port} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        r = _run(
            prefix,
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.folder / "server.log"),
                "-w",
                "-t",
                "30",
                "-o",
                options,
                "start",
            ],
            timeout=60,
        )
        if r.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
            self.stop()
            raise _Unavailable(f"the PostgreSQL server did not start: {r.stderr.strip()} {tail}")
        self.started = True
        self.url = f"postgresql+psycopg://postgres@/postgres?host={self.folder}&port={self.port}"

    def stop(self) -> None:
        if getattr(self, "started", False):
            _run(
                self.prefix,
                [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                timeout=60,
            )
            self.started = False
        if getattr(self, "folder", None) is not None and self.folder.exists():
            shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_admin_url():
    """URL of a PostgreSQL server database on which tests may CREATE/DROP DATABASE."""
    url = os.environ.get("NCSPROC_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    try:
        server = _Server()
    except (_Unavailable, OSError, subprocess.SubprocessError) as exc:
        message = f"PostgreSQL registry tests not run: {exc}"
        if os.environ.get("NCSPROC_REQUIRE_POSTGRES"):
            pytest.fail(message + " (NCSPROC_REQUIRE_POSTGRES is set)")
        pytest.skip(message)
    yield server.url
    server.stop()


def _fresh_postgres(admin_url: str):
    import sqlalchemy as sa

    from ncsproc.registry.db import _normalise_url

    name = f"ncsproc_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(_normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(_normalise_url(admin_url)).set(database=name)

    def drop():
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return url.render_as_string(hide_password=False), drop


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty registry database: SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    admin = request.getfixturevalue("postgres_admin_url")
    url, drop = _fresh_postgres(admin)
    try:
        yield url
    finally:
        drop()


@pytest.fixture(scope="session")
def key() -> Pseudonymizer:
    return Pseudonymizer(KEY)


@pytest.fixture(scope="session")
def other_key() -> Pseudonymizer:
    return Pseudonymizer(OTHER_KEY)


@pytest.fixture(scope="session")
def cohort(tmp_path_factory, key):
    """Three identified exams (EDF+ x2, DICOM x1; exams 0 and 2 are the same patient) and
    their extract folder, made with the centre key."""
    from .builder import PATIENTS, extract_like, identified_cohort

    root = tmp_path_factory.mktemp("cohort")
    patients = [PATIENTS[0], PATIENTS[1], PATIENTS[0]]
    dates = ["02-MAR-2024", "15-JUL-2023", "11-NOV-2024"]
    identified_cohort(root / "in", patients=patients, dates=dates, dicom_exams=(2,))
    extract_like(root / "in", root / "dir", pseudonymizer=key, date_precision="day")
    return root
