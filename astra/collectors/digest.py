"""The hourly performance digest: the last hour as charts, on the performance channel.

Every run (hourly by default) emits one ``digest`` event with the trend fold's charts of
the last ``window_s`` in ``BUCKETS`` buckets (five minutes each for an hour; labelled in
the report's time zone), and the period's totals.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from astra.collectors.trends import TrendFold
from astra.events import Digest, Event

BUCKETS = 12


class DigestCollector:
    """Folds every event into five-minute buckets; each run emits the last hour's digest."""

    name = "digest"

    def __init__(
        self,
        routes: Mapping[str, str],
        *,
        window_s: float = 3600.0,
        timezone: str = "UTC",
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_s = window_s
        self._clock = wall_clock
        self._tz = ZoneInfo(timezone)
        self.step_s = window_s / BUCKETS
        self.trends = TrendFold(
            step_s=self.step_s, max_buckets=BUCKETS + 2, routes=routes, wall_clock=wall_clock
        )
        # The bus listener and the event types it wants (all).
        self.observe_many = self.trends.observe_many
        self.kinds = TrendFold.kinds

    def collect(self) -> list[Event]:
        """The digest of the last ``window_s``."""
        end = self._clock()
        start = end - self.window_s + self.step_s
        events, commands, errors = self.trends.totals(start, end)
        charts = self.trends.charts(start, end, self._label)
        if not charts:
            return []
        return [
            Digest(
                source="astra",
                ts=end,
                window_s=self.window_s,
                start=start,
                end=end,
                events=events,
                commands=commands,
                errors=errors,
                charts=charts,
            )
        ]

    def _label(self, ts: float) -> str:
        shape = "%H:%M" if self.step_s >= 60 else "%H:%M:%S"
        return datetime.fromtimestamp(ts, self._tz).strftime(shape)
