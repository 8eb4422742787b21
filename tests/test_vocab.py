"""One home for the controlled words: vocab.py, and nobody else spells a vocabulary out."""

from __future__ import annotations

import ast
from pathlib import Path

from ncsproc import vocab
from ncsproc.kernels import STATUS_NAMES

SRC = Path(__file__).resolve().parents[1] / "src" / "ncsproc"
VOCABULARIES = {
    "MODALITIES": vocab.MODALITIES,
    "PATTERNS": vocab.PATTERNS,
    "STATUSES": vocab.STATUSES,
    "SIDES": vocab.SIDES,
    "EVIDENCE_STATUSES": vocab.EVIDENCE_STATUSES,
}
# the simulator draws from its own pattern list (its data file names them), and the kernels
# number their modalities; both are other areas' and pending their own clean-up
ALLOWED = {"vocab.py", "simulate/patterns.py", "kernels/_params.py"}


def test_statuses_are_the_kernels_status_names_in_code_order():
    assert tuple(STATUS_NAMES[k] for k in sorted(STATUS_NAMES)) == vocab.STATUSES
    assert vocab.STATUS_OK == "ok" and vocab.STATUS_NO_RESPONSE in vocab.STATUSES


def test_site_rank_orders_distal_before_proximal():
    rank = vocab.SITE_RANK
    assert rank["wrist"] < rank["below elbow"] < rank["elbow"] < rank["axilla"] < rank["erb"]
    assert rank["ankle"] < rank["below fibular head"] < rank["fibular head"] < rank["knee"]


def _literal_tuples(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and node.elts:
            if all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
                yield node.lineno, tuple(e.value for e in node.elts)


def test_no_module_spells_a_vocabulary_out():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel in ALLOWED:
            continue
        for line, words in _literal_tuples(ast.parse(path.read_text(encoding="utf-8"))):
            for name, vocabulary in VOCABULARIES.items():
                if len(vocabulary) > 2 and set(words) == set(vocabulary):
                    found.append(f"{rel}:{line} spells out vocab.{name}")
    assert not found, "import these from ncsproc.vocab:\n" + "\n".join(found)
