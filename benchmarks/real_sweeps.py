"""ncsproc (and the peer) on real sweeps, against MEPFeatX's own per-sweep measurement.

The sweeps are the real TMS motor evoked potentials of ``data_samples/real/mepfeatx/``
(ID01: 152 sweeps, first dorsal interosseous; ID02: 40 sweeps, tibialis anterior, paired-pulse,
half of them without a response), read with the ``matlab`` reader and their sidecars. The
reference is MEPFeatX's features table (``*_features.csv``, one row per sweep): ``Amplitude``
(peak-to-peak, uV) and ``Latency`` (onset, ms), both 0 for a sweep without a response. It is
an algorithm's output (10x spline upsampling, thresholds from the median absolute deviation of
the background), not an expert's marks: agreement says how close two detectors are, not which
is right.

How the sweeps are measured: with modality ``mep`` as the sidecars give it, when
:func:`ncsproc.measure` knows that modality; until then (the MEP preset is being added) as
``motor`` with ``earliest_onset=0.010, search_end=0.080, blank_max=0.012`` (the MEP search
window after a TMS pulse). The mode used is recorded in ``DataFrame.attrs["mode"]`` and
printed. The peer (``mep-cmap-analyser``, optional) runs its default detector (``bigoni``)
through :mod:`benchmarks.peer` on the same sweeps, its search starting at the same 10 ms.

``python -m benchmarks.real_sweeps`` (from the repository root) prints the summary per file
and overall, ncsproc and the peer side by side.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data_samples" / "real" / "mepfeatx"
FILES = ("ID01", "ID02")
# Until ncsproc.measure has the "mep" modality: the motor settings with the MEP window.
MOTOR_FALLBACK = {"earliest_onset": 0.010, "search_end": 0.080, "blank_max": 0.012}
SEARCH_START_MS = 10.0
ONSET_TOLERANCE_MS = 1.0
P2P_TOLERANCE = 0.01

COLUMNS = [
    "file",
    "sweep",
    "ref_response",
    "ref_onset_latency_ms",
    "ref_peak_to_peak_uv",
    "response",
    "onset_latency_ms",
    "peak_to_peak_uv",
    "status",
    "flags",
]


def _ensure_src_on_path() -> None:
    src = REPO / "src"
    if src.is_dir() and str(src) not in sys.path:
        sys.path.insert(0, str(src))


def reference(name: str, folder: Path = SAMPLES) -> pd.DataFrame:
    """MEPFeatX's features of ``<name>_features.csv``: onset (ms), peak-to-peak (uV), response.

    A row of zeros is MEPFeatX's "no response" (peak-to-peak below its minimum); a NaN row
    (feature extraction failed on a response) has ``ref_response`` NaN and is left out of the
    onset and amplitude comparisons.
    """
    table = pd.read_csv(Path(folder) / f"{name}_features.csv")
    amp = table["Amplitude"].to_numpy(dtype=float)
    lat = table["Latency"].to_numpy(dtype=float)
    response = np.where(np.isnan(amp), np.nan, (amp > 0).astype(float))
    return pd.DataFrame(
        {
            "sweep": np.arange(len(table)),
            "ref_response": response,
            "ref_onset_latency_ms": np.where(response == 1, lat, np.nan),
            "ref_peak_to_peak_uv": np.where(response == 1, amp, np.nan),
        }
    )


def read_sweeps(path: Path):
    """The trace set of one MAT-file and how it was read.

    ``ncsproc.read`` first (sidecar, ids, validation); while it refuses files whose side and
    nerve are unknown (the MEPFeatX files say neither), the ``matlab`` reader's own output,
    which is the same sweeps with the same sidecar facts, unvalidated.
    """
    import ncsproc
    from ncsproc.errors import FormatError
    from ncsproc.formats.matlab import read_matlab

    try:
        return ncsproc.read(path), "ncsproc.read"
    except FormatError as exc:
        return read_matlab(path), f"matlab reader (ncsproc.read refused: {exc})"


def _measure(traces, validated: bool, measure_kwargs: dict):
    """``ncsproc.measure`` with the traces' modality, else as motor with the MEP window."""
    import ncsproc
    from ncsproc.errors import SchemaError

    try:
        return ncsproc.measure(traces, validate=validated, **measure_kwargs), "modality as read"
    except (SchemaError, ValueError, KeyError) as exc:
        reason = str(exc)
    motor = traces.assign_coords(
        modality=(
            "trace",
            np.array(["motor"] * traces.sizes["trace"], dtype=object),
            traces["modality"].attrs,
        )
    )
    params = {**MOTOR_FALLBACK, **measure_kwargs}
    shown = ", ".join(f"{k}={v}" for k, v in MOTOR_FALLBACK.items())
    return (
        ncsproc.measure(motor, validate=validated, **params),
        f"motor + {shown} (modality as read refused: {reason})",
    )


def _flag_names(mask: int) -> str:
    from ncsproc.kernels import FLAG_NAMES

    return ";".join(name for bit, (name, _) in FLAG_NAMES.items() if int(mask) & int(bit))


def evaluate(measure_kwargs: dict | None = None, folder: Path = SAMPLES) -> pd.DataFrame:
    """ncsproc's onset and peak-to-peak of every sweep next to MEPFeatX's.

    Parameters
    ----------
    measure_kwargs : dict, optional
        Extra parameters for :func:`ncsproc.measure` (they override the motor fallback's).
    folder : path, optional
        Folder with ``ID01.mat``, ``ID02.mat``, their sidecars and features tables.

    Returns
    -------
    pandas.DataFrame
        One row per sweep: ``file``, ``sweep`` (0-based), ``ref_response`` (1/0, NaN when
        MEPFeatX failed), ``ref_onset_latency_ms``, ``ref_peak_to_peak_uv``, ``response`` (1
        when the status is ``ok``), ``onset_latency_ms``, ``peak_to_peak_uv``, ``status``,
        ``flags`` (QC flag names). ``attrs``: ``mode`` and ``read`` (per file, how it was
        measured and read).
    """
    _ensure_src_on_path()
    measure_kwargs = dict(measure_kwargs or {})
    parts, modes, reads = [], {}, {}
    for name in FILES:
        traces, how = read_sweeps(Path(folder) / f"{name}.mat")
        reads[name] = how
        res, mode = _measure(traces, how == "ncsproc.read", measure_kwargs)
        modes[name] = mode
        ref = reference(name, folder)
        if len(ref) != traces.sizes["trace"]:
            raise ValueError(
                f"{name}: {len(ref)} reference rows for {traces.sizes['trace']} sweeps"
            )
        status = res["status"].values.astype(str)
        part = ref.copy()
        part.insert(0, "file", f"{name}.mat")
        part["response"] = (status == "ok").astype(float)
        part["onset_latency_ms"] = res["onset_latency"].values * 1e3
        part["peak_to_peak_uv"] = res["peak_to_peak"].values * 1e6
        part["status"] = status
        part["flags"] = [_flag_names(m) for m in res["qc_flags"].values]
        parts.append(part)
    df = pd.concat(parts, ignore_index=True)[COLUMNS]
    df.attrs["mode"] = modes
    df.attrs["read"] = reads
    return df


def evaluate_peer(method: str = "bigoni", folder: Path = SAMPLES) -> pd.DataFrame | None:
    """The peer's onset and peak-to-peak on the same sweeps (None when it is not installed).

    Same columns as :func:`evaluate`; ``status`` is ``ok`` when the peer gives an onset, else
    ``no_onset``; ``flags`` is empty. Its search starts at 10 ms (as ncsproc's) and ends at the
    end of the sweep; its peak-to-peak spans the same range.
    """
    _ensure_src_on_path()
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from benchmarks import peer as P

    if not P.available():
        return None
    parts = []
    for name in FILES:
        traces, _ = read_sweeps(Path(folder) / f"{name}.mat")
        onset, ptp, _ = P.peer_measure(traces, method, search_start_ms=SEARCH_START_MS)
        part = reference(name, folder)
        part.insert(0, "file", f"{name}.mat")
        found = np.isfinite(onset)
        part["response"] = found.astype(float)
        part["onset_latency_ms"] = onset * 1e3
        part["peak_to_peak_uv"] = np.where(found, ptp * 1e6, np.nan)
        part["status"] = np.where(found, "ok", "no_onset")
        part["flags"] = ""
        parts.append(part)
    df = pd.concat(parts, ignore_index=True)[COLUMNS]
    df.attrs["mode"] = {name: f"peer {method}, search from {SEARCH_START_MS} ms" for name in FILES}
    return df


def summary(df: pd.DataFrame) -> dict:
    """Agreement of one method with MEPFeatX over the rows of ``df``.

    Returns
    -------
    dict
        ``n_sweeps``; ``n_ref_response`` (sweeps MEPFeatX calls a response);
        ``onset_within_1ms`` (fraction of those whose onset is within 1 ms of the reference;
        a missing onset counts as outside); ``onset_median_error_ms`` (signed, ours minus
        reference, over sweeps with both onsets) and ``onset_median_abs_error_ms``;
        ``p2p_within_1pct`` (fraction of reference responses whose peak-to-peak is within 1 %
        of the reference; missing counts as outside); ``p2p_median_abs_error_pct``;
        ``status_counts``; ``response_agreement`` (fraction of sweeps with a reference where
        response/no-response agree) with ``both_response``, ``ref_only``, ``ours_only``,
        ``neither`` counts.
    """
    known = df[df["ref_response"].notna()]
    resp = known[known["ref_response"] == 1]
    onset_err = resp["onset_latency_ms"] - resp["ref_onset_latency_ms"]
    p2p_err = (resp["peak_to_peak_uv"] / resp["ref_peak_to_peak_uv"] - 1).abs()
    n_resp = len(resp)
    ref = known["ref_response"] == 1
    ours = known["response"] == 1

    def frac(mask) -> float:
        return float(mask.sum() / n_resp) if n_resp else float("nan")

    def median(values) -> float:
        values = values.dropna()
        return float(values.median()) if len(values) else float("nan")

    return {
        "n_sweeps": int(len(df)),
        "n_ref_response": int(n_resp),
        "onset_within_1ms": frac(onset_err.abs() <= ONSET_TOLERANCE_MS),
        "onset_median_error_ms": median(onset_err),
        "onset_median_abs_error_ms": median(onset_err.abs()),
        "p2p_within_1pct": frac(p2p_err <= P2P_TOLERANCE),
        "p2p_median_abs_error_pct": median(p2p_err * 100),
        "status_counts": {str(k): int(v) for k, v in df["status"].value_counts().items()},
        "response_agreement": float((ref == ours).mean()) if len(known) else float("nan"),
        "both_response": int((ref & ours).sum()),
        "ref_only": int((ref & ~ours).sum()),
        "ours_only": int((~ref & ours).sum()),
        "neither": int((~ref & ~ours).sum()),
    }


_ROWS = (
    ("sweeps", "n_sweeps", "{:d}"),
    ("MEPFeatX responses", "n_ref_response", "{:d}"),
    ("onset within 1 ms (%)", "onset_within_1ms", "pct"),
    ("onset median error (ms)", "onset_median_error_ms", "{:+.2f}"),
    ("onset median abs error (ms)", "onset_median_abs_error_ms", "{:.2f}"),
    ("p2p within 1 % (%)", "p2p_within_1pct", "pct"),
    ("p2p median abs error (%)", "p2p_median_abs_error_pct", "{:.2f}"),
    ("response agreement (%)", "response_agreement", "pct"),
    ("  both / ref only / ours only / neither", None, "confusion"),
    ("status counts", "status_counts", "counts"),
)


def _cell(s: dict, key, fmt) -> str:
    if fmt == "confusion":
        return f"{s['both_response']} / {s['ref_only']} / {s['ours_only']} / {s['neither']}"
    if fmt == "counts":
        return ", ".join(f"{k} {v}" for k, v in sorted(s[key].items()))
    value = s[key]
    if isinstance(value, float) and np.isnan(value):
        return "-"
    if fmt == "pct":
        return f"{100 * value:.1f}"
    return fmt.format(value)


def format_table(results: dict[str, pd.DataFrame]) -> str:
    """The summaries per file and overall, one column per method."""
    methods = list(results)
    groups = [(f, lambda d, f=f: d[d["file"] == f"{f}.mat"]) for f in FILES]
    groups.append(("all", lambda d: d))
    lines = []
    for group, pick in groups:
        sums = {m: summary(pick(results[m])) for m in methods}
        lines.append(f"\n{group}")
        width = max(len(r[0]) for r in _ROWS) + 2
        lines.append(" " * width + " | ".join(f"{m:>28}" for m in methods))
        for label, key, fmt in _ROWS:
            cells = [_cell(sums[m], key, fmt) for m in methods]
            lines.append(f"{label:<{width}}" + " | ".join(f"{c:>28}" for c in cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_sweeps", description=__doc__)
    parser.add_argument("--no-peer", action="store_true", help="ncsproc only")
    parser.add_argument("--csv", type=Path, help="write the per-sweep rows of every method here")
    args = parser.parse_args(argv)

    ours = evaluate()
    for name in FILES:
        print(f"{name}.mat read with {ours.attrs['read'][name]}")
        print(f"{name}.mat measured as {ours.attrs['mode'][name]}")
    results = {"ncsproc": ours}
    if not args.no_peer:
        peer = evaluate_peer()
        if peer is None:
            print("peer (mep-cmap-analyser) not installed: ncsproc only")
        else:
            results["peer bigoni"] = peer
    print(format_table(results))
    if args.csv:
        pd.concat([d.assign(method=m) for m, d in results.items()]).to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
