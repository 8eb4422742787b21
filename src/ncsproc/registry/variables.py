"""The registry variables, declared once in ``ncsproc/data/registry/variables.toml``.

Everything the registry writes is generated from these declarations: the wide table
(:mod:`ncsproc.registry.table`), the database columns (:mod:`ncsproc.registry.migrations`) and
the data dictionary (:mod:`ncsproc.registry.dictionary`). Per-nerve variables are expanded from
``[[nerve]]`` x side x ``[[measure]]`` of the same modality.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NcsprocError

__all__ = [
    "NAME_RE",
    "SIDES",
    "TYPES",
    "Declarations",
    "RegistryError",
    "Variable",
    "load_variables",
]

TYPES = ("text", "integer", "number", "category", "date", "sha256", "json")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
SIDES = (("L", "l", "left"), ("R", "r", "right"))
_SOURCE_RE = re.compile(r"^(exams|nerves|provenance|derived)\.[a-z][a-z0-9_]*$")
_AGGREGATES = ("median", "min", "max")
_TRANSFORMS = ("floor", "round")


class RegistryError(NcsprocError, ValueError):
    """A registry declaration, input folder, key or database is not as expected."""


@dataclass(frozen=True)
class Variable:
    """One column of the registry's wide table.

    Attributes
    ----------
    name, label, type, form : str
        Name (see the naming rule), label, one of :data:`TYPES`, the group it belongs to
        (``exam``, ``provenance``, ``motor``, ``sensory``).
    units : str
        Clinical unit ("" when dimensionless or not a quantity).
    choices : tuple of str
        Allowed values of a ``category``.
    min, max : float or None
        Hard validity limits (a value outside is a defect).
    decimals : int or None
        Rounding of a ``number``.
    source : str
        Where the value comes from: ``exams.<col>``, ``nerves.<col>``, ``provenance.<key>``,
        ``derived.<name>``.
    aggregate, transform : str
        For exam-level values taken from ``nerves``: ``median``/``min``/``max`` over the exam's
        rows, then ``floor``/``round``.
    nerve, side, modalities, record_sites : for per-nerve variables
        Which nerves.csv rows feed it (``modalities`` in order of preference).
    factor : float
        Multiplies the source value (unit conversion: uV -> mV is 0.001).
    value_map : dict
        Category mapping of source values (``"*"``: any other value).
    section : str
        Heading of the group of variables this one starts (dictionary "Section Header").
    since : int
        Schema version (migration) that introduced the column.
    """

    name: str
    label: str
    type: str
    form: str
    source: str
    units: str = ""
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    decimals: int | None = None
    required: bool = False
    identifier: bool = False
    aggregate: str = ""
    transform: str = ""
    nerve: str = ""
    side: str = ""
    modalities: tuple[str, ...] = ()
    record_sites: tuple[str, ...] = ()
    factor: float = 1.0
    value_map: tuple[tuple[str, str], ...] = ()
    section: str = ""
    since: int = 1

    @property
    def per_nerve(self) -> bool:
        return bool(self.nerve)

    def spec(self) -> dict:
        """The declaration as a JSON-able dict (the data dictionary's JSON entry)."""
        out = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "form": self.form,
            "units": self.units,
            "choices": list(self.choices),
            "min": self.min,
            "max": self.max,
            "decimals": self.decimals,
            "required": self.required,
            "identifier": self.identifier,
            "source": self.source_text,
            "since": self.since,
        }
        return out

    @property
    def source_text(self) -> str:
        """Human-readable source (the dictionary's "source measure")."""
        if self.per_nerve:
            sites = f", record_site in {list(self.record_sites)}" if self.record_sites else ""
            conv = f" x {self.factor:g}" if self.factor != 1.0 else ""
            return (
                f"nerves.{self.source.split('.', 1)[1]}{conv} [nerve={self.nerve}, "
                f"side={self.side}, modality in {list(self.modalities)}{sites}]"
            )
        text = self.source
        if self.aggregate:
            text = f"{self.aggregate}({text}) over the exam's studies"
        if self.transform:
            text = f"{self.transform}({text})"
        return text

    def column_spec(self) -> tuple[str, str]:
        """(name, storage kind) as the database stores it: text, integer or real."""
        kind = {"integer": "integer", "number": "real"}.get(self.type, "text")
        return self.name, kind


@dataclass(frozen=True)
class Declarations:
    """All variables, in table order, with the file's identity."""

    id: str
    version: str
    title: str
    schema_version: int
    sha256: str
    variables: tuple[Variable, ...]
    by_name: dict[str, Variable] = field(default_factory=dict, compare=False, repr=False)

    @property
    def label(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]

    def __getitem__(self, name: str) -> Variable:
        return self.by_name[name]

    def columns_checksum(self, since: int | None = None) -> str:
        """SHA-256 of the storage spec (name, kind) of the variables of one schema version."""
        cols = [v.column_spec() for v in self.variables if since is None or v.since == since]
        return hashlib.sha256(json.dumps(cols, separators=(",", ":")).encode()).hexdigest()


def _default_path() -> Path:
    from ..features._files import data_path

    return data_path("registry", "variables.toml")


_VAR_KEYS = {
    "name",
    "form",
    "label",
    "type",
    "units",
    "choices",
    "min",
    "max",
    "decimals",
    "source",
    "required",
    "identifier",
    "aggregate",
    "transform",
    "since",
}
_NERVE_KEYS = {"code", "nerve", "modality", "record_sites", "label", "sides"}
_MEASURE_KEYS = {
    "key",
    "modality",
    "modalities",
    "label",
    "type",
    "units",
    "factor",
    "decimals",
    "min",
    "max",
    "source",
    "choices",
    "value_map",
    "since",
}


def _check_keys(entry: dict, allowed: set, where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise RegistryError(f"{where}: unknown keys {unknown}; accepted: {sorted(allowed)}")


def _num(value, where):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RegistryError(f"{where}: expected a number, found {value!r}")
    return float(value)


def _common(entry: dict, where: str) -> dict:
    typ = entry.get("type")
    if typ not in TYPES:
        raise RegistryError(f"{where}: type {typ!r}, expected one of {TYPES}")
    choices = tuple(str(c) for c in entry.get("choices", ()))
    if (typ == "category") != bool(choices):
        raise RegistryError(f"{where}: a category needs 'choices' and only a category has them")
    decimals = entry.get("decimals")
    if decimals is not None and (typ != "number" or not isinstance(decimals, int) or decimals < 0):
        raise RegistryError(f"{where}: 'decimals' applies to numbers and is an integer >= 0")
    if typ == "number" and decimals is None:
        raise RegistryError(f"{where}: a number needs 'decimals' (fixed rounding)")
    lo, hi = _num(entry.get("min"), where), _num(entry.get("max"), where)
    if (lo is not None or hi is not None) and typ not in ("integer", "number"):
        raise RegistryError(f"{where}: 'min'/'max' apply to integers and numbers")
    if lo is not None and hi is not None and lo > hi:
        raise RegistryError(f"{where}: min {lo} > max {hi}")
    label = entry.get("label")
    if not isinstance(label, str) or not label.strip():
        raise RegistryError(f"{where}: a label is required")
    return dict(
        type=typ,
        choices=choices,
        decimals=decimals,
        min=lo,
        max=hi,
        units=str(entry.get("units", "")),
    )


def _parse(data: dict, sha: str, where: str) -> Declarations:
    _check_keys(data, {"meta", "variable", "nerve", "measure"}, f"{where}: top level")
    meta = data.get("meta", {})
    _check_keys(meta, {"id", "version", "title", "schema_version"}, f"{where}: [meta]")
    for key in ("id", "version", "schema_version"):
        if key not in meta:
            raise RegistryError(f"{where}: [meta] needs '{key}'")
    latest = meta["schema_version"]
    if isinstance(latest, bool) or not isinstance(latest, int) or latest < 1:
        raise RegistryError(f"{where}: [meta] schema_version must be an integer >= 1")
    out: list[Variable] = []

    for i, entry in enumerate(data.get("variable", [])):
        w = f"{where}: variable[{i}] ({entry.get('name', '?')})"
        _check_keys(entry, _VAR_KEYS, w)
        common = _common(entry, w)
        source = entry.get("source", "")
        if not _SOURCE_RE.match(source):
            raise RegistryError(
                f"{w}: source {source!r}, expected exams.|nerves.|provenance.|derived.<name>"
            )
        agg, tr = entry.get("aggregate", ""), entry.get("transform", "")
        if source.startswith("nerves.") and agg not in _AGGREGATES:
            raise RegistryError(
                f"{w}: an exam-level value from nerves needs aggregate in {_AGGREGATES}"
            )
        if tr and tr not in _TRANSFORMS:
            raise RegistryError(f"{w}: transform {tr!r}, expected one of {_TRANSFORMS}")
        out.append(
            Variable(
                name=entry.get("name", ""),
                label=entry["label"],
                form=entry.get("form", "exam"),
                source=source,
                required=bool(entry.get("required", False)),
                identifier=bool(entry.get("identifier", False)),
                aggregate=agg,
                transform=tr,
                since=int(entry.get("since", 1)),
                **common,
            )
        )

    measures = data.get("measure", [])
    for j, m in enumerate(measures):
        _check_keys(m, _MEASURE_KEYS, f"{where}: measure[{j}] ({m.get('key', '?')})")
    for i, group in enumerate(data.get("nerve", [])):
        gw = f"{where}: nerve[{i}] ({group.get('code', '?')})"
        _check_keys(group, _NERVE_KEYS, gw)
        sides = group.get("sides", ["L", "R"])
        for side, low, word in SIDES:
            if side not in sides:
                continue
            first = True
            for j, m in enumerate(measures):
                if m.get("modality") != group.get("modality"):
                    continue
                w = f"{where}: measure[{j}] ({m.get('key', '?')}) for {group.get('code')}"
                common = _common(m, w)
                value_map = m.get("value_map", {})
                if value_map and common["type"] != "category":
                    raise RegistryError(f"{w}: value_map applies to categories")
                bad = sorted(set(value_map.values()) - set(common["choices"]))
                if bad:
                    raise RegistryError(f"{w}: value_map gives {bad}, not among the choices")
                out.append(
                    Variable(
                        name=f"{group['code']}_{low}_{m['key']}",
                        label=f"{group['label']}, {word}: {m['label']}",
                        form=group["modality"],
                        source=f"nerves.{m['source']}",
                        nerve=group["nerve"],
                        side=side,
                        modalities=tuple(m.get("modalities", [group["modality"]])),
                        record_sites=tuple(group.get("record_sites", ())),
                        factor=float(m.get("factor", 1.0)),
                        value_map=tuple(sorted(value_map.items())),
                        section=f"{group['label']}, {word}" if first else "",
                        since=int(m.get("since", 1)),
                        **common,
                    )
                )
                first = False

    names = [v.name for v in out]
    for v in out:
        if not NAME_RE.match(v.name):
            raise RegistryError(
                f"{where}: variable name {v.name!r} breaks the naming rule (lower case letters, "
                "digits and '_', starting with a letter, at most 32 characters)"
            )
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise RegistryError(f"{where}: variable names declared twice: {dup}")
    bad_since = sorted(v.name for v in out if not 1 <= v.since <= latest)
    if bad_since:
        raise RegistryError(
            f"{where}: variables with 'since' outside 1..{latest} (raise [meta] "
            f"schema_version with the migration): {bad_since}"
        )
    return Declarations(
        id=str(meta["id"]),
        version=str(meta["version"]),
        title=str(meta.get("title", "")),
        schema_version=int(latest),
        sha256=sha,
        variables=tuple(out),
        by_name={v.name: v for v in out},
    )


@functools.lru_cache(maxsize=8)
def _load_cached(path: str) -> Declarations:
    raw = Path(path).read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RegistryError(f"{Path(path).name}: not a valid TOML file ({exc})") from None
    return _parse(data, hashlib.sha256(raw).hexdigest(), Path(path).name)


def load_variables(path: str | Path | None = None) -> Declarations:
    """The registry variable declarations (default: the shipped ``variables.toml``)."""
    return _load_cached(str(Path(path) if path is not None else _default_path()))
