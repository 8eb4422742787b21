"""Loading and drawing the exam-simulator parameters of ``patterns.toml``.

Each number of the file is an inline table with ``value`` or ``range``, ``units``,
``source`` and ``status`` (``C``, ``S``, ``U`` or ``P``, the tags of ncs-domain.md); numbers
tagged ``P`` also carry a ``note`` with the rationale. :func:`load_patterns` checks that
every number is documented so, and refuses the file otherwise.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["load_patterns", "draw_param", "param_value", "iter_params", "PATTERNS", "STATUSES"]

PATTERNS = ("normal", "distal_demyelinating", "cidp_like", "axonal")
STATUSES = ("C", "S", "U", "P")


def _is_param(entry) -> bool:
    return isinstance(entry, Mapping) and ("value" in entry or "range" in entry)


def iter_params(node, path: tuple[str, ...] = ()):
    """Yield ``(path, entry)`` for every numeric parameter of the loaded file."""
    if _is_param(node):
        yield path, node
    elif isinstance(node, Mapping):
        for key, sub in node.items():
            yield from iter_params(sub, (*path, key))


def _check(cfg: Mapping) -> None:
    problems = []
    for path, entry in iter_params(cfg):
        where = ".".join(path)
        if entry.get("status") not in STATUSES:
            problems.append(f"{where}: status must be one of {STATUSES}")
        if not str(entry.get("source", "")).strip():
            problems.append(f"{where}: source is missing")
        if "units" not in entry:
            problems.append(f"{where}: units are missing")
        if entry.get("status") == "P" and not str(entry.get("note", "")).strip():
            problems.append(f"{where}: a [P] number needs a note with its rationale")
    for pattern in PATTERNS:
        if pattern not in cfg.get("patterns", {}):
            problems.append(f"patterns.{pattern} is missing")
    if problems:
        raise ValueError("patterns.toml: " + "; ".join(problems))


@functools.lru_cache(maxsize=4)
def _load(path: str | None) -> dict:
    if path is None:
        text = resources.files("ncsproc.simulate").joinpath("patterns.toml").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    cfg = tomllib.loads(text)
    _check(cfg)
    return cfg


def load_patterns(path: str | Path | None = None) -> dict:
    """Return the parsed and checked parameter file (the packaged one by default).

    The returned dict is shared (cached): do not modify it.
    """
    return _load(None if path is None else str(path))


def param_value(entry: Mapping):
    """The fixed ``value`` of a parameter (raises if it is a range)."""
    if "value" not in entry:
        raise KeyError("parameter has a range, not a value")
    return entry["value"]


def draw_param(rng: np.random.Generator, entry: Mapping, *, integer: bool = False):
    """Draw a parameter: its ``value``, or uniformly from its ``range``.

    A range of ranges (one per segment) gives an array with one draw per inner range.
    Integer parameters are drawn inclusively. A ``value`` consumes no random number.
    """
    if "value" in entry:
        v = entry["value"]
        return np.asarray(v, dtype=float) if isinstance(v, list) else v
    lo_hi = entry["range"]
    if isinstance(lo_hi[0], list):
        return np.array([float(rng.uniform(lo, hi)) for lo, hi in lo_hi])
    lo, hi = lo_hi
    if integer:
        return int(rng.integers(int(lo), int(hi) + 1))
    return float(rng.uniform(float(lo), float(hi)))
