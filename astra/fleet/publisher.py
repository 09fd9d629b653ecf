"""A member's side: its pending events go to the fleet's stream, in batches, bounded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from msgspec.structs import force_setattr

from astra.fleet.codec import encode_entry
from astra.fleet.connection import Keys
from astra.streams.windows import ChannelStream, Window

# Events per stream entry: large enough that Redis sees few, big appends.
ENTRY_EVENTS = 2000
# Entries per round trip.
ENTRIES_PER_ROUND = 64


class Publisher:
    """Moves a member's pending events from its channel streams into the Redis stream.

    Events leave a channel stream as windows (so the memory bound counts them while they
    travel) and are freed only once Redis stored them. While appends fail, no more than
    one round is held out of the streams: everything else stays pending there, where the
    bus's memory bound applies.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        streams: Mapping[str, ChannelStream],
        *,
        member: str,
        run: str,
        max_stream_len: int,
    ) -> None:
        self._client = client
        self._keys = keys
        self._streams = streams
        self.member = member
        self.run = run
        self.max_stream_len = max_stream_len
        self._held: list[Window] = []
        self.published_events = 0
        self.published_entries = 0
        self.failures = 0

    @property
    def awaiting(self) -> int:
        """Events in memory waiting for Redis: pending in the streams and held for a retry."""
        return sum(len(w.events) for w in self._held) + sum(len(s) for s in self._streams.values())

    def has_work(self) -> bool:
        """True when something is pending or held."""
        return bool(self._held) or any(s.has_work() for s in self._streams.values())

    async def publish(self) -> int:
        """Append what is pending (one round); the number of events appended.

        Raises ``RedisError`` when Redis cannot take it; the events stay held for the next
        call (or for ``take_held``).
        """
        if not self._held:
            self._take()
        batch = self._held[:ENTRIES_PER_ROUND]
        if not batch:
            return 0
        pipe = self._client.pipeline(transaction=False)
        total = self.published_events
        for window in batch:
            total += len(window.events)
            fields: dict[Any, Any] = encode_entry(self.member, self.run, total, window.events)
            fields["c"] = window.channel.encode()
            fields["d"] = str(window.dropped_before).encode()
            pipe.xadd(self._keys.stream, fields, maxlen=self.max_stream_len, approximate=True)
        try:
            await pipe.execute()
        except BaseException:
            self.failures += 1
            raise
        del self._held[: len(batch)]
        appended = total - self.published_events
        self.published_events = total
        self.published_entries += len(batch)
        for window in batch:
            self._streams[window.channel].release(len(window.events))
        return appended

    def take_held(self, channel: str) -> list[Window]:
        """Hand over this channel's held windows (to post them directly instead)."""
        mine = [w for w in self._held if w.channel == channel]
        self._held = [w for w in self._held if w.channel != channel]
        return mine

    def _take(self) -> None:
        member = self.member
        for stream in self._streams.values():
            while stream.has_work() and len(self._held) < ENTRIES_PER_ROUND:
                window = stream.close_window(ENTRY_EVENTS)
                if window is None:
                    break
                for event in window.events:
                    if not event.host:
                        force_setattr(event, "host", member)
                self._held.append(window)
