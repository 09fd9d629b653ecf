"""The event bus: bounded, in-memory, append-only; every event gets a sequence number."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import cast

from msgspec.structs import force_setattr

from astra.config import CHANNELS, Config
from astra.events import Alert, Command, Error, Event, Listener, Log, encode, is_critical
from astra.redaction import Redactor
from astra.statistics import BusStatistics
from astra.streams.router import Router
from astra.streams.windows import ChannelStream

# The only types ``is_critical`` can be true for.
_MAY_BE_CRITICAL = frozenset({Error, Log, Alert})


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
        self._next_seq = 1
        self.published = 0
        self._ingested = 0
        self._listeners: list[tuple[Listener, frozenset[type[Event]] | None]] = []

    @property
    def pending(self) -> int:
        """Events held in memory, waiting for their window to be delivered."""
        return sum(s.held for s in self.streams.values())

    @property
    def next_seq(self) -> int:
        """The sequence number the next event will get."""
        return self._next_seq

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

    def subscribe(self, listener: Listener, kinds: Iterable[type[Event]] | None = None) -> None:
        """Call ``listener`` with every stamped event (of ``kinds`` only, when given).

        Each call carries events of one type, in sequence order: a projection folds a
        batch at once instead of paying a call per event.
        """
        self._listeners.append((listener, frozenset(kinds) if kinds is not None else None))

    def publish(self, event: Event) -> Event:
        """Publish one of astra's own events: redacted, stamped, never dropped by the bound."""
        event = self._redactor.event(event)
        force_setattr(event, "seq", self._next_seq)
        self._next_seq += 1
        self.published += 1
        stream = self.streams[self._router.channel_for(event)]
        stream.append(event, is_critical(event), len(encode(event)), evictable=False)
        self._dispatch({type(event): [event]})
        self._enforce_bound()
        return event

    def ingest(self, events: Sequence[Event], size: int, raw: bytes | None = None) -> None:
        """Publish events that came over ingest, ``size`` bytes as received in all.

        ``raw`` is the body they were decoded from: when it holds nothing secret-looking,
        no event in it needs redacting, which spares the check per event. Their bytes are
        shared evenly among them; the bound is enforced once the whole batch is in (a
        batch is itself bounded by the ingest's per-request limit).
        """
        if not events:
            return
        if raw is None or self._redactor.suspect(raw):
            redact = self._redactor.event
            events = [redact(event) for event in events]
        first = self._next_seq
        for seq, event in enumerate(events, first):
            # Stamped before anyone else sees it, so it stays immutable for every reader.
            force_setattr(event, "seq", seq)
        self._next_seq = first + len(events)
        kinds = set(map(type, events))
        groups: dict[type[Event], list[Event]]
        if len(kinds) == 1:
            groups = {kinds.pop(): list(events)}
        else:
            groups = {kind: [] for kind in kinds}
            for event in events:
                groups[type(event)].append(event)
        self.published += len(events)
        self._ingested += len(events)
        share = max(1, size // len(events))
        channel_for = self._router.channel_for_key
        for kind, group in groups.items():
            if kind is Command:
                outcomes: dict[bool, list[Event]] = {True: [], False: []}
                for command in group:
                    outcomes[cast(Command, command).ok].append(command)
                for ok, part in outcomes.items():
                    key = "command.ok" if ok else "command.failed"
                    self.streams[channel_for(key)].extend(part, share, critical=False)
            else:
                key = str(kind.__struct_config__.tag)
                critical = kind in _MAY_BE_CRITICAL and any(map(is_critical, group))
                self.streams[channel_for(key)].extend(group, share, critical=critical)
        self._dispatch(groups)
        self._enforce_bound()

    def _dispatch(self, groups: dict[type[Event], list[Event]]) -> None:
        for listener, kinds in self._listeners:
            for kind, group in groups.items():
                if kinds is None or kind in kinds:
                    listener(group)

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


def configured_bus(config: Config, redactor: Redactor) -> Bus:
    """The bus of a sidecar (or a fleet's poster): one stream a channel, as configured."""
    streams = [
        ChannelStream(
            name,
            interval=config.flush.interval,
            critical_delay=config.flush.critical_delay,
            clock=time.monotonic,
            critical_per_minute=config.flush.critical_per_minute,
        )
        for name in CHANNELS
    ]
    return Bus(
        Router(config.routes),
        streams,
        redactor,
        max_events=config.buffer.max_events,
        max_bytes=config.buffer.max_bytes,
    )
