"""Which part of ncsproc may import which, checked from the source (as MNE's
test_import_nesting does): every import, at module level or inside a function, must follow
:data:`ALLOWED`; and the module-level imports have no cycle.

The layers, bottom up (ARCHITECTURE.md): words and units; the trace set; readers and storage;
kernels and measures; features; review; simulator; pipeline, registry, report; the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "ncsproc"

_BASE = {"_version", "errors", "vocab", "units"}
ALLOWED: dict[str, set[str]] = {
    # words, units, versions: import nothing of ncsproc (but each other)
    "_version": set(),
    "errors": set(),
    "vocab": set(),
    "units": set(),
    "data": set(),  # the shipped data files (limits, criteria, rules, pipelines)
    "docs": set(),  # the shipped documents (ncsproc docs TOPIC)
    # the trace set and its files
    "schema": _BASE,
    "privacy": _BASE,
    "storage": _BASE | {"schema"},
    "formats": _BASE | {"schema", "privacy", "storage"},
    # measuring
    "kernels": _BASE,
    "measures": _BASE | {"schema", "kernels"},
    "tables": _BASE | {"kernels"},
    "unknowns": _BASE | {"schema", "measures"},
    "features": _BASE | {"schema", "measures", "tables"},
    "review": _BASE | {"schema", "kernels", "measures", "tables", "features"},
    # the simulator writes files with the readers' writers
    "simulate": _BASE | {"schema", "storage", "formats", "tables"},
    # the applications
    "_cliutil": _BASE,
    "pipeline": _BASE
    | {
        "_cliutil",
        "schema",
        "privacy",
        "storage",
        "formats",
        "kernels",
        "measures",
        "tables",
        "unknowns",
        "features",
        "review",
        "registry",
    },
    "registry": _BASE | {"_cliutil", "privacy", "tables", "features"},
    "report": _BASE
    | {"_cliutil", "schema", "storage", "formats", "measures", "tables", "unknowns", "features"},
    "testing": _BASE | {"schema", "storage", "formats"},
    "cli": None,  # the command line may use everything
    "__init__": None,  # the package's facade (lazy attributes) may use everything
}
"""Part of ncsproc (first name under ``ncsproc``) -> the parts it may import."""

KNOWN_EXCEPTIONS = {
    # The readers' Reader.example builders (used by the conformance and fuzz suites) draw
    # their sweeps with ncsproc.simulate.response_set, inside the builder; simulate imports
    # the readers' writers, so this is a cycle between the two packages. To remove it, the
    # builders move to ncsproc.testing (issue 18 item 2), which touches every reader module.
    ("formats", "simulate"): {
        "ncsproc.formats.cfs",
        "ncsproc.formats.dicom",
        "ncsproc.formats.matlab",
        "ncsproc.formats.native",
        "ncsproc.formats.text",
    },
}
"""(part, imported part) -> the modules still allowed to import across (shrink only)."""


def _module(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    is_pkg = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_pkg else parts), is_pkg


def _exists(name: str) -> bool:
    p = SRC.joinpath(*name.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _targets(node, module: str, is_pkg: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "ncsproc"]
    if node.level:
        base = module.split(".")
        if not is_pkg:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "ncsproc":
        return []
    subs = [f"{target}.{a.name}" for a in node.names if _exists(f"{target}.{a.name}")]
    return subs if subs and len(subs) == len(node.names) else [target, *subs]


def _is_type_checking(node) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imports(tree, module: str, is_pkg: bool, *, top_only: bool):
    """(line, imported module) of every import; ``top_only``: those that run at import time
    (module body, plain ``if``/``try`` blocks; not functions, not ``if TYPE_CHECKING``)."""
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        if _is_type_checking(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in _targets(node, module, is_pkg):
                yield node.lineno, target
            continue
        if top_only:
            if isinstance(node, (ast.If, ast.Try)):
                pending.extend(node.body + node.orelse + getattr(node, "finalbody", []))
                for h in getattr(node, "handlers", []):
                    pending.extend(h.body)
            continue
        pending.extend(ast.iter_child_nodes(node))


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        module, is_pkg = _module(path)
        yield path, module, is_pkg, ast.parse(path.read_text(encoding="utf-8"))


def test_every_part_is_listed():
    parts = {_part(m) for _, m, _, _ in _sources()}
    assert parts == set(ALLOWED), "add the new part to ALLOWED (and to ARCHITECTURE.md)"


def test_imports_follow_the_allowed_directions():
    bad, used_exceptions = [], set()
    for path, module, is_pkg, tree in _sources():
        here = _part(module)
        allowed = ALLOWED[here]
        if allowed is None:
            continue
        for line, target in _imports(tree, module, is_pkg, top_only=False):
            there = _part(target)
            if there == here or there in allowed:
                continue
            if module in KNOWN_EXCEPTIONS.get((here, there), ()):
                used_exceptions.add((module, there))
                continue
            bad.append(f"{path.relative_to(SRC)}:{line}: {here} imports {target}")
    assert not bad, "imports against the layering (see ALLOWED):\n" + "\n".join(bad)
    listed = {(m, there) for (_, there), ms in KNOWN_EXCEPTIONS.items() for m in ms}
    assert listed == used_exceptions, f"exceptions no longer needed: {listed - used_exceptions}"


def test_no_module_level_cycle():
    graph: dict[str, set[str]] = {}
    for _, module, is_pkg, tree in _sources():
        deps = set()
        for _, target in _imports(tree, module, is_pkg, top_only=True):
            parts = target.split(".")
            # importing a.b.c runs a/__init__ and a/b/__init__ first
            for i in range(2, len(parts) + 1):
                name = ".".join(parts[:i])
                if name != module and not module.startswith(name + "."):
                    deps.add(name)
        graph[module] = deps
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep) :] + [dep]))
            elif dep in graph and not state.get(dep):
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [])
    assert not cycles, "module-level import cycles:\n" + "\n".join(cycles)
