"""Electrodiagnostic criteria (EFNS/PNS 2010, EAN/PNS 2021) as data plus a small rule engine.

A criteria file (TOML; schema in ``formats/features.md`` and in the header of
``ncsproc/data/criteria/efns-pns-2010.toml``) defines

* per-nerve **criteria**: one column of the nerves table compared with a threshold, with gates
  (e.g. distal CMAP >= 20 % LLN), threshold switches (e.g. F latency >= 150 % ULN when the
  distal CMAP is < 80 % LLN), excluded nerves (tibial for conduction block), per-nerve
  thresholds (tibial dispersion) and filter-dependent cut-offs (distal CMAP duration: refused
  when the low-frequency filter is unknown);
* **levels** (strongest first), each reached when one of its clauses holds: a clause needs a
  number of nerves meeting one of its criteria, optionally plus a number of *other* nerves
  meeting another demyelinating criterion.

Every evaluation returns its evidence: for each nerve and criterion the value, operator,
threshold, state (``met``, ``not_met``, ``not_evaluable``, ``gated``, ``refused``,
``excluded``), the reason when not evaluated, and the source id and status tags of the
thresholds used; for each exam the level and the clauses (with nerves) that reached it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from ._expr import OPS, RuleError, compare
from ._files import FileInfo, check_status, data_path, read_toml, status_rank

__all__ = [
    "CriteriaSet",
    "Criterion",
    "CriterionResult",
    "LevelResult",
    "load_criteria",
    "evaluate_criteria",
    "CriteriaEvaluation",
    "DEFAULT_CRITERIA",
]

DEFAULT_CRITERIA = (("criteria", "efns-pns-2010.toml"), ("criteria", "ean-pns-2021.toml"))

STATES = ("met", "not_met", "not_evaluable", "gated", "refused", "excluded")


def _scalar(x: Any) -> Any:
    """numpy scalars to Python scalars; pandas NA to NaN."""
    if x is None:
        return math.nan
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        try:
            x = x.item()
        except (ValueError, AttributeError):
            pass
    try:
        if pd.isna(x):
            return math.nan
    except (TypeError, ValueError):
        pass
    return x


def _missing(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _fmt(x: Any) -> str:
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, float):
        return "NaN" if math.isnan(x) else f"{x:.4g}"
    return str(x)


def _worst(tags: Iterable[str]) -> str:
    tags = [t for t in tags if t]
    return max(tags, key=status_rank) if tags else ""


@dataclass(frozen=True)
class Condition:
    """``value op threshold`` with its provenance."""

    value: str
    op: str
    threshold: Any
    source: str = ""
    status: str = ""

    def text(self) -> str:
        return f"{self.value} {self.op} {_fmt(self.threshold)}"


@dataclass(frozen=True)
class Cutoff:
    """Filter-dependent per-nerve thresholds (``highpass`` None = any known filter)."""

    highpass: float | None
    op: str
    thresholds: Mapping[str, float]
    source: str
    status: str
    filter_status: str
    note: str = ""

    def matches(self, hp: float) -> bool:
        return self.highpass is None or abs(hp - self.highpass) <= 1e-6 * max(
            1.0, abs(self.highpass)
        )


@dataclass
class CriterionResult:
    """Evidence of one criterion in one nerve (study)."""

    criteria_set: str
    criterion: str
    exam_id: str
    study: str
    nerve: str
    side: str
    value_name: str
    value: Any
    op: str
    threshold: Any
    state: str
    reason: str
    source: str
    status: str
    tags: str
    label: str

    @property
    def met(self) -> bool:
        return self.state == "met"

    @property
    def unit(self) -> str:
        """The nerve unit the criterion counts for: ``<side>_<nerve>``."""
        return f"{self.side}_{self.nerve}"

    def as_dict(self) -> dict:
        d = {name: getattr(self, name) for name in self.__dataclass_fields__}
        d["met"] = self.met
        return d

    def short(self) -> dict:
        """Compact evidence for JSON: study, value, op, threshold, status."""
        return {
            "criterion": self.criterion,
            "study": self.study,
            "value": self.value_name,
            "measured": _round(self.value),
            "op": self.op,
            "threshold": _round(self.threshold),
            "source": self.source,
            "status": self.status,
        }


def _round(x: Any) -> Any:
    if isinstance(x, float):
        return None if math.isnan(x) else float(f"{x:.6g}")
    return x


@dataclass(frozen=True)
class Criterion:
    """One per-nerve criterion of a criteria set (see the module docstring)."""

    set_id: str
    id: str
    label: str
    value: str
    op: str
    threshold: Any
    source: str
    status: str
    gates: tuple[Condition, ...] = ()
    switches: tuple[tuple[Condition, Any, str, str], ...] = ()
    exclude_nerves: tuple[str, ...] = ()
    exclude_source: str = ""
    exclude_status: str = ""
    nerve_threshold: Mapping[str, tuple[str, Any, str, str]] = field(default_factory=dict)
    filter_dependent: bool = False
    cutoffs: tuple[Cutoff, ...] = ()
    counts_as_other: bool = True
    note: str = ""
    only_nerves: tuple[str, ...] = ()

    def evaluate(self, row: Mapping[str, Any]) -> CriterionResult:
        """Evaluate on one nerves-table row (a motor study)."""
        nerve = str(row.get("nerve", ""))
        value = _scalar(row.get(self.value, math.nan))
        res = dict(
            criteria_set=self.set_id,
            criterion=self.id,
            exam_id=str(row.get("exam_id", "")),
            study=str(row.get("study", "")),
            nerve=nerve,
            side=str(row.get("side", "")),
            value_name=self.value,
            value=value,
            op=self.op,
            threshold=self.threshold,
            source=self.source,
            status=self.status,
            label=self.label,
            reason="",
            tags=f"threshold={self.status}",
        )
        tags = {"threshold": self.status}

        def done(state: str, reason: str = "") -> CriterionResult:
            res["state"] = state
            res["reason"] = reason
            res["tags"] = " ".join(f"{k}={v}" for k, v in tags.items() if v)
            res["status"] = _worst(tags.values())
            return CriterionResult(**res)

        if nerve in self.exclude_nerves:
            tags = {"exclusion": self.exclude_status}
            res["source"] = self.exclude_source or self.source
            return done("excluded", f"{nerve} nerve excluded from this criterion")
        if self.only_nerves and nerve not in self.only_nerves:
            return done("excluded", f"applies to the {'/'.join(self.only_nerves)} nerves only")
        if _missing(value):
            status = row.get("study_status", "")
            extra = f" (study {status})" if status and status != "ok" else ""
            return done("not_evaluable", f"{self.value} missing{extra}")
        for gate in self.gates:
            gv = _scalar(row.get(gate.value, math.nan))
            tags["gate"] = gate.status
            if _missing(gv):
                return done("not_evaluable", f"gate {gate.value} missing (needs the normal limit)")
            if not compare(gv, gate.op, gate.threshold):
                return done("gated", f"{gate.value}={_fmt(gv)}, gate needs {gate.text()}")
        op, thr = self.op, self.threshold
        if nerve in self.nerve_threshold:
            op, thr, src, st = self.nerve_threshold[nerve]
            res["source"] = src
            tags["threshold"] = st
        for when, sw_thr, src, st in self.switches:
            wv = _scalar(row.get(when.value, math.nan))
            if _missing(wv):
                return done("not_evaluable", f"{when.value} missing (the threshold depends on it)")
            if compare(wv, when.op, when.threshold):
                thr = sw_thr
                res["source"] = src
                tags["threshold"] = st
                break
        if self.filter_dependent:
            hp = _scalar(row.get("highpass_hz", math.nan))
            if _missing(hp):
                return done(
                    "refused",
                    "low-frequency filter (highpass) unknown: the cut-offs depend on it",
                )
            cut = next((c for c in self.cutoffs if c.highpass is not None and c.matches(hp)), None)
            if cut is None:
                cut = next((c for c in self.cutoffs if c.highpass is None), None)
            if cut is None:
                known = ", ".join(
                    f"{c.highpass:g} Hz" for c in self.cutoffs if c.highpass is not None
                )
                return done(
                    "refused", f"no cut-off for a {hp:g} Hz low-frequency filter (file has {known})"
                )
            tags["threshold"] = cut.status
            tags["filter"] = cut.filter_status
            res["source"] = cut.source
            if nerve not in cut.thresholds:
                return done("not_evaluable", f"no cut-off for the {nerve} nerve")
            op, thr = cut.op, cut.thresholds[nerve]
            if cut.note:
                res["label"] = f"{self.label} [{cut.note}]"
        res["op"] = op
        res["threshold"] = thr
        met = compare(value, op, thr)
        return done("met" if met else "not_met")


@dataclass(frozen=True)
class Clause:
    criteria: tuple[str, ...]
    nerves: int
    other_nerves: int
    other_exclude: tuple[str, ...]
    source: str
    status: str
    other_criteria: tuple[str, ...] = ()

    def text(self) -> str:
        plural = "s" if self.nerves > 1 else ""
        s = f"{' or '.join(self.criteria)} in >= {self.nerves} nerve{plural}"
        if self.other_nerves and self.other_criteria:
            s += f" + {' or '.join(self.other_criteria)} in >= {self.other_nerves} other nerve"
        elif self.other_nerves:
            s += f" + another demyelinating parameter in >= {self.other_nerves} other nerve"
        return s


@dataclass(frozen=True)
class Level:
    name: str
    clauses: tuple[Clause, ...]
    source: str
    status: str


@dataclass
class LevelResult:
    """The level an exam reaches in one criteria set, with the clauses that reached it."""

    criteria_set: str
    exam_id: str
    level: str
    clauses: list[dict]

    @property
    def statuses(self) -> list[str]:
        out = []
        for c in self.clauses:
            out.append(c["status"])
            out.extend(e["status"] for e in c["evidence"])
        return out

    @property
    def status(self) -> str:
        """Least certain tag among the rules and thresholds behind the level ('' if none)."""
        return _worst(self.statuses)

    def as_dict(self) -> dict:
        return {
            "criteria_set": self.criteria_set,
            "level": self.level,
            "status": self.status,
            "clauses": self.clauses,
        }


class CriteriaSet:
    """A loaded criteria file. Use :func:`load_criteria`."""

    def __init__(self, doc: dict, info: FileInfo, modality: str = "motor"):
        self.info = info
        meta = doc["meta"]
        self.id = info.id
        self.modality = modality
        where = f"criteria file {info.path}" + ("" if modality == "motor" else f" [{modality}]")
        self.nested = bool(meta.get("nested", True))
        self.levels_order = list(meta.get("levels", []))
        self.none_level = str(meta.get("none_level", "none"))
        self.description = str(meta.get("description", "")).strip()
        crits = doc.get("criterion", [])
        if not crits:
            raise RuleError(f"{where}: no [[criterion]]")
        self.criteria: dict[str, Criterion] = {}
        for i, c in enumerate(crits):
            crit = self._criterion(c, f"{where}, [[criterion]] #{i + 1}")
            if crit.id in self.criteria:
                raise RuleError(f"{where}: criterion id {crit.id!r} defined twice")
            self.criteria[crit.id] = crit
        self.levels: list[Level] = []
        for i, lv in enumerate(doc.get("level", [])):
            self.levels.append(self._level(lv, f"{where}, [[level]] #{i + 1}"))
        names = [lv.name for lv in self.levels]
        if not names:
            raise RuleError(f"{where}: no [[level]]")
        if self.levels_order and self.levels_order != names:
            raise RuleError(
                f"{where}: [meta] levels {self.levels_order} differ from the [[level]] "
                f"order {names}"
            )
        self.levels_order = names

    def __repr__(self) -> str:
        crits = list(self.criteria)
        return f"CriteriaSet({self.info.label}, criteria={crits}, levels={self.levels_order})"

    @property
    def label(self) -> str:
        return self.info.label

    # -- parsing ---------------------------------------------------------------------------
    def _cond(self, d: Mapping, where: str, need_tags: bool = True) -> Condition:
        for k in ("value", "op", "threshold"):
            if k not in d:
                raise RuleError(f"{where}: '{k}' is required")
        if d["op"] not in OPS:
            raise RuleError(f"{where}: op must be one of {OPS}, got {d['op']!r}")
        st = check_status(d.get("status"), where) if need_tags or "status" in d else ""
        return Condition(str(d["value"]), d["op"], d["threshold"], str(d.get("source", "")), st)

    def _criterion(self, c: Mapping, where: str) -> Criterion:
        known = {
            "id",
            "label",
            "value",
            "op",
            "threshold",
            "source",
            "status",
            "gate",
            "switch",
            "exclude_nerves",
            "exclude_source",
            "exclude_status",
            "nerve_threshold",
            "filter_dependent",
            "cutoff",
            "counts_as_other",
            "note",
            "only_nerves",
        }
        unknown = sorted(set(c) - known)
        if unknown:
            raise RuleError(f"{where}: unknown keys {unknown}")
        for k in ("id", "value", "op", "source"):
            if not isinstance(c.get(k), str) or not c[k]:
                raise RuleError(f"{where}: '{k}' is required (a string)")
        where = f"{where} ({c['id']})"
        if c["op"] not in OPS:
            raise RuleError(f"{where}: op must be one of {OPS}")
        status = check_status(c.get("status"), where)
        filter_dependent = bool(c.get("filter_dependent", False))
        if not filter_dependent and "threshold" not in c:
            raise RuleError(f"{where}: 'threshold' is required")
        gates = tuple(self._cond(g, f"{where} gate") for g in c.get("gate", []))
        switches = []
        for s in c.get("switch", []):
            if "when" not in s or "threshold" not in s:
                raise RuleError(f"{where} switch: 'when' and 'threshold' are required")
            when = self._cond(s["when"], f"{where} switch.when", need_tags=False)
            switches.append(
                (
                    when,
                    s["threshold"],
                    str(s.get("source", c["source"])),
                    check_status(s.get("status"), f"{where} switch"),
                )
            )
        nthr = {}
        for nerve, d in c.get("nerve_threshold", {}).items():
            op = d.get("op", c["op"])
            if op not in OPS or "threshold" not in d:
                raise RuleError(f"{where} nerve_threshold.{nerve}: needs op and threshold")
            nthr[nerve] = (
                op,
                d["threshold"],
                str(d.get("source", c["source"])),
                check_status(d.get("status"), f"{where} nerve_threshold.{nerve}"),
            )
        cutoffs = []
        for j, d in enumerate(c.get("cutoff", [])):
            w = f"{where} cutoff #{j + 1}"
            hp = d.get("highpass_hz")
            if hp == "any":
                hp = None
            elif not isinstance(hp, (int, float)):
                raise RuleError(f"{w}: highpass_hz must be a number (Hz) or 'any'")
            th = d.get("thresholds")
            if not isinstance(th, dict) or not th:
                raise RuleError(f"{w}: thresholds = {{nerve = value}} is required")
            op = d.get("op", c["op"])
            if op not in OPS:
                raise RuleError(f"{w}: op must be one of {OPS}")
            cutoffs.append(
                Cutoff(
                    highpass=None if hp is None else float(hp),
                    op=op,
                    thresholds={k: float(v) for k, v in th.items()},
                    source=str(d.get("source", c["source"])),
                    status=check_status(d.get("status"), w),
                    filter_status=check_status(d.get("filter_status", d.get("status")), w),
                    note=str(d.get("note", "")),
                )
            )
        if filter_dependent and not cutoffs:
            raise RuleError(f"{where}: filter_dependent criteria need [[criterion.cutoff]] rows")
        excl = tuple(c.get("exclude_nerves", []))
        return Criterion(
            set_id=self.id,
            id=c["id"],
            label=str(c.get("label", c["id"])),
            value=c["value"],
            op=c["op"],
            threshold=c.get("threshold", math.nan),
            source=c["source"],
            status=status,
            gates=gates,
            switches=tuple(switches),
            exclude_nerves=excl,
            exclude_source=str(c.get("exclude_source", c["source"])),
            exclude_status=check_status(c.get("exclude_status", status), where) if excl else "",
            nerve_threshold=nthr,
            filter_dependent=filter_dependent,
            cutoffs=tuple(cutoffs),
            counts_as_other=bool(c.get("counts_as_other", True)),
            note=str(c.get("note", "")),
            only_nerves=tuple(c.get("only_nerves", [])),
        )

    def _level(self, lv: Mapping, where: str) -> Level:
        if not isinstance(lv.get("name"), str):
            raise RuleError(f"{where}: 'name' is required")
        clauses = []
        for j, cl in enumerate(lv.get("clause", [])):
            w = f"{where} ({lv['name']}) clause #{j + 1}"
            crits = cl.get("criteria")
            if isinstance(crits, str):
                crits = [crits]
            if not crits or any(c not in self.criteria for c in crits):
                raise RuleError(f"{w}: criteria must name criteria of this file, got {crits!r}")
            excl = list(cl.get("other_exclude", []))
            if any(c not in self.criteria for c in excl):
                raise RuleError(f"{w}: other_exclude names unknown criteria {excl!r}")
            pool = list(cl.get("other_criteria", []))
            if any(c not in self.criteria for c in pool):
                raise RuleError(f"{w}: other_criteria names unknown criteria {pool!r}")
            n = cl.get("nerves", 1)
            m = cl.get("other_nerves", 0)
            if not (isinstance(n, int) and n >= 1 and isinstance(m, int) and m >= 0):
                raise RuleError(f"{w}: nerves >= 1 and other_nerves >= 0 must be integers")
            clauses.append(
                Clause(
                    tuple(crits),
                    n,
                    m,
                    tuple(excl),
                    str(cl.get("source", lv.get("source", ""))),
                    check_status(cl.get("status"), w),
                    tuple(pool),
                )
            )
        if not clauses:
            raise RuleError(f"{where}: a level needs at least one [[level.clause]]")
        return Level(
            lv["name"],
            tuple(clauses),
            str(lv.get("source", "")),
            check_status(lv.get("status"), where),
        )

    # -- evaluation ------------------------------------------------------------------------
    def evaluate_study(self, row: Mapping[str, Any]) -> list[CriterionResult]:
        """Evaluate every criterion on one motor study (a nerves-table row)."""
        return [c.evaluate(row) for c in self.criteria.values()]

    def level(
        self,
        results: Sequence[CriterionResult],
        *,
        exam_id: str = "",
        without: Iterable[str] = (),
        mask: Callable[[CriterionResult], bool] | None = None,
    ) -> LevelResult:
        """The strongest level reached by an exam's criterion results.

        Parameters
        ----------
        results : sequence of CriterionResult
            The per-nerve results of this set for one exam's motor studies.
        without : iterable of str
            Criteria to ignore (e.g. the distal ones, to ask whether non-distal parameters alone
            reach a level).
        mask : callable, optional
            ``mask(result) -> True`` ignores that result (e.g. CV slowing in a nerve whose
            slowing is distal-dominant).
        """
        without = set(without)
        unknown = without - set(self.criteria)
        if unknown:
            raise RuleError(f"{self.id}: unknown criteria {sorted(unknown)}")
        by_unit: dict[str, dict[str, list[CriterionResult]]] = {}
        for r in results:
            if not r.met or r.criterion in without or (mask is not None and mask(r)):
                continue
            by_unit.setdefault(r.unit, {}).setdefault(r.criterion, []).append(r)
        for lv in self.levels:
            found = []
            for clause in lv.clauses:
                ev = self._clause(clause, by_unit, without)
                if ev is not None:
                    found.append(ev)
            if found:
                return LevelResult(self.id, exam_id, lv.name, found)
        return LevelResult(self.id, exam_id, self.none_level, [])

    def findings(
        self, results: Sequence[CriterionResult], *, exam_id: str = ""
    ) -> list[LevelResult]:
        """Every level reached, each tested on its own (for sets whose levels are independent
        findings, ``nested = false``: the sensory demyelinating slowing, sural sparing, abnormal
        conduction in 2 nerves), strongest first."""
        out = []
        for lv in self.levels:
            sub = CriteriaSet.__new__(CriteriaSet)
            sub.__dict__.update(self.__dict__)
            sub.levels = [lv]
            res = sub.level(results, exam_id=exam_id)
            if res.level == lv.name:
                out.append(res)
        return out

    def _clause(self, clause: Clause, by_unit, without: set[str]) -> dict | None:
        crits = [c for c in clause.criteria if c not in without]
        if not crits:
            return None
        units_c = sorted(u for u, d in by_unit.items() if any(c in d for c in crits))
        if len(units_c) < clause.nerves:
            return None
        pool = other_pool(self, clause, without)
        units_o = sorted(u for u, d in by_unit.items() if any(c in d for c in pool))
        if clause.other_nerves:
            first = [u for u in units_c if u not in units_o] + [u for u in units_c if u in units_o]
            chosen = sorted(first[: clause.nerves])
            others = [u for u in units_o if u not in chosen]
            if len(others) < clause.other_nerves:
                return None
        else:
            chosen, others = units_c, []
        evidence: list[str] = []
        for u in chosen:
            for c in crits:
                evidence.extend(r.short() for r in by_unit[u].get(c, []))
        for u in others:
            for c in pool:
                evidence.extend(r.short() for r in by_unit[u].get(c, []))
        return {
            "rule": clause.text(),
            "nerves": chosen,
            "other_nerves": others,
            "source": clause.source,
            "status": clause.status,
            "evidence": evidence,
        }


def other_pool(cs: CriteriaSet, clause: Clause, without=()) -> list[str]:
    """The criteria that count as "another parameter" for a clause with ``other_nerves``:
    the clause's ``other_criteria`` if given, else every criterion that ``counts_as_other``,
    is not one of the clause's and not in its ``other_exclude``."""
    if clause.other_criteria:
        return [c for c in clause.other_criteria if c not in without]
    return [
        c
        for c, crit in cs.criteria.items()
        if crit.counts_as_other
        and c not in clause.criteria
        and c not in clause.other_exclude
        and c not in without
    ]


def _sets_of(doc: dict, info: FileInfo) -> list[CriteriaSet]:
    """The motor set of a criteria file and, if it has a [sensory] table, its sensory set
    (id ``<id>_sensory``)."""
    out = [CriteriaSet(doc, info)]
    sens = doc.get("sensory")
    if sens is not None:
        if not isinstance(sens, dict) or "criterion" not in sens:
            raise RuleError(
                f"criteria file {info.path}: [sensory] needs [[sensory.criterion]] and "
                "[[sensory.level]] tables"
            )
        meta = {**doc["meta"], "levels": [], **sens.get("meta", {})}
        sinfo = replace(info, id=f"{info.id}_sensory", title=str(meta.get("title", info.title)))
        out.append(CriteriaSet({**sens, "meta": meta}, sinfo, modality="sensory"))
    return out


def load_criteria(
    criteria: CriteriaSet
    | str
    | os.PathLike
    | Sequence[CriteriaSet | str | os.PathLike]
    | None = None,
) -> list[CriteriaSet]:
    """Load criteria sets: ``None`` = EFNS/PNS 2010 and EAN/PNS 2021 as shipped, or paths."""
    if criteria is None:
        items: list = [data_path(*p) for p in DEFAULT_CRITERIA]
    elif isinstance(criteria, (CriteriaSet, str, os.PathLike)):
        items = [criteria]
    else:
        items = list(criteria)
    out = []
    for it in items:
        if isinstance(it, CriteriaSet):
            out.append(it)
        else:
            doc, info = read_toml(it, "criteria")
            out.extend(_sets_of(doc, info))
    ids = [c.id for c in out]
    if len(set(ids)) != len(ids):
        raise RuleError(f"criteria sets must have distinct ids, got {ids}")
    return out


@dataclass
class CriteriaEvaluation:
    """Criteria evaluated on a nerves table.

    Attributes
    ----------
    evidence : pandas.DataFrame
        One row per (exam, motor study, criteria set, criterion): value, op, threshold, state,
        reason, source, status tags; sorted by exam, study, set order, criterion order.
    levels : dict
        ``(exam_id, set_id) -> LevelResult`` for every exam of the table.
    results : dict
        ``(exam_id, set_id) -> list of CriterionResult`` of the exam's motor studies.
    sets : list of CriteriaSet
    """

    evidence: pd.DataFrame
    levels: dict
    results: dict
    sets: list


def evaluate_criteria(nerves: pd.DataFrame, criteria=None) -> CriteriaEvaluation:
    """Evaluate criteria sets on every motor study of a nerves table (normal limits applied).

    Parameters
    ----------
    nerves : pandas.DataFrame
        From :func:`ncsproc.features.apply_limits`.
    criteria : optional
        Criteria sets (objects or paths); default EFNS/PNS 2010 and EAN/PNS 2021 as shipped.
    """
    sets = load_criteria(criteria)
    ordered = nerves.sort_values(["exam_id", "study"], kind="stable")
    rows: list[dict] = []
    results: dict[tuple[str, str], list[CriterionResult]] = {}
    for rec in ordered.to_dict("records"):
        for cs in sets:
            if rec["modality"] != cs.modality:
                continue
            res = cs.evaluate_study(rec)
            results.setdefault((rec["exam_id"], cs.id), []).extend(res)
            rows.extend(r.as_dict() for r in res)
    levels = {
        (exam, cs.id): cs.level(results.get((exam, cs.id), []), exam_id=exam)
        for exam in sorted(set(nerves["exam_id"]))
        for cs in sets
    }
    cols = list(CriterionResult.__dataclass_fields__) + ["met"]
    return CriteriaEvaluation(pd.DataFrame(rows, columns=cols), levels, results, sets)
