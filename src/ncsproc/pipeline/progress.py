"""Progress of a cohort run: a bar on a terminal, plain log lines otherwise.

The library reports progress through a callback receiving :class:`Progress` snapshots; it never
prints. :class:`ProgressDisplay` is the command line's renderer: a ``tqdm`` bar (files done,
rate, ETA, failures so far) when the stream is a terminal, otherwise one line every
``interval`` seconds and at the end, which is what a log file or a batch system wants.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Progress", "ProgressDisplay"]


@dataclass(frozen=True)
class Progress:
    """A snapshot of a run's progress (files and exams counted as their task finishes)."""

    files_done: int
    files_total: int
    exams_done: int
    exams_total: int
    failures: int
    cached: int
    elapsed: float
    finished: bool = False

    @property
    def rate(self) -> float:
        """Files per second so far."""
        return self.files_done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate (None before the first task finishes)."""
        if self.files_done == 0 or self.rate == 0:
            return None
        return (self.files_total - self.files_done) / self.rate


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressDisplay:
    """Render :class:`Progress` snapshots on ``stream`` (a bar on a TTY, log lines otherwise).

    Parameters
    ----------
    stream : file, optional
        Default ``sys.stderr``.
    interval : float
        Seconds between log lines when not on a terminal.
    bar : bool, optional
        Force the bar on or off (default: on when ``stream`` is a terminal).
    """

    def __init__(
        self,
        stream=None,
        interval: float = 10.0,
        bar: bool | None = None,
        prefix: str = "ncsproc extract",
    ):
        self.stream = stream if stream is not None else sys.stderr
        self.interval = float(interval)
        self.prefix = prefix
        try:
            tty = self.stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        self.use_bar = tty if bar is None else bool(bar)
        self.bar: Any = None  # a tqdm bar while one is shown
        self._last = 0.0
        self._printed: tuple[int, int] | None = None

    def __call__(self, p: Progress) -> None:
        if self.use_bar:
            self._bar(p)
        else:
            self._line(p)

    def _bar(self, p: Progress) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=p.files_total,
                unit="file",
                desc=self.prefix,
                file=self.stream,
                dynamic_ncols=True,
                smoothing=0.1,
            )
        self.bar.total = p.files_total
        self.bar.n = p.files_done
        exams = (
            f"exams {p.exams_done}/{p.exams_total}, cached {p.cached}, " if p.exams_total else ""
        )
        self.bar.set_postfix_str(f"{exams}failures {p.failures}", refresh=False)
        self.bar.refresh()
        if p.finished:
            self.bar.close()
            self.bar = None

    def _line(self, p: Progress) -> None:
        now = time.monotonic()
        if not p.finished and now - self._last < self.interval and p.files_done:
            return
        if p.finished and self._printed == (p.files_done, p.failures):
            return  # the last line already said it
        self._last = now
        self._printed = (p.files_done, p.failures)
        pct = 100.0 * p.files_done / p.files_total if p.files_total else 100.0
        exams = f"{p.exams_done}/{p.exams_total} exams, " if p.exams_total else ""
        print(
            f"{self.prefix}: {p.files_done}/{p.files_total} files ({pct:.1f} %), "
            f"{exams}{p.rate:.1f} files/s, "
            f"ETA {_duration(p.eta if not p.finished else 0)}, {p.failures} failure(s)",
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
