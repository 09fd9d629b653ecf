"""The pipeline's own figures and the client's latencies, as one ``performance`` event a run.

Pipeline figures come from the running sidecar (events published, queue depth, the delivery
latency histogram and trouble counters); gateway and command latencies come from the bus:
``latency`` and ``command`` events are counted into log histograms
(``astra.quantiles``) and summarised as p50/p95/p99 over each run's window.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from typing import cast

from astra.events import Command, Event, Latency, Performance
from astra.quantiles import LogHistogram
from astra.statistics import SidecarStatistics

TREND_POINTS = 15
SLOW_COMMANDS = 5
# Distinct command names tracked per window: bounds memory if names are unbounded.
MAX_COMMAND_NAMES = 500
MAX_LATENCY_SERIES = 50
# The series the alert rules read: never crowded out by the cap on custom series.
CORE_SERIES = frozenset({"gateway", "command"})


class PerformanceCollector:
    """Listens to the bus for latencies; each run emits the window's summary."""

    name = "performance"

    def __init__(
        self,
        snapshot: Callable[[], SidecarStatistics],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._snapshot = snapshot
        self._clock = clock
        self._last_t = clock()
        # The snapshot before this window; None until the first run (everything counts).
        self._last: SidecarStatistics | None = None
        self._trend: deque[float] = deque(maxlen=TREND_POINTS)
        self._reset()

    def _reset(self) -> None:
        self._latency: dict[str, LogHistogram] = {}
        self._by_command: dict[str, LogHistogram] = {}
        self._commands = 0
        self._failed = 0

    # The event types this projection listens to.
    kinds = (Latency, Command)

    def observe(self, event: Event) -> None:
        """Count one latency sample or command."""
        self.observe_many((event,))

    def observe_many(self, events: Sequence[Event]) -> None:
        """Bus listener: count a batch of latency samples and commands, series by series.

        Each value's bucket is computed once: a command's duration is counted into a
        histogram of its own batch, merged into its name's series and the ``command`` one.
        """
        if not events:
            return
        if type(events[0]) is Latency:
            by_of: dict[str, list[float]] = defaultdict(list)
            for latency in cast(Sequence[Latency], events):
                by_of[latency.of].append(latency.ms)
            for key, values in by_of.items():
                batch = LogHistogram()
                batch.add_many(values)
                self._merge(self._latency, key, batch, MAX_LATENCY_SERIES, exempt=CORE_SERIES)
            return
        commands = cast(Sequence[Command], events)
        self._commands += len(commands)
        self._failed += sum(1 for e in commands if not e.ok)
        by_name: dict[str, list[float]] = defaultdict(list)
        for command in commands:
            if command.duration_ms is not None:
                by_name[command.name].append(command.duration_ms)
        if not by_name:
            return
        every = LogHistogram()
        for key, values in by_name.items():
            batch = LogHistogram()
            batch.add_many(values)
            every.merge(batch)
            self._merge(self._by_command, key, batch, MAX_COMMAND_NAMES)
        self._merge(self._latency, "command", every, MAX_LATENCY_SERIES, exempt=CORE_SERIES)

    @staticmethod
    def _merge(
        series: dict[str, LogHistogram],
        key: str,
        batch: LogHistogram,
        cap: int,
        exempt: frozenset[str] = frozenset(),
    ) -> None:
        histogram = series.get(key)
        if histogram is None:
            # The cap counts every series, so the core ones may go past it by their number.
            if len(series) >= cap and key not in exempt:
                return
            histogram = series[key] = LogHistogram()
        histogram.merge(batch)

    def collect(self) -> list[Event]:
        """Summarise the window since the previous run and start a new one."""
        now = self._clock()
        window = max(1e-6, now - self._last_t)
        figures = self._snapshot()
        last = self._last
        delivery = _delivery_since(figures, last)
        totals, before = figures.totals, last.totals if last is not None else None

        def delta(*names: str) -> int:
            return sum(
                max(0, getattr(totals, n) - (getattr(before, n) if before else 0)) for n in names
            )

        events_in = max(0, figures.bus.published - (last.bus.published if last else 0))
        rate = round(events_in / window, 2)
        self._trend.append(rate)
        latencies = [h.summary(of) for of, h in sorted(self._latency.items(), key=_gateway_first)]
        slow = sorted(
            (h.summary(name) for name, h in self._by_command.items()),
            key=lambda q: -q.p95,
        )[:SLOW_COMMANDS]
        event = Performance(
            source="astra",
            window_s=round(window, 3),
            events_in=events_in,
            events_per_s=rate,
            queue_depth=figures.bus.held,
            delivered=delivery.count,
            delivery_ms=delivery.summary("delivery") if delivery.count else None,
            retries=delta("retries"),
            rate_limited=delta("rate_limited"),
            dropped=delta("dropped_buffer", "kernel_drops", "undeliverable"),
            commands=self._commands,
            commands_failed=self._failed,
            latencies=latencies,
            slow_commands=slow,
            rate_trend=list(self._trend),
        )
        self._last_t, self._last = now, figures
        self._reset()
        return [event]


def _delivery_since(now: SidecarStatistics, before: SidecarStatistics | None) -> LogHistogram:
    """Event-to-post latencies of every channel's posts between two snapshots."""
    merged = LogHistogram()
    for name, channel in now.channels.items():
        previous = before.channels.get(name) if before is not None else None
        merged.merge(
            LogHistogram.since(
                channel.delivery.latency_ms,
                previous.delivery.latency_ms if previous is not None else None,
            )
        )
    return merged


def _gateway_first(item: tuple[str, LogHistogram]) -> tuple[int, str]:
    return (0 if item[0] == "gateway" else 1 if item[0] == "command" else 2, item[0])
