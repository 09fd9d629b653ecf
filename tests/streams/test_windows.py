"""Channel windows: they close on the interval, early for critical events, and count drops."""

from __future__ import annotations

import anyio

from astra.events import Error, Event, Log, Metric
from tests.conftest import Clock
from tests.streams.conftest import CHANNELS, make_bus


def test_drops_are_counted_in_each_streams_statistics() -> None:
    """A stream's statistics report what the bound took from it since start."""
    bus = make_bus(Clock(), max_events=100)
    bus.ingest([Metric(name="m", value=i) for i in range(150)], 15_000)
    stats = bus.streams["performance"].statistics()
    assert (stats.pending, stats.dropped_total, stats.dropped_unreported) == (100, 50, 50)
    bus.streams["performance"].close_window(10)
    stats = bus.streams["performance"].statistics()
    assert (stats.pending, stats.inflight, stats.dropped_total) == (90, 10, 50)
    assert stats.dropped_unreported == 0


def test_windows_close_on_the_interval_and_merge_the_backlog() -> None:
    """A window is due after the interval, and what did not fit in it is due at once."""
    clock = Clock()
    bus = make_bus(clock, interval=30.0)
    stream = bus.streams["performance"]
    assert stream.due_in() == 30.0
    for i in range(5):
        bus.publish(Metric(name="m", value=i))
    clock.now += 29.0
    assert stream.due_in() == 1.0
    clock.now += 1.0
    window = stream.close_window(3)
    assert window is not None and [e.seq for e in window.events] == [1, 2, 3]
    assert stream.due_in() == 0.0, "what did not fit is due at once"
    rest = stream.close_window(100)
    assert rest is not None and [e.seq for e in rest.events] == [4, 5]
    assert stream.due_in() > 0


def test_critical_events_make_the_window_due_within_the_critical_delay() -> None:
    """A critical event wakes the stream and makes its window due within the critical delay."""
    clock = Clock()
    bus = make_bus(clock, interval=30.0)
    woken: list[bool] = []

    async def wait_then_publish(event: Event) -> None:
        async with anyio.create_task_group() as group:

            async def waiter() -> None:
                await bus.streams["logs"].wait_changed(5.0)
                woken.append(True)

            group.start_soon(waiter)
            await anyio.sleep(0.05)
            bus.publish(event)
            await anyio.sleep(0.05)
            group.cancel_scope.cancel()

    anyio.run(wait_then_publish, Log(level="warning", message="w"))
    assert bus.streams["logs"].due_in() == 30.0 and not woken
    anyio.run(wait_then_publish, Error(message="db down", severity="critical"))
    assert bus.streams["logs"].due_in() == 1.0 and woken
    bus.publish(Log(level="critical", message="still down"))
    assert bus.streams["logs"].due_in() == 1.0, "a second critical event coalesces"


def test_critical_events_close_at_most_the_budgeted_early_windows_a_minute() -> None:
    """One critical event a second gets ``critical_per_minute`` early windows, no more."""
    clock = Clock()
    bus = make_bus(clock, interval=30.0, critical_per_minute=3)
    stream = bus.streams["logs"]
    early = 0
    for _ in range(60):
        bus.ingest([Error(message="forged", severity="critical")], 100)
        clock.now += 1.0
        if stream.due_in() == 0:
            stream.close_window(100)
            early += 1
    assert early <= 3 + 2, "three early windows plus the two regular ones"
    assert stream.statistics().critical_deferred > 0


def test_empty_window_posts_nothing() -> None:
    """A channel without events closes no window."""
    clock = Clock()
    bus = make_bus(clock)
    clock.now += 60
    assert all(bus.streams[n].close_window(10) is None for n in CHANNELS)
