"""No absolute path and no patient name in any output: every file the run writes is searched
(tables, Parquet, cohort.h5, the SQLite catalogue, the cached parts)."""

from __future__ import annotations

import json
import shutil

import pytest

NAME = "Jonathan_Smithers"
CODE = "MCH-0123456"
BIRTH = "02-MAY-1951"


def _identified_edf(src, dst):
    """Copy an EDF+D file with a real-looking patient field (code, sex, birth date, name) and
    a recording start date, as a clinical export would have."""
    b = bytearray(src.read_bytes())
    b[8:88] = f"{CODE} M {BIRTH} {NAME}".ljust(80).encode("ascii")
    recording = b[88:168].decode("ascii").split()
    b[88:168] = f"Startdate 02-MAR-2002 EMG561 BK/JOP Sony. {recording[-1]}".ljust(80).encode()
    dst.write_bytes(bytes(b))


def test_no_absolute_path_and_no_patient_name_in_outputs(cohort, tmp_path):
    from ncsproc.pipeline import extract

    exam = tmp_path / "cohort" / "EX0001"
    shutil.copytree(cohort / "EX0001", exam)
    for name in ("L_median_motor.edf", "L_ulnar_motor.edf"):
        _identified_edf(cohort / "EX0001" / name, exam / name)
        side = exam / f"{name}.json"
        doc = json.loads(side.read_text())
        doc.pop("age")  # the file now says it (from the birth and start dates)
        side.write_text(json.dumps(doc))
    (exam / "L_sural_sensory.edf").write_bytes(b"0       " + b"\xff" * 300)  # damaged
    out = tmp_path / "results"
    result = extract([tmp_path / "cohort"], out, scheduler="synchronous", traces=True)
    assert result.exit_status == 1 and result.n_errors == 1  # the damaged file
    assert result.n_traces > 0

    forbidden = [NAME, "Smithers", CODE, BIRTH, str(tmp_path), str(cohort), str(out.resolve())]
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"catalog.sqlite", "cohort.h5", "responses.csv", "errors.csv"} <= names
    assert any(p.suffix == ".part" for p in files)
    for p in files:
        data = p.read_bytes()
        for word in forbidden:
            assert word.encode() not in data, (p.name, word)
            assert word.encode("utf-16-le") not in data, (p.name, word)
    import pyarrow.parquet as pq  # in the test extra

    for p in out.glob("*.parquet"):  # compressed: search the decoded cells too
        table = pq.read_table(p)
        for column in table.column_names:
            for value in table.column(column).to_pylist():
                if isinstance(value, str):
                    assert not any(w in value for w in forbidden), (p.name, column, value)
    import h5py

    with h5py.File(out / "cohort.h5") as f:  # attributes and strings, decoded
        seen = []
        f.visititems(lambda n, o: seen.append((n, o)))
        for _, obj in [("/", f), *seen]:
            for value in obj.attrs.values():
                text = value.decode() if isinstance(value, bytes) else str(value)
                assert not any(w in text for w in forbidden)
    # the file with the name was read (its age came from its own dates), not skipped
    import pandas as pd

    nerves = pd.read_csv(out / "nerves.csv").set_index("study")
    assert nerves.loc["L_median_motor", "age_years"] == pytest.approx(50.8, abs=0.1)
