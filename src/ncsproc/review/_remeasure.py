"""The measures a reviewed marker changes, recomputed from the trace's samples.

NOT the kernels' code, but a second copy of parts of it (issue 18 item 3), to be replaced by
calls to the kernel stage modules once they exist (``ncsproc.kernels._baseline``, ``_onset``,
``_peaks``, ``_fwave``; the kernels' owner):

* ``_Trace.smoothed``: the kernel's moving-average smoothing (``smooth`` parameter);
* ``_Trace.area``: the negative-phase area between two times (the kernel's area stage);
* ``_Trace.peak_to_peak``: the positive peak after the negative one, found on the smoothed
  signal with the kernel's noise threshold;
* ``NOISE_FLOOR``: a copy of ``ncsproc.kernels._core.NOISE_FLOOR``.

(The ends of the negative phase and of the response are taken from the kernel's durations,
not recomputed.)

After that, :func:`_recompute` keeps only the marker bookkeeping (which variable a marker
sets, the checks of a reviewed time). Until then ``tests/test_review.py`` holds these to the
kernel's values within the tolerances of ``formats/review.md``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import xarray as xr

from .overrides import MARKER_VARIABLES, MEASURED, Override, _ms

NOISE_FLOOR = 1e-12
"""V: the kernel's floor under the noise SD (thresholds of noise-free traces stay meaningful)."""
_EPS = 1e-9  # samples: index rounding slack (a time the kernel wrote as t0 + i/fs maps back to i)


# ----------------------------------------------------------------------------------------------
# recomputation from the samples
# ----------------------------------------------------------------------------------------------
class _Skip(Exception):
    """An override of one trace cannot be applied: (line, marker, message)."""

    def __init__(self, row: Override, message: str):
        super().__init__(message)
        self.row = row
        self.message = message


def _time_index(t: float, t0: float, fs: float) -> int:
    """The kernel's ``time_index``: first sample at or after ``t``."""
    v = (t - t0) * fs - 1e-6
    if not v < 1e15:
        return 1 << 60
    return int(math.ceil(v))


def _n_of(duration: float, fs: float, minimum: int) -> int:
    """The kernel's ``n_of``: samples in ``duration`` (rounded), at least ``minimum``."""
    v = duration * fs
    if not v < 1e15:
        return 1 << 60
    return max(int(math.floor(v + 0.5)), minimum)


class _Trace:
    """One trace's samples and the kernel's baseline, for the recomputations."""

    def __init__(
        self,
        y: np.ndarray,
        fs: float,
        t0: float,
        params: dict,
        is_f: bool,
        baseline: float,
        noise: float,
        artefact_end: float,
    ):
        self.y = y
        self.n = y.size
        self.fs = fs
        self.t0 = t0
        self.prm = params
        self.is_f = is_f
        self.level = baseline
        self.noise = noise
        self.h = _n_of(params["smooth"], fs, 1) // 2
        a = (artefact_end - t0) * fs
        self.a = int(round(a)) if math.isfinite(a) else 0
        self._s: dict[int, np.ndarray] = {}

    def index(self, t: float) -> float:
        """Fractional sample index of time ``t``."""
        return (t - self.t0) * self.fs

    def smoothed(self, start: int) -> np.ndarray:
        """Centred moving average (``smooth``) of signal - baseline over [start, n), windows
        clipped to [start, n) (the kernel's detection signal, with start = artefact end)."""
        s = self._s.get(start)
        if s is None:
            seg = self.y[start:] - self.level
            c = np.concatenate(([0.0], np.cumsum(seg)))
            i = np.arange(start, self.n)
            lo = np.maximum(i - self.h, start)
            hi = np.minimum(i + self.h + 1, self.n)
            s = (c[hi - start] - c[lo - start]) / (hi - lo)
            self._s[start] = s
        return s

    def area(self, t_on: float, t_end: float) -> float:
        """Area below baseline from onset to end: dt x sum of max(-s, 0) over the samples
        ceil(onset) .. floor(end) of the smoothed deviation s (the kernel's definition)."""
        i0 = int(math.ceil(self.index(t_on) - _EPS))
        i1 = int(math.floor(self.index(t_end) + _EPS))
        start = max(min(self.a, i0), 0)
        s = self.smoothed(start)
        part = s[max(i0, start) - start : i1 + 1 - start]
        return float(-part[part < 0.0].sum()) / self.fs

    def value_at(self, t: float) -> float:
        """Raw signal at ``t``, linear interpolation between the two nearest samples."""
        x = self.index(t)
        j = min(max(int(math.floor(x + _EPS)), 0), self.n - 1)
        f = x - j
        if j + 1 >= self.n or f <= _EPS:
            return float(self.y[j])
        return float(self.y[j] * (1.0 - f) + self.y[j + 1] * f)

    def peak_to_peak(self, t_peak: float) -> float:
        """Largest smoothed deviation after the peak sample p (to the end of the search window,
        or of the M wave of an F-wave trace) minus the smoothed deviation at p; p is the
        smallest smoothed sample within ``peak_fit``/2 of the reviewed time (the kernel's
        parabola vertex lies that close to its smoothed minimum)."""
        c = min(max(int(round(self.index(t_peak))), 0), self.n - 1)
        r = _n_of(self.prm["peak_fit"], self.fs, 2) // 2
        start = max(min(self.a, c - r), 0)
        s = self.smoothed(start)
        lo, hi = max(c - r, start), min(c + r + 1, self.n)
        p = lo + int(np.argmin(s[lo - start : hi - start]))
        e = min(_time_index(self.prm["search_end"], self.t0, self.fs), self.n)
        if p >= e:
            e = self.n
        e_lobe = e
        if self.is_f:
            sig_s = max(self.noise, NOISE_FLOOR) / math.sqrt(2 * self.h + 1)
            thr = self.prm["k_f"] * sig_s
            run = _n_of(self.prm["f_gap"], self.fs, 1)
            quiet = np.abs(s[p - start :]) <= thr
            if quiet.size >= run:
                full = np.flatnonzero(
                    np.lib.stride_tricks.sliding_window_view(quiet, run).all(axis=1)
                )
                if full.size:
                    e_m = p + int(full[0])
                    if e_m + run < e:
                        e_lobe = e_m + run
        seg = s[p - start : e_lobe - start]
        return float(seg.max() - seg[0])

    def in_range(self, t: float) -> bool:
        x = self.index(t)
        return -_EPS <= x <= self.n - 1 + _EPS

    def range_text(self) -> str:
        return f"{_ms(self.t0)} to {_ms(self.t0 + (self.n - 1) / self.fs)}"


def _recompute(
    tr: _Trace | None, values: dict, status: str, modality: str, marks: dict[str, Override]
) -> tuple[dict, str, dict[str, set]]:
    """New values of one trace: (values, status, {variable: markers that set it}).

    Raises _Skip naming the first line that cannot be applied.
    """
    new = dict(values)
    by: dict[str, set] = {}

    def touch(var: str, marker: str) -> None:
        by.setdefault(var, set()).add(marker)

    first = min(marks.values(), key=lambda r: r.line)
    nr = [marks[k] for k in ("onset", "peak") if k in marks and marks[k].is_none]
    if nr:  # the reviewer says there is no response
        for var in MEASURED:
            new[var] = math.nan
            for r in nr:
                touch(var, r.marker)
        return new, "no_response", by
    if "f_onset" in marks and modality != "fwave":
        raise _Skip(
            marks["f_onset"],
            f"it is a {modality} trace; an f_onset override is only for "
            "F-wave traces (modality fwave)",
        )
    if tr is None or not (math.isfinite(tr.level) and math.isfinite(tr.noise)):
        raise _Skip(
            first,
            f"status {status}: the kernel found no baseline for this trace, so no "
            "value can be referred to it; it cannot be reviewed",
        )
    for r in marks.values():
        if not r.is_none and not tr.in_range(r.time):
            raise _Skip(
                r,
                f"time {_ms(r.time)} of the {r.marker} is outside the trace "
                f"({tr.range_text()}); give a time within the recorded sweep",
            )
    new_status = status
    if status != "ok":
        missing = [k for k in ("onset", "peak") if k not in marks]
        if missing:
            raise _Skip(
                first,
                f"the trace has status {status} (no measured response), so a "
                "reviewed response needs both an onset and a peak line (and an end line "
                f"for the durations and the area); {' and '.join(missing)} missing",
            )
        for var in MEASURED:
            new[var] = math.nan
        new_status = "ok"
    onset = new["onset_latency"]
    neg_end = onset + new["negative_duration"]
    tot_end = onset + new["total_duration"]
    area_due = set()
    if "onset" in marks:
        onset = marks["onset"].time
        new["onset_latency"] = onset
        new["negative_duration"] = neg_end - onset
        new["total_duration"] = tot_end - onset
        for var in MARKER_VARIABLES["onset"]:
            touch(var, "onset")
        area_due.add("onset")
    if "end" in marks:
        tot_end = marks["end"].time
        new["total_duration"] = tot_end - onset
        for var in MARKER_VARIABLES["end"]:
            touch(var, "end")
        area_due.add("end")
    if area_due:
        new["negative_area"] = math.nan
        if math.isfinite(onset) and math.isfinite(tot_end):
            new["negative_area"] = tr.area(onset, tot_end)
            if not math.isfinite(new["negative_area"]):
                raise _Skip(
                    marks.get("onset") or marks["end"],
                    "the trace has non-finite "
                    f"samples between the onset ({_ms(onset)}) and the end "
                    f"({_ms(tot_end)}); the area cannot be computed",
                )
    if "peak" in marks:
        tp = marks["peak"].time
        amp = tr.level - tr.value_at(tp)
        if not math.isfinite(amp):
            raise _Skip(marks["peak"], f"the signal is not finite at the reviewed peak ({_ms(tp)})")
        if not amp > 0.0:
            raise _Skip(
                marks["peak"],
                f"the signal at the reviewed peak ({_ms(tp)}) is not "
                f"below the baseline ({amp * 1e6:.2f} uV); the peak marker is the "
                "negative peak",
            )
        new["peak_latency"] = tp
        new["amplitude"] = amp
        new["snr"] = 20.0 * math.log10(amp / tr.noise) if tr.noise > 0.0 else math.inf
        new["peak_to_peak"] = tr.peak_to_peak(tp)
        for var in MARKER_VARIABLES["peak"]:
            touch(var, "peak")
    if "f_onset" in marks:
        new["f_latency"] = marks["f_onset"].time
        touch("f_latency", "f_onset")
    # the markers must stay in order with the machine values they did not replace
    peak = new["peak_latency"]
    if not onset < peak:
        r = marks.get("onset") or marks["peak"]
        raise _Skip(
            r,
            f"the onset ({_ms(onset)}) must come before the negative peak "
            f"({_ms(peak)}); correct the {'peak' if r.marker == 'onset' else 'onset'} "
            "too, or check the time",
        )
    if math.isfinite(tot_end) and not peak < tot_end:
        r = marks.get("end") or marks.get("peak") or marks["onset"]
        raise _Skip(
            r,
            f"the end of the response ({_ms(tot_end)}) must come after the negative "
            f"peak ({_ms(peak)})",
        )
    if "end" in marks and math.isfinite(neg_end) and tot_end < neg_end:
        raise _Skip(
            marks["end"],
            f"the end ({_ms(tot_end)}) is before the first return to "
            f"baseline after the peak ({_ms(neg_end)}, end of negative_duration); the end "
            "marker is the end of the last negative lobe",
        )
    f = new["f_latency"]
    if "f_onset" in marks and math.isfinite(f) and not f > peak:
        raise _Skip(
            marks["f_onset"],
            f"the F-wave onset ({_ms(f)}) must come after the M wave's negative peak ({_ms(peak)})",
        )
    return new, new_status, by


def _params(measures: xr.Dataset) -> dict:
    text = measures.attrs.get("measure_parameters")
    if text:
        return json.loads(text)
    from .. import kernels as K

    return K.table_as_dict(K.default_table())


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b
