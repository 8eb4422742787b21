"""Build what the registry imports, the way ``ncsproc extract`` will (until it exists).

* :func:`identified_cohort` writes simulated exam folders whose files carry real-looking
  identifying headers (EDF+ patient and recording fields, DICOM patient module), and no
  subject id or age in their sidecars: the subject id can then only come from the header,
  through the pseudonymizer, and the age from the header's birth date.
* :func:`extract_like` reads, measures and tabulates a cohort into DIR with the contract's
  tables (``exams.csv`` with an ``exam_date`` column, ``nerves.csv``, ``segments.csv``,
  ``responses.csv``, ``errors.csv``) and ``provenance.json`` (written by
  ``ncsproc.registry.write_provenance``, the function extract is to call).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import ncsproc
from ncsproc import features, simulate
from ncsproc.registry import file_sha256, write_provenance
from ncsproc.tables import responses_table, write_csv


@dataclass(frozen=True)
class Patient:
    code: str  # hospital patient id (EDF+ first subfield / DICOM PatientID)
    sex: str
    birth: str  # EDF+ dd-MMM-yyyy
    name: str  # EDF+ Name_Surname
    birth_dicom: str  # YYYYMMDD
    dicom_name: str  # Family^Given


PATIENTS = (
    Patient("MCH-0234567", "F", "02-MAY-1951", "Haagse_Harry", "19510502", "Haagse^Harry"),
    Patient("NL-778812", "M", "17-NOV-1948", "Pieter_Post", "19481117", "Post^Pieter"),
    Patient("UMC 44-5519", "F", "29-FEB-1960", "Maria_Gonzalez", "19600229", "Gonzalez^Maria"),
)
ADMIN_CODE = "ADM-99812"  # EDF+ hospital administration code of the recording
TECHNICIAN = "Dr_Jansen"


def identifying_strings(patients=PATIENTS) -> list[str]:
    """Every identifying string the cohort's headers carry, in the forms it could leak in."""
    out = [ADMIN_CODE, TECHNICIAN, "Jansen"]
    for p in patients:
        first, last = p.name.split("_")
        out += [
            p.code,
            p.code.replace(" ", ""),
            p.code.lower(),
            p.birth,
            p.birth_dicom,
            p.name,
            first,
            last,
            p.dicom_name,
        ]
        y, m, d = p.birth_dicom[:4], p.birth_dicom[4:6], p.birth_dicom[6:]
        out += [f"{y}-{m}-{d}", f"{d}.{m}.{y}", f"{d}/{m}/{y}"]
    return out


def _field(text: str, width: int) -> bytes:
    raw = text.encode("latin-1") if isinstance(text, str) else text
    assert len(raw) <= width, text
    return raw.ljust(width, b" ")


def identify_edf(path: Path, patient: Patient, exam_date: str, *, extra: bytes = b"") -> None:
    """Write an EDF+ patient field, a recording field with Startdate, admin code and
    technician, and the header start date into a file written by ``ncsproc.write_edf``."""
    raw = bytearray(path.read_bytes())
    recording = raw[88:168].decode("latin-1").split()
    code = recording[-1]  # the study code (MNC_L_Median_Nerve)
    day, mon, year = exam_date.split("-")
    raw[8:88] = _field(
        f"{patient.code.replace(' ', '_')} {patient.sex} {patient.birth} {patient.name}", 80
    )
    rec = (
        f"Startdate {exam_date} {ADMIN_CODE} {TECHNICIAN} EMGsys ".encode("latin-1")
        + extra
        + b" "
        + code.encode()
    )
    raw[88:168] = _field(rec, 80)
    months = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
    raw[168:176] = _field(f"{int(day):02d}.{months.index(mon) + 1:02d}.{year[2:]}", 8)
    path.write_bytes(bytes(raw))
    side = path.with_name(path.name + ".json")
    if side.exists():
        data = json.loads(side.read_text(encoding="utf-8"))
        data.pop("subject_id", None)
        data.pop("age", None)
        side.write_text(json.dumps(data, indent=1), encoding="utf-8")


def identified_cohort(
    root: Path,
    *,
    patterns=("normal", "distal_demyelinating", "cidp_like"),
    seed: int = 7,
    patients=None,
    dates=None,
    dicom_exams=(),
) -> list[Path]:
    """Simulated exam folders with identifying headers. ``patients[i]`` and ``dates[i]`` go to
    exam ``i``; exams listed in ``dicom_exams`` (indices) are rewritten as one DICOM file."""
    import pydicom

    root.mkdir(parents=True, exist_ok=True)
    simulate.write_cohort(root, patterns=list(patterns), seed=seed)
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    patients = patients or [PATIENTS[i % len(PATIENTS)] for i in range(len(folders))]
    dates = dates or ["02-MAR-2024"] * len(folders)
    for i, folder in enumerate(folders):
        edfs = sorted(folder.glob("*.edf"))
        if i in dicom_exams:
            traces = ncsproc.concat_trace_sets([ncsproc.read(f) for f in edfs])
            for f in folder.iterdir():
                f.unlink()
            path = ncsproc.write_dicom(traces, folder / "exam.dcm")
            ds = pydicom.dcmread(path)
            p = patients[i]
            ds.PatientName = p.dicom_name
            ds.PatientID = p.code
            ds.PatientBirthDate = p.birth_dicom
            ds.OtherPatientIDs = "MRN-" + p.code
            ds.InstitutionName = "Example University Hospital"
            ds.StudyDate = pd.Timestamp(dates[i]).strftime("%Y%m%d")
            ds.save_as(path, enforce_file_format=True)
        else:
            for f in edfs:
                identify_edf(f, patients[i], dates[i])
    return folders


def extract_like(
    inputs: Path,
    out: Path,
    *,
    pseudonymizer=None,
    date_precision: str = "year",
    settings: dict | None = None,
) -> Path:
    """What ``ncsproc extract INPUTS --out OUT`` writes (the parts the registry reads)."""
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(
        f for f in inputs.rglob("*") if f.is_file() and f.suffix.lower() in (".edf", ".dcm")
    )
    sets, sources = [], []
    for f in files:
        rel = f.relative_to(inputs).as_posix()
        ds = ncsproc.read(f, pseudonymizer=pseudonymizer, date_precision=date_precision)
        ds = ds.assign_coords(
            source_file=("trace", [rel] * ds.sizes["trace"], ds.source_file.attrs)
        )
        # without a pseudonym from the header: the exam folder's id (extract says so)
        subject = np.asarray(ds.subject_id.values).astype(str).astype(object)
        if (subject == "").any():
            subject[subject == ""] = f.parent.name
            ds = ds.assign_coords(subject_id=("trace", subject, ds.subject_id.attrs))
        sets.append(ds)
        for exam in sorted(set(ds.exam_id.values.astype(str))):
            sources.append((exam, rel, file_sha256(f)))
    traces = ncsproc.concat_trace_sets(sets)
    measures = ncsproc.measure(traces)
    t = features.tables(measures)
    dates = (
        pd.DataFrame(
            {"exam_id": traces.exam_id.values.astype(str), "d": traces.exam_date.values.astype(str)}
        )
        .query("d != ''")
        .groupby("exam_id")["d"]
        .min()
    )
    exams = t["exams"].copy()
    exams["exam_date"] = [dates.get(e, "") for e in exams["exam_id"]]
    for name in ("exams", "nerves", "segments"):
        table = exams if name == "exams" else t[name]
        write_csv(table, out / f"{name}.csv", features.csv_decimals(table))
    write_csv(responses_table(measures), out / "responses.csv")
    write_csv(pd.DataFrame(columns=["source_file", "error", "message"]), out / "errors.csv")
    write_provenance(
        out,
        sources=sources,
        settings=settings or {"measure": {}, "limits": "default", "date_precision": date_precision},
        pseudonymizer=pseudonymizer,
        date_precision=date_precision,
    )
    return out
