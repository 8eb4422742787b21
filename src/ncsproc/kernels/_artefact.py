"""Stimulus-artefact and amplifier stage: the artefact decay model, its subtraction, clipped
plateaus (saturation).

Each kernel is compiled with :func:`ncsproc.kernels._jit.jit`; its numpy reference twin
(``ref_<name>``, written independently with whole-array operations) follows below.
"""

from __future__ import annotations

import math

import numpy as np

from ._codes import (
    F_ARTEFACT_UNSETTLED,
    N_PARABOLIC,
    N_TAU_GRID,
    ST_NO_BASELINE,
    ST_SATURATED,
)
from ._jit import jit
from ._params import (
    P_BLANK_MAX,
    P_SATURATION_RUN,
)
from ._robust import (
    n_of,
    ref_n_of,
    ref_time_index,
    time_index,
)


@jit
def artefact_sse(y, i0, i1, t0, dt, tau):
    """Least-squares fit of ``L + (c0 + c1 t/tau) exp(-t/tau)`` to y[i0:i1] for one tau.

    Returns ``(sse, L, c0, c1)``; sse is inf when the normal equations are singular.
    """
    u = (t0 + i0 * dt) / tau
    du = dt / tau
    e = math.exp(-u)
    r = math.exp(-du)
    s01 = 0.0
    s02 = 0.0
    s11 = 0.0
    s12 = 0.0
    s22 = 0.0
    b0 = 0.0
    b1 = 0.0
    b2 = 0.0
    syy = 0.0
    yv = y[i0:i1]
    for i in range(i1 - i0):
        f2 = u * e
        v = yv[i]
        s01 += e
        s02 += f2
        s11 += e * e
        s12 += e * f2
        s22 += f2 * f2
        b0 += v
        b1 += e * v
        b2 += f2 * v
        syy += v * v
        e *= r
        u += du
    s00 = float(i1 - i0)
    m00 = s11 * s22 - s12 * s12
    m01 = s01 * s22 - s12 * s02
    m02 = s01 * s12 - s11 * s02
    det = s00 * m00 - s01 * m01 + s02 * m02
    if not abs(det) > 0.0:
        return np.inf, 0.0, 0.0, 0.0
    cl = (b0 * m00 - s01 * (b1 * s22 - s12 * b2) + s02 * (b1 * s12 - s11 * b2)) / det
    c0 = (s00 * (b1 * s22 - s12 * b2) - b0 * m01 + s02 * (s01 * b2 - b1 * s02)) / det
    c1 = (s00 * (s11 * b2 - b1 * s12) - s01 * (s01 * b2 - b1 * s02) + b0 * m02) / det
    sse = syy - (cl * b0 + c0 * b1 + c1 * b2)
    if sse < 0.0:
        sse = 0.0
    return sse, cl, c0, c1


@jit
def fit_artefact(y, i0, i1, t0, dt, tau_min, tau_max):
    """Fit the artefact model over y[i0:i1] (tau: log grid, then parabolic interpolation).

    Returns ``(tau, L, c0, c1, sse, sse_const)``; ``sse_const`` is the SSE of a constant alone.
    """
    m = i1 - i0
    mean = 0.0
    for i in range(i0, i1):
        mean += y[i]
    mean /= m
    sse_const = 0.0
    for i in range(i0, i1):
        d = y[i] - mean
        sse_const += d * d
    lmin = math.log(tau_min)
    lmax = math.log(tau_max)
    step = (lmax - lmin) / (N_TAU_GRID - 1)
    best = 0
    bsse = np.inf
    prev = np.inf
    f_before = np.inf  # SSE of the grid point before the best one
    f_after = np.inf  # and after it
    # the coefficients at the current best point (its fit is never repeated)
    b_cl = 0.0
    b_c0 = 0.0
    b_c1 = 0.0
    for g in range(N_TAU_GRID):
        sse, cl, c0, c1 = artefact_sse(y, i0, i1, t0, dt, math.exp(lmin + g * step))
        if sse < bsse:
            bsse = sse
            best = g
            f_before = prev
            b_cl = cl
            b_c0 = c0
            b_c1 = c1
        elif g == best + 1:
            f_after = sse
        prev = sse
    # successive parabolic interpolation in log tau, starting from the best grid point and its
    # neighbours (the SSE is smooth in log tau near its minimum)
    lt = lmin + best * step
    if 0 < best < N_TAU_GRID - 1:
        x1 = lt - step
        x2 = lt
        x3 = lt + step
        f1 = f_before
        f2 = bsse
        f3 = f_after
        for _ in range(N_PARABOLIC):
            num = (x2 - x1) * (x2 - x1) * (f2 - f3) - (x2 - x3) * (x2 - x3) * (f2 - f1)
            den = (x2 - x1) * (f2 - f3) - (x2 - x3) * (f2 - f1)
            if not (den != 0.0 and math.isfinite(num) and math.isfinite(den)):
                break
            xv = x2 - 0.5 * num / den
            if not (x1 < xv < x3) or xv == x2:
                break
            fv, cl, c0, c1 = artefact_sse(y, i0, i1, t0, dt, math.exp(xv))
            if fv <= f2:
                if xv < x2:
                    x3 = x2
                    f3 = f2
                else:
                    x1 = x2
                    f1 = f2
                x2 = xv
                f2 = fv
                b_cl = cl
                b_c0 = c0
                b_c1 = c1
            elif xv < x2:
                x1 = xv
                f1 = fv
            else:
                x3 = xv
                f3 = fv
        lt = x2
        bsse = f2
    return math.exp(lt), b_cl, b_c0, b_c1, bsse, sse_const


@jit
def clipped_until(y, i0, i1):
    """First index after the last sample of y[i0:i1] that repeats its predecessor (which may
    lie just before i0) exactly at the window's minimum or maximum (a clipped artefact); i0
    when there is none."""
    vmin = y[i0]
    vmax = y[i0]
    for i in range(i0, i1):
        v = y[i]
        if v < vmin:
            vmin = v
        if v > vmax:
            vmax = v
    start = i0
    for i in range(i0 if i0 > 0 else 1, i1):
        v = y[i]
        if v == y[i - 1] and (v == vmin or v == vmax):
            start = i + 1
    return start


@jit
def subtract_artefact(y, i0, i1, t0, dt, tau, c0, c1, tol):
    """y[i] -= (c0 + c1 u) exp(-u), u = t_i / tau, for i in [i0, i1) (exp by recurrence).

    Stops at the first sample past the hump (u >= 1, where the model only decays) whose
    correction bound ``exp(-u) (|c0| + |c1| u)`` is below ``tol`` (V): the rest of the trace
    would change by less than that.
    """
    u = (t0 + i0 * dt) / tau
    du = dt / tau
    e = math.exp(-u)
    r = math.exp(-du)
    a0 = abs(c0)
    a1 = abs(c1)
    yv = y[i0:i1] if i1 > i0 else y[0:0]
    for k in range(yv.shape[0]):
        if u >= 1.0 and e * (a0 + a1 * u) < tol:
            break
        yv[k] -= e * (c0 + c1 * u)
        e *= r
        u += du


@jit
def plateau_run(x, p, w, i0, i1, lowest):
    """Longest run of consecutive samples equal to the extreme (minimum if ``lowest``, else
    maximum) of x in the window [p - w, p + w] within [i0, i1); returns ``(run, extreme)``."""
    lo = p - w if p - w > i0 else i0
    hi = p + w + 1 if p + w + 1 < i1 else i1
    ext = x[lo]
    for i in range(lo, hi):
        v = x[i]
        if (v < ext) if lowest else (v > ext):
            ext = v
    run = 0
    best = 0
    for i in range(lo, hi):
        if x[i] == ext:
            run += 1
            if run > best:
                best = run
        else:
            run = 0
    return best, ext


@jit
def extreme_plateau(x, i0, i1):
    """Longest run of consecutive samples equal to the minimum or the maximum of x[i0:i1]."""
    if i1 <= i0:
        return 0
    vmin = x[i0]
    vmax = x[i0]
    for i in range(i0, i1):
        v = x[i]
        if v < vmin:
            vmin = v
        if v > vmax:
            vmax = v
    best = 0
    rmin = 0
    rmax = 0
    for i in range(i0, i1):
        v = x[i]
        if v == vmin:
            rmin += 1
            if rmin > best:
                best = rmin
        else:
            rmin = 0
        if v == vmax:
            rmax += 1
            if rmax > best:
                best = rmax
        else:
            rmax = 0
    return best


@jit
def _unsettled(x, n, fs, t0, prm, flags):
    """Status of a trace whose artefact never settles: ``saturated`` when the amplifier clipped
    after ``blank_max`` (the clipped response is why), else ``no_baseline``."""
    i0 = time_index(prm[P_BLANK_MAX], t0, fs)
    if i0 < 0:
        i0 = 0
    if extreme_plateau(x, i0, n) >= n_of(prm[P_SATURATION_RUN], fs, 3):
        return ST_SATURATED, flags | F_ARTEFACT_UNSETTLED
    return ST_NO_BASELINE, flags | F_ARTEFACT_UNSETTLED


# ---- numpy reference twins ------------------------------------------------------------


def ref_artefact_sse(y, i0, i1, t0, dt, tau):
    u = (t0 + np.arange(i0, i1) * dt) / tau
    e = np.exp(-u)
    basis = np.stack([np.ones_like(u), e, u * e], axis=1)
    v = np.asarray(y[i0:i1], dtype=np.float64)
    coef, *_ = np.linalg.lstsq(basis, v, rcond=None)
    r = v - basis @ coef
    return float(r @ r), float(coef[0]), float(coef[1]), float(coef[2])


def ref_fit_artefact(y, i0, i1, t0, dt, tau_min, tau_max):
    v = np.asarray(y[i0:i1], dtype=np.float64)
    sse_const = float(((v - v.mean()) ** 2).sum())
    grid = np.linspace(math.log(tau_min), math.log(tau_max), N_TAU_GRID)
    sses = [ref_artefact_sse(y, i0, i1, t0, dt, math.exp(g))[0] for g in grid]
    best = int(np.argmin(sses))

    def f(lt):
        return ref_artefact_sse(y, i0, i1, t0, dt, math.exp(lt))[0]

    lt = grid[best]
    if 0 < best < N_TAU_GRID - 1:
        pts = [
            (grid[best - 1], sses[best - 1]),
            (grid[best], sses[best]),
            (grid[best + 1], sses[best + 1]),
        ]
        for _ in range(N_PARABOLIC):
            (x1, f1), (x2, f2), (x3, f3) = pts
            num = (x2 - x1) ** 2 * (f2 - f3) - (x2 - x3) ** 2 * (f2 - f1)
            den = (x2 - x1) * (f2 - f3) - (x2 - x3) * (f2 - f1)
            if not (den != 0.0 and np.isfinite(num) and np.isfinite(den)):
                break
            xv = x2 - 0.5 * num / den
            if not (x1 < xv < x3) or xv == x2:
                break
            fv = f(xv)
            if fv <= f2:
                pts = [(x1, f1), (xv, fv), (x2, f2)] if xv < x2 else [(x2, f2), (xv, fv), (x3, f3)]
            else:
                pts = [(xv, fv), (x2, f2), (x3, f3)] if xv < x2 else [(x1, f1), (x2, f2), (xv, fv)]
        lt = pts[1][0]
    tau = math.exp(lt)
    sse, cl, c0, c1 = ref_artefact_sse(y, i0, i1, t0, dt, tau)
    return tau, cl, c0, c1, sse, sse_const


def ref_clipped_until(y, i0, i1):
    w = np.asarray(y[i0:i1], dtype=np.float64)
    j0 = max(i0, 1)
    cur = np.asarray(y[j0:i1], dtype=np.float64)
    prev = np.asarray(y[j0 - 1 : i1 - 1], dtype=np.float64)
    rep = np.flatnonzero((cur == prev) & ((cur == w.min()) | (cur == w.max())))
    return j0 + int(rep[-1]) + 1 if rep.size else i0


def ref_subtract_artefact(y, i0, i1, t0, dt, tau, c0, c1, tol):
    m = i1 - i0
    if m <= 0:
        return
    steps = np.full(m, math.exp(-dt / tau))
    steps[0] = math.exp(-(t0 + i0 * dt) / tau)
    e = np.cumprod(steps)
    u = (t0 + np.arange(i0, i1) * dt) / tau
    done = np.flatnonzero((u >= 1.0) & (e * (abs(c0) + abs(c1) * u) < tol))
    stop = done[0] if done.size else m
    y[i0 : i0 + stop] -= (e * (c0 + c1 * u))[:stop]


def ref_plateau_run(x, p, w, i0, i1, lowest):
    seg = np.asarray(x[max(p - w, i0) : min(p + w + 1, i1)], dtype=np.float64)
    target = seg.min() if lowest else seg.max()
    eq = np.concatenate(([0], (seg == target).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(eq))
    return (int((edges[1::2] - edges[::2]).max()) if edges.size else 0), float(target)


def ref_extreme_plateau(x, i0, i1):
    seg = np.asarray(x[i0:i1], dtype=np.float64)
    if seg.size == 0:
        return 0
    return max(
        ref_plateau_run(seg, 0, seg.size, 0, seg.size, True)[0],
        ref_plateau_run(seg, 0, seg.size, 0, seg.size, False)[0],
    )


def _ref_unsettled(x, n, fs, t0, prm, flags):
    i0 = max(ref_time_index(prm[P_BLANK_MAX], t0, fs), 0)
    if ref_extreme_plateau(x[:n], i0, n) >= ref_n_of(prm[P_SATURATION_RUN], fs, 3):
        return ST_SATURATED, flags | F_ARTEFACT_UNSETTLED
    return ST_NO_BASELINE, flags | F_ARTEFACT_UNSETTLED
