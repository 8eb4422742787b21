"""Per-trace ground truth: the variables, their units and definitions, and the Dataset builder.

The names of the measured quantities are those of :func:`ncsproc.measure` (interchange
contract section 2), so a kernel's output can be compared with the truth variable by variable.
Every value refers to the *noiseless, undisturbed* response (see
:mod:`ncsproc.simulate.waveforms` for the model); for F-wave traces the waveform quantities
refer to the M wave and ``f_latency`` / ``f_measurable_latency`` to the late response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

__all__ = ["TRUTH_VARS", "NOISE_PARAMETER_VARS", "truth_dataset"]

# name -> (dtype, units, definition)
TRUTH_VARS: dict[str, tuple[str, str | None, str]] = {
    "onset_latency": ("f", "s", "start of the earliest unit potential (x is exactly 0 before it)"),
    "peak_latency": ("f", "s", "time of the most negative value of the noiseless response"),
    "amplitude": ("f", "V", "0 minus the minimum of the noiseless response (positive)"),
    "peak_to_peak": (
        "f",
        "V",
        "largest value after the negative peak minus the negative peak value",
    ),
    "positive_peak_latency": ("f", "s", "time of the largest value after the negative peak"),
    "negative_duration": ("f", "s", "onset to the first return to zero after the negative peak"),
    "total_duration": (
        "f",
        "s",
        "onset to the end of the last negative lobe (x < 0) deeper than 10 % of amplitude",
    ),
    "negative_area": ("f", "V s", "integral of max(0, -x) over [onset, onset + total_duration]"),
    "measurable_onset_latency": (
        "f",
        "s",
        "first time |x| reaches 1 % of amplitude (either polarity); NaN for no response",
    ),
    "f_latency": ("f", "s", "F traces: start of the earliest F-unit potential; NaN when absent"),
    "f_measurable_latency": (
        "f",
        "s",
        "F traces: first time |F wave alone| reaches 1 % of its own amplitude; NaN when absent",
    ),
    "f_amplitude": ("f", "V", "F traces: negative peak of the late response alone, else NaN"),
    "has_response": ("b", None, "False for noise-only traces (no unit potential present)"),
    "initial_positivity": ("b", None, "the unit potentials start with a positive lobe"),
    "noise_rms": (
        "f",
        "V",
        "SD of the added noise process (of its white part for the mains and wander families)",
    ),
    "noise_family": ("s", None, "noise family (ncsproc.simulate.NOISE_FAMILIES)"),
    "shape": ("s", None, "unit-potential shape family (ncsproc.simulate.SHAPE_FAMILIES)"),
    "artefact_amplitude": ("f", "V", "stimulus artefact height at t = 0 (signed; 0 = none)"),
    "artefact_tau": ("f", "s", "stimulus artefact time constant"),
    "mains_amplitude": ("f", "V", "mains interference amplitude (0 = none)"),
    "mains_frequency": ("f", "Hz", "mains interference frequency"),
    "mains_phase": ("f", "rad", "mains interference phase at t = 0"),
    "offset": ("f", "V", "baseline offset at t = 0"),
    "drift": ("f", "V s-1", "linear baseline drift"),
    "clip_level": ("f", "V", "amplifier saturation level (inf = none)"),
    "saturated": ("b", None, "some samples were clipped at the saturation level"),
}

# drawn parameters of the noise families, present in a truth Dataset only when some trace
# has them (a white-noise truth keeps its columns); NaN or "" on the other traces
NOISE_PARAMETER_VARS: dict[str, tuple[str, str | None, str]] = {
    "noise_highpass": ("f", "Hz", "bandlimited: high-pass corner of the noise band-pass"),
    "noise_lowpass": ("f", "Hz", "bandlimited: low-pass corner of the noise band-pass"),
    "noise_pink_low": ("f", "Hz", "pink: lower edge of the 1/f band"),
    "noise_mains_frequency": ("f", "Hz", "mains family: fundamental (50 or 60 Hz)"),
    "noise_mains_amplitude": ("f", "V", "mains family: amplitude of the fundamental"),
    "noise_emg_units": ("f", None, "emg: number of motor-unit action potential trains"),
    "noise_emg_rate": ("f", "Hz", "emg: mean firing rate of the trains"),
    "noise_wander_p2p": ("f", "V", "wander: peak-to-peak of the wander over the trace"),
    "noise_wander_kind": ("s", None, "wander: 'sines' or 'walk'"),
}


def truth_dataset(
    trace_ids: Sequence[str],
    records: Sequence[Mapping[str, object]],
    *,
    attrs: Mapping[str, object] | None = None,
) -> xr.Dataset:
    """Build the per-trace truth Dataset on dimension ``trace`` (ids as in the trace set).

    Missing values are NaN (floats), False (booleans) or "" (strings). The variables of
    :data:`NOISE_PARAMETER_VARS` are included only when some record has them.
    """
    n = len(trace_ids)
    data = {}
    present = {k: v for k, v in NOISE_PARAMETER_VARS.items() if any(k in r for r in records)}
    for name, (kind, units, desc) in {**TRUTH_VARS, **present}.items():
        if kind == "b":
            arr = np.array([bool(r.get(name, False)) for r in records], dtype=bool)
        elif kind == "s":
            arr = np.array([str(r.get(name, "")) for r in records], dtype=object)
        else:
            arr = np.array([r.get(name, np.nan) for r in records], dtype=np.float64)
        va = {"long_name": desc}
        if units:
            va["units"] = units
        data[name] = ("trace", arr.reshape(n), va)
    ds = xr.Dataset(data, coords={"trace": ("trace", np.array(list(trace_ids), dtype=object))})
    ds.attrs["title"] = "ncsproc.simulate ground truth"
    if attrs:
        ds.attrs.update(attrs)
    return ds
