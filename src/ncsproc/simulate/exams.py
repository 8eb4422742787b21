"""Simulated exams and cohorts of the four anti-MAG electrodiagnostic patterns.

An exam is one side (L by default) of one subject: motor studies of the median (wrist,
elbow -> APB), ulnar (wrist, below elbow, above elbow -> ADM), peroneal (ankle, fibular head
-> EDB) and tibial (ankle, popliteal fossa -> AH) nerves, antidromic sensory studies of the
median (digit II), ulnar (digit V) and sural (calf -> ankle, 14 cm) nerves, and F-wave series
(10-20 stimuli at the wrist / ankle) of the ulnar and tibial nerves. Every number comes from
``patterns.toml`` (sources and status tags there).

Per motor nerve (see :mod:`ncsproc.simulate.population`): a pool of motor units with a fastest
velocity ``cv_max`` and a shortest terminal delay ``td_min`` obtained from the pattern's
``dml`` (``td_min = dml - d/cv_max``), ``tli`` (``dml = d / (cv_max tli)``) or
``terminal_delay``; conduction block and extra dispersion in the forearm/leg segment
(pattern ``lesions``); the unit amplitudes are scaled so that the distal CMAP has the drawn
amplitude. The F-wave series of a nerve uses the *same* motor units: its M wave is the
distal CMAP of the motor study and its F waves come from 1-4 unblocked units per stimulus,
present with the pattern's persistence. A sensory study is the SNAP of a fibre population
with fastest velocity ``cv_max`` (onset = distance / cv_max); an "absent" SNAP is a
noise-only trace (``has_response`` False).

The truth is returned as :class:`GroundTruth`: per trace (the waveform truth of
:mod:`ncsproc.simulate.truth`), per study, per motor segment and per exam. All values are SI
(s, V, V s, m, m/s); percentages are named ``*_pct``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..schema import concat_trace_sets, make_trace_set
from .noise import (
    NOISE_FAMILIES,
    NOISE_STREAM,
    SHAPE_STREAM,
    family_rng,
    noise_process,
    resolve_noise_options,
)
from .patterns import PATTERNS, draw_param, load_patterns
from .population import MotorNerve, SensoryNerve, draw_unit_shapes, draw_velocities
from .responses import draw
from .truth import truth_dataset
from .waveforms import (
    SHAPE_FAMILIES,
    Disturbance,
    Response,
    apply_shape_family,
    build_response,
    render,
    sample_times,
    waveform_truth,
)

__all__ = [
    "GroundTruth",
    "exam",
    "cohort",
    "MOTOR_STUDIES",
    "SENSORY_STUDIES",
    "FWAVE_STUDIES",
    "PHYSIOLOGY_KNOBS",
]

MOTOR_STUDIES = ("median_motor", "ulnar_motor", "peroneal_motor", "tibial_motor")
SENSORY_STUDIES = ("median_sensory", "ulnar_sensory", "sural_sensory")
FWAVE_STUDIES = ("ulnar_fwave", "tibial_fwave")

STUDY_COLUMNS = {
    "exam_id": "exam id",
    "subject_id": "pseudonymous subject id",
    "study": "study name, e.g. L_median_motor",
    "nerve": "nerve",
    "side": "L or R",
    "modality": "motor, sensory or fwave",
    "pattern": "simulated pattern of the exam",
    "n_traces": "traces of the study",
    "distal_site": "motor: distal stimulation site",
    "distal_distance": "motor: distal site to recording electrode (m); sensory: distance (m)",
    "dml": "motor: onset latency truth at the distal site (s)",
    "dml_measurable": "motor: measurable onset (1 % of amplitude) at the distal site (s)",
    "distal_amplitude": "motor: negative-peak amplitude at the distal site (V)",
    "distal_area": "motor: negative area at the distal site (V s)",
    "distal_duration": "motor: total (EFNS/PNS) duration at the distal site (s)",
    "distal_negative_duration": "motor: negative-phase duration at the distal site (s)",
    "cv": "motor: CV (m/s) of the segment next to the distal site, from the exact onsets",
    "cv_measurable": "motor: CV (m/s) of that segment from the measurable onsets",
    "cv_max": "parameter: velocity of the fastest fibre (m/s)",
    "min_cv": "motor: slowest segment CV from the exact onsets (m/s)",
    "min_cv_measurable": "motor: slowest segment CV from the measurable onsets (m/s)",
    "tli": "motor: distal distance / (cv * dml)",
    "tli_measurable": "motor: distal distance / (cv_measurable * dml_measurable)",
    "residual_latency": "motor: dml - distal distance / cv (s)",
    "residual_latency_measurable": "motor: dml_measurable - distal distance / cv_measurable (s)",
    "terminal_delay": "parameter: shortest terminal delay td_min (s)",
    "max_cb_pct": "motor: largest amplitude drop of a proximal site vs the distal site (%)",
    "max_area_drop_pct": "motor: largest area drop of a proximal site vs the distal site (%)",
    "max_td_pct": "motor: largest total-duration increase, proximal site vs distal site (%)",
    "n_units": "parameter: motor units / sensory fibres",
    "snap_onset": "sensory: onset latency (s)",
    "snap_onset_measurable": "sensory: measurable onset (1 % of amplitude) (s)",
    "snap_peak": "sensory: negative-peak latency (s)",
    "snap_amplitude": "sensory: negative-peak amplitude (V); NaN when absent",
    "scv": "sensory: distance / onset latency (m/s)",
    "scv_measurable": "sensory: distance / measurable onset (m/s)",
    "has_response": "a response is present (False: absent SNAP)",
    "m_onset": "fwave: onset of the M wave (s)",
    "m_onset_measurable": "fwave: measurable onset of the M wave (s)",
    "f_n_stimuli": "fwave: stimuli of the series",
    "f_n_responses": "fwave: stimuli followed by an F wave",
    "f_persistence_pct": "fwave: 100 * f_n_responses / f_n_stimuli",
    "f_min": "fwave: shortest F latency (s)",
    "f_mean": "fwave: mean F latency (s)",
    "f_max": "fwave: longest F latency (s)",
    "f_chronodispersion": "fwave: f_max - f_min (s)",
    "f_min_measurable": "fwave: shortest measurable F latency (1 % of each F wave) (s)",
    "f_mean_measurable": "fwave: mean measurable F latency (s)",
    "f_max_measurable": "fwave: longest measurable F latency (s)",
    "persistence_parameter": "fwave: probability of an F wave per stimulus (parameter)",
    "dml_pct_uln": "100 * dml / ULN",
    "cv_pct_lln": "100 * cv / LLN",
    "min_cv_pct_lln": "100 * min_cv / LLN",
    "amp_pct_lln": "100 * distal (or SNAP) amplitude / LLN",
    "f_min_pct_uln": "100 * f_min / ULN",
    "snap_peak_pct_uln": "100 * snap_peak / ULN",
    "scv_pct_lln": "100 * scv / LLN",
}
"""Columns of :attr:`GroundTruth.studies` and their meaning (SI units)."""

SEGMENT_COLUMNS = {
    "exam_id": "exam id",
    "study": "study",
    "nerve": "nerve",
    "side": "L or R",
    "distal_site": "distal stimulation site of the segment",
    "proximal_site": "proximal stimulation site of the segment",
    "distance": "segment length (m)",
    "cv": "segment CV from the exact onsets (m/s)",
    "cv_measurable": "segment CV from the measurable onsets (m/s)",
    "amp_drop_pct": "100 * (1 - proximal / distal amplitude), adjacent sites",
    "area_drop_pct": "100 * (1 - proximal / distal negative area), adjacent sites",
    "duration_increase_pct": "100 * (proximal / distal total duration - 1), adjacent sites",
    "block_fraction": "parameter: fraction of the conducting units blocked in the segment",
    "dispersion_fraction": "parameter: fraction of the units slowed in the segment",
    "segment_factor": "parameter: velocity factor of the segment common to all fibres",
}
"""Columns of :attr:`GroundTruth.segments` (SI units)."""


@dataclass
class GroundTruth:
    """Exact truth of simulated exams.

    Attributes
    ----------
    traces : xarray.Dataset
        Per-trace truth on the ``trace`` ids of the trace set (variables of
        :data:`ncsproc.simulate.truth.TRUTH_VARS`).
    studies : pandas.DataFrame
        One row per study (columns :data:`STUDY_COLUMNS`).
    segments : pandas.DataFrame
        One row per motor segment between consecutive stimulation sites (:data:`SEGMENT_COLUMNS`).
    exams : pandas.DataFrame
        One row per exam: ``exam_id, subject_id, pattern, age, height, temperature, n_traces``.
    """

    traces: xr.Dataset
    studies: pd.DataFrame
    segments: pd.DataFrame
    exams: pd.DataFrame

    @classmethod
    def concat(cls, parts: Sequence[GroundTruth]) -> GroundTruth:
        """Concatenate the truths of several exams."""
        return cls(
            traces=xr.concat(
                [p.traces for p in parts], dim="trace", combine_attrs="drop_conflicts"
            ),
            studies=pd.concat([p.studies for p in parts], ignore_index=True),
            segments=pd.concat([p.segments for p in parts], ignore_index=True),
            exams=pd.concat([p.exams for p in parts], ignore_index=True),
        )


def _pick_sweep(needed: float, options) -> float:
    for s in sorted(float(o) for o in options):
        if s >= needed:
            return s
    return float(np.ceil(needed / 0.01) * 0.01)


def _end(tr: dict) -> float:
    """Time by which a response's truth is complete: last negative lobe and positive peak."""
    return max(tr["onset_latency"] + tr["total_duration"], tr["positive_peak_latency"])


def _pct(a, b):
    return 100.0 * a / b if np.isfinite(a) and np.isfinite(b) and b else np.nan


class _ExamBuilder:
    """Accumulates the traces and truth rows of one exam (fixed order of random draws)."""

    def __init__(
        self,
        pattern,
        rng,
        exam_id,
        subject_id,
        side,
        overrides,
        cfg,
        families=None,
        knobs=None,
        knob_rng=None,
    ):
        self.pattern = pattern
        self.rng = rng
        # noise and shape families: (noise, options, shape, seed); their draws use own streams
        noise, options, shape, seed = families or ("white", {}, "standard", 0)
        self.noise, self.noise_options, self.shape = noise, options, shape
        self.noise_rng = family_rng(seed, NOISE_STREAM)
        self.shape_rng = family_rng(seed, SHAPE_STREAM)
        self.exam_id = exam_id
        self.subject_id = subject_id
        self.side = side
        self.o = overrides
        self.cfg = cfg
        self.rec = cfg["recording"]
        self.knobs = knobs or {}
        self.knob_rng = knob_rng
        self.pat = _pattern_with_knobs(cfg["patterns"][pattern], pattern, self.knobs)
        self.lim = cfg["limits"]
        self.traces: list[dict] = []
        self.studies: list[dict] = []
        self.segments: list[dict] = []
        self.nerves: dict[str, MotorNerve] = {}
        self.distal: dict[str, tuple[Response, dict]] = {}

    # -- recording -------------------------------------------------------------------------
    def _disturbance(self, modality: str) -> Disturbance:
        rng, rec, o = self.rng, self.rec, self.o
        kind = "sensory" if modality == "sensory" else "motor"
        noise_spec = o["noise_rms"]
        if isinstance(noise_spec, Mapping):
            noise_spec = noise_spec.get(modality)
        if noise_spec is None:
            noise = draw_param(rng, rec[f"{modality}_noise_rms"])
        else:
            noise = draw(rng, noise_spec)
        if o["artefact"] is True:
            a_amp = draw_param(rng, rec[f"{kind}_artefact"])
        elif o["artefact"] in (False, None):
            a_amp = 0.0
        else:
            a_amp = draw(rng, o["artefact"])
        a_sign = 1.0 if rng.uniform() < 0.5 else -1.0
        a_tau = draw_param(rng, rec[f"{kind}_artefact_tau"])
        m_amp = draw(rng, o["mains"])
        m_freq = 50.0 if rng.uniform() < 0.5 else 60.0
        m_phase = float(rng.uniform(0.0, 2.0 * np.pi))
        dr = draw(rng, o["drift"]) * (1.0 if rng.uniform() < 0.5 else -1.0)
        if o["offset"] is None:
            off = draw_param(rng, rec[f"{kind}_offset"])
        else:
            off = draw(rng, o["offset"])
        clip = np.inf if o["clip"] is None else float(o["clip"])
        return Disturbance(noise, a_sign * a_amp, a_tau, m_amp, m_freq, m_phase, off, dr, clip)

    def _pretrigger(self) -> float:
        if self.o["pretrigger"] is not None:
            return float(self.o["pretrigger"])
        rec = self.rec
        if self.rng.uniform() < rec["pretrigger_probability"]["value"]:
            return draw_param(self.rng, rec["pretrigger"])
        return 0.0

    def _add_trace(
        self,
        *,
        study,
        nerve,
        modality,
        stim_site,
        record_site,
        distance,
        fs,
        pretrigger,
        sweep,
        responses,
        truth,
        intensity,
    ):
        n_pre = int(round(pretrigger * fs))
        n_post = int(round(sweep * fs))
        t = sample_times(fs, n_pre, n_post)
        dist = self._disturbance(modality)
        added, keep_white, noise_params = noise_process(
            self.noise, t, fs, dist.noise_rms, self.noise_rng, self.noise_options
        )
        x, sat = render(responses, t, dist, self.rng, added_noise=added, keep_white=keep_white)
        rec = dict(truth, **noise_params, noise_family=self.noise, shape=self.shape)
        rec.update(
            noise_rms=dist.noise_rms,
            artefact_amplitude=dist.artefact_amplitude,
            artefact_tau=dist.artefact_tau if dist.artefact_amplitude else np.nan,
            mains_amplitude=dist.mains_amplitude,
            mains_frequency=dist.mains_frequency if dist.mains_amplitude else np.nan,
            mains_phase=dist.mains_phase if dist.mains_amplitude else np.nan,
            offset=dist.offset,
            drift=dist.drift,
            clip_level=dist.clip,
            saturated=sat,
        )
        record = sum(1 for tr in self.traces if tr["study"] == study)
        self.traces.append(
            dict(
                signal=x,
                study=study,
                nerve=nerve,
                modality=modality,
                stim_site=stim_site,
                record_site=record_site,
                distance=distance,
                sampling_rate=fs,
                t_start=-n_pre / fs,
                stim_intensity=intensity,
                record=record,
                truth=rec,
            )
        )

    def _study_name(self, nerve: str, modality: str) -> str:
        return f"{self.side}_{nerve}_{modality}"

    # -- lesions ---------------------------------------------------------------------------
    def draw_lesions(self) -> dict[str, dict]:
        rng = self.rng
        les = self.pat["lesions"]
        out = {k: {} for k in MOTOR_STUDIES}
        n_block = draw_param(rng, les["n_block"], integer=True)
        if n_block:
            cands = list(les["block_candidates"])
            for i in rng.choice(len(cands), size=min(n_block, len(cands)), replace=False):
                out[cands[i]]["block"] = draw_param(rng, les["block_fraction"])
        n_disp = draw_param(rng, les["n_dispersion"], integer=True)
        if n_disp:
            cands = list(les["dispersion_candidates"])
            for i in rng.choice(len(cands), size=min(n_disp, len(cands)), replace=False):
                frac = draw_param(rng, les["dispersion_fraction"])
                slow = draw_param(rng, les["dispersion_slowing"])
                out[cands[i]]["dispersion"] = (frac, max(slow - 0.1, 0.1), min(slow + 0.1, 1.0))
        return out

    # -- motor -----------------------------------------------------------------------------
    def motor(self, key: str, lesion: dict) -> None:
        rng = self.rng
        an = self.cfg["anatomy"][key]
        pp = self.pat[key]
        nerve_name = an["nerve"]
        d0 = draw_param(rng, an["distal_distance"])
        seg_len = np.atleast_1d(draw_param(rng, an["segment_lengths"]))
        distances = d0 + np.concatenate([[0.0], np.cumsum(seg_len)])
        seg_factor = np.concatenate(
            [[1.0], np.atleast_1d(np.asarray(an["segment_factor"]["value"], float))]
        )
        cv_max = draw_param(rng, pp["cv_max"])
        if "dml" in pp:
            dml = draw_param(rng, pp["dml"])
            td_min = dml - d0 / cv_max
        elif "tli" in pp:
            tli = draw_param(rng, pp["tli"])
            dml = d0 / (cv_max * tli)
            td_min = dml - d0 / cv_max
        else:
            td_min = draw_param(rng, pp["terminal_delay"])
        if td_min <= 0:
            raise ValueError(f"{key}: non-positive terminal delay from the pattern parameters")
        amp_target = draw_param(rng, pp["amplitude"])
        n_units = draw_param(rng, pp.get("n_units", an["n_units"]), integer=True)
        sd = draw_param(rng, pp["cv_sd_fraction"])
        td_spread = draw_param(rng, pp["terminal_delay_spread"])
        shapes = draw_unit_shapes(
            rng,
            n_units,
            t_neg=draw_param(rng, an["unit_negative_duration"]),
            t_pos_ratio=draw_param(rng, an["unit_positive_ratio"]),
            pos_ratio=draw_param(rng, an["unit_positive_height"]),
            amp_sigma=draw_param(rng, an["unit_amplitude_sigma"]),
        )
        shapes = apply_shape_family(shapes, self.shape, self.shape_rng)
        cv = draw_velocities(rng, n_units, cv_max, sd)
        td = td_min + np.abs(rng.normal(0.0, td_spread, n_units))
        td[0] = td_min
        nerve = MotorNerve(
            distances=distances, cv=cv, terminal_delay=td, shapes=shapes, segment_factor=seg_factor
        )
        if "dispersion" in lesion:
            frac, lo, hi = lesion["dispersion"]
            nerve.add_dispersion(rng, 1, frac, lo, hi)
        if "block" in lesion:
            nerve.add_block(rng, 1, lesion["block"])
        leg = self.knobs.get("leg_dispersion")
        if leg is not None and key in leg and "dispersion" not in lesion:
            _physiological_dispersion(self.knob_rng, nerve, shapes, leg[key])
        lat = nerve.latencies()
        # scale the unit amplitudes to the distal amplitude
        distal = build_response(lat[:, 0], shapes)
        factor = amp_target / waveform_truth(distal)["amplitude"]
        nerve.shapes = shapes.scaled(factor)
        self.nerves[key] = nerve
        study = self._study_name(nerve_name, "motor")
        responses, truths = [], []
        inexcitable = self._inexcitable(key)
        for k in range(nerve.n_sites):
            mask = nerve.present(k)
            if inexcitable:
                r = Response(None)
            else:
                r = build_response(lat[mask, k], nerve.shapes.take(mask))
            responses.append(r)
            tr = waveform_truth(r)
            tr["has_response"] = not r.empty
            if self.shape == "triphasic":
                tr["initial_positivity"] = not r.empty
            truths.append(tr)
        self.distal[key] = (responses[0], truths[0])
        # recording
        fs = float(self.rec["motor_sampling_rate"]["value"])
        needed = (0.0 if inexcitable else max(_end(t) for t in truths)) + 3e-3
        sweep = _pick_sweep(needed, self.rec["motor_sweeps"]["value"])
        pre = self._pretrigger()
        for k, site in enumerate(an["sites"]):
            self._add_trace(
                study=study,
                nerve=nerve_name,
                modality="motor",
                stim_site=site,
                record_site=an["record_site"],
                distance=float(distances[k]),
                fs=fs,
                pretrigger=pre,
                sweep=sweep,
                responses=[responses[k]],
                truth=truths[k],
                intensity=draw_param(rng, self.rec["motor_stim_intensity"]),
            )
        # truth tables
        on = np.array([t["onset_latency"] for t in truths])
        amp = np.array([t["amplitude"] for t in truths])
        area = np.array([t["negative_area"] for t in truths])
        dur = np.array([t["total_duration"] for t in truths])
        seg_cv = np.diff(distances) / np.diff(on)
        on_m = np.array([t["measurable_onset_latency"] for t in truths])
        seg_cv_m = np.diff(distances) / np.diff(on_m)
        for j in range(1, nerve.n_sites):
            self.segments.append(
                dict(
                    exam_id=self.exam_id,
                    study=study,
                    nerve=nerve_name,
                    side=self.side,
                    distal_site=an["sites"][j - 1],
                    proximal_site=an["sites"][j],
                    distance=float(distances[j] - distances[j - 1]),
                    cv=float(seg_cv[j - 1]),
                    cv_measurable=float(seg_cv_m[j - 1]),
                    amp_drop_pct=100.0 * (1.0 - amp[j] / amp[j - 1]),
                    area_drop_pct=100.0 * (1.0 - area[j] / area[j - 1]),
                    duration_increase_pct=100.0 * (dur[j] / dur[j - 1] - 1.0),
                    block_fraction=float(nerve.block_fraction[j]),
                    dispersion_fraction=float(nerve.dispersion_fraction[j]),
                    segment_factor=float(seg_factor[j]),
                )
            )
        lim = self.lim[key]
        dml = float(on[0])
        cv_d = float(seg_cv[0])
        dml_m, cv_m = float(on_m[0]), float(seg_cv_m[0])
        row = dict(
            study=study,
            nerve=nerve_name,
            modality="motor",
            n_traces=nerve.n_sites,
            distal_site=an["sites"][0],
            distal_distance=float(d0),
            dml=dml,
            distal_amplitude=float(amp[0]),
            distal_area=float(area[0]),
            distal_duration=float(dur[0]),
            distal_negative_duration=float(truths[0]["negative_duration"]),
            cv=cv_d,
            cv_max=float(cv_max),
            min_cv=float(seg_cv.min()),
            tli=float(d0 / (cv_d * dml)),
            residual_latency=float(dml - d0 / cv_d),
            dml_measurable=dml_m,
            cv_measurable=cv_m,
            min_cv_measurable=float(seg_cv_m.min()),
            tli_measurable=float(d0 / (cv_m * dml_m)),
            residual_latency_measurable=float(dml_m - d0 / cv_m),
            terminal_delay=float(td_min),
            max_cb_pct=float((100.0 * (1.0 - amp[1:] / amp[0])).max()),
            max_area_drop_pct=float((100.0 * (1.0 - area[1:] / area[0])).max()),
            max_td_pct=float((100.0 * (dur[1:] / dur[0] - 1.0)).max()),
            n_units=n_units,
            has_response=True,
            dml_pct_uln=_pct(dml, lim["dml_uln"]["value"]),
            cv_pct_lln=_pct(cv_d, lim["cv_lln"]["value"]),
            min_cv_pct_lln=_pct(float(seg_cv.min()), lim["cv_lln"]["value"]),
            amp_pct_lln=_pct(float(amp[0]), lim["amplitude_lln"]["value"]),
        )
        if inexcitable:
            row.update(has_response=False, amp_pct_lln=0.0)
        self.studies.append(row)

    def _inexcitable(self, key: str) -> bool:
        """Whether the ``inexcitable`` knob makes this motor study a no-response study."""
        knob = self.knobs.get("inexcitable")
        if knob is None or key not in knob["studies"]:
            return False
        return bool(self.knob_rng.uniform() < float(knob["probability"]["value"]))

    # -- F waves ---------------------------------------------------------------------------
    def fwave(self, key: str, height_m: float) -> None:
        rng = self.rng
        an = self.cfg["anatomy"][key]
        pp = self.pat[key]
        motor_key = an["motor"]
        nerve = self.nerves[motor_key]
        m_resp, m_truth = self.distal[motor_key]
        n_stim = draw_param(rng, an["n_stimuli"], integer=True)
        persistence = draw_param(rng, pp["persistence"])
        prox_cv = draw_param(rng, pp["proximal_cv"])
        cord = float(an["cord_distance_per_height"]["value"]) * height_m
        f_all = nerve.f_latencies(cord, prox_cv / float(nerve.cv.max()))
        eligible = np.flatnonzero(np.isfinite(f_all))
        fs = float(rng.choice(np.asarray(self.rec["fwave_sampling_rates"]["value"], float)))
        per_stim = []
        for _ in range(n_stim):
            if eligible.size and rng.uniform() < persistence:
                k = draw_param(rng, an["f_units"], integer=True)
                chosen = np.sort(rng.choice(eligible, size=min(k, eligible.size), replace=False))
                f_resp = build_response(f_all[chosen], nerve.shapes.take(chosen))
                target = min(draw_param(rng, an["f_amplitude"]), 0.2 * m_truth["amplitude"])
                ftr = waveform_truth(f_resp)
                f_resp = f_resp.scaled(target / ftr["amplitude"])
                f_end = ftr["onset_latency"] + ftr["total_duration"]
                per_stim.append((f_resp, f_end, target, ftr["measurable_onset_latency"]))
            else:
                per_stim.append(None)
        ends = [p[1] for p in per_stim if p is not None]
        needed = max([_end(m_truth), *ends]) + 2e-3
        sweep = _pick_sweep(needed, self.rec["fwave_sweeps"]["value"])
        pre = self._pretrigger()
        study = self._study_name(an["nerve"], "fwave")
        dist = float(nerve.distances[0])
        f_lats, f_meas = [], []
        for p in per_stim:
            truth = dict(m_truth)
            truth["has_response"] = True
            responses = [m_resp]
            if p is not None:
                responses.append(p[0])
                truth["f_latency"] = p[0].start
                truth["f_amplitude"] = p[2]
                truth["f_measurable_latency"] = p[3]
                f_lats.append(p[0].start)
                f_meas.append(p[3])
            self._add_trace(
                study=study,
                nerve=an["nerve"],
                modality="fwave",
                stim_site=an["stim_site"],
                record_site=an["record_site"],
                distance=dist,
                fs=fs,
                pretrigger=pre,
                sweep=sweep,
                responses=responses,
                truth=truth,
                intensity=draw_param(rng, self.rec["motor_stim_intensity"]),
            )
        f = np.array(f_lats)
        fm = np.array(f_meas)
        f_min = float(f.min()) if f.size else np.nan
        uln = self.lim[motor_key]["f_min_uln"]["value"]
        self.studies.append(
            dict(
                study=study,
                nerve=an["nerve"],
                modality="fwave",
                n_traces=n_stim,
                distal_site=an["stim_site"],
                distal_distance=dist,
                m_onset=float(m_truth["onset_latency"]),
                f_n_stimuli=n_stim,
                f_n_responses=int(f.size),
                f_persistence_pct=100.0 * f.size / n_stim,
                f_min=f_min,
                f_mean=float(f.mean()) if f.size else np.nan,
                f_max=float(f.max()) if f.size else np.nan,
                f_chronodispersion=float(f.max() - f.min()) if f.size else np.nan,
                m_onset_measurable=float(m_truth["measurable_onset_latency"]),
                f_min_measurable=float(fm.min()) if fm.size else np.nan,
                f_mean_measurable=float(fm.mean()) if fm.size else np.nan,
                f_max_measurable=float(fm.max()) if fm.size else np.nan,
                persistence_parameter=float(persistence),
                has_response=True,
                f_min_pct_uln=_pct(f_min, uln),
            )
        )

    # -- sensory ---------------------------------------------------------------------------
    def sensory(self, key: str) -> None:
        rng = self.rng
        an = self.cfg["anatomy"][key]
        pp = self.pat[key]
        d = draw_param(rng, an["distance"])
        cv_max = draw_param(rng, pp["cv_max"])
        amp_target = draw_param(rng, pp["amplitude"])
        n = draw_param(rng, pp.get("n_units", an["n_units"]), integer=True)
        sd = draw_param(rng, pp["cv_sd_fraction"])
        absent = bool(rng.uniform() < float(pp["absent_probability"]["value"]))
        shapes = draw_unit_shapes(
            rng,
            n,
            t_neg=draw_param(rng, an["unit_negative_duration"]),
            t_pos_ratio=draw_param(rng, an["unit_positive_ratio"]),
            pos_ratio=draw_param(rng, an["unit_positive_height"]),
            amp_sigma=draw_param(rng, an["unit_amplitude_sigma"]),
        )
        shapes = apply_shape_family(shapes, self.shape, self.shape_rng)
        nerve = SensoryNerve(distance=d, cv=draw_velocities(rng, n, cv_max, sd), shapes=shapes)
        if absent:
            resp = Response(None)
            tr = waveform_truth(resp)
        else:
            resp = build_response(nerve.latencies(), shapes)
            factor = amp_target / waveform_truth(resp)["amplitude"]
            resp = resp.scaled(factor)
            tr = waveform_truth(resp)
        tr["has_response"] = not absent
        if self.shape == "triphasic" and not absent:
            tr["initial_positivity"] = True
        fs = float(self.rec["sensory_sampling_rate"]["value"])
        needed = (_end(tr) + 3e-3) if not absent else 0.0
        sweep = _pick_sweep(needed, self.rec["sensory_sweeps"]["value"])
        pre = self._pretrigger()
        study = self._study_name(an["nerve"], "sensory")
        self._add_trace(
            study=study,
            nerve=an["nerve"],
            modality="sensory",
            stim_site=an["stim_site"],
            record_site=an["record_site"],
            distance=float(d),
            fs=fs,
            pretrigger=pre,
            sweep=sweep,
            responses=[resp],
            truth=tr,
            intensity=draw_param(rng, self.rec["sensory_stim_intensity"]),
        )
        lim = self.lim[key]
        onset = tr["onset_latency"]
        scv = d / onset if not absent else np.nan
        onset_m = tr["measurable_onset_latency"]
        self.studies.append(
            dict(
                study=study,
                nerve=an["nerve"],
                modality="sensory",
                n_traces=1,
                distal_site=an["stim_site"],
                distal_distance=float(d),
                cv_max=float(cv_max),
                n_units=n,
                snap_onset=onset,
                snap_peak=tr["peak_latency"],
                snap_amplitude=tr["amplitude"],
                scv=scv,
                snap_onset_measurable=onset_m,
                scv_measurable=d / onset_m if not absent else np.nan,
                has_response=not absent,
                amp_pct_lln=_pct(tr["amplitude"], lim["amplitude_lln"]["value"])
                if not absent
                else 0.0,
                snap_peak_pct_uln=_pct(tr["peak_latency"], lim["peak_latency_uln"]["value"]),
                scv_pct_lln=_pct(scv, lim["cv_lln"]["value"]),
            )
        )


PHYSIOLOGY_KNOBS = (
    "leg_dispersion",
    "distal_dispersion",
    "partial_block",
    "inexcitable",
    "axonal_slowing",
    "mixed",
)
"""Robustness knobs of ``patterns.toml`` ``[physiology.<knob>]`` (see :func:`exam`)."""


def _active_knobs(cfg: Mapping, physiology, pattern: str) -> dict[str, dict]:
    """The knobs asked for that apply to ``pattern``: ``{name: its table of patterns.toml}``."""
    if physiology is None:
        return {}
    names = [physiology] if isinstance(physiology, str) else list(physiology)
    if isinstance(physiology, Mapping):
        names = [k for k, v in physiology.items() if v]
    table = cfg.get("physiology", {})
    unknown = sorted(set(names) - set(table))
    if unknown:
        raise ValueError(
            f"unknown physiology knob(s) {unknown}; patterns.toml [physiology] has {sorted(table)}"
        )
    return {n: table[n] for n in names if pattern in table[n]["patterns"]}


def _pattern_with_knobs(pat: Mapping, pattern: str, knobs: Mapping[str, Mapping]) -> Mapping:
    """The pattern's parameters with the ``overrides`` of the active knobs merged in."""
    out = None
    for knob in knobs.values():
        over = knob.get("overrides", {}).get(pattern)
        if not over:
            continue
        if out is None:
            out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in pat.items()}
        for study, params in over.items():
            out.setdefault(study, {}).update(params)
    return pat if out is None else out


def _physiological_dispersion(rng, nerve: MotorNerve, shapes, spec: Mapping) -> None:
    """Spread the proximal-segment conduction times of a leg nerve to a drawn duration increase.

    Every unit but the fastest ``fast_spared`` fraction is slowed in segment 1 by a factor
    ``1 / (1 + w u)`` with ``u ~ U(0, 1)`` per unit; ``w`` is solved (bisection) so that the
    proximal CMAP's total duration exceeds the distal one by the drawn ``td_pct``. The fastest
    units keep their velocity, so onsets, CV and TLI are unchanged.
    """
    target = draw_param(rng, spec["td_pct"])
    u = rng.uniform(0.0, 1.0, len(nerve.cv))
    spared = nerve.cv >= np.quantile(nerve.cv, 1.0 - float(spec["fast_spared"]["value"]))
    u[spared] = 0.0
    d0 = waveform_truth(build_response(nerve.latencies()[:, 0], shapes))["total_duration"]

    def td_pct(w: float) -> float:
        nerve.slow[:, 1] = 1.0 / (1.0 + w * u)
        lat = nerve.latencies()[:, 1]
        mask = nerve.present(1)
        d1 = waveform_truth(build_response(lat[mask], shapes.take(mask)))["total_duration"]
        return 100.0 * (d1 / d0 - 1.0)

    lo, hi = 0.0, 2.0
    for _ in range(12):  # w to 0.05 %: far finer than the drawn range
        mid = 0.5 * (lo + hi)
        if td_pct(mid) < target:
            lo = mid
        else:
            hi = mid
    td_pct(0.5 * (lo + hi))
    nerve.dispersion_fraction[1] = float(np.mean(u > 0))


def exam(
    pattern: str,
    *,
    seed,
    exam_id: str | None = None,
    subject_id: str | None = None,
    side: str = "L",
    noise_rms=None,
    artefact=True,
    mains=0.0,
    drift=0.0,
    offset=None,
    pretrigger: float | None = None,
    clip: float | None = None,
    dtype: str = "float64",
    noise: str = "white",
    shape: str = "standard",
    noise_options: Mapping | None = None,
    config: Mapping | None = None,
    physiology=None,
) -> tuple[xr.Dataset, GroundTruth]:
    """Simulate one exam of a pattern, with its exact ground truth.

    Parameters
    ----------
    pattern : {"normal", "distal_demyelinating", "cidp_like", "axonal"}
        Electrodiagnostic pattern (parameters in ``patterns.toml``).
    seed : int or numpy.random.SeedSequence
        Seed of ``numpy.random.default_rng``; the same seed gives bit-identical output.
    exam_id, subject_id : str, optional
        Default ``EX<seed>`` and ``SIM<seed>`` (4 digits) for an integer seed.
    side : {"L", "R"}
        Side of every study.
    noise_rms : float, (low, high), mapping or None
        White-noise RMS (V). None: the defaults of ``patterns.toml`` (motor and F 5-10 uV,
        sensory 0.3-0.5 uV after averaging); a number or range: every trace; a mapping
        ``{"motor": ..., "sensory": ..., "fwave": ...}``: per modality (missing = default).
    artefact : bool, float or (low, high)
        Stimulus artefact: True = default height ranges, False = none, else the height (V).
    mains, drift : float or (low, high)
        Mains amplitude (V) and linear drift magnitude (V/s); 0 by default.
    offset : float, (low, high) or None
        Baseline offset (V); None = small default offsets.
    pretrigger : float, optional
        Pre-trigger baseline (s) of every study; None = mixed (half of the studies without,
        the others 2-5 ms).
    clip : float, optional
        Amplifier saturation level (V).
    dtype : {"float64", "float32"}
        dtype of ``signal``.
    noise, shape, noise_options
        Noise family, unit-potential shape family and family options of every trace, as in
        :func:`ncsproc.simulate.response_set` (default ``"white"`` / ``"standard"``: the
        original exam, bit for bit; the families draw from streams of their own).
    config : mapping, optional
        A parameter set shaped like :func:`load_patterns` (default: ``patterns.toml``), e.g.
        with some parameters fixed for a follow-up visit (:mod:`ncsproc.simulate.followup`).
    physiology : str, sequence of str or mapping {str: bool}, optional
        Robustness knobs of ``patterns.toml`` ``[physiology.<knob>]`` (:data:`PHYSIOLOGY_KNOBS`):
        ``leg_dispersion`` (physiological proximal dispersion of the peroneal and tibial CMAPs,
        every pattern), ``distal_dispersion`` (dispersed distal CMAPs, anti-MAG exams),
        ``partial_block`` (block in one or two nerves, CIDP-like exams), ``inexcitable`` (an
        inexcitable peroneal nerve), ``axonal_slowing`` (axonal exams with very low amplitudes
        and mild slowing), ``mixed`` (distal accentuation plus mild proximal slowing). A knob
        applies only to the patterns its table lists. None (default): no knob; the exam is
        bit-identical to one simulated without this option. Knob draws come from their own
        random stream (a child of ``seed``), so the exam's other draws do not move.

    Returns
    -------
    traces : xarray.Dataset
        A valid trace set (ids ``<exam_id>/<study>/<record>``).
    truth : GroundTruth
        Per trace, per study, per segment and per exam truth.
    """
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")
    if side not in ("L", "R"):
        raise ValueError("side must be 'L' or 'R'")
    cfg = load_patterns() if config is None else config
    if isinstance(seed, (int, np.integer)):
        exam_id = exam_id or f"EX{int(seed):04d}"
        subject_id = subject_id or f"SIM{int(seed):04d}"
    elif exam_id is None or subject_id is None:
        raise ValueError("exam_id and subject_id are required with a non-integer seed")
    if shape not in SHAPE_FAMILIES:
        raise ValueError(f"shape must be one of {SHAPE_FAMILIES}, got {shape!r}")
    if noise not in NOISE_FAMILIES:
        raise ValueError(f"noise must be one of {NOISE_FAMILIES}, got {noise!r}")
    families = (noise, resolve_noise_options(noise, noise_options), shape, seed)
    rng = np.random.default_rng(seed)
    overrides = dict(
        noise_rms=noise_rms,
        artefact=artefact,
        mains=mains,
        drift=drift,
        offset=offset,
        pretrigger=pretrigger,
        clip=clip,
    )
    knobs = _active_knobs(cfg, physiology, pattern)
    knob_rng = None
    if knobs:
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        knob_rng = np.random.default_rng(
            np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, 0x0B0B))
        )
    b = _ExamBuilder(
        pattern,
        rng,
        exam_id,
        subject_id,
        side,
        overrides,
        cfg,
        families,
        knobs=knobs,
        knob_rng=knob_rng,
    )
    rec = cfg["recording"]
    age = draw_param(rng, rec["age"])
    height = draw_param(rng, rec["height"])
    temperature = draw_param(rng, rec["temperature"])
    lesions = b.draw_lesions()
    for key in MOTOR_STUDIES:
        b.motor(key, lesions[key])
    for key in FWAVE_STUDIES:
        b.fwave(key, height / 100.0)
    for key in SENSORY_STUDIES:
        b.sensory(key)

    tr = b.traces
    ids = [f"{exam_id}/{t['study']}/{t['record']}" for t in tr]
    traces = make_trace_set(
        [t["signal"] for t in tr],
        sampling_rate=[t["sampling_rate"] for t in tr],
        t_start=[t["t_start"] for t in tr],
        exam_id=exam_id,
        subject_id=subject_id,
        study=[t["study"] for t in tr],
        nerve=[t["nerve"] for t in tr],
        side=side,
        modality=[t["modality"] for t in tr],
        stim_site=[t["stim_site"] for t in tr],
        record_site=[t["record_site"] for t in tr],
        distance=[t["distance"] for t in tr],
        stim_intensity=[t["stim_intensity"] for t in tr],
        stim_duration=float(rec["stim_duration"]["value"]),
        temperature=temperature,
        age=age,
        height=height,
        record=[t["record"] for t in tr],
        trace=ids,
        dtype=dtype,
        attrs={
            "source": "ncsproc.simulate.exam",
            "simulate_pattern": pattern,
            **({"simulate_physiology": ",".join(sorted(knobs))} if knobs else {}),
        },
        history=f"ncsproc.simulate.exam({pattern!r})",
    )
    truth_ds = truth_dataset(ids, [t["truth"] for t in tr], attrs={"simulate_pattern": pattern})
    base = dict(exam_id=exam_id, subject_id=subject_id, side=side, pattern=pattern)
    studies = pd.DataFrame([{**base, **row} for row in b.studies])
    studies = studies.reindex(columns=list(STUDY_COLUMNS))
    segments = pd.DataFrame(b.segments).reindex(columns=list(SEGMENT_COLUMNS))
    exams = pd.DataFrame(
        [
            dict(
                exam_id=exam_id,
                subject_id=subject_id,
                pattern=pattern,
                age=age,
                height=height,
                temperature=temperature,
                n_traces=len(tr),
            )
        ]
    )
    return traces, GroundTruth(traces=truth_ds, studies=studies, segments=segments, exams=exams)


def cohort(
    patterns: Sequence[str] | Mapping[str, int],
    *,
    seed: int,
    **exam_options,
) -> tuple[xr.Dataset, GroundTruth]:
    """Simulate a cohort of exams, one per pattern entry.

    Parameters
    ----------
    patterns : sequence of str or mapping {pattern: count}
        The pattern of each exam, e.g. ``["normal", "cidp_like"]`` or
        ``{"distal_demyelinating": 23, "cidp_like": 13, "axonal": 2}`` (exams in that order).
    seed : int
        Cohort seed; exam ``i`` uses the ``i``-th child of ``numpy.random.SeedSequence(seed)``,
        so an exam does not change when exams are added after it.
    **exam_options
        Passed to :func:`exam` (noise, disturbances, dtype, ...).

    Returns
    -------
    traces : xarray.Dataset
        All exams in one trace set (exam ids ``EX0001``..., subject ids ``SIM0001``...).
    truth : GroundTruth
        The concatenated truth.
    """
    if isinstance(patterns, Mapping):
        names = [p for p, n in patterns.items() for _ in range(int(n))]
    else:
        names = list(patterns)
    if not names:
        raise ValueError("a cohort needs at least one exam")
    children = np.random.SeedSequence(seed).spawn(len(names))
    sets, truths = [], []
    for i, (name, child) in enumerate(zip(names, children, strict=True), start=1):
        ds, gt = exam(
            name, seed=child, exam_id=f"EX{i:04d}", subject_id=f"SIM{i:04d}", **exam_options
        )
        sets.append(ds)
        truths.append(gt)
    return concat_trace_sets(sets), GroundTruth.concat(truths)
