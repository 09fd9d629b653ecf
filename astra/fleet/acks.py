"""Which stream entries are fully posted: an entry is acknowledged after all its events.

The poster's bus stamps an entry's events with consecutive sequence numbers, so an entry
is a range of them; a posted event counts its entry down by its ``seq`` (redaction may
replace an event object, never its ``seq``). Ranges come in increasing order and there are
only as many as entries in memory: a binary search finds an event's entry.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable

from astra.events import Event


class AckTracker:
    """Counts down each entry's events as their posts are confirmed."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._ids: list[bytes] = []
        self._remaining: list[int] = []
        self._ready: list[bytes] = []

    @property
    def pending_entries(self) -> int:
        """Entries with events not yet posted."""
        return sum(1 for left in self._remaining if left)

    def track(self, entry_id: bytes, first_seq: int, count: int) -> None:
        """Hold ``entry_id`` until its ``count`` events from ``first_seq`` on are posted
        (ready at once when it has none)."""
        if count <= 0:
            self._ready.append(entry_id)
            return
        self._starts.append(first_seq)
        self._ends.append(first_seq + count)
        self._ids.append(entry_id)
        self._remaining.append(count)

    def done(self, events: Iterable[Event]) -> None:
        """These events are posted (or given up and counted): count their entries down."""
        starts, ends = self._starts, self._ends
        hits: Counter[int] = Counter()
        low = high = index = -1
        for event in events:
            seq = event.seq
            if not low <= seq < high:
                index = bisect_right(starts, seq) - 1
                if index < 0 or seq >= ends[index]:
                    low = high = -1
                    continue  # the poster's own event, from no entry
                low, high = starts[index], ends[index]
            hits[index] += 1
        remaining = self._remaining
        for index, n in hits.items():
            remaining[index] -= n
            if remaining[index] <= 0:
                self._ready.append(self._ids[index])
        self._compact()

    def take_ready(self) -> list[bytes]:
        """Entry ids whose events are all posted, to acknowledge now."""
        ready, self._ready = self._ready, []
        return ready

    def give_back(self, entry_ids: list[bytes]) -> None:
        """Acknowledging failed: try these again next time."""
        self._ready[:0] = entry_ids

    def _compact(self) -> None:
        """Forget the finished ranges at the front (the others stay for the search)."""
        remaining = self._remaining
        done = 0
        while done < len(remaining) and remaining[done] <= 0:
            done += 1
        if done:
            del self._starts[:done], self._ends[:done], self._ids[:done], remaining[:done]
