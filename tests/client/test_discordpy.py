"""astra.client.discordpy: discord.py's own dispatch, real model objects, a real socket.

Gateway payloads go through discord.py's ``ConnectionState.parse_*`` (no network), so the
listeners, command processing and error paths are discord.py's own; what the extension
sends is read back from a UDP socket and decoded with the sidecar's schema.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from astra import events
from astra.client import Telemetry
from astra.client import _capture as capture_module
from astra.client.discordpy import Options, get_telemetry
from astra.client.logging import TelemetryHandler
from astra.client.testing import UdpReceiver

pytestmark = pytest.mark.anyio

BOT_ID, USER_ID, OTHER_ID = 1000, 4000, 5000
GUILD_ID, TEXT_ID, VOICE_A, VOICE_B = 2000, 3000, 3001, 3002
TS = "2024-01-01T00:00:00+00:00"
EXTENSION = "astra.client.discordpy"


@pytest.fixture
def anyio_backend() -> str:
    """discord.py runs on asyncio."""
    return "asyncio"


# --- gateway payloads ---------------------------------------------------------------------


def user_payload(user_id: int, name: str, *, bot: bool = False) -> Any:
    """A gateway user object."""
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": None,
        "avatar": None,
        "bot": bot,
    }


def member_payload(user_id: int, name: str, *, bot: bool = False) -> Any:
    """A gateway guild member object."""
    return {
        "user": user_payload(user_id, name, bot=bot),
        "roles": [],
        "joined_at": TS,
        "deaf": False,
        "mute": False,
        "flags": 0,
    }


def member_add_payload(user_id: int, name: str) -> Any:
    """A GUILD_MEMBER_ADD payload for the test guild."""
    return {**member_payload(user_id, name), "guild_id": str(GUILD_ID)}


def guild_payload() -> Any:
    """A GUILD_CREATE payload: the test guild with a text and two voice channels."""

    def voice(channel_id: int, name: str) -> dict[str, Any]:
        return {
            "id": str(channel_id),
            "type": 2,
            "name": name,
            "position": 1,
            "permission_overwrites": [],
            "bitrate": 64000,
            "user_limit": 0,
        }

    return {
        "id": str(GUILD_ID),
        "name": "Test Guild",
        "owner_id": str(USER_ID),
        "member_count": 2,
        "roles": [
            {
                "id": str(GUILD_ID),
                "name": "@everyone",
                "permissions": "0",
                "position": 0,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }
        ],
        "emojis": [],
        "stickers": [],
        "features": [],
        "channels": [
            {
                "id": str(TEXT_ID),
                "type": 0,
                "name": "general",
                "position": 0,
                "permission_overwrites": [],
            },
            voice(VOICE_A, "Voice A"),
            voice(VOICE_B, "Voice B"),
        ],
        "members": [
            member_payload(BOT_ID, "astra-bot", bot=True),
            member_payload(USER_ID, "alice"),
        ],
        "voice_states": [],
        "presences": [],
        "threads": [],
        "large": False,
    }


def message_payload(message_id: int, content: str, *, attachments: int = 0) -> Any:
    """A MESSAGE_CREATE payload from alice in the test guild's text channel."""
    return {
        "id": str(message_id),
        "channel_id": str(TEXT_ID),
        "guild_id": str(GUILD_ID),
        "author": user_payload(USER_ID, "alice"),
        "member": {"roles": [], "joined_at": TS, "deaf": False, "mute": False, "flags": 0},
        "content": content,
        "timestamp": TS,
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [
            {
                "id": str(9900 + n),
                "filename": f"f{n}.png",
                "size": 10,
                "url": f"https://cdn.example/f{n}.png",
                "proxy_url": f"https://cdn.example/f{n}.png",
            }
            for n in range(attachments)
        ],
        "embeds": [],
        "pinned": False,
        "type": 0,
    }


def interaction_payload(interaction_id: int, data: dict[str, Any]) -> Any:
    """An INTERACTION_CREATE payload for an application command by alice."""
    return {
        "id": str(interaction_id),
        "application_id": str(BOT_ID),
        "type": 2,
        "token": "interaction-token",
        "version": 1,
        "guild_id": str(GUILD_ID),
        "channel_id": str(TEXT_ID),
        "channel": {"id": str(TEXT_ID), "type": 0, "guild_id": str(GUILD_ID), "name": "general"},
        "member": {**member_payload(USER_ID, "alice"), "permissions": "0"},
        "data": data,
        "locale": "en-US",
        "guild_locale": "en-US",
        "app_permissions": "0",
        "entitlements": [],
        "authorizing_integration_owners": {},
        "context": 0,
        "attachment_size_limit": 8 * 1024 * 1024,
    }


def slash(name: str) -> dict[str, Any]:
    """The interaction data of a slash command."""
    return {"id": "9000", "name": name, "type": 1}


def user_context_menu(name: str) -> dict[str, Any]:
    """The interaction data of a user context-menu command on bob."""
    return {
        "id": "9001",
        "name": name,
        "type": 2,
        "target_id": str(OTHER_ID),
        "resolved": {"users": {str(OTHER_ID): user_payload(OTHER_ID, "bob")}},
    }


def voice_payload(channel_id: int | None, *, self_mute: bool = False) -> Any:
    """A VOICE_STATE_UPDATE payload: alice in ``channel_id`` (None: left)."""
    return {
        "guild_id": str(GUILD_ID),
        "channel_id": str(channel_id) if channel_id is not None else None,
        "user_id": str(USER_ID),
        "member": member_payload(USER_ID, "alice"),
        "session_id": "session",
        "deaf": False,
        "mute": False,
        "self_deaf": False,
        "self_mute": self_mute,
        "self_video": False,
        "suppress": False,
        "request_to_speak_timestamp": None,
    }


def reaction_payload(emoji: dict[str, Any]) -> Any:
    """A MESSAGE_REACTION_ADD payload from alice with ``emoji``."""
    return {
        "user_id": str(USER_ID),
        "channel_id": str(TEXT_ID),
        "message_id": "77",
        "guild_id": str(GUILD_ID),
        "emoji": emoji,
        "burst": False,
        "type": 0,
    }


# --- the bot under test -------------------------------------------------------------------


class Calls:
    """What the bot's own handlers saw."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._changed = asyncio.Event()

    def record(self, name: str) -> None:
        """Note that ``name`` ran, and wake whoever waits."""
        self.names.append(name)
        self._changed.set()

    async def wait_for(self, name: str, count: int = 1) -> None:
        """Until ``name`` was recorded ``count`` times (bounded: 5 s)."""

        async def seen() -> None:
            while self.names.count(name) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(seen(), timeout=5)


def add_commands(bot: commands.Bot, calls: Calls) -> None:
    """Prefix, slash and context-menu commands that succeed, take time, or fail."""

    @bot.command()
    async def ping(ctx: commands.Context[commands.Bot]) -> None:
        calls.record("ping")

    @bot.command()
    async def slow(ctx: commands.Context[commands.Bot]) -> None:
        await asyncio.sleep(0.02)
        calls.record("slow")

    @bot.command()
    async def boom(ctx: commands.Context[commands.Bot]) -> None:
        calls.record("boom")
        raise RuntimeError("kaboom")

    @bot.command()
    async def needs(ctx: commands.Context[commands.Bot], amount: int) -> None:
        calls.record("needs")

    @bot.tree.command(name="slashping", description="answers")
    async def slashping(interaction: discord.Interaction) -> None:
        calls.record("slashping")

    @bot.tree.command(name="slashboom", description="fails")
    async def slashboom(interaction: discord.Interaction) -> None:
        calls.record("slashboom")
        raise ValueError("slash kaboom")

    @bot.tree.context_menu(name="Inspect")
    async def inspect(interaction: discord.Interaction, user: discord.User) -> None:
        calls.record(f"inspect:{user.id}")


async def wire_up(bot: commands.Bot | commands.AutoShardedBot) -> None:
    """What login would do, minus the network: the loop, and the bot's own user."""
    await bot._async_setup_hook()
    state = bot._connection
    state.user = discord.ClientUser(state=state, data=user_payload(BOT_ID, "astra-bot", bot=True))


@asynccontextmanager
async def running_bot(
    address: str,
    calls: Calls,
    *,
    configure: Callable[[commands.Bot], None] | None = None,
    options: Options | dict[str, str] | None = None,
) -> AsyncIterator[commands.Bot]:
    """A bot with the extension loaded and one guild joined; closed (and unloaded) after."""
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.all(), help_command=None)
    add_commands(bot, calls)
    if configure is not None:
        configure(bot)
    bot.astra_options = options or Options(address=address, source="test-bot")  # type: ignore[attr-defined]
    await wire_up(bot)
    await bot.load_extension(EXTENSION)
    try:
        bot._connection.parse_guild_create(guild_payload())
        yield bot
    finally:
        await bot.close()


async def flushed(bot: commands.Bot) -> None:
    """Everything the extension queued so far has been sent."""
    telemetry = get_telemetry(bot)
    assert telemetry is not None
    assert await asyncio.to_thread(telemetry.flush)


async def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll ``condition`` while letting the loop run (bounded)."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout=timeout_s)


def commands_named(received: list[events.AnyEvent], name: str) -> list[events.Command]:
    """The command events named ``name``."""
    return [e for e in received if isinstance(e, events.Command) and e.name == name]


# --- tests --------------------------------------------------------------------------------


async def test_messages_arrive_as_counts_and_metadata_without_content(
    receiver: UdpReceiver,
) -> None:
    """A message is reported with ids, length and attachment count, but not its text."""
    async with running_bot(receiver.address, Calls()) as bot:
        bot._connection.parse_message_create(message_payload(1, "hello there", attachments=2))
        [message] = await receiver.wait_for_async(lambda e: isinstance(e, events.Message))

    assert message == events.Message(
        guild_id=GUILD_ID,
        channel_id=TEXT_ID,
        author_id=USER_ID,
        bot=False,
        length=len("hello there"),
        attachments=2,
        embeds=0,
        content=None,
        guild_name="Test Guild",
        channel_name="general",
        id=message.id,
        ts=message.ts,
        source="test-bot",
    )
    assert receiver.invalid == []


@pytest.mark.parametrize("opt_in", ["option", "environment"])
async def test_message_content_is_sent_only_when_the_operator_opts_in(
    receiver: UdpReceiver, monkeypatch: pytest.MonkeyPatch, opt_in: str
) -> None:
    """capture_content=True or ASTRA_CAPTURE_CONTENT=1 adds the message text."""
    if opt_in == "environment":
        monkeypatch.setenv("ASTRA_CAPTURE_CONTENT", "1")
        options = Options(address=receiver.address)
    else:
        options = Options(address=receiver.address, capture_content=True)
    async with running_bot(receiver.address, Calls(), options=options) as bot:
        bot._connection.parse_message_create(message_payload(1, "hello there"))
        [message] = await receiver.wait_for_async(lambda e: isinstance(e, events.Message))

    assert isinstance(message, events.Message)
    assert message.content == "hello there"


async def test_a_prefix_command_is_reported_with_its_duration(receiver: UdpReceiver) -> None:
    """!slow runs through discord.py's command processing and arrives ok, timed, with ids."""
    calls = Calls()
    async with running_bot(receiver.address, calls) as bot:
        bot._connection.parse_message_create(message_payload(1, "!slow"))
        [command] = await receiver.wait_for_async(lambda e: isinstance(e, events.Command))

    assert calls.names == ["slow"]
    assert isinstance(command, events.Command)
    assert (command.name, command.ok, command.command_type) == ("slow", True, "prefix")
    assert (command.guild_id, command.channel_id, command.user_id) == (GUILD_ID, TEXT_ID, USER_ID)
    assert command.duration_ms is not None
    assert command.duration_ms >= 19  # the command sleeps 20 ms: timed from invoke to the end
    assert (command.error, command.error_type, command.traceback) == (None, None, None)


async def test_a_failing_command_is_reported_once_with_its_traceback(
    receiver: UdpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """One command event, ok=False, with the traceback; no error event, no echo of the log line.

    The bot has no handler of its own, so discord.py's default on_command_error logs the
    exception with exc_info, and the extension's logging handler sees that record too.
    """
    calls = Calls()
    async with running_bot(receiver.address, calls) as bot:
        bot._connection.parse_message_create(message_payload(1, "!boom"))
        logged = "Ignoring exception in command boom"
        await eventually(lambda: any(logged in r.getMessage() for r in caplog.records))
        await flushed(bot)
        received = receiver.events

    [failure] = commands_named(received, "boom")
    assert (failure.ok, failure.command_type) == (False, "prefix")
    assert (failure.error, failure.error_type) == ("kaboom", "RuntimeError")
    assert failure.traceback is not None
    assert 'raise RuntimeError("kaboom")' in failure.traceback
    assert failure.traceback.rstrip().endswith("RuntimeError: kaboom")
    assert failure.duration_ms is not None
    assert [e for e in received if isinstance(e, events.Error | events.Log)] == []
    assert calls.names == ["boom"]


async def test_user_errors_are_failures_without_a_traceback(receiver: UdpReceiver) -> None:
    """A missing argument is a failed command with the error but no traceback; typos are not."""
    async with running_bot(receiver.address, Calls()) as bot:
        bot._connection.parse_message_create(message_payload(1, "!nosuchcommand"))
        bot._connection.parse_message_create(message_payload(2, "!needs"))
        [failure] = await receiver.wait_for_async(lambda e: isinstance(e, events.Command))
        await flushed(bot)
        received = receiver.events

    assert isinstance(failure, events.Command)
    assert (failure.name, failure.ok) == ("needs", False)
    assert failure.error_type == "MissingRequiredArgument"
    assert failure.traceback is None
    assert len([e for e in received if isinstance(e, events.Command)]) == 1


async def test_the_bots_own_handlers_and_listeners_still_run(receiver: UdpReceiver) -> None:
    """on_command_error, on_error, tree errors and extra listeners of the bot all still fire."""
    calls = Calls()

    def configure(bot: commands.Bot) -> None:
        @bot.event
        async def on_command_error(ctx: commands.Context[commands.Bot], error: Exception) -> None:
            calls.record("bot.on_command_error")

        @bot.event
        async def on_error(event_method: str, /, *args: Any, **kwargs: Any) -> None:
            calls.record(f"bot.on_error:{event_method}")

        @bot.tree.error
        async def on_tree_error(
            interaction: discord.Interaction, error: app_commands.AppCommandError
        ) -> None:
            calls.record("tree.on_error")

        async def listener_error(ctx: commands.Context[commands.Bot], error: Exception) -> None:
            calls.record("listener.on_command_error")

        async def listener_message(message: discord.Message) -> None:
            calls.record("listener.on_message")

        async def broken_listener(member: discord.Member) -> None:
            raise LookupError("listener broke")

        bot.add_listener(listener_error, "on_command_error")
        bot.add_listener(listener_message, "on_message")
        bot.add_listener(broken_listener, "on_member_join")

    async with running_bot(receiver.address, calls, configure=configure) as bot:
        state = bot._connection
        state.parse_message_create(message_payload(1, "!boom"))
        state.parse_interaction_create(interaction_payload(10, slash("slashboom")))
        state.parse_guild_member_add(member_add_payload(OTHER_ID, "bob"))
        await calls.wait_for("bot.on_command_error")
        await calls.wait_for("listener.on_command_error")
        await calls.wait_for("tree.on_error")
        await calls.wait_for("bot.on_error:on_member_join")
        await calls.wait_for("listener.on_message")
        await flushed(bot)
        received = receiver.events

    [prefix_failure] = commands_named(received, "boom")
    [slash_failure] = commands_named(received, "slashboom")
    assert not prefix_failure.ok
    assert not slash_failure.ok
    [error] = [e for e in received if isinstance(e, events.Error)]
    assert error.message == "exception in on_member_join: listener broke"
    assert error.type == "LookupError"
    assert error.traceback is not None
    assert 'raise LookupError("listener broke")' in error.traceback
    [member] = [e for e in received if isinstance(e, events.Member)]
    assert (member.action, member.user_id) == ("join", OTHER_ID)


async def test_app_commands_are_reported_with_type_duration_and_errors(
    receiver: UdpReceiver,
) -> None:
    """Slash and context-menu commands arrive ok; a raising slash command with its traceback."""
    calls = Calls()
    async with running_bot(receiver.address, calls) as bot:
        state = bot._connection
        state.parse_interaction_create(interaction_payload(10, slash("slashping")))
        state.parse_interaction_create(interaction_payload(11, user_context_menu("Inspect")))
        state.parse_interaction_create(interaction_payload(12, slash("slashboom")))
        await receiver.wait_for_async(lambda e: isinstance(e, events.Command), count=3)
        await flushed(bot)
        received = receiver.events

    assert sorted(calls.names) == [f"inspect:{OTHER_ID}", "slashboom", "slashping"]
    [ok] = commands_named(received, "slashping")
    assert (ok.ok, ok.command_type, ok.user_id, ok.guild_id) == (True, "slash", USER_ID, GUILD_ID)
    assert ok.duration_ms is not None
    [menu] = commands_named(received, "Inspect")
    assert (menu.ok, menu.command_type) == (True, "context")
    [failure] = commands_named(received, "slashboom")
    assert (failure.ok, failure.command_type, failure.error_type) == (False, "slash", "ValueError")
    assert failure.error == "slash kaboom"
    assert failure.traceback is not None
    assert 'raise ValueError("slash kaboom")' in failure.traceback
    assert [e for e in received if isinstance(e, events.Error | events.Log)] == []


async def test_hybrid_commands_are_reported_once_however_they_are_invoked(
    receiver: UdpReceiver,
) -> None:
    """A hybrid command is one event as a slash command and one as a prefix command."""
    calls = Calls()

    def configure(bot: commands.Bot) -> None:
        @bot.hybrid_command(name="hyb", description="hybrid")
        async def hyb(ctx: commands.Context[commands.Bot]) -> None:
            calls.record("hyb")

        @bot.hybrid_command(name="hybboom", description="hybrid, fails")
        async def hybboom(ctx: commands.Context[commands.Bot]) -> None:
            calls.record("hybboom")
            raise OSError("hybrid kaboom")

    async with running_bot(receiver.address, calls, configure=configure) as bot:
        state = bot._connection
        state.parse_interaction_create(interaction_payload(20, slash("hyb")))
        state.parse_interaction_create(interaction_payload(21, slash("hybboom")))
        state.parse_message_create(message_payload(22, "!hyb"))
        await receiver.wait_for_async(lambda e: isinstance(e, events.Command), count=3)
        await calls.wait_for("hyb", count=2)
        await calls.wait_for("hybboom")
        await flushed(bot)
        received = receiver.events

    assert sorted((c.command_type, c.ok) for c in commands_named(received, "hyb")) == [
        ("prefix", True),
        ("slash", True),
    ]
    [failure] = commands_named(received, "hybboom")
    assert (failure.command_type, failure.ok, failure.error_type) == ("slash", False, "OSError")
    assert failure.traceback is not None
    assert 'raise OSError("hybrid kaboom")' in failure.traceback
    assert [e for e in received if isinstance(e, events.Error | events.Log)] == []


async def test_guild_member_voice_and_reaction_events(receiver: UdpReceiver) -> None:
    """Joins, leaves, voice moves and reactions arrive with the right action and ids."""
    async with running_bot(receiver.address, Calls()) as bot:
        state = bot._connection
        state.parse_guild_member_add(member_add_payload(OTHER_ID, "bob"))
        state.parse_guild_member_remove(
            {"guild_id": str(GUILD_ID), "user": user_payload(OTHER_ID, "bob")}
        )
        # discord.py hands listeners its live VoiceState as `after`: yield between updates,
        # as reading the next gateway frame does, so each listener sees its own update.
        updates = [(VOICE_A, False), (VOICE_B, False), (VOICE_B, True), (None, False)]
        for channel_id, self_mute in updates:
            state.parse_voice_state_update(voice_payload(channel_id, self_mute=self_mute))
            await asyncio.sleep(0)
        state.parse_message_reaction_add(reaction_payload({"id": None, "name": "👍"}))
        state.parse_message_reaction_remove(
            reaction_payload({"id": "777", "name": "party", "animated": False})
        )
        state.parse_guild_delete({"id": str(GUILD_ID)})
        await receiver.wait_for_async(lambda e: isinstance(e, events.Guild), count=2)
        await flushed(bot)
        received = receiver.events

    guilds = [e for e in received if isinstance(e, events.Guild)]
    assert [(g.action, g.guild_id, g.name, g.member_count) for g in guilds] == [
        ("join", GUILD_ID, "Test Guild", 2),
        ("leave", GUILD_ID, "Test Guild", 2),
    ]
    members = [e for e in received if isinstance(e, events.Member)]
    assert [(m.action, m.guild_id, m.user_id, m.bot) for m in members] == [
        ("join", GUILD_ID, OTHER_ID, False),
        ("leave", GUILD_ID, OTHER_ID, False),
    ]
    voices = [e for e in received if isinstance(e, events.Voice)]
    assert [(v.action, v.channel_id, v.from_channel_id, v.user_id) for v in voices] == [
        ("join", VOICE_A, None, USER_ID),
        ("move", VOICE_B, VOICE_A, USER_ID),
        ("leave", VOICE_B, None, USER_ID),
    ]
    reactions = [e for e in received if isinstance(e, events.Reaction)]
    assert [(r.action, r.emoji, r.message_id, r.user_id, r.channel_id) for r in reactions] == [
        ("add", "👍", 77, USER_ID, TEXT_ID),
        ("remove", "<:party:777>", 77, USER_ID, TEXT_ID),
    ]
    assert receiver.invalid == []


async def test_gateway_lifecycle_and_latency(receiver: UdpReceiver) -> None:
    """connect, ready, disconnect and resume are lifecycle events; latency is sampled in ms."""
    options = Options(address=receiver.address, source="test-bot", latency_interval_s=0.01)
    async with running_bot(receiver.address, Calls(), options=options) as bot:
        capture = capture_module._captures[bot]
        bot.ws = SimpleNamespace(latency=float("inf"), open=False)  # type: ignore[assignment]
        capture.sample_latency()  # before the first heartbeat ack: skipped
        bot.dispatch("connect")
        bot.dispatch("ready")
        bot.dispatch("disconnect")
        bot._connection.parse_resumed(None)
        await receiver.wait_for_async(lambda e: isinstance(e, events.Lifecycle), count=4)
        bot.ws = SimpleNamespace(latency=0.0421, open=False)  # type: ignore[assignment]
        latency, *_ = await receiver.wait_for_async(lambda e: isinstance(e, events.Latency))
        bot.ws = None  # type: ignore[assignment]
        received = receiver.events

    lifecycle = [e for e in received if isinstance(e, events.Lifecycle)]
    assert [(e.action, e.detail) for e in lifecycle] == [
        ("gateway.connect", ""),
        ("gateway.ready", ""),
        ("gateway.disconnect", ""),
        ("gateway.resume", ""),
    ]
    assert isinstance(latency, events.Latency)
    assert latency.ms == pytest.approx(42.1)
    assert (latency.of, latency.shard_id) == ("gateway", None)
    assert all(
        isinstance(e.ms, float) and e.ms == latency.ms
        for e in received
        if isinstance(e, events.Latency)
    )


async def test_a_sharded_bot_reports_each_shard_once(receiver: UdpReceiver) -> None:
    """AutoShardedBot: shard events carry the shard id and are not doubled by the plain ones."""
    bot = commands.AutoShardedBot(command_prefix="!", intents=discord.Intents.all())
    bot.astra_options = Options(address=receiver.address, latency_interval_s=0)  # type: ignore[attr-defined]
    await wire_up(bot)
    await bot.load_extension(EXTENSION)
    try:
        bot.dispatch("connect")
        bot.dispatch("shard_connect", 3)
        bot.dispatch("shard_disconnect", 3)
        await receiver.wait_for_async(lambda e: isinstance(e, events.Lifecycle), count=2)
        telemetry = get_telemetry(bot)
        assert telemetry is not None
        await asyncio.to_thread(telemetry.flush)
        received = receiver.events
    finally:
        await bot.close()

    assert [(e.action, e.detail) for e in received if isinstance(e, events.Lifecycle)] == [
        ("gateway.connect", "shard 3"),
        ("gateway.disconnect", "shard 3"),
    ]


async def test_handlers_the_bot_assigns_after_loading_are_wrapped_on_connect(
    receiver: UdpReceiver,
) -> None:
    """@bot.event on_error after load_extension replaces the wrapper; connect wraps it again."""
    calls = Calls()
    async with running_bot(receiver.address, calls) as bot:

        @bot.event
        async def on_error(event_method: str, /, *args: Any, **kwargs: Any) -> None:
            calls.record("late.on_error")

        async def broken(member: discord.Member) -> None:
            raise KeyError("late")

        bot.add_listener(broken, "on_member_join")
        bot.dispatch("connect")
        await receiver.wait_for_async(lambda e: isinstance(e, events.Lifecycle))
        bot._connection.parse_guild_member_add(member_add_payload(OTHER_ID, "bob"))
        await calls.wait_for("late.on_error")
        [error] = await receiver.wait_for_async(lambda e: isinstance(e, events.Error))

    assert isinstance(error, events.Error)
    assert error.message == "exception in on_member_join: 'late'"


async def test_with_the_sidecar_down_the_bot_keeps_running() -> None:
    """Nothing listening: commands, failures and the bot's handlers run; drops are counted."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"udp://127.0.0.1:{sock.getsockname()[1]}"
    calls = Calls()

    def configure(bot: commands.Bot) -> None:
        @bot.event
        async def on_command_error(ctx: commands.Context[commands.Bot], error: Exception) -> None:
            calls.record("bot.on_command_error")

    async with running_bot(address, calls, configure=configure) as bot:
        telemetry = get_telemetry(bot)
        assert telemetry is not None
        for n in range(1, 50):
            bot._connection.parse_message_create(message_payload(n, "!boom"))
            bot._connection.parse_message_create(message_payload(1000 + n, "!ping"))
            await calls.wait_for("ping", count=n)
            await calls.wait_for("bot.on_command_error", count=n)
            await asyncio.to_thread(telemetry.flush)
            if telemetry.stats.dropped_send_error:
                break
        stats = telemetry.stats

    assert stats.dropped_send_error >= 1
    assert stats.internal_errors == 0
    assert calls.names.count("ping") == calls.names.count("boom") >= 1


async def test_unloading_restores_the_bot_as_it_was(receiver: UdpReceiver) -> None:
    """After unload no listener, wrapper or log handler of astra is left; a shared client lives."""
    shared = Telemetry(receiver.address, source="shared")
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.all())

    @bot.event
    async def on_error(event_method: str, /, *args: Any, **kwargs: Any) -> None:
        """The bot's own handler."""

    tree_on_error = bot.tree.on_error
    before_listeners = {name: list(funcs) for name, funcs in bot.extra_events.items()}
    root_handlers = list(logging.getLogger().handlers)
    bot.astra_options = {"telemetry": shared}  # type: ignore[attr-defined]
    await wire_up(bot)
    try:
        await bot.load_extension(EXTENSION)
        assert get_telemetry(bot) is shared
        assert vars(bot)["on_error"] is not on_error
        assert any(isinstance(h, TelemetryHandler) for h in logging.getLogger().handlers)
        await bot.unload_extension(EXTENSION)

        assert vars(bot)["on_error"] is on_error
        for name in ("on_command_error", "invoke"):
            assert name not in vars(bot)
        assert bot.tree.on_error == tree_on_error
        assert "on_error" not in vars(bot.tree)
        assert "interaction_check" not in vars(bot.tree)
        assert {n: f for n, f in bot.extra_events.items() if f} == before_listeners
        assert logging.getLogger().handlers == root_handlers
        assert get_telemetry(bot) is None
        assert not shared.closed
    finally:
        await bot.close()
        shared.close()


@pytest.mark.parametrize(
    "options",
    [
        Options(address="carrier-pigeon://nowhere"),
        Options(log_level="LOUD"),
        {"adress": "udp://127.0.0.1:8787"},
    ],
    ids=["address", "log level", "unknown option"],
)
async def test_a_bad_configuration_disables_telemetry_not_the_bot(
    receiver: UdpReceiver, caplog: pytest.LogCaptureFixture, options: Options | dict[str, str]
) -> None:
    """Unusable options are logged; the extension loads, captures nothing, the bot works."""
    calls = Calls()
    async with running_bot(receiver.address, calls, options=options) as bot:
        assert get_telemetry(bot) is None
        bot._connection.parse_message_create(message_payload(1, "!ping"))
        await calls.wait_for("ping")

    assert any("telemetry disabled" in r.getMessage() for r in caplog.records)
    assert receiver.events == []


# --- privacy: what the user typed stays local without the content opt-in ------------------


class CountConverter(commands.Converter[int]):
    """A custom converter: its ValueError quotes the argument (wrapped in ConversionError)."""

    async def convert(self, ctx: commands.Context[Any], argument: str) -> int:
        """The argument as a count; a ValueError quoting it otherwise."""
        if not argument.isdigit():
            raise ValueError(f"not a count: {argument}")
        return int(argument)


def add_input_commands(bot: commands.Bot) -> None:
    """Commands whose argument errors quote the user's input."""

    @bot.command()
    async def greet(ctx: commands.Context[commands.Bot], channel: discord.TextChannel) -> None:
        """A converter error: 'Channel "…" not found.'"""

    @bot.command()
    async def count(
        ctx: commands.Context[commands.Bot], n: int = commands.parameter(converter=CountConverter)
    ) -> None:
        """A custom converter's ValueError, wrapped in ConversionError."""


@pytest.mark.parametrize("capture_content", [False, True], ids=["default", "opted in"])
async def test_argument_errors_do_not_leak_what_the_user_typed(
    receiver: UdpReceiver, caplog: pytest.LogCaptureFixture, capture_content: bool
) -> None:
    """Bad arguments and unknown commands: only the error class, unless content is opted in."""
    options = Options(address=receiver.address, capture_content=capture_content)
    async with running_bot(
        receiver.address, Calls(), configure=add_input_commands, options=options
    ) as bot:
        state = bot._connection
        state.parse_message_create(message_payload(1, '!greet "my private diary entry"'))
        state.parse_message_create(message_payload(2, "!count my-secret-number"))
        state.parse_message_create(message_payload(3, "!mysecretword"))
        await receiver.wait_for_async(lambda e: isinstance(e, events.Command), count=2)
        await eventually(lambda: any("command None" in r.getMessage() for r in caplog.records))
        await flushed(bot)
        received = receiver.events

    [greet] = commands_named(received, "greet")
    [count] = commands_named(received, "count")
    assert (greet.ok, greet.error_type) == (False, "ChannelNotFound")
    assert (count.ok, count.error_type) == (False, "ValueError")
    assert [e for e in received if isinstance(e, events.Error | events.Log)] == []
    if capture_content:
        assert greet.error == 'Channel "my private diary entry" not found.'
        assert count.error == "not a count: my-secret-number"
        assert count.traceback is not None
    else:
        assert (greet.error, greet.traceback, count.error, count.traceback) == (None,) * 4
        wire = events.encode_lines(received).decode()
        for typed in ("diary", "my-secret-number", "mysecretword"):
            assert typed not in wire
    # An unknown command is not reported, with or without the opt-in (the message is).
    unreported: list[events.AnyEvent] = [e for e in received if not isinstance(e, events.Message)]
    reports = events.encode_lines(unreported)
    assert b"mysecretword" not in reports


async def test_a_typo_after_the_prefix_sends_no_error_or_log_event(
    receiver: UdpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """discord.py's default handler logs CommandNotFound at ERROR: astra does not forward it."""
    async with running_bot(receiver.address, Calls()) as bot:
        bot._connection.parse_message_create(message_payload(1, "!pnig"))
        bot._connection.parse_message_create(message_payload(2, "!ping"))
        await eventually(lambda: any("command None" in r.getMessage() for r in caplog.records))
        await receiver.wait_for_async(lambda e: isinstance(e, events.Command))
        await flushed(bot)
        received = receiver.events

    assert [c.name for c in received if isinstance(c, events.Command)] == ["ping"]
    assert [e for e in received if isinstance(e, events.Error | events.Log)] == []


@pytest.mark.parametrize("capture_content", [False, True], ids=["default", "opted in"])
async def test_debug_logging_keeps_discord_payloads_local(
    receiver: UdpReceiver, caplog: pytest.LogCaptureFixture, capture_content: bool
) -> None:
    """log_level=DEBUG forwards the bot's debug records, not discord.py's gateway/http ones."""
    caplog.set_level(logging.DEBUG)
    options = Options(address=receiver.address, log_level="DEBUG", capture_content=capture_content)
    async with running_bot(receiver.address, Calls(), options=options) as bot:
        payload = {"t": "MESSAGE_CREATE", "d": {"content": "secret text"}}
        logging.getLogger("discord.gateway").debug("WebSocket Event: %s", payload)
        logging.getLogger("discord.http").debug("POST /messages with %s", "secret body")
        logging.getLogger("discord.client").info("logging in")
        logging.getLogger("bot.mine").debug("the bot's own debug")
        await flushed(bot)
        received = receiver.events

    messages = [e.message for e in received if isinstance(e, events.Log)]
    assert "logging in" in messages
    assert "the bot's own debug" in messages
    assert any("secret" in m for m in messages) is capture_content


# --- chained handlers ---------------------------------------------------------------------


async def test_a_handler_chained_after_astra_reports_once_and_unloading_stops_it(
    receiver: UdpReceiver,
) -> None:
    """Another extension wraps astra's wrappers; connect wraps again: one report per error.

    After unload, astra's wrappers inside the other extension's chain only pass through.
    """
    calls = Calls()
    shared = Telemetry(receiver.address, source="shared")

    def configure(bot: commands.Bot) -> None:
        async def broken(member: discord.Member) -> None:
            raise LookupError("listener broke")

        bot.add_listener(broken, "on_member_join")

    options = Options(telemetry=shared, latency_interval_s=0)
    try:
        async with running_bot(
            receiver.address, calls, configure=configure, options=options
        ) as bot:
            astra_on_error = bot.on_error
            astra_on_command_error = bot.on_command_error

            async def other_on_error(event_method: str, /, *args: Any, **kwargs: Any) -> None:
                calls.record("other.on_error")
                await astra_on_error(event_method, *args, **kwargs)

            async def other_on_command_error(
                ctx: commands.Context[Any], error: commands.CommandError, /
            ) -> None:
                calls.record("other.on_command_error")
                await astra_on_command_error(ctx, error)

            bot.on_error = other_on_error  # type: ignore[method-assign]
            bot.on_command_error = other_on_command_error  # type: ignore[method-assign]
            bot.dispatch("connect")  # astra wraps the chain again
            await receiver.wait_for_async(lambda e: isinstance(e, events.Lifecycle))
            state = bot._connection
            state.parse_guild_member_add(member_add_payload(OTHER_ID, "bob"))
            state.parse_message_create(message_payload(1, "!boom"))
            await calls.wait_for("other.on_error")
            await calls.wait_for("other.on_command_error")
            await flushed(bot)
            before_unload = receiver.events

            await bot.unload_extension(EXTENSION)
            state.parse_guild_member_add(member_add_payload(OTHER_ID + 1, "carol"))
            state.parse_message_create(message_payload(2, "!boom"))
            await calls.wait_for("other.on_error", count=2)
            await calls.wait_for("other.on_command_error", count=2)
            assert await asyncio.to_thread(shared.flush)
            after_unload = receiver.events[len(before_unload) :]
    finally:
        shared.close()

    assert len([e for e in before_unload if isinstance(e, events.Error)]) == 1
    assert len(commands_named(before_unload, "boom")) == 1
    assert after_unload == []
    assert shared.stats.internal_errors == 0


async def test_a_wrapper_left_in_another_chain_passes_through_after_unload(
    receiver: UdpReceiver,
) -> None:
    """Unloaded while another extension's handler wraps astra's: nothing is sent any more."""
    calls = Calls()
    shared = Telemetry(receiver.address, source="shared")

    def configure(bot: commands.Bot) -> None:
        async def broken(member: discord.Member) -> None:
            raise LookupError("listener broke")

        bot.add_listener(broken, "on_member_join")

    options = Options(telemetry=shared, latency_interval_s=0, log_level="off")
    try:
        async with running_bot(
            receiver.address, calls, configure=configure, options=options
        ) as bot:
            astra_on_error = bot.on_error

            async def other_on_error(event_method: str, /, *args: Any, **kwargs: Any) -> None:
                calls.record("other.on_error")
                await astra_on_error(event_method, *args, **kwargs)

            bot.on_error = other_on_error  # type: ignore[method-assign]
            await bot.unload_extension(EXTENSION)
            assert vars(bot)["on_error"] is other_on_error  # theirs: left alone
            bot._connection.parse_guild_member_add(member_add_payload(OTHER_ID, "bob"))
            await calls.wait_for("other.on_error")
            assert await asyncio.to_thread(shared.flush)
    finally:
        shared.close()

    assert [e for e in receiver.events if isinstance(e, events.Error)] == []
    assert shared.stats.sent == len(receiver.events)
