"""Trimmed entries: gaps in a member's running total that nothing fills.

Each entry carries the member's running total of events (``t``) and its own count
(``n``), so it covers the events ``[t - n, t)`` of that member's run. Read in stream order,
a member's entries follow one another; a hole between two of them is either trimmed by
``MAXLEN`` before it was read, or read by a former poster that had not yet noticed it lost
the lease (claimed later, after it sat idle). So a hole is reported as trimmed only after
``grace_s``, and whatever a claimed entry covers is taken out of it first.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Members' runs remembered at most (the oldest are forgotten first).
MAX_RUNS = 10_000


class GapTracker:
    """Holes in members' running totals, reported once they are surely lost."""

    def __init__(self, grace_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace_s = grace_s
        self._clock = clock
        self._totals: dict[tuple[str, str], int] = {}
        # (member, run) -> holes [low, high) with the time each was seen.
        self._holes: dict[tuple[str, str], list[tuple[int, int, float]]] = {}

    def in_order(self, member: str, run: str, total: int, count: int) -> None:
        """An entry read in stream order: a jump past the last total is a hole."""
        key = (member, run)
        before = self._totals.get(key)
        start = total - count
        if before is not None and start > before:
            self._holes.setdefault(key, []).append((before, start, self._clock()))
        if before is None or total > before:
            self._totals[key] = total
            if len(self._totals) > MAX_RUNS:
                del self._totals[next(iter(self._totals))]

    def claimed(self, member: str, run: str, total: int, count: int) -> None:
        """An entry taken over from another consumer: it fills what it covers."""
        key = (member, run)
        holes = self._holes.get(key)
        if not holes:
            return
        low, high = total - count, total
        kept: list[tuple[int, int, float]] = []
        for start, end, seen in holes:
            if high <= start or low >= end:
                kept.append((start, end, seen))
                continue
            if start < low:
                kept.append((start, low, seen))
            if high < end:
                kept.append((high, end, seen))
        if kept:
            self._holes[key] = kept
        else:
            del self._holes[key]

    def overdue(self) -> list[tuple[str, int]]:
        """Holes older than the grace period, now counted as lost: (member, events)."""
        now = self._clock()
        lost: list[tuple[str, int]] = []
        for key in list(self._holes):
            holes = self._holes[key]
            old = sum(end - start for start, end, seen in holes if now - seen >= self.grace_s)
            if old:
                lost.append((key[0], old))
                young = [h for h in holes if now - h[2] < self.grace_s]
                if young:
                    self._holes[key] = young
                else:
                    del self._holes[key]
        return lost
