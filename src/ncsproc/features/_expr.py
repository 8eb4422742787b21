"""A small, safe expression language for rule files (criteria and pattern rules).

Rule files hold conditions such as ``dml_pct_uln >= dml_distal or tli < tli_low``. They are
parsed with :mod:`ast` and only a whitelisted subset of Python expressions is accepted:

* ``and``, ``or``, ``not``; comparisons ``< <= > >= == !=`` (chains allowed);
* ``+ - * /`` and unary minus on numbers;
* names (features of a study, thresholds of the rule file, predicates), numeric, string and
  boolean constants;
* calls of the functions the caller allows, whose arguments are literals only: names (passed
  as symbols, i.e. their identifier), constants, lists of constants and ``{str: str}`` dicts.

Nothing else (attributes, subscripts, lambdas, comprehensions, ...) is accepted, so a rule file
cannot run code. Missing values follow IEEE semantics: a comparison involving NaN (or None) is
False, and NaN used as a truth value is False. Numeric comparisons allow a relative tolerance of
:data:`TOLERANCE` so that a value equal to its threshold up to floating-point error counts as
equal: a tibial DML of 8.7 ms with a 5.8 ms ULN gives ``100 * 8.7 / 5.8 = 149.99999999999997``,
which must meet ">= 150 % ULN".
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from ..errors import NcsprocError

__all__ = ["Expression", "RuleError", "compare", "truth", "TOLERANCE", "OPS"]

TOLERANCE = 1e-9
"""Relative tolerance of numeric comparisons (times max(1, |threshold|))."""

OPS = ("<", "<=", ">", ">=", "==", "!=")


class RuleError(NcsprocError, ValueError):
    """A rule, criteria or normal-limit file is malformed."""


def _is_missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return isinstance(x, float) and math.isnan(x)
    except TypeError:
        return False


def truth(x: Any) -> bool:
    """Truth value with missing values (None, NaN) counting as False."""
    if _is_missing(x):
        return False
    return bool(x)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def compare(a: Any, op: str, b: Any, tol: float = TOLERANCE) -> bool:
    """Compare ``a op b``; False when either side is missing; numbers with a relative tolerance.

    ``a >= b`` holds when ``a >= b - eps``, ``a > b`` when ``a > b + eps``, ``a == b`` when
    ``|a - b| <= eps``, with ``eps = tol * max(1, |b|)``.
    """
    if op not in OPS:
        raise RuleError(f"unknown comparison {op!r}; use one of {OPS}")
    if _is_missing(a) or _is_missing(b):
        return False
    if _number(a) and _number(b):
        a = float(a)
        b = float(b)
        eps = tol * max(1.0, abs(b))
        if op == ">=":
            return a >= b - eps
        if op == ">":
            return a > b + eps
        if op == "<=":
            return a <= b + eps
        if op == "<":
            return a < b - eps
        if op == "==":
            return abs(a - b) <= eps
        return abs(a - b) > eps
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    raise RuleError(f"cannot compare {a!r} {op} {b!r}")


_CMP = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}
_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: None}


class Expression:
    """A parsed, validated rule expression.

    Parameters
    ----------
    text : str
        The expression.
    functions : iterable of str
        Names of the functions the expression may call.
    where : str
        Where the expression comes from (file and key), for error messages.
    """

    def __init__(self, text: str, *, functions: Iterable[str] = (), where: str = "expression"):
        if not isinstance(text, str) or not text.strip():
            raise RuleError(f"{where}: expected a non-empty expression string, got {text!r}")
        self.text = text.strip()
        self.where = where
        self.functions = frozenset(functions)
        try:
            tree = ast.parse(self.text, mode="eval")
        except SyntaxError as exc:
            raise RuleError(f"{where}: cannot parse {self.text!r}: {exc.msg}") from None
        self.tree = tree
        self.names: set[str] = set()
        self.calls: list[tuple[str, tuple, dict]] = []
        self._check(tree.body, top=True)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    # -- validation -----------------------------------------------------------------------
    def _fail(self, node: ast.AST, why: str) -> NoReturn:
        raise RuleError(
            f"{self.where}: {why} in {self.text!r} (column {getattr(node, 'col_offset', 0)})"
        )

    def _literal(self, node: ast.AST) -> Any:
        """A call argument: a symbol, a constant, a list of constants or a {str: str} dict."""
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool)):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self._literal(e) for e in node.elts]
        if isinstance(node, ast.Dict):
            out = {}
            for k, v in zip(node.keys, node.values, strict=True):
                if not (isinstance(k, ast.Constant) and isinstance(k.value, str)):
                    self._fail(node, "dict keys must be strings")
                out[k.value] = self._literal(v)
            return out
        self._fail(
            node, f"function arguments must be names or constants, not {type(node).__name__}"
        )
        return None

    def _check(self, node: ast.AST, top: bool = False) -> None:
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self._check(v)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.Not, ast.USub)):
                self._fail(node, "only 'not' and unary '-' are allowed")
            self._check(node.operand)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BIN:
                self._fail(node, "only + - * / are allowed")
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _CMP:
                    self._fail(node, "only < <= > >= == != comparisons are allowed")
            self._check(node.left)
            for c in node.comparators:
                self._check(c)
        elif isinstance(node, ast.Name):
            self.names.add(node.id)
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (str, int, float, bool)):
                self._fail(node, f"constant {node.value!r} is not allowed")
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in self.functions:
                name = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
                allowed = ", ".join(sorted(self.functions)) or "none"
                self._fail(node, f"function {name!r} is not allowed here (allowed: {allowed})")
            args = tuple(self._literal(a) for a in node.args)
            kwargs = {}
            for kw in node.keywords:
                if kw.arg is None:
                    self._fail(node, "**kwargs are not allowed")
                kwargs[kw.arg] = self._literal(kw.value)
            self.calls.append((node.func.id, args, kwargs))
        else:
            self._fail(node, f"{type(node).__name__} is not allowed")

    # -- evaluation -----------------------------------------------------------------------
    def evaluate(
        self,
        resolve: Callable[[str], Any],
        call: Callable[[str, tuple, dict], Any] | None = None,
    ) -> Any:
        """Evaluate with ``resolve(name)`` for names and ``call(func, args, kwargs)`` for calls."""
        return self._eval(self.tree.body, resolve, call)

    def _eval(self, node, resolve, call):
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                for v in node.values:
                    if not truth(self._eval(v, resolve, call)):
                        return False
                return True
            for v in node.values:
                if truth(self._eval(v, resolve, call)):
                    return True
            return False
        if isinstance(node, ast.UnaryOp):
            x = self._eval(node.operand, resolve, call)
            if isinstance(node.op, ast.Not):
                return not truth(x)
            return math.nan if _is_missing(x) else -x
        if isinstance(node, ast.BinOp):
            a = self._eval(node.left, resolve, call)
            b = self._eval(node.right, resolve, call)
            if _is_missing(a) or _is_missing(b):
                return math.nan
            if not (_number(a) and _number(b)):
                raise RuleError(
                    f"{self.where}: arithmetic on non-numbers {a!r}, {b!r} in {self.text!r}"
                )
            if isinstance(node.op, ast.Div):
                return math.nan if b == 0 else a / b
            return _BIN[type(node.op)](a, b)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, resolve, call)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = self._eval(comp, resolve, call)
                if not compare(left, _CMP[type(op)], right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Name):
            return resolve(node.id)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Call):
            if call is None:
                raise RuleError(f"{self.where}: no functions available to evaluate {self.text!r}")
            args = tuple(self._literal(a) for a in node.args)
            kwargs = {kw.arg: self._literal(kw.value) for kw in node.keywords}
            return call(node.func.id, args, kwargs)
        raise RuleError(f"{self.where}: cannot evaluate {type(node).__name__}")  # pragma: no cover
