"""``ncsproc plot``: one file's traces with their markers, to PNG and SVG."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from .conftest import SAMPLES

FWAVE = SAMPLES / "simulated" / "EX0002" / "L_ulnar_fwave.edf"
MOTOR = SAMPLES / "simulated" / "EX0002" / "L_ulnar_motor.edf"
SVG_NS = "{http://www.w3.org/2000/svg}"


def _expected(path):
    """Marker times (ms) of ncsproc.measure, computed here independently of the plot."""
    import ncsproc

    m = ncsproc.measure(ncsproc.read(path))
    out = {}
    for i, tid in enumerate(m["trace"].values.astype(str)):
        if m["status"].values[i] != "ok":
            continue
        onset = float(m["onset_latency"][i]) * 1e3
        times = {
            "onset": onset,
            "peak": float(m["peak_latency"][i]) * 1e3,
            "end": onset + float(m["total_duration"][i]) * 1e3,
            "f_onset": float(m["f_latency"][i]) * 1e3,
        }
        out.update({(tid, k): v for k, v in times.items() if np.isfinite(v)})
    return out


def test_plot_png(tmp_path):
    from ncsproc.report import plot_file

    out = tmp_path / "fwave.png"
    result = plot_file(FWAVE, out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 500 and height > 300
    expected = _expected(FWAVE)
    drawn = {(r.trace, r.marker): r.time_ms for r in result.markers.itertuples()}
    assert set(drawn) == set(expected)
    for k, v in expected.items():
        assert drawn[k] == pytest.approx(v, abs=1e-3), k  # tables round to 1 us
    assert any(m == "f_onset" for _, m in drawn)
    assert list(result.gains) == ["L_ulnar_fwave"]


def test_plot_svg_marker_ids_and_no_identifiers(tmp_path):
    from ncsproc.report import plot_file

    out = tmp_path / "motor.svg"
    result = plot_file(MOTOR, out)
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG_NS}svg"
    gids = {el.get("id") for el in root.iter() if (el.get("id") or "").startswith("marker:")}
    assert gids == set(result.markers["gid"]) and len(gids) == 9
    assert (result.markers["time_ms"] == result.markers["measured_ms"]).all()
    expected = _expected(MOTOR)
    for r in result.markers.itertuples():
        assert r.time_ms == pytest.approx(expected[(r.trace, r.marker)], abs=1e-9)
    text = " ".join("".join(el.itertext()) for el in root.iter(f"{SVG_NS}text"))
    assert "L_ulnar_motor" in text and "mV/div" in text
    for identifying in ("SIM0002", "EX0002", "X X X X"):  # subject, exam, EDF patient field
        assert identifying not in text


def test_plot_without_measures_and_cli(tmp_path, capsys, monkeypatch):
    from ncsproc.cli import main
    from ncsproc.report import plot_file

    r = plot_file(MOTOR, tmp_path / "raw.svg", measure=False)
    assert r.markers.empty and r.measures is None
    monkeypatch.chdir(tmp_path)
    assert main(["plot", str(MOTOR)]) == 0
    assert (tmp_path / "L_ulnar_motor.png").read_bytes()[:4] == b"\x89PNG"
    assert "1 study, 3 traces, 9 markers" in capsys.readouterr().out
    assert main(["plot", str(MOTOR), "--out", "x.gif"]) == 2
    assert "unknown image format" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "missing.edf")]) == 2
