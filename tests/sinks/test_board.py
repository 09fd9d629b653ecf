"""The status board's embed: what it shows before the first health check, live, and stopped."""

from __future__ import annotations

from astra.events import Alert, Component, Health
from astra.sinks.messages import fit_embed
from astra.sinks.render.board import BOARD_MARKER, BoardState, ChannelRow, render_board
from astra.sinks.status_board import is_board

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
