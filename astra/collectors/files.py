"""Watched files: size and growth rate, e.g. "games.db 412 MiB, +6.1 MiB/day".

Read-only: one ``stat`` per file per run. The growth rate is the size change over the
readings of the last day (or since astra started, when that is shorter), per day.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from astra.config import WatchFile
from astra.events import Event, File

TREND_POINTS = 15
GROWTH_HORIZON_S = 86400.0
MAX_READINGS = 2000


def file_label(spec: WatchFile) -> str:
    """The name a watched file is reported under: ``name``, else the file's own name."""
    return spec.name or Path(spec.path).name or spec.path


class _Watched:
    def __init__(self, spec: WatchFile) -> None:
        self.path = spec.path
        self.name = file_label(spec)
        self.readings: deque[tuple[float, int]] = deque(maxlen=MAX_READINGS)

    def add(self, now: float, size: int) -> tuple[float | None, float, list[float]]:
        """Record a reading; the growth per day, the span it is measured over, the trend."""
        readings = self.readings
        readings.append((now, size))
        while readings and now - readings[0][0] > GROWTH_HORIZON_S:
            readings.popleft()
        first_t, first_size = readings[0]
        span = now - first_t
        growth = (size - first_size) / span * 86400 if span > 0 else None
        return (
            None if growth is None else round(growth, 1),
            round(span, 1),
            [float(s) for _, s in list(readings)[-TREND_POINTS:]],
        )


class FilesCollector:
    """Emits one ``file`` event per watched file per run."""

    name = "files"

    def __init__(
        self,
        watch: list[WatchFile],
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._files = [_Watched(spec) for spec in watch]
        self._clock = clock
        self._wall_clock = wall_clock

    def collect(self) -> list[Event]:
        """Stat every watched file; a missing one is reported as such."""
        return [self._read(watched) for watched in self._files]

    def _read(self, watched: _Watched) -> File:
        now = self._clock()
        try:
            size: int | None = os.stat(watched.path).st_size
        except OSError:
            size = None  # missing: reported with no figures, its past readings kept
        growth, span, trend = (None, 0.0, []) if size is None else watched.add(now, size)
        return File(
            source="astra",
            ts=self._wall_clock(),
            name=watched.name,
            path=watched.path,
            exists=size is not None,
            size_bytes=size,
            growth_bytes_per_day=growth,
            growth_span_s=span,
            size_trend=trend,
        )
