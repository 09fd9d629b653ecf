"""Loading and validating config.toml.

Every problem a user can cause (TOML syntax, unknown key, wrong type, bad channel id,
unset environment variable) becomes a ``ConfigError`` whose message is one line naming
the file, the key and the problem.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

CHANNELS: tuple[str, ...] = ("analytics", "diagnostics", "logs", "performance")
ChannelName = Literal["analytics", "diagnostics", "logs", "performance"]

# Route keys: event kinds, plus command.ok / command.failed since a command goes to
# analytics when it succeeds and to logs when it fails.
DEFAULT_ROUTES: dict[str, str] = {
    "message": "analytics",
    "command.ok": "analytics",
    "guild": "analytics",
    "member": "analytics",
    "voice": "analytics",
    "reaction": "analytics",
    "health": "diagnostics",
    "lifecycle": "diagnostics",
    "config": "diagnostics",
    "report": "diagnostics",
    "pipeline": "diagnostics",
    "log": "logs",
    "error": "logs",
    "command.failed": "logs",
    "alert": "logs",
    "system": "performance",
    "process": "performance",
    "latency": "performance",
    "metric": "performance",
}

Seconds = Annotated[float, Meta(gt=0, le=86400)]


class DiscordConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[discord]``: where REST calls go and how astra identifies itself."""

    api_base: str = "https://discord.com/api/v10"
    token: str = ""
    webhook_name: Annotated[str, Meta(min_length=1, max_length=80)] = "astra"
    username: Annotated[str, Meta(max_length=80)] = ""
    timeout: Seconds = 15.0
    channel_posts_per_minute: Annotated[int, Meta(ge=1, le=30)] = 30
    global_requests_per_second: Annotated[int, Meta(ge=1, le=50)] = 45


class ChannelConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[channels.<name>]``: a Discord channel id and/or a webhook URL."""

    id: int | str | None = None
    webhook: str = ""


class FlushConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[flush]``: batching cadence."""

    interval: Annotated[float, Meta(ge=0.1, le=3600)] = 30.0
    critical_delay: Annotated[float, Meta(ge=0, le=2)] = 1.0


class IngestConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[ingest]``: where the bot sends events."""

    http: str = "127.0.0.1:8787"
    udp: str = "127.0.0.1:8787"
    max_body_bytes: Annotated[int, Meta(ge=1024, le=64 * 1024 * 1024)] = 4 * 1024 * 1024
    max_events_per_request: Annotated[int, Meta(ge=1, le=1_000_000)] = 50_000
    udp_receive_buffer: Annotated[int, Meta(ge=65536, le=256 * 1024 * 1024)] = 8 * 1024 * 1024


class BufferConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[buffer]``: how much is held in memory while Discord is slow or down."""

    max_events: Annotated[int, Meta(ge=100, le=10_000_000)] = 200_000


class ShutdownConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[shutdown]``: how long SIGTERM/SIGINT may take to deliver what is pending."""

    deadline: Annotated[float, Meta(gt=0, le=600)] = 10.0


class ChannelsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[channels]``: the four channels; a missing one is previewed in the terminal."""

    analytics: ChannelConfig = msgspec.field(default_factory=ChannelConfig)
    diagnostics: ChannelConfig = msgspec.field(default_factory=ChannelConfig)
    logs: ChannelConfig = msgspec.field(default_factory=ChannelConfig)
    performance: ChannelConfig = msgspec.field(default_factory=ChannelConfig)


class RawConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The whole file as written."""

    discord: DiscordConfig = msgspec.field(default_factory=DiscordConfig)
    channels: ChannelsConfig = msgspec.field(default_factory=ChannelsConfig)
    flush: FlushConfig = msgspec.field(default_factory=FlushConfig)
    ingest: IngestConfig = msgspec.field(default_factory=IngestConfig)
    buffer: BufferConfig = msgspec.field(default_factory=BufferConfig)
    shutdown: ShutdownConfig = msgspec.field(default_factory=ShutdownConfig)
    routes: dict[str, str] = msgspec.field(default_factory=dict)


class WebhookRef(msgspec.Struct, frozen=True):
    """A webhook's id and token; the URL is rebuilt from ``api_base`` when posting."""

    id: int
    token: str


class Channel(msgspec.Struct, frozen=True, kw_only=True):
    """One resolved channel: how (and whether) it posts."""

    name: str
    channel_id: int | None
    webhook: WebhookRef | None
    can_provision: bool = False

    @property
    def mode(self) -> str:
        """``webhook``, ``provision`` (id + bot token) or ``preview`` (terminal only)."""
        if self.webhook is not None:
            return "webhook"
        return "provision" if self.can_provision else "preview"


class Config(msgspec.Struct, frozen=True, kw_only=True):
    """The validated configuration the sidecar runs with."""

    path: str
    discord: DiscordConfig
    channels: dict[str, Channel]
    flush: FlushConfig
    ingest: IngestConfig
    buffer: BufferConfig
    shutdown: ShutdownConfig
    routes: dict[str, str]

    def secrets(self) -> list[str]:
        """Every configured secret, verbatim, for the redactor."""
        found = [self.discord.token] if self.discord.token else []
        for channel in self.channels.values():
            if channel.webhook is not None:
                found.append(channel.webhook.token)
        return found


class ConfigError(Exception):
    """A configuration problem, with a one-line message for the user."""


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_WEBHOOK_PATH = re.compile(r"/webhooks/(\d{15,21})/([A-Za-z0-9._-]{8,200})/?$")


def default_path() -> str:
    """``$ASTRA_CONFIG`` when set, else ``./config.toml``."""
    return os.environ.get("ASTRA_CONFIG") or "config.toml"


def load(path: str | os.PathLike[str], environ: dict[str, str] | None = None) -> Config:
    """Read, interpolate and validate the config file at ``path``."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read: {exc}") from None
    return parse(text, name, os.environ if environ is None else environ)


def parse(text: str, name: str, environ: Any) -> Config:
    """Validate the TOML text of a config file (``name`` is used in messages)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: TOML syntax error: {exc}") from None
    data = _interpolate(data, environ, name, "")
    try:
        raw = msgspec.convert(data, RawConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{name}: {_explain(exc)}") from None
    return _resolve(raw, name)


def _interpolate(value: Any, environ: Any, name: str, key: str) -> Any:
    if isinstance(value, dict):
        return {
            k: _interpolate(v, environ, name, f"{key}.{k}" if key else k) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, environ, name, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            var, default = match.group(1), match.group(2)
            if var in environ and environ[var] != "":
                return str(environ[var])
            if default is not None:
                return default
            raise ConfigError(f"{name}: {key}: environment variable {var} is not set")

        return _ENV_REF.sub(substitute, value)
    return value


def _explain(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    message, _, path = text.partition(" - at `$")
    key = path.rstrip("`").lstrip(".")
    key = re.sub(r"\[\d+\]", "", key) if key.startswith("routes") else key
    unknown = re.match(r"Object contains unknown field `(.+)`", message)
    if unknown:
        full = f"{key}.{unknown.group(1)}" if key else unknown.group(1)
        return f"{full}: unknown key"
    return f"{key or 'config'}: {message[0].lower() + message[1:]}"


def _resolve(raw: RawConfig, name: str) -> Config:
    api_base = raw.discord.api_base.rstrip("/")
    parts = urlsplit(api_base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}: discord.api_base: expected an http(s) URL, got {api_base!r}")
    if not re.search(r"/api/v\d+$", parts.path):
        raise ConfigError(
            f"{name}: discord.api_base: must end with a versioned API path like /api/v10"
        )
    if raw.discord.username and (
        re.search(r"(?i)clyde|discord", raw.discord.username)
        or raw.discord.username.lower() in ("everyone", "here")
    ):
        raise ConfigError(
            f"{name}: discord.username: Discord refuses names containing 'clyde' or 'discord'"
        )
    _parse_address(raw.ingest.http, f"{name}: ingest.http")
    _parse_address(raw.ingest.udp, f"{name}: ingest.udp")

    channels: dict[str, Channel] = {}
    for channel_name in CHANNELS:
        cfg: ChannelConfig = getattr(raw.channels, channel_name)
        key = f"channels.{channel_name}"
        channel_id = _channel_id(cfg.id, f"{name}: {key}.id")
        webhook = _webhook(cfg.webhook, f"{name}: {key}.webhook") if cfg.webhook else None
        channels[channel_name] = Channel(
            name=channel_name,
            channel_id=channel_id,
            webhook=webhook,
            can_provision=bool(raw.discord.token) and channel_id is not None,
        )

    routes = dict(DEFAULT_ROUTES)
    for route_key, target in raw.routes.items():
        if route_key not in DEFAULT_ROUTES:
            known = ", ".join(sorted(DEFAULT_ROUTES))
            raise ConfigError(f"{name}: routes.{route_key}: unknown event kind (known: {known})")
        if target not in CHANNELS:
            raise ConfigError(
                f"{name}: routes.{route_key}: unknown channel {target!r} "
                f"(one of {', '.join(CHANNELS)})"
            )
        routes[route_key] = target

    discord_cfg = msgspec.structs.replace(raw.discord, api_base=api_base)
    return Config(
        path=name,
        discord=discord_cfg,
        channels=channels,
        flush=raw.flush,
        ingest=raw.ingest,
        buffer=raw.buffer,
        shutdown=raw.shutdown,
        routes=routes,
    )


def _channel_id(value: int | str | None, where: str) -> int | None:
    if value is None or value == "":
        return None
    text = str(value)
    # Snowflakes are 17-20 digit integers (ids from 2015 on are at least 17 digits).
    if not text.isdigit() or not 17 <= len(text) <= 20 or int(text) >= 2**64:
        raise ConfigError(f"{where}: not a Discord channel id (17-20 digits): {text!r}")
    return int(text)


def _webhook(url: str, where: str) -> WebhookRef:
    parts = urlsplit(url)
    match = _WEBHOOK_PATH.search(parts.path)
    if parts.scheme not in ("http", "https") or not parts.netloc or match is None:
        # The URL is a secret: never echo it back.
        raise ConfigError(
            f"{where}: not a webhook URL (expected https://discord.com/api/webhooks/<id>/<token>)"
        )
    return WebhookRef(id=int(match.group(1)), token=match.group(2))


def _parse_address(value: str, where: str) -> tuple[str, int] | None:
    if value in ("", "off"):
        return None
    return parse_address(value, where)


def parse_address(value: str, where: str) -> tuple[str, int]:
    """Parse ``host:port`` (``[::1]:port`` for IPv6); raises ``ConfigError`` naming ``where``."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{where}: expected host:port, got {value!r}")
    return host, int(port)
