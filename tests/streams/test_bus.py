"""The bus: stamping, redaction, the memory bounds and listeners; in memory, with a fake clock."""

from __future__ import annotations

from astra.config import DEFAULT_ROUTES
from astra.events import Command, Error, Log, Message, Metric
from astra.redaction import Redactor
from astra.streams.bus import Bus
from astra.streams.router import Router
from astra.streams.windows import ChannelStream
from tests.conftest import Clock
from tests.streams.conftest import CHANNELS, make_bus


def test_sequence_numbers_are_monotonic_and_ids_kept() -> None:
    """Published events get increasing seq numbers and keep their ids (or get one if absent)."""
    bus = make_bus(Clock())
    events = [bus.publish(Message(id=f"m{i}")) for i in range(5)]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert [e.id for e in events] == [f"m{i}" for i in range(5)]
    assert bus.publish(Message()).id, "an id is assigned when absent"


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


def test_secrets_are_redacted_when_entering_the_bus() -> None:
    """A configured secret is redacted from an event as it enters the bus."""
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
