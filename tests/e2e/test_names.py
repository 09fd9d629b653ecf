"""Names, not ids: the discord.py extension sends guild and channel names; channels show them."""

from __future__ import annotations

from typing import Any

import pytest

from astra.client.discordpy import Options
from tests.client.test_discordpy import (
    GUILD_ID,
    TEXT_ID,
    VOICE_A,
    Calls,
    flushed,
    message_payload,
    reaction_payload,
    running_bot,
    voice_payload,
)
from tests.conftest import Launch, webhook_channels
from tests.fake_discord import FakeDiscord

pytestmark = pytest.mark.anyio

HOSTILE = "@everyone <@&123> `` ```"


@pytest.fixture
def anyio_backend() -> str:
    """discord.py runs on asyncio."""
    return "asyncio"


def analytics_fields(fake: FakeDiscord, channel_id: int) -> dict[str, str]:
    """Every analytics embed field, name → value (the latest post wins)."""
    return {
        field["name"]: field["value"]
        for message in fake.messages(channel_id)
        for embed in message.embeds
        for field in embed.get("fields", [])
    }


async def test_guilds_and_channels_are_shown_by_name(discord: FakeDiscord, launch: Launch) -> None:
    """Busiest guilds and channels show the names the bot sent; each event carries them."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + "[flush]\ninterval = 0.3\n")
    address = f"udp://127.0.0.1:{sidecar.port}"
    options = Options(address=address, source="test-bot", latency_interval_s=0)
    async with running_bot(address, Calls(), options=options) as bot:
        state = bot._connection
        for n in range(3):
            state.parse_message_create(message_payload(n + 1, "hello"))
        state.parse_voice_state_update(voice_payload(VOICE_A))
        state.parse_message_reaction_add(reaction_payload({"id": None, "name": "🎲"}))
        await flushed(bot)
        sidecar.wait_for(lambda: "Busiest channels" in analytics_fields(discord, ids["analytics"]))
    assert sidecar.stop() == 0
    discord.assert_no_violations()

    fields = analytics_fields(discord, ids["analytics"])
    assert "Test Guild" in fields["Busiest guilds"]
    assert str(GUILD_ID) not in fields["Busiest guilds"]
    assert "#general" in fields["Busiest channels"]
    assert str(TEXT_ID) not in fields["Busiest channels"]
    sent = discord.all_events(ids["analytics"])
    [voice] = [e for e in sent if e["kind"] == "voice"]
    assert (voice["guild_name"], voice["channel_name"]) == ("Test Guild", "Voice A")
    [reaction] = [e for e in sent if e["kind"] == "reaction"]
    assert (reaction["guild_name"], reaction["channel_name"]) == ("Test Guild", "general")


async def test_unknown_ids_stay_ids_and_names_cannot_ping(
    discord: FakeDiscord, launch: Launch
) -> None:
    """A guild never named shows its id; a name full of mentions and fences is defused."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + "[flush]\ninterval = 0.3\n")
    hostile: dict[str, Any] = {
        "kind": "message",
        "guild_id": 77,
        "channel_id": 78,
        "guild_name": HOSTILE,
        "channel_name": HOSTILE,
    }
    nameless = {"kind": "message", "guild_id": 99, "channel_id": 98}
    assert sidecar.post([hostile, nameless, nameless]).status == 200
    sidecar.wait_for(lambda: "Busiest channels" in analytics_fields(discord, ids["analytics"]))
    assert sidecar.stop() == 0
    discord.assert_no_violations()

    fields = analytics_fields(discord, ids["analytics"])
    assert "99" in fields["Busiest guilds"] and "98" in fields["Busiest channels"]
    shown = fields["Busiest guilds"] + fields["Busiest channels"]
    assert "@everyone" not in shown and "<@&123>" not in shown
    assert "@\u200beveryone" in shown
    # The code block stays one block: no fence inside it survives.
    assert shown.count("```") == 4
