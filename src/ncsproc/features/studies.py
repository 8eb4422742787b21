"""Study features from per-trace measures: sites, motor segments, nerve-level values, F waves.

Input is the per-trace measures Dataset of :func:`ncsproc.measure` (interchange contract
section 2) with the trace-set coordinates kept. Everything is computed in SI units and returned
in the contract's clinical units (ms, uV, m/s, mm, percent), with the unit in the column name.

Rules (documented in ``formats/features.md``):

* A *study* is one ``(exam_id, study)``. Its modality is ``motor`` if it has motor traces,
  else ``sensory``, else ``fwave``.
* A *site* is one ``stim_site`` of a motor or sensory study. Of several traces at one site
  (repeats) the **ok trace with the largest negative-peak amplitude** is used (supramaximal
  practice); ties go to the smallest ``(source_file, record, trace)``. A site without an ok
  trace is ``no_response`` when all its traces are ``no_response``, otherwise it takes the
  first other status (e.g. ``saturated``) and is not measurable.
* Sites are ordered distal to proximal by ``distance``; when a distance is unknown the sites
  are ordered by an anatomical rank list (:data:`SITE_RANK`) and ``site_order`` says so.
* Motor segments join consecutive sites. ``cv = distance difference / onset difference``;
  ``amp_drop_pct = 100 (1 - amp_prox / amp_dist)`` (negative-peak amplitudes),
  ``area_drop_pct`` likewise with negative areas, ``duration_increase_pct =
  100 (dur_prox / dur_dist - 1)`` with ``total_duration`` (the EFNS/PNS CMAP duration).
* ``cv_m_s`` of a motor study is the segment next to the distal site; ``tli = d_distal /
  (cv x dml)``; ``residual_latency = dml - d_distal / cv``. ``max_cb_pct``,
  ``max_area_drop_pct`` and ``max_td_pct`` compare every measured proximal site with the
  *distal* site (the criteria's "proximal relative to distal negative-peak CMAP") and keep the
  largest; the segments table holds the drops between *adjacent* sites.
* F waves: every ``fwave`` trace is one stimulus. Stimuli are the ``ok`` traces (an M wave was
  evoked); an F wave is present when ``f_latency`` is finite. Persistence = 100 n_F / n_stimuli,
  chronodispersion = max - min F latency; ``f_absent`` is True when stimuli were given and no F
  wave appeared, NaN when not evaluable. A motor study takes the F waves of its own ``fwave``
  traces, else of the ``fwave`` study of the same exam, nerve and side (same recording site
  preferred); ``f_study`` names it.
* A study whose traces are all ``no_response`` is ``study_status = no_response``,
  ``evaluable = False`` and ``inexcitable = True``: its values are empty, never zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import SchemaError
from ..measures import MEASURED_VARS
from ..schema import TRACE_COORDS
from ..tables import CONTRACT_COLUMNS
from ..vocab import SITE_RANK, STATUS_NO_RESPONSE, STATUS_OK

__all__ = [
    "StudyFeatures",
    "study_features",
    "trace_frame",
    "site_table",
    "measures_from_truth",
    "SITE_RANK",
    "MEASURE_VARS",
]

MEASURE_VARS = MEASURED_VARS
# the trace set's string coordinates, from the schema's own table
_STR_COORDS = tuple(c.name for c in TRACE_COORDS if c.kind == "str" and c.name != "trace")
_FLOAT_COORDS = ("distance", "highpass", "lowpass", "temperature", "age", "height")


OK = STATUS_OK
NO_RESPONSE = STATUS_NO_RESPONSE


@dataclass
class StudyFeatures:
    """Study features of a measures Dataset.

    Attributes
    ----------
    sites : pandas.DataFrame
        One row per (exam, study, stim_site) of motor and sensory studies: the trace used and its
        values, clinical units.
    segments : pandas.DataFrame
        One row per motor segment (consecutive sites), contract columns first.
    nerves : pandas.DataFrame
        One row per study, contract feature columns first (no normal-limit columns yet).
    """

    sites: pd.DataFrame
    segments: pd.DataFrame
    nerves: pd.DataFrame


# --------------------------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------------------------
def trace_frame(measures: xr.Dataset) -> pd.DataFrame:
    """Per-trace measures and metadata as a DataFrame (SI units), one row per trace.

    Missing optional coordinates become empty strings or NaN; ``status`` is required.
    """
    if not isinstance(measures, xr.Dataset):
        raise SchemaError(f"expected the measures xarray.Dataset, got {type(measures).__name__}")
    if "trace" not in measures.dims:
        raise SchemaError("measures Dataset has no 'trace' dimension", schema="ncsproc measures")
    n = measures.sizes["trace"]
    problems = []
    for name in ("exam_id", "study", "nerve", "side", "modality", "stim_site", "status"):
        if name not in measures.variables:
            problems.append(f"'{name}' is missing")
    if problems:
        raise SchemaError(problems, schema="ncsproc measures (contract section 2)")
    cols: dict[str, np.ndarray] = {}
    cols["trace"] = (
        np.asarray(measures["trace"].values).astype(str)
        if "trace" in measures.variables
        else np.array([str(i) for i in range(n)])
    )
    for name in _STR_COORDS:
        if name in measures.variables:
            cols[name] = np.asarray(measures[name].values).astype(str)
        else:
            cols[name] = np.full(n, "", dtype=object)
    cols["record"] = (
        np.asarray(measures["record"].values, dtype=np.int64)
        if "record" in measures.variables
        else np.arange(n, dtype=np.int64)
    )
    for name in (*_FLOAT_COORDS, *MEASURE_VARS):
        if name in measures.variables:
            cols[name] = np.asarray(measures[name].values, dtype=np.float64)
        else:
            cols[name] = np.full(n, np.nan)
    cols["status"] = np.asarray(measures["status"].values).astype(str)
    df = pd.DataFrame(cols)
    for name in ("stim_site", "modality", "nerve"):
        df[name] = df[name].str.strip().str.lower()
    df["side"] = df["side"].str.strip().str.upper()
    return df


def measures_from_truth(traces: xr.Dataset, truth: xr.Dataset) -> xr.Dataset:
    """A measures-like Dataset from the simulator's per-trace truth and the trace metadata.

    The truth variables keep their names; ``status`` is ``ok`` where ``has_response`` is True and
    ``no_response`` elsewhere; ``snr`` is +inf (noiseless). The result can be fed to every
    function of :mod:`ncsproc.features` to get the features of the exact (noiseless) responses.
    """
    ids = np.asarray(traces["trace"].values).astype(str)
    t = truth.sel(trace=ids) if "trace" in truth.coords else truth
    data = {}
    for name in MEASURE_VARS:
        if name == "snr":
            data[name] = ("trace", np.full(len(ids), np.inf))
        elif name in t:
            data[name] = ("trace", np.asarray(t[name].values, dtype=np.float64))
        else:
            data[name] = ("trace", np.full(len(ids), np.nan))
    has = np.asarray(t["has_response"].values, dtype=bool)
    data["status"] = ("trace", np.where(has, OK, NO_RESPONSE).astype(object))
    coords = {name: traces[name] for name in traces.coords if traces[name].dims == ("trace",)}
    return xr.Dataset(data, coords=coords, attrs={"source": "ncsproc.simulate truth"})


# --------------------------------------------------------------------------------------------
# sites
# --------------------------------------------------------------------------------------------
def _trace_key(r: dict) -> tuple:
    return (r["source_file"], r["record"], r["trace"])


def _pick_site(group: list[dict]) -> dict:
    """The trace used for one stimulation site (see module docstring)."""
    g = sorted(group, key=_trace_key)
    ok = [r for r in g if r["status"] == OK]
    if ok:
        # largest finite amplitude; ties keep the first in (source_file, record, trace) order
        chosen = min(ok, key=lambda r: -r["amplitude"] if np.isfinite(r["amplitude"]) else np.inf)
        status = OK
    else:
        others = [r["status"] for r in g if r["status"] != NO_RESPONSE]
        status = others[0] if others else NO_RESPONSE
        chosen = g[0]
    row = dict(chosen)
    row["site_status"] = status
    row["n_repeats"] = len(g)
    if status != OK:
        for name in MEASURE_VARS:
            row[name] = np.nan
    return row


def _group(records: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in records:
        out.setdefault(tuple(r[k] for k in keys), []).append(r)
    return dict(sorted(out.items()))


def _order_sites(sites: list[dict]) -> tuple[list[dict], str]:
    d = np.array([s["distance"] for s in sites], dtype=float)

    def rank(s):
        return SITE_RANK.get(s["stim_site"], 99)

    if np.all(np.isfinite(d)):
        return sorted(sites, key=lambda s: (s["distance"], rank(s), s["stim_site"])), "distance"
    if len(sites) == 1:
        return sites, "single"
    ordered = sorted(
        sites,
        key=lambda s: (
            rank(s),
            s["distance"] if np.isfinite(s["distance"]) else np.inf,
            s["stim_site"],
        ),
    )
    return ordered, "anatomical" if all(rank(s) < 99 for s in sites) else "unknown"


def _site_rows(records: list[dict]) -> list[dict]:
    rows = []
    sub = [r for r in records if r["modality"] in ("motor", "sensory")]
    for _key, g in _group(sub, "exam_id", "study", "modality").items():
        picked = [_pick_site(sg) for sg in _group(g, "stim_site").values()]
        ordered, how = _order_sites(picked)
        for i, site in enumerate(ordered):
            site["site_index"] = i
            site["site_order"] = how
            rows.append(site)
    return rows


def site_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (exam, study, stim_site) of the motor and sensory traces (SI units).

    Columns: the trace columns of the chosen trace plus ``site_status``, ``n_repeats``,
    ``site_index`` (0 = distal) and ``site_order`` (``distance``, ``anatomical``, ...).
    """
    cols = [*frame.columns, "site_status", "n_repeats", "site_index", "site_order"]
    return pd.DataFrame(_site_rows(frame.to_dict("records")), columns=cols)


# --------------------------------------------------------------------------------------------
# motor, sensory, F
# --------------------------------------------------------------------------------------------
def _pct_drop(prox: float, dist: float) -> float:
    if not (np.isfinite(prox) and np.isfinite(dist)) or dist <= 0:
        return np.nan
    return 100.0 * (1.0 - prox / dist)


def _pct_increase(prox: float, dist: float) -> float:
    if not (np.isfinite(prox) and np.isfinite(dist)) or dist <= 0:
        return np.nan
    return 100.0 * (prox / dist - 1.0)


def _segments(sites: list[dict]) -> list[dict]:
    out = []
    for i in range(len(sites) - 1):
        a, b = sites[i], sites[i + 1]
        seg_d = b["distance"] - a["distance"]
        dt = b["onset_latency"] - a["onset_latency"]
        ok = a["site_status"] == OK and b["site_status"] == OK
        if not ok:
            bad = a if a["site_status"] != OK else b
            where = "distal" if bad is a else "proximal"
            status = f"{where}_{bad['site_status']}"
        elif not np.isfinite(seg_d):
            status = "distance_unknown"
        elif seg_d <= 0:
            status = "nonpositive_distance"
        elif not (np.isfinite(dt) and dt > 0):
            status = "nonpositive_latency_difference"
        else:
            status = OK
        cv = seg_d / dt if status == OK else np.nan
        out.append(
            dict(
                segment_index=i,
                distal_site=a["stim_site"],
                proximal_site=b["stim_site"],
                distance=seg_d,
                cv=cv,
                amp_drop_pct=_pct_drop(b["amplitude"], a["amplitude"]),
                area_drop_pct=_pct_drop(b["negative_area"], a["negative_area"]),
                duration_increase_pct=_pct_increase(b["total_duration"], a["total_duration"]),
                distal_trace=a["trace"],
                proximal_trace=b["trace"],
                segment_status=status,
            )
        )
    return out


def _nanmax(values) -> float:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    return float(v.max()) if v.size else np.nan


def _nanmin(values) -> float:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    return float(v.min()) if v.size else np.nan


def _study_status(sites: list[dict]) -> tuple[str, bool, bool]:
    statuses = [s["site_status"] for s in sites]
    if not sites:
        return "no_traces", False, False
    if all(s == NO_RESPONSE for s in statuses):
        return NO_RESPONSE, False, True
    distal = statuses[0]
    if distal == OK:
        return OK, True, False
    return f"distal_{distal}", False, False


def _f_stats(g: list[dict] | None) -> dict:
    empty = dict(
        f_min=np.nan,
        f_mean=np.nan,
        f_max=np.nan,
        f_persistence_pct=np.nan,
        f_chronodispersion=np.nan,
        f_n_stimuli=0,
        f_n_waves=0,
        f_n_unmeasured=0,
        f_absent=np.nan,
        f_status="no_fwave_traces",
    )
    if not g:
        return empty
    ok = [r for r in g if r["status"] == OK]
    n_stim = len(ok)
    lat = np.sort(np.array([r["f_latency"] for r in ok], dtype=float))
    lat = lat[np.isfinite(lat)]
    out = dict(empty)
    out["f_n_stimuli"] = n_stim
    out["f_n_waves"] = int(lat.size)
    out["f_n_unmeasured"] = len(g) - n_stim
    if n_stim == 0:
        statuses = sorted({r["status"] for r in g})
        out["f_status"] = NO_RESPONSE if statuses == [NO_RESPONSE] else "not_measurable"
        return out
    out["f_persistence_pct"] = 100.0 * lat.size / n_stim
    out["f_absent"] = bool(lat.size == 0)
    out["f_status"] = OK if lat.size else "absent"
    if lat.size:
        out["f_min"] = float(lat[0])
        out["f_max"] = float(lat[-1])
        out["f_mean"] = float(np.mean(lat))
        out["f_chronodispersion"] = float(lat[-1] - lat[0])
    return out


def _first(values, default=""):
    vals = sorted({v for v in values if isinstance(v, str) and v})
    return vals[0] if vals else default


def _first_finite(values) -> float:
    for v in values:
        if np.isfinite(v):
            return float(v)
    return np.nan


# contract column order of nerves.csv before the normal-limit comparisons
NERVE_COLUMNS = CONTRACT_COLUMNS["nerves"]
NERVE_EXTRA_COLUMNS = (
    "record_site",
    "study_status",
    "evaluable",
    "inexcitable",
    "n_traces",
    "n_sites",
    "sites",
    "site_order",
    "distal_site",
    "distal_distance_mm",
    "distal_area_uvms",
    "distal_neg_duration_ms",
    "distal_p2p_uv",
    "max_area_drop_pct",
    "n_proximal_ok",
    "snap_p2p_uv",
    "f_absent",
    "f_n_stimuli",
    "f_n_waves",
    "f_status",
    "f_study",
    "highpass_hz",
    "lowpass_hz",
    "temperature_c",
    "age_years",
    "height_cm",
)
SEGMENT_COLUMNS = CONTRACT_COLUMNS["segments"]
SEGMENT_EXTRA_COLUMNS = (
    "subject_id",
    "segment_index",
    "segment_status",
    "distal_trace",
    "proximal_trace",
)


def _nan_row() -> dict:
    row = {c: np.nan for c in NERVE_COLUMNS}
    row.update({c: np.nan for c in NERVE_EXTRA_COLUMNS})
    return row


def study_features(measures: xr.Dataset | pd.DataFrame) -> StudyFeatures:
    """Compute sites, segments and per-study (nerve) features of a measures Dataset.

    Parameters
    ----------
    measures : xarray.Dataset
        Output of :func:`ncsproc.measure` (or :func:`measures_from_truth`), coordinates kept.
        A DataFrame from :func:`trace_frame` is accepted too.

    Returns
    -------
    StudyFeatures
        ``sites``, ``segments`` and ``nerves`` DataFrames in clinical units, sorted by exam,
        study (and segment index); row order does not depend on the order of the traces.
    """
    frame = measures if isinstance(measures, pd.DataFrame) else trace_frame(measures)
    records = frame.to_dict("records")
    site_rows = _site_rows(records)
    site_groups = _group(site_rows, "exam_id", "study", "modality")
    fw_by_study = _group([r for r in records if r["modality"] == "fwave"], "exam_id", "study")
    subjects = {
        e: _first(r["subject_id"] for r in g) for (e,), g in _group(records, "exam_id").items()
    }

    nerve_rows: list[dict] = []
    seg_rows: list[dict] = []
    for (exam, study), g in _group(records, "exam_id", "study").items():
        mods = {r["modality"] for r in g}
        modality = "motor" if "motor" in mods else ("sensory" if "sensory" in mods else "fwave")
        row = _nan_row()
        main = [r for r in g if r["modality"] == modality]
        row.update(
            exam_id=exam,
            subject_id=subjects[exam],
            study=study,
            nerve=_first(r["nerve"] for r in main),
            side=_first(r["side"] for r in main),
            modality=modality,
            record_site=_first(r["record_site"] for r in main),
            n_traces=len(g),
        )
        if modality in ("motor", "sensory"):
            sl = sorted(site_groups[(exam, study, modality)], key=lambda r: r["site_index"])
            status, evaluable, inexcitable = _study_status(sl)
            d0 = sl[0]
            row.update(
                study_status=status,
                evaluable=evaluable,
                inexcitable=inexcitable,
                n_sites=len(sl),
                sites=";".join(s["stim_site"] for s in sl),
                site_order=sl[0]["site_order"],
                distal_site=d0["stim_site"],
                distal_distance_mm=d0["distance"] * 1e3,
                highpass_hz=d0["highpass"],
                lowpass_hz=d0["lowpass"],
                temperature_c=_nanmin([r["temperature"] for r in main]),
                age_years=_first_finite([d0["age"], *(r["age"] for r in main)]),
                height_cm=_first_finite([d0["height"], *(r["height"] for r in main)]),
            )
        if modality == "motor":
            segs = _segments(sl)
            for s in segs:
                seg_rows.append(
                    dict(
                        exam_id=exam,
                        study=study,
                        nerve=row["nerve"],
                        side=row["side"],
                        distal_site=s["distal_site"],
                        proximal_site=s["proximal_site"],
                        distance_mm=s["distance"] * 1e3,
                        cv_m_s=s["cv"],
                        amp_drop_pct=s["amp_drop_pct"],
                        area_drop_pct=s["area_drop_pct"],
                        duration_increase_pct=s["duration_increase_pct"],
                        subject_id=row["subject_id"],
                        segment_index=s["segment_index"],
                        segment_status=s["segment_status"],
                        distal_trace=s["distal_trace"],
                        proximal_trace=s["proximal_trace"],
                    )
                )
            if d0["site_status"] == OK:
                dml = d0["onset_latency"]
                dist = d0["distance"]
                cv = segs[0]["cv"] if segs else np.nan
                tli = dist / (cv * dml) if (np.isfinite(cv) and cv > 0 and dml > 0) else np.nan
                rl = dml - dist / cv if (np.isfinite(cv) and cv > 0) else np.nan
                prox = [s for s in sl[1:] if s["site_status"] == OK]
                row.update(
                    dml_ms=dml * 1e3,
                    distal_amp_uv=d0["amplitude"] * 1e6,
                    distal_duration_ms=d0["total_duration"] * 1e3,
                    distal_area_uvms=d0["negative_area"] * 1e9,
                    distal_neg_duration_ms=d0["negative_duration"] * 1e3,
                    distal_p2p_uv=d0["peak_to_peak"] * 1e6,
                    cv_m_s=cv,
                    tli=tli,
                    residual_latency_ms=rl * 1e3,
                    min_cv_m_s=_nanmin([s["cv"] for s in segs]),
                    max_cb_pct=_nanmax([_pct_drop(p["amplitude"], d0["amplitude"]) for p in prox]),
                    max_td_pct=_nanmax(
                        [_pct_increase(p["total_duration"], d0["total_duration"]) for p in prox]
                    ),
                    max_area_drop_pct=_nanmax(
                        [_pct_drop(p["negative_area"], d0["negative_area"]) for p in prox]
                    ),
                    n_proximal_ok=len(prox),
                )
            # F waves: own traces, else the F-wave study of the same nerve and side
            own = [r for r in g if r["modality"] == "fwave"]
            f_src, f_study = (
                (own, study)
                if own
                else _linked_fwave(fw_by_study, exam, row["nerve"], row["side"], row["record_site"])
            )
            _put_f(row, _f_stats(f_src), f_study)
        elif modality == "sensory":
            if d0["site_status"] == OK:
                onset = d0["onset_latency"]
                row.update(
                    snap_onset_ms=onset * 1e3,
                    snap_peak_ms=d0["peak_latency"] * 1e3,
                    snap_amp_uv=d0["amplitude"] * 1e6,
                    snap_p2p_uv=d0["peak_to_peak"] * 1e6,
                    scv_m_s=d0["distance"] / onset if onset > 0 else np.nan,
                )
        else:  # F-wave study
            stats = _f_stats(main)
            f_status = stats["f_status"]
            first = min(main, key=_trace_key)
            stims = sorted({r["stim_site"] for r in main})
            row.update(
                study_status=OK if f_status in (OK, "absent") else f_status,
                evaluable=f_status in (OK, "absent"),
                inexcitable=f_status == NO_RESPONSE,
                n_sites=len(stims),
                sites=";".join(stims),
                distal_site=_first(stims),
                highpass_hz=first["highpass"],
                lowpass_hz=first["lowpass"],
                temperature_c=_nanmin([r["temperature"] for r in main]),
                age_years=_first_finite([r["age"] for r in main]),
                height_cm=_first_finite([r["height"] for r in main]),
            )
            _put_f(row, stats, study)
        nerve_rows.append(row)

    nerves = pd.DataFrame(nerve_rows, columns=[*NERVE_COLUMNS, *NERVE_EXTRA_COLUMNS])
    nerves = nerves.sort_values(["exam_id", "study"], kind="stable").reset_index(drop=True)
    for c in ("evaluable", "inexcitable"):
        nerves[c] = nerves[c].astype(object).where(nerves[c].notna(), False).astype(bool)
    nerves["f_absent"] = nerves["f_absent"].astype(object)
    segments = pd.DataFrame(seg_rows, columns=[*SEGMENT_COLUMNS, *SEGMENT_EXTRA_COLUMNS])
    segments = segments.sort_values(["exam_id", "study", "segment_index"], kind="stable")
    segments = segments.reset_index(drop=True)
    cols = [*frame.columns, "site_status", "n_repeats", "site_index", "site_order"]
    site_out = _sites_clinical(pd.DataFrame(site_rows, columns=cols))
    return StudyFeatures(sites=site_out, segments=segments, nerves=nerves)


def _put_f(row: dict, stats: dict, f_study: str) -> None:
    row.update(
        f_min_ms=stats["f_min"] * 1e3,
        f_mean_ms=stats["f_mean"] * 1e3,
        f_max_ms=stats["f_max"] * 1e3,
        f_persistence_pct=stats["f_persistence_pct"],
        f_chronodispersion_ms=stats["f_chronodispersion"] * 1e3,
        f_absent=stats["f_absent"],
        f_n_stimuli=stats["f_n_stimuli"],
        f_n_waves=stats["f_n_waves"],
        f_status=stats["f_status"],
        f_study=f_study if stats["f_status"] != "no_fwave_traces" else "",
    )


def _linked_fwave(fw_by_study: dict, exam: str, nerve: str, side: str, record_site: str):
    cands = []
    for (e, s), g in fw_by_study.items():
        if e != exam:
            continue
        if _first(r["nerve"] for r in g) == nerve and _first(r["side"] for r in g) == side:
            same_site = _first(r["record_site"] for r in g).lower() == (record_site or "").lower()
            cands.append((0 if same_site else 1, s, g))
    if not cands:
        return None, ""
    cands.sort(key=lambda c: (c[0], c[1]))
    return cands[0][2], cands[0][1]


_SITE_UNITS = {
    "distance": ("distance_mm", 1e3),
    "onset_latency": ("onset_ms", 1e3),
    "peak_latency": ("peak_ms", 1e3),
    "amplitude": ("amplitude_uv", 1e6),
    "peak_to_peak": ("p2p_uv", 1e6),
    "negative_duration": ("neg_duration_ms", 1e3),
    "total_duration": ("total_duration_ms", 1e3),
    "negative_area": ("neg_area_uvms", 1e9),
    "snr": ("snr_db", 1.0),
}


def _sites_clinical(sites: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "exam_id": sites["exam_id"],
            "study": sites["study"],
            "nerve": sites["nerve"],
            "side": sites["side"],
            "modality": sites["modality"],
            "stim_site": sites["stim_site"],
            "site_index": sites["site_index"],
            "site_status": sites["site_status"],
            "n_repeats": sites["n_repeats"],
            "trace": sites["trace"],
        }
    )
    for var, (col, f) in _SITE_UNITS.items():
        out[col] = sites[var].astype(float) * f
    out["site_order"] = sites["site_order"]
    out = out.sort_values(["exam_id", "study", "site_index"], kind="stable")
    return out.reset_index(drop=True)
