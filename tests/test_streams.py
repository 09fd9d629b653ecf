"""The bus, router and windows: in-memory, no I/O, driven with a fake clock."""

from __future__ import annotations

from astra.config import DEFAULT_ROUTES
from astra.events import Command, Error, Log, Message, Metric
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
) -> Bus:
    streams = [ChannelStream(n, interval, 1.0, clock, clock) for n in CHANNELS]
    return Bus(Router(routes or DEFAULT_ROUTES), streams, max_events, Redactor())


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


def test_buffer_bound_drops_the_oldest_event_across_channels() -> None:
    bus = make_bus(Clock(), max_events=100)
    bus.publish(Message(id="oldest"))
    for i in range(100):
        bus.publish(Metric(name="m", value=i))
    assert bus.pending == 100 and bus.dropped == 1
    assert len(bus.streams["analytics"]) == 0, "the oldest event was in analytics"
    assert bus.streams["analytics"].dropped_unreported == 1
    window = bus.streams["analytics"].close_window(10)
    assert window is not None and window.dropped_before == 1 and window.events == []


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
    bus.streams["logs"].on_wake = lambda: woken.append(True)
    bus.publish(Log(level="warning", message="w"))
    assert bus.streams["logs"].due_in() == 30.0 and not woken
    bus.publish(Error(message="db down", severity="critical"))
    assert bus.streams["logs"].due_in() == 1.0 and woken
    bus.publish(Log(level="critical", message="still down"))
    assert bus.streams["logs"].due_in() == 1.0, "a second critical event coalesces"


def test_empty_window_posts_nothing() -> None:
    clock = Clock()
    bus = make_bus(clock)
    clock.now += 60
    assert all(bus.streams[n].close_window(10) is None for n in CHANNELS)


def test_secrets_are_redacted_when_entering_the_bus() -> None:
    streams = [ChannelStream(n, 30, 1, Clock()) for n in CHANNELS]
    bus = Bus(Router(DEFAULT_ROUTES), streams, 100, Redactor(["sup3r-secret-token-value"]))
    event = bus.publish(Log(level="error", message="auth with sup3r-secret-token-value failed"))
    assert isinstance(event, Log) and "sup3r" not in event.message and "[redacted]" in event.message
