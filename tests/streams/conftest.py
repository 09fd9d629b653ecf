"""Shared helpers for the stream tests: a bus over the four channels on a hand-driven clock."""

from __future__ import annotations

from astra.config import DEFAULT_ROUTES
from astra.redaction import Redactor
from astra.streams.bus import Bus
from astra.streams.router import Router
from astra.streams.windows import ChannelStream
from tests.conftest import Clock

CHANNELS = ("analytics", "diagnostics", "logs", "performance")


def make_bus(
    clock: Clock,
    max_events: int = 1000,
    interval: float = 30.0,
    routes: dict[str, str] | None = None,
    max_bytes: int = 1 << 30,
    critical_per_minute: int = 6,
) -> Bus:
    """A bus over the four channels on ``clock``, with the default routes unless given."""
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
