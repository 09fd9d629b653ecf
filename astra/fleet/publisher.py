"""A member's side: its pending events go to the fleet's stream, in batches, bounded.

A member keeps what it appended until the poster acknowledged it (Discord stored it), as
far as its memory bound allows: when Redis restarts empty (a new server run id), the
member appends those events again, so a Redis crash loses nothing still held here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from msgspec.structs import force_setattr

from astra.fleet.codec import encode_entry
from astra.fleet.connection import Keys, ResponseError, text
from astra.streams.windows import ChannelStream, Window

# Events per stream entry: large enough that Redis sees few, big appends.
ENTRY_EVENTS = 2000
# Entries per round trip.
ENTRIES_PER_ROUND = 64
# Pending-list entries asked for at most when confirming.
CONFIRM_SCAN = 10_000


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
        max_kept: int,
    ) -> None:
        self._client = client
        self._keys = keys
        self._streams = streams
        self.member = member
        self.run = run
        self.max_stream_len = max_stream_len
        self._held: list[Window] = []
        # Appended, not yet acknowledged by the poster: (entry id, window), oldest first.
        self._unconfirmed: deque[tuple[tuple[int, int], Window]] = deque()
        self._kept = 0
        self.max_kept = max_kept
        self._server: str | None = None
        self.confirmed_events = 0
        self.republished_events = 0
        self.unprotected_events = 0
        self.published_events = 0
        self.published_entries = 0
        self.failures = 0

    @property
    def unconfirmed(self) -> int:
        """Events appended but not yet acknowledged, kept in case Redis loses them."""
        return self._kept

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
        # Which server stored them: a new run id means Redis restarted and lost the rest.
        pipe.info("server")
        try:
            *ids, info = await pipe.execute()
        except BaseException:
            self.failures += 1
            raise
        del self._held[: len(batch)]
        # After the batch is out of the way: a restart puts older windows back in front.
        self._check_server(info)
        appended = total - self.published_events
        self.published_events = total
        self.published_entries += len(batch)
        for entry_id, window in zip(ids, batch, strict=True):
            self._unconfirmed.append((_stream_id(entry_id), window))
            self._kept += len(window.events)
        self._forget_beyond_bound()
        return appended

    async def confirm(self) -> None:
        """Free what the poster acknowledged; append again what a restarted Redis lost.

        Raises ``RedisError`` when Redis cannot answer (nothing changes then).
        """
        if not self._unconfirmed:
            return
        self._check_server(await self._client.info("server"))
        if not self._unconfirmed:
            return
        try:
            groups = await self._client.xinfo_groups(self._keys.stream)
        except ResponseError:
            return  # no stream yet: nobody read anything
        group = next((g for g in groups if text(g["name"]) == self._keys.group), None)
        if group is None:
            return
        delivered = _stream_id(group["last-delivered-id"])
        first, last = self._unconfirmed[0][0], self._unconfirmed[-1][0]
        pending = await self._client.xpending_range(
            self._keys.stream,
            self._keys.group,
            min=f"{first[0]}-{first[1]}",
            max=f"{last[0]}-{last[1]}",
            count=CONFIRM_SCAN,
        )
        in_flight = [_stream_id(_reply(p["message_id"])) for p in pending]
        # A full page may not be the whole pending list: past its last id nothing is known.
        known_to = in_flight[-1] if len(in_flight) >= CONFIRM_SCAN else last
        still = set(in_flight)
        kept: deque[tuple[tuple[int, int], Window]] = deque()
        for entry_id, window in self._unconfirmed:
            if entry_id <= delivered and entry_id <= known_to and entry_id not in still:
                self._free(window)
                self.confirmed_events += len(window.events)
            else:
                kept.append((entry_id, window))
        self._unconfirmed = kept

    def take_held(self, channel: str) -> list[Window]:
        """Hand over this channel's held and unconfirmed windows (to post them directly
        instead: Redis may have lost the unconfirmed ones)."""
        mine = [w for _id, w in self._unconfirmed if w.channel == channel]
        self._unconfirmed = deque((i, w) for i, w in self._unconfirmed if w.channel != channel)
        self._kept -= sum(len(w.events) for w in mine)
        mine += [w for w in self._held if w.channel == channel]
        self._held = [w for w in self._held if w.channel != channel]
        return mine

    def _check_server(self, info: Mapping[str, object]) -> None:
        server = str(info.get("run_id", ""))
        if self._server is not None and server != self._server:
            self._republish()
        self._server = server

    def _republish(self) -> None:
        """Redis restarted: what it had not passed on is gone; append it again."""
        windows = [w for _id, w in self._unconfirmed]
        self._unconfirmed.clear()
        self._kept = 0
        self.republished_events += sum(len(w.events) for w in windows)
        self._held[:0] = windows

    def _forget_beyond_bound(self) -> None:
        """Keep at most ``max_kept`` appended events: newer events need the memory more."""
        while self._kept > self.max_kept and self._unconfirmed:
            _entry, window = self._unconfirmed.popleft()
            self.unprotected_events += len(window.events)
            self._free(window)

    def _free(self, window: Window) -> None:
        self._kept -= len(window.events)
        self._streams[window.channel].release(len(window.events))

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


def _stream_id(raw: bytes | str) -> tuple[int, int]:
    """A stream entry id (``ms-seq``) as a pair that sorts like Redis does."""
    ms, _, seq = text(raw).partition("-")
    return int(ms), int(seq or 0)


def _reply(value: object) -> bytes | str:
    return value if isinstance(value, bytes | str) else str(value)
