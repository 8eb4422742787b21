"""The data dictionary, generated from the variable declarations (so it cannot drift).

Two forms: a REDCap data-dictionary CSV (the 18 standard columns, importable in REDCap's
Online Designer) and JSON (every declaration field).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from .variables import Declarations, Variable, load_variables

__all__ = ["REDCAP_COLUMNS", "dictionary_json", "dictionary_rows", "write_dictionary"]

REDCAP_COLUMNS = (
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
)

_FORMS = {
    "exam": "ncs_exam",
    "motor": "ncs_motor",
    "sensory": "ncs_sensory",
    "provenance": "ncs_provenance",
}


def _limit(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _row(v: Variable) -> dict[str, str]:
    field_type = {"category": "dropdown", "json": "notes"}.get(v.type, "text")
    validation = {"integer": "integer", "number": "number"}.get(v.type, "")
    choices = " | ".join(f"{c}, {c.replace('_', ' ')}" for c in v.choices)
    note = v.units
    if v.type == "number":
        note = f"{v.units}, {v.decimals} decimals".lstrip(", ")
    elif v.type == "date":
        note = "YYYY, YYYY-MM or YYYY-MM-DD"
    elif v.type == "sha256":
        note = "64 hex digits"
    return {
        "Variable / Field Name": v.name,
        "Form Name": _FORMS.get(v.form, v.form),
        "Section Header": v.section,
        "Field Type": field_type,
        "Field Label": v.label,
        "Choices, Calculations, OR Slider Labels": choices,
        "Field Note": note,
        "Text Validation Type OR Show Slider Number": validation,
        "Text Validation Min": _limit(v.min),
        "Text Validation Max": _limit(v.max),
        "Identifier?": "y" if v.identifier else "",
        "Branching Logic (Show field only if...)": "",
        "Required Field?": "y" if v.required else "",
        "Custom Alignment": "",
        "Question Number (surveys only)": "",
        "Matrix Group Name": "",
        "Matrix Ranking?": "",
        "Field Annotation": f"@READONLY type={v.type}; source={v.source_text}",
    }


def dictionary_rows(decl: Declarations | None = None) -> list[dict[str, str]]:
    """One REDCap data-dictionary row per variable, in table order."""
    decl = decl or load_variables()
    return [_row(v) for v in decl.variables]


def dictionary_json(decl: Declarations | None = None) -> dict:
    """The declarations as a JSON-able document."""
    decl = decl or load_variables()
    return {
        "id": decl.id,
        "version": decl.version,
        "title": decl.title,
        "schema_version": decl.schema_version,
        "declarations_sha256": decl.sha256,
        "n_variables": len(decl.variables),
        "variables": [v.spec() for v in decl.variables],
    }


def write_dictionary(out: str | os.PathLike, decl: Declarations | None = None) -> tuple[Path, Path]:
    """Write ``out/registry_dictionary.csv`` (REDCap) and ``out/registry_dictionary.json``."""
    decl = decl or load_variables()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(REDCAP_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(dictionary_rows(decl))
    csv_path = out / "registry_dictionary.csv"
    csv_path.write_text(buf.getvalue(), encoding="utf-8")
    json_path = out / "registry_dictionary.json"
    json_path.write_text(
        json.dumps(dictionary_json(decl), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return csv_path, json_path
