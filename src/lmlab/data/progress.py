"""Progress of long data preparation (BPE training, tokenizing): a rich bar on a terminal, a log line
every `interval` seconds otherwise (files, CI, SLURM), both with a rate and, when the size is known, an ETA."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger(__name__)


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f}{unit}"
    return f"{value:.0f}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class DataProgress:
    """Counts characters read (against `total_chars`, for the ETA) and `rate_unit`s made (for the rate).

    Used as a context manager; `advance(chars, count)` after each batch.
    """

    def __init__(self, description: str, total_chars: int | None = None, rate_unit: str = "tokens",
                 interval: float = 10.0, live: bool | None = None):
        self.description, self.total, self.unit, self.interval = description, total_chars, rate_unit, interval
        self.live = sys.stderr.isatty() if live is None else live
        self.chars = self.count = 0
        self._bar = self._task = None

    def __enter__(self) -> DataProgress:
        self.start = self._last_line = time.perf_counter()
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[made]} {task.fields[rate]}"),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 transient=True, refresh_per_second=2)
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total, made="", rate="")
        return self

    def rate(self) -> float:
        return self.count / max(time.perf_counter() - self.start, 1e-9)

    def eta(self) -> float | None:
        if not self.total or not self.chars:
            return None
        elapsed = time.perf_counter() - self.start
        return max(self.total - self.chars, 0) * elapsed / self.chars

    def advance(self, chars: int, count: int) -> None:
        self.chars += chars
        self.count += count
        if self._bar is not None:
            self._bar.update(self._task, completed=min(self.chars, self.total or self.chars),
                             made=f"{_si(self.count)} {self.unit}", rate=f"{_si(self.rate())} {self.unit}/s")
        elif time.perf_counter() - self._last_line >= self.interval:
            self._last_line = time.perf_counter()
            log.info("%s", self.line())

    def line(self) -> str:
        text = f"{self.description}: {_si(self.count)} {self.unit}, {_si(self.rate())} {self.unit}/s"
        if self.total:
            eta = self.eta()
            text += f", {min(100 * self.chars / self.total, 100):.0f}% of ~{_si(self.total)} characters"
            text += f", ETA {_duration(eta)}" if eta is not None else ""
        return text

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
