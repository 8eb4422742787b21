"""Helpers of the cohort-pipeline tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_cli(args, **kw) -> subprocess.CompletedProcess:
    """``python -m ncsproc.pipeline ...`` in a subprocess (what a user runs)."""
    return subprocess.run(
        [sys.executable, "-m", "ncsproc.pipeline", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=kw.pop("timeout", 120),
        **kw,
    )


def table_files(out: Path) -> dict[str, bytes]:
    """Bytes of every CSV table of an output folder."""
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.csv"))}


def cli(args) -> tuple[int, str]:
    """``ncsproc extract`` in this process: (exit status, what it wrote on stderr)."""
    import contextlib
    import io

    from ncsproc.pipeline.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code)
    return code, err.getvalue()
