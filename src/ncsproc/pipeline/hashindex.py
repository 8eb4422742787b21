"""A remembered SHA-256 per file, so that a rerun stats its inputs and parts instead of
reading them again (issue 16: a finished cohort reruns in about a second).

An entry is trusted while the file's size, modification time (ns) and inode are the ones it
was hashed with, as ``git`` and ``make`` trust them. An input hashed less than two seconds
after its last modification is not remembered (a change right after could keep the same time
stamp on a coarse clock), so it is hashed again next time. Files the pipeline wrote itself
into its locked output folder (parts, tables) are remembered with the SHA-256 it computed.
Stored in ``DIR/.ncsproc/hash-index.json``, keyed by the SHA-256 of each file's path (the
output folder holds no absolute path); a missing, unreadable or foreign file is an empty index
(everything is hashed).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

__all__ = ["HashIndex", "file_sha256"]

FORMAT = "ncsproc-hash-index/2"
_RACY_NS = 2_000_000_000


def _key(path: str) -> str:
    return hashlib.sha256(os.fsencode(path)).hexdigest()[:32]


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class HashIndex:
    """SHA-256 of files keyed by path, trusted while (size, mtime_ns, inode) are unchanged.

    Parameters
    ----------
    path : path-like, optional
        The index file; None: nothing is remembered (every call hashes).
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else None
        self._known: dict[str, list] = {}
        self._seen: dict[str, list] = {}
        self._lock = threading.Lock()
        self.n_hashed = 0
        if self.path is not None:
            try:
                doc = json.loads(self.path.read_text(encoding="utf-8"))
                if doc.get("format") == FORMAT and isinstance(doc.get("files"), dict):
                    self._known = doc["files"]
            except (OSError, ValueError, AttributeError):
                pass

    def sha256(self, path: str) -> str:
        """The file's SHA-256: remembered when its stat signature is unchanged, else read.

        Raises
        ------
        OSError
            The file cannot be stat'ed or read.
        """
        st = os.stat(path)
        signature = [st.st_size, st.st_mtime_ns, st.st_ino]
        key = _key(path)
        entry = self._known.get(key)
        if entry is not None and entry[:3] == signature:
            digest, stable = entry[3], True
        else:
            digest = file_sha256(path)
            stable = st.st_mtime_ns < time.time_ns() - _RACY_NS
            with self._lock:
                self.n_hashed += 1
        if stable:
            with self._lock:
                self._seen[key] = [*signature, digest]
        return digest

    def remember(self, path: str, sha256: str) -> None:
        """Record the SHA-256 of a file this run wrote itself (it is not read again)."""
        try:
            st = os.stat(path)
        except OSError:
            return
        with self._lock:
            self._seen[_key(path)] = [st.st_size, st.st_mtime_ns, st.st_ino, sha256]

    def save(self) -> None:
        """Write the entries of the files met in this run (atomically; best effort)."""
        if self.path is None:
            return
        files = dict(sorted(self._seen.items()))
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(
                json.dumps({"format": FORMAT, "files": files}, separators=(",", ":")),
                encoding="utf-8",
            )
            os.replace(tmp, self.path)
        except OSError:  # pragma: no cover - a read-only cache only costs the next rerun time
            try:
                tmp.unlink()
            except OSError:
                pass
