"""Per-channel windows: the events waiting for a channel's next post."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import msgspec

from astra.events import Event


class Window(msgspec.Struct, frozen=True, kw_only=True):
    """A closed window: the events one batch of posts carries for one channel."""

    channel: str
    events: list[Event]
    opened: float
    closed: float
    dropped_before: int = 0

    @property
    def first_seq(self) -> int:
        """Sequence number of the first event."""
        return self.events[0].seq if self.events else 0

    @property
    def last_seq(self) -> int:
        """Sequence number of the last event."""
        return self.events[-1].seq if self.events else 0


class Occupancy:
    """Events held across all streams, pending or being delivered (the bus's memory bound)."""

    def __init__(self) -> None:
        self.count = 0


class ChannelStream:
    """Append-only queue of a channel's pending events, with its window schedule.

    The stream decides *when* a window is due (every ``interval``, sooner for critical
    events) but never waits itself: the delivery side asks ``due_in`` and is woken through
    ``on_wake`` when something changes.
    """

    def __init__(
        self,
        name: str,
        interval: float,
        critical_delay: float,
        clock: Callable[[], float],
        wall_clock: Callable[[], float] = time.time,
        occupancy: Occupancy | None = None,
    ) -> None:
        self.name = name
        self.interval = interval
        self.critical_delay = critical_delay
        self._clock = clock
        # Scheduling runs on a monotonic clock; what readers see is wall-clock time.
        self._wall_clock = wall_clock
        self._pending: deque[Event] = deque()
        self.occupancy = occupancy or Occupancy()
        self._next_close = clock() + interval
        self._urgent_at: float | None = None
        self._opened: float | None = None
        self.dropped_unreported = 0
        self.dropped_total = 0
        self.closing = False
        self.on_wake: Callable[[], None] = lambda: None

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def oldest_seq(self) -> int | None:
        """Sequence number of the oldest pending event, if any."""
        return self._pending[0].seq if self._pending else None

    def append(self, event: Event, critical: bool) -> None:
        """Add an event to the open window; a critical one makes the window due soon."""
        if not self._pending:
            self._opened = self._wall_clock()
        self._pending.append(event)
        self.occupancy.count += 1
        if self.closing:
            # The worker may be idle waiting for shutdown to end: this one must go out too.
            self.on_wake()
        if critical:
            due = self._clock() + self.critical_delay
            if self._urgent_at is None or due < self._urgent_at:
                self._urgent_at = due
                self.on_wake()

    def drop_oldest(self) -> None:
        """Drop the oldest pending event, counting it for the next post."""
        self._pending.popleft()
        self.occupancy.count -= 1
        self.dropped_unreported += 1
        self.dropped_total += 1
        if not self._pending:
            self._opened = None

    def due_in(self) -> float:
        """Seconds until the current window should close (0 when due now)."""
        now = self._clock()
        if self.closing:
            return 0.0
        due = self._next_close
        if self._urgent_at is not None:
            due = min(due, self._urgent_at)
        return max(0.0, due - now)

    def has_work(self) -> bool:
        """True when a post is owed: pending events or an unreported drop count."""
        return bool(self._pending) or self.dropped_unreported > 0

    def close_window(self, max_events: int) -> Window | None:
        """Close the window: take up to ``max_events`` pending events (oldest first).

        Everything pending is merged into one window, so after a slow or failed delivery
        the backlog goes out in as few posts as the limits allow.
        """
        now = self._clock()
        # Schedule on a fixed cadence; after a long stall, start again from now.
        self._next_close = max(self._next_close + self.interval, now + self.interval)
        self._urgent_at = None
        if not self.has_work():
            return None
        count = min(max_events, len(self._pending))
        # Still counted in the occupancy until delivery calls ``release``.
        events = [self._pending.popleft() for _ in range(count)]
        wall_now = self._wall_clock()
        opened = self._opened if self._opened is not None else wall_now
        self._opened = wall_now if self._pending else None
        if self._pending:
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

    def release(self, count: int) -> None:
        """Events of a closed window are posted (or given up): they no longer hold memory."""
        self.occupancy.count -= count
