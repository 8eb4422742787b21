"""Measurement parameters: one table that the kernels, the measure layer and the docs share.

Each parameter has a default per modality (``motor``, ``sensory``, ``fwave``, ``mep``), SI units
and a status tag in the sense of ``shared/reference/ncs-domain.md``: ``[P]`` is an engineering
proposal of the domain reference (section 1.4 "Pipeline proposal"), ``[P-ncsproc]`` a choice of
this project (not in the reference), validated only against the simulator and the real sweeps of
``data_samples/real/``, ``[C]`` a value confirmed in a published source. Every value is recorded
with every result, and every value can be changed per call (``ncsproc.measure(traces,
k_detect=5)`` for all modalities or ``ncsproc.measure(traces, sensory={"k_detect": 5})`` for
one). The ``mep`` row is the MEP preset: transcranial motor evoked potentials, a 10-80 ms
search window and the pre-trigger baseline.

The kernels receive the table as a float64 array of shape ``(4, N_PARAMS)`` (row = modality
code, column = parameter index); times are converted to samples inside the kernel with each
trace's own sampling rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODALITY_CODES = {"motor": 0, "sensory": 1, "fwave": 2, "mep": 3}
MODALITIES = tuple(MODALITY_CODES)
FWAVE_CODE = 2


@dataclass(frozen=True)
class ParamSpec:
    """One measurement parameter: its default per modality, units, status tag and meaning."""

    name: str
    motor: float
    sensory: float
    fwave: float
    mep: float
    units: str
    tag: str
    description: str


ms = 1e-3
uV = 1e-6


def _p(name, values, units, tag, description):
    motor, sensory, fwave, mep = values
    return ParamSpec(name, motor, sensory, fwave, mep, units, tag, description)


# fmt: off
PARAMS: tuple[ParamSpec, ...] = (
    _p("k_detect", (4.0, 4.0, 4.0, 4.0), "noise SD", "[P]",
       "detection threshold for a departure from baseline, in SDs of the noise of the smoothed "
       "signal in the quiet window (reference 1.4 step 3: k = 3-5)"),
    _p("k_response", (6.0, 6.0, 6.0, 6.0), "noise SD", "[P-ncsproc]",
       "a response exists when its peak is at least k_response SDs of the decision noise (the "
       "spread, over the quiet window, of the smoothed signal at the peak's distance from a "
       "local baseline) and min_amplitude from the local baseline (reference 1.4 step 7)"),
    _p("baseline_drift", (1.0, 1.0, 0.0, 1.0), "1", "[P-ncsproc]",
       "1: the pre-trigger baseline may be a straight line when its slope is significant "
       "(> 3 standard errors) and the pre-trigger is at least local_baseline x 4 long; 0: a "
       "constant (F-wave traces: a line would be extrapolated over tens of ms)"),
    _p("k_settle", (4.0, 4.0, 4.0, 4.0), "noise SD", "[P]",
       "the stimulus artefact ends when the (artefact-corrected) signal is back within "
       "baseline +- k_settle noise SDs for `settle` (reference 1.4 step 2, adaptive blanking)"),
    _p("min_sustain", (0.2 * ms, 0.1 * ms, 0.2 * ms, 0.5 * ms), "s", "[P]",
       "a departure must stay beyond k_detect for this long (reference 1.4 step 3: >=0.2 ms "
       "CMAP, >=0.1 ms SNAP)"),
    _p("smooth", (0.15 * ms, 0.25 * ms, 0.15 * ms, 0.3 * ms), "s", "[P-ncsproc]",
       "width of the centred moving average used for detection, durations and area (rounded "
       "to an odd number of samples, at least 1: at 3 kHz a 0.15 ms average is one sample)"),
    _p("pretrigger_min", (1.0 * ms, 1.0 * ms, 1.0 * ms, 1.0 * ms), "s", "[P]",
       "shortest pre-trigger segment used as the baseline (reference 1.4 step 1: >=1-2 ms); "
       "shorter ones are ignored and the quiet window after the artefact is used"),
    _p("baseline_max", (20.0 * ms, 20.0 * ms, 20.0 * ms, 50.0 * ms), "s", "[P-ncsproc]",
       "longest pre-trigger baseline window (the part nearest the stimulus)"),
    _p("baseline_min", (0.5 * ms, 0.5 * ms, 0.5 * ms, 0.5 * ms), "s", "[P-ncsproc]",
       "shortest post-artefact baseline window"),
    _p("earliest_onset", (1.5 * ms, 1.0 * ms, 1.5 * ms, 10.0 * ms), "s", "[P]",
       "earliest physiologically possible onset; the first post-artefact baseline window ends "
       "here (reference 1.4 step 1); MEP preset: 10 ms"),
    _p("blank_min", (0.1 * ms, 0.1 * ms, 0.1 * ms, 0.1 * ms), "s", "[P]",
       "the artefact is blanked for at least this long after the stimulus"),
    _p("blank_max", (3.0 * ms, 3.0 * ms, 3.0 * ms, 10.0 * ms), "s", "[P-ncsproc]",
       "an artefact that has not settled by then leaves no usable baseline (status "
       "no_baseline, flag artefact_unsettled; saturated when the amplifier clipped after "
       "blank_max); it must not exceed earliest_onset"),
    _p("settle", (0.1 * ms, 0.1 * ms, 0.1 * ms, 0.3 * ms), "s", "[P-ncsproc]",
       "how long the signal must stay within the settle band to end the artefact"),
    _p("search_end", (40.0 * ms, 15.0 * ms, 40.0 * ms, 80.0 * ms), "s", "[P-ncsproc]",
       "end of the window searched for the response's peak (for F-wave traces the M wave); a "
       "peak on the window's edge gets status window_edge; MEP preset: 80 ms"),
    _p("max_gap", (1.0 * ms, 0.5 * ms, 1.0 * ms, 3.0 * ms), "s", "[P-ncsproc]",
       "longest quiet gap (deviation within k_detect SD) allowed between the first departure "
       "and the peak"),
    _p("lobe_fraction", (0.10, 0.10, 0.10, 0.10), "1", "[P]",
       "a negative lobe counts for total duration when its depth is at least this fraction of "
       "the amplitude (reference 1.4 step 6: 'e.g. 10 % of peak')"),
    _p("min_amplitude", (10.0 * uV, 0.5 * uV, 10.0 * uV, 25.0 * uV), "V", "[P]",
       "absolute floor of a response's peak (reference 1.4 step 7: max(k SD, absolute floor)); "
       "MEP preset 25 uV from baseline, half the customary 50 uV peak-to-peak MEP criterion "
       "[P-ncsproc]"),
    _p("saturation_run", (0.25 * ms, 0.25 * ms, 0.25 * ms, 0.25 * ms), "s", "[P-ncsproc]",
       "a run of identical raw samples this long (at least 3) at the extreme around a peak, "
       "farther from baseline than a response must be, means the amplifier clipped"),
    _p("noise_block", (0.8 * ms, 0.8 * ms, 0.8 * ms, 0.8 * ms), "s", "[P-ncsproc]",
       "block length of the preliminary noise estimate used only to judge the artefact model "
       "when there is no pre-trigger (second differences; a lower bound of coloured noise)"),
    _p("peak_fit", (0.8 * ms, 0.5 * ms, 0.8 * ms, 2.0 * ms), "s", "[P-ncsproc]",
       "width of the least-squares parabola fitted to the raw samples around the smoothed "
       "minimum (sub-sample peak latency and amplitude; at least 5 samples at any rate)"),
    _p("onset_fraction", (0.01, 0.01, 0.01, 0.01), "1", "[P-ncsproc]",
       "the onset is where the leading edge reaches this fraction of the amplitude (the "
       "measurable onset of issue 14: 1 % of the baseline-to-negative-peak amplitude)"),
    _p("edge_top", (0.10, 0.10, 0.10, 0.10), "1", "[P-ncsproc]",
       "the leading edge is fitted by a straight line from the detection threshold up to this "
       "fraction of the first lobe's peak (at least edge_span thresholds) and extended to the "
       "onset_fraction level: no power law, so the fit follows any rise curve"),
    _p("edge_span", (2.5, 2.5, 2.5, 2.5), "1", "[P-ncsproc]",
       "the leading-edge fit reaches at least this many detection thresholds"),
    _p("quiet_extension", (3.0, 3.0, 3.0, 3.0), "1", "[P-ncsproc]",
       "first guess of the quiet stretch before the response: it ends this many half-rise "
       "times (50 % point to peak) before the 50 % point (on simulated CMAPs and SNAPs of every "
       "shape family the measurable onset lies at most 2.5 of them before it in 99 %); the "
       "second pass ends it max_gap before the first pass's onset"),
    _p("local_baseline", (1.0 * ms, 0.5 * ms, 1.0 * ms, 5.0 * ms), "s", "[P-ncsproc]",
       "the baseline level the onset and the amplitude refer to is the median of the smoothed "
       "signal over this window at the end of the quiet window (drift and wander)"),
    _p("mains_baseline", (40.0 * ms, 40.0 * ms, 40.0 * ms, 40.0 * ms), "s", "[P-ncsproc]",
       "shortest clean pre-trigger on which 50/60 Hz mains and harmonics 2-5 are fitted (two "
       "50 Hz periods: the fit on the first 60 % must predict the rest); with a shorter one "
       "mains cannot be checked (flag mains_unchecked)"),
    _p("k_mains", (3.0, 3.0, 3.0, 3.0), "noise SD", "[P-ncsproc]",
       "the mains fit is subtracted when it lowers the baseline SSE by more than k_mains^2 "
       "noise variances per fitted coefficient; 0 turns mains removal off"),
    _p("artefact_tau_min", (0.02 * ms, 0.02 * ms, 0.02 * ms, 0.02 * ms), "s", "[P-ncsproc]",
       "shortest time constant of the artefact model (c0 + c1 t/tau) exp(-t/tau)"),
    _p("artefact_tau_max", (1.0 * ms, 1.0 * ms, 1.0 * ms, 1.0 * ms), "s", "[P-ncsproc]",
       "longest time constant of the artefact model; the model is fitted between blank_min "
       "and earliest_onset when the signal there departs from baseline"),
    _p("k_fit", (3.0, 3.0, 3.0, 3.0), "noise SD", "[P-ncsproc]",
       "largest residual RMS (noise SDs) of an accepted artefact fit; 0 = never subtract"),
    _p("k_dip", (5.0, 4.0, 5.0, 5.0), "noise SD", "[P-ncsproc]",
       "initial positivity too small for k_detect: the positive run of the smoothed signal "
       "just before a negative departure (no longer than max_gap, at least min_sustain) is the "
       "onset when its summed raw deviation exceeds k_dip noise SDs of that sum (reference 1.4 "
       "step 4); 0 turns the search off"),
    _p("f_start", (15.0 * ms, 15.0 * ms, 15.0 * ms, 15.0 * ms), "s", "[P-ncsproc]",
       "F-wave traces: earliest F-wave onset searched"),
    _p("f_end", (np.inf, np.inf, np.inf, np.inf), "s", "[P-ncsproc]",
       "F-wave traces: end of the F-wave search (inf: the end of the sweep)"),
    _p("f_gap", (1.0 * ms, 1.0 * ms, 1.0 * ms, 1.0 * ms), "s", "[P-ncsproc]",
       "F-wave traces: the M wave has returned to baseline at the first run of f_gap within "
       "k_f SD of the baseline after its negative peak; the F search starts there"),
    _p("k_f", (4.0, 4.0, 4.0, 4.0), "noise SD", "[P]",
       "F-wave detection threshold in SDs of the smoothed noise"),
    _p("f_sustain", (0.2 * ms, 0.2 * ms, 0.2 * ms, 0.2 * ms), "s", "[P]",
       "an F-wave departure must stay beyond k_f for this long"),
    _p("peak_smoothed", (1.0, 1.0, 0.0, 1.0), "1", "[P-ncsproc]",
       "1: the peak latency is the vertex of the same parabola fitted to the smoothed signal "
       "(averaging does not move a parabola's vertex, and lowers the noise); the amplitude "
       "stays the raw fit's"),
    _p("peak_fit_exponent", (0.1, 0.5, 0.0, 0.0), "1", "[P-ncsproc]",
       "the latency fit's half-width is that of peak_fit times (20 / SNR)^peak_fit_exponent "
       "(rounded, 2 samples to 3 times peak_fit's): narrow where the noise is low, wide where "
       "it is high; 0: always peak_fit"),
    _p("k_twin", (2.0, 2.0, 2.0, 2.0), "noise SD", "[P-ncsproc]",
       "flag twin_peak when the two deepest negative lobes differ by less than k_twin sqrt(2) "
       "SDs of the smoothed noise: which one is 'the' peak is then decided by the noise"),
    _p("response_either", (0.0, 0.0, 0.0, 1.0), "1", "[P-ncsproc]",
       "1: a response is decided on its larger excursion of either polarity (MEPs are often "
       "positive first); the amplitude stays baseline to negative peak"),
)
# fmt: on

PEAK_FIT_REF_SNR = 20.0
"""SNR (amplitude / noise SD) at which the latency fit is ``peak_fit`` wide."""

PARAM_INDEX = {p.name: i for i, p in enumerate(PARAMS)}
N_PARAMS = len(PARAMS)

# Explicit names for the kernels (numba needs plain globals; kept in step by a test).
P_K_DETECT = 0
P_K_RESPONSE = 1
P_BASELINE_DRIFT = 2
P_K_SETTLE = 3
P_MIN_SUSTAIN = 4
P_SMOOTH = 5
P_PRETRIGGER_MIN = 6
P_BASELINE_MAX = 7
P_BASELINE_MIN = 8
P_EARLIEST_ONSET = 9
P_BLANK_MIN = 10
P_BLANK_MAX = 11
P_SETTLE = 12
P_SEARCH_END = 13
P_MAX_GAP = 14
P_LOBE_FRACTION = 15
P_MIN_AMPLITUDE = 16
P_SATURATION_RUN = 17
P_NOISE_BLOCK = 18
P_PEAK_FIT = 19
P_ONSET_FRACTION = 20
P_EDGE_TOP = 21
P_EDGE_SPAN = 22
P_QUIET_EXTENSION = 23
P_LOCAL_BASELINE = 24
P_MAINS_BASELINE = 25
P_K_MAINS = 26
P_ARTEFACT_TAU_MIN = 27
P_ARTEFACT_TAU_MAX = 28
P_K_FIT = 29
P_K_DIP = 30
P_F_START = 31
P_F_END = 32
P_F_GAP = 33
P_K_F = 34
P_F_SUSTAIN = 35
P_PEAK_SMOOTHED = 36
P_PEAK_FIT_EXPONENT = 37
P_K_TWIN = 38
P_RESPONSE_EITHER = 39

_POSITIVE = {
    "k_detect", "k_f", "noise_block", "smooth", "settle", "edge_top", "edge_span",
    "artefact_tau_min", "artefact_tau_max", "onset_fraction", "quiet_extension",
    "local_baseline", "peak_fit", "min_sustain", "f_sustain", "baseline_min", "baseline_max",
    "search_end", "mains_baseline",
}  # fmt: skip
_FRACTIONS = {"lobe_fraction", "edge_top", "onset_fraction"}
_SWITCHES = {"baseline_drift", "peak_smoothed", "response_either"}
# (smaller, larger): the first must not exceed the second, in every modality
_ORDERED = (
    ("blank_min", "blank_max"),
    ("baseline_min", "baseline_max"),
    ("artefact_tau_min", "artefact_tau_max"),
    ("earliest_onset", "search_end"),
    ("f_start", "f_end"),
    ("onset_fraction", "edge_top"),
)


def default_table() -> np.ndarray:
    """Return the default parameters as a ``(4, N_PARAMS)`` float64 array."""
    return np.array([[getattr(p, m) for p in PARAMS] for m in MODALITIES], dtype=np.float64)


def build_table(overrides: dict | None = None) -> np.ndarray:
    """Build the parameter table from keyword overrides, checking every name and value.

    ``overrides`` maps a parameter name to a value for every modality, or a modality name
    (``motor``, ``sensory``, ``fwave``, ``mep``) to a dict of parameter values for that
    modality. Inconsistent settings (``blank_min > blank_max``, a search window that ends
    before it starts, ...) raise one :class:`ValueError` naming the settings.
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
    _check_consistent(table)
    return table


def _set(table: np.ndarray, name: str, value, row: int | None) -> None:
    if name not in PARAM_INDEX:
        known = ", ".join(sorted(PARAM_INDEX))
        raise ValueError(f"unknown measurement parameter {name!r}; known parameters: {known}")
    if isinstance(value, bool):
        value = float(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"parameter {name!r} must be a number, got {value!r}") from None
    if np.isnan(v) or v < 0 or (np.isinf(v) and name != "f_end"):
        raise ValueError(
            f"parameter {name!r} must be a finite number >= 0 (f_end may be inf), got {value!r}"
        )
    if name in _FRACTIONS and not 0 < v < 1:
        raise ValueError(f"parameter {name!r} must be between 0 and 1, got {value!r}")
    if name in _SWITCHES and v not in (0.0, 1.0):
        raise ValueError(f"parameter {name!r} is a switch: 0 or 1, got {value!r}")
    if name in _POSITIVE and v == 0:
        raise ValueError(f"parameter {name!r} must be > 0, got {value!r}")
    if row is None:
        table[:, PARAM_INDEX[name]] = v
    else:
        table[row, PARAM_INDEX[name]] = v


def _check_consistent(table: np.ndarray) -> None:
    for small, large in _ORDERED:
        a = table[:, PARAM_INDEX[small]]
        b = table[:, PARAM_INDEX[large]]
        bad = [m for m, r in MODALITY_CODES.items() if a[r] > b[r]]
        if bad:
            r = MODALITY_CODES[bad[0]]
            raise ValueError(
                f"measurement settings {small}={a[r]:g} and {large}={b[r]:g} are inconsistent "
                f"for {', '.join(bad)}: {small} must not exceed {large}"
            )


def table_as_dict(table: np.ndarray) -> dict:
    """Return ``{modality: {name: value}}`` (JSON-ready; inf stays a float)."""
    return {
        m: {p.name: float(table[r, i]) for i, p in enumerate(PARAMS)}
        for m, r in MODALITY_CODES.items()
    }
