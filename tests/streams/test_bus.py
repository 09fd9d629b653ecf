"""The bus, router and windows: in-memory, no I/O, driven with a fake clock."""

from __future__ import annotations

import anyio

from astra.config import DEFAULT_ROUTES
from astra.events import Command, Error, Event, Log, Message, Metric
from astra.redaction import Redactor
from astra.streams.bus import Bus
from astra.streams.router import Router
from astra.streams.windows import ChannelStream

CHANNELS = ("analytics", "diagnostics", "logs", "performance")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_bus(
    clock: Clock,
    max_events: int = 1000,
    interval: float = 30.0,
    routes: dict[str, str] | None = None,
    max_bytes: int = 1 << 30,
    critical_per_minute: int = 6,
) -> Bus:
    streams = [
        ChannelStream(n, interval, 1.0, clock, clock, critical_per_minute=critical_per_minute)
        for n in CHANNELS
    ]
    return Bus(
        Router(routes or DEFAULT_ROUTES),
        streams,
        Redactor(),
        max_events=max_events,
        max_bytes=max_bytes,
    )


def test_sequence_numbers_are_monotonic_and_ids_kept() -> None:
    bus = make_bus(Clock())
    events = [bus.publish(Message(id=f"m{i}")) for i in range(5)]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert [e.id for e in events] == [f"m{i}" for i in range(5)]
    assert bus.publish(Message()).id, "an id is assigned when absent"


def test_default_routes_and_command_outcome() -> None:
    bus = make_bus(Clock())
    bus.publish(Command(name="ping"))
    bus.publish(Command(name="ping", ok=False, error="boom"))
    bus.publish(Metric(name="x", value=1))
    bus.publish(Log(level="debug", message="quiet"))
    assert [len(bus.streams[n]) for n in CHANNELS] == [1, 0, 2, 1]


def test_route_overrides() -> None:
    bus = make_bus(Clock(), routes={**DEFAULT_ROUTES, "metric": "analytics"})
    bus.publish(Metric(name="x", value=1))
    assert len(bus.streams["analytics"]) == 1 and len(bus.streams["performance"]) == 0


def test_buffer_bound_drops_the_oldest_ingested_event_of_the_fullest_channel() -> None:
    """Over the bound, the oldest ingested event of the channel holding the most goes."""
    bus = make_bus(Clock(), max_events=100)
    bus.ingest([Message(id="oldest")], 100)
    bus.ingest([Metric(name="m", value=i) for i in range(100)], 10_000)
    assert bus.pending == 100 and bus.dropped == 1
    assert len(bus.streams["analytics"]) == 1, "the flooded channel pays, not analytics"
    assert bus.streams["performance"].dropped_unreported == 1
    window = bus.streams["performance"].close_window(1000)
    assert window is not None and window.dropped_before == 1
    assert [e.value for e in window.events if isinstance(e, Metric)] == list(range(1, 100))


def test_a_flood_in_one_channel_never_evicts_another_channels_events() -> None:
    """260,000 junk events into analytics leave every real logs event in place."""
    bus = make_bus(Clock(), max_events=1000)
    bus.ingest([Log(level="error", message=f"real {i}", id=f"real-{i}") for i in range(18)], 1800)
    for start in range(0, 260_000, 10_000):
        bus.ingest([Message(id=f"junk-{start + i}") for i in range(10_000)], 1_000_000)
    assert bus.pending <= 1000
    window = bus.streams["logs"].close_window(1000)
    assert window is not None and [e.id for e in window.events] == [f"real-{i}" for i in range(18)]
    assert bus.streams["logs"].dropped_total == 0
    assert bus.dropped == bus.streams["analytics"].dropped_total == 260_000 - (1000 - 18)


def test_astra_own_events_are_never_evicted_by_the_bound() -> None:
    """Events astra publishes itself survive a flood of ingested events in their channel."""
    bus = make_bus(Clock(), max_events=100)
    bus.publish(Log(level="warning", message="astra's own", id="own"))
    bus.ingest([Log(level="info", message="x") for _ in range(500)], 50_000)
    window = bus.streams["logs"].close_window(1000)
    assert window is not None and window.events[0].id == "own"
    assert len(window.events) == 100 and window.dropped_before == 401


def test_the_byte_bound_evicts_the_largest_channel_by_bytes() -> None:
    """``max_bytes`` bounds memory by size: large events are evicted where the bytes are."""
    bus = make_bus(Clock(), max_events=100_000, max_bytes=2 * 1024 * 1024)
    bus.ingest([Message(id=f"small-{i}") for i in range(100)], 10_000)
    big = [Log(level="info", message="x" * 60_000) for _ in range(60)]
    for event in big:
        bus.ingest([event], 64 * 1024)
    stats = bus.statistics()
    assert stats.held_bytes <= 2 * 1024 * 1024
    assert len(bus.streams["analytics"]) == 100, "the small events' channel keeps them all"
    assert bus.streams["logs"].dropped_total == 60 - len(bus.streams["logs"])


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
    clock = Clock()
    bus = make_bus(clock)
    clock.now += 60
    assert all(bus.streams[n].close_window(10) is None for n in CHANNELS)


def test_secrets_are_redacted_when_entering_the_bus() -> None:
    streams = [ChannelStream(n, 30, 1, Clock()) for n in CHANNELS]
    bus = Bus(
        Router(DEFAULT_ROUTES),
        streams,
        Redactor(["sup3r-secret-token-value"]),
        max_events=100,
        max_bytes=1 << 20,
    )
    event = bus.publish(Log(level="error", message="auth with sup3r-secret-token-value failed"))
    assert isinstance(event, Log) and "sup3r" not in event.message and "[redacted]" in event.message


def test_a_batch_is_stamped_in_order_and_listeners_get_it_by_type() -> None:
    """Ingest stamps a batch in order, routes commands by outcome, and hands each listener
    only the types it asked for, one list per type."""
    bus = make_bus(Clock())
    seen_all: list[list[str]] = []
    seen_logs: list[list[str]] = []
    bus.subscribe(lambda events: seen_all.append([e.id for e in events]))
    bus.subscribe(lambda events: seen_logs.append([e.id for e in events]), [Log])
    batch = [
        Message(id="m1"),
        Log(level="info", message="a", id="l1"),
        Command(name="x", id="c1"),
        Command(name="x", ok=False, id="c2"),
        Message(id="m2"),
    ]
    bus.ingest(batch, 500)
    assert [e.seq for e in batch] == [1, 2, 3, 4, 5]
    assert sorted(seen_all) == sorted([["m1", "m2"], ["l1"], ["c1", "c2"]])
    assert seen_logs == [["l1"]]
    assert [len(bus.streams[n]) for n in CHANNELS] == [3, 0, 2, 0]
    assert bus.statistics().held_bytes == 500


def test_a_critical_event_in_a_batch_makes_its_window_due() -> None:
    """One critical error among many ingested events closes the logs window early."""
    bus = make_bus(Clock(), interval=30.0)
    bus.ingest([Log(level="info", message="x"), Error(message="down", severity="critical")], 50)
    assert bus.streams["logs"].due_in() == 1.0
