"""Sets of independent simulated responses with exact truth, for kernel accuracy tests.

Every trace is drawn independently: its own nerve geometry, fibre population, unit shapes,
target amplitude, noise and disturbances, all from one ``numpy.random.default_rng(seed)``
consumed in a fixed order (same seed, bit-identical output).

Per-kind ranges (each drawn uniformly per trace unless stated; [P] engineering choices set to
cover the physiological range of ncs-domain.md section 4):

motor (median-like CMAP, stimulated at the wrist, recorded from APB)
    onset 2.5-8 ms; distance 60-90 mm; cv_max 40-65 m/s; 100-250 units; velocity SD 4-10 %
    of cv_max; terminal-delay spread 0.05-0.5 ms; unit negative lobe 3.5-6 ms, positive lobe
    1.5-2.5 times longer and 0.2-0.6 as high; 30 % of the traces are "proximal-site"
    recordings (100-200 mm more nerve, 30-60 % of the fibres slowed to c +- 0.03 of their
    velocity with c drawn in 0.3-0.6: a dispersed, sometimes multi-lobed CMAP). The terminal
    delays are shifted so that the onset is the drawn one. Amplitude 1-15 mV, noise 2-20 uV
    RMS, sweep 20 ms, artefact 1-20 mV with tau 0.05-0.3 ms.
sensory (antidromic median digit II SNAP)
    onset 1.5-4 ms; cv_max 40-65 m/s (distance = cv_max x onset); 150-300 fibres; velocity SD
    6-12 %; negative lobe 0.7-1.3 ms; antidromic SNAPs are negative-first, so none has an
    initial positivity unless ``initial_positivity`` (a probability) asks for the
    orthodromic shape (0.2-0.4 ms, 10-30 % of the negative lobe).
    Amplitude 3-60 uV, noise 0.2-1.5 uV RMS (post-averaging), sweep 10 ms, artefact
    0.1-2 mV with tau 0.03-0.1 ms.
fwave (ulnar ADM, stimulated at the wrist)
    an M wave as for motor (onset 2.5-4.5 ms, distance 60-80 mm, cv_max 50-65 m/s) plus, with
    probability 0.8, an F wave of 1-4 random units scaled to a 100-500 uV negative peak;
    cord distance 0.6-0.8 m, proximal velocity factor 1.0-1.1 (F latency about 22-40 ms).
    Amplitude (of M) 1-15 mV, noise 2-15 uV, sweep 60 ms.
noise
    no response (``has_response`` False, every waveform truth NaN); noise 1-20 uV, sweep 20 ms.

A motor, sensory or M response whose last negative lobe or positive peak would come later
than 1 ms before the end of the sweep is redrawn, so the truth lies inside the recording
(with a user-given short sweep the last draw is kept after 100 attempts).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..schema import make_trace_set
from .noise import (
    NOISE_FAMILIES,
    NOISE_STREAM,
    SHAPE_STREAM,
    family_rng,
    noise_process,
    resolve_noise_options,
)
from .population import MotorNerve, SensoryNerve, draw_unit_shapes, draw_velocities
from .truth import truth_dataset
from .waveforms import (
    SHAPE_FAMILIES,
    Disturbance,
    Response,
    apply_shape_family,
    build_response,
    render,
    sample_times,
    scale_truth,
    waveform_truth,
)

__all__ = ["response_set", "KIND_DEFAULTS", "draw"]

KINDS = ("motor", "sensory", "fwave", "noise")

KIND_DEFAULTS = {
    "motor": dict(
        amplitude=(1e-3, 15e-3),
        noise_rms=(2e-6, 20e-6),
        sweep=20e-3,
        artefact=(1e-3, 20e-3),
        artefact_tau=(0.05e-3, 0.3e-3),
    ),
    "sensory": dict(
        amplitude=(3e-6, 60e-6),
        noise_rms=(0.2e-6, 1.5e-6),
        sweep=10e-3,
        artefact=(0.1e-3, 2e-3),
        artefact_tau=(0.03e-3, 0.1e-3),
    ),
    "fwave": dict(
        amplitude=(1e-3, 15e-3),
        noise_rms=(2e-6, 15e-6),
        sweep=60e-3,
        artefact=(1e-3, 20e-3),
        artefact_tau=(0.05e-3, 0.3e-3),
    ),
    "noise": dict(
        amplitude=None,
        noise_rms=(1e-6, 20e-6),
        sweep=20e-3,
        artefact=(1e-3, 20e-3),
        artefact_tau=(0.05e-3, 0.3e-3),
    ),
}
"""Per-kind defaults of :func:`response_set` (V, s)."""

_META = {
    "motor": dict(
        study="L_median_motor",
        nerve="median",
        modality="motor",
        stim_site="wrist",
        record_site="APB",
        stim_intensity=(20e-3, 50e-3),
    ),
    "sensory": dict(
        study="L_median_sensory",
        nerve="median",
        modality="sensory",
        stim_site="wrist",
        record_site="digit II",
        stim_intensity=(10e-3, 25e-3),
    ),
    "fwave": dict(
        study="L_ulnar_fwave",
        nerve="ulnar",
        modality="fwave",
        stim_site="wrist",
        record_site="ADM",
        stim_intensity=(20e-3, 50e-3),
    ),
}
_META["noise"] = _META["motor"]  # pure noise is recorded like a motor study


def draw(rng: np.random.Generator, value, *, log: bool = False) -> float:
    """Return ``value`` if scalar, else a uniform (or log-uniform) draw from ``(low, high)``.

    A draw is always consumed from ``rng`` for a range, never for a scalar.
    """
    if value is None:
        return np.nan
    if np.ndim(value) == 0:
        return float(value)
    lo, hi = (float(v) for v in value)
    if log and lo > 0:
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return float(rng.uniform(lo, hi))


def _motor_trace(
    rng,
    target_amp,
    *,
    onset_range=(2.5e-3, 8e-3),
    dist_range=(0.06, 0.09),
    cv_range=(40.0, 65.0),
    p_dispersed=0.3,
    shape="standard",
    shape_rng=None,
):
    d = draw(rng, dist_range)
    cv_max = draw(rng, cv_range)
    onset = draw(rng, onset_range)
    n = int(rng.integers(100, 251))
    sd = draw(rng, (0.04, 0.10))
    td_spread = draw(rng, (0.05e-3, 0.5e-3))
    shapes = draw_unit_shapes(
        rng,
        n,
        t_neg=draw(rng, (3.5e-3, 6e-3)),
        t_pos_ratio=draw(rng, (1.5, 2.5)),
        pos_ratio=draw(rng, (0.2, 0.6)),
    )
    shapes = apply_shape_family(shapes, shape, shape_rng)
    cv = draw_velocities(rng, n, cv_max, sd)
    td = np.abs(rng.normal(0.0, td_spread, n))
    td[0] = 0.0
    dispersed = bool(rng.uniform() < p_dispersed)
    if dispersed:
        seg = draw(rng, (0.10, 0.20))
        nerve = MotorNerve(
            distances=np.array([d, d + seg]), cv=cv, terminal_delay=td, shapes=shapes
        )
        centre = draw(rng, (0.3, 0.6))
        nerve.add_dispersion(rng, 1, draw(rng, (0.3, 0.6)), centre - 0.03, centre + 0.03)
        site = 1
    else:
        nerve = MotorNerve(distances=np.array([d]), cv=cv, terminal_delay=td, shapes=shapes)
        site = 0
    # the terminal delays are shifted so that the onset is the drawn one
    nerve.terminal_delay = nerve.terminal_delay + (onset - nerve.latencies()[:, site].min())
    resp = build_response(nerve.latencies()[:, site], shapes)
    tr = waveform_truth(resp)
    factor = target_amp / tr["amplitude"]
    return resp.scaled(factor), float(nerve.distances[site]), nerve, factor, scale_truth(tr, factor)


def _fits(tr: dict, sweep: float) -> bool:
    """The last negative lobe and the positive peak end at least 1 ms before the sweep does."""
    end = max(tr["onset_latency"] + tr["total_duration"], tr["positive_peak_latency"])
    return end <= sweep - 1e-3


def _sensory_trace(rng, target_amp, p_initial_positivity, shape="standard", shape_rng=None):
    cv_max = draw(rng, (40.0, 65.0))
    onset = draw(rng, (1.5e-3, 4e-3))
    d = cv_max * onset
    n = int(rng.integers(150, 301))
    sd = draw(rng, (0.06, 0.12))
    init = bool(rng.uniform() < p_initial_positivity)
    shapes = draw_unit_shapes(
        rng,
        n,
        t_neg=draw(rng, (0.7e-3, 1.3e-3)),
        t_pos_ratio=draw(rng, (1.2, 2.0)),
        pos_ratio=draw(rng, (0.2, 0.5)),
        t_init=draw(rng, (0.2e-3, 0.4e-3)) if init else 0.0,
        init_ratio=draw(rng, (0.1, 0.3)) if init else 0.0,
    )
    shapes = apply_shape_family(shapes, shape, shape_rng)
    init = init or shape == "triphasic"
    nerve = SensoryNerve(distance=d, cv=draw_velocities(rng, n, cv_max, sd), shapes=shapes)
    resp = build_response(nerve.latencies(), shapes)
    tr = waveform_truth(resp)
    factor = target_amp / tr["amplitude"]
    return resp.scaled(factor), d, init, scale_truth(tr, factor)


def _f_response(rng, nerve: MotorNerve, factor: float, f_lat_all: np.ndarray, amp_range):
    """One F wave: 1-4 random eligible units, scaled to a drawn negative peak."""
    eligible = np.flatnonzero(np.isfinite(f_lat_all))
    k = int(rng.integers(1, 5))
    chosen = np.sort(rng.choice(eligible, size=min(k, eligible.size), replace=False))
    units = nerve.shapes.take(chosen).scaled(factor)
    resp = build_response(f_lat_all[chosen], units)
    target = draw(rng, amp_range)
    f_truth = waveform_truth(resp)
    f_factor = target / f_truth["amplitude"]
    return resp.scaled(f_factor), target, f_truth["measurable_onset_latency"]


def _disturbance(rng, kind, defaults, noise_rms, artefact, mains, drift, offset, clip):
    noise = draw(rng, defaults["noise_rms"] if noise_rms is None else noise_rms, log=True)
    if artefact is True:
        a_amp = draw(rng, defaults["artefact"], log=True)
    elif artefact is False or artefact is None:
        a_amp = 0.0
    else:
        a_amp = draw(rng, artefact, log=True)
    a_sign = 1.0 if rng.uniform() < 0.5 else -1.0
    a_tau = draw(rng, defaults["artefact_tau"])
    m_amp = draw(rng, mains)
    m_freq = 50.0 if rng.uniform() < 0.5 else 60.0
    m_phase = float(rng.uniform(0.0, 2.0 * np.pi))
    dr = draw(rng, drift) * (1.0 if rng.uniform() < 0.5 else -1.0)
    off = draw(rng, offset)
    return Disturbance(
        noise_rms=noise,
        artefact_amplitude=a_sign * a_amp,
        artefact_tau=a_tau,
        mains_amplitude=m_amp,
        mains_frequency=m_freq,
        mains_phase=m_phase,
        offset=off,
        drift=dr,
        clip=np.inf if clip is None else float(clip),
    )


def _dist_record(d: Disturbance, saturated: bool) -> dict:
    return dict(
        noise_rms=d.noise_rms,
        artefact_amplitude=d.artefact_amplitude,
        artefact_tau=d.artefact_tau if d.artefact_amplitude else np.nan,
        mains_amplitude=d.mains_amplitude,
        mains_frequency=d.mains_frequency if d.mains_amplitude else np.nan,
        mains_phase=d.mains_phase if d.mains_amplitude else np.nan,
        offset=d.offset,
        drift=d.drift,
        clip_level=d.clip,
        saturated=saturated,
    )


def response_set(
    kind: str,
    n_traces: int,
    *,
    seed: int,
    amplitude=None,
    noise_rms=None,
    sampling_rate: float = 20000.0,
    sweep: float | None = None,
    pretrigger: float = 0.0,
    artefact: bool | float | tuple = True,
    mains=0.0,
    drift=0.0,
    offset=0.0,
    clip: float | None = None,
    dtype: str = "float64",
    initial_positivity: float = 0.0,
    noise: str = "white",
    shape: str = "standard",
    noise_options: dict | None = None,
) -> tuple[xr.Dataset, xr.Dataset]:
    """Simulate ``n_traces`` independent responses of one kind, with their exact truth.

    Parameters
    ----------
    kind : {"motor", "sensory", "fwave", "noise"}
        CMAP, SNAP, F-wave trace (M wave + late response with probability 0.8), or no
        response at all (noise and disturbances only). Ranges per kind: module docstring.
    n_traces : int
        Number of traces.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives bit-identical output.
    amplitude : float or (low, high), optional
        Target negative-peak amplitude (V) of the response (of the M wave for ``fwave``); a
        range is drawn log-uniformly per trace. The truth holds the exact achieved value.
    noise_rms : float or (low, high), optional
        SD (V) of the noise process (post-averaging for sensory; of the white part for the
        ``mains`` and ``wander`` families); a range is drawn log-uniformly per trace.
        0 = noiseless.
    sampling_rate : float
        Hz.
    sweep : float, optional
        Recording time after the stimulus (s); default 20 ms motor/noise, 10 ms sensory,
        60 ms fwave. The trace has ``round(pretrigger*fs) + round(sweep*fs)`` samples.
    pretrigger : float
        Pre-stimulus baseline (s); ``t_start = -round(pretrigger*fs)/fs``. 0 = the sweep
        starts at the stimulus (sample 0 at t = 0).
    artefact : bool, float or (low, high)
        Stimulus artefact (see :mod:`ncsproc.simulate.waveforms`): True = the per-kind default
        height range (log-uniform, random sign), False = none, a number or range = its height (V).
    mains : float or (low, high)
        Mains amplitude (V); frequency 50 or 60 Hz and phase drawn per trace.
    drift : float or (low, high)
        Magnitude of the linear baseline drift (V/s), random sign per trace.
    offset : float or (low, high)
        Baseline offset (V).
    clip : float, optional
        Amplifier saturation level (V); the signal is limited to ``[-clip, clip]``.
    dtype : {"float64", "float32"}
        dtype of ``signal`` (the simulation itself is float64).
    initial_positivity : float
        Probability that a sensory response starts with a small positive lobe, as orthodromic
        recordings do (0, the default, for the antidromic SNAPs simulated here). The truth
        onset is then the start of that lobe, which may lie below the noise.
    noise : {"white", "bandlimited", "pink", "mains", "emg", "wander"}
        Noise family (:data:`ncsproc.simulate.NOISE_FAMILIES`, definitions in
        :mod:`ncsproc.simulate.noise`); its drawn parameters go to the truth (``noise_*``).
        The family's draws come from a generator of their own, so the same seed gives the
        same responses and disturbances in every family.
    shape : {"standard", "biphasic_sharp", "triphasic", "slow_rise"}
        Unit-potential shape family of the motor units / sensory fibres
        (:data:`ncsproc.simulate.SHAPE_FAMILIES`, :mod:`ncsproc.simulate.waveforms`).
    noise_options : dict, optional
        Overrides of the family's parameters (:data:`ncsproc.simulate.noise.NOISE_OPTIONS`),
        a number to fix one or a ``(low, high)`` range, e.g. ``{"lowpass": 3000.0}``.

    Returns
    -------
    traces : xarray.Dataset
        A valid trace set (``highpass``/``lowpass`` NaN: no filter is applied). Trace ids
        ``RS<seed>-<kind>/<study>/<i>``.
    truth : xarray.Dataset
        Per-trace truth on the same ``trace`` ids: ``onset_latency``, ``peak_latency``,
        ``amplitude``, ``peak_to_peak``, ``negative_duration``, ``total_duration``,
        ``negative_area``, ``measurable_onset_latency``, ``f_latency``,
        ``f_measurable_latency``, ``has_response``, ``noise_family``, ``shape`` (definitions in
        :mod:`ncsproc.simulate.waveforms` and :data:`ncsproc.simulate.truth.TRUTH_VARS`) and
        the disturbance parameters of each trace.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if n_traces < 1:
        raise ValueError("n_traces must be >= 1")
    if shape not in SHAPE_FAMILIES:
        raise ValueError(f"shape must be one of {SHAPE_FAMILIES}, got {shape!r}")
    if noise not in NOISE_FAMILIES:
        raise ValueError(f"noise must be one of {NOISE_FAMILIES}, got {noise!r}")
    n_opts = resolve_noise_options(noise, noise_options)
    noise_rng = family_rng(seed, NOISE_STREAM)
    shape_rng = family_rng(seed, SHAPE_STREAM)
    defaults = KIND_DEFAULTS[kind]
    meta = _META[kind]
    rng = np.random.default_rng(seed)
    fs = float(sampling_rate)
    sweep = defaults["sweep"] if sweep is None else float(sweep)
    n_pre = int(round(pretrigger * fs))
    n_post = int(round(sweep * fs))
    t = sample_times(fs, n_pre, n_post)
    amp_spec = defaults["amplitude"] if amplitude is None else amplitude

    signals, records, distances, intensities = [], [], [], []
    for _ in range(n_traces):
        rec: dict = {}
        responses: list[Response] = []
        if kind == "motor":
            target = draw(rng, amp_spec, log=True)
            for _attempt in range(100):
                resp, dist, _, _, tr = _motor_trace(rng, target, shape=shape, shape_rng=shape_rng)
                if _fits(tr, sweep):
                    break
            responses.append(resp)
            rec.update(tr)
        elif kind == "sensory":
            target = draw(rng, amp_spec, log=True)
            for _attempt in range(100):
                resp, dist, init, tr = _sensory_trace(
                    rng, target, initial_positivity, shape, shape_rng
                )
                if _fits(tr, sweep):
                    break
            responses.append(resp)
            rec.update(tr)
            rec["initial_positivity"] = init
        elif kind == "fwave":
            target = draw(rng, amp_spec, log=True)
            for _attempt in range(100):
                resp, dist, nerve, factor, tr = _motor_trace(
                    rng,
                    target,
                    onset_range=(2.5e-3, 4.5e-3),
                    dist_range=(0.06, 0.08),
                    cv_range=(50.0, 65.0),
                    p_dispersed=0.0,
                    shape=shape,
                    shape_rng=shape_rng,
                )
                if _fits(tr, sweep):
                    break
            responses.append(resp)
            rec.update(tr)
            cord = draw(rng, (0.6, 0.8))
            prox = draw(rng, (1.0, 1.1))
            f_all = nerve.f_latencies(cord, prox)
            if rng.uniform() < 0.8:
                f_resp, f_amp, f_meas = _f_response(rng, nerve, factor, f_all, (100e-6, 500e-6))
                responses.append(f_resp)
                rec["f_latency"] = f_resp.start
                rec["f_amplitude"] = f_amp
                rec["f_measurable_latency"] = f_meas
        else:
            dist = draw(rng, (0.06, 0.09))
        rec["has_response"] = bool(responses) and not responses[0].empty
        if shape == "triphasic" and rec["has_response"]:
            rec["initial_positivity"] = True
        dist_params = _disturbance(
            rng, kind, defaults, noise_rms, artefact, mains, drift, offset, clip
        )
        added, keep_white, noise_params = noise_process(
            noise, t, fs, dist_params.noise_rms, noise_rng, n_opts
        )
        x, sat = render(responses, t, dist_params, rng, added_noise=added, keep_white=keep_white)
        rec.update(_dist_record(dist_params, sat))
        rec.update(noise_params, noise_family=noise, shape=shape)
        signals.append(x)
        records.append(rec)
        distances.append(dist)
        intensities.append(draw(rng, meta["stim_intensity"]))

    attrs = {"simulate_kind": kind, "simulate_seed": seed}
    families = ""
    if noise != "white" or shape != "standard":
        attrs.update(simulate_noise=noise, simulate_shape=shape)
        families = f", noise={noise!r}, shape={shape!r}"
    exam_id = f"RS{seed}-{kind}"
    ids = [f"{exam_id}/{meta['study']}/{i}" for i in range(n_traces)]
    traces = make_trace_set(
        np.vstack(signals),
        sampling_rate=fs,
        t_start=-n_pre / fs,
        exam_id=exam_id,
        subject_id=f"SIM{seed}",
        study=meta["study"],
        nerve=meta["nerve"],
        side="L",
        modality=meta["modality"],
        stim_site=meta["stim_site"],
        record_site=meta["record_site"],
        distance=distances,
        stim_intensity=intensities,
        stim_duration=2e-4,
        temperature=33.0,
        trace=ids,
        n_samples=np.full(n_traces, n_pre + n_post),
        dtype=dtype,
        attrs={"source": "ncsproc.simulate.response_set", **attrs},
        history=f"ncsproc.simulate.response_set({kind!r}, {n_traces}, seed={seed}{families})",
    )
    truth = truth_dataset(ids, records, attrs=attrs)
    return traces, truth
