"""The discord.py extension's machinery; ``astra.client.discordpy`` is its public face.

It lives in a module of its own because ``bot.load_extension`` executes the extension
module afresh on every load: classes and the registry of attached bots defined here stay
the same objects however often the extension is loaded, unloaded and imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import sys
import time
import weakref
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Concatenate, Final, Literal, ParamSpec, TypeAlias

import discord
from discord import app_commands
from discord.ext import commands

from astra import events
from astra.client._commands import ENV_CONTROL_TOKEN, AstraCommands, ControlClient, control_url
from astra.client._errors import (
    NAME_CHARS,
    TEXT_CHARS,
    clip,
    describe,
    error_event_once,
    format_traceback,
    mark_reported,
    type_name,
)
from astra.client._telemetry import Telemetry
from astra.client.logging import TelemetryHandler

log = logging.getLogger("astra.client.discordpy")

ENV_CAPTURE_CONTENT = "ASTRA_CAPTURE_CONTENT"
ENV_LOG_LEVEL = "ASTRA_LOG_LEVEL"
DEFAULT_LATENCY_INTERVAL_S = 60.0

AnyBot: TypeAlias = commands.Bot | commands.AutoShardedBot
AsyncFunc: TypeAlias = Callable[..., Coroutine[Any, Any, Any]]
CommandType: TypeAlias = Literal["prefix", "slash", "context", "other"]
P = ParamSpec("P")

_TIMING_ATTR: Final = "_astra_timing"  # on a commands.Context: [started, finished]
_STARTED_KEY: Final = "astra.started"  # in Interaction.extras
_COMMAND_MARK: Final = "__astra_command_reported__"  # on an exception: its command was sent
_MISSING: Final = object()

# Errors whose text (and traceback) quotes what the user typed: 'Channel "my private diary
# entry" not found.', 'Command "secretword" is not found', a custom converter's own error
# (ConversionError), the value a slash-command transformer could not convert. Without the
# content opt-in only their class is sent.
_USER_INPUT_ERRORS: Final = (
    commands.UserInputError,
    commands.CommandNotFound,
    commands.ConversionError,
    app_commands.TransformerError,
)


@dataclass(frozen=True, kw_only=True)
class Options:
    """How the extension runs; every ``None`` falls back to the environment."""

    address: str | None = None  # ASTRA_ADDRESS, else udp://127.0.0.1:8787
    source: str | None = None  # ASTRA_SOURCE, else the script name
    capture_content: bool | None = None  # ASTRA_CAPTURE_CONTENT=1; off by default
    log_level: int | str | None = None  # ASTRA_LOG_LEVEL, else WARNING; "off": no handler
    latency_interval_s: float = DEFAULT_LATENCY_INTERVAL_S
    telemetry: Telemetry | None = None  # share a client; it is then not closed on unload
    # The sidecar's ingest.token (ASTRA_INGEST_TOKEN); a secret, so kept out of repr().
    token: str | None = field(default=None, repr=False)
    ca_file: str | None = None  # ASTRA_INGEST_CA: PEM file to trust for an https:// sidecar
    # The sidecar's [control] token (ASTRA_CONTROL_TOKEN): with it, /astra commands are
    # registered on bot.tree. A secret, so kept out of repr().
    control_token: str | None = field(default=None, repr=False)
    # ASTRA_CONTROL_URL, else the ingest host over HTTP (udp://h:p becomes http://h:p).
    control_url: str | None = None


_captures: weakref.WeakKeyDictionary[AnyBot, _Capture] = weakref.WeakKeyDictionary()


async def setup(bot: AnyBot) -> None:
    """Extension entry point: start capturing. Never raises: trouble is logged instead."""
    try:
        options = _resolve_options(bot)
        log_level = _log_level(options)
        telemetry = options.telemetry or Telemetry(
            options.address, source=options.source, token=options.token, ca_file=options.ca_file
        )
    except Exception as exc:
        log.error("astra: telemetry disabled, the bot runs without it: %s", exc)
        return
    capture: _Capture | None = None
    try:
        capture = _Capture(bot, telemetry, options=options, log_level=log_level)
        capture.install()
    except Exception:
        log.exception("astra: telemetry disabled, could not attach to the bot")
        if capture is not None:
            await capture.uninstall()
        elif options.telemetry is None:
            await telemetry.aclose()
        return
    _captures[bot] = capture


async def teardown(bot: AnyBot) -> None:
    """Extension exit point: remove listeners, restore wrapped handlers, flush and close."""
    capture = _captures.pop(bot, None)
    if capture is not None:
        await capture.uninstall()


def get_telemetry(bot: AnyBot) -> Telemetry | None:
    """The ``Telemetry`` the extension uses for ``bot`` (to send the bot's own metrics)."""
    capture = _captures.get(bot)
    return capture.telemetry if capture is not None else None


def _resolve_options(bot: AnyBot) -> Options:
    raw = getattr(bot, "astra_options", None)
    if raw is None:
        return Options()
    if isinstance(raw, Options):
        return raw
    if isinstance(raw, Mapping):
        return Options(**raw)
    raise TypeError(
        "bot.astra_options must be an astra.client.discordpy.Options or a dict of its fields, "
        f"not {type(raw).__name__}"
    )


def _capture_content(options: Options) -> bool:
    if options.capture_content is not None:
        return options.capture_content
    return os.environ.get(ENV_CAPTURE_CONTENT, "").strip().lower() in ("1", "true", "yes", "on")


def _log_level(options: Options) -> int | None:
    """The handler level, or None for no handler. Raises ValueError for an unknown name."""
    level = options.log_level
    if level is None:
        level = os.environ.get(ENV_LOG_LEVEL, "").strip() or "WARNING"
    if isinstance(level, int):
        return level
    if level.lower() in ("off", "none", "0", "false", "no"):
        return None
    known = logging.getLevelNamesMapping()
    if level.upper() not in known:
        raise ValueError(f"log level {level!r}: use DEBUG, INFO, WARNING, ERROR, CRITICAL or off")
    return known[level.upper()]


class _Switch:
    """Whether a wrapper still does astra's part; once off, it only calls what it wraps.

    A wrapper cannot always be removed: when another extension wrapped astra's wrapper, it
    holds a reference to it. Switching it off on ``uninstall`` (and when ``ensure`` wraps
    anew on top of such a chain) makes the stale wrapper a plain pass-through, so an unloaded
    astra sends nothing and a re-wrapped chain reports each error once.
    """

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = True


class _Chain:
    """Wraps ``owner.<name>`` with a function that adds to it and then calls the original.

    The wrapper is set as an instance attribute (that is where discord.py looks first), and
    the previous instance attribute, if any, is put back on ``uninstall``.
    """

    def __init__(
        self, owner: object, name: str, factory: Callable[[AsyncFunc, _Switch], AsyncFunc]
    ) -> None:
        self._owner = owner
        self._name = name
        self._factory = factory
        self._wrapper: AsyncFunc | None = None
        self._switch: _Switch | None = None
        self._saved: object = _MISSING

    def install(self) -> None:
        if self._switch is not None:
            self._switch.on = False  # a previous wrapper may still be in the chain below
        self._saved = vars(self._owner).get(self._name, _MISSING)
        self._switch = _Switch()
        self._wrapper = self._factory(getattr(self._owner, self._name), self._switch)
        setattr(self._owner, self._name, self._wrapper)

    def ensure(self) -> None:
        """Wrap again if the bot assigned its own handler after ``install``."""
        if self._wrapper is not None and vars(self._owner).get(self._name) is not self._wrapper:
            self.install()

    def uninstall(self) -> None:
        if self._switch is not None:
            self._switch.on = False  # wherever the wrapper still is, it only passes through
            self._switch = None
        if self._wrapper is None or vars(self._owner).get(self._name) is not self._wrapper:
            self._wrapper = None
            return  # never installed, or the bot replaced it since: leave theirs alone
        if self._saved is _MISSING:
            delattr(self._owner, self._name)
        else:
            setattr(self._owner, self._name, self._saved)
        self._wrapper = None


def _listener(
    func: Callable[Concatenate[_Capture, P], None],
) -> Callable[Concatenate[_Capture, P], Coroutine[Any, Any, None]]:
    """Make a sync reporting method a discord.py listener that can never fail the bot."""

    @functools.wraps(func)
    async def listener(self: _Capture, /, *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            func(self, *args, **kwargs)
        except Exception as exc:
            self.internal_error(exc)

    return listener


def _unwrap(error: BaseException) -> BaseException:
    """The exception the bot's code raised, out of discord.py's wrappers around it."""
    for _ in range(4):
        inner = getattr(error, "original", None)
        if not isinstance(inner, BaseException):
            break
        error = inner
    return error


def _is_library_error(error: BaseException) -> bool:
    """Check failures, bad arguments, cooldowns…: raised by discord.py, no useful traceback."""
    return isinstance(error, commands.CommandError | app_commands.AppCommandError)


def _quotes_user_input(error: BaseException) -> bool:
    """True when ``error``, or an exception it wraps, may quote what the user typed.

    The whole ``original`` chain counts: the error of a hybrid command run as a slash
    command wraps the ``TransformerError`` that quotes the value.
    """
    for _ in range(4):
        if isinstance(error, _USER_INPUT_ERRORS):
            return True
        inner = getattr(error, "original", None)
        if not isinstance(inner, BaseException):
            return False
        error = inner
    return False


def _mark_command_reported(*excs: BaseException | None) -> None:
    for exc in excs:
        if exc is not None:
            with contextlib.suppress(AttributeError, TypeError):
                setattr(exc, _COMMAND_MARK, True)


def _command_reported(exc: BaseException) -> bool:
    """True when a ``command`` event was already sent for ``exc`` (a wrapper deeper in a
    chain of wrappers, or the other of two error paths, got there first)."""
    return bool(getattr(exc, _COMMAND_MARK, False))


class _DiscordDebugFilter(logging.Filter):
    """Keeps discord.py's own debug records away from the handler.

    ``discord.gateway`` logs every gateway payload at DEBUG (``MESSAGE_CREATE`` with the
    message text) and ``discord.http`` every request body: without the content opt-in they
    must not leave the process, whatever ``log_level`` says.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        return not (
            record.levelno < logging.INFO and (name == "discord" or name.startswith("discord."))
        )


def _app_command_type(command: object) -> CommandType:
    if isinstance(command, app_commands.ContextMenu):
        return "context"
    if isinstance(command, app_commands.Command):
        return "slash"
    return "other"


# Discord allows guild and channel names of at most 100 characters.
NAME_MAX = 100


def _name(place: object) -> str | None:
    """A guild's or channel's name, when discord.py has it (a DM channel has none)."""
    name = getattr(place, "name", None)
    return clip(name, NAME_MAX) if isinstance(name, str) and name else None


def _ms_since(started: float | None, finished: float | None = None) -> float | None:
    if started is None:
        return None
    return max(0.0, ((finished or time.perf_counter()) - started) * 1000.0)


class _Capture:
    """Everything the extension attached to one bot, so that it can all be removed again."""

    def __init__(
        self, bot: AnyBot, telemetry: Telemetry, *, options: Options, log_level: int | None
    ) -> None:
        self.bot = bot
        self.telemetry = telemetry
        self._owns_telemetry = options.telemetry is None
        self._source = telemetry.source
        self._capture_content = _capture_content(options)
        self._log_level = log_level
        self._latency_interval_s = options.latency_interval_s
        self._sharded = isinstance(bot, discord.AutoShardedClient)
        self._listeners: list[tuple[str, AsyncFunc]] = []
        self._chains = [
            _Chain(bot, "on_error", self._reporting(self._report_event_error)),
            _Chain(bot, "on_command_error", self._reporting(self._report_command_error)),
            _Chain(bot, "invoke", self._wrap_invoke),
            _Chain(bot.tree, "on_error", self._reporting(self._report_app_command_error)),
            _Chain(bot.tree, "interaction_check", self._wrap_interaction_check),
        ]
        self._handler: TelemetryHandler | None = None
        self._latency_task: asyncio.Task[None] | None = None
        token = options.control_token or os.environ.get(ENV_CONTROL_TOKEN, "").strip()
        self.commands: AstraCommands | None = None
        if token:
            url = control_url(options.control_url, telemetry.address)
            self.commands = AstraCommands(ControlClient(url, token, ca_file=options.ca_file))

    # --- attach / detach -------------------------------------------------------------

    def _listener_table(self) -> dict[str, AsyncFunc]:
        table: dict[str, AsyncFunc] = {
            "on_message": self.on_message,
            "on_command_completion": self.on_command_completion,
            "on_app_command_completion": self.on_app_command_completion,
            "on_guild_join": self.on_guild_join,
            "on_guild_remove": self.on_guild_remove,
            "on_member_join": self.on_member_join,
            # The raw event fires even when the member was not cached.
            "on_raw_member_remove": self.on_raw_member_remove,
            "on_voice_state_update": self.on_voice_state_update,
            "on_raw_reaction_add": self.on_raw_reaction_add,
            "on_raw_reaction_remove": self.on_raw_reaction_remove,
        }
        # An AutoShardedClient dispatches both forms; the shard ones say which shard.
        if self._sharded:
            table |= {
                "on_shard_connect": self.on_shard_connect,
                "on_shard_disconnect": self.on_shard_disconnect,
                "on_shard_resumed": self.on_shard_resumed,
                "on_shard_ready": self.on_shard_ready,
            }
        else:
            table |= {
                "on_connect": self.on_connect,
                "on_disconnect": self.on_disconnect,
                "on_resumed": self.on_resumed,
                "on_ready": self.on_ready,
            }
        return table

    def install(self) -> None:
        for name, func in self._listener_table().items():
            self.bot.add_listener(func, name)
            self._listeners.append((name, func))
        for chain in self._chains:
            chain.install()
        if self._log_level is not None:
            self._handler = TelemetryHandler(self.telemetry, self._log_level)
            if not self._capture_content:
                self._handler.addFilter(_DiscordDebugFilter())
            logging.getLogger().addHandler(self._handler)
        if self.commands is not None:
            try:
                self.bot.tree.add_command(self.commands.group)
            except app_commands.CommandAlreadyRegistered:
                # The bot has an /astra of its own: keep it, and capture all the same.
                log.warning("astra: the bot already has an /astra command; not adding astra's")
                self.commands = None
        if self._latency_interval_s > 0:
            self._latency_task = asyncio.get_running_loop().create_task(
                self._sample_latency_forever(), name="astra: gateway latency"
            )

    async def uninstall(self) -> None:
        for name, func in self._listeners:
            self.bot.remove_listener(func, name)
        self._listeners.clear()
        for chain in self._chains:
            chain.uninstall()
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler.close()  # the handler does not own the client: this only detaches
            self._handler = None
        if self.commands is not None:
            if self.bot.tree.get_command(self.commands.group.name) is self.commands.group:
                self.bot.tree.remove_command(self.commands.group.name)
            await self.commands.client.aclose()
        if self._latency_task is not None:
            self._latency_task.cancel()
            await asyncio.gather(self._latency_task, return_exceptions=True)
            self._latency_task = None
        if self._owns_telemetry:
            # close() waits for the last flush: off the event loop.
            await self.telemetry.aclose()
        else:
            await asyncio.to_thread(self.telemetry.flush)

    def internal_error(self, exc: Exception) -> None:
        """Count a failure of astra's own code; it never reaches the bot."""
        self.telemetry._internal_error(exc, None)

    def _send(self, event: events.Event) -> None:
        self.telemetry.send(event)

    # --- chained handlers --------------------------------------------------------------

    # Each wrapper does astra's part only while its switch is on, and skips an exception
    # already reported: another astra wrapper deeper in a chain may have sent it already.

    def _reporting(self, report: Callable[..., None]) -> Callable[[AsyncFunc, _Switch], AsyncFunc]:
        """A chain's factory for an error handler: ``report`` its arguments, then pass them on."""

        def wrap(original: AsyncFunc, switch: _Switch) -> AsyncFunc:
            async def handler(*args: Any, **kwargs: Any) -> None:
                if switch.on:
                    try:
                        report(*args, **kwargs)
                    except Exception as exc:
                        self.internal_error(exc)
                await original(*args, **kwargs)

            return handler

        return wrap

    def _wrap_invoke(self, original: AsyncFunc, switch: _Switch) -> AsyncFunc:
        # The on_command event runs as a separate task, possibly after a command without
        # awaits has already finished: timing at invoke itself is the only exact start.
        async def invoke(ctx: commands.Context[Any], /) -> None:
            if not switch.on:
                await original(ctx)
                return
            timing = [time.perf_counter(), 0.0]
            try:
                setattr(ctx, _TIMING_ATTR, timing)
            except Exception as exc:
                self.internal_error(exc)
            try:
                await original(ctx)
            finally:
                timing[1] = time.perf_counter()

        return invoke

    def _wrap_interaction_check(self, original: AsyncFunc, switch: _Switch) -> AsyncFunc:
        # Called by the tree right before it runs an app command (on_interaction comes
        # later, as its own task): the exact start of the command.
        async def interaction_check(interaction: discord.Interaction[Any], /) -> bool:
            if switch.on:
                try:
                    interaction.extras[_STARTED_KEY] = time.perf_counter()
                except Exception as exc:
                    self.internal_error(exc)
            return bool(await original(interaction))

        return interaction_check

    # --- commands ----------------------------------------------------------------------

    def _command(
        self,
        *,
        name: str,
        command_type: CommandType,
        duration_ms: float | None,
        error: BaseException | None,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int | None,
        guild_name: str | None = None,
        channel_name: str | None = None,
    ) -> events.Command:
        original = _unwrap(error) if error is not None else None
        if error is not None:
            mark_reported(error, original)
            _mark_command_reported(error, original)
        # Without the content opt-in, an error quoting the user's input is sent as its
        # class only: no message, no traceback (whose last line repeats the message).
        private = error is not None and not self._capture_content and _quotes_user_input(error)
        return events.Command(
            name=clip(name, NAME_CHARS) or "unknown",
            ok=error is None,
            command_type=command_type,
            duration_ms=duration_ms,
            error=describe(original) if original is not None and not private else None,
            error_type=type_name(original) if original is not None else None,
            traceback=(
                format_traceback(original)
                if original is not None and not private and not _is_library_error(original)
                else None
            ),
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            guild_name=guild_name,
            channel_name=channel_name,
            source=self._source,
        )

    def _prefix_command(
        self, ctx: commands.Context[Any], error: BaseException | None
    ) -> events.Command | None:
        command = ctx.command
        if command is None:
            # CommandNotFound: a typo after the prefix is not a command. Marked, so that the
            # logging handler does not send discord.py's "Ignoring exception" record for it
            # either (whose text would quote the typed word).
            mark_reported(error)
            return None
        interaction = ctx.interaction
        if interaction is not None:
            # A hybrid command invoked as a slash command.
            started = interaction.extras.get(_STARTED_KEY)
            duration_ms = _ms_since(started if isinstance(started, float) else None)
        else:
            timing = getattr(ctx, _TIMING_ATTR, None)
            duration_ms = _ms_since(timing[0], timing[1]) if timing else None
        return self._command(
            name=command.qualified_name,
            command_type="slash" if interaction is not None else "prefix",
            duration_ms=duration_ms,
            error=error,
            guild_id=ctx.guild.id if ctx.guild is not None else None,
            channel_id=ctx.channel.id if ctx.channel is not None else None,
            user_id=ctx.author.id if ctx.author is not None else None,
            guild_name=_name(ctx.guild),
            channel_name=_name(ctx.channel),
        )

    def _app_command(
        self, interaction: discord.Interaction[Any], command: object, error: BaseException | None
    ) -> events.Command:
        name = getattr(command, "qualified_name", None)
        if not isinstance(name, str):
            data: Mapping[str, Any] = interaction.data or {}
            name = str(data.get("name") or "unknown")
        started = interaction.extras.get(_STARTED_KEY)
        return self._command(
            name=name,
            command_type=_app_command_type(command),
            duration_ms=_ms_since(started if isinstance(started, float) else None),
            error=error,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=interaction.user.id if interaction.user is not None else None,
            guild_name=_name(interaction.guild),
            channel_name=_name(interaction.channel),
        )

    @_listener
    def on_command_completion(self, ctx: commands.Context[Any]) -> None:
        if ctx.interaction is not None:
            return  # hybrid command run as a slash command: on_app_command_completion has it
        event = self._prefix_command(ctx, None)
        if event is not None:
            self._send(event)

    def _report_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:
        if _command_reported(error):
            return
        event = self._prefix_command(ctx, error)
        if event is not None:
            self._send(event)

    @_listener
    def on_app_command_completion(
        self,
        interaction: discord.Interaction[Any],
        command: app_commands.Command[Any, ..., Any] | app_commands.ContextMenu,
    ) -> None:
        self._send(self._app_command(interaction, command, None))

    def _report_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        if _command_reported(error):
            return
        self._send(self._app_command(interaction, interaction.command, error))

    def _report_event_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        # discord.py calls on_error inside its except block, with the event's arguments.
        exc = sys.exc_info()[1]
        if exc is None:
            return  # on_error called by hand, outside an except block: nothing to report
        # None when reported already: by a wrapper deeper in the chain, or logged before it
        # was re-raised.
        event = error_event_once(exc, f"exception in {event_method}", source=self._source)
        if event is not None:
            self._send(event)

    # --- messages, guilds, members, voice, reactions ---------------------------------------

    @_listener
    def on_message(self, message: discord.Message) -> None:
        content = message.content or ""
        self._send(
            events.Message(
                guild_id=message.guild.id if message.guild is not None else None,
                channel_id=message.channel.id,
                author_id=message.author.id,
                bot=message.author.bot,
                length=len(content),
                attachments=len(message.attachments),
                embeds=len(message.embeds),
                content=clip(content, TEXT_CHARS) if self._capture_content else None,
                guild_name=_name(message.guild),
                channel_name=_name(message.channel),
                source=self._source,
            )
        )

    def _guild(self, action: Literal["join", "leave"], guild: discord.Guild) -> None:
        self._send(
            events.Guild(
                action=action,
                guild_id=guild.id,
                name=clip(guild.name, NAME_CHARS) if guild.name else None,
                member_count=guild.member_count,
                source=self._source,
            )
        )

    @_listener
    def on_guild_join(self, guild: discord.Guild) -> None:
        self._guild("join", guild)

    @_listener
    def on_guild_remove(self, guild: discord.Guild) -> None:
        self._guild("leave", guild)

    @_listener
    def on_member_join(self, member: discord.Member) -> None:
        self._send(
            events.Member(
                action="join",
                guild_id=member.guild.id,
                user_id=member.id,
                bot=member.bot,
                guild_name=_name(member.guild),
                source=self._source,
            )
        )

    @_listener
    def on_raw_member_remove(self, payload: discord.RawMemberRemoveEvent) -> None:
        self._send(
            events.Member(
                action="leave",
                guild_id=payload.guild_id,
                user_id=payload.user.id,
                bot=payload.user.bot,
                guild_name=_name(self.bot.get_guild(payload.guild_id)),
                source=self._source,
            )
        )

    @_listener
    def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        was = before.channel.id if before.channel is not None else None
        now = after.channel.id if after.channel is not None else None
        if was == now:
            return  # mute, deafen, stream…: not a join, leave or move
        action: Literal["join", "leave", "move"]
        if was is None:
            action, channel_id, from_channel_id = "join", now, None
        elif now is None:
            action, channel_id, from_channel_id = "leave", was, None
        else:
            action, channel_id, from_channel_id = "move", now, was
        self._send(
            events.Voice(
                action=action,
                guild_id=member.guild.id,
                user_id=member.id,
                channel_id=channel_id,
                from_channel_id=from_channel_id,
                guild_name=_name(member.guild),
                channel_name=_name(after.channel or before.channel),
                source=self._source,
            )
        )

    def _reaction(
        self, action: Literal["add", "remove"], payload: discord.RawReactionActionEvent
    ) -> None:
        self._send(
            events.Reaction(
                action=action,
                emoji=clip(str(payload.emoji), NAME_CHARS) or "?",
                guild_id=payload.guild_id,
                channel_id=payload.channel_id,
                message_id=payload.message_id,
                user_id=payload.user_id,
                guild_name=_name(
                    self.bot.get_guild(payload.guild_id) if payload.guild_id is not None else None
                ),
                channel_name=_name(self.bot.get_channel(payload.channel_id)),
                source=self._source,
            )
        )

    @_listener
    def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self._reaction("add", payload)

    @_listener
    def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        self._reaction("remove", payload)

    # --- gateway -----------------------------------------------------------------------

    def _gateway(self, action: str, shard_id: int | None) -> None:
        self._send(
            events.Lifecycle(
                action=f"gateway.{action}",
                detail=f"shard {shard_id}" if shard_id is not None else "",
                source=self._source,
            )
        )

    @_listener
    def on_connect(self) -> None:
        for chain in self._chains:
            chain.ensure()
        self._gateway("connect", self.bot.shard_id)

    @_listener
    def on_disconnect(self) -> None:
        self._gateway("disconnect", self.bot.shard_id)

    @_listener
    def on_resumed(self) -> None:
        self._gateway("resume", self.bot.shard_id)

    @_listener
    def on_ready(self) -> None:
        self._gateway("ready", self.bot.shard_id)

    @_listener
    def on_shard_connect(self, shard_id: int) -> None:
        for chain in self._chains:
            chain.ensure()
        self._gateway("connect", shard_id)

    @_listener
    def on_shard_disconnect(self, shard_id: int) -> None:
        self._gateway("disconnect", shard_id)

    @_listener
    def on_shard_resumed(self, shard_id: int) -> None:
        self._gateway("resume", shard_id)

    @_listener
    def on_shard_ready(self, shard_id: int) -> None:
        self._gateway("ready", shard_id)

    async def _sample_latency_forever(self) -> None:
        while True:
            await asyncio.sleep(self._latency_interval_s)
            try:
                self.sample_latency()
            except Exception as exc:
                self.internal_error(exc)

    def sample_latency(self) -> None:
        """Send one gateway latency sample per shard (``inf``/``nan`` before a heartbeat ack)."""
        bot = self.bot
        samples: list[tuple[int | None, float]]
        if isinstance(bot, discord.AutoShardedClient):
            samples = list(bot.latencies)
        else:
            samples = [(bot.shard_id, bot.latency)]
        for shard_id, seconds in samples:
            if math.isfinite(seconds):
                self.telemetry.latency(seconds * 1000.0, of="gateway", shard_id=shard_id)
