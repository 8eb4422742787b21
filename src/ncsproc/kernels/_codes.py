"""Output slots, status codes, QC flag bits and fixed constants of the kernels (one place)."""

from __future__ import annotations

# ---- outputs ------------------------------------------------------------------------------
O_ONSET = 0
O_PEAK = 1
O_AMPLITUDE = 2
O_P2P = 3
O_NEG_DURATION = 4
O_TOTAL_DURATION = 5
O_NEG_AREA = 6
O_SNR = 7
O_F_LATENCY = 8
O_BASELINE = 9
O_NOISE = 10
O_ARTEFACT_END = 11
N_OUT = 12

# ---- status codes (one per trace) ---------------------------------------------------------
ST_OK = 0
ST_NO_RESPONSE = 1
ST_SATURATED = 2
ST_NO_BASELINE = 3
ST_NONFINITE = 4
ST_TOO_SHORT = 5
ST_WINDOW_EDGE = 6

# ---- QC flag bits (any number per trace) --------------------------------------------------
F_POSITIVE_ONSET = 1
F_PRETRIGGER_BASELINE = 2
F_POST_ARTEFACT_BASELINE = 4
F_NO_F_WAVE = 8
F_NO_RETURN = 16
F_NAN_IN_BASELINE = 32
F_ARTEFACT_UNSETTLED = 64
F_ONSET_AT_ARTEFACT = 128
F_TWIN_PEAK = 256
F_ARTEFACT_SUBTRACTED = 512
F_ONSET_BACKTRACKED = 1024
F_BASELINE_REFINED = 2048
F_BASELINE_SLOPE = 4096
F_MAINS_REMOVED = 8192
F_MAINS_UNCHECKED = 16384

MIN_SAMPLES = 16
NOISE_QUANTILE = 0.10  # of the preliminary block noise (no pre-trigger): a CMAP's curvature
# inflates most blocks of a short sweep, a tenth of them are still quiet
_Z_QUANTILE = -1.2815515655446004  # standard normal quantile of NOISE_QUANTILE
_TRIM_SD = 3.0
NOISE_FLOOR = 1e-12  # V: thresholds of noise-free (synthetic) traces stay meaningful
N_TAU_GRID = 8
N_PARABOLIC = 4
_ART_MIN_SAMPLES = 6  # the artefact model has 4 coefficients: 6 samples (1.2 ms at 5 kHz) fit it
_ART_SIGNIFICANCE = 25.0  # the artefact model must lower the SSE by this many noise variances
_ART_TOL = 1e-6  # the fitted artefact is subtracted until it is below this many noise SDs
MAD_TO_SD = 1.482602218505602  # median absolute deviation -> SD of a Gaussian
N_MAINS_HARMONICS = 5  # mains fundamental and harmonics 2-5
MAINS_FREQUENCIES = (50.0, 60.0)
MAINS_TRAIN = (
    0.6  # the mains fit is checked by predicting the last 40 % of the baseline from the rest
)
MAINS_MIN_SHARE = 0.3  # ... where it must remove this share of the line's residual
MIN_QUIET = 8  # fewest samples of a quiet window whose noise is trusted
TAIL_RATIO = 1.5  # a quiet window whose first half is this much noisier holds an artefact tail
