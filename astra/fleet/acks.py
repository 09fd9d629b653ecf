"""Which stream entries are fully posted: an entry is acknowledged after all its events."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from astra.events import Event


class AckTracker:
    """Counts down each entry's events as their posts are confirmed.

    Events are matched by ``id`` (kept end to end, and through redaction, which may
    replace the object); an id seen in two pending entries is matched oldest first.
    """

    def __init__(self) -> None:
        self._owners: dict[str, deque[bytes]] = {}
        self._remaining: dict[bytes, int] = {}
        self._ready: list[bytes] = []

    @property
    def pending_entries(self) -> int:
        """Entries with events not yet posted."""
        return len(self._remaining)

    def track(self, entry_id: bytes, events: Iterable[Event]) -> None:
        """Hold ``entry_id`` until every one of ``events`` is posted (at once if none)."""
        count = 0
        owners = self._owners
        for event in events:
            queue = owners.get(event.id)
            if queue is None:
                owners[event.id] = deque((entry_id,))
            else:
                queue.append(entry_id)
            count += 1
        if count:
            self._remaining[entry_id] = self._remaining.get(entry_id, 0) + count
        else:
            self._ready.append(entry_id)

    def done(self, events: Iterable[Event]) -> None:
        """These events are posted (or given up and counted): count their entries down."""
        owners, remaining = self._owners, self._remaining
        for event in events:
            queue = owners.get(event.id)
            if queue is None:
                continue  # the poster's own event, not from the stream
            entry_id = queue.popleft()
            if not queue:
                del owners[event.id]
            left = remaining[entry_id] - 1
            if left:
                remaining[entry_id] = left
            else:
                del remaining[entry_id]
                self._ready.append(entry_id)

    def take_ready(self) -> list[bytes]:
        """Entry ids whose events are all posted, to acknowledge now."""
        ready, self._ready = self._ready, []
        return ready

    def give_back(self, entry_ids: list[bytes]) -> None:
        """Acknowledging failed: try these again next time."""
        self._ready[:0] = entry_ids
