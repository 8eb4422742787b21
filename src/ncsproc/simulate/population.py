r"""Fibre populations: conduction velocities, terminal delays, block, dispersion, F-waves.

Motor nerve
-----------
A motor nerve is a pool of ``n`` motor units. Unit ``i`` has

* a conduction velocity ``cv_i`` in the distal segment. Velocities are drawn from a normal
  distribution truncated to ``[mean - 2 SD, mean + 1.5 SD]`` with ``mean = cv_max - 1.5 SD``
  and ``SD = sd_fraction * cv_max``, so the upper edge (the fastest fibres, which set the
  onset latency) is dense and sharp: ``cv_i`` lies in ``[cv_max - 3.5 SD, cv_max]``. Unit 0 is
  placed exactly at ``cv_max``.
* a terminal delay ``td_i = td_min + |e_i|``, ``e_i ~ N(0, td_spread)`` (terminal axon,
  neuromuscular junction and muscle-fibre conduction to the electrode), with ``td_0 = td_min``.
  Distal slowing of anti-MAG neuropathy is a long ``td_min``.

Because unit 0 is both the fastest and has the shortest terminal delay, it is the earliest unit
at every stimulation site of an unblocked, undispersed nerve, so the onset latency at a site at
distance ``d`` is exactly ``td_min + d / cv_max`` and the CV between two sites computed from the
exact onsets is exactly ``cv_max``.

Sites ``k = 0..K-1`` are at cumulative distances ``d_0 < d_1 < ...`` from the recording
electrode; segment 0 runs from the distal site to the electrode (length ``d_0``) and segment
``j >= 1`` from site ``j-1`` to site ``j``. The latency of unit ``i`` at site ``k`` is::

    L_i(k) = td_i + sum_{j <= k} len_j / (cv_i * f_j * s_ij)

with ``f_j`` a segment factor common to all fibres (e.g. slower conduction across the elbow)
and ``s_ij`` the extra-dispersion factor: in a segment with extra dispersion, a random subset
(``fraction`` of the units, chosen uniformly, the fastest not excluded) conducts at
``s_ij ~ U(slow_low, slow_high)`` of its velocity (demyelinated internodes), every other fibre
at ``s_ij = 1``. Conduction block in segment ``j``: a random subset of the surviving units
(``fraction`` of them, chosen uniformly, not biased to any velocity) is absent at site ``j`` and
at every more proximal site.

F-waves
-------
Stimulating at the distal site sends an antidromic volley to the spinal cord; a few motor
neurons (1-5 %, here 1-5 units per stimulus) backfire after a turnaround of 1 ms
(ncs-domain.md 1.1 [S26] [C]) and the orthodromic volley returns along the same axon to the
muscle. For unit ``i``::

    F_i = L_i(0) + 1 ms + 2 * ( sum_{j >= 1} len_j / (cv_i f_j s_ij) + D_rest / (cv_i * p) )

where ``D_rest`` is the rest of the path from the most proximal studied site to the cord and
``p`` the proximal-path velocity factor (the exam simulator uses ``p = proximal_cv / cv_max``,
so the fastest fibre conducts at ``proximal_cv`` there and the others keep their rank). Only
units that are not blocked anywhere take part.
The chronodispersion of a series (max - min latency) then follows from the velocity spread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr, ndtri

from .waveforms import UnitPotentials

__all__ = [
    "draw_velocities",
    "draw_unit_shapes",
    "MotorNerve",
    "SensoryNerve",
    "F_TURNAROUND",
]

F_TURNAROUND = 1.0e-3
"""Motoneuron turnaround delay of the F-wave (s), ncs-domain.md 1.1 [S26] [C]."""

_Z_LOW, _Z_HIGH = -2.0, 1.5


def draw_velocities(
    rng: np.random.Generator, n: int, cv_max: float, sd_fraction: float
) -> np.ndarray:
    """Draw ``n`` fibre velocities (m/s) with a dense upper edge at ``cv_max``.

    ``cv = cv_max - SD (1.5 - z)`` with ``z`` standard normal truncated to ``[-2, 1.5]`` and
    ``SD = sd_fraction * cv_max``; element 0 is exactly ``cv_max``.
    """
    lo, hi = ndtr(_Z_LOW), ndtr(_Z_HIGH)
    z = ndtri(rng.uniform(lo, hi, n))
    cv = cv_max - sd_fraction * cv_max * (_Z_HIGH - z)
    cv = np.minimum(cv, cv_max)
    if n:
        cv[0] = cv_max
    return cv


def draw_unit_shapes(
    rng: np.random.Generator,
    n: int,
    *,
    t_neg: float,
    t_pos_ratio: float,
    pos_ratio: float,
    amp_sigma: float = 0.5,
    shape_sigma: float = 0.12,
    t_init: float = 0.0,
    init_ratio: float = 0.0,
) -> UnitPotentials:
    """Draw ``n`` unit potential shapes around typical values (relative amplitudes).

    Amplitudes are log-normal (``sigma = amp_sigma``, median 1, unitless: they are scaled to the
    wanted compound amplitude later); lobe durations and ratios vary log-normally by
    ``shape_sigma`` around ``t_neg`` (s), ``t_pos_ratio * t_neg`` and ``pos_ratio``.
    """
    amp = rng.lognormal(0.0, amp_sigma, n)
    tn = t_neg * rng.lognormal(0.0, shape_sigma, n)
    tp = tn * t_pos_ratio * rng.lognormal(0.0, shape_sigma, n)
    pr = pos_ratio * rng.lognormal(0.0, shape_sigma, n)
    if t_init > 0 and init_ratio > 0:
        t0 = t_init * rng.lognormal(0.0, shape_sigma, n)
        r0 = init_ratio * rng.lognormal(0.0, shape_sigma, n)
    else:
        t0 = np.zeros(n)
        r0 = np.zeros(n)
    return UnitPotentials(amplitude=amp, t_neg=tn, t_pos=tp, pos_ratio=pr, t_init=t0, init_ratio=r0)


@dataclass
class MotorNerve:
    """Motor units of one nerve and their conduction between stimulation sites.

    Attributes
    ----------
    distances : ndarray
        Cumulative distance (m) from each stimulation site to the recording electrode,
        distal site first.
    cv : ndarray
        Distal-segment velocity of each unit (m/s).
    terminal_delay : ndarray
        Terminal delay of each unit (s).
    shapes : UnitPotentials
        Unit potential shapes (amplitudes in V once scaled).
    segment_factor : ndarray
        Velocity factor of each segment common to all fibres (segment 0 = distal segment).
    slow : ndarray (n_units, n_sites)
        Extra-dispersion factor of each unit in each segment (1 = not slowed).
    blocked_at : ndarray of int
        First site at which the unit is absent (``n_sites`` = never blocked).
    """

    distances: np.ndarray
    cv: np.ndarray
    terminal_delay: np.ndarray
    shapes: UnitPotentials
    segment_factor: np.ndarray = None
    slow: np.ndarray = None
    blocked_at: np.ndarray = None
    block_fraction: np.ndarray = field(default=None)
    dispersion_fraction: np.ndarray = field(default=None)

    def __post_init__(self):
        k = len(self.distances)
        n = len(self.cv)
        self.distances = np.asarray(self.distances, dtype=float)
        if self.segment_factor is None:
            self.segment_factor = np.ones(k)
        if self.slow is None:
            self.slow = np.ones((n, k))
        if self.blocked_at is None:
            self.blocked_at = np.full(n, k, dtype=np.int64)
        if self.block_fraction is None:
            self.block_fraction = np.zeros(k)
        if self.dispersion_fraction is None:
            self.dispersion_fraction = np.zeros(k)

    @property
    def n_sites(self) -> int:
        return len(self.distances)

    @property
    def segment_lengths(self) -> np.ndarray:
        """Length of each segment (m); segment 0 is the distal site to the electrode."""
        return np.diff(np.concatenate([[0.0], self.distances]))

    def segment_times(self) -> np.ndarray:
        """Conduction time (s) of each unit through each segment, shape (n_units, n_sites)."""
        v = self.cv[:, None] * self.segment_factor[None, :] * self.slow
        return self.segment_lengths[None, :] / v

    def latencies(self) -> np.ndarray:
        """Latency (s) of each unit at each site, shape (n_units, n_sites)."""
        return self.terminal_delay[:, None] + np.cumsum(self.segment_times(), axis=1)

    def present(self, site: int) -> np.ndarray:
        """Mask of the units present (not blocked) at ``site``."""
        return self.blocked_at > site

    def add_block(self, rng: np.random.Generator, segment: int, fraction: float) -> None:
        """Block ``fraction`` of the units still conducting into ``segment`` (>= 1)."""
        alive = np.flatnonzero(self.blocked_at > segment)
        n_block = int(round(fraction * alive.size))
        if n_block:
            chosen = rng.choice(alive, size=n_block, replace=False)
            self.blocked_at[chosen] = segment
        self.block_fraction[segment] = n_block / max(alive.size, 1)

    def add_dispersion(
        self,
        rng: np.random.Generator,
        segment: int,
        fraction: float,
        slow_low: float,
        slow_high: float,
    ) -> None:
        """Slow a random ``fraction`` of the units in ``segment`` to ``U(slow_low, slow_high)``."""
        n = len(self.cv)
        k = int(round(fraction * n))
        if k:
            chosen = rng.choice(n, size=k, replace=False)
            self.slow[chosen, segment] = rng.uniform(slow_low, slow_high, k)
        self.dispersion_fraction[segment] = k / max(n, 1)

    def f_latencies(self, cord_distance: float, proximal_factor: float) -> np.ndarray:
        """F-wave latency (s) of every unit for distal-site stimulation; NaN if blocked.

        ``cord_distance`` is the path length (m) from the distal site to the spinal cord.
        """
        seg = self.segment_times()
        lat0 = self.terminal_delay + seg[:, 0]
        studied = self.distances[-1] - self.distances[0]
        rest = cord_distance - studied
        if rest <= 0:
            raise ValueError("cord distance must exceed the studied nerve length")
        up = seg[:, 1:].sum(axis=1) + rest / (self.cv * proximal_factor)
        f = lat0 + F_TURNAROUND + 2.0 * up
        return np.where(self.blocked_at >= self.n_sites, f, np.nan)


@dataclass
class SensoryNerve:
    """Sensory fibres of one nerve recorded at one distance (no terminal delay).

    The latency of fibre ``i`` is ``d / cv_i``; velocities as in :func:`draw_velocities`.
    """

    distance: float
    cv: np.ndarray
    shapes: UnitPotentials

    def latencies(self) -> np.ndarray:
        """Start time (s) of each fibre potential: its negative lobe (or initial positivity)."""
        return self.distance / self.cv
