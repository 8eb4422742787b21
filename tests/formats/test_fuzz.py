"""Damaged files: every reader raises FormatError (or returns a valid trace set), fast, small."""

from __future__ import annotations

import re
import time

import pytest

import ncsproc
from ncsproc.errors import FormatError
from ncsproc.formats import READERS
from ncsproc.testing import fuzz_reader, mutations, read_bounded

# The native reader goes through the HDF5 library, which takes up to a few seconds to give up
# on a damaged global heap (variable-length strings); it gets fewer variants and more time.
SETTINGS = {"ncsproc-hdf5": {"n": 24, "seconds": 15.0}}


@pytest.mark.parametrize("name", list(READERS))
def test_damaged_examples(name, tmp_path):
    counts = fuzz_reader(
        READERS[name], tmp_path, seed=20251121, **SETTINGS.get(name, {"n": 100, "seconds": 5.0})
    )
    assert counts["error"] > 0  # the variants did damage something


def test_mutations_cover_truncation_flips_and_absurd_numbers():
    data = b"0       " + b"X" * 100 + b"  12  3.5 " + bytes(range(256)) * 4
    kinds = {what.split(" ")[0] for what, _, _ in mutations(data, seed=1, n=40)}
    assert {"truncated", "number"} <= kinds
    assert any("random byte" in what for what, _, _ in mutations(data, seed=1, n=40))
    assert any(absurd for _, _, absurd in mutations(data, seed=1, n=40))


def _header_field(raw: bytes, offset: int, width: int, text: str) -> bytes:
    return raw[:offset] + text.encode().ljust(width) + raw[offset + width :]


@pytest.mark.parametrize(
    "offset, width, text, message",
    [
        (236, 8, "99999999", r"header declares 99999999 data records"),
        (236, 8, "-5", r"header byte 236: -5 data records, expected at least 1"),
        (252, 4, "9999", r"header byte 252: number of signals is 9999"),
        (
            252,
            4,
            "1000",
            r"header byte 184: header size is 768 bytes, expected 256 x \(1 \+ 1000 signals\)",
        ),
        (
            256 + 16 * 2 + 80 * 2 + 8 * 10 + 80 * 2,
            8,
            "99999999",
            r"\(signal 1\): 99999999 samples per data record need",
        ),
        (
            256 + 16 * 2 + 80 * 2 + 8 * 10 + 80 * 2 + 8,
            8,
            "9999999",
            r"\(signal 2\): 9999999 samples per data record need",
        ),
        (
            244,
            8,
            "0",
            r"header byte 244: data record duration is '0' s, expected a positive number",
        ),
        (
            244,
            8,
            "1e999999",
            r"header byte 244: data record duration is '1e999999' s, expected a positive number of "
            r"seconds up to 1000000",
        ),
    ],
)
def test_absurd_header_numbers_fail_fast_without_allocating(tmp_path, offset, width, text, message):
    reader = READERS["edf+d"]
    path = reader.example(tmp_path)
    path.write_bytes(_header_field(path.read_bytes(), offset, width, text))
    start = time.perf_counter()
    result = read_bounded(reader, path, seconds=2.0, max_bytes=8 * 1024 * 1024)
    assert time.perf_counter() - start < 2.0
    assert isinstance(result, FormatError)
    assert re.search(message, str(result)), str(result)
    assert str(result).startswith("MNC_R_median.edf")


def test_huge_declared_annotation_size_in_a_continuous_file(tmp_path):
    reader = READERS["edf"]
    path = reader.example(tmp_path)
    raw = path.read_bytes()
    offset = (
        256 + 16 * 2 + 80 * 2 + 8 * 10 + 80 * 2 + 8
    )  # samples per record of the annotation signal
    path.write_bytes(_header_field(raw, offset, 8, "88888888"))
    result = read_bounded(reader, path, seconds=2.0, max_bytes=8 * 1024 * 1024)
    assert isinstance(result, FormatError) and "FW_L_ulnar.edf" in str(result)


def test_huge_text_cells_and_lines(tmp_path):
    reader = READERS["text"]
    path = reader.example(tmp_path)
    path.write_text(path.read_text().replace("\n", ",1e999999\n", 3))
    with pytest.raises(
        FormatError,
        match=r"ulnar_motor\.csv: line 2, column 5: expected a finite number, found '1e999999'",
    ):
        ncsproc.read(path)
