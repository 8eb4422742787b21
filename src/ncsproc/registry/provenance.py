"""``DIR/provenance.json``: what an extract output folder must say for the registry.

The contract's tables (``exams.csv``, ``nerves.csv``, ...) carry the versions and SHA-256 of the
normal-limit, criteria and rule files. What they do not carry is written by ``ncsproc extract``
into ``provenance.json`` with :func:`write_provenance`, and read by the registry with
:func:`read_provenance`::

    {
      "format": "ncsproc-extract-provenance/1",
      "ncsproc_version": "0.4.0",
      "settings_sha256": "<64 hex: SHA-256 of the canonical JSON of the extract settings>",
      "pseudonym_key_id": "<16 hex: Pseudonymizer.key_id, or empty when extract had no key>",
      "date_precision": "year",
      "tables_version": 2,
      "sources": [
        {"exam_id": "EX0001", "source_file": "EX0001/L_median_motor.edf", "sha256": "<64 hex>"},
        ...
      ]
    }

``sources`` has one entry per input file of every exam in ``exams.csv`` (``source_file`` as in
``responses.csv``: relative to the input root). The key itself is never written.
``tables_version`` is the layout of the tables beside it (``formats/tables.md``; absent: 1):
:func:`ncsproc.registry.build_table` reads layout 2 (motor amplitudes in mV) back into the
contract's columns before it picks its variables.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .._version import __version__
from ..privacy import EXTRACT_DATE_PRECISIONS as DATE_PRECISIONS
from ..tables import TABLES_VERSIONS
from .variables import RegistryError

__all__ = [
    "PROVENANCE_FILE",
    "PROVENANCE_FORMAT",
    "Provenance",
    "file_sha256",
    "read_provenance",
    "settings_digest",
    "write_provenance",
]

PROVENANCE_FILE = "provenance.json"
PROVENANCE_FORMAT = "ncsproc-extract-provenance/1"
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
KEY_ID_RE = re.compile(r"^([0-9a-f]{16})?$")


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def settings_digest(settings: Mapping) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces) of the extract settings."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Provenance:
    """The content of ``provenance.json``."""

    ncsproc_version: str
    settings_sha256: str
    pseudonym_key_id: str
    date_precision: str
    sources: dict[str, tuple[tuple[str, str], ...]]  # exam_id -> ((source_file, sha256), ...)
    tables_version: int = 1  # layout of the tables (ncsproc.tables; absent in the file: 1)


def write_provenance(
    out_dir: str | os.PathLike,
    *,
    sources: Iterable[tuple[str, str, str]],
    settings_sha256: str | None = None,
    settings: Mapping | None = None,
    pseudonymizer=None,
    date_precision: str = "year",
    tables_version: int = 1,
) -> Path:
    """Write ``out_dir/provenance.json`` (for ``ncsproc extract``).

    Parameters
    ----------
    out_dir : path-like
        The extract output folder.
    sources : iterable of (exam_id, source_file, sha256)
        Every input file of every exam: its exam, its name relative to the input root (as in
        ``responses.csv``) and the SHA-256 (hex) of its bytes (:func:`file_sha256`).
    settings_sha256 : str, optional
        The hash extract already has of the settings that change results (measure parameters,
        limits/criteria/rules files, manifest, date precision...; not the scheduler). Or:
    settings : mapping, optional
        Those settings, hashed here with :func:`settings_digest`; only the hash is written.
    pseudonymizer : ncsproc.privacy.Pseudonymizer, optional
        The key extract used (its ``key_id`` is written, never the key); None: no key.
    date_precision : str
        The ``date_precision`` extract passed to ``ncsproc.read``.
    tables_version : int
        Layout of the tables written beside it (:data:`ncsproc.tables.TABLES_VERSIONS`):
        readers of the folder (the registry) turn layout 2 back into the contract's columns.

    Returns
    -------
    pathlib.Path
    """
    if date_precision not in DATE_PRECISIONS:
        raise ValueError(f"date_precision {date_precision!r}, expected one of {DATE_PRECISIONS}")
    if (settings_sha256 is None) == (settings is None):
        raise ValueError("give exactly one of settings_sha256 and settings")
    digest = settings_sha256 if settings is None else settings_digest(settings)
    if not SHA256_RE.match(str(digest)):
        raise ValueError("settings_sha256 must be 64 lower-case hex digits")
    entries = sorted({(str(e), Path(str(f)).as_posix(), str(h)) for e, f, h in sources})
    bad = [f for _, f, h in entries if not SHA256_RE.match(h)]
    if bad:
        raise ValueError(f"sources: the sha256 of {bad[:3]} is not 64 lower-case hex digits")
    doc = {
        "format": PROVENANCE_FORMAT,
        "ncsproc_version": __version__,
        "settings_sha256": digest,
        "pseudonym_key_id": pseudonymizer.key_id if pseudonymizer is not None else "",
        "date_precision": date_precision,
        "tables_version": int(tables_version),
        "sources": [{"exam_id": e, "source_file": f, "sha256": h} for e, f, h in entries],
    }
    out = Path(out_dir) / PROVENANCE_FILE
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def read_provenance(folder: str | os.PathLike) -> Provenance:
    """Read and check ``folder/provenance.json``.

    Raises
    ------
    RegistryError
        Missing file, invalid JSON, or a field that is missing or malformed (named).
    """
    path = Path(folder) / PROVENANCE_FILE
    if not path.is_file():
        raise RegistryError(
            f"{path}: missing; the registry needs the provenance that ncsproc extract writes "
            "(settings hash, pseudonym key id, SHA-256 of every source file)"
        )
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError(f"{path.name}: not valid UTF-8 JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{path.name}: expected a JSON object")
    if doc.get("format") != PROVENANCE_FORMAT:
        raise RegistryError(
            f"{path.name}: 'format' is {doc.get('format')!r}, expected {PROVENANCE_FORMAT!r}"
        )
    version = doc.get("ncsproc_version")
    if not isinstance(version, str) or not version.strip():
        raise RegistryError(f"{path.name}: 'ncsproc_version' must be a non-empty string")
    settings = doc.get("settings_sha256")
    if not isinstance(settings, str) or not SHA256_RE.match(settings):
        raise RegistryError(f"{path.name}: 'settings_sha256' must be 64 lower-case hex digits")
    key_id = doc.get("pseudonym_key_id", "")
    if not isinstance(key_id, str) or not KEY_ID_RE.match(key_id):
        raise RegistryError(f"{path.name}: 'pseudonym_key_id' must be 16 hex digits or empty")
    precision = doc.get("date_precision")
    if precision not in DATE_PRECISIONS:
        raise RegistryError(f"{path.name}: 'date_precision' must be one of {DATE_PRECISIONS}")
    tables_version = doc.get("tables_version", 1)
    if tables_version not in TABLES_VERSIONS or isinstance(tables_version, bool):
        raise RegistryError(
            f"{path.name}: 'tables_version' is {tables_version!r}, this ncsproc reads "
            f"{list(TABLES_VERSIONS)} (update ncsproc to read a newer layout)"
        )
    raw_sources = doc.get("sources")
    if not isinstance(raw_sources, list):
        raise RegistryError(f"{path.name}: 'sources' must be a list of objects")
    sources: dict[str, list[tuple[str, str]]] = {}
    for i, entry in enumerate(raw_sources):
        where = f"{path.name}: sources[{i}]"
        if not isinstance(entry, dict):
            raise RegistryError(f"{where}: expected an object")
        exam, rel, digest = entry.get("exam_id"), entry.get("source_file"), entry.get("sha256")
        if not isinstance(exam, str) or not exam:
            raise RegistryError(f"{where}: 'exam_id' must be a non-empty string")
        if not isinstance(rel, str) or not rel:
            raise RegistryError(f"{where}: 'source_file' must be a non-empty string")
        if not isinstance(digest, str) or not SHA256_RE.match(digest):
            raise RegistryError(f"{where}: 'sha256' must be 64 lower-case hex digits")
        sources.setdefault(exam, []).append((rel, digest))
    return Provenance(
        ncsproc_version=version.strip(),
        settings_sha256=settings,
        pseudonym_key_id=key_id,
        date_precision=precision,
        sources={k: tuple(sorted(v)) for k, v in sources.items()},
        tables_version=int(tables_version),
    )
