"""``/astra`` slash commands: discord.py's real dispatch → the real sidecar → the fake Discord.

Interactions are parsed by discord.py's own ``ConnectionState`` (no gateway), the command
callbacks ask ``astra run`` over its control endpoint, and the answer goes to the strict
fake Discord's interaction callback route, where the test reads it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import discord as discord_py
import pytest
from discord.ext import commands

from astra.client.discordpy import Options, get_telemetry
from tests.client.test_discordpy import Calls, interaction_payload, running_bot
from tests.conftest import Launch, webhook_channels
from tests.e2e.test_control import CONTROL, CONTROL_TOKEN, DOWN, control
from tests.fake_discord import EPHEMERAL, FakeDiscord
from tests.sidecar import Sidecar, free_port

pytestmark = pytest.mark.anyio
_ids = itertools.count(70_000)


@pytest.fixture
def anyio_backend() -> str:
    """discord.py runs on asyncio."""
    return "asyncio"


@asynccontextmanager
async def bot_on(
    fake: FakeDiscord, port: int, monkeypatch: pytest.MonkeyPatch, token: str | None
) -> AsyncIterator[commands.Bot]:
    """A bot with the extension, its REST calls going to the fake Discord."""
    monkeypatch.setattr(discord_py.http.Route, "BASE", fake.api_base)
    options = Options(address=f"udp://127.0.0.1:{port}", control_token=token, latency_interval_s=0)
    async with (
        aiohttp.ClientSession() as session,
        running_bot(options.address or "", Calls(), options=options) as bot,
    ):
        # What login would have opened: the session interactions answer through.
        bot.http._HTTPClient__session = session  # type: ignore[attr-defined]
        yield bot


def astra_command(sub: str, **values: str) -> dict[str, Any]:
    """The interaction data of ``/astra <sub> [options]``."""
    options = [{"name": k, "type": 3, "value": v} for k, v in values.items()]
    return {
        "id": "9100",
        "name": "astra",
        "type": 1,
        "options": [{"name": sub, "type": 1, "options": options}],
    }


async def invoke(fake: FakeDiscord, bot: commands.Bot, sub: str, **values: str) -> dict[str, Any]:
    """Run ``/astra <sub>`` as alice and return the data of the bot's answer."""
    interaction_id = next(_ids)
    token = f"interaction-token-{interaction_id}"
    fake.expect_interaction(interaction_id, token)
    payload: Any = {**interaction_payload(interaction_id, astra_command(sub, **values))}
    payload["token"] = token
    bot._connection.parse_interaction_create(payload)
    for _ in range(200):
        answer = fake.interaction_response(interaction_id)
        if answer is not None:
            assert answer["type"] == 4
            data: dict[str, Any] = answer["data"]
            assert data["flags"] & EPHEMERAL, "every answer is ephemeral"
            assert data["allowed_mentions"]["parse"] == []
            return data
        await asyncio.sleep(0.05)
    raise AssertionError(f"/astra {sub} was not answered: {fake.violations}")


def embed_text(data: dict[str, Any]) -> str:
    """Title, description and fields of the answer's embed, as one string."""
    [embed] = data["embeds"]
    fields = " | ".join(f"{f['name']}: {f['value']}" for f in embed.get("fields", []))
    return f"{embed.get('title', '')} | {embed.get('description', '')} | {fields}"


async def test_the_group_needs_manage_server_and_a_control_token(
    discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a token, /astra is on the tree for Manage Server by default; without, absent."""
    async with bot_on(discord, free_port(), monkeypatch, CONTROL_TOKEN) as bot:
        group = bot.tree.get_command("astra")
        assert isinstance(group, discord_py.app_commands.Group)
        payload = group.to_dict(bot.tree)
        assert payload["default_member_permissions"] == 1 << 5  # MANAGE_GUILD
        assert sorted(c.name for c in group.commands) == [
            "errors",
            "health",
            "mute",
            "report",
            "unmute",
        ]
        await bot.unload_extension("astra.client.discordpy")
        assert bot.tree.get_command("astra") is None
    async with bot_on(discord, free_port(), monkeypatch, None) as bot:
        assert bot.tree.get_command("astra") is None


async def test_mute_and_unmute_from_discord_reach_the_sidecar(
    discord: FakeDiscord, launch: Launch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/astra mute is answered ephemerally and the sidecar holds the mute; unmute ends it."""
    body, _ = webhook_channels(discord)
    sidecar = launch(body + DOWN + CONTROL)
    async with bot_on(discord, sidecar.port, monkeypatch, CONTROL_TOKEN) as bot:
        muted = await invoke(discord, bot, "mute", alert="process_down", duration="2h")
        health_muted = control(sidecar, "health")[1]["muted"]
        refused = await invoke(discord, bot, "mute", alert="cpu", duration="forever")
        unmuted = await invoke(discord, bot, "unmute", alert="process_down")
        health_after = control(sidecar, "health")[1]["muted"]
    assert sidecar.stop() == 0
    discord.assert_no_violations()

    assert "🔇 muted process\\_down" in embed_text(muted)
    assert "by alice" in embed_text(muted)
    assert [(m["alert"], m["by"]) for m in health_muted] == [("process_down", "alice")]
    assert "duration: not a duration: 'forever'" in embed_text(refused)
    assert "🔔 unmuted process\\_down" in embed_text(unmuted)
    assert health_after == []


async def test_health_errors_and_report_answer_from_the_sidecar(
    discord: FakeDiscord, launch: Launch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/astra health shows the firing alert, errors the hour's groups, report today so far."""
    body, _ = webhook_channels(discord)
    sidecar = launch(body + DOWN + CONTROL)
    errors = [
        {"kind": "error", "type": "KeyError", "message": f"no such user {n}"} for n in range(3)
    ]
    assert sidecar.post(errors).status == 200
    sidecar.wait_for(lambda: control(sidecar, "health")[1]["firing"] != [])
    async with bot_on(discord, sidecar.port, monkeypatch, CONTROL_TOKEN) as bot:
        health = embed_text(await invoke(discord, bot, "health"))
        problems = embed_text(await invoke(discord, bot, "errors"))
        report = embed_text(await invoke(discord, bot, "report"))
    assert sidecar.stop() == 0
    discord.assert_no_violations()

    assert "🩺 health " in health and "/100" in health
    assert "process\\_down:process:ghost" in health
    assert "nothing muted" in health
    assert "problems of the last hour: 3" in problems
    assert "KeyError ×3" in problems
    assert "today so far" in report and "3 problems" in report


async def test_an_unreachable_sidecar_is_answered_not_raised(
    discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listens on the control port: the member still gets an ephemeral answer."""
    async with bot_on(discord, free_port(), monkeypatch, CONTROL_TOKEN) as bot:
        answer = await invoke(discord, bot, "health")
    assert "the sidecar did not answer" in embed_text(answer)
    discord.assert_no_violations()


async def test_a_wrong_control_token_is_shown_as_the_sidecars_refusal(
    discord: FakeDiscord, launch: Launch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot's token does not match the sidecar's: 401, said in the answer, no mute made."""
    sidecar: Sidecar = launch(CONTROL)
    async with bot_on(discord, sidecar.port, monkeypatch, "not-the-token-0123456789") as bot:
        answer = embed_text(await invoke(discord, bot, "mute", alert="cpu", duration="1h"))
    assert "401: missing or wrong control token" in answer
    assert control(sidecar, "health")[1]["muted"] == []
    assert sidecar.stop() == 0


async def suggest(fake: FakeDiscord, bot: commands.Bot, sub: str, typed: str) -> list[str]:
    """Type ``typed`` into ``/astra <sub>``'s alert option; the choices the bot offers."""
    interaction_id = next(_ids)
    token = f"interaction-token-{interaction_id}"
    fake.expect_interaction(interaction_id, token)
    data = astra_command(sub, alert=typed)
    data["options"][0]["options"][0]["focused"] = True
    payload: Any = {**interaction_payload(interaction_id, data)}
    payload["token"], payload["type"] = token, 4  # APPLICATION_COMMAND_AUTOCOMPLETE
    bot._connection.parse_interaction_create(payload)
    for _ in range(200):
        answer = fake.interaction_response(interaction_id)
        if answer is not None:
            assert answer["type"] == 8
            return [c["value"] for c in answer["data"]["choices"]]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no suggestions for /astra {sub}: {fake.violations}")


async def test_alert_names_are_suggested_while_typing(
    discord: FakeDiscord, launch: Launch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mute offers the firing alerts and their rules; unmute offers what is muted."""
    body, _ = webhook_channels(discord)
    sidecar = launch(body + DOWN + CONTROL)
    sidecar.wait_for(lambda: control(sidecar, "health")[1]["firing"] != [])
    async with bot_on(discord, sidecar.port, monkeypatch, CONTROL_TOKEN) as bot:
        to_mute = await suggest(discord, bot, "mute", "ghost")
        everything = await suggest(discord, bot, "mute", "")
        nothing_muted = await suggest(discord, bot, "unmute", "")
        await invoke(discord, bot, "mute", alert="process_down", duration="1h")
        to_unmute = await suggest(discord, bot, "unmute", "proc")
        health = embed_text(await invoke(discord, bot, "health"))
    assert sidecar.stop() == 0
    discord.assert_no_violations()

    assert to_mute == ["process_down:process:ghost"]
    assert everything == ["process_down:process:ghost", "process_down"]
    assert (nothing_muted, to_unmute) == ([], ["process_down"])
    assert "🔇 **process\\_down:process:ghost**" in health


async def test_a_bot_with_its_own_astra_command_keeps_it_and_its_telemetry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A name clash on /astra leaves the bot's command in place and capture running."""

    def configure(bot: commands.Bot) -> None:
        @bot.tree.command(name="astra", description="the bot's own")
        async def own(interaction: discord_py.Interaction) -> None:
            """The bot's command."""

    options = Options(
        address=f"udp://127.0.0.1:{free_port()}", control_token=CONTROL_TOKEN, latency_interval_s=0
    )
    async with running_bot(
        options.address or "", Calls(), configure=configure, options=options
    ) as bot:
        command = bot.tree.get_command("astra")
        assert isinstance(command, discord_py.app_commands.Command)
        assert command.description == "the bot's own"
        assert get_telemetry(bot) is not None
    assert any("already has an /astra command" in r.getMessage() for r in caplog.records)
