"""Trimmed entries: holes in a member's running total, reported once nothing fills them."""

from __future__ import annotations

from astra.fleet.gaps import GapTracker
from tests.conftest import Clock


def test_a_hole_is_reported_as_trimmed_only_after_the_grace_period() -> None:
    """Totals 10 then 50 (10 events each): 30 events missing, reported once, after grace."""
    clock = Clock()
    gaps = GapTracker(4.0, clock)
    gaps.in_order("a", "r", 10, 10)
    gaps.in_order("a", "r", 50, 10)
    assert gaps.overdue() == []
    clock.now += 4.0
    assert gaps.overdue() == [("a", 30)]
    assert gaps.overdue() == []


def test_claimed_entries_fill_the_hole_they_cover() -> None:
    """What a former poster read (claimed later) is not trimmed; only the rest is."""
    clock = Clock()
    gaps = GapTracker(4.0, clock)
    gaps.in_order("a", "r", 10, 10)
    gaps.in_order("a", "r", 50, 10)
    gaps.claimed("a", "r", 20, 10)
    gaps.claimed("a", "r", 40, 10)
    clock.now += 5.0
    assert gaps.overdue() == [("a", 10)]


def test_consecutive_entries_and_other_runs_leave_no_hole() -> None:
    """Following entries, a member's first entry, and a new run (restart) are no gap."""
    gaps = GapTracker(0.0, Clock())
    gaps.in_order("a", "r1", 5, 5)
    gaps.in_order("a", "r1", 9, 4)
    gaps.in_order("a", "r2", 100, 3)
    gaps.in_order("b", "r1", 7, 7)
    gaps.in_order("a", "r1", 9, 4)  # appended twice after a lost reply: a duplicate
    assert gaps.overdue() == []
