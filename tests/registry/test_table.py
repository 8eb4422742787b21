"""The wide table: values, units, row choice, refusals, date precision, files."""

from __future__ import annotations

import csv
import json
import math
import shutil

import pandas as pd
import pytest

from ncsproc import registry

CENTRE = "NL-AMC"


def _copy(cohort, tmp_path):
    return shutil.copytree(cohort / "dir", tmp_path / "dir")


def _csv(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _save(df: pd.DataFrame, path) -> None:
    df.to_csv(path, index=False, lineterminator="\n")


def test_values_are_the_extract_tables_in_clinical_units(cohort, key):
    decl = registry.load_variables()
    wide = registry.build_table(cohort / "dir", centre=CENTRE, pseudonymizer=key)
    assert not wide.problems and len(wide.table) == 3
    nerves = _csv(cohort / "dir" / "nerves.csv")
    exams = _csv(cohort / "dir" / "exams.csv").set_index("exam_id")
    checked = 0
    for row in wide.table.to_dict("records"):
        mine = nerves[nerves["exam_id"] == row["exam_id"]]
        for v in decl.variables:
            value = row[v.name]
            if v.per_nerve:
                cand = mine[(mine["nerve"] == v.nerve) & (mine["side"] == v.side)]
                cand = cand[cand["modality"].isin(v.modalities)]
                if v.record_sites:
                    cand = cand[cand["record_site"].isin(v.record_sites)]
                cand = cand.sort_values("modality", key=lambda m: m.map(v.modalities.index))
                raw = cand.iloc[0][v.source.split(".")[1]] if len(cand) else ""
                if v.type == "number":
                    expected = round(float(raw) * v.factor, v.decimals) if raw else None
                    assert (pd.isna(value) and expected is None) or value == expected, v.name
                    checked += raw != ""
                elif v.type == "category":
                    expected = {"": None, "ok": "ok", "no_response": "no_response"}.get(
                        raw, "not_measurable"
                    )
                    assert (pd.isna(value) and expected is None) or value == expected, v.name
            elif v.source.startswith("exams.") and v.name != "exam_id":
                raw = exams.loc[row["exam_id"], v.source.split(".")[1]]
                if v.type == "integer":
                    assert value == int(raw), v.name
                else:
                    assert (pd.isna(value) and raw == "") or value == raw, v.name
    assert checked > 100
    # units: CMAP in mV from uV; SNAP stays in uV
    first = nerves[(nerves["exam_id"] == "EX0001") & (nerves["study"] == "L_median_motor")].iloc[0]
    row = wide.table.set_index("exam_id").loc["EX0001"]
    assert row["median_l_cmap_mv"] == round(float(first["distal_amp_uv"]) / 1000, 3)
    assert 1 < row["median_l_cmap_mv"] < 30


def test_row_choice_for_repeated_studies_other_sites_and_f_waves(cohort, key, tmp_path):
    d = _copy(cohort, tmp_path)
    nerves = _csv(d / "nerves.csv")
    ex = nerves["exam_id"] == "EX0001"
    median = nerves[ex & (nerves["study"] == "L_median_motor")].iloc[0].copy()
    worse = median.copy()
    worse["study"], worse["evaluable"], worse["dml_ms"] = "L_median_motor_a", "False", "99.000"
    fdi = median.copy()
    fdi["study"], fdi["record_site"], fdi["dml_ms"] = "L_median_motor_fdi", "FDI", "1.000"
    nerves = nerves[~(ex & (nerves["study"] == "L_tibial_motor"))]  # F waves from the F study
    nerves = pd.concat([nerves, pd.DataFrame([worse, fdi])], ignore_index=True)
    ex = nerves["exam_id"] == "EX0001"
    _save(nerves, d / "nerves.csv")
    wide = registry.build_table(d, centre=CENTRE, pseudonymizer=key)
    row = wide.table.set_index("exam_id").loc["EX0001"]
    assert row["median_l_dml_ms"] == round(float(median["dml_ms"]), 2)  # evaluable APB study
    fwave = nerves[ex & (nerves["study"] == "L_tibial_fwave")].iloc[0]
    assert row["tibial_l_f_min_ms"] == round(float(fwave["f_min_ms"]), 2)
    assert pd.isna(row["tibial_l_motor_status"]) and pd.isna(row["tibial_l_dml_ms"])
    assert (
        row["n_studies"] == 10 and row["n_studies_mapped"] == 7
    )  # 8 mapped before, minus tibial motor, + tibial F


def test_invalid_values_refuse_the_exam_not_the_folder(cohort, key, tmp_path):
    d = _copy(cohort, tmp_path)
    nerves = _csv(d / "nerves.csv")
    hit = (nerves["exam_id"] == "EX0002") & (nerves["study"] == "L_ulnar_motor")
    nerves.loc[hit, "dml_ms"] = "-1.5"
    _save(nerves, d / "nerves.csv")
    exams = _csv(d / "exams.csv")
    exams.loc[exams["exam_id"] == "EX0003", "pattern"] = "probably_fine"
    _save(exams, d / "exams.csv")
    wide = registry.build_table(d, centre=CENTRE, pseudonymizer=key)
    assert list(wide.table["exam_id"]) == ["EX0001"]
    problems = dict(wide.problems)
    assert (
        "ulnar_l_dml_ms" in problems["EX0002"] and "below its validity limit" in problems["EX0002"]
    )
    assert "pattern" in problems["EX0003"] and "probably_fine" in problems["EX0003"]


def test_provenance_is_required_and_checked(cohort, key, tmp_path):
    d = _copy(cohort, tmp_path)
    prov = json.loads((d / "provenance.json").read_text())
    bad = dict(prov, settings_sha256="abc")
    (d / "provenance.json").write_text(json.dumps(bad))
    with pytest.raises(registry.RegistryError, match="settings_sha256"):
        registry.build_table(d, centre=CENTRE, pseudonymizer=key)
    dropped = dict(prov, sources=[s for s in prov["sources"] if s["exam_id"] != "EX0002"])
    (d / "provenance.json").write_text(json.dumps(dropped))
    wide = registry.build_table(d, centre=CENTRE, pseudonymizer=key)
    assert dict(wide.problems) == {"EX0002": "provenance.json lists no source file for this exam"}
    (d / "provenance.json").unlink()
    with pytest.raises(registry.RegistryError, match="provenance.json: missing"):
        registry.build_table(d, centre=CENTRE, pseudonymizer=key)


def test_source_hashes_are_the_files(cohort, key):
    wide = registry.build_table(cohort / "dir", centre=CENTRE, pseudonymizer=key)
    for row in wide.table.itertuples():
        files = sorted((cohort / "in" / row.exam_id).iterdir())
        assert json.loads(row.source_sha256) == sorted(
            registry.file_sha256(f) for f in files if f.suffix in (".edf", ".dcm")
        )


def test_missing_columns_are_named(cohort, key, tmp_path):
    d = _copy(cohort, tmp_path)
    _save(_csv(d / "nerves.csv").drop(columns=["tli", "scv_m_s"]), d / "nerves.csv")
    with pytest.raises(registry.RegistryError, match=r"\['scv_m_s', 'tli'\]"):
        registry.build_table(d, centre=CENTRE, pseudonymizer=key)


def test_date_precision_is_the_coarser_of_registry_and_extract(cohort, key, tmp_path):
    t = registry.build_table(
        cohort / "dir", centre=CENTRE, pseudonymizer=key, date_precision="month"
    ).table
    assert sorted(t["exam_date"]) == ["2023-07", "2024-03", "2024-11"]
    assert set(t["date_precision"]) == {"month"}
    t = registry.build_table(
        cohort / "dir", centre=CENTRE, pseudonymizer=key, date_precision="none"
    ).table
    assert t["exam_date"].isna().all() and t["exam_year"].isna().all()
    d = _copy(cohort, tmp_path)
    prov = json.loads((d / "provenance.json").read_text())
    (d / "provenance.json").write_text(json.dumps(dict(prov, date_precision="year")))
    exams = _csv(d / "exams.csv")
    exams["exam_date"] = [x[:4] for x in exams["exam_date"]]
    _save(exams, d / "exams.csv")
    t = registry.build_table(d, centre=CENTRE, pseudonymizer=key, date_precision="day").table
    assert sorted(t["exam_date"]) == ["2023", "2024", "2024"] and set(t["date_precision"]) == {
        "year"
    }


def test_configuration_file_and_centre_code(cohort, key, tmp_path):
    cfg = tmp_path / "registry.toml"
    cfg.write_text('[registry]\ncentre = "BE-GENT"\ndate_precision = "month"\n')
    config = registry.load_config(cfg)
    t = registry.build_table(cohort / "dir", config=config, pseudonymizer=key).table
    assert set(t["centre"]) == {"BE-GENT"} and set(t["date_precision"]) == {"month"}
    assert registry.load_config(cfg, centre="NL-AMC").centre == "NL-AMC"
    cfg.write_text('[registry]\ncenter = "BE-GENT"\n')
    with pytest.raises(registry.RegistryError, match="unknown keys"):
        registry.load_config(cfg)
    for bad in ("", "NL AMC", "x'; DROP TABLE ncs_exam;--", "a" * 65):
        with pytest.raises(registry.RegistryError, match="centre code"):
            registry.build_table(cohort / "dir", centre=bad, pseudonymizer=key)


def test_csv_and_parquet_hold_the_same_table_and_csv_is_byte_stable(cohort, key, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    wide = registry.export(
        cohort / "dir", [a, tmp_path / "w.parquet"], pseudonymizer=key, centre=CENTRE
    )
    registry.export(cohort / "dir", b, pseudonymizer=key, centre=CENTRE)
    assert a.read_bytes() == b.read_bytes()
    pd.testing.assert_frame_equal(registry.read_wide(a), wide.table)
    pd.testing.assert_frame_equal(registry.read_wide(tmp_path / "w.parquet"), wide.table)
    with open(a, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    assert header == registry.load_variables().names
    line = dict(zip(header, rows[1], strict=True))
    assert (
        line["median_l_cmap_mv"].count(".") == 1
        and len(line["median_l_cmap_mv"].split(".")[1]) == 3
    )
    import pyarrow.parquet as pq

    schema = pq.read_schema(tmp_path / "w.parquet")
    assert (
        str(schema.field("age_years").type) == "int64"
        and str(schema.field("median_l_dml_ms").type) == "double"
    )
    assert math.isclose(
        wide.table["median_l_dml_ms"].dropna().iloc[0], float(line["median_l_dml_ms"])
    )


def test_write_provenance_checks_its_arguments(tmp_path, key):
    digest = "0" * 64
    path = registry.write_provenance(
        tmp_path,
        sources=[("E2", "E2/b.edf", digest), ("E1", "E1/a.edf", digest)],
        settings={"measure": {"k": 1}},
        pseudonymizer=key,
    )
    prov = registry.read_provenance(tmp_path)
    assert prov.sources == {"E1": (("E1/a.edf", digest),), "E2": (("E2/b.edf", digest),)}
    assert prov.settings_sha256 == registry.settings_digest({"measure": {"k": 1}})
    assert prov.pseudonym_key_id == key.key_id and "key" not in path.read_text().lower().replace(
        "pseudonym_key_id", ""
    )
    with pytest.raises(ValueError, match="exactly one"):
        registry.write_provenance(tmp_path, sources=[], pseudonymizer=key)
    with pytest.raises(ValueError, match="64 lower-case hex"):
        registry.write_provenance(tmp_path, sources=[("E1", "a", "xyz")], settings_sha256=digest)
