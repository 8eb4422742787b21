"""Loading the versioned data files (normal limits, criteria, pattern rules) of ncsproc.

Files are TOML. The defaults ship inside the package (``ncsproc/data/``); a laboratory passes a
path of its own. Every loaded file keeps its id, version, SHA-256 and path so that the results
record exactly which file produced them.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..vocab import EVIDENCE_STATUSES
from ._expr import RuleError

__all__ = ["FileInfo", "read_toml", "data_path", "STATUS_TAGS", "check_status", "status_rank"]

STATUS_TAGS = EVIDENCE_STATUSES
"""Status tags of ncs-domain.md: confirmed, secondary, unconfirmed, proposal."""


def check_status(tag: object, where: str) -> str:
    """Return a valid status tag or raise a RuleError naming ``where``."""
    if tag not in STATUS_TAGS:
        raise RuleError(
            f"{where}: status must be one of {STATUS_TAGS} (confirmed, secondary source, "
            f"unconfirmed, proposal), got {tag!r}"
        )
    return str(tag)


def status_rank(tag: str) -> int:
    """Order of confidence: C (0) < S (1) < U (2) < P (3)."""
    return STATUS_TAGS.index(tag) if tag in STATUS_TAGS else len(STATUS_TAGS)


@dataclass(frozen=True)
class FileInfo:
    """Identity of a loaded data file."""

    kind: str
    id: str
    version: str
    sha256: str
    path: str
    title: str = ""
    status: str = ""

    @property
    def label(self) -> str:
        """``<id>@<version>``: what the result tables record."""
        return f"{self.id}@{self.version}"


def data_path(*parts: str) -> Path:
    """Path of a file shipped in ``ncsproc/data``."""
    return Path(str(resources.files("ncsproc").joinpath("data", *parts)))


def read_toml(path: str | os.PathLike, kind: str) -> tuple[dict, FileInfo]:
    """Read a TOML data file and its ``[meta]`` table.

    Returns
    -------
    (dict, FileInfo)
        The parsed document and the file's identity.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RuleError(f"cannot read {kind} file {path}: {exc.strerror}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RuleError(f"{kind} file {path} is not valid TOML: {exc}") from None
    meta = doc.get("meta")
    if not isinstance(meta, dict):
        raise RuleError(f"{kind} file {path}: a [meta] table with id and version is required")
    for key in ("id", "version"):
        if not isinstance(meta.get(key), str) or not meta[key]:
            raise RuleError(f"{kind} file {path}: [meta] {key} must be a non-empty string")
    status = meta.get("status", "")
    if status:
        check_status(status, f"{kind} file {path} [meta]")
    info = FileInfo(
        kind=kind,
        id=meta["id"],
        version=meta["version"],
        sha256=hashlib.sha256(raw).hexdigest(),
        path=str(path),
        title=str(meta.get("title", "")),
        status=str(status),
    )
    return doc, info
