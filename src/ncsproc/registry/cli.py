"""``ncsproc registry ...``: push, pull, export, dictionary, migrate.

Wired into the main parser by ``ncsproc.cli`` with :func:`add_registry_parser`. Heavy imports
happen when a subcommand runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._cliutil import HelpFormatter

__all__ = ["add_registry_parser"]

DEFAULT_DB = "sqlite:///registry.db"  # = ncsproc.registry.db.DEFAULT_DB (kept light: no imports)

_KEY_HELP = (
    "file holding the centre's pseudonym key (default: the environment variable "
    "NCSPROC_PSEUDONYM_KEY); the key is never written anywhere"
)


def _say(msg: str) -> None:
    print(f"ncsproc registry: {msg}", file=sys.stderr)


def _problems(problems) -> None:
    for exam, message in problems:
        _say(f"exam {exam!r}: {message}")


def _key(args):
    from ..privacy import pseudonymizer_from

    return pseudonymizer_from(args.key_file)


def _config(args):
    from . import load_config

    return load_config(args.config, centre=args.centre, date_precision=args.date_precision)


def _guard(func):
    def run(args: argparse.Namespace) -> int:
        from ..privacy import PseudonymKeyError
        from .variables import RegistryError

        try:
            return func(args)
        except (RegistryError, PseudonymKeyError) as exc:
            _say(str(exc))
            return 2
        except ImportError as exc:  # a database driver that is not installed
            _say(f"{exc}; install it, e.g. pip install 'ncsproc[postgres]' for PostgreSQL")
            return 2
        except Exception as exc:
            from sqlalchemy.exc import SQLAlchemyError

            if not isinstance(exc, SQLAlchemyError):
                raise
            from . import display_url

            db = getattr(args, "db", None)
            where = f" {display_url(db)}" if db else ""
            cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            _say(
                f"cannot use the database{where}: {cause[0] if cause else type(exc).__name__}; "
                "check that the server runs and the URL (user, host, port, database) is right"
            )
            return 2

    return run


@_guard
def _cmd_push(args: argparse.Namespace) -> int:
    from . import display_url, push

    report = push(args.dir, args.db, pseudonymizer=_key(args), config=_config(args))
    _problems(report.failed)
    if report.migrations:
        _say(f"registry schema migrated to version {max(report.migrations)}")
    print(f"ncsproc registry push: {report.summary()} -> {display_url(args.db)}")
    return 0 if report.ok else 1


@_guard
def _cmd_pull(args: argparse.Namespace) -> int:
    from . import pull, write_wide
    from .files import wide_csv_text

    table = pull(args.db, centre=args.centre)
    if args.out:
        for out in args.out:
            write_wide(table, Path(out))
        print(f"ncsproc registry pull: {len(table)} exams -> {', '.join(args.out)}")
    else:
        sys.stdout.write(wide_csv_text(table))
    return 0


@_guard
def _cmd_export(args: argparse.Namespace) -> int:
    from . import export

    wide = export(args.dir, list(args.out), pseudonymizer=_key(args), config=_config(args))
    _problems(wide.problems)
    print(
        f"ncsproc registry export: {len(wide.table)} exams, {len(wide.problems)} refused "
        f"-> {', '.join(args.out)}"
    )
    return 0 if not wide.problems else 1


@_guard
def _cmd_dictionary(args: argparse.Namespace) -> int:
    from . import load_variables, write_dictionary

    decl = load_variables(args.variables)
    csv_path, json_path = write_dictionary(args.out, decl)
    print(
        f"ncsproc registry dictionary: {len(decl.variables)} variables ({decl.label}) -> "
        f"{csv_path}, {json_path}"
    )
    return 0


@_guard
def _cmd_migrate(args: argparse.Namespace) -> int:
    from . import connect, display_url, migrate, schema_version

    engine = connect(args.db)
    try:
        done = migrate(engine)
        version = schema_version(engine)
    finally:
        engine.dispose()
    what = f"applied {done}" if done else "nothing to do"
    print(f"ncsproc registry migrate: {what}; schema version {version} ({display_url(args.db)})")
    return 0


def _add_export_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key-file", help=_KEY_HELP)
    p.add_argument(
        "--centre", help="centre code (letters, digits, '_', '.', '-'); overrides --config"
    )
    p.add_argument(
        "--date-precision",
        choices=["none", "year", "month", "day"],
        help="how much of the exam date leaves the centre (default: year; overrides --config)",
    )
    p.add_argument(
        "--config",
        help="registry configuration TOML: [registry] centre = '...', date_precision = 'year'",
    )


def add_registry_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``registry`` (with ``push``, ``pull``, ``export``, ``dictionary``, ``migrate``) to
    the ``ncsproc`` subcommands; return its parser."""
    reg = subparsers.add_parser(
        "registry",
        epilog="examples:\n"
        "  ncsproc registry push results --db sqlite:///registry.db --key-file centre.key\n"
        "  ncsproc registry pull --db sqlite:///registry.db --out registry.csv\n"
        "  ncsproc registry SUBCOMMAND --help\n",
        formatter_class=HelpFormatter,
        help="pseudonymous registry export: database push/pull, CSV/Parquet, data dictionary",
        description="Registry export of an ncsproc extract folder: one pseudonymous row per exam "
        "with the declared variables (see `ncsproc docs registry`). push, export need the "
        "centre's pseudonym key.",
    )
    reg.set_defaults(func=lambda args: (reg.print_help(), 2)[1])
    sub = reg.add_subparsers(dest="registry_command", metavar="SUBCOMMAND")

    p = sub.add_parser(
        "push",
        help="import an extract folder into the registry database",
        description="Create or migrate the registry schema, then import every exam of DIR in "
        "its own transaction (upsert by centre, subject pseudonym and exam id; unchanged exams "
        "are not rewritten).",
        epilog="examples:\n  ncsproc registry push results --key-file centre.key\n"
        "  ncsproc registry push results --db postgresql://ncs@db.example:5432/registry "
        "--centre LYON\n",
        formatter_class=HelpFormatter,
    )
    p.add_argument("dir", help="output folder of ncsproc extract")
    p.add_argument(
        "--db",
        default=DEFAULT_DB,
        help=f"database URL (default {DEFAULT_DB}; "
        "PostgreSQL: postgresql://user@host:5432/registry)",
    )
    _add_export_options(p)
    p.set_defaults(func=_cmd_push)

    p = sub.add_parser(
        "pull",
        help="read the registry back (CSV to stdout, or --out files)",
        description="Read the wide table (one row per exam) back from the registry database.",
        epilog="examples:\n  ncsproc registry pull > registry.csv\n"
        "  ncsproc registry pull --db sqlite:///registry.db --centre LYON --out lyon.parquet\n",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--db", default=DEFAULT_DB, help=f"database URL (default {DEFAULT_DB})")
    p.add_argument("--centre", help="only this centre's exams")
    p.add_argument("--out", action="append", help="write .csv or .parquet (repeatable)")
    p.set_defaults(func=_cmd_pull)

    p = sub.add_parser(
        "export",
        help="write the wide table of an extract folder as CSV/Parquet",
        description="Write the registry's wide table of DIR (one pseudonymous row per exam) "
        "to files, without a database.",
        epilog="examples:\n  ncsproc registry export results --out wide.csv --key-file centre.key\n"
        "  ncsproc registry export results --out wide.csv --out wide.parquet\n",
        formatter_class=HelpFormatter,
    )
    p.add_argument("dir", help="output folder of ncsproc extract")
    p.add_argument(
        "--out", action="append", required=True, help="a .csv or .parquet file (repeatable)"
    )
    _add_export_options(p)
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser(
        "dictionary",
        help="write the data dictionary (REDCap CSV and JSON)",
        description="Write the data dictionary of the registry variables: "
        "registry_dictionary.csv (REDCap) and registry_dictionary.json.",
        epilog="examples:\n  ncsproc registry dictionary --out dictionary\n",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--out", required=True, help="folder for registry_dictionary.csv and .json")
    p.add_argument("--variables", help="a variables TOML other than the shipped one")
    p.set_defaults(func=_cmd_dictionary)

    p = sub.add_parser(
        "migrate",
        help="create or upgrade the registry schema of a database",
        description="Create the registry tables, or upgrade them to this version's schema.",
        epilog="examples:\n  ncsproc registry migrate --db sqlite:///registry.db\n",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--db", default=DEFAULT_DB, help=f"database URL (default {DEFAULT_DB})")
    p.set_defaults(func=_cmd_migrate)
    return reg
