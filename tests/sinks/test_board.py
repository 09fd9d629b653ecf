"""The status board's embed: before the first health check, live, stopped, and a fleet's."""

from __future__ import annotations

from astra.events import Alert, Component, Health
from astra.sinks.messages import fit_embed
from astra.sinks.render.board import BOARD_MARKER, BoardState, ChannelRow, MemberRow, render_board
from astra.sinks.status_board import BoardFold, is_board
from astra.statistics import FleetStatistics

NOW = 1_764_583_200.0


def state(**changes: object) -> BoardState:
    """A board state with two channels, changed as asked."""
    fields: dict[str, object] = {
        "updated": NOW,
        "uptime_s": 3700.0,
        "version": "0.1.0",
        "hosts": ["host-a"],
        "channels": [
            ChannelRow(name="logs", mode="discord", last_post=NOW - 5, pending=2),
            ChannelRow(name="analytics", mode="preview", problem="forum channel: set forum = true"),
        ],
        "alerts": [],
    }
    fields.update(changes)
    return BoardState(**fields)  # type: ignore[arg-type]


def by_name(state: BoardState) -> dict[str, str]:
    """The rendered board's fields by name."""
    return {f.name: f.value for f in render_board(state).fields}


def test_board_before_the_first_health_check() -> None:
    """Without a health event the board says it is waiting, and still lists the channels."""
    embed = render_board(state())
    assert embed.title == "📋 astra status" and "waiting for the first health check" in (
        embed.description
    )
    shown = by_name(state())
    assert shown["Alerts firing now"] == "none"
    assert "**#logs** → Discord · last post <t:1764583195:R> · 2 pending" in shown["Channels"]
    assert "⚠️ forum channel: set forum = true" in shown["Channels"]
    assert shown["Hosts"] == "host\\-a" and shown["Uptime"] == "1 h 1 min"
    assert embed.footer is not None and embed.footer.text == BOARD_MARKER


def test_board_with_health_alerts_and_components() -> None:
    """Score in the title, worst components first, critical alerts before warnings, mute marked."""
    health = Health(
        ts=NOW - 10,
        score=60,
        components=[
            Component(name="ingest", status="ok", detail="HTTP on"),
            Component(name="channel logs", status="error", detail="no post for 6 min"),
        ],
    )
    alerts = [
        Alert(rule="cpu", subject="host", state="firing", severity="warning", since=NOW - 60),
        Alert(
            rule="process_down",
            subject="process:bot",
            state="firing",
            severity="critical",
            message="bot is not running",
            since=NOW - 30,
            muted=True,
        ),
    ]
    shown = by_name(state(health=health, alerts=alerts))
    assert render_board(state(health=health)).title == "📋 astra status · 60/100"
    first, second = shown["Alerts firing now"].splitlines()
    assert first.startswith("🔴 **process\\_down** process:bot — bot is not running")
    assert first.endswith("· 🔕 muted") and second.startswith("🟡 **cpu** host")
    assert shown["Components"].splitlines()[0].startswith("🔴 channel logs")


def test_stopped_board_and_recognition() -> None:
    """A stopped board says so; a message with the board's footer is recognised as the board."""
    embed = render_board(state(stopped=True))
    assert embed.title == "⏹️ astra stopped"
    fitted = fit_embed(embed)
    assert fitted is not None
    assert is_board({"embeds": [{"footer": {"text": BOARD_MARKER}}]})
    assert not is_board({"embeds": []}) and not is_board({"embeds": [{"title": "x"}]})


def test_fleet_board_shows_the_worst_member_and_every_member() -> None:
    """A fleet's board: the worst member's score and components, each alert naming its
    member, and every member with its latest score (silent and unchecked ones marked)."""
    beta = Health(
        ts=NOW - 20,
        score=60,
        components=[Component(name="collector files", status="warning", detail="last run failed")],
        host="beta",
    )
    members = [
        MemberRow(name="alpha", health=Health(ts=NOW - 10, score=90, host="alpha")),
        MemberRow(name="beta", health=beta),
        MemberRow(name="delta", health=Health(ts=NOW - 300, score=100, host="delta"), silent=True),
        MemberRow(name="gamma"),
    ]
    alerts = [
        Alert(rule="cpu", subject="host", state="firing", since=NOW - 60, host="alpha"),
        Alert(rule="cpu", subject="host", state="firing", since=NOW - 50, host="beta"),
        Alert(
            rule="member_silent",
            subject="member:delta",
            state="firing",
            severity="critical",
            message="delta silent since 09:55:00 UTC",
            since=NOW - 300,
        ),
    ]
    board = state(members=members, alerts=alerts)
    embed = render_board(board)
    assert embed.title == "📋 astra status · 60/100"
    assert (
        embed.description == "`██████░░░░` worst of 4 members: **beta**, checked <t:1764583180:R>"
    )
    shown = by_name(board)
    assert shown["Alerts firing now"].splitlines() == [
        "🔴 **member\\_silent** member:delta — delta silent since 09:55:00 UTC"
        " · since <t:1764582900:R>",
        "🟡 **cpu** host on **alpha** · since <t:1764583140:R>",
        "🟡 **cpu** host on **beta** · since <t:1764583150:R>",
    ]
    assert shown["Components of beta"] == "🟡 collector files · last run failed"
    assert shown["Hosts"].splitlines() == [
        "🟢 alpha · 90/100",
        "🟠 beta · 60/100",
        "🟢 delta · 100/100 · 💤 silent",
        "⚪ gamma · no check yet",
    ]
    assert fit_embed(embed) == embed


def test_a_large_fleets_hosts_fit_one_field() -> None:
    """Hundreds of members: whole lines up to the field's limit, then how many more."""
    members = [
        MemberRow(name=f"shard-host-{i:03}", health=Health(ts=NOW, score=100, host=f"h{i}"))
        for i in range(300)
    ]
    hosts = by_name(state(members=members))["Hosts"]
    lines = hosts.splitlines()
    assert len(hosts) <= 1024 and lines[0] == "🟢 shard\\-host\\-000 · 100/100"
    assert all(line.endswith("100/100") for line in lines[:-1])
    assert lines[-1] == f"… {300 - (len(lines) - 1)} more"


def test_the_fold_keys_alerts_by_member_and_follows_the_members_in_redis() -> None:
    """The same rule firing on two members is two alerts; a member that left cleanly
    (gone from Redis) leaves the board with its alerts; a silent one stays, marked."""
    fold = BoardFold()
    fold.observe(
        [
            Alert(rule="cpu", subject="host", state="firing", host="alpha"),
            Alert(rule="cpu", subject="host", state="firing", host="beta"),
            Alert(rule="member_silent", subject="member:gamma", state="firing"),
            Health(ts=NOW - 9, score=70, host="alpha"),
            Health(ts=NOW - 5, score=90, host="beta"),
            Health(ts=NOW - 1, score=80, host="alpha"),
            Health(ts=NOW - 30, score=10, host="alpha"),  # an older check, read late
        ]
    )
    every = FleetStatistics(members=["alpha", "beta", "gamma"], silent=["gamma"])
    assert [(a.host, a.rule) for a in fold.alerts(every)] == [
        ("alpha", "cpu"),
        ("beta", "cpu"),
        ("", "member_silent"),
    ]
    rows = fold.members(every)
    assert [(r.name, r.health.score if r.health else None, r.silent) for r in rows] == [
        ("alpha", 80, False),
        ("beta", 90, False),
        ("gamma", None, True),
    ]
    fold.observe([Alert(rule="cpu", subject="host", state="resolved", host="alpha")])
    beta_left = FleetStatistics(members=["alpha", "gamma"])
    assert [(a.host, a.rule) for a in fold.alerts(beta_left)] == [("", "member_silent")]
    assert [r.name for r in fold.members(beta_left)] == ["alpha", "gamma"]
    # Before the poster first looked at Redis: every member that sent a check.
    assert [r.name for r in fold.members(FleetStatistics())] == ["alpha", "beta"]
    # A single sidecar: no member rows, the latest check as before.
    assert fold.members(None) == [] and fold.latest is not None and fold.latest.score == 10


def test_a_new_lease_keeps_only_the_posters_own_alerts() -> None:
    """A board starting afresh drops members' checks and alerts, but keeps the member_silent
    alerts its own silence watcher still tracks (and will resolve)."""
    fold = BoardFold()
    fold.observe(
        [
            Alert(rule="cpu", subject="host", state="firing", host="alpha"),
            Alert(rule="member_silent", subject="member:gamma", state="firing"),
            Health(ts=NOW, score=70, host="alpha"),
        ]
    )
    fresh = fold.own_alerts_only()
    assert [a.rule for a in fresh.alerts(FleetStatistics())] == ["member_silent"]
    assert fresh.members(FleetStatistics()) == [] and fresh.latest is None
