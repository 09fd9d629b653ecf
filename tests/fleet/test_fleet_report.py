"""End to end: a fleet's daily report covers every member, and recovery knows the fleet."""

from __future__ import annotations

import signal
import time
from collections import Counter
from typing import Any

import pytest

from tests.conftest import Launch
from tests.e2e.test_control import CONTROL, control
from tests.e2e.test_export import readable_channels
from tests.e2e.test_recovery import BOT_KINDS, bot_day, report_at, report_due
from tests.fake_discord import FakeDiscord
from tests.fleet.conftest import RedisServer
from tests.fleet.test_fleet_cli import QUIET, fleet_body, poster_of, wait_all_posted
from tests.sidecar import Sidecar


def member_day(member: int, phase: int) -> list[dict[str, Any]]:
    """A phase of one member's bot day: ``bot_day`` with ids and guilds of its own."""
    events = bot_day(phase)
    for event in events:
        event["id"] = f"{event['id']}@{member}"
    return events


def diagnostics(discord: FakeDiscord, ids: dict[str, int], kind: str) -> list[dict[str, Any]]:
    """The events of ``kind`` stored in #diagnostics."""
    return [e for e in discord.all_events(ids["diagnostics"]) if e["kind"] == kind]


def fleet_with_a_day(
    discord: FakeDiscord, launch: Launch, server: RedisServer, count: int, extra: str
) -> tuple[list[Sidecar], dict[str, int], list[dict[str, Any]]]:
    """``count`` members on readable channels, each sent its first phase of the day, all of
    it posted; the members, the channel ids and what was sent."""
    channels, ids = readable_channels(discord)
    members = [
        launch(fleet_body(channels, server.url, f"member-{i}", extra=extra)) for i in range(count)
    ]
    sent: list[dict[str, Any]] = []
    for index, member in enumerate(members):
        events = member_day(index, 1)
        assert member.post(events).status == 200
        sent += events
    wait_all_posted(members[0], discord, ids, sent, members)
    return members, ids, sent


@pytest.mark.slow(seconds=135)  # the report comes 45-105 s after the start
def test_one_daily_report_counts_every_member_even_after_the_poster_was_killed(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """Three members, the poster SIGKILLed mid-day: the fleet sends one daily report, and it
    counts every member's events of the whole day (the new poster read the dead one's posts
    back), with a row per member."""
    members, ids, sent = fleet_with_a_day(discord, launch, redis_server, 3, report_at(45))
    first = poster_of(members)
    killed = first.health()["fleet"]["member"]
    first.stop(signal.SIGKILL)
    alive = [m for m in members if m is not first]
    alive[0].wait_for(lambda: "poster" in {m.health()["role"] for m in alive}, timeout=30)
    for member in alive:
        events = member_day(members.index(member), 2)
        assert member.post(events).status == 200
        sent += events
    wait_all_posted(alive[0], discord, ids, sent, alive)
    alive[0].wait_for(lambda: diagnostics(discord, ids, "report"), timeout=150, interval=0.5)
    for member in alive:
        assert member.stop() == 0, member.stderr
    (report,) = diagnostics(discord, ids, "report")
    expected = Counter({"command.ok": 9, "command.failed": 3, "message": 12, "error": 1})
    phases = 3 + 2  # three members' first phase, the two survivors' second
    assert {k: v for k, v in report["events"].items() if k in BOT_KINDS} == {
        k: n * phases for k, n in expected.items()
    }
    rows = {m["name"]: m for m in report["members"]}
    assert sorted(rows) == ["member-0", "member-1", "member-2"]
    assert rows[killed]["problems"] == 3 + 1  # failed commands and the error, phase one
    assert all(rows[name]["problems"] == 2 * 4 for name in rows if name != killed)
    assert report["coverage"] == ""
    recovered = [
        e["detail"]
        for e in diagnostics(discord, ids, "lifecycle")
        if e["action"] == "recovered" and e["detail"].startswith("fleet report: read")
    ]
    assert recovered, "the new poster read the day back"


def test_a_restarted_member_restores_its_own_alerts_not_another_members(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """A member restarted mid-day reads the fleet's history back but takes up only the alerts
    it raised itself: another member's firing cpu alert is not its own."""
    channels, ids = readable_channels(discord)
    hot = QUIET.replace(
        "[collectors.system]\nenabled = false", "[collectors.system]\ninterval = 0.3"
    ).replace("[collectors.errors]\nenabled = false", "[collectors.errors]\ninterval = 0.3")
    alarmed = launch(
        fleet_body(
            channels,
            redis_server.url,
            "member-0",
            extra="[alerts]\ncpu_percent = 0.01\n",
            quiet=hot,
        )
    )
    quiet_config = fleet_body(channels, redis_server.url, "member-1", extra=CONTROL)
    quiet = launch(quiet_config)

    def firing_cpu_alert_posted() -> bool:
        return any(
            e["kind"] == "alert" and e["rule"] == "cpu" and e["state"] == "firing"
            for e in discord.all_events(ids["logs"])
        )

    alarmed.wait_for(firing_cpu_alert_posted, timeout=60)
    quiet.stop()
    restarted = launch(quiet_config)

    def restarted_recovered() -> bool:
        return any(
            e["action"] == "recovered" and e.get("host") == "member-1"
            for e in diagnostics(discord, ids, "lifecycle")
        )

    restarted.wait_for(restarted_recovered, timeout=60, interval=0.3)
    status, health = control(restarted, "health")
    assert status == 200
    assert health["firing"] == []
    assert alarmed.stop() == 0
    assert restarted.stop() == 0, restarted.stderr
    member_alerts = [e for e in discord.all_events(ids["logs"]) if e["kind"] == "alert"]
    assert {e.get("host") for e in member_alerts} == {"member-0"}


def test_astra_report_in_a_fleet_with_the_report_off_says_it_is_off(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """With ``[collectors.report] enabled = false`` no member keeps a report, so ``/astra
    report`` says the report is off instead of sending people to the poster's bot."""
    channels, _ids = readable_channels(discord)
    off = "[collectors.report]\nenabled = false\n" + CONTROL
    member = launch(fleet_body(channels, redis_server.url, "member-0", extra=off))
    member.wait_for(lambda: member.health()["role"] == "poster", timeout=30)
    status, answer = control(member, "report")
    assert member.stop() == 0, member.stderr
    assert status == 200
    assert "enabled = false" in answer["error"], answer


@pytest.mark.slow(seconds=100)  # the report is due 30-90 s after the start, then late
def test_a_poster_killed_just_before_the_report_time_leaves_the_report_to_the_next(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """The poster SIGKILLed a second before the report time: the member that takes over
    after it reads the day back and makes that day's report late, once, with every
    member's events."""
    extra, due = report_due(30)
    members, ids, _ = fleet_with_a_day(discord, launch, redis_server, 2, extra)
    first = poster_of(members)
    time.sleep(max(0.0, due - 1.0 - time.time()))
    killed_at = time.time()
    first.stop(signal.SIGKILL)
    assert killed_at < due, "the poster was killed only after the report time"
    (survivor,) = [m for m in members if m is not first]
    survivor.wait_for(lambda: diagnostics(discord, ids, "report"), timeout=90, interval=0.5)
    assert survivor.stop() == 0, survivor.stderr
    (report,) = diagnostics(discord, ids, "report")
    expected = {"command.ok": 9, "command.failed": 3, "message": 12, "error": 1}
    assert {k: v for k, v in report["events"].items() if k in BOT_KINDS} == {
        k: 2 * n for k, n in expected.items()
    }
    assert sorted(m["name"] for m in report["members"]) == ["member-0", "member-1"]
    assert "made late by" in report["coverage"]
