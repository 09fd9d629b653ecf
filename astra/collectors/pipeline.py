"""The pipeline's own trouble, reported as ``pipeline`` events on the diagnostics channel.

Only changes are reported, and only when something went wrong (rejected or malformed
input, kernel or buffer drops, retries, refused posts): a healthy pipeline stays quiet
instead of posting about its own posts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

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
        dropped_by_channel: Callable[[], Mapping[str, int]] = dict,
    ) -> None:
        self._stats = stats
        self._emit = emit
        self._refresh = refresh
        self._dropped_by_channel = dropped_by_channel
        self._last = stats.snapshot()

    def report(self, window_s: float) -> Pipeline | None:
        """Emit a ``pipeline`` event if any trouble counter moved since the last report.

        Each report carries the change since the last one and the totals since start.
        """
        self._refresh()
        now = self._stats.snapshot()
        delta = {k: max(0, now[k] - self._last[k]) for k in (*TROUBLE, "received")}
        self._last = now
        if not any(delta[k] for k in TROUBLE):
            return None
        totals = {
            "dropped_buffer_total": now["dropped_buffer"],
            "kernel_drops_total": now["kernel_drops"],
            "undeliverable_total": now["undeliverable"],
            "dropped_by_channel": {k: v for k, v in self._dropped_by_channel().items() if v},
        }
        event = msgspec.convert({"window_s": window_s, **delta, **totals}, Pipeline)
        self._emit(event)
        return event

    async def run(self, interval: float) -> None:
        """Report every ``interval`` seconds, forever."""
        while True:
            await anyio.sleep(interval)
            self.report(interval)
