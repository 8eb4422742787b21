"""Hand-made EDF files for the tests: the EDF+ specification's example, and a small builder.

The specification's Motor Nerve Conduction file (EDF+ spec, section 3.7) is written here
field by field from the text of the specification, independently of ncsproc's own example
writer, so that a test can compare the two byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def a(text: str, width: int) -> bytes:
    """One ASCII header field, left-justified and padded with spaces."""
    raw = text.encode("latin-1")
    assert len(raw) <= width, (text, width)
    return raw.ljust(width, b" ")


# EDF+ specification, section 3.7 "The Motor Nerve Conduction file", header record.
SPEC_HEADER = b"".join(
    [
        a("0", 8),  # version
        a("MCH-0234567 F 02-MAY-1951 Haagse_Harry", 80),  # local patient identification
        a("Startdate 02-MAR-2002 EMG561 BK/JOP Sony. MNC R Median Nerve.", 80),  # recording
        a("17.04.01", 8),  # startdate
        a("11.25.00", 8),  # starttime
        a("768", 8),  # bytes in header
        a("EDF+D", 44),  # reserved
        a("2", 8),  # number of data records
        a("0.050", 8),  # duration of a data record
        a("2", 4),  # number of signals
        a("R APB", 16) + a("EDF Annotations", 16),  # labels
        a("AgAgCl electrodes", 80) + a("", 80),  # transducer types
        a("mV", 8) + a("", 8),  # physical dimensions
        a("-100", 8) + a("-1", 8),  # physical minima
        a("100", 8) + a("1", 8),  # physical maxima
        a("-2048", 8) + a("-32768", 8),  # digital minima
        a("2047", 8) + a("32767", 8),  # digital maxima
        a("HP:3Hz LP:20kHz", 80) + a("", 80),  # prefiltering
        a("1000", 8) + a("60", 8),  # samples per data record
        a("", 32) + a("", 32),  # reserved
    ]
)
# The TALs of the two data records (section 3.7): time keeping, stimulus, response.
SPEC_TALS = [
    b"+0\x14\x14Stimulus right wrist 0.2ms x 8.2mA at 6.5cm from recording site\x14"
    b"Response 7.2mV at 3.8ms\x14\x00",
    b"+10\x14\x14Stimulus right elbow 0.2ms x 15.3mA at 28.5cm from recording site\x14"
    b"Response 7.2mV at 7.8ms (55.0m/s)\x14\x00",
]


def write_spec_file(path, samples: np.ndarray) -> Path:
    """The spec's file with the given (2, 1000) int16 samples (the spec prints none)."""
    assert samples.shape == (2, 1000)
    body = b"".join(
        np.asarray(samples[r], dtype="<i2").tobytes() + SPEC_TALS[r].ljust(120, b"\x00")
        for r in range(2)
    )
    path = Path(path)
    path.write_bytes(SPEC_HEADER + body)
    return path


def tal(onset: str, *texts: str, duration: str | None = None) -> bytes:
    """One TAL: ``+onset[\\x15duration]\\x14text\\x14...\\x00`` (no text: time keeping)."""
    head = onset if onset[0] in "+-" else "+" + onset
    if duration is not None:
        head += "\x15" + duration
    body = "".join(t + "\x14" for t in (texts or ("",)))
    return (head + "\x14" + body + "\x00").encode("utf-8")


def build_edf(
    path,
    *,
    signals: list[dict],
    records: list[list],
    patient: str = "X X X X",
    recording: str = "Startdate X X X X MNC_L_Median_Nerve",
    startdate: str = "01.01.85",
    starttime: str = "00.00.00",
    reserved: str = "EDF+D",
    duration: str = "0.05",
    n_records: str | None = None,
    header_bytes: str | None = None,
    family: str = "EDF",
) -> Path:
    """Write an EDF/BDF file from signal dicts and per-record data.

    Each signal dict: ``label``, ``samples`` and optionally ``transducer``, ``dimension``,
    ``pmin``, ``pmax``, ``dmin``, ``dmax``, ``prefilter``. Each record is a list with one entry
    per signal: an integer array (ordinary signal) or bytes (annotation signal, padded with
    zeros to ``2 * samples`` / ``3 * samples`` bytes).
    """
    width = 3 if family == "BDF" else 2
    ns = len(signals)

    def col(key, w, default=""):
        return b"".join(a(str(s.get(key, default)), w) for s in signals)

    head = b"".join(
        [
            a("0", 8) if family == "EDF" else b"\xffBIOSEMI",
            a(patient, 80),
            a(recording, 80),
            a(startdate, 8),
            a(starttime, 8),
            a(header_bytes or str(256 * (ns + 1)), 8),
            a(reserved, 44),
            a(n_records if n_records is not None else str(len(records)), 8),
            a(duration, 8),
            a(str(ns), 4),
            col("label", 16),
            col("transducer", 80),
            col("dimension", 8),
            col("pmin", 8, "-1"),
            col("pmax", 8, "1"),
            col("dmin", 8, "-32768" if family == "EDF" else "-8388608"),
            col("dmax", 8, "32767" if family == "EDF" else "8388607"),
            col("prefilter", 80),
            col("samples", 8),
            col("reserved", 32),
        ]
    )
    body = b""
    for rec in records:
        for sig, part in zip(signals, rec, strict=True):
            n = int(sig["samples"]) * width
            if isinstance(part, bytes):
                assert len(part) <= n, (len(part), n)
                body += part.ljust(n, b"\x00")
            else:
                arr = np.asarray(part, dtype=np.int64)
                assert arr.size == int(sig["samples"])
                if width == 2:
                    body += arr.astype("<i2").tobytes()
                else:
                    u = (arr & 0xFFFFFF).astype("<u4").tobytes()
                    body += b"".join(u[i : i + 3] for i in range(0, len(u), 4))
    path = Path(path)
    path.write_bytes(head + body)
    return path


ANNOT = {"label": "EDF Annotations", "samples": 300}
