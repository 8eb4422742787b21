"""Normal limits: versioned data files and the comparison of study features with them.

A normal-limit file (TOML, schema in ``formats/features.md`` and in the header of the default
file ``ncsproc/data/limits/ncs-domain-4.toml``) has one row per nerve / measure / direction with
the limit (a number or an age/height regression), its unit, the source id and the status tag of
ncs-domain.md. :func:`apply_limits` adds to the nerves table, for every measure, the limit used
(``dml_uln_ms``, ``cv_lln_m_s``, ...) and the feature as a percentage of it (``dml_pct_uln``,
``cv_pct_lln``, ``amp_pct_lln``, ``f_min_pct_uln``, ...), plus the file's version and the status
tags of the limits used.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._expr import RuleError
from ._files import FileInfo, check_status, data_path, read_toml, status_rank

__all__ = ["NormalLimits", "LimitRow", "load_limits", "apply_limits", "MEASURES", "DEFAULT_LIMITS"]

DEFAULT_LIMITS = ("limits", "ncs-domain-4.toml")


@dataclass(frozen=True)
class MeasureSpec:
    """A measure that normal limits can refer to."""

    column: str  # feature column of the nerves table
    unit: str  # unit of that column
    prefix: str  # prefix of the comparison columns: <prefix>_pct_uln / <prefix>_pct_lln
    modalities: tuple[str, ...]


MEASURES: dict[str, MeasureSpec] = {
    "dml": MeasureSpec("dml_ms", "ms", "dml", ("motor",)),
    "distal_amp": MeasureSpec("distal_amp_uv", "uV", "amp", ("motor",)),
    "cv": MeasureSpec("cv_m_s", "m/s", "cv", ("motor",)),
    "distal_duration": MeasureSpec("distal_duration_ms", "ms", "distal_duration", ("motor",)),
    "f_min": MeasureSpec("f_min_ms", "ms", "f_min", ("motor", "fwave")),
    "f_mean": MeasureSpec("f_mean_ms", "ms", "f_mean", ("motor", "fwave")),
    "f_max": MeasureSpec("f_max_ms", "ms", "f_max", ("motor", "fwave")),
    "f_persistence": MeasureSpec("f_persistence_pct", "%", "f_persistence", ("motor", "fwave")),
    "snap_amp": MeasureSpec("snap_amp_uv", "uV", "amp", ("sensory",)),
    "snap_peak": MeasureSpec("snap_peak_ms", "ms", "snap_peak", ("sensory",)),
    "snap_onset": MeasureSpec("snap_onset_ms", "ms", "snap_onset", ("sensory",)),
    "scv": MeasureSpec("scv_m_s", "m/s", "scv", ("sensory",)),
}
"""Measures a limit row may name, the feature column they apply to and its unit."""

# unit -> (dimension, power of ten to SI): exact conversions (10 ** 3, not 1e-3 / 1e-6)
_UNITS = {
    "ms": ("time", -3),
    "s": ("time", 0),
    "uV": ("voltage", -6),
    "mV": ("voltage", -3),
    "V": ("voltage", 0),
    "m/s": ("velocity", 0),
    "%": ("percent", 0),
}

_UNIT_SUFFIX = {"ms": "ms", "uV": "uv", "m/s": "m_s", "%": "pct"}

STANDARD_COMPARISONS = (
    ("dml", "upper"),
    ("cv", "lower"),
    ("distal_amp", "lower"),  # amp_pct_lln of motor studies
    ("f_min", "upper"),
    ("snap_peak", "upper"),
    ("scv", "lower"),
    ("snap_amp", "lower"),  # amp_pct_lln of sensory studies
)
"""Comparisons always present in the nerves table (empty when the file has no such limit)."""

_MODEL_VARS = ("age", "age2", "height")


def pct_column(measure: str, direction: str) -> str:
    """Name of the percentage column, e.g. ``dml_pct_uln``, ``amp_pct_lln``."""
    return f"{MEASURES[measure].prefix}_pct_{'uln' if direction == 'upper' else 'lln'}"


def limit_column(measure: str, direction: str) -> str:
    """Name of the column holding the limit used, e.g. ``dml_uln_ms``, ``amp_lln_uv``."""
    spec = MEASURES[measure]
    return f"{spec.prefix}_{'uln' if direction == 'upper' else 'lln'}_{_UNIT_SUFFIX[spec.unit]}"


@dataclass(frozen=True)
class LimitRow:
    """One normal limit (see the module docstring for the fields)."""

    nerve: str
    measure: str
    direction: str
    unit: str
    source: str
    status: str
    value: float | None = None
    model: str | None = None
    intercept: float = 0.0
    coefficients: dict = field(default_factory=dict)
    residual_sd: float = 0.0
    z: float = 0.0
    record_site: str = ""
    age_min: float = -math.inf
    age_max: float = math.inf
    height_min: float = -math.inf
    height_max: float = math.inf
    distance_mm: float = math.nan
    note: str = ""
    index: int = 0

    @property
    def has_bands(self) -> bool:
        return math.isfinite(self.age_min) or math.isfinite(self.age_max)

    @property
    def has_height_bands(self) -> bool:
        return math.isfinite(self.height_min) or math.isfinite(self.height_max)

    def evaluate(self, age: float, height: float) -> tuple[float, str]:
        """The limit in the measure column's unit for a subject, and a reason when it has none."""
        if self.value is not None:
            raw = float(self.value)
        else:
            x = {"age": age, "age2": age * age, "height": height}
            missing = [k for k in self.coefficients if not np.isfinite(x[k])]
            if missing:
                need = sorted({"age" if k == "age2" else k for k in missing})
                return math.nan, f"limit needs {', '.join(need)} (unknown)"
            sign = -1.0 if self.direction == "lower" else 1.0
            lin = self.intercept + sum(c * x[k] for k, c in self.coefficients.items())
            lin += sign * self.z * self.residual_sd
            raw = math.exp(lin) if self.model == "log_linear" else lin
        target = MEASURES[self.measure].unit
        exponent = _UNITS[self.unit][1] - _UNITS[target][1]
        return (raw * 10.0**exponent if exponent >= 0 else raw / 10.0**-exponent), ""

    def describe(self) -> str:
        if self.value is not None:
            return f"{self.value:g} {self.unit}"
        terms = " ".join(f"{c:+g} {k}" for k, c in self.coefficients.items())
        sign = "-" if self.direction == "lower" else "+"
        core = f"{self.intercept:g} {terms} {sign} {self.z:g} x {self.residual_sd:g}"
        return f"exp({core}) {self.unit}" if self.model == "log_linear" else f"{core} {self.unit}"


class NormalLimits:
    """A loaded normal-limit file.

    Use :func:`load_limits` (default file, a path, or an existing object).

    Attributes
    ----------
    info : FileInfo
        id, version, sha256 and path of the file.
    rows : list of LimitRow
    """

    def __init__(self, doc: dict, info: FileInfo):
        self.info = info
        self.description = str(doc.get("meta", {}).get("description", "")).strip()
        raw_rows = doc.get("limit", [])
        if not isinstance(raw_rows, list) or not raw_rows:
            raise RuleError(f"limits file {info.path}: no [[limit]] rows")
        self.rows = [self._row(r, i, info.path) for i, r in enumerate(raw_rows)]
        self._check_overlaps()

    @property
    def label(self) -> str:
        return self.info.label

    def __repr__(self) -> str:
        return f"NormalLimits({self.info.label}, {len(self.rows)} rows, {self.info.path})"

    @staticmethod
    def _row(r: dict, i: int, path: str) -> LimitRow:
        where = f"limits file {path}, [[limit]] #{i + 1}"
        if not isinstance(r, dict):
            raise RuleError(f"{where}: expected a table")
        known = {
            "nerve",
            "measure",
            "direction",
            "unit",
            "value",
            "model",
            "intercept",
            "coefficients",
            "residual_sd",
            "z",
            "record_site",
            "age_min",
            "age_max",
            "height_min",
            "height_max",
            "distance_mm",
            "source",
            "status",
            "note",
        }
        unknown = sorted(set(r) - known)
        if unknown:
            raise RuleError(f"{where}: unknown keys {unknown}")
        for key in ("nerve", "measure", "direction", "unit", "source", "status"):
            if not isinstance(r.get(key), str) or not r[key]:
                raise RuleError(f"{where}: '{key}' is required (a string)")
        if r["measure"] not in MEASURES:
            raise RuleError(f"{where}: unknown measure {r['measure']!r}; one of {sorted(MEASURES)}")
        if r["direction"] not in ("upper", "lower"):
            raise RuleError(
                f"{where}: direction must be 'upper' or 'lower', got {r['direction']!r}"
            )
        unit = r["unit"]
        want = _UNITS.get(MEASURES[r["measure"]].unit, ("?",))[0]
        if unit not in _UNITS or _UNITS[unit][0] != want:
            raise RuleError(
                f"{where}: unit {unit!r} does not fit measure {r['measure']!r} ({want})"
            )
        check_status(r["status"], where)
        has_value = "value" in r
        model = r.get("model")
        if has_value == (model is not None):
            raise RuleError(f"{where}: give either 'value' or 'model' (log_linear or linear)")
        if has_value and not isinstance(r["value"], (int, float)):
            raise RuleError(f"{where}: value must be a number")
        if model is not None:
            if model not in ("log_linear", "linear"):
                raise RuleError(f"{where}: model must be 'log_linear' or 'linear', got {model!r}")
            coef = r.get("coefficients", {})
            if not isinstance(coef, dict) or any(k not in _MODEL_VARS for k in coef):
                raise RuleError(f"{where}: coefficients must be a table over {_MODEL_VARS}")
            for key in ("intercept",):
                if not isinstance(r.get(key), (int, float)):
                    raise RuleError(f"{where}: model needs a numeric '{key}'")
        return LimitRow(
            nerve=r["nerve"].strip().lower(),
            measure=r["measure"],
            direction=r["direction"],
            unit=unit,
            source=r["source"],
            status=r["status"],
            value=float(r["value"]) if has_value else None,
            model=model,
            intercept=float(r.get("intercept", 0.0)),
            coefficients={k: float(v) for k, v in r.get("coefficients", {}).items()},
            residual_sd=float(r.get("residual_sd", 0.0)),
            z=float(r.get("z", 0.0)),
            record_site=str(r.get("record_site", "")).strip(),
            age_min=float(r.get("age_min", -math.inf)),
            age_max=float(r.get("age_max", math.inf)),
            height_min=float(r.get("height_min", -math.inf)),
            height_max=float(r.get("height_max", math.inf)),
            distance_mm=float(r.get("distance_mm", math.nan)),
            note=str(r.get("note", "")),
            index=i,
        )

    def _check_overlaps(self) -> None:
        seen: dict[tuple, list[LimitRow]] = {}
        for row in self.rows:
            key = (row.nerve, row.measure, row.direction, row.record_site.lower())
            for other in seen.get(key, []):
                if (
                    row.age_min < other.age_max
                    and other.age_min < row.age_max
                    and row.height_min < other.height_max
                    and other.height_min < row.height_max
                ):
                    raise RuleError(
                        f"limits file {self.info.path}: rows #{other.index + 1} and "
                        f"#{row.index + 1} "
                        f"both define {row.direction} {row.measure} of {row.nerve} for overlapping "
                        "subjects"
                    )
            seen.setdefault(key, []).append(row)

    def measures(self) -> list[tuple[str, str]]:
        """(measure, direction) pairs the file defines, in the order of MEASURES."""
        have = {(r.measure, r.direction) for r in self.rows}
        return [(m, d) for m in MEASURES for d in ("upper", "lower") if (m, d) in have]

    def lookup(
        self,
        nerve: str,
        measure: str,
        direction: str,
        *,
        record_site: str = "",
        age: float = math.nan,
        height: float = math.nan,
    ) -> tuple[float, LimitRow | None, str]:
        """The limit for one study.

        Returns
        -------
        (value, row, reason)
            ``value`` in the unit of the measure's column (NaN when none applies), the row used,
            and why there is no value.
        """
        cands = [
            r
            for r in self.rows
            if r.nerve == nerve and r.measure == measure and r.direction == direction
        ]
        if not cands:
            return math.nan, None, f"no {direction} limit for {nerve} {measure}"
        site = (record_site or "").strip().lower()
        if site:
            cands = [r for r in cands if not r.record_site or r.record_site.lower() == site]
            if not cands:
                return (
                    math.nan,
                    None,
                    f"no {direction} limit for {nerve} {measure} recorded at {record_site}",
                )
        # most specific first: record site given
        cands.sort(key=lambda r: (0 if r.record_site else 1, r.index))
        reason = ""
        for r in cands:
            if r.has_bands:
                if not np.isfinite(age):
                    reason = "limit is age-banded and the age is unknown"
                    continue
                if not (r.age_min <= age < r.age_max):
                    reason = f"no limit band for age {age:g}"
                    continue
            if r.has_height_bands:
                if not np.isfinite(height):
                    reason = "limit is height-banded and the height is unknown"
                    continue
                if not (r.height_min <= height < r.height_max):
                    reason = f"no limit band for height {height:g}"
                    continue
            value, why = r.evaluate(age, height)
            return value, r, why
        return math.nan, None, reason


def load_limits(limits: NormalLimits | str | os.PathLike | None = None) -> NormalLimits:
    """Load normal limits: ``None`` = the default file shipped with ncsproc, or a path."""
    if isinstance(limits, NormalLimits):
        return limits
    path = data_path(*DEFAULT_LIMITS) if limits is None else limits
    doc, info = read_toml(path, "limits")
    return NormalLimits(doc, info)


def apply_limits(
    nerves: pd.DataFrame, limits: NormalLimits | str | os.PathLike | None = None
) -> pd.DataFrame:
    """Add the normal-limit comparisons to a nerves table (from :func:`study_features`).

    For each measure of :data:`STANDARD_COMPARISONS` and any other the file defines, adds the
    limit used (``<prefix>_<uln|lln>_<unit>``) and ``<prefix>_pct_<uln|lln>`` = 100 x feature /
    limit, on the rows whose modality the measure belongs to. ``amp_pct_lln`` is the distal CMAP
    amplitude of a motor study and the SNAP amplitude of a sensory one. Also adds
    ``limits_version`` (``id@version``), ``limits_sha256``, ``limits_status`` (the status tags of
    the limits used, e.g. ``dml=U cv=U``) and ``limits_missing`` (why a comparison is empty).

    Returns
    -------
    pandas.DataFrame
        A copy of ``nerves`` with the columns added.
    """
    lim = load_limits(limits)
    out = nerves.copy()
    pairs = list(STANDARD_COMPARISONS)
    for p in lim.measures():
        if p not in pairs:
            pairs.append(p)
    pct_cols: list[str] = []
    lim_cols: list[str] = []
    for m, d in pairs:
        for col, bucket in ((pct_column(m, d), pct_cols), (limit_column(m, d), lim_cols)):
            if col not in bucket:
                bucket.append(col)
                out[col] = np.nan
    statuses: list[str] = []
    missing: list[str] = []
    values: dict[str, list[float]] = {c: [np.nan] * len(out) for c in pct_cols + lim_cols}
    for i, row in enumerate(out.to_dict("records")):
        tags: list[str] = []
        why: list[str] = []
        for m, d in pairs:
            spec = MEASURES[m]
            if row["modality"] not in spec.modalities:
                continue
            feature = row.get(spec.column, np.nan)
            if not (isinstance(feature, (int, float)) and np.isfinite(feature)):
                continue
            value, lrow, reason = lim.lookup(
                row["nerve"],
                m,
                d,
                record_site=row.get("record_site", ""),
                age=float(row.get("age_years", np.nan)),
                height=float(row.get("height_cm", np.nan)),
            )
            if not np.isfinite(value):
                why.append(f"{m}: {reason}")
                continue
            values[limit_column(m, d)][i] = value
            values[pct_column(m, d)][i] = 100.0 * feature / value
            tags.append(f"{m}={lrow.status if lrow is not None else '?'}")
        statuses.append(" ".join(tags))
        missing.append("; ".join(why))
    for col, vals in values.items():
        out[col] = np.asarray(vals, dtype=float)
    out["limits_version"] = lim.label
    out["limits_sha256"] = lim.info.sha256
    out["limits_status"] = statuses
    out["limits_missing"] = missing
    return out


def worst_status(tags: list[str]) -> str:
    """The least certain status tag of a list (C < S < U < P), '' for none."""
    tags = [t for t in tags if t]
    return max(tags, key=status_rank) if tags else ""
