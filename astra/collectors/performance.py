"""The pipeline's own figures and the client's latencies, as one ``performance`` event a run.

Pipeline figures come from the running sidecar (events published, queue depth, the delivery
latency histogram and trouble counters); gateway and command latencies come from the bus:
``latency`` and ``command`` events are counted into log histograms
(``astra.collectors.quantiles``) and summarised as p50/p95/p99 over each run's window.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from astra.collectors.quantiles import LogHistogram
from astra.events import Command, Event, Latency, Performance
from astra.stats import PipelineStats

TREND_POINTS = 15
SLOW_COMMANDS = 5
# Distinct command names tracked per window: bounds memory if names are unbounded.
MAX_COMMAND_NAMES = 500
MAX_LATENCY_SERIES = 50
# The series the alert rules read: never crowded out by the cap on custom series.
CORE_SERIES = frozenset({"gateway", "command"})

Probe = Callable[[], Mapping[str, Any]]


class PerformanceCollector:
    """Listens to the bus for latencies; each run emits the window's summary."""

    name = "performance"

    def __init__(
        self,
        stats: PipelineStats,
        probe: Probe,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stats = stats
        self._probe = probe
        self._clock = clock
        self._last_t = clock()
        self._last = dict(probe())
        self._trend: deque[float] = deque(maxlen=TREND_POINTS)
        self._reset()

    def _reset(self) -> None:
        self._latency: dict[str, LogHistogram] = {}
        self._by_command: dict[str, LogHistogram] = {}
        self._commands = 0
        self._failed = 0

    def observe(self, event: Event) -> None:
        """Bus listener: count latency samples and commands."""
        if isinstance(event, Latency):
            self._sample(self._latency, event.of, event.ms, MAX_LATENCY_SERIES, exempt=CORE_SERIES)
        elif isinstance(event, Command):
            self._commands += 1
            self._failed += not event.ok
            if event.duration_ms is not None:
                self._sample(
                    self._latency,
                    "command",
                    event.duration_ms,
                    MAX_LATENCY_SERIES,
                    exempt=CORE_SERIES,
                )
                self._sample(self._by_command, event.name, event.duration_ms, MAX_COMMAND_NAMES)

    @staticmethod
    def _sample(
        series: dict[str, LogHistogram],
        key: str,
        value: float,
        cap: int,
        exempt: frozenset[str] = frozenset(),
    ) -> None:
        histogram = series.get(key)
        if histogram is None:
            # The cap counts every series, so the core ones may go past it by their number.
            if len(series) >= cap and key not in exempt:
                return
            histogram = series[key] = LogHistogram()
        histogram.add(value)

    def collect(self) -> list[Event]:
        """Summarise the window since the previous run and start a new one."""
        now = self._clock()
        window = max(1e-6, now - self._last_t)
        figures = dict(self._probe())
        delivery, self._stats.delivery_latency_ms = self._stats.delivery_latency_ms, LogHistogram()

        def delta(*keys: str) -> int:
            return sum(max(0, int(figures.get(k, 0)) - int(self._last.get(k, 0))) for k in keys)

        events_in = delta("published")
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
            queue_depth=int(figures.get("pending", 0)),
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


def _gateway_first(item: tuple[str, LogHistogram]) -> tuple[int, str]:
    return (0 if item[0] == "gateway" else 1 if item[0] == "command" else 2, item[0])
