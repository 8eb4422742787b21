"""The cohort pipeline reads through the readers' raw layer (issue 16): same tables bit for bit
as through the public ``ncsproc.read`` path (one xarray Dataset per file), on the repository's
sample cohort, in one test run."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples" / "simulated"
TABLES = ("responses", "segments", "nerves", "exams", "errors", "criteria", "sites")


def _via_public_read(path, *, format=None, pseudonymizer=None, date_precision="day"):
    """The reference: the public xarray reader, taken apart afterwards."""
    import ncsproc
    from ncsproc.schema import RawTraces

    ds = ncsproc.read(path, pseudonymizer=pseudonymizer, date_precision=date_precision)
    assert type(ds).__name__ == "Dataset"
    return RawTraces.from_dataset(ds)


def test_raw_layer_gives_the_tables_of_the_public_read_path(tmp_path, monkeypatch):
    from ncsproc.pipeline import extract, work
    from ncsproc.schema import RawTraces

    raw_calls = []
    original = work.read_file

    def counting(path, **kwargs):
        out = original(path, **kwargs)
        raw_calls.append(type(out))
        return out

    monkeypatch.setattr(work, "read_file", counting)
    raw = extract([SAMPLES], tmp_path / "raw", scheduler="synchronous", parquet=False)
    assert raw_calls and set(raw_calls) == {RawTraces}  # no Dataset per file
    monkeypatch.setattr(work, "read_file", _via_public_read)
    public = extract([SAMPLES], tmp_path / "public", scheduler="synchronous", parquet=False)

    assert raw.n_exams == public.n_exams == 4
    assert raw.n_traces == public.n_traces > 100
    for name in TABLES:
        a = (tmp_path / "raw" / f"{name}.csv").read_bytes()
        b = (tmp_path / "public" / f"{name}.csv").read_bytes()
        assert a == b, f"{name}.csv differs between the raw layer and ncsproc.read"


def test_raw_layer_equals_read_on_every_sample_file():
    import xarray as xr

    import ncsproc

    files = sorted(SAMPLES.rglob("*.edf"))
    assert len(files) >= 30
    for f in files:
        raw = ncsproc.read_raw(f, date_precision="day")
        ds = ncsproc.read(f, date_precision="day")
        got, ref = raw.to_dataset(), ds
        got.attrs["history"] = ref.attrs["history"] = ""  # history lines carry the read time
        xr.testing.assert_identical(got, ref)


@pytest.mark.parametrize("damage", ["truncated", "sidecar"])
def test_raw_layer_reports_bad_files_like_read(tmp_path, damage):
    import shutil

    import ncsproc
    from ncsproc.errors import FormatError

    src = sorted((SAMPLES / "EX0001").glob("*.edf"))[0]
    dst = tmp_path / "EX0001" / src.name
    dst.parent.mkdir()
    shutil.copyfile(src, dst)
    if damage == "truncated":
        dst.write_bytes(src.read_bytes()[:300])
    else:
        (tmp_path / "EX0001" / f"{src.name}.json").write_text('{"nerve": 3}')
    with pytest.raises(FormatError) as public:
        ncsproc.read(dst)
    with pytest.raises(FormatError) as raw:
        ncsproc.read_raw(dst)
    assert str(raw.value) == str(public.value)
