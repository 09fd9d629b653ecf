"""Mutes: what they match, when they end, and how the alert book marks muted alerts."""

from __future__ import annotations

import pytest

from astra.collectors.alerts import AlertBook
from astra.collectors.mutes import MAX_MUTES, MuteError, Mutes
from astra.events import is_critical
from astra.units import parse_duration
from tests.conftest import Clock


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("1.5h", 5400)],
)
def test_durations_people_write_are_read(text: str, seconds: float) -> None:
    """Seconds, minutes, hours, days and combinations of them."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "90", "h", "1x", "..h", "1h 30", "soon"])
def test_what_is_not_a_duration_is_refused(text: str) -> None:
    """A number without a unit, an unknown unit or a stray word is an error naming the forms."""
    with pytest.raises(ValueError, match=r"use e\.g\. 90s, 30m"):
        parse_duration(text)


def test_a_mute_matches_its_rule_or_one_subject_and_ends_on_time() -> None:
    """``cpu`` mutes every cpu alert, ``disk:disk:/`` only that mount; both expire."""
    clock = Clock()
    mutes = Mutes(clock)
    mutes.mute("cpu", "10m")
    mutes.mute("disk:disk:/", "1h", by="alice")
    assert mutes.is_muted("cpu", "host")
    assert mutes.is_muted("disk", "disk:/")
    assert not mutes.is_muted("disk", "disk:/data")
    clock.now += 601
    assert not mutes.is_muted("cpu", "host")
    assert [(m.alert, m.by) for m in mutes.active()] == [("disk:disk:/", "alice")]
    assert mutes.unmute("disk:disk:/")
    assert not mutes.unmute("disk:disk:/")
    assert mutes.active() == []


def test_mutes_are_bounded_in_length_and_number() -> None:
    """A week at most, and no more than MAX_MUTES at once."""
    mutes = Mutes(Clock())
    with pytest.raises(MuteError, match="at most 7d"):
        mutes.mute("cpu", "8d")
    for n in range(MAX_MUTES):
        mutes.mute(f"rule{n}", "1h")
    with pytest.raises(MuteError, match="too many mutes"):
        mutes.mute("one-more", "1h")


def test_the_alert_book_marks_muted_alerts_and_they_are_not_critical() -> None:
    """A critical alert fired while muted is marked and does not take the early window."""
    clock = Clock()
    book = AlertBook(60, clock)
    book.mutes.mute("process_down", "1h")
    fired = book.update("process_down", "process:bot", True, severity="critical", message="down")
    assert fired is not None and fired.muted
    assert not is_critical(fired)
    book.mutes.unmute("process_down")
    clock.now += 61
    again = book.update("process_down", "process:bot", True, severity="critical", message="down")
    assert again is not None and not again.muted
    assert is_critical(again)
