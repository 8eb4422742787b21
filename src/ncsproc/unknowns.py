"""Clinical facts a file does not say: reading keeps them unknown, the steps that need them say so.

A trace set may leave ``side``, ``nerve`` or ``modality`` unknown (""; the contract: what nobody
says stays unknown). Reading, drawing and the per-trace measures of a trace with a known
modality never need them. The measurement parameters depend on the modality, so a trace whose
modality is unknown is not measured (status ``unknown_modality``: a number measured with a
guessed modality's windows could be wrong); the nerve features and criteria need all three.
:func:`missing_metadata` says, per study, what is missing and how to supply it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["UNKNOWN_MODALITY", "missing_metadata", "measure_known"]

UNKNOWN_MODALITY = "unknown_modality"
"""Status of a trace whose modality nobody said (no values: the parameters depend on it)."""

_FACTS = ("side", "nerve", "modality")
_EXAMPLE = '{"side": "L", "nerve": "median", "modality": "motor"}'


def missing_metadata(ds: xr.Dataset, needs: tuple[str, ...] = _FACTS) -> list[str]:
    """One sentence per study that lacks any of ``needs``: what is missing and how to supply it.

    Parameters
    ----------
    ds : xarray.Dataset
        A trace set, or a measure set on its ``trace`` dimension.
    needs : tuple of str
        The facts the caller's step needs (default side, nerve and modality).

    Returns
    -------
    list of str
        Empty when every trace says all of ``needs``.
    """
    present = [n for n in needs if n in ds.variables]
    if not present or ds.sizes.get("trace", 0) == 0:
        return []
    values = {n: np.asarray(ds.variables[n].values).astype(str) for n in present}
    study = np.asarray(ds["study"].values).astype(str) if "study" in ds.variables else None
    files = (
        np.asarray(ds["source_file"].values).astype(str) if "source_file" in ds.variables else None
    )
    out: dict[tuple[str, str], set[str]] = {}
    for i in range(ds.sizes["trace"]):
        missing = {n for n in present if values[n][i] == ""}
        if missing:
            key = (study[i] if study is not None else "", files[i] if files is not None else "")
            out.setdefault(key, set()).update(missing)
    sentences = []
    for (name, source), missing in sorted(out.items()):
        what = ", ".join(n for n in needs if n in missing)
        sidecar = f"a sidecar {source}.json" if source else "a sidecar <file>.json"
        sentences.append(
            f"study {name or '?'}{f' ({source})' if source else ''}: the file does not say its "
            f"{what}; give {'it' if len(missing) == 1 else 'them'} in {sidecar}, e.g. {_EXAMPLE} "
            "(`ncsproc docs readers`)"
        )
    return sentences


def measure_known(traces: xr.Dataset, **kwargs) -> xr.Dataset:
    """:func:`ncsproc.measure`, with traces of unknown modality kept but not measured.

    Traces whose ``modality`` is "" come back with NaN values, no QC flags and the status
    ``unknown_modality``; the others are measured exactly as :func:`ncsproc.measure` measures
    them (the parameters depend on the modality, never on the other traces).

    Parameters
    ----------
    traces : xarray.Dataset
        A trace set.
    **kwargs
        Passed to :func:`ncsproc.measure`.
    """
    from .measures import MEASURE_VARS, measure

    if "modality" not in traces.variables:
        return measure(traces, **kwargs)
    modality = np.asarray(traces["modality"].values).astype(str)
    unknown = modality == ""
    if not unknown.any():
        return measure(traces, **kwargs)
    # any modality makes the kernels run; the values of these traces are then discarded
    stand_in = np.where(unknown, "motor", modality).astype(object)
    attrs = dict(traces["modality"].attrs)
    result = measure(traces.assign_coords(modality=("trace", stand_in, attrs)), **kwargs)
    updates = {}
    for name in MEASURE_VARS:
        if name in result:
            col = result[name].values.copy()
            col[unknown] = np.nan
            updates[name] = result[name].copy(data=col)
    status = result["status"].values.copy()
    status[unknown] = UNKNOWN_MODALITY
    updates["status"] = result["status"].copy(data=status)
    flags = result["qc_flags"].values.copy()
    flags[unknown] = 0
    updates["qc_flags"] = result["qc_flags"].copy(data=flags)
    out = result.assign(updates).assign_coords(modality=("trace", modality.astype(object), attrs))
    out["status"].attrs["status_meanings"] = (
        out["status"].attrs.get("status_meanings", "")
        + f"; {UNKNOWN_MODALITY}: the file does not say the modality (motor, sensory, fwave), "
        "on which the measurement parameters depend: give it in a sidecar <file>.json"
    )
    return out
