"""EDF+ nerve-conduction files: EDF+D read by ncsproc's own layer, EDF/EDF+C/BDF through MNE.

Two registered readers:

* ``edf+d`` - EDF+D / BDF+D, one trace per data record (the EDF+ specification's way of
  storing nerve conduction, section 3 of the interchange contract). MNE and edfio read EDF+D
  as if it were contiguous, which merges the sweeps, so ncsproc parses the records and their
  TALs itself (pure numpy and ``struct``-free byte slicing).
* ``edf`` - EDF, EDF+C, BDF, BDF+C: continuous recordings with ``Stimulus ...`` annotations;
  samples through MNE, one sweep cut around each stimulus.

And the writer :func:`write_edf` (``ncsproc.write_edf``). The conventions, what is read from
where and what is assumed are in ``formats/edf.md``.
"""

from __future__ import annotations

from pathlib import Path

from .. import Reader
from ._annotations import header_identity, parse_stimulus, parse_study_code, parse_xmlnote
from ._examples import IDENTIFYING, continuous_fwave_series, spec_motor_nerve_conduction
from ._header import read_header, sniff_family, sniff_reserved
from ._reader import (
    SIDECAR_KEYS,
    read_edf_continuous,
    read_edf_continuous_raw,
    read_edf_ncs,
    read_edf_ncs_raw,
)
from ._writer import EdfWriteError, write_edf

__all__ = [
    "read_edf_ncs",
    "read_edf_continuous",
    "write_edf",
    "EdfWriteError",
    "read_header",
    "parse_stimulus",
    "parse_study_code",
    "parse_xmlnote",
    "READERS",
]


def _sniff_discontinuous(path: Path) -> str | None:
    family = sniff_family(path)
    if family is None:
        return "no EDF ('0       ') or BDF ('\\xffBIOSEMI') marker at byte 0"
    reserved = sniff_reserved(path)
    if reserved is None:
        return f"{family} marker but the 256-byte header is incomplete"
    if reserved[:5] in ("EDF+D", "BDF+D"):
        return None
    return f"{family} file, but its reserved field says {reserved[:5] or 'plain ' + family!r}, not EDF+D"


def _sniff_continuous(path: Path) -> str | None:
    family = sniff_family(path)
    if family is None:
        return "no EDF ('0       ') or BDF ('\\xffBIOSEMI') marker at byte 0"
    reserved = sniff_reserved(path)
    if reserved is None:
        return f"{family} marker but the 256-byte header is incomplete"
    if reserved[:5] in ("EDF+D", "BDF+D"):
        return "EDF+D (discontinuous) file: one sweep per data record, read by 'edf+d'"
    return None


def _identity(path: Path) -> dict:
    """Patient identifier and exam date of the header, for ``ncsproc.read``'s privacy step."""
    return header_identity(read_header(path))


def _example_discontinuous(folder: Path) -> Path:
    return spec_motor_nerve_conduction(Path(folder) / "MNC_R_median.edf")


def _example_continuous(folder: Path) -> Path:
    return continuous_fwave_series(Path(folder) / "FW_L_ulnar.edf")


EDFD_READER = Reader(
    name="edf+d",
    description="EDF+D / BDF+D nerve conduction, one sweep per data record (EDF+ spec 3.7)",
    extensions=(".edf", ".bdf"),
    sniff=_sniff_discontinuous,
    load=read_edf_ncs,
    raw=read_edf_ncs_raw,
    example=_example_discontinuous,
    identifying=IDENTIFYING,
    sidecar_keys=SIDECAR_KEYS,
    function="ncsproc.formats.edf.read_edf_ncs",
    identity=_identity,
)

EDF_READER = Reader(
    name="edf",
    description="EDF / EDF+C / BDF with 'Stimulus ...' annotations (via MNE), sweeps cut per stimulus",
    extensions=(".edf", ".bdf", ".rec"),
    sniff=_sniff_continuous,
    load=read_edf_continuous,
    raw=read_edf_continuous_raw,
    example=_example_continuous,
    identifying=IDENTIFYING,
    sidecar_keys=SIDECAR_KEYS,
    function="ncsproc.formats.edf.read_edf_continuous",
    identity=_identity,
)

READER = EDFD_READER
READERS = (EDFD_READER, EDF_READER)
