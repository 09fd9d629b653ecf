"""The event bus: bounded, in-memory, append-only; every event gets a sequence number."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

import msgspec
from msgspec.structs import force_setattr

from astra.events import Event, encode, is_critical
from astra.redaction import Redactor
from astra.streams.router import Router
from astra.streams.windows import ChannelStream


class BusStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """The bus's figures at one moment."""

    published: int  # events stamped since start, astra's own and ingested
    ingested: int  # of those, events that came over ingest
    held: int  # events in memory: pending in windows plus in windows being posted
    held_bytes: int  # their size (as received; astra's own as encoded)
    max_events: int  # the bound on ``held``
    max_bytes: int  # the bound on ``held_bytes``
    dropped: int  # ingested events evicted by the bound since start, all channels


class Bus:
    """Stamps, redacts and routes events into per-channel streams.

    Memory is bounded by ``max_events`` and ``max_bytes`` across all channels, counting
    events pending in windows and events of windows being delivered. Only events that came
    over ingest are ever dropped, and fairly: when full, the oldest ingested event of the
    channel holding the most of them goes, so one channel's flood cannot evict another
    channel's events. astra's own events (lifecycle, pipeline, health, alerts, reports) are
    never dropped. Drops are counted per channel and posted once delivery resumes. Events
    being delivered are never dropped (a post must not change under its retries).
    """

    def __init__(
        self,
        router: Router,
        streams: Iterable[ChannelStream],
        redactor: Redactor,
        *,
        max_events: int,
        max_bytes: int,
    ) -> None:
        self._router = router
        self.streams: dict[str, ChannelStream] = {s.name: s for s in streams}
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._redactor = redactor
        self._seq = itertools.count(1)
        self.published = 0
        self._ingested = 0
        self._listeners: list[Callable[[Event], None]] = []

    @property
    def pending(self) -> int:
        """Events held in memory, waiting for their window to be delivered."""
        return sum(s.held for s in self.streams.values())

    @property
    def dropped(self) -> int:
        """Ingested events evicted by the memory bound since start."""
        return sum(s.dropped_total for s in self.streams.values())

    def statistics(self) -> BusStatistics:
        """The bus's figures now."""
        streams = self.streams.values()
        return BusStatistics(
            published=self.published,
            ingested=self._ingested,
            held=sum(s.held for s in streams),
            held_bytes=sum(s.held_bytes for s in streams),
            max_events=self._max_events,
            max_bytes=self._max_bytes,
            dropped=sum(s.dropped_total for s in streams),
        )

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` with every event after it is stamped (projections, stats)."""
        self._listeners.append(listener)

    def publish(self, event: Event) -> Event:
        """Publish one of astra's own events: redacted, stamped, never dropped by the bound."""
        event = self._redactor.event(event)
        self._append(event, len(encode(event)), evictable=False)
        self._enforce_bound()
        return event

    def ingest(self, events: Sequence[Event], size: int) -> None:
        """Publish events that came over ingest, ``size`` bytes as received in all.

        Their bytes are shared evenly among them; the bound is enforced once the whole
        batch is in (a batch is itself bounded by the ingest's per-request limit).
        """
        if not events:
            return
        share = max(1, size // len(events))
        redact = self._redactor.event
        for event in events:
            self._append(redact(event), share, evictable=True)
        self._ingested += len(events)
        self._enforce_bound()

    def _append(self, event: Event, size: int, *, evictable: bool) -> None:
        # Stamping happens before the event is shared with anyone, so it stays immutable
        # from every reader's point of view.
        force_setattr(event, "seq", next(self._seq))
        stream = self.streams[self._router.channel_for(event)]
        stream.append(event, is_critical(event), size, evictable=evictable)
        self.published += 1
        for listener in self._listeners:
            listener(event)

    def _enforce_bound(self) -> None:
        streams = self.streams.values()
        held = sum(s.held for s in streams)
        held_bytes = sum(s.held_bytes for s in streams)
        while held > self._max_events or held_bytes > self._max_bytes:
            by_bytes = held_bytes > self._max_bytes
            fullest = max(streams, key=_by_bytes if by_bytes else _by_count)
            freed = fullest.drop_oldest()
            if not freed:
                return  # only astra's own events are held: they are never dropped
            held -= 1
            held_bytes -= freed


def _by_count(stream: ChannelStream) -> int:
    return stream.evictable


def _by_bytes(stream: ChannelStream) -> int:
    return stream.evictable_bytes
