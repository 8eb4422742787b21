"""The registry's wide table: one row per exam, the declared variables, from an extract folder.

Input: the output folder of ``ncsproc extract`` (``exams.csv``, ``nerves.csv`` of the
interchange contract, section 4, and ``provenance.json``, :mod:`ncsproc.registry.provenance`).
The registry needs the centre's pseudonym key: every subject id it writes is a keyed pseudonym
(:mod:`ncsproc.privacy`), whatever ``extract`` was given.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..privacy import DATE_PRECISIONS, Pseudonymizer, is_pseudonym, parse_partial_date, reduce_date
from ..tables import from_layout
from .provenance import SHA256_RE, Provenance, read_provenance
from .variables import Declarations, RegistryError, Variable, load_variables

__all__ = [
    "CENTRE_RE",
    "RegistryConfig",
    "WideTable",
    "build_table",
    "load_config",
    "typed_frame",
]

CENTRE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DERIVED = (
    "record_id",
    "centre",
    "subject_pseudonym",
    "exam_year",
    "exam_date",
    "n_studies",
    "n_studies_mapped",
    "variables_version",
    "pseudonym_key_id",
    "date_precision",
    "n_source_files",
    "visit",
    "days_since_first",
    "followup_days",
    "sensory_red_flag",
)
"""The ``derived.<name>`` sources the registry computes (formats/registry.md)."""
PROVENANCE_KEYS = ("ncsproc_version", "settings_sha256", "sources")
_PRECISION_RANK = {p: i for i, p in enumerate(DATE_PRECISIONS)}


@dataclass(frozen=True)
class RegistryConfig:
    """Registry settings: the centre code and how much of the exam date may leave the centre."""

    centre: str = ""
    date_precision: str = "year"

    def checked(self) -> RegistryConfig:
        if not isinstance(self.centre, str) or not CENTRE_RE.match(self.centre):
            raise RegistryError(
                f"centre code {self.centre!r}: expected 1-64 letters, digits, '_', '.' or '-' "
                "(give it with --centre or in the registry configuration)"
            )
        if self.date_precision not in DATE_PRECISIONS:
            raise RegistryError(
                f"date_precision {self.date_precision!r}, expected one of {DATE_PRECISIONS}"
            )
        return self


def load_config(path: str | os.PathLike | None = None, **overrides) -> RegistryConfig:
    """Registry configuration from a TOML file (``[registry]`` with ``centre`` and
    ``date_precision``), with keyword overrides that are not None."""
    values: dict = {}
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise RegistryError(f"{p}: cannot read the registry configuration ({exc})") from None
        section = data.get("registry", {})
        unknown = sorted(set(data) - {"registry"}) + sorted(
            set(section) - {"centre", "date_precision"}
        )
        if unknown:
            raise RegistryError(
                f"{p.name}: unknown keys {unknown}; expected [registry] centre, date_precision"
            )
        values.update(section)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return RegistryConfig(**values).checked()


@dataclass
class WideTable:
    """The result of :func:`build_table`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per accepted exam, the declared variables in order, typed (:func:`typed_frame`),
        sorted by (centre, subject_pseudonym, exam_id).
    record_sha256 : dict
        ``record_id`` -> SHA-256 of the row's values (the database compares it to skip
        unchanged exams).
    problems : list of (exam_id, message)
        Exams that were refused and why (all or nothing per exam).
    declarations : Declarations
    """

    table: pd.DataFrame
    record_sha256: dict[str, str]
    problems: list[tuple[str, str]]
    declarations: Declarations
    sources: dict[str, list[str]] = field(default_factory=dict)


_DTYPES = {"integer": "Int64", "number": "Float64"}


def typed_frame(rows: list[dict], decl: Declarations) -> pd.DataFrame:
    """A DataFrame of the declared variables: ``Int64`` integers, ``Float64`` numbers, ``string``
    for the rest; missing values are ``<NA>``. Used by every path (build, pull, read back) so
    the same data compare equal."""
    cols = {}
    for v in decl.variables:
        values = [r.get(v.name) for r in rows]
        dtype = _DTYPES.get(v.type, pd.StringDtype("python"))
        if v.type == "number":
            values = [
                None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)
                for x in values
            ]
        elif v.type == "integer":
            values = [None if x is None else int(x) for x in values]
        else:
            values = [None if x is None else str(x) for x in values]
        cols[v.name] = pd.array(values, dtype=dtype)
    return pd.DataFrame(cols, columns=decl.names)


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise RegistryError(f"{path}: missing; expected the output folder of ncsproc extract")
    try:
        # every cell as the exact text written (no "NA" -> NaN, no type guessing)
        return pd.read_csv(
            path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8"
        )
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path.name}: byte {exc.start}: not UTF-8 text") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise RegistryError(f"{path.name}: not a readable CSV table ({exc})") from None


def _float(text: str) -> float | None:
    text = text.strip()
    if text == "" or text.lower() == "nan":
        return None
    value = float(text)  # ValueError handled by the caller
    return None if math.isnan(value) else value


class _Refuse(Exception):
    pass


def _convert(v: Variable, raw, *, already_scaled: bool = False):
    """A source value (text or number) as the variable's value, checked; _Refuse if invalid."""
    if raw is None:
        return None
    if v.type in ("integer", "number"):
        if isinstance(raw, str):
            try:
                raw = _float(raw)
            except ValueError:
                raise _Refuse(f"{v.name}: {raw!r} is not a number") from None
            if raw is None:
                return None
        x = float(raw)
        if not math.isfinite(x):
            raise _Refuse(f"{v.name}: {raw!r} is not a finite number")
        if not already_scaled:
            x *= v.factor
        if v.type == "integer":
            if v.transform == "floor":
                x = math.floor(x + 1e-9)
            elif v.transform == "round" or abs(x - round(x)) < 1e-9:
                x = round(x)
            else:
                raise _Refuse(f"{v.name}: {raw!r} is not a whole number")
            x = int(x)
        else:
            x = round(x, v.decimals or 0) + 0.0
        if v.min is not None and x < v.min:
            raise _Refuse(f"{v.name}: {x} is below its validity limit {v.min:g} {v.units}".rstrip())
        if v.max is not None and x > v.max:
            raise _Refuse(f"{v.name}: {x} is above its validity limit {v.max:g} {v.units}".rstrip())
        return x
    text = str(raw)
    if text == "":
        return None
    if "\x00" in text:
        raise _Refuse(f"{v.name}: contains a NUL character, which no database text column holds")
    if v.type == "category":
        if v.value_map:
            mapping = dict(v.value_map)
            if text in mapping:
                text = mapping[text]
            elif "*" in mapping:
                text = mapping["*"]
        if text not in v.choices:
            raise _Refuse(f"{v.name}: {text!r} is not one of {list(v.choices)}")
    elif v.type == "sha256" and not SHA256_RE.match(text):
        raise _Refuse(f"{v.name}: expected 64 lower-case hex digits")
    elif v.type == "date":
        try:
            parse_partial_date(text)
        except ValueError as exc:
            raise _Refuse(f"{v.name}: {exc}") from None
    return text


def _record_id(centre: str, subject: str, exam: str) -> str:
    key = json.dumps([centre, subject, exam], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def record_sha256(row: Mapping, decl: Declarations) -> str:
    """SHA-256 of a row's values (declared order, canonical JSON)."""
    values = [row.get(name) for name in decl.names]
    text = json.dumps(values, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _coarser(a: str, b: str) -> str:
    return a if _PRECISION_RANK[a] <= _PRECISION_RANK[b] else b


def _pick_rows(rows: list[dict], v: Variable) -> dict | None:
    """The nerves.csv row that feeds a per-nerve variable: modality preference, then an
    evaluable study, then the smallest study name (deterministic)."""
    cands = [
        r
        for r in rows
        if r.get("nerve") == v.nerve
        and r.get("side") == v.side
        and r.get("modality") in v.modalities
        and (not v.record_sites or r.get("record_site", "") in v.record_sites)
    ]
    if not cands:
        return None
    cands.sort(
        key=lambda r: (
            v.modalities.index(r["modality"]),
            str(r.get("evaluable", "")).lower() != "true",
            r.get("study", ""),
        )
    )
    return cands[0]


def build_table(
    folder: str | os.PathLike,
    *,
    centre: str | None = None,
    pseudonymizer: Pseudonymizer | None,
    date_precision: str | None = None,
    config: RegistryConfig | None = None,
    variables: Declarations | None = None,
) -> WideTable:
    """The registry's wide table of an extract output folder.

    Parameters
    ----------
    folder : path-like
        Output of ``ncsproc extract``: ``exams.csv``, ``nerves.csv``, ``provenance.json``.
    centre, date_precision : str, optional
        Override ``config`` (the centre code; ``none``/``year``/``month``/``day``).
    pseudonymizer : Pseudonymizer
        The centre's key. Required: without it the registry refuses to run.
    config : RegistryConfig, optional
    variables : Declarations, optional
        Default: the shipped declarations.

    Returns
    -------
    WideTable
        Accepted exams and the refused ones with reasons.

    Raises
    ------
    RegistryError
        No key; a key other than the one ``extract`` used; a missing or malformed table,
        column or provenance file.
    """
    if pseudonymizer is None:
        raise RegistryError(
            "no pseudonym key: a registry export refuses to run without the centre's key "
            "(set NCSPROC_PSEUDONYM_KEY or pass --key-file); every subject id that leaves the "
            "centre must be a keyed pseudonym"
        )
    cfg = config or RegistryConfig(centre=centre or "")
    cfg = RegistryConfig(
        centre=centre if centre is not None else cfg.centre,
        date_precision=date_precision if date_precision is not None else cfg.date_precision,
    ).checked()
    decl = variables or load_variables()
    unknown = [
        v.source
        for v in decl.variables
        if (v.source.startswith("derived.") and v.source[8:] not in DERIVED)
        or (v.source.startswith("provenance.") and v.source[11:] not in PROVENANCE_KEYS)
    ]
    if unknown:
        raise RegistryError(f"{decl.label}: sources the registry does not compute: {unknown}")
    folder = Path(folder)
    prov: Provenance = read_provenance(folder)
    if prov.pseudonym_key_id and prov.pseudonym_key_id != pseudonymizer.key_id:
        raise RegistryError(
            f"{folder.name}: extract pseudonymised this folder with another key (key id "
            f"{prov.pseudonym_key_id}, the key given has id {pseudonymizer.key_id}); use the "
            "centre's key of that extract, or extract again with this one"
        )
    # layout 2 (motor amplitudes in mV) back into the contract's columns the variables name
    exams = from_layout(_read_csv(folder / "exams.csv"), prov.tables_version)
    nerves = from_layout(_read_csv(folder / "nerves.csv"), prov.tables_version)

    needed_exams = {"exam_id", "subject_id"}
    needed_nerves = {"exam_id", "study", "nerve", "side", "modality", "record_site", "evaluable"}
    for v in decl.variables:
        table, _, col = v.source.partition(".")
        if table == "exams" and col != "exam_date":
            needed_exams.add(col)
        elif table == "nerves":
            needed_nerves.add(col)
    for name, df, needed in (
        ("exams.csv", exams, needed_exams),
        ("nerves.csv", nerves, needed_nerves),
    ):
        missing = sorted(needed - set(df.columns))
        if missing:
            raise RegistryError(
                f"{folder / name}: columns {missing} are missing; the registry variables "
                f"({decl.label}) need them"
            )

    visits, subjects = _followup(folder)
    nerve_rows: dict[str, list[dict]] = {}
    for rec in nerves.to_dict("records"):
        nerve_rows.setdefault(rec["exam_id"], []).append(rec)
    if prov.date_precision == "shift":  # dates moved by a secret offset per subject
        precision = "shift"
    else:
        precision = _coarser(cfg.date_precision, prov.date_precision)

    counts: dict[str, int] = {}
    for exam in exams["exam_id"]:
        counts[exam] = counts.get(exam, 0) + 1

    rows, problems, hashes, sources = [], [], {}, {}
    for rec in exams.to_dict("records"):
        exam = rec["exam_id"]
        try:
            if counts[exam] > 1:
                raise _Refuse(f"exam_id appears {counts[exam]} times in exams.csv")
            row, digests = _exam_row(
                rec,
                nerve_rows.get(exam, []),
                decl,
                cfg,
                prov,
                pseudonymizer,
                precision,
                {**visits.get(exam, {}), **subjects.get(rec.get("subject_id", ""), {})},
            )
        except _Refuse as exc:
            problems.append((exam, str(exc)))
            continue
        rows.append(row)
        hashes[row["record_id"]] = record_sha256(row, decl)
        sources[row["record_id"]] = digests
    rows.sort(key=lambda r: (r["centre"], r["subject_pseudonym"], r["exam_id"]))
    return WideTable(
        table=typed_frame(rows, decl),
        record_sha256=hashes,
        problems=problems,
        declarations=decl,
        sources=sources,
    )


def _followup(folder: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    """Exam id -> visit and days since the first; subject id -> follow-up and red flag.

    From the extract's ``visits.csv`` and ``subjects.csv``; empty for a folder written before
    they existed (the follow-up variables are then left empty, not guessed).
    """
    visits: dict[str, dict] = {}
    subjects: dict[str, dict] = {}
    path = folder / "visits.csv"
    if path.is_file():
        for r in _read_csv(path).to_dict("records"):
            visits[r["exam_id"]] = {
                "visit": _int_or_none(r.get("visit"), path, "visit"),
                "days_since_first": _int_or_none(
                    r.get("days_since_first"), path, "days_since_first"
                ),
            }
    path = folder / "subjects.csv"
    if path.is_file():
        for r in _read_csv(path).to_dict("records"):
            flag, evaluable = (
                str(r.get("sensory_red_flag", "")),
                str(r.get("red_flag_evaluable", "")),
            )
            subjects[r["subject_id"]] = {
                "followup_days": _int_or_none(r.get("followup_days"), path, "followup_days"),
                "sensory_red_flag": "yes"
                if flag == "True"
                else ("no" if evaluable == "True" else "not_evaluable"),
            }
    return visits, subjects


def _int_or_none(text, path: Path, column: str) -> int | None:
    if text is None or str(text) == "":
        return None
    try:
        return int(str(text))
    except ValueError:
        raise RegistryError(f"{path}: {column} {text!r} is not a whole number") from None


def _exam_row(rec, nrows, decl, cfg, prov, pseudonymizer, precision, followup):
    exam = rec["exam_id"]
    if exam == "":
        raise _Refuse("empty exam_id")
    if "\x00" in exam:
        raise _Refuse("exam_id contains a NUL character")
    local = rec.get("subject_id", "")
    if prov.pseudonym_key_id == pseudonymizer.key_id and is_pseudonym(local):
        subject = local  # derived by extract from the header with this very key
    else:
        subject = pseudonymizer.pseudonym(local)  # a local id (manifest, folder): pseudonymised
    if subject is None:
        raise _Refuse("no subject id (exams.csv subject_id is empty)")
    files = prov.sources.get(exam)
    if not files:
        raise _Refuse("provenance.json lists no source file for this exam")
    digests = sorted(d for _, d in files)

    raw_date = rec.get("exam_date", "") or ""
    try:
        parse_partial_date(raw_date)
    except ValueError as exc:
        raise _Refuse(f"exam_date: {exc}") from None
    # a shifted date (extract --date-precision shift) is kept to the registry's precision
    shown = cfg.date_precision if precision == "shift" else precision
    date = reduce_date(raw_date, shown)

    derived = {
        "record_id": _record_id(cfg.centre, subject, exam),
        "centre": cfg.centre,
        "subject_pseudonym": subject,
        "exam_year": int(date[:4]) if date else None,
        "exam_date": date or None,
        "n_studies": len(nrows),
        "variables_version": decl.label,
        "pseudonym_key_id": pseudonymizer.key_id,
        "date_precision": precision,
        "n_source_files": len(files),
        "visit": followup.get("visit"),
        "days_since_first": followup.get("days_since_first"),
        "followup_days": followup.get("followup_days"),
        "sensory_red_flag": followup.get("sensory_red_flag"),
    }
    used_studies: set[str] = set()
    mapped: list[Variable] = []
    row: dict = {}
    for v in decl.variables:
        table, _, col = v.source.partition(".")
        if v.per_nerve:
            chosen = _pick_rows(nrows, v)
            raw = None
            if chosen is not None:
                raw = chosen.get(col, "")
                used_studies.add(chosen.get("study", ""))
            row[v.name] = _convert(v, raw)
        elif table == "exams":
            row[v.name] = _convert(v, rec.get(col, ""))
        elif table == "nerves":
            vals = []
            for r in nrows:
                try:
                    x = _float(r.get(col, ""))
                except ValueError:
                    raise _Refuse(
                        f"{v.name}: nerves.csv {col} {r.get(col)!r} is not a number"
                    ) from None
                if x is not None:
                    vals.append(x)
            agg = None
            if vals:
                agg = {"median": np.median, "min": np.min, "max": np.max}[v.aggregate](vals)
            row[v.name] = _convert(v, None if agg is None else float(agg))
        elif table == "provenance":
            if col == "sources":
                row[v.name] = json.dumps(digests, separators=(",", ":"))
            else:
                row[v.name] = _convert(v, getattr(prov, col))
        elif col in derived:
            row[v.name] = _convert(v, derived[col])
        else:  # derived.n_studies_mapped: once every per-nerve variable is known
            mapped.append(v)
    for v in mapped:
        row[v.name] = _convert(v, len(used_studies))
    missing = [v.name for v in decl.variables if v.required and row.get(v.name) is None]
    if missing:
        raise _Refuse(f"required variables without a value: {missing}")
    return row, digests
