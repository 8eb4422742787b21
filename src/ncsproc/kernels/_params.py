"""Measurement parameters: one table that the kernels, the measure layer and the docs share.

Each parameter has a default per modality (``motor``, ``sensory``, ``fwave``), SI units and a
status tag in the sense of ``shared/reference/ncs-domain.md``: ``[P]`` is an engineering
proposal of the domain reference (section 1.4 "Pipeline proposal"), ``[P-ncsproc]`` a choice of
this project (not in the reference), validated only against the simulator, ``[C]`` a value
confirmed in a published source. Every value is recorded with every result, and every value can
be changed per call (``ncsproc.measure(traces, k_detect=5)`` for all modalities or
``ncsproc.measure(traces, sensory={"k_detect": 5})`` for one).

The kernels receive the table as a float64 array of shape ``(3, N_PARAMS)`` (row = modality
code, column = parameter index); times are converted to samples inside the kernel with each
trace's own sampling rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODALITY_CODES = {"motor": 0, "sensory": 1, "fwave": 2}
MODALITIES = tuple(MODALITY_CODES)


@dataclass(frozen=True)
class ParamSpec:
    """One measurement parameter."""

    name: str
    motor: float
    sensory: float
    fwave: float
    units: str
    tag: str
    description: str


ms = 1e-3
uV = 1e-6

PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "k_detect",
        4.0,
        4.0,
        4.0,
        "noise SD",
        "[P]",
        "detection threshold for a departure from baseline, in SDs of the noise of the "
        "smoothed signal (reference 1.4 step 3: k = 3-5)",
    ),
    ParamSpec(
        "k_response",
        6.0,
        6.0,
        6.0,
        "noise SD",
        "[P-ncsproc]",
        "a response exists when its negative peak is at least max(k_response, k_detect) "
        "SDs of the smoothed noise (and min_amplitude) below baseline: the no-response "
        "decision (reference 1.4 step 7); k_detect then finds where it starts",
    ),
    ParamSpec(
        "baseline_drift",
        1.0,
        1.0,
        0.0,
        "1",
        "[P-ncsproc]",
        "1: the refined baseline may be a straight line when its slope is significant "
        "(> 3 standard errors; slow drift), 0: always a constant (F-wave traces: the line "
        "would be extrapolated over tens of ms to the F wave)",
    ),
    ParamSpec(
        "k_settle",
        4.0,
        4.0,
        4.0,
        "noise SD",
        "[P]",
        "the stimulus artefact ends when the (artefact-corrected) signal is back within "
        "baseline +- k_settle noise SDs for `settle` (reference 1.4 step 2, adaptive "
        "blanking)",
    ),
    ParamSpec(
        "k_back",
        1.0,
        1.0,
        1.0,
        "noise SD",
        "[P]",
        "onset back-tracking: walk back from the detected departure to the last sample "
        "within k_back SDs of the baseline (reference 1.4 step 3: 'within 1 SD')",
    ),
    ParamSpec(
        "min_sustain",
        0.2 * ms,
        0.1 * ms,
        0.2 * ms,
        "s",
        "[P]",
        "a departure must stay beyond k_detect for this long (reference 1.4 step 3: "
        ">=0.2 ms CMAP, >=0.1 ms SNAP)",
    ),
    ParamSpec(
        "smooth",
        0.15 * ms,
        0.25 * ms,
        0.15 * ms,
        "s",
        "[P-ncsproc]",
        "width of the centred moving average used for detection, durations and area "
        "(rounded to an odd number of samples, at least 1)",
    ),
    ParamSpec(
        "pretrigger_min",
        1.0 * ms,
        1.0 * ms,
        1.0 * ms,
        "s",
        "[P]",
        "shortest pre-trigger segment used as the baseline (reference 1.4 step 1: >=1-2 ms); "
        "shorter ones are ignored and the post-artefact window is used",
    ),
    ParamSpec(
        "baseline_max",
        20.0 * ms,
        20.0 * ms,
        20.0 * ms,
        "s",
        "[P-ncsproc]",
        "longest baseline window (the part of the pre-trigger nearest the stimulus)",
    ),
    ParamSpec(
        "baseline_min",
        0.5 * ms,
        0.5 * ms,
        0.5 * ms,
        "s",
        "[P-ncsproc]",
        "shortest post-artefact baseline window",
    ),
    ParamSpec(
        "earliest_onset",
        1.5 * ms,
        1.0 * ms,
        1.5 * ms,
        "s",
        "[P]",
        "earliest physiologically possible onset; the post-artefact baseline window ends "
        "here (reference 1.4 step 1)",
    ),
    ParamSpec(
        "blank_min",
        0.1 * ms,
        0.1 * ms,
        0.1 * ms,
        "s",
        "[P]",
        "the artefact is blanked for at least this long after the stimulus",
    ),
    ParamSpec(
        "blank_max",
        3.0 * ms,
        3.0 * ms,
        3.0 * ms,
        "s",
        "[P-ncsproc]",
        "an artefact that has not settled by then leaves no usable baseline "
        "(status no_baseline, flag artefact_unsettled; saturated when the amplifier "
        "clipped after blank_max)",
    ),
    ParamSpec(
        "settle",
        0.1 * ms,
        0.1 * ms,
        0.1 * ms,
        "s",
        "[P-ncsproc]",
        "how long the signal must stay within the settle band to end the artefact",
    ),
    ParamSpec(
        "search_end",
        40.0 * ms,
        15.0 * ms,
        40.0 * ms,
        "s",
        "[P-ncsproc]",
        "end of the window searched for the response's negative peak (for F-wave traces "
        "the M wave, the largest response; its lobes end where it has returned to "
        "baseline, and the F-wave search starts there)",
    ),
    ParamSpec(
        "max_gap",
        1.0 * ms,
        0.5 * ms,
        1.0 * ms,
        "s",
        "[P-ncsproc]",
        "longest quiet gap (deviation within k_detect SD) allowed between the first "
        "departure and the negative peak: a departure followed by a longer gap does not "
        "lead into the response",
    ),
    ParamSpec(
        "lobe_fraction",
        0.10,
        0.10,
        0.10,
        "1",
        "[P]",
        "a negative lobe counts for total duration when its depth is at least this "
        "fraction of the amplitude (reference 1.4 step 6: 'e.g. 10 % of peak')",
    ),
    ParamSpec(
        "min_amplitude",
        10.0 * uV,
        0.5 * uV,
        10.0 * uV,
        "V",
        "[P]",
        "absolute floor under the detection threshold: a response must be at least this "
        "large (reference 1.4 step 7: max(k SD, absolute floor))",
    ),
    ParamSpec(
        "saturation_run",
        0.25 * ms,
        0.25 * ms,
        0.25 * ms,
        "s",
        "[P-ncsproc]",
        "a run of identical raw samples this long (at least 3) at the extreme around the "
        "negative or the positive peak, farther from baseline than a response must be, "
        "means the amplifier clipped (status saturated)",
    ),
    ParamSpec(
        "noise_block",
        0.8 * ms,
        0.8 * ms,
        0.8 * ms,
        "s",
        "[P-ncsproc]",
        "block length of the noise estimate: 25th percentile over the trace of the "
        "per-block RMS of second differences / sqrt(6), corrected to a Gaussian SD (at "
        "least 8 samples per block; smooth responses and artefact tails barely count)",
    ),
    ParamSpec(
        "peak_fit",
        0.8 * ms,
        0.5 * ms,
        0.8 * ms,
        "s",
        "[P-ncsproc]",
        "width of the least-squares parabola fitted to the raw samples around the "
        "smoothed minimum (sub-sample peak latency and amplitude; its vertex must lie "
        "inside the fitted samples, else the smoothed minimum is used)",
    ),
    ParamSpec(
        "edge_power",
        2.5,
        1.75,
        2.5,
        "1",
        "[P-ncsproc]",
        "onset extrapolation: the leading edge of the first lobe, between k_detect SD and "
        "edge_fraction of the lobe's peak, is fitted as c (t - onset)^edge_power (a "
        "compound potential of many units starts between quadratically and cubically); "
        "the onset is where the fit meets the baseline",
    ),
    ParamSpec(
        "edge_fraction",
        0.2,
        0.2,
        0.2,
        "1",
        "[P-ncsproc]",
        "upper end of the leading-edge fit, as a fraction of the first lobe's peak",
    ),
    ParamSpec(
        "artefact_tau_min",
        0.02 * ms,
        0.02 * ms,
        0.02 * ms,
        "s",
        "[P-ncsproc]",
        "shortest time constant of the artefact model (c0 + c1 t/tau) exp(-t/tau)",
    ),
    ParamSpec(
        "artefact_tau_max",
        1.0 * ms,
        1.0 * ms,
        1.0 * ms,
        "s",
        "[P-ncsproc]",
        "longest time constant of the artefact model; the model is fitted between "
        "blank_min and earliest_onset and subtracted when it explains the samples there",
    ),
    ParamSpec(
        "k_fit",
        3.0,
        3.0,
        3.0,
        "noise SD",
        "[P-ncsproc]",
        "largest residual RMS (noise SDs) of an accepted artefact fit; 0 = never subtract",
    ),
    ParamSpec(
        "k_dip",
        5.0,
        4.0,
        5.0,
        "noise SD",
        "[P-ncsproc]",
        "initial positivity too small for k_detect: the positive run of the smoothed "
        "signal just before a negative departure (no longer than max_gap, at least "
        "min_sustain) is the onset when its summed raw deviation exceeds k_dip noise SDs "
        "of that sum (reference 1.4 step 4); 0 turns the search off",
    ),
    ParamSpec(
        "f_edge_power",
        1.0,
        1.0,
        1.0,
        "1",
        "[P-ncsproc]",
        "F-wave traces: edge_power of the late response (a few units: a first-order start)",
    ),
    ParamSpec(
        "f_start",
        15.0 * ms,
        15.0 * ms,
        15.0 * ms,
        "s",
        "[P-ncsproc]",
        "F-wave traces: earliest F-wave onset searched",
    ),
    ParamSpec(
        "f_end",
        np.inf,
        np.inf,
        np.inf,
        "s",
        "[P-ncsproc]",
        "F-wave traces: end of the F-wave search (inf: the end of the sweep)",
    ),
    ParamSpec(
        "f_gap",
        1.0 * ms,
        1.0 * ms,
        1.0 * ms,
        "s",
        "[P-ncsproc]",
        "F-wave traces: the M wave has returned to baseline at the first run of f_gap "
        "within k_f SD of the baseline after its negative peak (its positive phase "
        "included); the F search starts there",
    ),
    ParamSpec(
        "k_f",
        4.0,
        4.0,
        4.0,
        "noise SD",
        "[P]",
        "F-wave detection threshold in SDs of the smoothed noise",
    ),
    ParamSpec(
        "f_sustain",
        0.2 * ms,
        0.2 * ms,
        0.2 * ms,
        "s",
        "[P]",
        "an F-wave departure must stay beyond k_f for this long",
    ),
    ParamSpec(
        "peak_smoothed",
        1.0,
        1.0,
        0.0,
        "1",
        "[P-ncsproc]",
        "1: the peak latency is the vertex of the same parabola fitted to the smoothed "
        "signal (averaging does not move a parabola's vertex, and lowers the noise); the "
        "amplitude stays the raw fit's. On for SNAPs (+0.4 to +1.5 points of peak latencies "
        "within one sample on six simulated seeds) and, with peak_fit_exponent, for CMAPs",
    ),
    ParamSpec(
        "peak_fit_exponent",
        0.1,
        0.5,
        0.0,
        "1",
        "[P-ncsproc]",
        "the latency fit's half-width is that of peak_fit times (20 / SNR)^peak_fit_exponent "
        "(SNR = amplitude / noise SD; rounded, 2 samples to 3 times peak_fit's): narrow "
        "where the noise is low (less shape bias), wide where it is high (less noise in "
        "the vertex). 0: always peak_fit. SNAPs 0.5, chosen on seeds 5, 11, 77 and 150 "
        "(peak latencies within one sample 95.2 -> 96.7 %); CMAPs 0.1 with peak_smoothed, "
        "chosen on seeds 5, 77 and 150 (99.0 -> 99.5 %)",
    ),
)

PEAK_FIT_REF_SNR = 20.0
"""SNR (amplitude / noise SD) at which the latency fit is ``peak_fit`` wide."""

PARAM_INDEX = {p.name: i for i, p in enumerate(PARAMS)}
N_PARAMS = len(PARAMS)

# Explicit names for the kernels (numba needs plain globals; kept in step by a test).
P_K_DETECT = 0
P_K_RESPONSE = 1
P_BASELINE_DRIFT = 2
P_K_SETTLE = 3
P_K_BACK = 4
P_MIN_SUSTAIN = 5
P_SMOOTH = 6
P_PRETRIGGER_MIN = 7
P_BASELINE_MAX = 8
P_BASELINE_MIN = 9
P_EARLIEST_ONSET = 10
P_BLANK_MIN = 11
P_BLANK_MAX = 12
P_SETTLE = 13
P_SEARCH_END = 14
P_MAX_GAP = 15
P_LOBE_FRACTION = 16
P_MIN_AMPLITUDE = 17
P_SATURATION_RUN = 18
P_NOISE_BLOCK = 19
P_PEAK_FIT = 20
P_EDGE_POWER = 21
P_EDGE_FRACTION = 22
P_ARTEFACT_TAU_MIN = 23
P_ARTEFACT_TAU_MAX = 24
P_K_FIT = 25
P_K_DIP = 26
P_F_EDGE_POWER = 27
P_F_START = 28
P_F_END = 29
P_F_GAP = 30
P_K_F = 31
P_F_SUSTAIN = 32
P_PEAK_SMOOTHED = 33
P_PEAK_FIT_EXPONENT = 34


def default_table() -> np.ndarray:
    """Return the default parameters as a ``(3, N_PARAMS)`` float64 array."""
    return np.array([[getattr(p, m) for p in PARAMS] for m in MODALITIES], dtype=np.float64)


def build_table(overrides: dict | None = None) -> np.ndarray:
    """Build the parameter table from keyword overrides, checking every name and value.

    ``overrides`` maps a parameter name to a value for every modality, or a modality name
    (``motor``, ``sensory``, ``fwave``) to a dict of parameter values for that modality.
    """
    table = default_table()
    for key, value in (overrides or {}).items():
        if key in MODALITY_CODES:
            if not isinstance(value, dict):
                raise ValueError(
                    f"parameter group {key!r} must be a dict of parameter values, got {value!r}"
                )
            for name, v in value.items():
                _set(table, name, v, MODALITY_CODES[key])
        else:
            _set(table, key, value, None)
    return table


def _set(table: np.ndarray, name: str, value, row: int | None) -> None:
    if name not in PARAM_INDEX:
        known = ", ".join(sorted(PARAM_INDEX))
        raise ValueError(f"unknown measurement parameter {name!r}; known parameters: {known}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"parameter {name!r} must be a number, got {value!r}") from None
    if np.isnan(v) or v < 0 or (np.isinf(v) and name != "f_end"):
        raise ValueError(
            f"parameter {name!r} must be a finite number >= 0 (f_end may be inf), got {value!r}"
        )
    if name in ("lobe_fraction", "edge_fraction") and not 0 < v < 1:
        raise ValueError(f"parameter {name!r} must be between 0 and 1, got {value!r}")
    if (
        name
        in (
            "k_detect",
            "k_f",
            "noise_block",
            "smooth",
            "settle",
            "edge_power",
            "f_edge_power",
            "edge_fraction",
            "artefact_tau_min",
            "artefact_tau_max",
        )
        and v == 0
    ):
        raise ValueError(f"parameter {name!r} must be > 0, got {value!r}")
    if row is None:
        table[:, PARAM_INDEX[name]] = v
    else:
        table[row, PARAM_INDEX[name]] = v


def table_as_dict(table: np.ndarray) -> dict:
    """Return ``{modality: {name: value}}`` (JSON-ready; inf stays a float)."""
    return {
        m: {p.name: float(table[r, i]) for i, p in enumerate(PARAMS)}
        for m, r in MODALITY_CODES.items()
    }
