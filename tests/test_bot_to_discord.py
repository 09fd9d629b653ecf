"""The whole path: a discord.py bot with the extension → the real sidecar → (fake) Discord.

discord.py dispatches real gateway payloads; the extension sends over real UDP to
``astra run`` in a subprocess, which posts to the strict fake Discord. Each kind must land
in its channel's attachment with the fields the bot reported.
"""

from __future__ import annotations

from typing import Any

import pytest

from astra.client.discordpy import get_telemetry
from tests.conftest import Launch, webhook_channels
from tests.fake_discord import FakeDiscord
from tests.test_discordpy_extension import (
    GUILD_ID,
    OTHER_ID,
    USER_ID,
    VOICE_A,
    Calls,
    flushed,
    member_add_payload,
    message_payload,
    reaction_payload,
    running_bot,
    voice_payload,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def by_kind(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] == kind]


async def test_every_kind_reaches_its_channel(discord: FakeDiscord, launch: Launch) -> None:
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
