"""Routing: which channel an event belongs to."""

from __future__ import annotations

from astra.events import Event, route_key


class Router:
    """Maps events to channel names from a route table (defaults overridden by config)."""

    def __init__(self, routes: dict[str, str], fallback: str = "logs") -> None:
        self._routes = dict(routes)
        # Every event goes somewhere: a kind without a route lands in the fallback channel.
        self._fallback = fallback

    def channel_for(self, event: Event) -> str:
        """The channel this event is delivered to."""
        return self._routes.get(route_key(event), self._fallback)

    def channel_for_key(self, key: str) -> str:
        """The channel for a route key (``log``, ``command.ok``...)."""
        return self._routes.get(key, self._fallback)
