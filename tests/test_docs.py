"""Every document a message names is installed: messages say ``ncsproc docs TOPIC``, never a
path of the source repository, and every topic's document ships in the wheel."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from ncsproc.cli import main
from ncsproc.docs import TOPICS, doc_text, ref

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "ncsproc"


def _strings(tree):
    """(line, text, is_docstring) of the string constants of a module."""
    docs = {
        id(n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
    }
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            yield n.lineno, n.value, id(n) in docs


def _all_strings():
    for path in sorted(SRC.rglob("*.py")):
        for line, text, is_doc in _strings(ast.parse(path.read_text(encoding="utf-8"))):
            yield f"{path.relative_to(ROOT)}:{line}", text, is_doc


def test_no_message_names_a_repository_path():
    paths = re.compile(r"\b(?:formats/[\w.-]+\.md|pipelines/README\.md|[\w-]+\.md\b)")
    found = [
        f"{where}: {m.group(0)}"
        for where, text, is_doc in _all_strings()
        if not is_doc and not where.startswith("src/ncsproc/docs.py")  # the topic table
        for m in paths.finditer(text)
    ]
    assert not found, "name the document with ncsproc.docs.ref(topic):\n" + "\n".join(found)


def test_every_topic_named_exists():
    named = {
        m.group(1)
        for _, text, _ in _all_strings()
        for m in re.finditer(r"ncsproc docs ([a-z][\w-]*)", text)
    }
    assert named and named <= set(TOPICS), named - set(TOPICS)
    assert ref("tables") == "ncsproc docs tables"
    with pytest.raises(KeyError, match="unknown documentation topic"):
        ref("nope")


def test_every_document_is_a_topic_and_ships_in_the_wheel():
    docs = {p.relative_to(ROOT).as_posix() for p in (ROOT / "formats").glob("*.md")}
    assert docs | {"pipelines/README.md"} == set(TOPICS.values())
    for topic, rel in TOPICS.items():
        assert doc_text(topic) == (ROOT / rel).read_text(encoding="utf-8"), topic
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = conf["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    for rel in TOPICS.values():
        # the wheel holds ncsproc/docs/<rel>: its folder (formats) or the file is included
        top = rel.split("/")[0]
        target = shipped.get(rel) or (shipped.get(top, "") + rel[len(top) :])
        assert target == f"ncsproc/docs/{rel}", rel


def test_docs_command_prints_a_topic(capsys):
    assert main(["docs", "tables"]) == 0
    assert capsys.readouterr().out == doc_text("tables")
    assert main(["docs"]) == 0
    assert "tables" in capsys.readouterr().out
    assert main(["docs", "nope"]) == 2
    assert "unknown topic 'nope'" in capsys.readouterr().err
