"""Acknowledging stream entries only once all their events are posted."""

from __future__ import annotations

from astra.events import Log
from astra.fleet.acks import AckTracker


def test_an_entry_is_ready_only_after_every_one_of_its_events_is_done() -> None:
    """Two of three events posted: not ready; the third: ready, once."""
    tracker = AckTracker()
    events = [Log(level="info", message=str(i)) for i in range(3)]
    tracker.track(b"1-0", events)
    tracker.done(events[:2])
    assert tracker.take_ready() == []
    tracker.done(events[2:])
    assert tracker.take_ready() == [b"1-0"] and tracker.take_ready() == []
    assert tracker.pending_entries == 0


def test_events_are_matched_by_id_across_entries_and_own_events_are_ignored() -> None:
    """A redacted copy (same id) counts; an event from no entry changes nothing."""
    tracker = AckTracker()
    first, second = Log(level="info", message="a"), Log(level="info", message="b")
    tracker.track(b"1-0", [first])
    tracker.track(b"2-0", [second])
    tracker.done(
        [Log(level="info", message="[redacted]", id=second.id), Log(level="info", message="own")]
    )
    assert tracker.take_ready() == [b"2-0"]


def test_an_entry_without_events_is_ready_at_once_and_failed_acks_come_back() -> None:
    """Nothing to post means nothing to wait for; ids given back are retried first."""
    tracker = AckTracker()
    tracker.track(b"1-0", [])
    ready = tracker.take_ready()
    assert ready == [b"1-0"]
    tracker.give_back(ready)
    assert tracker.take_ready() == [b"1-0"]
