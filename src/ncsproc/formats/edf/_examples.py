"""Small example files for the conformance and fuzz suites (``Reader.example``).

* :func:`spec_motor_nerve_conduction` is the Motor Nerve Conduction file of the EDF+
  specification, section 3.7, header and TALs as printed there (right median nerve, APB, wrist
  and elbow stimulation); the specification does not print samples, so two CMAPs matching its
  ``Response`` annotations (7.2 mV at 3.8 ms and 7.8 ms) are synthesised.
* :func:`continuous_fwave_series` is an EDF+C recording of an F-wave series with one
  ``Stimulus`` annotation per stimulus (the way in for continuous exports).

Both carry a made-up patient field (code, birth date, name) so that the suites can check that
none of it reaches the trace set (:data:`IDENTIFYING`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# The specification's own example patient (made up by its authors) and our continuous example's.
SPEC_PATIENT = "MCH-0234567 F 02-MAY-1951 Haagse_Harry"
SPEC_RECORDING = "Startdate 02-MAR-2002 EMG561 BK/JOP Sony. MNC R Median Nerve."
CONT_PATIENT = "NCS-0004711 M 10-JAN-1960 Jan_Modaal"
CONT_RECORDING = "Startdate 15-MAR-2024 NCS0815 TEC EMGsys FW_L_Ulnar_Nerve"
IDENTIFYING = (
    "MCH-0234567",
    "02-MAY-1951",
    "1951-05-02",
    "Haagse_Harry",
    "Haagse Harry",
    "NCS-0004711",
    "10-JAN-1960",
    "1960-01-10",
    "Jan_Modaal",
    "Jan Modaal",
)

SPEC_TALS = (
    b"+0\x14\x14Stimulus right wrist 0.2ms x 8.2mA at 6.5cm from recording site"
    b"\x14Response 7.2mV at 3.8ms\x14\x00",
    b"+10\x14\x14Stimulus right elbow 0.2ms x 15.3mA at 28.5cm from recording site"
    b"\x14Response 7.2mV at 7.8ms (55.0m/s)\x14\x00",
)


def cmap_waveform(n: int, fs: float, onset: float, amplitude: float) -> np.ndarray:
    """A smooth biphasic CMAP (negative first), in the units of ``amplitude``.

    Negative phase of ``amplitude`` starting at ``onset`` (s), about 6 ms long, followed by
    a smaller positive phase; zero before the onset.
    """
    t = np.arange(n) / fs - onset
    x = np.zeros(n)
    on = t >= 0
    tau = t[on] / 0.0025
    x[on] = -(tau**2) * np.exp(1 - tau**2) * (1 - 0.55 * tau)
    return x * (amplitude / -x.min())


def spec_records() -> np.ndarray:
    """The two records' digital samples (2 x 1000 int16) of the specification's example."""
    fs = 20000.0
    gain = 200.0 / 4095.0  # physical -100..100 mV over digital -2048..2047
    rows = []
    for onset in (0.0038, 0.0078):
        mv = cmap_waveform(1000, fs, onset, 7.2)
        rows.append(np.clip(np.rint((mv + 100.0) / gain - 2048), -2048, 2047).astype("<i2"))
    return np.stack(rows)


def spec_motor_nerve_conduction(path) -> Path:
    """Write the EDF+ specification's Motor Nerve Conduction file (section 3.7)."""
    fields = [
        ("0", 8),
        (SPEC_PATIENT, 80),
        (SPEC_RECORDING, 80),
        ("17.04.01", 8),
        ("11.25.00", 8),
        ("768", 8),
        ("EDF+D", 44),
        ("2", 8),
        ("0.050", 8),
        ("2", 4),
        ("R APB", 16),
        ("EDF Annotations", 16),
        ("AgAgCl electrodes", 80),
        ("", 80),
        ("mV", 8),
        ("", 8),
        ("-100", 8),
        ("-1", 8),
        ("100", 8),
        ("1", 8),
        ("-2048", 8),
        ("-32768", 8),
        ("2047", 8),
        ("32767", 8),
        ("HP:3Hz LP:20kHz", 80),
        ("", 80),
        ("1000", 8),
        ("60", 8),
        ("", 32),
        ("", 32),
    ]
    header = b"".join(text.encode("ascii").ljust(width, b" ") for text, width in fields)
    samples = spec_records()
    body = b"".join(samples[r].tobytes() + SPEC_TALS[r].ljust(120, b"\x00") for r in range(2))
    path = Path(path)
    path.write_bytes(header + body)
    return path


def continuous_fwave_series(path, n_stimuli: int = 4) -> Path:
    """Write an EDF+C F-wave series (left ulnar, ADM, wrist) with one annotation per stimulus."""
    fs, rec_dur, spr = 20000.0, 0.1, 2000
    spacing = 0.2
    n_records = int(round((0.1 + n_stimuli * spacing) / rec_dur))
    total = n_records * spr
    sweep = int(round(0.105 * fs))  # -5 ms .. 100 ms around each stimulus
    continuous = np.zeros(total)
    stim_times = []
    for k in range(n_stimuli):
        stim = 0.1 + k * spacing
        stim_times.append(stim)
        # an M wave (6 mV at 3 ms) and an F wave (0.3 mV at 27-28 ms, varying per stimulus),
        # in V; drawn here rather than by ncsproc.simulate, which itself writes EDF files
        x = cmap_waveform(sweep, fs, 0.005 + 0.003, 6e-3)
        x += cmap_waveform(sweep, fs, 0.005 + 0.027 + 0.0004 * k, 0.3e-3)
        i0 = int(round((stim - 0.005) * fs))
        continuous[i0 : i0 + x.size] += x
    mv = continuous * 1e3
    pmax = 50.0
    digital = (
        np.clip(np.rint(mv / pmax * 32767), -32767, 32767).astype("<i2").reshape(n_records, spr)
    )
    ann_bytes = 200
    tals = []
    for r in range(n_records):
        start = r * rec_dur
        block = f"+{start:.1f}\x14\x14\x00".encode()
        for k, st in enumerate(stim_times):
            if start <= st < start + rec_dur:
                text = f"Stimulus left wrist 0.2ms x {30 + k}mA at 7cm from recording site"
                block += f"+{st:.1f}\x14{text}\x14\x00".encode()
        tals.append(block.ljust(ann_bytes, b"\x00"))
    fields = [
        ("0", 8),
        (CONT_PATIENT, 80),
        (CONT_RECORDING, 80),
        ("15.03.24", 8),
        ("09.30.00", 8),
        ("768", 8),
        ("EDF+C", 44),
        (str(n_records), 8),
        ("0.1", 8),
        ("2", 4),
        ("NC L_ADM", 16),
        ("EDF Annotations", 16),
        ("Ag-AgCl surface electrodes", 80),
        ("", 80),
        ("mV", 8),
        ("", 8),
        ("-50", 8),
        ("-1", 8),
        ("50", 8),
        ("1", 8),
        ("-32767", 8),
        ("-32768", 8),
        ("32767", 8),
        ("32767", 8),
        ("HP:2Hz LP:10kHz", 80),
        ("", 80),
        (str(spr), 8),
        (str(ann_bytes // 2), 8),
        ("", 32),
        ("", 32),
    ]
    header = b"".join(text.encode("ascii").ljust(width, b" ") for text, width in fields)
    body = b"".join(digital[r].tobytes() + tals[r] for r in range(n_records))
    path = Path(path)
    path.write_bytes(header + body)
    return path
