"""Builders of per-trace measures Datasets (the input of ncsproc.features) from clinical numbers."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ncsproc.measures import MEASURED_VARS

RECORD_SITES = {"median": "APB", "ulnar": "ADM", "peroneal": "EDB", "tibial": "AH"}
PROXIMAL_SITES = {
    "median": ("wrist", "elbow", "axilla"),
    "ulnar": ("wrist", "below elbow", "above elbow"),
    "peroneal": ("ankle", "below fibular head", "popliteal fossa"),
    "tibial": ("ankle", "popliteal fossa", "thigh"),
}
_VARS = MEASURED_VARS


def build_measures(rows: list[dict]) -> xr.Dataset:
    """A measures Dataset from per-trace dicts (SI units; missing values NaN/empty)."""
    coords = {}
    str_coords = (
        "exam_id",
        "subject_id",
        "study",
        "nerve",
        "side",
        "modality",
        "stim_site",
        "record_site",
        "source_file",
    )
    for name in str_coords:
        coords[name] = ("trace", np.array([str(r.get(name, "")) for r in rows], dtype=object))
    for name in ("distance", "highpass", "lowpass", "temperature", "age", "height"):
        coords[name] = ("trace", np.array([float(r.get(name, np.nan)) for r in rows]))
    coords["record"] = ("trace", np.array([int(r.get("record", i)) for i, r in enumerate(rows)]))
    ids = [
        r.get("trace", f"{r['exam_id']}/{r['study']}/{r.get('stim_site', '')}/{i}")
        for i, r in enumerate(rows)
    ]
    coords["trace"] = ("trace", np.array(ids, dtype=object))
    data = {v: ("trace", np.array([float(r.get(v, np.nan)) for r in rows])) for v in _VARS}
    data["status"] = ("trace", np.array([r.get("status", "ok") for r in rows], dtype=object))
    return xr.Dataset(data, coords=coords)


def motor_rows(
    exam: str,
    nerve: str,
    *,
    side: str = "L",
    dml_ms: float,
    cv: float | list[float],
    amp_mv: float | list[float],
    distal_mm: float = 70.0,
    segment_mm: float | list[float] = 230.0,
    duration_ms: float | list[float] = 5.0,
    area_mvms: float | list[float] | None = None,
    n_sites: int = 2,
    status: str | list[str] = "ok",
    highpass: float = np.nan,
    f_ms: list[float] | None = None,
    f_stimuli: int = 10,
    subject: str | None = None,
    record_site: str | None = None,
    age: float = 50.0,
    height: float = 170.0,
) -> list[dict]:
    """Traces of one motor study (one trace per site) and optionally its F-wave series.

    ``cv`` and ``segment_mm`` per segment; ``amp_mv``, ``duration_ms``, ``area_mvms`` and
    ``status`` per site (a scalar applies to all). ``f_ms``: F latencies of the stimuli that
    produced one (the other ``f_stimuli - len(f_ms)`` stimuli have none).
    """
    k = n_sites

    def per(x, m):
        return list(x) if isinstance(x, (list, tuple)) else [x] * m

    cvs, segs = per(cv, k - 1), per(segment_mm, k - 1)
    amps, durs, stats = per(amp_mv, k), per(duration_ms, k), per(status, k)
    areas = (
        per(area_mvms, k)
        if area_mvms is not None
        else [a * d * 0.5 for a, d in zip(amps, durs, strict=True)]
    )
    study = f"{side}_{nerve}_motor"
    base = dict(
        exam_id=exam,
        subject_id=subject or f"S-{exam}",
        study=study,
        nerve=nerve,
        side=side,
        modality="motor",
        record_site=record_site or RECORD_SITES.get(nerve, ""),
        highpass=highpass,
        age=age,
        height=height,
        source_file=f"{exam}/{study}.edf",
    )
    rows = []
    dist = distal_mm / 1e3
    onset = dml_ms / 1e3
    for i in range(k):
        if i > 0:
            seg = segs[i - 1] / 1e3
            dist += seg
            onset += seg / cvs[i - 1]
        r = dict(base, stim_site=PROXIMAL_SITES[nerve][i], distance=dist, record=i, status=stats[i])
        if stats[i] == "ok":
            r.update(
                onset_latency=onset,
                peak_latency=onset + 3e-3,
                amplitude=amps[i] * 1e-3,
                peak_to_peak=amps[i] * 1.6e-3,
                negative_duration=durs[i] * 0.6e-3,
                total_duration=durs[i] * 1e-3,
                negative_area=areas[i] * 1e-6,
                snr=40.0,
            )
        rows.append(r)
    if f_ms is not None:
        fst = f"{side}_{nerve}_fwave"
        for j in range(f_stimuli):
            lat = f_ms[j] / 1e3 if j < len(f_ms) else np.nan
            rows.append(
                dict(
                    base,
                    study=fst,
                    modality="fwave",
                    stim_site=PROXIMAL_SITES[nerve][0],
                    distance=distal_mm / 1e3,
                    record=j,
                    source_file=f"{exam}/{fst}.edf",
                    status="ok",
                    onset_latency=dml_ms / 1e3,
                    amplitude=amps[0] * 1e-3,
                    f_latency=lat,
                )
            )
    return rows


def sensory_rows(
    exam: str,
    nerve: str,
    *,
    side="L",
    onset_ms=2.6,
    amp_uv=30.0,
    distance_mm=130.0,
    status="ok",
    age=50.0,
    height=170.0,
) -> list[dict]:
    study = f"{side}_{nerve}_sensory"
    r = dict(
        exam_id=exam,
        subject_id=f"S-{exam}",
        study=study,
        nerve=nerve,
        side=side,
        modality="sensory",
        stim_site="wrist" if nerve in ("median", "ulnar", "radial") else "calf",
        record_site="digit",
        distance=distance_mm / 1e3,
        age=age,
        height=height,
        status=status,
        source_file=f"{exam}/{study}.edf",
        record=0,
    )
    if status == "ok":
        r.update(
            onset_latency=onset_ms / 1e3,
            peak_latency=(onset_ms + 0.6) / 1e3,
            amplitude=amp_uv * 1e-6,
            peak_to_peak=amp_uv * 1.5e-6,
            negative_duration=1e-3,
            total_duration=1e-3,
            negative_area=amp_uv * 0.5e-9,
        )
    return [r]
