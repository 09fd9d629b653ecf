"""Acknowledging stream entries only once all their events are posted."""

from __future__ import annotations

from msgspec.structs import force_setattr

from astra.events import Event, Log
from astra.fleet.acks import AckTracker


def stamped(first: int, count: int) -> list[Event]:
    """``count`` events stamped ``first``, ``first + 1``… as the bus does."""
    events: list[Event] = []
    for seq in range(first, first + count):
        event = Log(level="info", message=str(seq))
        force_setattr(event, "seq", seq)
        events.append(event)
    return events


def test_an_entry_is_ready_only_after_every_one_of_its_events_is_done() -> None:
    """Two of three events posted: not ready; the third: ready, once."""
    tracker = AckTracker()
    events = stamped(1, 3)
    tracker.track(b"1-0", 1, 3)
    tracker.done(events[:2])
    assert tracker.take_ready() == []
    tracker.done(events[2:])
    assert tracker.take_ready() == [b"1-0"] and tracker.take_ready() == []
    assert tracker.pending_entries == 0


def test_entries_finish_out_of_order_and_own_events_between_them_are_ignored() -> None:
    """Events of two entries posted in other channels' order; the poster's own event (a
    number between the entries) counts for neither."""
    tracker = AckTracker()
    first, own, second = stamped(1, 2), stamped(3, 1), stamped(4, 2)
    tracker.track(b"1-0", 1, 2)
    tracker.track(b"2-0", 4, 2)
    tracker.done([second[1], own[0], second[0], first[0]])
    assert tracker.take_ready() == [b"2-0"]
    tracker.done([Log(level="info", message="redacted copy, same number", seq=2)])
    assert tracker.take_ready() == [b"1-0"] and tracker.pending_entries == 0


def test_an_entry_without_events_is_ready_at_once_and_failed_acks_come_back() -> None:
    """Nothing to post means nothing to wait for; ids given back are retried first."""
    tracker = AckTracker()
    tracker.track(b"1-0", 7, 0)
    ready = tracker.take_ready()
    assert ready == [b"1-0"]
    tracker.give_back(ready)
    assert tracker.take_ready() == [b"1-0"]
