"""The router: each event kind goes to its channel, command outcomes and overrides included."""

from __future__ import annotations

from astra.config import DEFAULT_ROUTES
from astra.events import Command, Log, Metric
from tests.conftest import Clock
from tests.streams.conftest import CHANNELS, make_bus


def test_default_routes_and_command_outcome() -> None:
    """By default commands go to analytics, failed ones and logs to logs, metrics to performance."""
    bus = make_bus(Clock())
    bus.publish(Command(name="ping"))
    bus.publish(Command(name="ping", ok=False, error="boom"))
    bus.publish(Metric(name="x", value=1))
    bus.publish(Log(level="debug", message="quiet"))
    assert [len(bus.streams[n]) for n in CHANNELS] == [1, 0, 2, 1]


def test_route_overrides() -> None:
    """A route override sends a kind to its new channel instead of the default."""
    bus = make_bus(Clock(), routes={**DEFAULT_ROUTES, "metric": "analytics"})
    bus.publish(Metric(name="x", value=1))
    assert len(bus.streams["analytics"]) == 1 and len(bus.streams["performance"]) == 0
