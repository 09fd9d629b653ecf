"""The whole path: a discord.py bot with the extension → the real sidecar → (fake) Discord.

discord.py dispatches real gateway payloads; the extension sends over real UDP to
``astra run`` in a subprocess, which posts to the strict fake Discord. Each kind must land
in its channel's attachment with the fields the bot reported.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import discord as discord_py
import pytest
from discord.ext import commands

from astra.client.discordpy import Options, get_telemetry
from tests.client.test_discordpy import (
    GUILD_ID,
    OTHER_ID,
    USER_ID,
    VOICE_A,
    Calls,
    flushed,
    interaction_payload,
    member_add_payload,
    message_payload,
    reaction_payload,
    running_bot,
    slash,
    voice_payload,
)
from tests.conftest import Launch, webhook_channels
from tests.fake_discord import FakeDiscord

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """discord.py runs on asyncio."""
    return "asyncio"


def by_kind(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The events of one kind."""
    return [e for e in events if e["kind"] == kind]


async def test_every_kind_reaches_its_channel(discord: FakeDiscord, launch: Launch) -> None:
    """A bot's messages, commands, members, voice, reactions and metrics land in their channels."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + "[flush]\ninterval = 0.5\n")
    calls = Calls()
    async with running_bot(f"udp://127.0.0.1:{sidecar.port}", calls) as bot:
        state = bot._connection
        state.parse_message_create(message_payload(1, "hello there", attachments=1))
        state.parse_message_create(message_payload(2, "!ping"))
        state.parse_message_create(message_payload(3, "!boom"))
        await calls.wait_for("boom")
        state.parse_guild_member_add(member_add_payload(OTHER_ID, "bob"))
        state.parse_voice_state_update(voice_payload(VOICE_A))
        state.parse_message_reaction_add(reaction_payload({"id": None, "name": "🎲"}))
        telemetry = get_telemetry(bot)
        assert telemetry is not None
        telemetry.metric("players", 12)
        await flushed(bot)

        def landed() -> bool:
            analytics = discord.all_events(ids["analytics"])
            return (
                len(by_kind(analytics, "reaction")) == 1
                and len(by_kind(discord.all_events(ids["logs"]), "command")) == 1
                and len(by_kind(discord.all_events(ids["performance"]), "metric")) == 1
            )

        sidecar.wait_for(landed, timeout=30)
    assert sidecar.stop() == 0

    analytics = discord.all_events(ids["analytics"])
    messages = by_kind(analytics, "message")
    assert {(m["author_id"], m["guild_id"], m["length"]) for m in messages} >= {
        (USER_ID, GUILD_ID, len("hello there"))
    }
    assert all(m["content"] is None for m in messages), "no content unless opted in"
    [ping] = [c for c in by_kind(analytics, "command") if c["name"] == "ping"]
    assert ping["ok"] is True and ping["duration_ms"] is not None
    assert by_kind(analytics, "guild")[0]["action"] == "join"
    member = by_kind(analytics, "member")[0]
    assert (member["action"], member["user_id"], member["guild_id"]) == ("join", OTHER_ID, GUILD_ID)
    assert by_kind(analytics, "voice")[0]["action"] == "join"
    assert by_kind(analytics, "reaction")[0]["emoji"] == "🎲"

    [boom] = by_kind(discord.all_events(ids["logs"]), "command")
    assert boom["name"] == "boom" and boom["ok"] is False and boom["error"] == "kaboom"
    assert "RuntimeError: kaboom" in boom["traceback"]
    logs_embeds = str([m.embeds for m in discord.messages(ids["logs"])])
    assert "boom failed" in logs_embeds

    [metric] = by_kind(discord.all_events(ids["performance"]), "metric")
    assert metric["name"] == "players" and metric["value"] == 12
    assert all(e["source"] == "test-bot" for e in analytics)
    discord.assert_no_violations()


async def test_app_commands_errors_gateway_and_latency_reach_discord(
    discord: FakeDiscord, launch: Launch
) -> None:
    """A bot's slash commands, listener errors, gateway events and latency reach Discord."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + "[flush]\ninterval = 0.5\n")
    calls = Calls()

    def configure(bot: commands.Bot) -> None:
        async def broken_listener(member: discord_py.Member) -> None:
            raise LookupError("listener broke")

        bot.add_listener(broken_listener, "on_member_join")

    address = f"udp://127.0.0.1:{sidecar.port}"
    options = Options(address=address, source="test-bot", latency_interval_s=0.05)
    async with running_bot(address, calls, configure=configure, options=options) as bot:
        state = bot._connection
        state.parse_interaction_create(interaction_payload(10, slash("slashping")))
        state.parse_interaction_create(interaction_payload(11, slash("slashboom")))
        state.parse_guild_member_add(member_add_payload(OTHER_ID, "bob"))
        bot.dispatch("connect")
        state.parse_resumed(None)
        bot.ws = SimpleNamespace(latency=0.0421, open=False)  # type: ignore[assignment]
        await calls.wait_for("slashboom")

        def landed() -> bool:
            logs = discord.all_events(ids["logs"])
            return (
                bool(by_kind(discord.all_events(ids["performance"]), "latency"))
                and len(by_kind(logs, "error")) == 1
                and len(by_kind(logs, "command")) == 1
                and len(by_kind(discord.all_events(ids["diagnostics"]), "lifecycle")) >= 3
            )

        # Poll without blocking the bot's loop: the latency sampler runs on it.
        for _ in range(300):
            if landed():
                break
            await asyncio.sleep(0.1)
        assert landed(), sidecar.health()
        bot.ws = None  # type: ignore[assignment]
    assert sidecar.stop() == 0

    [ok] = [c for c in by_kind(discord.all_events(ids["analytics"]), "command")]
    assert (ok["name"], ok["command_type"], ok["ok"], ok["user_id"]) == (
        "slashping",
        "slash",
        True,
        USER_ID,
    )
    logs = discord.all_events(ids["logs"])
    [failure] = by_kind(logs, "command")
    assert (failure["name"], failure["ok"], failure["error_type"]) == (
        "slashboom",
        False,
        "ValueError",
    )
    assert 'raise ValueError("slash kaboom")' in failure["traceback"]
    [error] = by_kind(logs, "error")
    assert error["message"] == "exception in on_member_join: listener broke"
    assert "LookupError" in error["traceback"]
    gateway = {e["action"] for e in by_kind(discord.all_events(ids["diagnostics"]), "lifecycle")}
    assert {"gateway.connect", "gateway.resume"} <= gateway
    latency = by_kind(discord.all_events(ids["performance"]), "latency")[0]
    assert latency["of"] == "gateway" and latency["ms"] == pytest.approx(42.1)
    discord.assert_no_violations()
