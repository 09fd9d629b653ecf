"""Trends: the figures of the events on the bus, per time bucket, as chart data.

A projection like the daily report's fold, kept per bucket (an hour for the report, five
minutes for the hourly digest) so that it can be drawn: host CPU and memory, gateway
latency p50/p95, commands and errors, and events per channel. Bounded: at most
``max_buckets`` buckets are kept, the oldest dropped first. No drawing here: the charts are
data (``Chart``) carried by the ``report`` and ``digest`` events; the sinks draw them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, cast

import msgspec

from astra.events import Chart, ChartSeries, Command, Error, Event, Latency, Log, System, route_key
from astra.quantiles import LogHistogram
from astra.units import fmt_duration, fmt_ms

# What the channels chart calls the destinations, in the order they are drawn.
CHANNEL_ORDER = ("analytics", "diagnostics", "logs", "performance")


class _Bucket(msgspec.Struct, kw_only=True):
    cpu_sum: float = 0.0
    memory_sum: float = 0.0
    system_samples: int = 0
    gateway: LogHistogram = msgspec.field(default_factory=LogHistogram)
    commands: int = 0
    errors: int = 0
    routes: Counter[str] = msgspec.field(default_factory=Counter)


class TrendFold:
    """Per-bucket figures of every event; ``charts()`` turns a span of them into charts."""

    # Every event counts (for events per channel).
    kinds = None

    def __init__(
        self,
        *,
        step_s: float,
        max_buckets: int,
        routes: Mapping[str, str],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.step_s = step_s
        self.max_buckets = max_buckets
        self._routes = dict(routes)
        self._clock = wall_clock
        self._buckets: dict[int, _Bucket] = {}

    def observe_many(self, events: Sequence[Event]) -> None:
        """Bus listener: count a batch of events of one type into the bucket of now."""
        if events:
            self._count(self._bucket(int(self._clock() // self.step_s)), events)

    def replay(self, events: Sequence[Event]) -> None:
        """Count events of one type read back from the channels, each in its own time's bucket."""
        by_bucket: dict[int, list[Event]] = {}
        for event in events:
            by_bucket.setdefault(int(event.time // self.step_s), []).append(event)
        for index, batch in sorted(by_bucket.items()):
            self._count(self._bucket(index), batch)

    def _count(self, bucket: _Bucket, events: Sequence[Event]) -> None:
        first = events[0]
        if isinstance(first, Command):
            # A list of bools summed: no generator frame per event on the hot path.
            failed = len(events) - sum([e.ok for e in cast(Sequence[Command], events)])
            bucket.commands += len(events)
            bucket.errors += failed
            bucket.routes["command.failed"] += failed
            bucket.routes["command.ok"] += len(events) - failed
            return
        bucket.routes[route_key(first)] += len(events)
        if isinstance(first, Error):
            bucket.errors += len(events)
        elif isinstance(first, Log):
            bucket.errors += sum(
                1 for e in events if isinstance(e, Log) and e.level in ("error", "critical")
            )
        elif isinstance(first, System):
            for event in events:
                if isinstance(event, System):
                    bucket.cpu_sum += event.cpu_percent
                    bucket.memory_sum += event.memory_percent
                    bucket.system_samples += 1
        elif isinstance(first, Latency):
            bucket.gateway.add_many(
                e.ms for e in events if isinstance(e, Latency) and e.of == "gateway"
            )

    def _bucket(self, index: int) -> _Bucket:
        bucket = self._buckets.get(index)
        if bucket is None:
            bucket = self._buckets[index] = _Bucket()
            for old in [i for i in self._buckets if i <= index - self.max_buckets]:
                del self._buckets[old]
        return bucket

    def totals(self, start: float, end: float) -> tuple[int, int, int]:
        """Events, commands and errors counted between ``start`` and ``end``."""
        spans = [self._buckets.get(i) for i in self._indexes(start, end)]
        kept = [b for b in spans if b is not None]
        return (
            sum(sum(b.routes.values()) for b in kept),
            sum(b.commands for b in kept),
            sum(b.errors for b in kept),
        )

    def _indexes(self, start: float, end: float) -> range:
        last = int(end // self.step_s)
        first = max(int(start // self.step_s), last - self.max_buckets + 1)
        return range(first, last + 1)

    def charts(self, start: float, end: float, label: Callable[[float], str]) -> list[Chart]:
        """Charts of the buckets from ``start`` to ``end`` (``label`` names a bucket's start).

        A chart with no data in the span is left out.
        """
        indexes = self._indexes(start, end)
        empty = _Bucket()
        buckets = [self._buckets.get(i, empty) for i in indexes]
        times = [i * self.step_s for i in indexes]
        labels = [label(t) for t in times]

        def timed(
            name: str,
            title: str,
            series: list[ChartSeries],
            *,
            unit: str = "",
            style: Literal["line", "bar"] = "line",
        ) -> Chart:
            return Chart(
                name=name,
                title=title,
                unit=unit,
                style=style,
                start=times[0],
                step_s=self.step_s,
                labels=labels,
                series=series,
            )

        charts = []
        if any(b.system_samples for b in buckets):
            cpu = [b.cpu_sum / b.system_samples if b.system_samples else None for b in buckets]
            memory = [
                b.memory_sum / b.system_samples if b.system_samples else None for b in buckets
            ]
            charts.append(
                timed(
                    "host",
                    "Host CPU and memory",
                    [
                        ChartSeries(label="cpu", values=_rounded(cpu)),
                        ChartSeries(label="memory", values=_rounded(memory)),
                    ],
                    unit="%",
                )
            )
        if any(len(b.gateway) for b in buckets):
            p50 = [b.gateway.quantile(0.5) if len(b.gateway) else None for b in buckets]
            p95 = [b.gateway.quantile(0.95) if len(b.gateway) else None for b in buckets]
            charts.append(
                timed(
                    "latency",
                    "Gateway latency",
                    [
                        ChartSeries(label="p50", values=_rounded(p50)),
                        ChartSeries(label="p95", values=_rounded(p95)),
                    ],
                    unit="ms",
                )
            )
        if any(b.commands or b.errors for b in buckets):
            step = self.step_s
            per = (
                "hour" if step == 3600 else fmt_duration(step) if step >= 1 else fmt_ms(step * 1000)
            )
            charts.append(
                timed(
                    "activity",
                    f"Commands and errors per {per}",
                    [
                        ChartSeries(label="commands", values=[float(b.commands) for b in buckets]),
                        ChartSeries(label="errors", values=[float(b.errors) for b in buckets]),
                    ],
                    style="bar",
                )
            )
        channels: Counter[str] = Counter()
        for bucket in buckets:
            for key, n in bucket.routes.items():
                channels[self._routes.get(key, "diagnostics")] += n
        if channels and self._routes:
            names = [c for c in CHANNEL_ORDER if c in channels]
            charts.append(
                Chart(
                    name="channels",
                    title="Events per channel",
                    style="bar",
                    labels=names,
                    series=[
                        ChartSeries(label="events", values=[float(channels[c]) for c in names])
                    ],
                )
            )
        return charts


def _rounded(values: list[float | None]) -> list[float | None]:
    return [round(v, 1) if v is not None else None for v in values]
