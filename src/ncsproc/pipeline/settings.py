"""Named settings of a cohort run: the ``pipelines/<name>.toml`` files.

A settings file fixes everything that changes the numbers of ``ncsproc extract``: the
measurement parameters of :func:`ncsproc.measure`, the normal-limit file, the pattern rule file
and the criteria files of :mod:`ncsproc.features`. The loaded :class:`Settings` carries the
loaded data files (so workers never need the paths) and a SHA-256 over their *content* and the
fully resolved parameter table: two runs with the same hash give the same tables, wherever the
files live. Schema: ``formats/cohort.md`` ("Settings files").
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..tables import DEFAULT_TABLES_VERSION, TABLES_VERSIONS
from ..units import UnitError, parse_quantity
from ..vocab import MODALITIES

__all__ = ["Settings", "ConfigError", "load_settings", "with_tables_version", "SETTINGS_SCHEMA"]

SETTINGS_SCHEMA = "ncsproc-extract-settings/1"

_TOP_KEYS = {"pipeline", "measure", "features"}
_PIPELINE_KEYS = {"name", "description", "tables_version"}
_FEATURE_KEYS = {"limits", "rules", "criteria"}

# kinds of the unit strings accepted in ``[measure]`` ("0.25 ms", "0.8 uV"); numbers are SI
_MEASURE_KINDS = ("time", "voltage")


class ConfigError(ValueError):
    """A settings file (or an argument naming one) is invalid; the message says where."""


@dataclass(frozen=True)
class Settings:
    """Loaded settings of a cohort run.

    Attributes
    ----------
    name : str
        ``[pipeline] name`` (``default`` for the built-in settings).
    description : str
        Free text from the file.
    measure : dict
        Parameter overrides for :func:`ncsproc.measure` in SI units (``{name: value}`` and
        ``{modality: {name: value}}``), exactly as the kernels take them.
    limits, rules, criteria
        The loaded data files (:class:`ncsproc.features.NormalLimits`,
        :class:`~ncsproc.features.PatternRules`, list of :class:`~ncsproc.features.CriteriaSet`).
    source : str
        File name of the settings file (never its folder), or ``built-in``.
    sha256 : str
        Hash of :meth:`identity`.
    tables_version : int
        Layout of the written tables (``[pipeline] tables_version``, ``--tables``; default
        :data:`ncsproc.tables.DEFAULT_TABLES_VERSION`): 1 = the interchange contract's
        columns, 2 = motor amplitudes in mV (``formats/tables.md``). Not part of the hash:
        the per-exam parts are the same whatever the layout, which is applied when the
        tables are written (and recorded in ``provenance.json``).
    """

    name: str
    description: str
    measure: dict
    limits: Any  # ncsproc.features.NormalLimits (not imported here: features imports late)
    rules: Any  # ncsproc.features.PatternRules
    criteria: tuple
    source: str
    sha256: str = field(default="")
    pseudonymizer: object = None
    date_precision: str = "year"
    tables_version: int = DEFAULT_TABLES_VERSION

    def identity(self) -> dict:
        """What the numbers depend on, as JSON-ready data (the settings hash covers this)."""
        from .. import kernels as K

        return {
            "schema": SETTINGS_SCHEMA,
            "measure": K.table_as_dict(K.build_table(self.measure)),
            "limits": {"label": self.limits.label, "sha256": self.limits.info.sha256},
            "rules": {"label": self.rules.label, "sha256": self.rules.info.sha256},
            "criteria": [{"label": c.info.label, "sha256": c.info.sha256} for c in self.criteria],
            # subject ids and exam dates depend on the centre key and the date precision, so
            # parts computed with one key are never reused with another (the key itself is
            # never part of anything written: only its fingerprint)
            "pseudonym_key_id": getattr(self.pseudonymizer, "key_id", "") or "",
            "date_precision": self.date_precision,
            # parts carry the exams' shifted day numbers (follow-up intervals) since /1
            "exam_days": 1,
        }

    def describe(self) -> dict:
        """Identity plus the name, for the catalogue and the output attributes."""
        return {
            "name": self.name,
            "source": self.source,
            "sha256": self.sha256,
            "tables_version": self.tables_version,
            **self.identity(),
        }


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def _quantity(value, where: str) -> float:
    try:
        return parse_quantity(value, _MEASURE_KINDS, unitless=False)
    except UnitError as exc:
        raise ConfigError(
            f"{where}: {value!r} is not a number; give SI units (0.0002) or a number and a "
            f"unit ('0.2 ms'): {exc}"
        ) from None


def _measure_overrides(table: dict, where: str) -> dict:
    from .. import kernels as K

    out: dict = {}
    for key, value in table.items():
        if key in MODALITIES:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [measure.{key}] must be a table of parameters")
            out[key] = {k: _quantity(v, f"{where}: [measure.{key}] {k}") for k, v in value.items()}
        else:
            out[key] = _quantity(value, f"{where}: [measure] {key}")
    try:
        K.build_table(out)  # checks every name and value
    except ValueError as exc:
        raise ConfigError(f"{where}: [measure]: {exc}") from None
    return out


def _data_file(value, kind: str, base: Path | None, where: str):
    """``default`` -> None; ``name.toml`` -> a path (relative to the settings file); ``name`` ->
    the file shipped in ``ncsproc/data/<kind>/name.toml``."""
    from ..features._files import data_path

    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"{where}: expected 'default', a shipped name or a .toml path, found {value!r}"
        )
    if value == "default":
        return None
    if value.endswith(".toml"):
        p = Path(value)
        if not p.is_absolute() and base is not None:
            p = base / p
        if not p.is_file():
            raise ConfigError(f"{where}: {value!r}: no such file")
        return p
    shipped = data_path(kind, f"{value}.toml")
    if not shipped.is_file():
        raise ConfigError(
            f"{where}: {value!r} is not a file shipped with ncsproc (ncsproc/data/{kind}/); "
            "give a path ending in .toml for a file of your own"
        )
    return shipped


def bundled_pipelines() -> list[str]:
    """Names of the pipeline settings shipped with ncsproc (``ncsproc/data/pipelines/``)."""
    from ..features._files import data_path

    return sorted(p.stem for p in data_path("pipelines").glob("*.toml") if "limits" not in p.stem)


def bundled_pipeline(config: str | os.PathLike) -> str | os.PathLike:
    """``--config``: a settings file path as it is, or a bundled name (``default``,
    ``lab-example``) as the path of the file shipped with ncsproc, from any folder.

    Raises
    ------
    ConfigError
        Neither an existing file nor a bundled name.
    """
    from ..features._files import data_path

    text = os.fspath(config)
    if Path(text).is_file() or text.endswith(".toml") or os.sep in text or "/" in text:
        return config
    shipped = data_path("pipelines", f"{text}.toml")
    if shipped.is_file():
        return shipped
    raise ConfigError(
        f"--config {text!r}: neither a settings file nor a bundled pipeline name; bundled: "
        f"{', '.join(bundled_pipelines())} (or give a path ending in .toml)"
    )


def load_settings(config: str | os.PathLike | Settings | None = None) -> Settings:
    """Load a settings file (``pipelines/<name>.toml``), or the built-in defaults.

    Parameters
    ----------
    config : path-like or Settings, optional
        A settings file; None = the built-in defaults (same as ``pipelines/default.toml``).

    Returns
    -------
    Settings

    Raises
    ------
    ConfigError
        The file is missing, not TOML, or holds an unknown key or an invalid value (the
        message names the place); a data file it names is invalid.
    """
    from .. import features
    from ..features._expr import RuleError

    if isinstance(config, Settings):
        return config
    doc: dict = {}
    base = None
    source = "built-in"
    where = "built-in settings"
    if config is not None:
        path = Path(config)
        where = path.name
        source = path.name
        base = path.resolve().parent
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"settings file {path}: no such file") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"settings file {path.name}: not valid TOML ({exc})") from None
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown table(s) {unknown}; expected {sorted(_TOP_KEYS)}")
    pipe = doc.get("pipeline", {})
    if config is not None and not isinstance(pipe.get("name"), str):
        raise ConfigError(f"{where}: [pipeline] name (a string) is required")
    unknown = sorted(set(pipe) - _PIPELINE_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: [pipeline]: unknown key(s) {unknown}; expected {sorted(_PIPELINE_KEYS)}"
        )
    tables_version = pipe.get("tables_version", DEFAULT_TABLES_VERSION)
    if tables_version not in TABLES_VERSIONS or isinstance(tables_version, bool):
        raise ConfigError(
            f"{where}: [pipeline] tables_version = {tables_version!r}; expected one of "
            f"{list(TABLES_VERSIONS)} (1: the contract's uV columns, 2: motor amplitudes in mV)"
        )
    measure = _measure_overrides(doc.get("measure", {}), where)
    feats = doc.get("features", {})
    unknown = sorted(set(feats) - _FEATURE_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: [features]: unknown key(s) {unknown}; expected {sorted(_FEATURE_KEYS)}"
        )
    limits = _data_file(
        feats.get("limits", "default"), "limits", base, f"{where}: [features] limits"
    )
    rules = _data_file(
        feats.get("rules", "default"), "patterns", base, f"{where}: [features] rules"
    )
    crit = feats.get("criteria", "default")
    if crit == "default":
        criteria = None
    else:
        if isinstance(crit, str) or not isinstance(crit, list) or not crit:
            raise ConfigError(
                f"{where}: [features] criteria must be 'default' or a non-empty "
                f"list of shipped names or .toml paths, found {crit!r}"
            )
        criteria = [
            _data_file(c, "criteria", base, f"{where}: [features] criteria[{i}]")
            for i, c in enumerate(crit)
        ]
    try:
        lim = features.load_limits(limits)
        rl = features.load_rules(rules)
        sets = tuple(features.load_criteria(criteria))
    except RuleError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    missing = [c for c in getattr(rl, "criteria_ids", []) if c not in {s.id for s in sets}]
    if missing:
        raise ConfigError(
            f"{where}: the rules file {rl.label} uses criteria sets {missing}, "
            f"which the settings do not evaluate ({[s.id for s in sets]})"
        )
    settings = Settings(
        name=str(pipe.get("name", "default")),
        description=str(pipe.get("description", "")).strip(),
        measure=measure,
        limits=lim,
        rules=rl,
        criteria=sets,
        source=source,
        tables_version=int(tables_version),
    )
    digest = hashlib.sha256(_canonical(settings.identity()).encode()).hexdigest()
    object.__setattr__(settings, "sha256", digest)
    return settings


def with_privacy(settings: Settings, pseudonymizer=None, date_precision: str = "year") -> Settings:
    """Return ``settings`` with a centre key and a date precision, re-hashed.

    Parameters
    ----------
    settings : Settings
        Loaded settings.
    pseudonymizer : ncsproc.privacy.Pseudonymizer, optional
        The centre's key; None: subject ids are never derived from the files' patient fields.
    date_precision : {"none", "year", "month", "day", "shift"}
        How much of an exam date leaves the readers (default: year); ``shift``: moved by
        the subject's secret offset.
    """
    from dataclasses import replace

    out = replace(settings, pseudonymizer=pseudonymizer, date_precision=date_precision, sha256="")
    digest = hashlib.sha256(_canonical(out.identity()).encode()).hexdigest()
    object.__setattr__(out, "sha256", digest)
    return out


def with_tables_version(settings: Settings, version: int) -> Settings:
    """Return ``settings`` writing the tables in layout ``version`` (``--tables v1``).

    The hash is unchanged (the layout is applied when the tables are written).
    """
    from dataclasses import replace

    if version not in TABLES_VERSIONS:
        raise ConfigError(f"tables layout {version!r}; expected one of {list(TABLES_VERSIONS)}")
    return replace(settings, tables_version=int(version))
