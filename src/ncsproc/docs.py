"""The documents a user has: ``formats/*.md`` and the settings guide, shipped in the wheel.

Messages never point to a path of the source repository (``formats/readers.md`` is not on a
user's disk after ``pip install``); they name a topic of ``ncsproc docs TOPIC``
(:func:`ref`), which prints the document from the installed package (``ncsproc/docs/``, put
there by the wheel build, ``pyproject.toml``) or, in a source checkout, from the repository.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["TOPICS", "doc_text", "ref"]

TOPICS: dict[str, str] = {
    "readers": "formats/readers.md",
    "trace-set": "formats/trace-set.md",
    "edf": "formats/edf.md",
    "dicom": "formats/dicom.md",
    "cfs": "formats/cfs.md",
    "text": "formats/text.md",
    "matlab": "formats/matlab.md",
    "qtrac": "formats/qtrac.md",
    "measures": "formats/measures.md",
    "features": "formats/features.md",
    "cohort": "formats/cohort.md",
    "tables": "formats/tables.md",
    "review": "formats/review.md",
    "report": "formats/report.md",
    "registry": "formats/registry.md",
    "simulator": "formats/simulator.md",
    "settings": "pipelines/README.md",
}
"""Topic of ``ncsproc docs TOPIC`` -> the document (path in the repository and in the wheel's
``ncsproc/docs/``)."""


def ref(topic: str) -> str:
    """How a message names a document: ``ncsproc docs <topic>`` (KeyError if not a topic)."""
    if topic not in TOPICS:
        raise KeyError(f"unknown documentation topic {topic!r}; topics: {sorted(TOPICS)}")
    return f"ncsproc docs {topic}"


def _source_checkout() -> Path:
    return Path(__file__).resolve().parents[2]


def doc_text(topic: str) -> str:
    """The text of a topic's document.

    Raises
    ------
    KeyError
        ``topic`` is not one of :data:`TOPICS` (the message lists them).
    FileNotFoundError
        Neither the installed package nor a source checkout holds it (a broken install).
    """
    rel = TOPICS.get(topic)
    if rel is None:
        raise KeyError(f"unknown documentation topic {topic!r}; topics: {', '.join(TOPICS)}")
    shipped = resources.files("ncsproc").joinpath("docs", *rel.split("/"))
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8")
    checkout = _source_checkout() / rel
    if checkout.is_file():
        return checkout.read_text(encoding="utf-8")
    raise FileNotFoundError(
        f"the document of {topic!r} ({rel}) is missing from this installation; reinstall "
        "ncsproc (pip install --force-reinstall ncsproc)"
    )
