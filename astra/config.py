"""Loading and validating config.toml.

Every problem a user can cause (TOML syntax, unknown key, wrong type, bad channel id,
unset environment variable) becomes a ``ConfigError`` whose message is one line naming
the file, the key and the problem.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import ssl
import string
import tomllib
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

import msgspec
from msgspec import Meta

from astra.errors import ConfigError as ConfigError  # re-exported

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
    "file": "performance",
    "performance": "performance",
    "digest": "performance",
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
    # Window posts buzz followers only when true; alert posts always notify.
    notify: bool = False
    # Post into this thread of the channel instead of the channel itself.
    thread_id: int | str | None = None
    # The channel is a forum: one thread a day, named after ``thread_name``.
    forum: bool = False
    thread_name: str = ""


class FlushConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[flush]``: batching cadence."""

    interval: Annotated[float, Meta(ge=0.1, le=3600)] = 30.0
    critical_delay: Annotated[float, Meta(ge=0, le=2)] = 1.0
    # Early windows for critical events per channel and minute; beyond it they wait for
    # the regular window, so a flood of critical events cannot spend Discord's budget.
    critical_per_minute: Annotated[int, Meta(ge=0, le=20)] = 6


class IngestConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[ingest]``: where the bot sends events, and who may."""

    http: str = "127.0.0.1:8787"
    udp: str = "127.0.0.1:8787"
    max_body_bytes: Annotated[int, Meta(ge=1024, le=64 * 1024 * 1024)] = 4 * 1024 * 1024
    max_events_per_request: Annotated[int, Meta(ge=1, le=1_000_000)] = 50_000
    udp_receive_buffer: Annotated[int, Meta(ge=65536, le=256 * 1024 * 1024)] = 16 * 1024 * 1024
    # A secret: HTTP posts need "Authorization: Bearer <token>", datagrams an HMAC of it.
    token: str = ""
    # With a token, still accept unsigned datagrams (signed ones are checked all the same).
    udp_unauthenticated: bool = False
    # HTTP: seconds for a connection's request head, for a request's body, and idle
    # keep-alive connections; open connections at most (clamped to the fd limit).
    header_timeout: Annotated[float, Meta(gt=0, le=600)] = 10.0
    body_timeout: Annotated[float, Meta(gt=0, le=3600)] = 30.0
    keepalive_timeout: Annotated[float, Meta(gt=0, le=3600)] = 15.0
    max_connections: Annotated[int, Meta(ge=1, le=1_000_000)] = 256
    # HTTPS: PEM certificate (chain) and private key files, both or neither.
    tls_cert: str = ""
    tls_key: str = ""


class BufferConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[buffer]``: how much is held in memory while Discord is slow or down."""

    max_events: Annotated[int, Meta(ge=100, le=10_000_000)] = 200_000
    # Events differ in size (a 64 KB traceback is not a 100-byte metric): bytes as received.
    max_bytes: Annotated[int, Meta(ge=1024 * 1024, le=16 * 1024**3)] = 128 * 1024 * 1024


class RecoveryConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[recovery]``: how much of today's history ``astra run`` reads back at start."""

    enabled: bool = True
    # A day of four channels at two posts a minute each is 11,520 posts.
    max_messages: Annotated[int, Meta(ge=1, le=1_000_000)] = 20_000
    max_bytes: Annotated[int, Meta(ge=1024 * 1024, le=64 * 1024**3)] = 512 * 1024 * 1024


class ShutdownConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[shutdown]``: how long SIGTERM/SIGINT may take to deliver what is pending."""

    deadline: Annotated[float, Meta(gt=0, le=600)] = 10.0


Interval = Annotated[float, Meta(ge=0.05, le=86400)]
Percent = Annotated[float, Meta(gt=0, le=100)]
Positive = Annotated[float, Meta(gt=0)]


class ScheduledConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What every scheduled collector's table has: a switch and its interval (seconds)."""

    enabled: bool = True
    interval: Interval = 60.0


class SystemCollectorConfig(ScheduledConfig):
    """``[collectors.system]``: host CPU, load, memory, disks, network, uptime."""

    interval: Interval = 120.0
    # Mount points to report; empty means every local disk partition (one per device).
    mounts: list[str] = msgspec.field(default_factory=list)


class ProcessCollectorConfig(ScheduledConfig):
    """``[collectors.process]``: astra itself and every ``[[watch.process]]``."""

    interval: Interval = 60.0


class FilesCollectorConfig(ScheduledConfig):
    """``[collectors.files]``: size and growth of every ``[[watch.file]]``."""

    interval: Interval = 300.0


class PerformanceCollectorConfig(ScheduledConfig):
    """``[collectors.performance]``: pipeline figures and client latency percentiles."""

    interval: Interval = 60.0


class ErrorsCollectorConfig(ScheduledConfig):
    """``[collectors.errors]``: threshold checks against ``[alerts]``."""

    interval: Interval = 90.0


class HealthCollectorConfig(ScheduledConfig):
    """``[collectors.health]``: health score, reasons, recommendations, components."""

    interval: Interval = 180.0


class DigestCollectorConfig(ScheduledConfig):
    """``[collectors.digest]``: the performance digest with charts (hourly by default)."""

    # Each digest charts its interval in BUCKETS (12) buckets: five minutes for an hour.
    interval: Annotated[float, Meta(ge=1, le=86400)] = 3600.0


class ReportConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[collectors.report]``: the daily report's local time and time zone."""

    enabled: bool = True
    time: str = "23:00"
    timezone: str = "Europe/Berlin"


class CollectorsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[collectors]``: one table per collector, each with ``enabled`` and its schedule."""

    system: SystemCollectorConfig = msgspec.field(default_factory=SystemCollectorConfig)
    process: ProcessCollectorConfig = msgspec.field(default_factory=ProcessCollectorConfig)
    files: FilesCollectorConfig = msgspec.field(default_factory=FilesCollectorConfig)
    performance: PerformanceCollectorConfig = msgspec.field(
        default_factory=PerformanceCollectorConfig
    )
    errors: ErrorsCollectorConfig = msgspec.field(default_factory=ErrorsCollectorConfig)
    health: HealthCollectorConfig = msgspec.field(default_factory=HealthCollectorConfig)
    report: ReportConfig = msgspec.field(default_factory=ReportConfig)
    digest: DigestCollectorConfig = msgspec.field(default_factory=DigestCollectorConfig)


class AlertsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[alerts]``: thresholds of the errors collector, and how often an alert may repeat."""

    cooldown: Seconds = 300.0
    cpu_percent: Percent = 90.0
    memory_percent: Percent = 90.0
    disk_percent: Percent = 90.0
    gateway_latency_ms: Positive = 1000.0
    command_p95_ms: Positive = 2000.0
    command_error_rate_percent: Percent = 1.0
    process_rss_mib: Positive = 1024.0
    file_growth_mib_per_day: Positive = 1024.0
    # Who a critical alert pings (opt-in): a role id and/or user ids.
    mention_role: int | str | None = None
    mention_users: list[int | str] = msgspec.field(default_factory=list)


class HeartbeatConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[heartbeat]``: a URL called every ``interval`` seconds while the pipeline is healthy."""

    # A secret (push URLs carry their token): never logged.
    url: str = ""
    interval: Annotated[float, Meta(ge=1, le=86400)] = 60.0
    timeout: Annotated[float, Meta(gt=0, le=300)] = 10.0


class StatusBoardConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[status_board]``: one message in #diagnostics, edited at every health run."""

    enabled: bool = True


class WatchProcess(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[[watch.process]]``: a process found by ``pid``, ``pid_file`` or ``pattern``."""

    name: Annotated[str, Meta(min_length=1, max_length=100)]
    pid: Annotated[int, Meta(ge=1)] | None = None
    pid_file: str = ""
    # A regular expression searched in the command line (arguments joined by spaces).
    pattern: str = ""
    rss_limit_mib: Positive | None = None


class WatchFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[[watch.file]]``: a file whose size and growth are reported (read-only)."""

    path: Annotated[str, Meta(min_length=1)]
    name: str = ""
    growth_limit_mib_per_day: Positive | None = None


class WatchConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[watch]``: the processes and files the collectors look after."""

    process: list[WatchProcess] = msgspec.field(default_factory=list)
    file: list[WatchFile] = msgspec.field(default_factory=list)


class FleetConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[fleet]``: many sidecars, one set of channels, through Redis Streams."""

    # redis:// or rediss:// (TLS); its password is a secret. No ?options: astra sets them.
    redis: str = ""
    # With rediss://: a PEM file of CA certificate(s) trusted for Redis's certificate, in
    # addition to the system's trusted CAs (for a private CA).
    tls_ca: str = ""
    # This member's name in the posts; the host name when empty.
    name: Annotated[str, Meta(max_length=100)] = ""
    # Seconds the poster's lease lives without renewal: a dead poster is replaced within it.
    lease: Annotated[float, Meta(gt=0, le=3600)] = 10.0
    # Seconds without a word from a member before it is reported silent (critical alert).
    silent_after: Annotated[float, Meta(gt=0, le=86400)] = 120.0
    # Seconds of unreachable Redis after which a member posts directly (degraded).
    fallback_after: Annotated[float, Meta(gt=0, le=86400)] = 60.0
    # Stream entries kept in Redis (approximately, MAXLEN ~); an entry is a batch of events.
    max_stream_len: Annotated[int, Meta(ge=100, le=100_000_000)] = 100_000
    # Prefix of every Redis key astra uses: two fleets can share one Redis.
    key_prefix: Annotated[str, Meta(min_length=1, max_length=64)] = "astra"


class ChannelsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[channels]``: the four channels; a missing one is previewed in the terminal."""

    analytics: ChannelConfig = msgspec.field(default_factory=ChannelConfig)
    diagnostics: ChannelConfig = msgspec.field(default_factory=ChannelConfig)
    logs: ChannelConfig = msgspec.field(default_factory=ChannelConfig)
    performance: ChannelConfig = msgspec.field(default_factory=ChannelConfig)


class ControlConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[control]``: the token the bot's ``/astra`` commands use (mute, health, errors)."""

    # A secret, distinct from ingest.token: sending events must not allow muting alerts.
    token: str = ""


class RawConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The whole file as written."""

    discord: DiscordConfig = msgspec.field(default_factory=DiscordConfig)
    channels: ChannelsConfig = msgspec.field(default_factory=ChannelsConfig)
    flush: FlushConfig = msgspec.field(default_factory=FlushConfig)
    ingest: IngestConfig = msgspec.field(default_factory=IngestConfig)
    buffer: BufferConfig = msgspec.field(default_factory=BufferConfig)
    shutdown: ShutdownConfig = msgspec.field(default_factory=ShutdownConfig)
    routes: dict[str, str] = msgspec.field(default_factory=dict)
    collectors: CollectorsConfig = msgspec.field(default_factory=CollectorsConfig)
    alerts: AlertsConfig = msgspec.field(default_factory=AlertsConfig)
    watch: WatchConfig = msgspec.field(default_factory=WatchConfig)
    control: ControlConfig = msgspec.field(default_factory=ControlConfig)
    fleet: FleetConfig | None = None
    heartbeat: HeartbeatConfig = msgspec.field(default_factory=HeartbeatConfig)
    status_board: StatusBoardConfig = msgspec.field(default_factory=StatusBoardConfig)
    recovery: RecoveryConfig = msgspec.field(default_factory=RecoveryConfig)


class WebhookRef(msgspec.Struct, frozen=True):
    """A webhook's id and token; the URL is rebuilt from ``api_base`` when posting."""

    id: int
    token: str


DEFAULT_THREAD_NAME = "{date} {channel}"
THREAD_NAME_MAX = 100


class Channel(msgspec.Struct, frozen=True, kw_only=True):
    """One resolved channel: how (and whether) it posts."""

    name: str
    channel_id: int | None
    webhook: WebhookRef | None
    can_provision: bool = False
    notify: bool = False
    thread_id: int | None = None
    forum: bool = False
    thread_name: str = DEFAULT_THREAD_NAME

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
    collectors: CollectorsConfig = msgspec.field(default_factory=CollectorsConfig)
    alerts: AlertsConfig = msgspec.field(default_factory=AlertsConfig)
    watch: WatchConfig = msgspec.field(default_factory=WatchConfig)
    control: ControlConfig = msgspec.field(default_factory=ControlConfig)
    fleet: FleetConfig | None = None
    heartbeat: HeartbeatConfig = msgspec.field(default_factory=HeartbeatConfig)
    status_board: StatusBoardConfig = msgspec.field(default_factory=StatusBoardConfig)
    recovery: RecoveryConfig = msgspec.field(default_factory=RecoveryConfig)

    def secrets(self) -> list[str]:
        """Every configured secret, verbatim, for the redactor."""
        found = [self.discord.token] if self.discord.token else []
        for channel in self.channels.values():
            if channel.webhook is not None:
                found.append(channel.webhook.token)
        if self.ingest.token:
            found.append(self.ingest.token)
        if self.control.token:
            found.append(self.control.token)
        if self.fleet is not None:
            found += redis_secrets(self.fleet.redis)
        if self.heartbeat.url:
            found.append(self.heartbeat.url)
        return found


# A default stops at the next brace: an unclosed ``${A:-`` costs a scan to the next ``{``
# only, so a value full of them is still read in linear time.
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^{}]*+))?\}")
_WEBHOOK_PATH = re.compile(r"/webhooks/(\d{15,21})/([A-Za-z0-9._-]{8,200})/?$")


def default_path() -> str:
    """``$ASTRA_CONFIG`` when set, else ``./config.toml``."""
    return os.environ.get("ASTRA_CONFIG") or "config.toml"


def load(path: str | os.PathLike[str], environ: dict[str, str] | None = None) -> Config:
    """Read, interpolate and validate the config file at ``path``.

    Raises ``ConfigError`` when the file cannot be read or its content is not a valid
    configuration (see ``parse``).
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read: {exc}") from None
    return parse(text, name, os.environ if environ is None else environ)


def parse(text: str, name: str, environ: Any) -> Config:
    """Validate the TOML text of a config file (``name`` is used in messages).

    Raises ``ConfigError`` for a TOML syntax error, an unknown key, a wrong type or value,
    or an unset environment variable, naming the key.
    """
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
    version = re.search(r"/api/v(\d+)$", parts.path)
    if version is None or int(version.group(1)) < 8:
        # Before v8, retry_after is in milliseconds: waits would be a thousand times too long.
        raise ConfigError(
            f"{name}: discord.api_base: must end with API version 8 or later, like /api/v10"
        )
    if raw.discord.username:
        _check_display_name(raw.discord.username, f"{name}: discord.username")
    _check_display_name(raw.discord.webhook_name, f"{name}: discord.webhook_name")
    _check_ingest(raw.ingest, name)

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
            notify=cfg.notify,
            thread_id=_snowflake(cfg.thread_id, f"{name}: {key}.thread_id", "thread"),
            forum=cfg.forum,
            thread_name=_thread_name(cfg, f"{name}: {key}"),
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
    _check_collectors(raw, name)
    _check_control(raw, name)
    _check_board_options(raw, name)

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
        collectors=raw.collectors,
        alerts=raw.alerts,
        watch=raw.watch,
        control=raw.control,
        fleet=_check_fleet(raw.fleet, name),
        heartbeat=raw.heartbeat,
        status_board=raw.status_board,
        recovery=raw.recovery,
    )


_TOKEN = re.compile(r"[!-~]{16,}")


def _check_ingest(ingest: IngestConfig, name: str) -> None:
    _parse_address(ingest.http, f"{name}: ingest.http")
    _parse_address(ingest.udp, f"{name}: ingest.udp")
    # The token is a secret: no message here may quote it.
    if ingest.token and not _TOKEN.fullmatch(ingest.token):
        raise ConfigError(
            f"{name}: ingest.token: use at least 16 printable ASCII characters without "
            "spaces (for example the output of `openssl rand -hex 32`)"
        )
    if bool(ingest.tls_cert) != bool(ingest.tls_key):
        missing = "ingest.tls_key" if ingest.tls_cert else "ingest.tls_cert"
        raise ConfigError(
            f"{name}: {missing}: not set; ingest.tls_cert and ingest.tls_key go together "
            "(both or neither)"
        )
    if ingest.tls_cert:
        server_tls_context(ingest, name)


def _check_control(raw: RawConfig, name: str) -> None:
    # The token is a secret: no message here may quote it.
    token = raw.control.token
    if token and not _TOKEN.fullmatch(token):
        raise ConfigError(
            f"{name}: control.token: use at least 16 printable ASCII characters without "
            "spaces (for example the output of `openssl rand -hex 32`)"
        )
    if token and token == raw.ingest.token:
        raise ConfigError(
            f"{name}: control.token: must differ from ingest.token (whoever may send events "
            "must not be able to mute alerts)"
        )
    if token and raw.ingest.http in ("", "off"):
        raise ConfigError(
            f"{name}: control.token: the control endpoint is served on ingest.http, "
            "which is off (set ingest.http)"
        )


def _no_password() -> bytes:
    # Without a callback OpenSSL would ask for an encrypted key's password on the terminal.
    return b""


def server_tls_context(ingest: IngestConfig, name: str = "") -> ssl.SSLContext | None:
    """The HTTPS ingest's TLS context (None without ``tls_cert``).

    Files are read relative to the working directory. Raises ``ConfigError`` naming the key
    when a certificate or key file is missing, unreadable or not usable.
    """
    if not ingest.tls_cert:
        return None
    prefix = f"{name}: " if name else ""
    cert, key = ingest.tls_cert, ingest.tls_key
    for field, path, marker, what in (
        ("ingest.tls_cert", cert, b"CERTIFICATE-----", "certificate"),
        ("ingest.tls_key", key, b"PRIVATE KEY-----", "private key"),
    ):
        try:
            pem = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"{prefix}{field}: cannot read {path}: {exc.strerror or exc}"
            ) from None
        if b"-----BEGIN " not in pem or marker not in pem:
            raise ConfigError(f"{prefix}{field}: {path}: no PEM {what} in it")
        if field == "ingest.tls_key" and b"ENCRYPTED" in pem:
            raise ConfigError(
                f"{prefix}{field}: {path}: the key is encrypted; astra needs it unencrypted "
                "(readable by astra only)"
            )
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cafile=cert)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(
            f"{prefix}ingest.tls_cert: {cert}: not a valid PEM certificate ({_ssl_reason(exc)})"
        ) from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except (ssl.SSLError, ValueError) as exc:
        why = (
            "it does not match the certificate in ingest.tls_cert"
            if "KEY_VALUES_MISMATCH" in _ssl_reason(exc)
            else f"not a valid PEM private key ({_ssl_reason(exc)})"
        )
        raise ConfigError(f"{prefix}ingest.tls_key: {key}: {why}") from None
    return context


def _check_ca_file(path: str, field: str, name: str) -> None:
    """Raise ``ConfigError`` naming ``field`` unless ``path`` holds PEM CA certificates."""
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: {field}: cannot read {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise ConfigError(f"{name}: {field}: {path}: no PEM certificate in it")
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(
            f"{name}: {field}: {path}: not a valid PEM certificate ({_ssl_reason(exc)})"
        ) from None


def _ssl_reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    # Anchored after a non-space: one try per run of spaces, not one per space.
    return re.sub(r"(?<!\s)\s*\(_ssl\.c:\d+\)", "", text)


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name other than localhost may resolve to anything
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def ingest_warnings(config: Config) -> list[str]:
    """Exposure problems of the ingest worth a warning (``astra check`` and ``astra run``)."""
    ingest = config.ingest
    warnings: list[str] = []
    for key, value in (("ingest.http", ingest.http), ("ingest.udp", ingest.udp)):
        address = _parse_address(value, key)
        if address is None or _is_loopback(address[0]):
            continue
        if not ingest.token:
            warnings.append(
                f"{key} listens on {value}, beyond loopback, without ingest.token: anyone "
                "who can reach it can send events (set ingest.token; see README, Security)"
            )
        elif key == "ingest.udp" and ingest.udp_unauthenticated:
            warnings.append(
                f"ingest.udp listens on {value}, beyond loopback, with "
                "ingest.udp_unauthenticated = true: anyone who can reach it can send events"
            )
        elif key == "ingest.http" and not ingest.tls_cert:
            warnings.append(
                f"ingest.http listens on {value}, beyond loopback, without TLS: the bearer "
                "token crosses the network in clear text (set ingest.tls_cert and "
                "ingest.tls_key, or keep the network private)"
            )
    http = _parse_address(ingest.http, "ingest.http")
    if config.control.token and http and not _is_loopback(http[0]) and not ingest.tls_cert:
        warnings.append(
            f"ingest.http listens on {ingest.http}, beyond loopback, without TLS: the control "
            "token (who may mute alerts) crosses the network in clear text (set "
            "ingest.tls_cert and ingest.tls_key, or keep the network private)"
        )
    return warnings


_CLOCK_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def _check_collectors(raw: RawConfig, name: str) -> None:
    report = raw.collectors.report
    if not _CLOCK_TIME.fullmatch(report.time):
        raise ConfigError(
            f"{name}: collectors.report.time: expected a local time as HH:MM, got {report.time!r}"
        )
    try:
        zoneinfo.ZoneInfo(report.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{name}: collectors.report.timezone: unknown time zone {report.timezone!r} "
            "(an IANA name like Europe/Berlin)"
        ) from None
    seen: set[str] = set()
    for index, proc in enumerate(raw.watch.process):
        where = f"{name}: watch.process[{index}]"
        ways = sum((proc.pid is not None, bool(proc.pid_file), bool(proc.pattern)))
        if ways != 1:
            raise ConfigError(f"{where}: give exactly one of pid, pid_file or pattern")
        if proc.pattern:
            try:
                re.compile(proc.pattern)
            except re.error as exc:
                raise ConfigError(f"{where}.pattern: not a regular expression: {exc}") from None
        if proc.name in seen or proc.name == "astra":
            raise ConfigError(f"{where}.name: {proc.name!r} is already used")
        seen.add(proc.name)
    seen.clear()
    for index, watched in enumerate(raw.watch.file):
        label = watched.name or Path(watched.path).name
        if label in seen:
            raise ConfigError(f"{name}: watch.file[{index}].name: {label!r} is already used")
        seen.add(label)


def _check_display_name(value: str, where: str) -> None:
    """Names Discord refuses for webhooks and username overrides (checked before any post)."""
    stripped = value.strip()
    if not stripped:
        raise ConfigError(f"{where}: must not be blank")
    if re.search(r"(?i)clyde|discord", stripped) or stripped.lower() in ("everyone", "here"):
        raise ConfigError(f"{where}: Discord refuses names containing 'clyde' or 'discord'")
    if re.search(r"[@#:]|```", stripped):
        raise ConfigError(f"{where}: Discord refuses names containing @, #, : or ```")


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


def redis_secrets(url: str) -> list[str]:
    """The password (and user) of a Redis URL, as written and percent-decoded."""
    parts = urlsplit(url)
    found: list[str] = []
    for value in (parts.password, parts.username if parts.password else None):
        if value:
            found += [value, unquote(value)]
    return list(dict.fromkeys(found))


def _check_fleet(fleet: FleetConfig | None, name: str) -> FleetConfig | None:
    """Validate ``[fleet]`` and fill in the member name; None when there is no table."""
    if fleet is None:
        return None
    if not fleet.redis:
        raise ConfigError(f"{name}: fleet.redis: not set; write redis://host:6379/0")
    # The URL holds the password: no message here may quote it.
    try:
        parts = urlsplit(fleet.redis)
        _ = parts.port  # a port out of range raises here
        path = parts.path.strip("/")
    except ValueError:
        raise ConfigError(f"{name}: fleet.redis: not a valid URL") from None
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigError(
            f"{name}: fleet.redis: use a redis:// or rediss:// (TLS) URL, not {parts.scheme!r}"
        )
    if not parts.hostname:
        raise ConfigError(f"{name}: fleet.redis: no host in the URL")
    if path and not path.isdigit():
        raise ConfigError(f"{name}: fleet.redis: the path must be a database number like /0")
    if parts.query:
        # redis-py would take any ?name=value as a connection setting: a password outside
        # the redacted user info, verification turned off, astra's deadlines overridden.
        raise ConfigError(
            f"{name}: fleet.redis: no ?options in the URL; astra sets the connection "
            "options itself (for a private CA, set fleet.tls_ca)"
        )
    if fleet.tls_ca:
        if parts.scheme != "rediss":
            raise ConfigError(f"{name}: fleet.tls_ca: only with a rediss:// (TLS) URL")
        _check_ca_file(fleet.tls_ca, "fleet.tls_ca", name)
    member = fleet.name or socket.gethostname()
    if not 1 <= len(member) <= 100 or any(ord(c) < 32 or ord(c) == 127 for c in member):
        raise ConfigError(f"{name}: fleet.name: 1 to 100 characters without control characters")
    return msgspec.structs.replace(fleet, name=member)


def _snowflake(value: int | str | None, where: str, what: str) -> int | None:
    """A Discord id (17-20 digits) or None; ``ConfigError`` naming ``where`` otherwise."""
    if value is None or value == "":
        return None
    text = str(value)
    if not text.isdigit() or not 17 <= len(text) <= 20 or int(text) >= 2**64:
        raise ConfigError(f"{where}: not a Discord {what} id (17-20 digits): {text!r}")
    return int(text)


def thread_title(pattern: str, date: str, channel: str) -> str:
    """A forum thread's name from ``thread_name`` (validated by ``load``)."""
    return pattern.format(date=date, channel=channel).strip()


def _thread_name(cfg: ChannelConfig, where: str) -> str:
    """The forum thread name pattern: only with ``forum``, only ``{date}`` and ``{channel}``."""
    if cfg.forum and cfg.thread_id not in (None, ""):
        raise ConfigError(
            f"{where}.thread_id: forum = true and thread_id exclude each other (a forum gets "
            "one thread a day; thread_id posts into one existing thread)"
        )
    if cfg.thread_name and not cfg.forum:
        raise ConfigError(f"{where}.thread_name: only used with forum = true")
    pattern = cfg.thread_name or DEFAULT_THREAD_NAME
    try:
        fields = [f for _, f, spec, _ in string.Formatter().parse(pattern) if f is not None]
        sample = thread_title(pattern, "2026-12-31", "performance")
    except (ValueError, KeyError, IndexError):
        fields, sample = ["?"], ""
    for field in fields:
        if field not in ("date", "channel"):
            raise ConfigError(
                f"{where}.thread_name: {pattern!r}: use only the placeholders {{date}} and "
                "{channel} (write {{ and }} for a brace)"
            )
    if not sample.strip() or len(sample) > THREAD_NAME_MAX:
        raise ConfigError(
            f"{where}.thread_name: must give a name of 1 to {THREAD_NAME_MAX} characters"
        )
    return pattern


def _check_board_options(raw: RawConfig, name: str) -> None:
    """``[alerts]`` mention ids and the ``[heartbeat]`` URL (never quoted: it is a secret)."""
    _snowflake(raw.alerts.mention_role, f"{name}: alerts.mention_role", "role")
    for index, user in enumerate(raw.alerts.mention_users):
        if _snowflake(user, f"{name}: alerts.mention_users[{index}]", "user") is None:
            raise ConfigError(f"{name}: alerts.mention_users[{index}]: empty user id")
    if len(raw.alerts.mention_users) > 100:
        raise ConfigError(f"{name}: alerts.mention_users: at most 100 users (Discord's limit)")
    url = raw.heartbeat.url
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in url:
            raise ConfigError(
                f"{name}: heartbeat.url: not an http(s) URL (the value is not shown: it is a "
                "secret)"
            )


def mention_ids(alerts: AlertsConfig) -> tuple[list[str], list[str]]:
    """The role ids and user ids ``[alerts]`` pings, as strings (validated by ``load``)."""
    roles = [] if alerts.mention_role in (None, "") else [str(alerts.mention_role)]
    return roles, [str(u) for u in alerts.mention_users]


def history_gaps(config: Config, channels: list[str]) -> list[str]:
    """What is missing to read ``channels`` back (a bot token, channel ids), as config keys."""
    missing = [] if config.discord.token else ["discord.token"]
    missing += [
        f"channels.{name}.id" for name in channels if config.channels[name].channel_id is None
    ]
    return missing
