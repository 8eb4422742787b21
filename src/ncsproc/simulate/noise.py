r"""Noise families of the simulator: what real amplifiers and muscles add to a sweep.

The measurement kernels must cope with more than white noise. Each family below is a
stationary random process added to the trace (pre-trigger and sweep alike) after the response,
the artefact, the mains line of ``mains=`` and the drift of ``drift=``; ``noise_rms`` (V) sets
its size. Every family is seeded: its draws come from a generator of its own (derived from the
simulation seed), and the white noise of :func:`ncsproc.simulate.waveforms.render` is drawn in
every family, so the same seed gives the same responses and disturbances whatever the family.

Families (``n`` samples at ``fs``; ``t`` in s after the stimulus; ranges are drawn uniformly
per trace unless ``noise_options`` gives a number or another range)

``white``
    Gaussian white noise of SD ``noise_rms`` (the simulator's original noise; same draws).
``bandlimited``
    White noise through the acquisition band-pass a header's prefilter field describes:
    Butterworth high-pass of order 2 at ``highpass`` 2-20 Hz, then Butterworth low-pass of order
    2 at ``lowpass`` 2-10 kHz (clamped to <= 0.45 fs), applied forward only
    (``scipy.signal.sosfilt``: causal, as an analogue amplifier). It is generated over a warm-up
    of ``2 / highpass`` s plus a steady stretch of max(1 s, trace) and the trace is the end of
    that stretch, so no start transient is left; the stretch is scaled to SD ``noise_rms``.
    Only the noise is filtered (the response stays exact); the trace set's ``highpass`` and
    ``lowpass`` coordinates stay NaN, the corners are in the truth.
``pink``
    1/f power spectrum: a white sequence of max(2 n, 4 s / low) samples shaped in the frequency
    domain by ``f**(-exponent/2)`` between ``low`` (1 Hz) and fs/2 (0 below ``low``, exponent 1),
    transformed back and cut to the trace's ``n`` samples; the whole sequence is scaled to SD
    ``noise_rms``.
``mains``
    White noise of SD ``noise_rms`` plus interference at ``f0`` (50 or 60 Hz, drawn) and its
    harmonics 2-5: ``sum_k A_k sin(2 pi k f0 t + phi_k)`` with ``A_1`` = 1-5 x ``noise_rms``,
    ``A_k = A_{k-1} x U(0.2, 0.6)`` (decreasing), phases uniform; harmonics at or above fs/2 are
    left out. ``noise_rms`` is the SD of the white part; the truth holds ``f0`` and ``A_1``.
``emg``
    Background EMG of a muscle that is not fully at rest: 2-8 motor-unit action potential
    trains plus band-limited noise (Butterworth band-pass 20-500 Hz, order 2, causal) of
    0.2-0.6 x the trains' SD plus a white floor of 5 % of the total SD. A MUAP is biphasic
    (first derivative of a Gaussian, ``sigma = D / 7``) or triphasic (Mexican hat, ``sigma = D /
    8``), equally likely, of duration ``D`` 3-12 ms, peak height log-normal (sigma 0.5) and sign
    random; a unit fires at 6-20 Hz with interspike intervals normal of coefficient of
    variation 10-20 % (>= 0.2 of the mean), trains running since 0.5 s before the trace. The
    stretch (warm-up and max(1 s, trace)) is scaled to SD ``noise_rms``; the trace is its end.
``wander``
    White noise of SD ``noise_rms`` plus a slow baseline wander, zero mean over the trace and of
    peak-to-peak ``p2p_ratio`` = 5-50 x ``noise_rms`` over the trace's samples: either (``kind``
    ``"sines"``, probability 1/2) a sum of 1-3 sinusoids of 0.2-5 Hz with relative heights
    0.2-1 and random phases, or (``"walk"``) a random walk (cumulative sum of white steps over
    the trace and 1 s before it) smoothed by a Butterworth low-pass of order 2 at 5-20 Hz.

``noise_rms`` therefore always is the SD of the noise process over the sweep (of its white
part for ``mains`` and ``wander``, whose extra component is recorded in the truth), so a
detector's threshold can be judged against it. ``noise_rms = 0`` adds nothing in every family.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import fft as sp_fft
from scipy import signal

__all__ = [
    "NOISE_FAMILIES",
    "NOISE_OPTIONS",
    "resolve_noise_options",
    "noise_process",
    "family_rng",
]

NOISE_FAMILIES = ("white", "bandlimited", "pink", "mains", "emg", "wander")
"""Noise families of :func:`ncsproc.simulate.response_set` (module docstring)."""

NOISE_OPTIONS: dict[str, dict[str, object]] = {
    "white": {},
    "bandlimited": dict(
        highpass=(2.0, 20.0), lowpass=(2000.0, 10000.0), highpass_order=2, lowpass_order=2
    ),
    "pink": dict(low=1.0, exponent=1.0),
    "mains": dict(frequency=None, amplitude_ratio=(1.0, 5.0), harmonics=5, decay=(0.2, 0.6)),
    "emg": dict(
        units=(2, 8),
        firing_rate=(6.0, 20.0),
        jitter=(0.10, 0.20),
        muap_duration=(3e-3, 12e-3),
        band_low=20.0,
        band_high=500.0,
        band_ratio=(0.2, 0.6),
        floor=0.05,
    ),
    "wander": dict(
        p2p_ratio=(5.0, 50.0),
        kind=None,
        frequency=(0.2, 5.0),
        n_sines=(1, 3),
        walk_cutoff=(5.0, 20.0),
    ),
}
"""Default parameters of each family (Hz, s, ratios); a number is fixed, a pair is a range."""

_STEADY = 1.0  # s: shortest stretch over which a coloured family is scaled to noise_rms

NOISE_STREAM = 0x6E6F6973
SHAPE_STREAM = 0x73686170
"""Spawn keys of the noise-family and shape-family generators (:func:`family_rng`)."""


def family_rng(seed, stream: int) -> np.random.Generator:
    """A generator of its own for a family's draws, derived from the simulation seed.

    The main generator ``default_rng(seed)`` is left untouched, so a family never shifts the
    draws of the responses and disturbances. ``seed`` is an int or a ``SeedSequence`` (then
    the child key ``stream`` is appended to its spawn key, without spawning from it).
    """
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    child = np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, int(stream)))
    return np.random.default_rng(child)


def resolve_noise_options(family: str, options: Mapping | None) -> dict[str, object]:
    """Return the family's parameters with ``options`` applied; reject unknown names.

    Raises
    ------
    ValueError
        For an unknown family or an option the family does not have (the message lists them).
    """
    if family not in NOISE_FAMILIES:
        raise ValueError(f"noise must be one of {NOISE_FAMILIES}, got {family!r}")
    out = dict(NOISE_OPTIONS[family])
    for key, value in dict(options or {}).items():
        if key not in out:
            valid = ", ".join(out) or "none"
            raise ValueError(
                f"noise_options: {key!r} is not an option of noise family {family!r} "
                f"(valid: {valid})"
            )
        out[key] = value
    return out


def _draw(rng: np.random.Generator, value) -> float:
    if np.ndim(value) == 0:
        return float(value)
    lo, hi = (float(v) for v in value)
    return float(rng.uniform(lo, hi))


def _draw_int(rng: np.random.Generator, value) -> int:
    if np.ndim(value) == 0:
        return int(value)
    lo, hi = (int(v) for v in value)
    return int(rng.integers(lo, hi + 1))


def noise_process(
    family: str,
    t: np.ndarray,
    sampling_rate: float,
    noise_rms: float,
    rng: np.random.Generator,
    options: Mapping,
) -> tuple[np.ndarray | None, bool, dict[str, object]]:
    """Draw one trace's noise of a family.

    Parameters
    ----------
    family : str
        One of :data:`NOISE_FAMILIES`.
    t : ndarray
        Sample times of the trace (s after the stimulus).
    sampling_rate : float
        Hz.
    noise_rms : float
        Size of the noise (V); module docstring.
    rng : numpy.random.Generator
        The family's own generator (not the simulation's main one).
    options : mapping
        Parameters from :func:`resolve_noise_options`.

    Returns
    -------
    added : ndarray or None
        Noise to add to the trace besides the white noise of ``render`` (None: nothing).
    keep_white : bool
        Whether ``render``'s white noise of SD ``noise_rms`` stays in the trace.
    params : dict
        The drawn parameters, named as the truth variables ``noise_*``.
    """
    o = options
    fs = float(sampling_rate)
    n = int(t.size)
    if family == "white" or noise_rms <= 0 or n == 0:
        return None, True, {}
    if family == "bandlimited":
        hp = _draw(rng, o["highpass"])
        lp = min(_draw(rng, o["lowpass"]), 0.45 * fs)
        n_warm = int(np.ceil(2.0 / hp * fs))
        n_steady = max(n, int(round(_STEADY * fs)))
        sos = np.vstack(
            [
                signal.butter(int(o["highpass_order"]), hp, "highpass", fs=fs, output="sos"),
                signal.butter(int(o["lowpass_order"]), lp, "lowpass", fs=fs, output="sos"),
            ]
        )
        y = signal.sosfilt(sos, rng.standard_normal(n_warm + n_steady))[n_warm:]
        return _scaled_tail(y, n, noise_rms), False, dict(noise_highpass=hp, noise_lowpass=lp)
    if family == "pink":
        low = float(o["low"])
        length = sp_fft.next_fast_len(max(2 * n, int(np.ceil(4.0 / low * fs))), real=True)
        f = sp_fft.rfftfreq(length, 1.0 / fs)
        gain = np.zeros_like(f)
        band = f >= low
        gain[band] = f[band] ** (-0.5 * float(o["exponent"]))
        y = sp_fft.irfft(sp_fft.rfft(rng.standard_normal(length)) * gain, length)
        y *= noise_rms / y.std()
        return y[:n].copy(), False, dict(noise_pink_low=low)
    if family == "mains":
        f0 = o["frequency"]
        f0 = (50.0 if rng.uniform() < 0.5 else 60.0) if f0 is None else float(f0)
        n_harm = int(o["harmonics"])
        amps = [_draw(rng, o["amplitude_ratio"]) * noise_rms]
        for _ in range(1, n_harm):
            amps.append(amps[-1] * _draw(rng, o["decay"]))
        phases = rng.uniform(0.0, 2.0 * np.pi, n_harm)
        hum = np.zeros(n)
        for k in range(n_harm):
            if (k + 1) * f0 < 0.5 * fs:
                hum += amps[k] * np.sin(2.0 * np.pi * (k + 1) * f0 * t + phases[k])
        return hum, True, dict(noise_mains_frequency=f0, noise_mains_amplitude=amps[0])
    if family == "emg":
        return _emg(t, fs, noise_rms, rng, o)
    if family == "wander":
        return _wander(t, fs, noise_rms, rng, o)
    raise ValueError(f"noise must be one of {NOISE_FAMILIES}, got {family!r}")


def _scaled_tail(y: np.ndarray, n: int, noise_rms: float) -> np.ndarray:
    """The last ``n`` samples of a stretch scaled so that the whole stretch has SD noise_rms."""
    sd = y.std()
    scale = noise_rms / sd if sd > 0 else 0.0
    return y[-n:] * scale


def _muap(duration: float, fs: float, triphasic: bool) -> np.ndarray:
    """One MUAP template of peak |height| 1, sampled at fs over ``duration`` (centred)."""
    half = 0.5 * duration
    tau = np.arange(-int(half * fs), int(half * fs) + 1) / fs
    if triphasic:
        sigma = duration / 8.0
        z = tau / sigma
        w = (1.0 - z**2) * np.exp(-0.5 * z**2)
    else:
        sigma = duration / 7.0
        z = tau / sigma
        w = -z * np.exp(-0.5 * z**2)
    peak = np.abs(w).max()
    return w / peak if peak > 0 else w


def _emg(t, fs, noise_rms, rng, o):
    n = int(t.size)
    n_warm = int(round(0.5 * fs))
    total = n_warm + max(n, int(round(_STEADY * fs)))
    trains = np.zeros(total)
    n_units = _draw_int(rng, o["units"])
    rates = []
    for _ in range(n_units):
        rate = _draw(rng, o["firing_rate"])
        cv = _draw(rng, o["jitter"])
        template = _muap(_draw(rng, o["muap_duration"]), fs, bool(rng.uniform() < 0.5))
        height = rng.lognormal(0.0, 0.5) * (1.0 if rng.uniform() < 0.5 else -1.0)
        rates.append(rate)
        mean_isi = 1.0 / rate
        n_spikes = int(np.ceil(total / fs * rate * 1.5)) + 2
        isi = np.maximum(rng.normal(mean_isi, cv * mean_isi, n_spikes), 0.2 * mean_isi)
        times = rng.uniform(0.0, mean_isi) + np.concatenate([[0.0], np.cumsum(isi[:-1])])
        half = template.size // 2
        for centre in np.round(times * fs).astype(np.int64):
            a, b = centre - half, centre - half + template.size
            if a >= total:
                break
            lo, hi = max(a, 0), min(b, total)
            trains[lo:hi] += height * template[lo - a : hi - a]
    band_high = min(float(o["band_high"]), 0.45 * fs)
    sos = signal.butter(2, [float(o["band_low"]), band_high], "bandpass", fs=fs, output="sos")
    band = signal.sosfilt(sos, rng.standard_normal(total))
    sd_trains = trains[n_warm:].std()
    sd_band = band[n_warm:].std()
    if sd_trains > 0:
        band *= _draw(rng, o["band_ratio"]) * sd_trains / sd_band
    y = trains + band
    y = y[n_warm:] / y[n_warm:].std()
    floor = float(o["floor"])
    y = np.sqrt(1.0 - floor**2) * y + floor * rng.standard_normal(y.size)
    params = dict(noise_emg_units=float(n_units), noise_emg_rate=float(np.mean(rates)))
    return _scaled_tail(y, n, noise_rms), False, params


def _wander(t, fs, noise_rms, rng, o):
    n = int(t.size)
    kind = o["kind"]
    if kind is None:
        kind = "sines" if rng.uniform() < 0.5 else "walk"
    if kind not in ("sines", "walk"):
        raise ValueError(f"noise_options: wander kind must be 'sines' or 'walk', got {kind!r}")
    target = _draw(rng, o["p2p_ratio"]) * noise_rms
    if kind == "sines":
        m = _draw_int(rng, o["n_sines"])
        w = np.zeros(n)
        for _ in range(m):
            f = _draw(rng, o["frequency"])
            w += rng.uniform(0.2, 1.0) * np.sin(2.0 * np.pi * f * t + rng.uniform(0.0, 2 * np.pi))
    else:
        cutoff = min(_draw(rng, o["walk_cutoff"]), 0.45 * fs)
        n_warm = int(round(_STEADY * fs))
        walk = np.cumsum(rng.standard_normal(n_warm + n))
        sos = signal.butter(2, cutoff, "lowpass", fs=fs, output="sos")
        w = signal.sosfilt(sos, walk)[n_warm:]
    w = w - w.mean()
    p2p = float(np.ptp(w)) if n > 1 else 0.0
    w = w * (target / p2p) if p2p > 0 else np.zeros(n)
    return w, True, dict(noise_wander_p2p=target, noise_wander_kind=kind)
