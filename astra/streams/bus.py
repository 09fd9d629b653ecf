"""The event bus: bounded, in-memory, append-only; every event gets a sequence number."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

from msgspec.structs import force_setattr

from astra.events import Event, is_critical
from astra.redaction import Redactor
from astra.streams.router import Router
from astra.streams.windows import ChannelStream, Occupancy


class Bus:
    """Stamps, redacts and routes events into per-channel streams.

    Memory is bounded by ``max_events`` across all channels, counting events pending in
    windows and events of windows being delivered: when full, the oldest pending event
    (lowest sequence number, whichever channel holds it) is dropped and counted on its
    channel, so the count can be posted once delivery resumes. Events being delivered are
    never dropped (a post must not change under its retries).
    """

    def __init__(
        self,
        router: Router,
        streams: Iterable[ChannelStream],
        max_events: int,
        redactor: Redactor,
    ) -> None:
        self._router = router
        self.streams: dict[str, ChannelStream] = {s.name: s for s in streams}
        # One shared count, so checking the bound costs nothing per event.
        self._occupancy = Occupancy()
        for stream in self.streams.values():
            self._occupancy.count += len(stream)
            stream.occupancy = self._occupancy
        self._max_events = max_events
        self._redactor = redactor
        self._seq = itertools.count(1)
        self.published = 0
        self.dropped = 0
        self.closed = False
        self._listeners: list[Callable[[Event], None]] = []

    @property
    def pending(self) -> int:
        """Events held in memory, waiting for their window to be delivered."""
        return self._occupancy.count

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` with every event after it is stamped (projections, stats)."""
        self._listeners.append(listener)

    def publish(self, event: Event) -> Event:
        """Redact, stamp with the next sequence number and append to its channel."""
        event = self._redactor.event(event)
        # Stamping happens before the event is shared with anyone, so it stays immutable
        # from every reader's point of view.
        force_setattr(event, "seq", next(self._seq))
        stream = self.streams[self._router.channel_for(event)]
        stream.append(event, is_critical(event))
        self.published += 1
        while self._occupancy.count > self._max_events and self._drop_oldest():
            pass
        for listener in self._listeners:
            listener(event)
        return event

    def _drop_oldest(self) -> bool:
        oldest: ChannelStream | None = None
        for stream in self.streams.values():
            seq = stream.oldest_seq
            if seq is not None and (oldest is None or seq < (oldest.oldest_seq or 0)):
                oldest = stream
        if oldest is None:
            return False
        oldest.drop_oldest()
        self.dropped += 1
        return True
