"""What every ``ncsproc`` subcommand shares: one-line errors, exit codes, the output folder.

Exit status of every command: 0 done, 1 some inputs failed (listed), 2 a usage or input error
(one line on stderr saying what to do), 130 interrupted (Ctrl-C). A Python traceback is shown
only with ``--debug`` (or ``NCSPROC_DEBUG=1``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    """A usage or input error of a command: its message is the one line shown (exit 2)."""


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse`` parser whose errors are one line naming the ``--help`` to read."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples of an epilog as written."""


def positive_int(text: str) -> int:
    """``argparse`` type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def output_folder(path: str | os.PathLike, option: str = "--out", *, create: bool = True) -> Path:
    """The output folder of a command, created when missing.

    Every command treats ``--out`` the same way: a new folder is created (with its parents),
    an existing folder is written into (the command's own files in it are replaced, nothing
    else is touched), and an existing file is refused.

    Raises
    ------
    CliError
        ``path`` is an existing file, or the folder cannot be created.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CliError(f"{option} {out}: is an existing file; give a folder (new or existing)")
    if not create:  # the command creates it once its other arguments are known to be valid
        return out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(
            f"{option} {out}: cannot create the folder ({exc.strerror or exc})"
        ) from None
    return out


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (a list of problems is joined with '; ')."""
    text = str(exc).strip() or type(exc).__name__
    lines = [line.strip().removeprefix("- ").strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if len(lines) <= 1:
        return lines[0] if lines else text
    head, rest = lines[0].rstrip(":"), lines[1:]
    return f"{head}: {'; '.join(rest)}"


def debug_requested(argv: list[str]) -> tuple[bool, list[str]]:
    """(debug?, argv without ``--debug``): the option is accepted anywhere on the line."""
    if "--" in argv:
        cut = argv.index("--")
        head, tail = argv[:cut], argv[cut:]
    else:
        head, tail = argv, []
    debug = "--debug" in head or os.environ.get("NCSPROC_DEBUG", "") not in ("", "0")
    return debug, [a for a in head if a != "--debug"] + tail


def _usage_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the input or the arguments are wrong (exit 2), not ncsproc."""
    from .errors import NcsprocError

    types: list[type[BaseException]] = [CliError, NcsprocError, OSError, ValueError]
    try:
        from sqlalchemy.exc import SQLAlchemyError

        types.append(SQLAlchemyError)
    except ImportError:  # pragma: no cover - sqlalchemy is a dependency
        pass
    return tuple(types)


def run_command(func, args: argparse.Namespace, prog: str, *, debug: bool = False) -> int:
    """Run one subcommand with the shared error handling; return its exit status."""
    try:
        return int(func(args))
    except KeyboardInterrupt:
        if debug:
            raise
        hint = getattr(args, "interrupt_hint", "")
        print(f"{prog}: interrupted{'; ' + hint if hint else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit:
        raise
    except Exception as exc:
        if debug:
            raise
        if isinstance(exc, _usage_types()):
            print(f"{prog}: {one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
        print(
            f"{prog}: internal error {type(exc).__name__}: {one_line(exc)} (rerun with --debug "
            "for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_FAILURES


def _kernels_first_compile() -> bool:
    """True when the measurement kernels have no compiled cache yet (the first run compiles)."""

    # read the switches as ncsproc.kernels._jit does, without importing the kernels: the
    # import is what compiles them
    def flag(name: str, default: bool) -> bool:
        value = os.environ.get(name)
        if value is None:
            return default
        return value.strip().lower() not in {"0", "false", "no", "off", ""}

    if flag("NCSPROC_DISABLE_NUMBA", False):
        return False
    if not flag("NCSPROC_NUMBA_CACHE", True):
        return True  # no cache: every run compiles
    here = Path(__file__).parent / "kernels"
    cache_dir = os.environ.get("NUMBA_CACHE_DIR")
    where = Path(cache_dir) if cache_dir else here / "__pycache__"
    pattern = "**/_core*.nbi" if cache_dir else "_core*.nbi"
    try:
        return not any(where.glob(pattern))
    except OSError:
        return False


def compile_note(prog: str, quiet: bool = False) -> None:
    """Say once, before a first run, that the kernels are being compiled (and cached)."""
    if not quiet and _kernels_first_compile():
        print(
            f"{prog}: compiling the measurement kernels (once, about half a minute; later "
            "runs use the cache)",
            file=sys.stderr,
        )
