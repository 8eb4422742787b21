"""Bad input loses nothing: failures become rows of errors.csv, the rest is complete, and the
exit status says what happened (0 all processed, 1 some failures, 2 usage error)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from .helpers import REPO, cli


def _csv(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_corrupt_file_among_good_ones(copy_exams, reference_run, tmp_path):
    ref_out, _ = reference_run
    src = copy_exams(["EX0001", "EX0003", "EX0005"])
    bad = src / "EX0003" / "L_median_motor.edf"
    data = bad.read_bytes()
    bad.write_bytes(data[:256] + b"\x00garbage" * 20)  # header kept, records destroyed
    junk = src / "EX0005" / "notes.txt"
    junk.write_text("free text notes about the exam; not a trace file\n")
    out = tmp_path / "out"
    code, err = cli(
        [
            "extract",
            src,
            "--out",
            out,
            "--scheduler",
            "threads",
            "--workers",
            "2",
            "--batch-size",
            "2",
        ]
    )
    assert code == 1, err
    assert "1 failure(s)" in err and "errors.csv" in err
    errors = _csv(out / "errors.csv")
    assert errors["source_file"].tolist() == ["EX0003/L_median_motor.edf"]
    assert errors["exam_id"].tolist() == ["EX0003"] and errors["stage"].tolist() == ["read"]
    assert errors["error"].iloc[0] == "FormatError" and errors["message"].iloc[0]
    # everything else is there, identical to the reference run of the whole cohort
    got = _csv(out / "responses.csv")
    ref = _csv(ref_out / "responses.csv")
    ref = ref[
        ref["exam_id"].isin(["EX0001", "EX0003", "EX0005"])
        & (ref["source_file"] != "EX0003/L_median_motor.edf")
    ].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, ref)
    nerves = _csv(out / "nerves.csv")
    assert set(nerves["exam_id"]) == {"EX0001", "EX0003", "EX0005"}
    assert "L_median_motor" not in set(nerves.loc[nerves["exam_id"] == "EX0003", "study"])
    exams = pd.read_csv(out / "exams.csv")
    assert exams.set_index("exam_id")["n_files_failed"].to_dict() == {
        "EX0001": 0,
        "EX0003": 1,
        "EX0005": 0,
    }
    # the damaged file is reported again by a rerun (its error is cached with the exam)
    again_code, again_err = cli(["extract", src, "--out", out, "--scheduler", "synchronous"])
    assert again_code == 1 and "0 computed, 3 cached" in again_err


def test_a_file_named_explicitly_is_always_reported(copy_exams, tmp_path):
    src = copy_exams(["EX0002"])
    other = src / "EX0002" / "readme.csv"
    other.write_text("a,b\n1,2\n")
    out = tmp_path / "out"
    # inside a folder walk, a table no trace reader recognises is not an input ...
    assert cli(["extract", src, "--out", out, "--scheduler", "synchronous"])[0] == 0
    # ... but named on the command line it is, and its refusal is reported
    code, err = cli(
        [
            "extract",
            src / "EX0002" / "L_median_motor.edf",
            other,
            "--out",
            tmp_path / "out2",
            "--scheduler",
            "synchronous",
        ]
    )
    assert code == 1
    errors = _csv(tmp_path / "out2" / "errors.csv")
    assert errors["source_file"].tolist() == ["readme.csv"]
    assert errors["error"].iloc[0] == "UnsupportedFormatError"


@pytest.mark.parametrize(
    "args, message",
    [
        (["no/such/folder"], "no such file or folder"),
        (["{cohort}", "--manifest", "{tmp}/missing.csv"], "no such file"),
        (["{cohort}", "--config", "{tmp}/nope.toml"], "no such file"),
        (["{cohort}", "--scheduler", "bogus"], "unknown scheduler"),
        (["{cohort}", "--workers", "0"], "workers must be >= 1"),
        (["{tmp}/*.nothing"], "matches no file"),
    ],
)
def test_usage_errors_exit_2(cohort, tmp_path, args, message):
    args = [a.format(cohort=cohort, tmp=tmp_path) for a in args]
    code, err = cli(["extract", *args, "--out", tmp_path / "out"])
    assert code == 2, err
    assert message in err


def test_bad_settings_and_manifest_are_usage_errors(cohort, tmp_path):
    cfg = tmp_path / "typo.toml"
    cfg.write_text('[pipeline]\nname = "x"\n[measure]\nk_detct = 5\n')
    code, err = cli(["extract", cohort, "--out", tmp_path / "o", "--config", cfg])
    assert code == 2 and "unknown measurement parameter 'k_detct'" in err
    man = tmp_path / "m.csv"
    man.write_text("source_file,exam_id,patient_name\nEX0001/L_median_motor.edf,A,Smith\n")
    code, err = cli(["extract", cohort, "--out", tmp_path / "o", "--manifest", man])
    assert code == 2 and "unknown column(s) ['patient_name']" in err
    assert "Smith" not in err


def test_manifest_groups_files_and_adds_facts(cohort, tmp_path):
    """Manifest: exams regrouped and renamed, subject/age/sex given; files it does not list and
    rows naming missing files are reported; a contradiction with a sidecar fails that file."""
    man = tmp_path / "manifest.csv"
    rows = ["source_file,exam_id,subject_id,age,height,sex"]
    for f in sorted((cohort / "EX0001").glob("*.edf")):
        rows.append(f"EX0001/{f.name},VISIT-A,SIM0001,,,female")
    for f in sorted((cohort / "EX0002").glob("*.edf")):
        rows.append(f"EX0002/{f.name},VISIT-B,SIM0002,,,M")
    rows.append("EX0002/not_there.edf,VISIT-B,SIM0002,,,M")
    man.write_text("\n".join(rows) + "\n")
    inputs = tmp_path / "in"
    shutil.copytree(cohort / "EX0001", inputs / "EX0001")
    shutil.copytree(cohort / "EX0002", inputs / "EX0002")
    shutil.copytree(cohort / "EX0004", inputs / "EX0004")  # not in the manifest
    side = inputs / "EX0002" / "L_sural_sensory.edf.json"
    side.write_text(side.read_text().replace('"SIM0002"', '"SIM9999"'))
    shutil.copy(man, inputs / "manifest.csv")
    out = tmp_path / "out"
    code, err = cli(
        [
            "extract",
            inputs,
            "--out",
            out,
            "--manifest",
            inputs / "manifest.csv",
            "--scheduler",
            "synchronous",
        ]
    )
    assert code == 1, err
    exams = pd.read_csv(out / "exams.csv", keep_default_na=False)
    assert exams["exam_id"].tolist() == ["VISIT-A", "VISIT-B"]
    assert exams["sex"].tolist() == ["F", "M"]
    assert exams["n_files"].tolist() == [9, 9]
    assert exams["n_files_failed"].tolist() == [0, 1]
    responses = _csv(out / "responses.csv")
    assert set(responses["exam_id"]) == {"VISIT-A", "VISIT-B"}
    assert responses["source_file"].str.startswith(("EX0001/", "EX0002/")).all()
    errors = _csv(out / "errors.csv")
    by = dict(zip(errors["source_file"], errors["error"], strict=True))
    assert by["EX0002/L_sural_sensory.edf"] == "FormatError"  # sidecar says SIM0002
    assert by["EX0002/not_there.edf"] == "NotFound"
    assert {k for k, v in by.items() if v == "NotInManifest"} == {
        f"EX0004/{f.name}" for f in (cohort / "EX0004").glob("*.edf")
    }
    assert "manifest.csv" not in set(errors["source_file"])


def test_duplicate_exam_folders_are_reported(cohort, tmp_path):
    a, b = tmp_path / "site_a" / "EX0001", tmp_path / "site_b" / "EX0001"
    shutil.copytree(cohort / "EX0001", a)
    shutil.copytree(cohort / "EX0001", b)
    shutil.copytree(cohort / "EX0002", tmp_path / "site_b" / "EX0002")
    code, err = cli(
        [
            "extract",
            tmp_path / "site_a",
            tmp_path / "site_b",
            "--out",
            tmp_path / "out",
            "--scheduler",
            "synchronous",
        ]
    )
    assert code == 1
    errors = _csv(tmp_path / "out" / "errors.csv")
    assert errors["error"].tolist() == ["DuplicateExamId", "DuplicateExamId"]
    assert pd.read_csv(tmp_path / "out" / "exams.csv")["exam_id"].tolist() == ["EX0002"]


def test_real_sample_files_are_reported_not_crashed(tmp_path):
    """data_samples/real holds a CED demo file (ECG, no nerve) and QTRAC results: the CFS file
    reads but cannot be a nerve study without a sidecar, the MEM files are no trace input at
    all; each is listed in errors.csv with its reason."""
    code, err = cli(
        [
            "extract",
            REPO / "data_samples",
            "--out",
            tmp_path / "out",
            "--scheduler",
            "synchronous",
            "--no-traces",
        ]
    )
    assert code == 1
    errors = _csv(tmp_path / "out" / "errors.csv")
    # the CFS file reads, but says no side, nerve or modality: the features need them
    cfs = errors[errors["source_file"] == "real/cfs/test_file.cfs"]
    assert cfs["error"].tolist() == ["MissingMetadata"]
    assert "sidecar real/cfs/test_file.cfs.json" in cfs["message"].iloc[0]
    # every QTRAC results file is named with the function that reads it, never dropped
    qtrac = sorted(
        p.relative_to(REPO / "data_samples").as_posix()
        for p in (REPO / "data_samples" / "real").rglob("*")
        if p.suffix.lower() in (".mem", ".mef")
    )
    # the MEPFeatX MAT-files read (MEP preset) but say no nerve or side: the features need them
    mats = errors[errors["source_file"].str.endswith(".mat")]
    assert sorted(mats["source_file"]) == ["real/mepfeatx/ID01.mat", "real/mepfeatx/ID02.mat"]
    assert set(mats["error"]) == {"MissingMetadata"}
    rest = errors[~errors["source_file"].isin(["real/cfs/test_file.cfs", *mats["source_file"]])]
    assert sorted(rest["source_file"]) == qtrac
    assert set(rest["error"]) == {"NotTraces"}
    assert rest["message"].str.contains("ncsproc.read_qtrac").all()
    assert len(pd.read_csv(tmp_path / "out" / "exams.csv")) == 4


def test_linked_exam_folders_are_followed(cohort, tmp_path):
    """A cohort assembled from symbolic links: each link is an exam named as the link; a link
    back up the tree does not loop."""
    from ncsproc.pipeline import plan_inputs

    root = tmp_path / "linked"
    root.mkdir()
    (root / "EX0002").symlink_to(cohort / "EX0002", target_is_directory=True)
    (root / "EX0002b").mkdir()
    (root / "EX0002b" / "loop").symlink_to(root, target_is_directory=True)
    plan = plan_inputs([root])
    assert [e.exam_id for e in plan.exams] == ["EX0002"]
    assert {f.source_file for f in plan.exams[0].files} >= {"EX0002/L_median_motor.edf"}
    assert all(f.path.startswith(str(root)) for f in plan.exams[0].files)


def test_files_beside_exam_folders_are_no_exam(copy_exams, cohort, tmp_path):
    """The truth CSVs at the top of a cohort folder (and notes beside the exam folders of a
    site) are not an exam: they are skipped when no trace reader recognises them, and the log
    counts the real exams only. A folder with a trace file of its own stays an exam."""
    from ncsproc.pipeline import plan_inputs

    root = copy_exams(["EX0001", "EX0002"])
    for truth in sorted(cohort.glob("truth_*.csv")):
        shutil.copy(truth, root / truth.name)
    (root / "site_b").mkdir()
    shutil.copytree(cohort / "EX0003", root / "site_b" / "EX0003")
    (root / "site_b" / "notes.txt").write_text("referred by Dr X\n")
    plan = plan_inputs([root])
    assert [e.exam_id for e in plan.exams] == ["EX0001", "EX0002", "EX0003"]
    assert sorted(f.source_file for f in plan.skipped) == [
        "site_b/notes.txt",
        *sorted(p.name for p in cohort.glob("truth_*.csv")),
    ]
    assert plan.n_candidates == sum(e.n_files for e in plan.exams)
    code, err = cli(
        ["extract", root, "--out", tmp_path / "out", "--scheduler", "synchronous", "--no-traces"]
    )
    assert code == 0, err
    assert f"{plan.n_candidates} candidate file(s) in 3 exam(s) (folders)" in err
    assert "skipped 5 file(s) beside the exam folders that no trace reader recognises" in err
    assert "3 exam(s) (3 computed, 0 cached)" in err
    # a trace file of its own keeps a folder an exam (one folder per exam), truth CSVs and all
    edf = next((cohort / "EX0004").glob("*.edf"))
    shutil.copy(edf, root / edf.name)
    plan = plan_inputs([root])
    assert [e.exam_id for e in plan.exams] == [root.name, "EX0001", "EX0002", "EX0003"]
    assert [f.source_file for f in plan.skipped] == ["site_b/notes.txt"]
    assert edf.name in {f.source_file for f in plan.exams[0].files}
    # a folder of notes only, without exam folders inside, is reported at the end, not counted
    (root / "EX0009").mkdir()
    (root / "EX0009" / "notes.txt").write_text("no recording\n")
    (root / edf.name).unlink()
    code, err = cli(
        ["extract", root, "--out", tmp_path / "out2", "--scheduler", "synchronous", "--no-traces"]
    )
    assert code == 0, err
    assert "1 folder(s) held no trace file and are not exams: EX0009/" in err
    assert "3 exam(s) (3 computed, 0 cached)" in err
