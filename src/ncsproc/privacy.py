"""Pseudonymisation and date reduction: the only way identifying facts leave the readers.

A reader's optional ``identity(path)`` hook (see :class:`ncsproc.formats.Reader`) returns the
source patient identifier and the exam date from a file's header. :func:`ncsproc.read` never
stores the identifier: with a :class:`Pseudonymizer` it turns it into ``subject_id``, a keyed
HMAC-SHA256 of the identifier with a centre secret; without one it derives nothing from it.
The exam date becomes an optional ``exam_date`` coordinate reduced to a precision
(:data:`DATE_PRECISIONS`, default ``"year"``).

The centre secret comes from the environment variable ``NCSPROC_PSEUDONYM_KEY`` or from a key
file (``--key-file``); it is never written anywhere by ncsproc, and no message, repr or table
shows it. What may be shown is its :attr:`Pseudonymizer.key_id`, a one-way fingerprint that lets
a registry see that two exports used the same key (and refuse to mix two keys).

Properties (tested in ``tests/test_privacy.py``): the same identifier and the same key give the
same pseudonym in every file, run and process; another key gives another pseudonym; the
identifier is normalised first (Unicode NFKC, case-folded, surrounding and repeated white space
removed), so ``"mch-0234567 "`` and ``"MCH-0234567"`` are one patient. Full description:
``formats/registry.md`` (section "Privacy").
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import os
import re
import unicodedata
from pathlib import Path

from .errors import NcsprocError

__all__ = [
    "DATE_PRECISIONS",
    "EXTRACT_DATE_PRECISIONS",
    "KEY_ENV",
    "MAX_DATE_SHIFT_DAYS",
    "MIN_KEY_BYTES",
    "PSEUDONYM_PATTERN",
    "PseudonymKeyError",
    "Pseudonymizer",
    "is_pseudonym",
    "load_key",
    "normalize_identifier",
    "parse_partial_date",
    "pseudonymizer_from",
    "reduce_date",
    "date_offset_days",
    "day_number",
    "shift_date",
]

KEY_ENV = "NCSPROC_PSEUDONYM_KEY"
"""Environment variable holding the centre secret."""

MIN_KEY_BYTES = 16
"""Shortest accepted key (bytes of UTF-8 text): patient numbers have little entropy, so the
secrecy of the pseudonyms rests on the key; a short key could be found by trying."""

_SCHEME = "ps1"
_DOMAIN = b"ncsproc/subject/v1\x00"
_KEY_ID_DOMAIN = b"ncsproc/key-id/v1\x00"
PSEUDONYM_PATTERN = re.compile(r"^ps1_[0-9a-f]{32}$")
"""A pseudonym: ``ps1_`` then 32 lower-case hex digits (128 bits of HMAC-SHA256)."""

DATE_PRECISIONS = ("none", "year", "month", "day")
"""How much of an exam date is kept: nothing, ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``."""

EXTRACT_DATE_PRECISIONS = (*DATE_PRECISIONS, "shift")
"""What ``ncsproc extract --date-precision`` accepts: the reductions above, or ``"shift"``:
every date of a subject moved by the subject's secret offset (:func:`date_offset_days`), kept
to the day, so that intervals within a subject stay exact and no real date is written."""

MAX_DATE_SHIFT_DAYS = 365
"""Largest date shift (days, either way); a shift is never 0."""

_SHIFT_DOMAIN = b"ncsproc/date-shift/v1\x00"
# Without a centre key the internal day numbers of the cache are obfuscated with this public
# key only (so no plain date sits in a part file); they are not secret, and "shift" refuses to
# run without a key.
_UNKEYED_SHIFT_KEY = b"ncsproc/no-centre-key/v1"

# Values that fill an identifier field when there is none (EDF+ "X", vendor defaults).
_PLACEHOLDERS = {"", "x", "xx", "xxx", "unknown", "anonymous", "anon", "none", "n/a", "na", "-"}


class PseudonymKeyError(NcsprocError, ValueError):
    """The pseudonym key is missing, unreadable or too weak (the message never shows it)."""


def normalize_identifier(text: object) -> str | None:
    """Canonical form of a source patient identifier, or None when there is none.

    Unicode NFKC, case-folded, leading/trailing white space removed and inner runs of white
    space collapsed to one space. Empty values and placeholders (``X``, ``unknown``,
    ``anonymous``, only X's and spaces such as EDF's ``X X X X``) give None.
    """
    if text is None:
        return None
    value = unicodedata.normalize("NFKC", str(text)).casefold()
    value = " ".join(value.split())
    if value in _PLACEHOLDERS or set(value) <= {"x", " "}:
        return None
    return value


def is_pseudonym(text: object) -> bool:
    """True when ``text`` has the form of an ncsproc pseudonym (``ps1_`` + 32 hex digits)."""
    return isinstance(text, str) and PSEUDONYM_PATTERN.match(text) is not None


class Pseudonymizer:
    """Keyed pseudonyms: ``ps1_`` + the first 32 hex digits of HMAC-SHA256(key, identifier).

    Parameters
    ----------
    key : bytes or str
        The centre secret, at least :data:`MIN_KEY_BYTES` bytes (a str is UTF-8 encoded,
        surrounding white space removed). Generate one with
        ``python -c "import secrets; print(secrets.token_hex(32))"``.

    Notes
    -----
    The key is kept in the object only; ``repr`` and ``str`` show the :attr:`key_id`. The object
    can be pickled (a Dask worker process needs it), which copies the key to that process.
    """

    __slots__ = ("_key", "_key_id")

    def __init__(self, key: bytes | str):
        if isinstance(key, str):
            key = key.strip().encode("utf-8")
        elif isinstance(key, (bytes, bytearray)):
            key = bytes(key).strip()
        else:
            raise PseudonymKeyError(
                f"the pseudonym key must be bytes or text, not {type(key).__name__}"
            )
        if len(key) < MIN_KEY_BYTES:
            raise PseudonymKeyError(
                f"the pseudonym key has {len(key)} bytes; at least {MIN_KEY_BYTES} are required "
                '(make one with: python -c "import secrets; print(secrets.token_hex(32))")'
            )
        if len(set(key)) < 4:
            raise PseudonymKeyError(
                "the pseudonym key is made of fewer than 4 distinct characters; use a random key "
                '(python -c "import secrets; print(secrets.token_hex(32))")'
            )
        self._key = key
        self._key_id = hmac.new(key, _KEY_ID_DOMAIN, hashlib.sha256).hexdigest()[:16]

    @property
    def key_id(self) -> str:
        """A one-way fingerprint of the key (16 hex digits): same key, same id; safe to record."""
        return self._key_id

    def pseudonym(self, identifier: object) -> str | None:
        """The pseudonym of a patient identifier, or None when the identifier is empty.

        The identifier is normalised first (:func:`normalize_identifier`).
        """
        norm = normalize_identifier(identifier)
        if norm is None:
            return None
        digest = hmac.new(self._key, _DOMAIN + norm.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{_SCHEME}_{digest[:32]}"

    __call__ = pseudonym

    def __repr__(self) -> str:
        return f"Pseudonymizer(key_id={self._key_id!r})"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, Pseudonymizer) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self._key_id)

    def __reduce__(self):
        return (Pseudonymizer, (self._key,))


def load_key(key_file: str | os.PathLike | None = None, env: str = KEY_ENV) -> bytes | None:
    """The centre secret from ``key_file`` (if given) or the environment variable ``env``.

    Returns None when neither gives one. A key file holds the key as text (surrounding white
    space, such as a final newline, is removed).

    Raises
    ------
    PseudonymKeyError
        The key file is missing, unreadable or empty (the message names the file, never the key).
    """
    if key_file is not None:
        path = Path(key_file)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise PseudonymKeyError(
                f"pseudonym key file {path}: cannot be read ({exc.strerror or type(exc).__name__})"
            ) from None
        raw = raw.strip()
        if not raw:
            raise PseudonymKeyError(f"pseudonym key file {path} is empty")
        return raw
    value = os.environ.get(env, "") if env else ""
    value = value.strip()
    return value.encode("utf-8") if value else None


def pseudonymizer_from(
    key_file: str | os.PathLike | None = None, env: str = KEY_ENV
) -> Pseudonymizer | None:
    """A :class:`Pseudonymizer` from ``key_file`` or the environment variable, else None.

    ``key_file`` wins over the environment. None means "no key": callers then derive no
    subject id from identifying fields (``ncsproc extract``) or refuse to run (registry export).
    """
    key = load_key(key_file, env)
    return None if key is None else Pseudonymizer(key)


# ---------------------------------------------------------------------------------------------
# Dates

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def parse_partial_date(text: object) -> tuple[int, int | None, int | None] | None:
    """``"2024"``, ``"2024-03"``, ``"2024-03-15"`` (or a date) -> (year, month, day); "" -> None.

    Raises
    ------
    ValueError
        Anything else, or an impossible date.
    """
    if text is None:
        return None
    if isinstance(text, _dt.datetime):
        text = text.date()
    if isinstance(text, _dt.date):
        return text.year, text.month, text.day
    value = str(text).strip()
    if value == "":
        return None
    m = _PARTIAL.match(value)
    if not m:
        raise ValueError(f"{value!r} is not an ISO date (YYYY, YYYY-MM or YYYY-MM-DD)")
    year = int(m.group(1))
    month = int(m.group(2)) if m.group(2) else None
    day = int(m.group(3)) if m.group(3) else None
    _dt.date(year, month or 1, day or 1)  # raises ValueError when impossible
    return year, month, day


def reduce_date(value: object, precision: str = "year") -> str:
    """An exam date reduced to ``precision`` (:data:`DATE_PRECISIONS`), as partial ISO text.

    ``value`` is a :class:`datetime.date`, a partial ISO string or None/"" (unknown, gives "").
    A value that is already coarser than ``precision`` stays as it is (nothing is invented).

    Examples
    --------
    >>> reduce_date(datetime.date(2024, 3, 15), "year")
    '2024'
    >>> reduce_date("2024-03-15", "month")
    '2024-03'
    >>> reduce_date("2024", "day")
    '2024'
    """
    if precision not in DATE_PRECISIONS:
        raise ValueError(f"date precision {precision!r}, expected one of {DATE_PRECISIONS}")
    parts = parse_partial_date(value)
    if parts is None or precision == "none":
        return ""
    year, month, day = parts
    out = f"{year:04d}"
    if precision in ("month", "day") and month is not None:
        out += f"-{month:02d}"
        if precision == "day" and day is not None:
            out += f"-{day:02d}"
    return out


def dates_agree(a: object, b: object) -> bool:
    """True when two (partial) dates agree at the precision both have."""
    pa, pb = parse_partial_date(a), parse_partial_date(b)
    if pa is None or pb is None:
        return True
    return all(x == y for x, y in zip(pa, pb, strict=True) if x is not None and y is not None)


def _offset(key: bytes, subject_id: str) -> int:
    digest = hmac.new(key, _SHIFT_DOMAIN + str(subject_id).encode("utf-8"), hashlib.sha256)
    value = int.from_bytes(digest.digest()[:8], "big")
    magnitude = value % MAX_DATE_SHIFT_DAYS + 1  # 1 ... 365: never the real date
    return magnitude if (value >> 62) & 1 else -magnitude


def date_offset_days(pseudonymizer: Pseudonymizer | None, subject_id: str) -> int:
    """The secret date shift of a subject (days, +-1 ... +-:data:`MAX_DATE_SHIFT_DAYS`).

    HMAC-SHA256 of the (pseudonymous) subject id keyed on the centre key, like the pseudonyms:
    the same subject and key give the same offset in every run, another key another offset.
    Without a key (None) the offset is derived from a public constant: it hides nothing from
    someone who knows ncsproc and is only used for the internal day numbers of the cache.
    """
    key = _UNKEYED_SHIFT_KEY if pseudonymizer is None else pseudonymizer._key
    return _offset(key, subject_id)


def day_number(value: object) -> int | None:
    """Proleptic Gregorian day number of a full date (``"2024-03-15"`` or a date), else None
    (an unknown date, or one known only to the month or year)."""
    parts = parse_partial_date(value)
    if parts is None or parts[1] is None or parts[2] is None:
        return None
    return _dt.date(parts[0], parts[1], parts[2]).toordinal()


def shift_date(value: object, offset_days: int) -> str:
    """A full date moved by ``offset_days`` as ``YYYY-MM-DD``; "" when the date is unknown or
    not known to the day (a partial date cannot be shifted exactly, so nothing is written)."""
    day = day_number(value)
    if day is None:
        return ""
    return _dt.date.fromordinal(day + int(offset_days)).isoformat()
