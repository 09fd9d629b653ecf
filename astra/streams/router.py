"""Routing: which channel an event belongs to."""

from __future__ import annotations

from astra.events import Command, Event


def route_key(event: Event) -> str:
    """The key routes are written in: the event kind, or command.ok / command.failed."""
    if isinstance(event, Command):
        return "command.ok" if event.ok else "command.failed"
    return str(event.__struct_config__.tag)


class Router:
    """Maps events to channel names from a route table (defaults overridden by config)."""

    def __init__(self, routes: dict[str, str], fallback: str = "logs") -> None:
        self._routes = dict(routes)
        # Every event goes somewhere: a kind without a route lands in the fallback channel.
        self._fallback = fallback

    def channel_for(self, event: Event) -> str:
        """The channel this event is delivered to."""
        return self._routes.get(route_key(event), self._fallback)
