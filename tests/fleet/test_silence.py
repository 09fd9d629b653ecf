"""The dead-man switch: silent members, their return, and members that left."""

from __future__ import annotations

from astra.events import is_critical
from astra.fleet.silence import SilenceWatcher


def test_a_silent_member_fires_once_and_resolves_when_it_reports_again() -> None:
    """Silent past the limit: one critical firing alert; heard again: resolved."""
    watcher = SilenceWatcher(120)
    assert watcher.observe({"a": 1000.0, "b": 1000.0}, now=1100.0) == []
    fired = watcher.observe({"a": 1000.0, "b": 1100.0}, now=1130.0)
    assert [(a.subject, a.state, a.severity) for a in fired] == [("member:a", "firing", "critical")]
    assert is_critical(fired[0]) and fired[0].message.startswith("a silent since 00:16:40")
    assert watcher.observe({"a": 1000.0}, now=1200.0) == []
    assert watcher.silent == ["a"]
    back = watcher.observe({"a": 1199.0}, now=1200.0)
    assert [(a.subject, a.state) for a in back] == [("member:a", "resolved")]
    assert watcher.silent == []


def test_a_member_that_left_the_fleet_resolves_its_alert() -> None:
    """A silent member removed on a clean stop is no longer reported as silent."""
    watcher = SilenceWatcher(10)
    watcher.observe({"a": 0.0}, now=20.0)
    left = watcher.observe({}, now=30.0)
    assert [(a.state, "left the fleet" in a.message) for a in left] == [("resolved", True)]


def test_members_are_every_heartbeat_and_a_clean_leave_drops_one() -> None:
    """The watcher's members are the heartbeats it last saw, silent ones included."""
    watcher = SilenceWatcher(10)
    assert watcher.members == []
    watcher.observe({"b": 0.0, "a": 25.0}, now=30.0)
    assert watcher.members == ["a", "b"] and watcher.silent == ["b"]
    watcher.observe({"a": 35.0}, now=40.0)
    assert watcher.members == ["a"] and watcher.silent == []
