"""Excitability analysis of QTRAC results: the CMAP scan summary (maximum CMAP, D50).

Reading a ``.MEM``/``.MEF`` file is :func:`ncsproc.read_qtrac`'s job (``formats/qtrac.py``);
what is computed from the recordings lives here, with the other features.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["cmap_scan", "d50"]


def d50(amplitudes: np.ndarray) -> int:
    """D50 of a CMAP scan (Jacobsen et al. 2017).

    Sort the amplitudes, take the steps between neighbours, sort the steps from the largest
    down, and count how many of the largest steps it takes for their sum to exceed half of
    the sum of all steps (which is the largest minus the smallest amplitude).

    Raises
    ------
    ValueError
        Fewer than two finite amplitudes, or all equal.
    """
    a = np.sort(np.asarray(amplitudes, dtype=np.float64))
    a = a[np.isfinite(a)]
    if a.size < 2:
        raise ValueError(f"D50 needs at least two amplitudes, got {a.size}")
    steps = np.sort(np.diff(a))[::-1]
    total = float(steps.sum())
    if not total > 0:
        raise ValueError("D50 is undefined for a flat scan (all amplitudes equal)")
    cumulative = np.cumsum(steps)
    # "first exceeds half": tolerate the rounding of the cumulative sum
    return int(np.searchsorted(cumulative, total / 2 + 1e-12 * total, side="right")) + 1


def _scanpts(ds: xr.Dataset) -> list[int] | None:
    if "scanpts" in ds.variables:
        values = np.asarray(ds["scanpts"].values, dtype=np.float64)
        return None if np.isnan(values).any() else [int(v) for v in values]
    if "scanpts" in ds.attrs:
        return [int(v) for v in np.asarray(ds.attrs["scanpts"]).ravel()]
    return None


def _one_scan(ds: xr.Dataset, rows: str) -> dict:
    out = {"max_cmap": np.nan, "d50": np.nan, "n_points": 0, "first_row": -1, "last_row": -1}
    if "mscan_amplitude" not in ds.variables:
        return {**out, "status": "no_mscan"}
    idx = np.asarray(ds["mscan_point"].values, dtype=np.int64)
    amp = np.asarray(ds["mscan_amplitude"].values, dtype=np.float64)
    present = np.isfinite(amp)
    if rows == "all":
        mask = present
        first, last = (int(idx[mask].min()), int(idx[mask].max())) if mask.any() else (-1, -1)
    else:
        sp = _scanpts(ds)
        if sp is None:
            return {**out, "status": "no_scanpts"}
        first, last = sp[1] + 1, sp[2]
        mask = (idx >= first) & (idx <= last) & present
        if int(mask.sum()) != last - first + 1:
            out.update(first_row=first, last_row=last, n_points=int(mask.sum()))
            return {**out, "status": "incomplete_scan"}
    out.update(first_row=first, last_row=last, n_points=int(mask.sum()))
    if out["n_points"] < 2:
        return {**out, "status": "too_few_points"}
    a = amp[mask]
    out["max_cmap"] = float(a.max())
    try:
        out["d50"] = float(d50(a))
    except ValueError:
        return {**out, "status": "flat_scan"}
    return {**out, "status": "ok"}


def cmap_scan(ds: xr.Dataset, rows: str = "scan") -> xr.Dataset:
    """Summarise a CMAP scan (QTRAC M-scan): maximum CMAP and D50.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`read_qtrac` (one MEM, or a MEF cohort with a ``recording`` dimension).
    rows : {"scan", "all"}
        ``"scan"`` (default, the interchange contract): the scan proper, rows after the second
        ``Scanpts`` value up to the third (``Scanpts: 99, 102, 548, 551`` -> MS.103 to MS.548).
        ``"all"``: every M-scan row, including the supramaximal stimuli before and the
        sub-threshold stimuli after the scan; this is what QtracP's ``MScD50`` matches (see
        ``formats/qtrac.md``).

    Returns
    -------
    xarray.Dataset
        ``max_cmap`` (V), ``d50`` (count, float so that it can be NaN), ``n_points``,
        ``first_row``, ``last_row``, ``status`` (``ok``, ``no_mscan``, ``no_scanpts``,
        ``incomplete_scan``, ``too_few_points``, ``flat_scan``); on ``recording`` for a cohort.
    """
    if rows not in ("scan", "all"):
        raise ValueError(f"rows must be 'scan' or 'all', got {rows!r}")
    if "recording" in ds.dims:
        results = [_one_scan(ds.isel(recording=i), rows) for i in range(ds.sizes["recording"])]
        dims: tuple = ("recording",)
        coords = {"recording": ds["recording"].values}
    else:
        results = [_one_scan(ds, rows)]
        dims = ()
        coords = {}

    def col(key, dtype):
        values = np.array([r[key] for r in results], dtype=dtype)
        return values if dims else values[0]

    attrs = {
        "rows": rows,
        "d50_definition": "Jacobsen et al. 2017: number of the largest steps between sorted "
        "amplitudes whose sum first exceeds half of the sum of all steps",
    }
    return xr.Dataset(
        {
            "max_cmap": (
                dims,
                col("max_cmap", np.float64),
                {"units": "V", "long_name": "largest CMAP amplitude of the rows used"},
            ),
            "d50": (
                dims,
                col("d50", np.float64),
                {"units": "1", "long_name": "D50 (number of steps)"},
            ),
            "n_points": (dims, col("n_points", np.int64)),
            "first_row": (dims, col("first_row", np.int64)),
            "last_row": (dims, col("last_row", np.int64)),
            "status": (dims, col("status", object)),
        },
        coords=coords,
        attrs=attrs,
    )
