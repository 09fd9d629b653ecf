"""Names for ids: what the channels show instead of a guild's or channel's snowflake.

The discord.py extension sends ``guild_name`` and ``channel_name`` with its events (and
``guild`` events carry the guild's name); the book learns them as events pass on the bus
and renderers ask it. An id whose name was never seen is shown as the id. Names are user
text: they are only ever shown through the renderers' escaping (code blocks break
mentions and fences), and cut to ``SHOWN_CHARS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, cast

from astra.events import Command, Event, Guild, Member, Message, Reaction, Voice


class _Named(Protocol):
    """What message, command, voice and reaction events have in common here."""

    guild_id: int | None
    guild_name: str | None
    channel_id: int | None
    channel_name: str | None


# Ids remembered per kind: a bot in many guilds must not grow memory without end.
MAX_NAMES = 20_000
SHOWN_CHARS = 32


class NameBook:
    """id → name of guilds and channels, learned from events (the latest name wins)."""

    # The event types that carry names.
    kinds: tuple[type[Event], ...] = (Message, Command, Guild, Member, Voice, Reaction)

    def __init__(self, max_names: int = MAX_NAMES) -> None:
        self._max = max_names
        self._guilds: dict[int, str] = {}
        self._channels: dict[int, str] = {}

    def observe_many(self, events: Sequence[Event]) -> None:
        """Bus listener: learn the names a batch of events of one type carries.

        A batch is deduplicated first: a burst of messages from one channel is one lookup.
        """
        if not events:
            return
        guilds: set[tuple[int | None, str | None]]
        if isinstance(events[0], Guild):
            guilds = {(e.guild_id, e.name) for e in events if isinstance(e, Guild) and e.name}
        else:
            named = cast(Sequence[_Named], events)  # every other kind here carries the names
            guilds = {(e.guild_id, e.guild_name) for e in named if e.guild_name}
        for guild_id, name in guilds:
            if guild_id is not None and name:
                self._learn(self._guilds, guild_id, name)
        if isinstance(events[0], Guild | Member):
            return  # no channel in these
        named = cast(Sequence[_Named], events)
        channels = {(e.channel_id, e.channel_name) for e in named if e.channel_name}
        for channel_id, channel in channels:
            if channel_id is not None and channel:
                self._learn(self._channels, channel_id, channel)

    def learn(self, events: Sequence[Event]) -> None:
        """Learn the names in events of any types (a window's), kind by kind."""
        by_kind: dict[type[Event], list[Event]] = {}
        for event in events:
            if isinstance(event, self.kinds):
                by_kind.setdefault(type(event), []).append(event)
        for batch in by_kind.values():
            self.observe_many(batch)

    def _learn(self, book: dict[int, str], key: int, name: str) -> None:
        if book.get(key) == name:
            return
        book.pop(key, None)
        if len(book) >= self._max:
            # The name learned longest ago goes first (insertion order, refreshed on change).
            del book[next(iter(book))]
        book[key] = name

    def guild(self, guild_id: int) -> str:
        """The guild's name, or its id when no name was seen."""
        return _shown(self._guilds.get(guild_id), guild_id)

    def channel(self, channel_id: int) -> str:
        """The channel's name (``#name``), or its id when no name was seen."""
        name = self._channels.get(channel_id)
        return _shown(f"#{name}" if name else None, channel_id)


def _shown(name: str | None, fallback: int) -> str:
    if not name:
        return str(fallback)
    return name if len(name) <= SHOWN_CHARS else name[: SHOWN_CHARS - 1] + "…"
