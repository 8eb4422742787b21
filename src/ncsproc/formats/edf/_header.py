"""EDF / EDF+ / BDF / BDF+ header: parsed field by field, checked against the file size.

Every number in the header is untrusted. Nothing is allocated from it before the declared
sizes (header bytes, samples per record, number of records) have been checked against the
size of the file, so a damaged header gives a :class:`~ncsproc.errors.FormatError` naming the
byte offset of the field, never a huge allocation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from ...errors import FormatError
from .._sidecar import to_decimal

EDF_MAGIC = b"0       "
BDF_MAGIC = b"\xffBIOSEMI"
ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")

_MAIN_FIELDS = (
    ("version", 8),
    ("patient", 80),
    ("recording", 80),
    ("startdate", 8),
    ("starttime", 8),
    ("header_bytes", 8),
    ("reserved", 44),
    ("n_records", 8),
    ("duration", 8),
    ("n_signals", 4),
)
_SIGNAL_FIELDS = (
    ("label", 16),
    ("transducer", 80),
    ("dimension", 8),
    ("physical_min", 8),
    ("physical_max", 8),
    ("digital_min", 8),
    ("digital_max", 8),
    ("prefiltering", 80),
    ("samples", 8),
    ("reserved", 32),
)
MAX_SIGNALS = 4096
MAX_RECORD_DURATION = 1_000_000  # s; longer data records are a damaged field


@dataclass(frozen=True)
class Signal:
    """One signal of the header; ``offset`` is its first byte within a data record."""

    index: int
    label: str
    transducer: str
    dimension: str
    physical_min: Decimal
    physical_max: Decimal
    digital_min: int
    digital_max: int
    prefiltering: str
    samples: int
    offset: int
    nbytes: int

    @property
    def is_annotation(self) -> bool:
        return self.label in ANNOTATION_LABELS

    def to_physical(self, digital: np.ndarray) -> np.ndarray:
        """Digital values to physical values in the signal's physical dimension (float64).

        ``physical_min + (d - digital_min) * (physical_max - physical_min) / (digital_max -
        digital_min)``, the EDF definition.
        """
        pmin, pmax = float(self.physical_min), float(self.physical_max)
        gain = (pmax - pmin) / (self.digital_max - self.digital_min)
        return pmin + (np.asarray(digital, dtype=np.float64) - self.digital_min) * gain


@dataclass(frozen=True)
class Header:
    """The parsed header of an EDF-family file."""

    path: Path
    family: str  # "EDF" or "BDF"
    patient: str
    recording: str
    startdate: str
    starttime: str
    header_bytes: int
    reserved: str
    n_records: int
    duration: Decimal
    signals: tuple[Signal, ...]
    sample_bytes: int
    record_bytes: int
    file_size: int

    @property
    def plus(self) -> bool:
        """EDF+ / BDF+ (the reserved field starts with ``EDF+`` or ``BDF+``)."""
        return self.reserved[:4] in ("EDF+", "BDF+")

    @property
    def discontinuous(self) -> bool:
        return self.reserved[:5] in ("EDF+D", "BDF+D")

    @property
    def variant(self) -> str:
        return self.reserved[:5] if self.plus else self.family

    @property
    def annotation_signals(self) -> list[Signal]:
        return [s for s in self.signals if s.is_annotation]

    @property
    def ordinary_signals(self) -> list[Signal]:
        return [s for s in self.signals if not s.is_annotation]


def sniff_family(path: Path) -> str | None:
    """Return "EDF" or "BDF" from the first 8 bytes, or None (never raises)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if head == EDF_MAGIC:
        return "EDF"
    if head == BDF_MAGIC:
        return "BDF"
    return None


def sniff_reserved(path: Path) -> str | None:
    """The reserved field (bytes 192-236) as text, or None when unreadable (never raises)."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return None
    if len(head) < 236:
        return None
    return head[192:236].decode("latin-1").strip()


def _int(text: str, name: str, where: str) -> int:
    try:
        value = to_decimal(text)
    except ValueError:
        raise FormatError(f"{where}: field '{name}' is {text!r}, expected an integer") from None
    if value != value.to_integral_value():
        raise FormatError(f"{where}: field '{name}' is {text!r}, expected an integer")
    return int(value)


def _dec(text: str, name: str, where: str) -> Decimal:
    try:
        return to_decimal(text)
    except ValueError:
        raise FormatError(f"{where}: field '{name}' is {text!r}, expected a number") from None


def read_header(path: str | os.PathLike) -> Header:
    """Parse and check the header of an EDF, EDF+, BDF or BDF+ file.

    Raises
    ------
    FormatError
        Naming the file, the byte offset of the offending field, what it holds and what was
        expected; or, for a size mismatch, the declared and the actual sizes.
    """
    path = Path(path)
    name = path.name
    size = path.stat().st_size
    with open(path, "rb") as f:
        main = f.read(256)
        if len(main) < 256:
            raise FormatError(
                f"{name}: file is {size} bytes; an EDF/BDF header needs at least 256 bytes (truncated?)"
            )
        magic = main[:8]
        if magic == EDF_MAGIC:
            family, sample_bytes, dig_lo, dig_hi = "EDF", 2, -32768, 32767
        elif magic == BDF_MAGIC:
            family, sample_bytes, dig_lo, dig_hi = "BDF", 3, -8388608, 8388607
        else:
            raise FormatError(
                f"{name}: byte 0: expected the EDF version '0       ' or the BDF marker "
                f"'\\xffBIOSEMI', found {magic!r}"
            )
        fields: dict[str, str] = {}
        offsets: dict[str, int] = {}
        pos = 0
        for key, width in _MAIN_FIELDS:
            fields[key] = main[pos : pos + width].decode("latin-1")
            offsets[key] = pos
            pos += width

        def at(key):
            return f"{name}: header byte {offsets[key]}"

        ns = _int(fields["n_signals"], "number of signals", at("n_signals"))
        if ns < 1 or ns > MAX_SIGNALS:
            raise FormatError(
                f"{at('n_signals')}: number of signals is {ns}, expected 1 to {MAX_SIGNALS}"
            )
        expected_header = 256 * (ns + 1)
        header_bytes = _int(fields["header_bytes"], "bytes in header", at("header_bytes"))
        if header_bytes != expected_header:
            raise FormatError(
                f"{at('header_bytes')}: header size is {header_bytes} bytes, expected "
                f"256 x (1 + {ns} signals) = {expected_header}"
            )
        if size < header_bytes:
            raise FormatError(
                f"{name}: file is {size} bytes, shorter than its declared {header_bytes}-byte header (truncated)"
            )
        block = f.read(256 * ns)
    if len(block) < 256 * ns:
        raise FormatError(
            f"{name}: header ends at byte {256 + len(block)}, expected {header_bytes} (truncated)"
        )

    per: dict[str, list[str]] = {}
    sig_offsets: dict[str, int] = {}
    pos = 0
    for key, width in _SIGNAL_FIELDS:
        sig_offsets[key] = 256 + pos
        per[key] = [
            block[pos + k * width : pos + (k + 1) * width].decode("latin-1") for k in range(ns)
        ]
        pos += width * ns
    widths = dict(_SIGNAL_FIELDS)

    signals = []
    rec_offset = 0
    for k in range(ns):

        def sat(key, k=k):
            return f"{name}: header byte {sig_offsets[key] + k * widths[key]} (signal {k + 1})"

        label = per["label"][k].strip()
        samples = _int(per["samples"][k], "samples per record", sat("samples"))
        if samples < 1:
            raise FormatError(
                f"{sat('samples')}: {samples} samples per data record, expected at least 1"
            )
        if samples * sample_bytes > size:
            raise FormatError(
                f"{sat('samples')}: {samples} samples per data record need {samples * sample_bytes} bytes, "
                f"more than the whole file ({size} bytes)"
            )
        dmin = _int(per["digital_min"][k], "digital minimum", sat("digital_min"))
        dmax = _int(per["digital_max"][k], "digital maximum", sat("digital_max"))
        pmin = _dec(per["physical_min"][k], "physical minimum", sat("physical_min"))
        pmax = _dec(per["physical_max"][k], "physical maximum", sat("physical_max"))
        if label not in ANNOTATION_LABELS:
            if not (dig_lo <= dmin < dmax <= dig_hi):
                raise FormatError(
                    f"{sat('digital_min')}: digital range {dmin}..{dmax} of {label!r}, expected "
                    f"{dig_lo} <= minimum < maximum <= {dig_hi} for {family}"
                )
            if pmin == pmax:
                raise FormatError(
                    f"{sat('physical_min')}: physical minimum equals maximum ({pmin}) for {label!r}; "
                    "the gain would be zero"
                )
        signals.append(
            Signal(
                index=k,
                label=label,
                transducer=per["transducer"][k].strip(),
                dimension=per["dimension"][k].strip(),
                physical_min=pmin,
                physical_max=pmax,
                digital_min=dmin,
                digital_max=dmax,
                prefiltering=per["prefiltering"][k].strip(),
                samples=samples,
                offset=rec_offset,
                nbytes=samples * sample_bytes,
            )
        )
        rec_offset += samples * sample_bytes
    record_bytes = rec_offset

    duration = _dec(fields["duration"], "duration of a data record", at("duration"))
    if not 0 < duration <= MAX_RECORD_DURATION:
        raise FormatError(
            f"{at('duration')}: data record duration is {fields['duration'].strip()!r} s, expected a positive "
            f"number of seconds up to {MAX_RECORD_DURATION}"
        )
    n_records = _int(fields["n_records"], "number of data records", at("n_records"))
    data_bytes = size - header_bytes
    if n_records == -1:
        if data_bytes % record_bytes:
            raise FormatError(
                f"{at('n_records')}: number of records is -1 (unknown) and the {data_bytes} data bytes are "
                f"not a whole number of {record_bytes}-byte records (truncated?)"
            )
        n_records = data_bytes // record_bytes
    elif n_records < 1:
        raise FormatError(f"{at('n_records')}: {n_records} data records, expected at least 1")
    expected = header_bytes + n_records * record_bytes
    if expected != size:
        if size < expected:
            complete = data_bytes // record_bytes
            raise FormatError(
                f"{name}: truncated: the header declares {n_records} data records of {record_bytes} bytes "
                f"({expected} bytes in all), the file has {size} bytes; data record {complete} "
                f"(0-based) is incomplete at byte {header_bytes + complete * record_bytes}"
            )
        raise FormatError(
            f"{name}: the header declares {n_records} data records of {record_bytes} bytes "
            f"({expected} bytes in all), but the file has {size} bytes ({size - expected} extra)"
        )
    if n_records == 0:
        raise FormatError(f"{name}: no data records")

    return Header(
        path=path,
        family=family,
        patient=fields["patient"].strip(),
        recording=fields["recording"].strip(),
        startdate=fields["startdate"].strip(),
        starttime=fields["starttime"].strip(),
        header_bytes=header_bytes,
        reserved=fields["reserved"].strip(),
        n_records=n_records,
        duration=duration,
        signals=tuple(signals),
        sample_bytes=sample_bytes,
        record_bytes=record_bytes,
        file_size=size,
    )


def record_bytes_view(header: Header) -> np.ndarray:
    """All data records as a (n_records, record_bytes) uint8 array.

    The size was checked by :func:`read_header` (header + records x record size = file size),
    so the read is bounded by the file itself.
    """
    count = header.n_records * header.record_bytes
    data = np.fromfile(header.path, dtype=np.uint8, count=count, offset=header.header_bytes)
    if data.size != count:
        raise FormatError(
            f"{header.path.name}: expected {count} data bytes after the header, found {data.size} "
            "(the file changed while it was read?)"
        )
    return data.reshape(header.n_records, header.record_bytes)


def digital_samples(header: Header, records: np.ndarray, signal: Signal) -> np.ndarray:
    """The digital samples of ``signal`` in every record: (n_records, samples) int32."""
    raw = np.ascontiguousarray(records[:, signal.offset : signal.offset + signal.nbytes])
    if header.sample_bytes == 2:
        return raw.view("<i2").astype(np.int32)
    b = raw.reshape(raw.shape[0], signal.samples, 3).astype(np.int32)
    value = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
    return np.where(value >= 1 << 23, value - (1 << 24), value)
