"""Measurement kernels (Numba) and their numpy reference twins.

* :func:`measure_block` measures every row of a 2-D ``signal`` block (float32 or float64, any
  layout, no copy) with per-trace sampling rate, ``t_start``, ``n_samples`` and modality code,
  writing values, a status code and QC flag bits per trace.
* :mod:`ncsproc.kernels._reference` holds the numpy twin of every kernel
  (:data:`KERNEL_REFERENCES`).
* :mod:`ncsproc.kernels._params` holds the parameter table with defaults and status tags.

Public users call :func:`ncsproc.measure`; this package is the engine underneath.
"""

from ._codes import (
    F_ARTEFACT_SUBTRACTED,
    F_ARTEFACT_UNSETTLED,
    F_BASELINE_REFINED,
    F_BASELINE_SLOPE,
    F_MAINS_REMOVED,
    F_MAINS_UNCHECKED,
    F_NAN_IN_BASELINE,
    F_NO_F_WAVE,
    F_NO_RETURN,
    F_ONSET_AT_ARTEFACT,
    F_ONSET_BACKTRACKED,
    F_POSITIVE_ONSET,
    F_POST_ARTEFACT_BASELINE,
    F_PRETRIGGER_BASELINE,
    F_TWIN_PEAK,
    N_OUT,
    O_AMPLITUDE,
    O_ARTEFACT_END,
    O_BASELINE,
    O_F_LATENCY,
    O_NEG_AREA,
    O_NEG_DURATION,
    O_NOISE,
    O_ONSET,
    O_P2P,
    O_PEAK,
    O_SNR,
    O_TOTAL_DURATION,
    ST_NO_BASELINE,
    ST_NO_RESPONSE,
    ST_NONFINITE,
    ST_OK,
    ST_SATURATED,
    ST_TOO_SHORT,
    ST_WINDOW_EDGE,
)
from ._core import measure_block, measure_trace
from ._jit import JIT_OPTIONS, NUMBA_CACHE, NUMBA_DISABLED, jit
from ._params import (
    MODALITIES,
    MODALITY_CODES,
    N_PARAMS,
    PARAM_INDEX,
    PARAMS,
    ParamSpec,
    build_table,
    default_table,
    table_as_dict,
)

#: status code -> name used in the ``status`` variable of the results.
STATUS_NAMES = {
    ST_OK: "ok",
    ST_NO_RESPONSE: "no_response",
    ST_SATURATED: "saturated",
    ST_NO_BASELINE: "no_baseline",
    ST_NONFINITE: "nonfinite",
    ST_TOO_SHORT: "too_short",
    ST_WINDOW_EDGE: "window_edge",
}

#: QC flag bit -> (name, meaning), in bit order (CF flag_masks / flag_meanings).
FLAG_NAMES = {
    F_POSITIVE_ONSET: (
        "positive_onset",
        "the response starts with a positive deflection; "
        "the onset is that deflection's departure from baseline",
    ),
    F_PRETRIGGER_BASELINE: ("pretrigger_baseline", "baseline from the pre-trigger segment"),
    F_POST_ARTEFACT_BASELINE: (
        "post_artefact_baseline",
        "baseline from a quiet window after the stimulus artefact",
    ),
    F_NO_F_WAVE: ("no_f_wave", "F-wave trace without a late response (f_latency is NaN)"),
    F_NO_RETURN: (
        "no_return_to_baseline",
        "a negative lobe does not return to baseline in "
        "the search window (durations and area are NaN)",
    ),
    F_NAN_IN_BASELINE: ("nan_in_baseline", "non-finite samples in the baseline were ignored"),
    F_ARTEFACT_UNSETTLED: (
        "artefact_unsettled",
        "the stimulus artefact did not settle within blank_max",
    ),
    F_ONSET_AT_ARTEFACT: (
        "onset_at_artefact_end",
        "the onset reached the end of the artefact: the true onset may be hidden in it",
    ),
    F_TWIN_PEAK: (
        "twin_peak",
        "the two deepest negative lobes are within the noise of each other: which one is the "
        "negative peak (its latency) is decided by the noise",
    ),
    F_ARTEFACT_SUBTRACTED: (
        "artefact_subtracted",
        "a fitted stimulus-artefact decay was subtracted before measuring",
    ),
    F_ONSET_BACKTRACKED: (
        "onset_backtracked",
        "no leading-edge line could be fitted: the onset is the interpolated threshold "
        "crossing (late by the edge's rise from baseline to the threshold)",
    ),
    F_BASELINE_REFINED: (
        "baseline_refined",
        "the baseline level is the local level just before the response, which differs "
        "from the quiet window's level by more than one SD of the smoothed noise "
        "(drift or wander)",
    ),
    F_MAINS_REMOVED: (
        "mains_removed",
        "50/60 Hz mains and its harmonics were fitted on the pre-trigger and subtracted",
    ),
    F_MAINS_UNCHECKED: (
        "mains_unchecked",
        "the baseline is too short (under mains_baseline) to fit mains interference: any hum "
        "stays in the signal",
    ),
    F_BASELINE_SLOPE: (
        "baseline_slope",
        "the baseline is a fitted straight line (significant drift), not a constant",
    ),
}
FLAG_NAMES = dict(sorted(FLAG_NAMES.items()))

__all__ = [
    "O_P2P",
    "F_ARTEFACT_SUBTRACTED",
    "F_ARTEFACT_UNSETTLED",
    "F_BASELINE_REFINED",
    "F_BASELINE_SLOPE",
    "F_NAN_IN_BASELINE",
    "F_NO_F_WAVE",
    "F_NO_RETURN",
    "F_ONSET_AT_ARTEFACT",
    "F_ONSET_BACKTRACKED",
    "F_TWIN_PEAK",
    "F_MAINS_REMOVED",
    "F_MAINS_UNCHECKED",
    "ST_WINDOW_EDGE",
    "F_POSITIVE_ONSET",
    "F_POST_ARTEFACT_BASELINE",
    "F_PRETRIGGER_BASELINE",
    "O_AMPLITUDE",
    "O_ARTEFACT_END",
    "O_BASELINE",
    "O_F_LATENCY",
    "O_NEG_AREA",
    "O_NEG_DURATION",
    "O_NOISE",
    "O_ONSET",
    "O_PEAK",
    "O_SNR",
    "O_TOTAL_DURATION",
    "ST_NONFINITE",
    "ST_NO_BASELINE",
    "ST_NO_RESPONSE",
    "ST_OK",
    "ST_SATURATED",
    "ST_TOO_SHORT",
    "FLAG_NAMES",
    "JIT_OPTIONS",
    "MODALITIES",
    "MODALITY_CODES",
    "NUMBA_CACHE",
    "NUMBA_DISABLED",
    "N_OUT",
    "N_PARAMS",
    "PARAMS",
    "PARAM_INDEX",
    "ParamSpec",
    "STATUS_NAMES",
    "build_table",
    "default_table",
    "jit",
    "measure_block",
    "measure_trace",
    "table_as_dict",
]
