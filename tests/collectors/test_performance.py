"""The performance collector: latency percentiles and the pipeline's figures per window."""

from __future__ import annotations

from astra.collectors.performance import MAX_LATENCY_SERIES, PerformanceCollector
from astra.events import Command, Latency, Performance
from astra.quantiles import LogHistogram
from astra.statistics import BusStatistics, ChannelStatistics, DeliveryStatistics, SidecarStatistics
from tests.conftest import Clock


def test_performance_collector_summarises_the_window() -> None:
    """Latency and command events become p50/p95/p99; pipeline figures are per window."""
    figures = [SidecarStatistics(version="t", at=0, started=0)]
    clock = Clock()
    collector = PerformanceCollector(lambda: figures[-1], clock)
    collector.collect()
    for ms in range(1, 1001):
        collector.observe(Latency(ms=float(ms)))
        collector.observe(Command(name="vote", duration_ms=float(ms), ok=ms % 100 != 0))
    delivered = LogHistogram()
    delivered.add(2000.0)  # one event posted two seconds after it happened
    logs = DeliveryStatistics(
        mode="discord", retries=2, rate_limited=1, latency_ms=delivered.sketch()
    )
    figures.append(
        SidecarStatistics(
            version="t",
            at=60,
            started=0,
            bus=BusStatistics(published=3000, held=12),
            channels={"logs": ChannelStatistics(delivery=logs)},
        )
    )
    clock.now += 60
    (perf,) = collector.collect()
    assert isinstance(perf, Performance)
    assert (perf.events_in, perf.events_per_s, perf.queue_depth) == (3000, 50.0, 12)
    assert (perf.retries, perf.rate_limited, perf.commands, perf.commands_failed) == (
        2,
        1,
        1000,
        10,
    )
    gateway = {q.of: q for q in perf.latencies}["gateway"]
    assert gateway.count == 1000
    assert abs(gateway.p50 - 500) <= 5 and abs(gateway.p95 - 950) <= 9.5
    assert abs(gateway.p99 - 990) <= 9.9 and gateway.max == 1000
    assert perf.slow_commands[0].of == "vote"
    assert perf.delivery_ms is not None and 1900 < perf.delivery_ms.p50 < 2500
    clock.now += 60
    (quiet,) = collector.collect()
    assert isinstance(quiet, Performance)
    assert quiet.events_in == 0 and not quiet.latencies and quiet.delivery_ms is None


def test_gateway_and_command_latency_are_never_crowded_out() -> None:
    """Once the cap on latency series is reached by custom series, gateway and command still
    get theirs (the alert rules read them)."""
    empty = SidecarStatistics(version="t", at=0, started=0)
    collector = PerformanceCollector(lambda: empty, Clock())
    for n in range(MAX_LATENCY_SERIES + 10):
        collector.observe(Latency(ms=5.0, of=f"custom-{n}"))
    collector.observe(Latency(ms=40.0))
    collector.observe(Command(name="vote", duration_ms=120.0))
    (perf,) = collector.collect()
    assert isinstance(perf, Performance)
    names = [q.of for q in perf.latencies]
    assert names[:2] == ["gateway", "command"]
    assert len(names) == MAX_LATENCY_SERIES + 2
