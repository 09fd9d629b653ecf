"""The poster's side: read the fleet's stream, post through the usual windows, then ack.

A ``Poster`` lives as long as one lease: it takes over what a former poster read but
never acknowledged, reads new entries through the consumer group, feeds their events into
its own bus (the same windows, render and delivery as a single sidecar), and acknowledges
an entry once Discord stored every one of its events. Losing the lease cancels it whole.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import msgspec
import redis.asyncio as aioredis

from astra.config import CHANNELS, Config
from astra.events import Event, Log
from astra.fleet.acks import AckTracker
from astra.fleet.codec import decode_entry
from astra.fleet.connection import BLOCK_MS, Keys, RedisError, ResponseError, describe, text
from astra.fleet.gaps import GapTracker
from astra.fleet.publisher import ENTRY_EVENTS
from astra.fleet.silence import SilenceWatcher
from astra.redaction import Redactor
from astra.sinks.delivery import ChannelDelivery
from astra.streams.bus import configured_bus

log = logging.getLogger("astra.fleet")

READ_COUNT = 200
# Events one of the poster's windows may hold (a single sidecar's hold 100,000 at most).
POSTER_WINDOW_EVENTS = 500_000
ACK_INTERVAL_S = 0.2
RETRY_S = 0.5
# Problems with the stream's content are logged at most this often.
COMPLAINT_INTERVAL_S = 60.0

# Builds a channel's delivery: its name and stream; keywords emit, on_done and fence.
MakeDelivery = Callable[..., ChannelDelivery]
Fence = Callable[[], Awaitable[None]]


class PosterFigures(msgspec.Struct, frozen=True, kw_only=True):
    """What a poster did (the poster's share of ``FleetStatistics``)."""

    read_entries: int = 0
    read_events: int = 0
    malformed: int = 0
    claimed: int = 0
    acked: int = 0
    trimmed: int = 0
    posts: int = 0


class Poster:
    """The fleet's poster for the duration of one lease."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        config: Config,
        redactor: Redactor,
        *,
        member: str,
        make_delivery: MakeDelivery,
        silence: SilenceWatcher,
        fence: Fence,
        lease_s: float,
    ) -> None:
        self._client = client
        self._keys = keys
        self._redact = redactor.text
        # A former poster may still read a little before it notices the lease is gone: what
        # it read waits under its name until it has been idle this long, then is claimed.
        self._claim_after_s = lease_s
        self._fence = fence
        self.member = member
        self.bus = configured_bus(config, redactor)
        self.acks = AckTracker()
        self.deliveries = [
            make_delivery(
                name, self.bus.streams[name], emit=self.emit, on_done=self.acks.done, fence=fence
            )
            for name in CHANNELS
        ]
        for delivery in self.deliveries:
            # A fleet's channel carries many members' events in its 30 posts a minute: a
            # window may hold more than a single sidecar's, within the memory bound.
            delivery.max_window_events = min(config.buffer.max_events, POSTER_WINDOW_EVENTS)
        self.silence = silence
        self._finishing = False
        self._read_done = anyio.Event()
        # Set once what former posters read but never acknowledged is on this bus.
        self.took_over = anyio.Event()
        # Twice the claim interval: what a former poster read is claimed within it.
        self._gaps = GapTracker(2 * lease_s)
        self._complained = -COMPLAINT_INTERVAL_S
        self.read_entries = 0
        self.read_events = 0
        self.malformed = 0
        self.claimed = 0
        self.acked = 0
        self.trimmed = 0

    def figures(self) -> PosterFigures:
        """This poster's figures now."""
        return PosterFigures(
            read_entries=self.read_entries,
            read_events=self.read_events,
            malformed=self.malformed,
            claimed=self.claimed,
            acked=self.acked,
            trimmed=self.trimmed,
            posts=sum(d.statistics().posts for d in self.deliveries),
        )

    def emit(self, event: Event) -> None:
        """Put one of the poster's own events (alerts, webhook lifecycle) on its bus."""
        self.bus.publish(event)

    async def run(self) -> None:
        """Read, post and acknowledge until cancelled (the lease lost) or finished."""
        async with anyio.create_task_group() as group:
            for delivery in self.deliveries:
                group.start_soon(delivery.run)
            group.start_soon(self._acknowledge)
            group.start_soon(self._watch_silence)
            group.start_soon(self._claim_forgotten)
            await self._read()
            self._read_done.set()
            await anyio.sleep_forever()

    async def finish(self) -> None:
        """A clean stop: read what is there, post it, acknowledge it (the caller's deadline)."""
        self._finishing = True
        await self._read_done.wait()
        for delivery in self.deliveries:
            delivery.stream.close()
        while not all(d.idle() for d in self.deliveries):
            for delivery in self.deliveries:
                await delivery.wait_drained()
        await self._ack_ready()

    def idle(self) -> bool:
        """Nothing pending, nothing being posted."""
        return all(d.idle() for d in self.deliveries)

    # --- reading ------------------------------------------------------------------------

    async def _read(self) -> None:
        await self._ensure_group()
        await self._claim_pending()
        self.took_over.set()
        while True:
            count = await self._room()
            try:
                answer: Any = await self._client.xreadgroup(
                    self._keys.group,
                    self.member,
                    {self._keys.stream: ">"},
                    count=count,
                    block=BLOCK_MS,
                )
            except RedisError as exc:
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    # Redis restarted, or the stream was deleted: a restarted Redis has no
                    # lease, so the fencing check stops a poster that would read on.
                    await self._fence()
                    await self._ensure_group()
                    continue
                if self._finishing:
                    return  # stopping without Redis: what is not read stays there
                self._complain(f"cannot read the fleet stream: {describe(exc, self._redact)}")
                await anyio.sleep(RETRY_S)
                continue
            entries = [e for _stream, batch in answer or () for e in batch]
            self._feed(entries, in_order=True)
            if self._finishing and not entries:
                return

    async def _ensure_group(self) -> None:
        while True:
            try:
                # From the stream's start: entries published before any poster existed count.
                await self._client.xgroup_create(
                    self._keys.stream, self._keys.group, id="0", mkstream=True
                )
                return
            except RedisError as exc:
                if isinstance(exc, ResponseError) and "BUSYGROUP" in str(exc):
                    return
                self._complain(f"cannot create the consumer group: {describe(exc, self._redact)}")
                await anyio.sleep(RETRY_S)

    async def _claim_pending(self) -> None:
        """Take over every entry read but not acknowledged, by whoever read it."""
        cursor: Any = "0-0"
        while True:
            count = await self._room()
            try:
                answer = await self._client.xautoclaim(
                    self._keys.stream, self._keys.group, self.member, 0, cursor, count=count
                )
            except RedisError as exc:
                self._complain(f"cannot claim pending entries: {describe(exc, self._redact)}")
                await anyio.sleep(RETRY_S)
                continue
            cursor, entries = answer[0], answer[1]
            self.claimed += len(entries)
            self._feed(entries, in_order=False)
            if cursor in (b"0-0", "0-0"):
                return

    async def _claim_forgotten(self) -> None:
        """Now and then, claim what other consumers (former posters) read and left idle."""
        while True:
            await anyio.sleep(self._claim_after_s)
            try:
                await self._claim_from_others()
            except RedisError as exc:
                self._complain(f"cannot claim pending entries: {describe(exc, self._redact)}")
            else:
                self._report_trimmed()

    async def _claim_from_others(self) -> None:
        summary = await self._client.xpending(self._keys.stream, self._keys.group)
        idle_ms = int(self._claim_after_s * 1000)
        for consumer in summary.get("consumers") or ():
            name = text(consumer["name"])
            if name == self.member:
                continue
            if not int(consumer["pending"]):
                # A former poster with nothing left: keep the group's list short.
                await self._client.xgroup_delconsumer(self._keys.stream, self._keys.group, name)
                continue
            count = await self._room()
            pending = await self._client.xpending_range(
                self._keys.stream, self._keys.group, "-", "+", count, consumername=name
            )
            ids: list[Any] = [p["message_id"] for p in pending]
            if not ids:
                continue
            entries = await self._client.xclaim(
                self._keys.stream, self._keys.group, self.member, idle_ms, ids
            )
            self.claimed += len(entries)
            self._feed(entries, in_order=False)

    async def _room(self) -> int:
        """Entries to read now: as many as surely fit the memory bound (Redis holds the
        rest meanwhile), waiting while not even one does. With nothing pending it reads
        one entry even when a whole entry may not fit (``buffer.max_events`` below
        ``ENTRY_EVENTS``): else such a poster would wait forever; the bus's bound drops
        and counts what does not fit."""
        bound = self.bus.statistics().max_events
        while True:
            pending = self.bus.pending
            free = bound - pending
            if free >= ENTRY_EVENTS:
                return min(READ_COUNT, free // ENTRY_EVENTS)
            if not pending:
                return 1
            await anyio.sleep(0.05)

    def _feed(self, entries: Sequence[Any], *, in_order: bool) -> None:
        """Put entries' events on the bus. ``in_order``: new entries, read in stream order
        (claimed ones are not: a former poster acknowledged some between them)."""
        for entry_id, fields in entries:
            self.read_entries += 1
            if not fields:
                # Trimmed after it was read: nothing to post, nothing to keep pending.
                self.acks.track(entry_id, 0, 0)
                continue
            entry = decode_entry(fields)
            if entry.problem:
                self.malformed += max(1, entry.malformed)
                self._complain(f"skipped malformed events from the stream: {entry.problem}")
            if in_order:
                self._gaps.in_order(entry.member, entry.run, entry.total, entry.count)
            else:
                self._gaps.claimed(entry.member, entry.run, entry.total, entry.count)
            channel = fields.get(b"c", b"").decode(errors="replace")
            dropped = _count(fields.get(b"d"))
            stream = self.bus.streams.get(channel)
            if dropped and stream is not None:
                # Dropped by the member's memory bound: the next post of that channel says so.
                stream.dropped_unreported += dropped
                stream.dropped_total += dropped
            # The bus stamps the entry's events with consecutive numbers from here.
            self.acks.track(entry_id, self.bus.next_seq, len(entry.events))
            if entry.events:
                self.read_events += len(entry.events)
                self.bus.ingest(entry.events, entry.size, fields[b"e"])

    def _report_trimmed(self) -> None:
        """Holes in members' running totals that no claim filled: events lost to MAXLEN."""
        for member, lost in self._gaps.overdue():
            self.trimmed += lost
            self.emit(
                Log(
                    level="warning",
                    logger="astra.fleet",
                    message=f"{lost:,} events of {member} were trimmed from the Redis stream "
                    "before the poster read them (raise fleet.max_stream_len)",
                )
            )

    def _complain(self, message: str) -> None:
        now = time.monotonic()
        if now - self._complained >= COMPLAINT_INTERVAL_S:
            self._complained = now
            log.warning("fleet: %s", message)

    # --- acknowledging and the dead-man switch -----------------------------------------

    async def _acknowledge(self) -> None:
        while True:
            await anyio.sleep(ACK_INTERVAL_S)
            await self._ack_ready()

    async def _ack_ready(self) -> None:
        ready = self.acks.take_ready()
        for start in range(0, len(ready), 1000):
            chunk = ready[start : start + 1000]
            try:
                await self._client.xack(self._keys.stream, self._keys.group, *chunk)
            except RedisError as exc:
                self.acks.give_back(ready[start:])
                self._complain(f"cannot acknowledge entries: {describe(exc, self._redact)}")
                return
            self.acked += len(chunk)

    async def _watch_silence(self) -> None:
        interval = min(5.0, max(0.5, self.silence.silent_after_s / 10))
        while True:
            await anyio.sleep(interval)
            try:
                seconds, micros = await self._client.time()
                raw = await self._client.hgetall(self._keys.members)
            except RedisError:
                continue  # the lease loop notices an unreachable Redis
            now = seconds + micros / 1e6
            seen = {text(k): int(v) / 1000 for k, v in raw.items()}
            for alert in self.silence.observe(seen, now):
                log.warning("fleet: %s", alert.message)
                self.emit(alert)


def _count(raw: bytes | None) -> int:
    return int(raw) if raw is not None and raw.isdigit() else 0
