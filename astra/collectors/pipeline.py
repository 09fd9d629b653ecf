"""The pipeline's own trouble, reported as ``pipeline`` events on the diagnostics channel.

Only changes are reported, and only when something went wrong (rejected or malformed
input, kernel or buffer drops, retries, refused posts): a healthy pipeline stays quiet
instead of posting about its own posts.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import msgspec

from astra.events import Event, Pipeline
from astra.stats import PipelineStats

TROUBLE = (
    "rejected_http",
    "malformed_udp",
    "kernel_drops",
    "dropped_buffer",
    "retries",
    "rate_limited",
    "failed_posts",
    "undeliverable",
)


class PipelineReporter:
    """Turns changes of the trouble counters into ``pipeline`` events."""

    def __init__(
        self,
        stats: PipelineStats,
        emit: Callable[[Event], object],
        refresh: Callable[[], None] = lambda: None,
    ) -> None:
        self._stats = stats
        self._emit = emit
        self._refresh = refresh
        self._last = stats.snapshot()

    def report(self, window_s: float) -> Pipeline | None:
        """Emit a ``pipeline`` event if any trouble counter moved since the last report."""
        self._refresh()
        now = self._stats.snapshot()
        delta = {k: max(0, now[k] - self._last[k]) for k in (*TROUBLE, "received")}
        self._last = now
        if not any(delta[k] for k in TROUBLE):
            return None
        event = msgspec.convert({"window_s": window_s, **delta}, Pipeline)
        self._emit(event)
        return event

    async def run(self, interval: float) -> None:
        """Report every ``interval`` seconds, forever."""
        while True:
            await anyio.sleep(interval)
            self.report(interval)
