"""Anti-MAG electrodiagnostic pattern classification from a versioned rule file.

The rule file (TOML; schema in ``formats/features.md`` and in the header of
``ncsproc/data/patterns/antimag-proposal.toml``) holds named thresholds with their source and
status tags, named per-nerve predicates, and an ordered list of patterns each with a condition
over the exam. Conditions are expressions of the safe rule language of
:mod:`ncsproc.features._expr`; nothing in a rule file can run code. The first pattern whose
condition holds is the exam's pattern; the result carries the rules version and the evidence
(which predicates held in which nerves, which criteria levels were reached, which thresholds were
used with their tags).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..vocab import PATTERNS  # the contract's pattern vocabulary, re-exported
from ._expr import Expression, RuleError, truth
from ._files import FileInfo, check_status, data_path, read_toml
from .criteria import CriteriaSet, CriterionResult

__all__ = ["PatternRules", "PatternResult", "load_rules", "PATTERNS", "DEFAULT_RULES"]

DEFAULT_RULES = ("patterns", "antimag-proposal-v2.toml")
"""Default rule file: version 2 (0.2.0), chosen because it recovers more patterns than v1 on
every setting of the robustness sweep (formats/features.md); v1 stays loadable by name."""

_NERVE_FUNCS = ("met", "met_any")
_EXAM_FUNCS = ("count", "count_sensory", "reached", "level")


@dataclass(frozen=True)
class Threshold:
    name: str
    value: Any  # float or {nerve: float}
    source: str
    status: str
    note: str = ""

    def describe(self) -> dict:
        return {"value": self.value, "source": self.source, "status": self.status}


@dataclass(frozen=True)
class PatternRule:
    name: str
    when: Expression
    source: str
    status: str
    note: str = ""


@dataclass
class PatternResult:
    """The pattern of one exam and the evidence behind it."""

    exam_id: str
    pattern: str
    rule: str
    rules_version: str
    evidence: dict = field(default_factory=dict)


class PatternRules:
    """A loaded pattern rule file. Use :func:`load_rules`."""

    def __init__(self, doc: dict, info: FileInfo):
        self.info = info
        where = f"rules file {info.path}"
        meta = doc["meta"]
        self.criteria_ids = list(meta.get("criteria", []))
        self.fallback = meta.get("fallback", "not_classifiable")
        if self.fallback not in PATTERNS:
            raise RuleError(f"{where}: fallback must be one of {PATTERNS}")
        self.description = str(meta.get("description", "")).strip()
        self.thresholds: dict[str, Threshold] = {}
        for name, d in doc.get("thresholds", {}).items():
            w = f"{where}, thresholds.{name}"
            if not isinstance(d, dict) or "value" not in d:
                raise RuleError(f"{w}: a table with value, source, status is required")
            v = d["value"]
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
            ok = ok or (
                isinstance(v, dict) and all(isinstance(x, (int, float)) for x in v.values())
            )
            if not ok:
                raise RuleError(f"{w}: value must be a number or a {{nerve = number}} table")
            self.thresholds[name] = Threshold(
                name,
                v,
                str(d.get("source", "")),
                check_status(d.get("status"), w),
                str(d.get("note", "")),
            )
        self.motor = self._predicates(doc.get("motor", {}), f"{where} [motor]")
        self.sensory = self._predicates(doc.get("sensory", {}), f"{where} [sensory]")
        clash = (set(self.motor) | set(self.sensory)) & set(self.thresholds)
        if clash:
            raise RuleError(f"{where}: names used both as predicate and threshold: {sorted(clash)}")
        self.patterns: list[PatternRule] = []
        for i, p in enumerate(doc.get("pattern", [])):
            w = f"{where}, [[pattern]] #{i + 1}"
            if p.get("name") not in PATTERNS:
                raise RuleError(f"{w}: name must be one of {PATTERNS}, got {p.get('name')!r}")
            expr = Expression(p.get("when", ""), functions=_EXAM_FUNCS, where=f"{w} ({p['name']})")
            self._check_calls(expr, w)
            self.patterns.append(
                PatternRule(
                    p["name"],
                    expr,
                    str(p.get("source", "")),
                    check_status(p.get("status"), w),
                    str(p.get("note", "")),
                )
            )
        if not self.patterns:
            raise RuleError(f"{where}: no [[pattern]]")

    def __repr__(self) -> str:
        return f"PatternRules({self.info.label}, patterns={[p.name for p in self.patterns]})"

    @property
    def label(self) -> str:
        return self.info.label

    def _predicates(self, table: Mapping, where: str) -> dict[str, Expression]:
        out = {}
        for name, text in table.items():
            expr = Expression(text, functions=_NERVE_FUNCS, where=f"{where} {name}")
            self._check_calls(expr, f"{where} {name}")
            out[name] = expr
        known = _known_columns() | set(self.thresholds) | set(out)
        for name, expr in out.items():
            unknown = sorted(expr.names - known)
            if unknown:
                raise RuleError(
                    f"{where} {name}: unknown names {unknown} (not a nerves-table column, "
                    "threshold or predicate)"
                )
        return out

    def _check_calls(self, expr: Expression, where: str) -> None:
        for func, args, kwargs in expr.calls:
            if func in ("met", "met_any", "reached", "level"):
                if not args or args[0] not in self.criteria_ids:
                    raise RuleError(
                        f"{where}: {func}() must name a criteria set listed in [meta] criteria "
                        f"{self.criteria_ids}, got {args[:1]}"
                    )
            if func in ("count", "count_sensory") and (len(args) != 1 or kwargs):
                raise RuleError(f"{where}: {func}() takes one predicate or column name")
            if func == "reached":
                extra = set(kwargs) - {"without", "mask"}
                if len(args) != 2 or extra:
                    raise RuleError(
                        f"{where}: reached('<set>', '<level>', without=[...], mask={{...}})"
                    )
                for pred in kwargs.get("mask", {}).values():
                    if pred not in self.motor:
                        raise RuleError(
                            f"{where}: mask predicate {pred!r} is not a [motor] predicate"
                        )

    # -- evaluation ------------------------------------------------------------------------
    def classify(
        self,
        exam_id: str,
        nerves: pd.DataFrame | Sequence[Mapping],
        criteria: Sequence[CriteriaSet],
        results: Mapping[str, Sequence[CriterionResult]],
    ) -> PatternResult:
        """Classify one exam.

        Parameters
        ----------
        exam_id : str
        nerves : pandas.DataFrame or sequence of dict
            The exam's rows of the nerves table (with normal-limit comparisons).
        criteria : sequence of CriteriaSet
            The criteria sets evaluated (must include those the rules name).
        results : mapping
            ``set_id -> criterion results`` of the exam's motor studies.
        """
        sets = {c.id: c for c in criteria}
        missing = [c for c in self.criteria_ids if c not in sets]
        if missing:
            raise RuleError(
                f"rules {self.label} need criteria sets {missing}, which were not evaluated"
            )
        ev = _Evaluation(self, exam_id, nerves, sets, results)
        for rule in self.patterns:
            ev.start()
            if truth(rule.when.evaluate(ev.exam_name, ev.exam_call)):
                return PatternResult(exam_id, rule.name, rule.name, self.label, ev.evidence(rule))
        ev.start()
        return PatternResult(
            exam_id,
            self.fallback,
            "fallback",
            self.label,
            {"rule": "fallback", "note": "no pattern rule matched", "rules": self.label},
        )


class _Evaluation:
    """State of the evaluation of one exam: memoised predicates and an evidence recorder."""

    def __init__(self, rules: PatternRules, exam_id, nerves: pd.DataFrame, sets, results):
        self.rules = rules
        self.exam_id = exam_id
        self.sets: dict[str, CriteriaSet] = sets
        self.results = results
        rows = nerves.to_dict("records") if isinstance(nerves, pd.DataFrame) else list(nerves)
        rows.sort(key=lambda r: r["study"])
        self.motor_rows = [r for r in rows if r.get("modality") == "motor"]
        self.sensory_rows = [r for r in rows if r.get("modality") == "sensory"]
        self.met: dict[tuple[str, str], dict[str, CriterionResult]] = {}
        for set_id, res in results.items():
            for r in res:
                self.met.setdefault((set_id, r.study), {})[r.criterion] = r
        self.cache: dict[tuple[str, str], Any] = {}
        self.start()

    def start(self) -> None:
        self.counts: dict[str, dict] = {}
        self.reached: dict[str, dict] = {}
        self.used: set[str] = set()

    # nerve scope -------------------------------------------------------------------------
    def predicate(self, row: Mapping, name: str, section: dict[str, Expression], stack=()) -> Any:
        key = (row["study"], name)
        self.used.update(self._static_thresholds(name, section))
        if key in self.cache:
            return self.cache[key]
        if name in stack:
            raise RuleError(f"rules {self.rules.label}: predicate {name!r} refers to itself")
        expr = section[name]

        def resolve(n: str) -> Any:
            if n in section and n != name:
                return self.predicate(row, n, section, (*stack, name))
            if n in self.rules.thresholds:
                self.used.add(n)
                v = self.rules.thresholds[n].value
                if isinstance(v, dict):
                    return float(v.get(row.get("nerve", ""), math.nan))
                return float(v)
            if n in row:
                v = row[n]
                try:
                    return math.nan if pd.isna(v) else (v.item() if hasattr(v, "item") else v)
                except (TypeError, ValueError):
                    return v
            raise RuleError(f"rules {self.rules.label}: unknown name {n!r} in {expr.text!r}")

        def call(func: str, args: tuple, kwargs: dict) -> Any:
            set_id = args[0]
            res = self.met.get((set_id, row["study"]), {})
            if func == "met":
                if len(args) != 2 or args[1] not in self.sets[set_id].criteria:
                    raise RuleError(f"met('{set_id}', criterion): unknown criterion {args[1:]}")
                r = res.get(args[1])
                return bool(r is not None and r.met)
            without = set(kwargs.get("without", []))
            return any(r.met for c, r in res.items() if c not in without)

        value = expr.evaluate(resolve, call)
        self.cache[key] = value
        return value

    def _static_thresholds(self, name: str, section: dict[str, Expression], stack=()) -> set[str]:
        """Thresholds a predicate refers to, directly or through other predicates."""
        out = set()
        for n in section[name].names:
            if n in self.rules.thresholds:
                out.add(n)
            elif n in section and n != name and n not in stack:
                out |= self._static_thresholds(n, section, (*stack, name))
        return out

    # exam scope --------------------------------------------------------------------------
    def exam_name(self, n: str) -> Any:
        if n == "n_motor":
            return len({_unit(r) for r in self.motor_rows})
        if n in self.rules.thresholds:
            self.used.add(n)
            v = self.rules.thresholds[n].value
            if isinstance(v, dict):
                raise RuleError(
                    f"nerve-specific threshold {n!r} used outside a [motor]/[sensory] predicate"
                )
            return float(v)
        raise RuleError(f"rules {self.rules.label}: unknown exam-level name {n!r}")

    def _count(
        self, name: str, rows: list[dict], section: dict[str, Expression], label: str
    ) -> int:
        units: dict[str, list[str]] = {}
        for r in rows:
            if name in section:
                v = self.predicate(r, name, section)
            elif name in r:
                v = r[name]
            else:
                raise RuleError(
                    f"rules {self.rules.label}: {label}({name}): no such predicate or column"
                )
            if truth(v):
                units.setdefault(_unit(r), []).append(r["study"])
        self.counts[f"{label}({name})"] = {
            "count": len(units),
            "nerves": sorted(units),
            "studies": sorted(s for v in units.values() for s in v),
        }
        return len(units)

    def exam_call(self, func: str, args: tuple, kwargs: dict) -> Any:
        if func == "count":
            return self._count(args[0], self.motor_rows, self.rules.motor, "count")
        if func == "count_sensory":
            return self._count(args[0], self.sensory_rows, self.rules.sensory, "count_sensory")
        set_id = args[0]
        cs = self.sets[set_id]
        res = list(self.results.get(set_id, []))
        if func == "level":
            lv = cs.level(res, exam_id=self.exam_id)
            self.reached[f"level({set_id})"] = lv.as_dict()
            return lv.level
        level = args[1]
        if level not in cs.levels_order:
            raise RuleError(
                f"reached(): {set_id} has no level {level!r} (levels {cs.levels_order})"
            )
        without = list(kwargs.get("without", []))
        mask_spec = dict(kwargs.get("mask", {}))
        rows_by_study = {r["study"]: r for r in self.motor_rows}

        def mask(r: CriterionResult) -> bool:
            pred = mask_spec.get(r.criterion)
            if pred is None or r.study not in rows_by_study:
                return False
            return truth(self.predicate(rows_by_study[r.study], pred, self.rules.motor))

        lv = cs.level(res, exam_id=self.exam_id, without=without, mask=mask if mask_spec else None)
        ok = lv.level in cs.levels_order and cs.levels_order.index(
            lv.level
        ) <= cs.levels_order.index(level)
        key = f"reached({set_id}, {level}" + (f", without={without}" if without else "")
        key += (f", mask={mask_spec}" if mask_spec else "") + ")"
        self.reached[key] = {"reached": ok, **lv.as_dict()}
        return ok

    def evidence(self, rule: PatternRule) -> dict:
        return {
            "rule": rule.name,
            "when": rule.when.text,
            "status": rule.status,
            "source": rule.source,
            "counts": self.counts,
            "criteria": self.reached,
            "thresholds": {n: self.rules.thresholds[n].describe() for n in sorted(self.used)},
        }


def _known_columns() -> set[str]:
    """Nerves-table columns a predicate may refer to."""
    from .limits import MEASURES, limit_column, pct_column
    from .studies import NERVE_COLUMNS, NERVE_EXTRA_COLUMNS

    cols = set(NERVE_COLUMNS) | set(NERVE_EXTRA_COLUMNS)
    for m in MEASURES:
        for d in ("upper", "lower"):
            cols |= {pct_column(m, d), limit_column(m, d)}
    return cols


def _unit(row: Mapping) -> str:
    return f"{row.get('side', '')}_{row.get('nerve', '')}"


def load_rules(rules: PatternRules | str | os.PathLike | None = None) -> PatternRules:
    """Load pattern rules: ``None`` = the ncs-domain.md 3.3 proposal v2 shipped with ncsproc."""
    if isinstance(rules, PatternRules):
        return rules
    path = data_path(*DEFAULT_RULES) if rules is None else rules
    doc, info = read_toml(path, "rules")
    return PatternRules(doc, info)
