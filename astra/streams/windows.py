"""Per-channel windows: the events waiting for a channel's next post."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence

import anyio
import msgspec

from astra.events import Event
from astra.statistics import StreamStatistics

# Early (critical) windows a channel may close per minute on top of its regular cadence:
# beyond this, critical events wait for the next regular window, so a flood of critical
# events cannot spend the channel's 30-posts-a-minute budget.
DEFAULT_CRITICAL_PER_MINUTE = 6
_MINUTE_S = 60.0


class Window(msgspec.Struct, frozen=True, kw_only=True):
    """A closed window: the events one batch of posts carries for one channel."""

    channel: str
    events: list[Event]
    opened: float
    closed: float
    dropped_before: int = 0
    # Shown on the post when set (fleet mode: "degraded: Redis unreachable").
    note: str = ""

    @property
    def first_seq(self) -> int:
        """Sequence number of the first event."""
        return self.events[0].seq if self.events else 0

    @property
    def last_seq(self) -> int:
        """Sequence number of the last event."""
        return self.events[-1].seq if self.events else 0


class ChannelStream:
    """Append-only queue of a channel's pending events, with its window schedule.

    Two queues in sequence order: astra's own events, which the memory bound never drops,
    and events that came over ingest, which it may. A window merges both by sequence
    number. The stream decides *when* a window is due (every ``interval``, sooner for
    critical events, within a per-minute budget of early windows) but never waits itself:
    the delivery side asks ``due_in`` and is woken through ``on_wake`` when something
    changes.
    """

    def __init__(
        self,
        name: str,
        interval: float,
        critical_delay: float,
        clock: Callable[[], float],
        wall_clock: Callable[[], float] = time.time,
        *,
        critical_per_minute: int = DEFAULT_CRITICAL_PER_MINUTE,
    ) -> None:
        self.name = name
        self.interval = interval
        self.critical_delay = critical_delay
        self._clock = clock
        # Scheduling runs on a monotonic clock; what readers see is wall-clock time.
        self._wall_clock = wall_clock
        self._own: deque[Event] = deque()
        self._own_sizes: deque[int] = deque()
        self._ingested: deque[Event] = deque()
        # Sizes in the same order as the events (bytes as received, or as encoded).
        self._ingested_sizes: deque[int] = deque()
        self._own_bytes = 0
        self._ingested_bytes = 0
        self._inflight = 0
        self._inflight_bytes = 0
        self._next_close = clock() + interval
        self._urgent_at: float | None = None
        self._opened: float | None = None
        self._critical_per_minute = critical_per_minute
        self._early_closes: deque[float] = deque()
        self._early_total = 0
        self._critical_deferred = 0
        self.dropped_unreported = 0
        self.dropped_total = 0
        self._closing = False
        # Created only while someone waits, so a stream works without an event loop too.
        self._changed: anyio.Event | None = None

    def __len__(self) -> int:
        return len(self._own) + len(self._ingested)

    @property
    def held(self) -> int:
        """Events this channel holds in memory: pending plus in closed, unposted windows."""
        return len(self._own) + len(self._ingested) + self._inflight

    @property
    def held_bytes(self) -> int:
        """Bytes this channel holds in memory, pending and in flight."""
        return self._own_bytes + self._ingested_bytes + self._inflight_bytes

    @property
    def evictable(self) -> int:
        """Pending events the memory bound may drop (those that came over ingest)."""
        return len(self._ingested)

    @property
    def evictable_bytes(self) -> int:
        """Bytes of the pending events the memory bound may drop."""
        return self._ingested_bytes

    def statistics(self) -> StreamStatistics:
        """This stream's figures now."""
        return StreamStatistics(
            pending=len(self),
            pending_bytes=self._own_bytes + self._ingested_bytes,
            inflight=self._inflight,
            evictable=len(self._ingested),
            dropped_total=self.dropped_total,
            dropped_unreported=self.dropped_unreported,
            early_windows=self._early_total,
            critical_deferred=self._critical_deferred,
        )

    def append(self, event: Event, critical: bool, size: int, *, evictable: bool) -> None:
        """Add an event to the open window; a critical one makes the window due soon.

        ``evictable`` events (from ingest) may later be dropped by the memory bound;
        astra's own never are.
        """
        if self._opened is None:
            self._opened = self._wall_clock()
        if evictable:
            self._ingested.append(event)
            self._ingested_sizes.append(size)
            self._ingested_bytes += size
        else:
            self._own.append(event)
            self._own_sizes.append(size)
            self._own_bytes += size
        if self._closing:
            # The worker may be idle waiting for shutdown to end: this one must go out too.
            self._notify()
        if critical:
            self._make_urgent()

    def extend(self, events: Sequence[Event], share: int, *, critical: bool) -> None:
        """Add ingested events (evictable, ``share`` bytes each) in one step.

        ``critical`` when any of them is: the window becomes due soon, as with ``append``.
        """
        if not events:
            return
        if self._opened is None:
            self._opened = self._wall_clock()
        self._ingested.extend(events)
        self._ingested_sizes.extend(itertools.repeat(share, len(events)))
        self._ingested_bytes += share * len(events)
        if self._closing:
            self._notify()
        if critical:
            self._make_urgent()

    def _make_urgent(self) -> None:
        now = self._clock()
        due = now + self.critical_delay
        if self._urgent_at is not None and self._urgent_at <= due:
            return  # coalesces with the early window already scheduled
        if due >= self._next_close:
            return  # the regular window comes first anyway
        while self._early_closes and self._early_closes[0] <= now - _MINUTE_S:
            self._early_closes.popleft()
        if len(self._early_closes) >= self._critical_per_minute:
            self._critical_deferred += 1
            return
        self._urgent_at = due
        self._notify()

    def drop_oldest(self) -> int:
        """Drop the oldest ingested pending event, counting it for the next post; its size.

        Returns 0 (and drops nothing) when no ingested event is pending.
        """
        if not self._ingested:
            return 0
        self._ingested.popleft()
        size = self._ingested_sizes.popleft()
        self._ingested_bytes -= size
        self.dropped_unreported += 1
        self.dropped_total += 1
        if not self._own and not self._ingested:
            self._opened = None
        return max(size, 1)

    @property
    def closing(self) -> bool:
        """True once shutdown began: every window is due at once."""
        return self._closing

    def close(self) -> None:
        """Shutdown: what is pending is due now, and so is whatever arrives later."""
        self._closing = True
        self._notify()

    async def wait_changed(self, timeout: float) -> None:
        """Sleep ``timeout`` seconds, or less if a window became due sooner meanwhile.

        A critical event, shutdown, or an event arriving while closing cut the sleep short.
        """
        self._changed = anyio.Event()
        try:
            with anyio.move_on_after(timeout):
                await self._changed.wait()
        finally:
            self._changed = None

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def due_in(self) -> float:
        """Seconds until the current window should close (0 when due now)."""
        now = self._clock()
        if self._closing:
            return 0.0
        due = self._next_close
        if self._urgent_at is not None:
            due = min(due, self._urgent_at)
        return max(0.0, due - now)

    def has_work(self) -> bool:
        """True when a post is owed: pending events or an unreported drop count."""
        return bool(self._own) or bool(self._ingested) or self.dropped_unreported > 0

    def close_window(self, max_events: int) -> Window | None:
        """Close the window: take up to ``max_events`` pending events (oldest first).

        Everything pending is merged into one window, so after a slow or failed delivery
        the backlog goes out in as few posts as the limits allow.
        """
        now = self._clock()
        if self._urgent_at is not None and self._urgent_at < self._next_close:
            self._early_closes.append(now)
            self._early_total += 1
        # Schedule on a fixed cadence; after a long stall, start again from now.
        self._next_close = max(self._next_close + self.interval, now + self.interval)
        self._urgent_at = None
        if not self.has_work():
            return None
        events, size = self._take(min(max_events, len(self)))
        # Still held in memory until delivery calls ``release``.
        self._inflight += len(events)
        self._inflight_bytes += size
        wall_now = self._wall_clock()
        opened = self._opened if self._opened is not None else wall_now
        self._opened = wall_now if len(self) else None
        if len(self):
            # More than one window's worth is waiting: the rest is due right away.
            self._urgent_at = now
        dropped, self.dropped_unreported = self.dropped_unreported, 0
        return Window(
            channel=self.name,
            events=events,
            opened=opened,
            closed=wall_now,
            dropped_before=dropped,
        )

    def _take(self, count: int) -> tuple[list[Event], int]:
        """The ``count`` oldest pending events of both queues in sequence order; their bytes."""
        own, ingested = self._own, self._ingested
        own_sizes, ingested_sizes = self._own_sizes, self._ingested_sizes
        if not own:
            events = [ingested.popleft() for _ in range(count)]
            size = sum(ingested_sizes.popleft() for _ in range(count))
            self._ingested_bytes -= size
            return events, size
        events = []
        own_bytes = ingested_bytes = 0
        while len(events) < count:
            if own and (not ingested or own[0].seq < ingested[0].seq):
                events.append(own.popleft())
                own_bytes += own_sizes.popleft()
            else:
                events.append(ingested.popleft())
                ingested_bytes += ingested_sizes.popleft()
        self._own_bytes -= own_bytes
        self._ingested_bytes -= ingested_bytes
        return events, own_bytes + ingested_bytes

    def release(self, count: int) -> None:
        """Events of a closed window are posted (or given up): they no longer hold memory."""
        if count <= 0 or self._inflight <= 0:
            return
        count = min(count, self._inflight)
        freed = self._inflight_bytes * count // self._inflight
        self._inflight -= count
        self._inflight_bytes -= freed
        if self._inflight == 0:
            self._inflight_bytes = 0
