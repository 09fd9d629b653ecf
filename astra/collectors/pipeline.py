"""The pipeline's own trouble, reported as ``pipeline`` events on the diagnostics channel.

Only changes are reported, and only when something went wrong (rejected, unauthorized or
malformed input, kernel or buffer drops, retries, refused posts, refused connections): a
healthy pipeline stays quiet instead of posting about its own posts. Each report carries
the change since the previous one and the drops since start.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import msgspec

from astra.events import Event, Pipeline
from astra.statistics import PipelineTotals, SidecarStatistics

# The counters a report carries: every pipeline total the event has a field for.
WINDOW_COUNTERS = tuple(
    f for f in Pipeline.__struct_fields__ if f in PipelineTotals.__struct_fields__
)
TROUBLE = tuple(f for f in WINDOW_COUNTERS if f != "received")


class PipelineReporter:
    """Turns changes of the trouble counters into ``pipeline`` events."""

    def __init__(
        self, snapshot: Callable[[], SidecarStatistics], emit: Callable[[Event], object]
    ) -> None:
        self._snapshot = snapshot
        self._emit = emit
        self._last: PipelineTotals | None = None

    def report(self, window_s: float) -> Pipeline | None:
        """Emit a ``pipeline`` event if any trouble counter moved since the last report."""
        snapshot = self._snapshot()
        now = snapshot.totals
        last = self._last
        delta = {
            name: max(0, getattr(now, name) - (getattr(last, name) if last else 0))
            for name in WINDOW_COUNTERS
        }
        self._last = now
        if not any(delta[name] for name in TROUBLE):
            return None
        dropped_by_channel = {
            name: channel.stream.dropped_total
            for name, channel in snapshot.channels.items()
            if channel.stream.dropped_total
        }
        event = msgspec.convert(
            {
                "window_s": window_s,
                **delta,
                "dropped_buffer_total": now.dropped_buffer,
                "kernel_drops_total": now.kernel_drops,
                "undeliverable_total": now.undeliverable,
                "dropped_by_channel": dropped_by_channel,
            },
            Pipeline,
        )
        self._emit(event)
        return event

    async def run(self, interval: float) -> None:
        """Report every ``interval`` seconds, forever."""
        while True:
            await anyio.sleep(interval)
            self.report(interval)
