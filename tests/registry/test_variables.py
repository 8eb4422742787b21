"""The variable declarations and the data dictionary generated from them."""

from __future__ import annotations

import csv
import json
import re

import pytest

from ncsproc import registry
from ncsproc.features._files import data_path
from ncsproc.registry.dictionary import REDCAP_COLUMNS
from ncsproc.registry.migrations import FROZEN_CHECKSUMS
from ncsproc.registry.variables import NAME_RE

UNIT_SUFFIX = {
    "ms": "_ms",
    "mV": "_mv",
    "uV": "_uv",
    "m/s": "_m_s",
    "%": "_pct",
    "cm": "_cm",
    "degC": "_c",
    "years": "_years",
    "year": "_year",
    "days": "_days",
}


def test_declared_variables_follow_the_naming_rule():
    decl = registry.load_variables()
    names = decl.names
    assert len(names) == len(set(names)) == 228
    assert names[:4] == ["record_id", "centre", "subject_pseudonym", "exam_id"]
    for v in decl.variables:
        assert NAME_RE.match(v.name) and len(v.name) <= 32, v.name
        if v.units:
            suffixes = (UNIT_SUFFIX[v.units],) + (
                ("_pct_uln", "_pct_lln") if v.units == "%" else ()
            )
            assert v.name.endswith(suffixes), (v.name, v.units)
        if v.per_nerve:
            assert (
                re.match(r"^[a-z_]+_[lr]_[a-z0-9_]+$", v.name) and f"_{v.side.lower()}_" in v.name
            )
    for name in (
        "median_l_dml_ms",
        "median_l_cv_m_s",
        "median_l_tli",
        "median_l_cmap_mv",
        "ulnar_l_f_min_ms",
        "sural_l_snap_uv",
        "sural_r_snap_uv",
        "tibial_r_cb_pct",
        "pattern",
        "efns_pns_2010",
        "ean_pns_2021",
        "settings_sha256",
        "source_sha256",
    ):
        assert name in names
    assert decl["median_l_cmap_mv"].units == "mV" and decl["median_l_cmap_mv"].factor == 0.001
    assert decl["sural_l_snap_uv"].units == "uV" and decl["sural_l_snap_uv"].factor == 1.0
    assert decl["pattern"].choices == (
        "normal",
        "distal_demyelinating",
        "cidp_like",
        "axonal",
        "not_classifiable",
    )


def test_released_schema_is_frozen():
    decl = registry.load_variables()
    assert FROZEN_CHECKSUMS[(decl.id, 1)] == decl.columns_checksum(since=1)


def test_dictionary_is_the_declarations(tmp_path):
    decl = registry.load_variables()
    csv_path, json_path = registry.write_dictionary(tmp_path)
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0].keys()) == REDCAP_COLUMNS
    assert [r["Variable / Field Name"] for r in rows] == decl.names
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    assert doc["n_variables"] == len(decl.variables) and doc["declarations_sha256"] == decl.sha256
    for row, spec, v in zip(rows, doc["variables"], decl.variables, strict=True):
        assert spec == v.spec()
        assert row["Field Label"] == v.label == spec["label"]
        if v.type == "category":
            assert row["Field Type"] == "dropdown"
            assert [
                c.split(",")[0].strip()
                for c in row["Choices, Calculations, OR Slider Labels"].split("|")
            ] == list(v.choices)
        if v.type in ("integer", "number"):
            assert row["Text Validation Type OR Show Slider Number"] == v.type
            assert row["Text Validation Min"] == ("" if v.min is None else f"{v.min:g}")
            assert row["Text Validation Max"] == ("" if v.max is None else f"{v.max:g}")
        assert v.units in row["Field Note"]
        assert spec["source"] in row["Field Annotation"]
    per_nerve = doc["variables"][decl.names.index("median_l_dml_ms")]
    assert (
        per_nerve["source"]
        == "nerves.dml_ms [nerve=median, side=L, modality in ['motor'], record_site in ['APB']]"
    )
    assert rows[decl.names.index("exam_date")]["Identifier?"] == "y"


def test_a_changed_declaration_changes_the_dictionary(tmp_path):
    """Generated, not written by hand: a label edited in the TOML is the dictionary's label."""
    text = data_path("registry", "variables.toml").read_text(encoding="utf-8")
    edited = tmp_path / "variables.toml"
    edited.write_text(
        text.replace('label = "distal motor latency"', 'label = "DML (edited)"'), encoding="utf-8"
    )
    decl = registry.load_variables(edited)
    rows = registry.dictionary_rows(decl)
    assert (
        rows[decl.names.index("ulnar_r_dml_ms")]["Field Label"]
        == "Ulnar motor (ADM), right: DML (edited)"
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('name = "pattern"\n', 'name = "Pattern"\n', "naming rule"),
        ('code = "sup_peroneal"', 'code = "superficial_peroneal_nerve"', "naming rule"),
        ('key = "tli"\n', 'key = "dml_ms"\n', "declared twice"),
        ('type = "sha256"', 'type = "hash"', "type"),
        ('decimals = 3\nmin = 0\nsource = "tli"', 'min = 0\nsource = "tli"', "decimals"),
        ('source = "exams.pattern"', 'source = "exams.pattern; DROP TABLE x"', "source"),
        ('aggregate = "min"', 'aggregate = "mean"', "aggregate"),
        ("[meta]\n", "[meta]\nspelling_mistake = 1\n", "unknown keys"),
        ('[[measure]]\nkey = "dml_ms"', '[[measure]]\nfactr = 2\nkey = "dml_ms"', "unknown keys"),
    ],
)
def test_bad_declarations_are_refused(tmp_path, old, new, message):
    text = data_path("registry", "variables.toml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "variables.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(registry.RegistryError, match=message):
        registry.load_variables(path)


def test_formats_registry_md_documents_every_variable():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "formats" / "registry.md").read_text()
    decl = registry.load_variables()
    for v in decl.variables:
        if v.per_nerve:
            key = v.name.split(f"_{v.side.lower()}_", 1)[1]
            assert f"`{key}`" in doc, key
        else:
            assert f"`{v.name}`" in doc, v.name
    assert f"{len(decl.variables)} variables" in doc
