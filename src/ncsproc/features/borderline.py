"""Borderline pattern calls: the pattern re-evaluated with every input moved within its error.

A measured DML, CV, TLI, amplitude or duration carries a measurement error. An exam whose
pattern can change when its inputs move within that error is *borderline*; it says to which
pattern(s) it can change. This module evaluates a pattern rule file (and the criteria files it
uses) **vectorised over the cohort** in interval arithmetic:

* every perturbed input of a nerves-table row becomes an interval ``[lo, hi]`` (the value moved
  by its error to each side, :data:`MEASUREMENT_ERROR`); every other value is exact;
* every comparison, predicate, criterion, count and level becomes a pair ``(sure, possible)``:
  *sure* when it holds for every value in the intervals, *possible* when it holds for one
  (Kleene's three-valued logic for ``and``/``or``/``not``; nerve counts as intervals; a level's
  "n nerves + m other nerves" clause is monotone, so its sure/possible values come from the sure
  and possible nerve sets);
* with every interval of width 0 (``scale = 0``) sure and possible coincide and the result is
  the ordinary classification of :mod:`ncsproc.features.patterns` (the tests check that both
  give the same pattern on every exam).

Rule ``i`` of the file can then *possibly* fire, or *possibly not*. The exam's call (rule ``k``)
can change when an earlier rule possibly holds or rule ``k`` possibly does not; the patterns it
can change to are those whose rule possibly holds while no earlier rule surely holds. The
interval evaluation is conservative: it never misses a change that some combination of inputs
within their errors produces, and it may flag an exam whose change would need one input at both
ends of its interval at once (an input used twice in opposite directions).

``pattern_margin`` is the smallest multiple of the errors (of :data:`MARGIN_SCALES`) at which
the call can change (NaN: not up to the largest); ``pattern_borderline`` is ``margin <= 1``.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ._expr import TOLERANCE, RuleError
from .criteria import CriteriaSet, Criterion, other_pool
from .patterns import PatternRules

__all__ = ["MEASUREMENT_ERROR", "MARGIN_SCALES", "borderline", "classify_vectorised"]

MEASUREMENT_ERROR: dict[str, tuple[str, float]] = {
    # latencies and velocities +- 3 %
    "dml_ms": ("relative", 0.03),
    "dml_pct_uln": ("relative", 0.03),
    "cv_m_s": ("relative", 0.03),
    "cv_pct_lln": ("relative", 0.03),
    "min_cv_m_s": ("relative", 0.03),
    "residual_latency_ms": ("relative", 0.03),
    "f_min_ms": ("relative", 0.03),
    "f_min_pct_uln": ("relative", 0.03),
    "snap_onset_ms": ("relative", 0.03),
    "snap_peak_ms": ("relative", 0.03),
    "snap_peak_pct_uln": ("relative", 0.03),
    "scv_m_s": ("relative", 0.03),
    "scv_pct_lln": ("relative", 0.03),
    # terminal latency index +- 0.02
    "tli": ("absolute", 0.02),
    # amplitudes and durations +- 5 %
    "distal_amp_uv": ("relative", 0.05),
    "amp_pct_lln": ("relative", 0.05),
    "snap_amp_uv": ("relative", 0.05),
    "distal_duration_ms": ("relative", 0.05),
    "distal_duration_pct_uln": ("relative", 0.05),
    # block and dispersion: both amplitudes (durations) of the ratio move by 5 %, apart
    "max_cb_pct": ("drop_ratio", 0.05),
    "max_area_drop_pct": ("drop_ratio", 0.05),
    "max_td_pct": ("increase_ratio", 0.05),
}
"""Measurement error per nerves-table column (issue 15 / ncs-domain.md 3.3): DML, CV and the
other latencies and velocities +-3 %, TLI +-0.02, amplitudes and durations +-5 %. A block
``100 (1 - a_p / a_d)`` moves with its amplitude ratio ``a_p / a_d`` multiplied by up to
``(1 +- 5 %) / (1 -+ 5 %)``, a dispersion ``100 (d_p / d_d - 1)`` likewise with its duration
ratio. Other columns (distances, flags, F-wave presence) are exact."""

MARGIN_SCALES = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
"""Multiples of :data:`MEASUREMENT_ERROR` tried for ``pattern_margin``."""


# --------------------------------------------------------------------------------------------
# intervals
# --------------------------------------------------------------------------------------------
def _interval(col: np.ndarray, kind: str, size: float) -> tuple[np.ndarray, np.ndarray]:
    if size == 0:
        return col, col
    if kind == "relative":
        a, b = col * (1 - size), col * (1 + size)
        return np.minimum(a, b), np.maximum(a, b)
    if kind == "absolute":
        return col - size, col + size
    lo_f, hi_f = (1 - size) / (1 + size), (1 + size) / (1 - size)
    if kind == "drop_ratio":
        r = 1 - col / 100
        return 100 * (1 - r * hi_f), 100 * (1 - r * lo_f)
    if kind == "increase_ratio":
        q = 1 + col / 100
        return 100 * (q * lo_f - 1), 100 * (q * hi_f - 1)
    raise ValueError(kind)  # pragma: no cover


def _bool(x: np.ndarray) -> np.ndarray:
    """Truth values with missing (NaN) counting as False, as float 0/1."""
    return np.where(np.isnan(x), 0.0, (x != 0).astype(float))


def _cmp(a_lo, a_hi, op, b_lo, b_hi):
    """(sure, possible) of ``a op b`` for intervals, relative tolerance as :func:`compare`."""
    with np.errstate(invalid="ignore"):
        valid = ~(np.isnan(a_lo) | np.isnan(a_hi) | np.isnan(b_lo) | np.isnan(b_hi))
        eps_lo = TOLERANCE * np.maximum(1.0, np.abs(b_lo))
        eps_hi = TOLERANCE * np.maximum(1.0, np.abs(b_hi))
        if op == ">=":
            sure, poss = a_lo >= b_hi - eps_hi, a_hi >= b_lo - eps_lo
        elif op == ">":
            sure, poss = a_lo > b_hi + eps_hi, a_hi > b_lo + eps_lo
        elif op == "<=":
            sure, poss = a_hi <= b_lo + eps_lo, a_lo <= b_hi + eps_hi
        elif op == "<":
            sure, poss = a_hi < b_lo - eps_lo, a_lo < b_hi - eps_hi
        elif op in ("==", "!="):
            overlap = (a_lo <= b_hi + eps_hi) & (a_hi >= b_lo - eps_lo)
            same = (np.abs(a_hi - b_lo) <= eps_lo) & (np.abs(a_lo - b_hi) <= eps_hi)
            sure, poss = (same, overlap) if op == "==" else (~overlap, ~same)
        else:  # pragma: no cover
            raise RuleError(f"unknown comparison {op!r}")
    return (sure & valid).astype(float), (poss & valid).astype(float)


_CMP = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


class _Rows:
    """Interval columns of the motor or sensory rows of a nerves table at one error scale."""

    def __init__(self, table: pd.DataFrame, scale: float):
        self.table = table
        self.n = len(table)
        self.scale = scale
        self.nerve = table["nerve"].astype(str).to_numpy()
        self._cache: dict[str, tuple] = {}

    def column(self, name: str):
        if name in self._cache:
            return self._cache[name]
        if name not in self.table.columns:
            out: tuple = (np.full(self.n, np.nan),) * 2
        else:
            raw = self.table[name]
            if raw.dtype == object and raw.map(lambda v: isinstance(v, str)).any():
                out = ("str", raw.astype(str).to_numpy())
            else:
                col = pd.to_numeric(raw.map(_num), errors="coerce").to_numpy(float)
                kind, size = MEASUREMENT_ERROR.get(name, ("relative", 0.0))
                out = _interval(col, kind, size * self.scale)
        self._cache[name] = out
        return out


def _num(v):
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    return v


# --------------------------------------------------------------------------------------------
# criteria
# --------------------------------------------------------------------------------------------
def _criterion(crit: Criterion, rows: _Rows) -> tuple[np.ndarray, np.ndarray]:
    """(sure, possible) that a criterion is met in every row (see Criterion.evaluate)."""
    n = rows.n
    v_lo, v_hi = rows.column(crit.value)
    ok_s, ok_p = np.ones(n), np.ones(n)
    for g in crit.gates:
        g_lo, g_hi = rows.column(g.value)
        s, p = _cmp(
            g_lo, g_hi, g.op, np.full(n, float(g.threshold)), np.full(n, float(g.threshold))
        )
        ok_s, ok_p = ok_s * s, ok_p * p
    # per-row base (op, threshold): nerve thresholds, filter cut-offs
    base_op = np.full(n, crit.op, dtype=object)
    base_thr = np.full(n, np.nan)
    if not crit.filter_dependent:
        base_thr[:] = float(crit.threshold)
    for nerve, (op, thr, _src, _st) in crit.nerve_threshold.items():
        m = rows.nerve == nerve
        base_op[m], base_thr[m] = op, float(thr)
    if crit.filter_dependent:
        hp = rows.column("highpass_hz")[0]
        todo = ~np.isnan(hp)
        for cut in sorted(crit.cutoffs, key=lambda c: c.highpass is None):
            if cut.highpass is None:
                m = todo.copy()
            else:
                m = todo & (np.abs(hp - cut.highpass) <= 1e-6 * max(1.0, abs(cut.highpass)))
            todo &= ~m
            for nerve, thr in cut.thresholds.items():
                mn = m & (rows.nerve == nerve)
                base_op[mn], base_thr[mn] = cut.op, thr
    # switches: the thresholds each row can take, and whether it can take them
    choices = []  # (possible mask, op array, threshold array)
    none_sure_before = np.ones(n, bool)
    for when, thr, _src, _st in crit.switches:
        w_lo, w_hi = rows.column(when.value)
        t = np.full(n, float(when.threshold))
        s, p = _cmp(w_lo, w_hi, when.op, t, t)
        missing = np.isnan(w_lo)
        ok_s, ok_p = ok_s * ~missing, ok_p * ~missing
        choices.append((none_sure_before & (p > 0), base_op, np.full(n, float(thr))))
        none_sure_before &= ~(s > 0)
    choices.append((none_sure_before, base_op, base_thr))
    met_s, met_p = np.ones(n), np.zeros(n)
    for can, ops, thr in choices:
        s_c, p_c = np.zeros(n), np.zeros(n)
        for op in set(ops):
            m = ops == op
            s, p = _cmp(v_lo[m], v_hi[m], op, thr[m], thr[m])
            s_c[m], p_c[m] = s, p
        met_s = np.where(can, met_s * s_c, met_s)
        met_p = np.where(can, np.maximum(met_p, p_c), met_p)
    excluded = np.isin(rows.nerve, list(crit.exclude_nerves))
    if crit.only_nerves:
        excluded |= ~np.isin(rows.nerve, list(crit.only_nerves))
    sure = met_s * ok_s * ~excluded
    poss = met_p * ok_p * ~excluded
    return sure, poss


class _Groups:
    """Row -> nerve unit (side + nerve) -> exam indices of one modality."""

    def __init__(self, table: pd.DataFrame, exam_codes: Mapping[str, int]):
        self.exam_of_row = table["exam_id"].map(exam_codes).to_numpy(np.int64)
        unit_key = table["exam_id"].astype(str) + "\x00" + table["side"].astype(str) + "_"
        unit_key = unit_key + table["nerve"].astype(str)
        codes, uniques = pd.factorize(unit_key, sort=True)
        self.unit_of_row = codes.astype(np.int64)
        self.n_units = len(uniques)
        self.exam_of_unit = np.zeros(self.n_units, np.int64)
        self.exam_of_unit[self.unit_of_row] = self.exam_of_row

    def any_per_unit(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n_units)
        np.maximum.at(out, self.unit_of_row, x)
        return out

    def count(self, x: np.ndarray, n_exams: int) -> np.ndarray:
        return np.bincount(self.exam_of_unit, weights=self.any_per_unit(x), minlength=n_exams)


# --------------------------------------------------------------------------------------------
# the evaluator
# --------------------------------------------------------------------------------------------
class _Vectorised:
    def __init__(self, rules: PatternRules, sets: Sequence[CriteriaSet], nerves, scale: float):
        self.rules = rules
        self.sets = {c.id: c for c in sets}
        exams = sorted(set(nerves["exam_id"]))
        self.exams = exams
        self.E = len(exams)
        codes = {e: i for i, e in enumerate(exams)}
        motor = nerves[nerves["modality"] == "motor"]
        sensory = nerves[nerves["modality"] == "sensory"]
        self.motor, self.sensory = _Rows(motor, scale), _Rows(sensory, scale)
        self.g_motor, self.g_sensory = _Groups(motor, codes), _Groups(sensory, codes)
        self.pred_cache: dict[tuple[str, str], tuple] = {}
        self.crit_cache: dict[tuple[str, str], tuple] = {}

    # nerve scope -------------------------------------------------------------------------
    def met(self, set_id: str, crit_id: str):
        key = (set_id, crit_id)
        if key not in self.crit_cache:
            cs = self.sets[set_id]
            if cs.modality != "motor":
                raise RuleError(f"{set_id}: only motor criteria sets are evaluated vectorised")
            if crit_id not in cs.criteria:
                raise RuleError(f"met('{set_id}', criterion): unknown criterion {crit_id!r}")
            self.crit_cache[key] = _criterion(cs.criteria[crit_id], self.motor)
        return self.crit_cache[key]

    def predicate(self, name: str, modality: str):
        key = (modality, name)
        if key not in self.pred_cache:
            section = self.rules.motor if modality == "motor" else self.rules.sensory
            rows = self.motor if modality == "motor" else self.sensory
            self.pred_cache[key] = self._nerve_eval(
                section[name].tree.body, section, rows, modality
            )
        return self.pred_cache[key]

    def _nerve_eval(self, node, section, rows: _Rows, modality: str):
        def rec(nd):
            return self._nerve_eval(nd, section, rows, modality)

        n = rows.n
        if isinstance(node, ast.Name):
            nm = node.id
            if nm in section:
                return self.predicate(nm, modality)
            if nm in self.rules.thresholds:
                v = self.rules.thresholds[nm].value
                if isinstance(v, dict):
                    arr = np.array([float(v.get(x, np.nan)) for x in rows.nerve])
                else:
                    arr = np.full(n, float(v))
                return arr, arr
            return rows.column(nm)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                return "str", np.full(n, node.value, dtype=object)
            arr = np.full(n, node.value, dtype=float)
            return arr, arr
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [a.id if isinstance(a, ast.Name) else ast.literal_eval(a) for a in node.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
            if node.func.id == "met":
                return self.met(args[0], args[1])
            without = set(kwargs.get("without", []))
            s, p = np.zeros(n), np.zeros(n)
            for c in self.sets[args[0]].criteria:
                if c not in without:
                    cs, cp = self.met(args[0], c)
                    s, p = np.maximum(s, cs), np.maximum(p, cp)
            return s, p
        return self._common(node, rec, n)

    # shared operators ----------------------------------------------------------------------
    def _common(self, node, rec, n):
        if isinstance(node, ast.BoolOp):
            vals = [rec(v) for v in node.values]
            los = [_bool(v[0]) for v in vals]
            his = [_bool(v[1]) for v in vals]
            if isinstance(node.op, ast.And):
                return np.minimum.reduce(los), np.minimum.reduce(his)
            return np.maximum.reduce(los), np.maximum.reduce(his)
        if isinstance(node, ast.UnaryOp):
            lo, hi = rec(node.operand)
            if isinstance(node.op, ast.Not):
                return 1.0 - _bool(hi), 1.0 - _bool(lo)
            return -hi, -lo
        if isinstance(node, ast.BinOp):
            a_lo, a_hi = rec(node.left)
            b_lo, b_hi = rec(node.right)
            if isinstance(node.op, ast.Add):
                return a_lo + b_lo, a_hi + b_hi
            if isinstance(node.op, ast.Sub):
                return a_lo - b_hi, a_hi - b_lo
            with np.errstate(invalid="ignore", divide="ignore"):
                if isinstance(node.op, ast.Mult):
                    c = np.stack([a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi])
                else:
                    zero = (b_lo <= 0) & (b_hi >= 0)
                    c = np.stack([a_lo / b_lo, a_lo / b_hi, a_hi / b_lo, a_hi / b_hi])
                    c[:, zero] = np.nan
            return c.min(axis=0), c.max(axis=0)
        if isinstance(node, ast.Compare):
            left = rec(node.left)
            sure, poss = np.ones(n), np.ones(n)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = rec(comp)
                o = _CMP[type(op)]
                if isinstance(left[0], str) or isinstance(right[0], str):
                    eq = np.asarray(left[1] == right[1], dtype=float)
                    s = p = eq if o == "==" else 1.0 - eq
                else:
                    s, p = _cmp(left[0], left[1], o, right[0], right[1])
                sure, poss = sure * s, poss * p
                left = right
            return sure, poss
        raise RuleError(
            f"rules {self.rules.label}: {type(node).__name__} cannot be evaluated vectorised"
        )

    # exam scope ----------------------------------------------------------------------------
    def level_reached(self, set_id: str, level: str, without=(), mask=None):
        cs = self.sets[set_id]
        if level not in cs.levels_order:
            raise RuleError(f"reached(): {set_id} has no level {level!r}")
        without = set(without)
        mask = dict(mask or {})
        eff = {}
        for c in cs.criteria:
            if c in without:
                continue
            s, p = self.met(set_id, c)
            if c in mask:
                ms, mp = self.predicate(mask[c], "motor")
                s, p = s * (1 - _bool(mp)), p * (1 - _bool(ms))
            eff[c] = (s, p)
        g = self.g_motor
        unit_any = {c: (g.any_per_unit(s), g.any_per_unit(p)) for c, (s, p) in eff.items()}
        stop = cs.levels_order.index(level)
        sure, poss = np.zeros(self.E), np.zeros(self.E)
        for lv in cs.levels[: stop + 1]:
            for cl in lv.clauses:
                crits = [c for c in cl.criteria if c not in without]
                if not crits:
                    continue
                pool = other_pool(cs, cl, without)
                for k, out in ((0, sure), (1, poss)):
                    in_c = np.zeros(g.n_units)
                    for c in crits:
                        in_c = np.maximum(in_c, unit_any[c][k])
                    in_o = np.zeros(g.n_units)
                    for c in pool:
                        in_o = np.maximum(in_o, unit_any[c][k])
                    nc = np.bincount(g.exam_of_unit, weights=in_c, minlength=self.E)
                    ok = nc >= cl.nerves
                    if cl.other_nerves:
                        no = np.bincount(g.exam_of_unit, weights=in_o, minlength=self.E)
                        nu = np.bincount(
                            g.exam_of_unit, weights=np.maximum(in_c, in_o), minlength=self.E
                        )
                        ok &= (no >= cl.other_nerves) & (nu >= cl.nerves + cl.other_nerves)
                    np.maximum(out, ok.astype(float), out=out)
        return sure, poss

    def exam_eval(self, node):
        E = self.E
        if isinstance(node, ast.Name):
            if node.id == "n_motor":
                v = np.bincount(self.g_motor.exam_of_unit, minlength=E).astype(float)
                return v, v
            if node.id in self.rules.thresholds:
                v = self.rules.thresholds[node.id].value
                if isinstance(v, dict):
                    raise RuleError(f"nerve-specific threshold {node.id!r} used at exam level")
                arr = np.full(E, float(v))
                return arr, arr
            raise RuleError(f"rules {self.rules.label}: unknown exam-level name {node.id!r}")
        if isinstance(node, ast.Constant):
            arr = np.full(E, float(node.value))
            return arr, arr
        if isinstance(node, ast.Call):
            func = node.func.id
            args = [a.id if isinstance(a, ast.Name) else a.value for a in node.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
            if func in ("count", "count_sensory"):
                modality = "motor" if func == "count" else "sensory"
                section = self.rules.motor if func == "count" else self.rules.sensory
                rows = self.motor if func == "count" else self.sensory
                g = self.g_motor if func == "count" else self.g_sensory
                if args[0] in section:
                    s, p = self.predicate(args[0], modality)
                else:
                    s, p = rows.column(args[0])
                return g.count(_bool(s), E), g.count(_bool(p), E)
            if func == "reached":
                return self.level_reached(
                    args[0], args[1], kwargs.get("without", ()), kwargs.get("mask")
                )
            raise RuleError(
                f"rules {self.rules.label}: {func}() is not supported by the vectorised evaluation"
            )
        return self._common(node, self.exam_eval, E)

    def rules_state(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(sure, possible) of every [[pattern]] rule, per exam."""
        out = []
        for rule in self.rules.patterns:
            s, p = self.exam_eval(rule.when.tree.body)
            out.append((_bool(s) > 0, _bool(p) > 0))
        return out


def _patterns_from(states, rules: PatternRules) -> tuple[np.ndarray, np.ndarray]:
    names = [r.name for r in rules.patterns] + [rules.fallback]
    E = len(states[0][0]) if states else 0
    idx = np.full(E, len(rules.patterns))
    for i in range(len(states) - 1, -1, -1):
        idx = np.where(states[i][0], i, idx)
    return np.array(names, dtype=object)[idx], idx


def _prepared(nerves: pd.DataFrame) -> pd.DataFrame:
    need = ["exam_id", "modality", "nerve", "side"]
    missing = [c for c in need if c not in nerves.columns]
    if missing:
        raise RuleError(f"nerves table lacks columns {missing} (use ncsproc.features.tables)")
    return nerves.sort_values(["exam_id", "study"], kind="stable")


def classify_vectorised(
    nerves: pd.DataFrame, criteria: Sequence[CriteriaSet], rules: PatternRules
) -> pd.Series:
    """The pattern of every exam, evaluated over the whole cohort at once (no error moves).

    Gives the same pattern as :func:`ncsproc.features.classify` (without the evidence).
    """
    nerves = _prepared(nerves)
    ev = _Vectorised(rules, criteria, nerves, 0.0)
    names, _ = _patterns_from(ev.rules_state(), rules)
    return pd.Series(names, index=pd.Index(ev.exams, name="exam_id"), name="pattern")


def borderline(
    nerves: pd.DataFrame,
    criteria: Sequence[CriteriaSet],
    rules: PatternRules,
    scales: Sequence[float] = MARGIN_SCALES,
) -> pd.DataFrame:
    """Borderline calls of every exam of a nerves table (limits applied).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``exam_id``: ``pattern`` (the call without error), ``pattern_margin`` (the
        smallest multiple of :data:`MEASUREMENT_ERROR` in ``scales`` at which the call can
        change; NaN if it cannot up to the largest), ``pattern_borderline`` (the call can change
        within the documented error, ``margin <= 1``) and ``pattern_alternative`` (the patterns
        it can change to within the documented error, in rule order, ``;``-separated).
    """
    nerves = _prepared(nerves)
    rule_names = [r.name for r in rules.patterns] + [rules.fallback]
    nominal = _Vectorised(rules, criteria, nerves, 0.0)
    names, _ = _patterns_from(nominal.rules_state(), rules)
    E = nominal.E
    margin = np.full(E, np.nan)
    alternative = np.full(E, "", dtype=object)
    for scale in sorted(set(scales) | {1.0}):
        st = _Vectorised(rules, criteria, nerves, float(scale)).rules_state()
        sure = np.array([s for s, _ in st] + [np.ones(E, bool)])
        poss = np.array([p for _, p in st] + [np.ones(E, bool)])
        # rule j can decide: it possibly holds and no earlier rule surely holds
        earlier_sure = np.vstack([np.zeros(E, bool), np.cumsum(sure, axis=0)[:-1] > 0])
        can = poss & ~earlier_sure
        other = np.array(rule_names, dtype=object)[:, None] != names[None, :]
        alt = can & other
        flips = alt.any(axis=0)
        margin = np.where(np.isnan(margin) & flips, scale, margin)
        if scale == 1.0:
            for e in np.flatnonzero(flips):
                seen = []
                for j in np.flatnonzero(alt[:, e]):
                    if rule_names[j] not in seen:
                        seen.append(rule_names[j])
                alternative[e] = ";".join(seen)
    out = pd.DataFrame(
        {
            "pattern": names,
            "pattern_margin": margin,
            "pattern_borderline": ~np.isnan(margin) & (margin <= 1.0),
            "pattern_alternative": alternative,
        },
        index=pd.Index(nominal.exams, name="exam_id"),
    )
    return out
