"""The event schema: the one contract between collectors, the bus and the sinks.

Every event is a frozen ``msgspec.Struct`` tagged on ``kind``. The same types decode the
sidecar's ingest (HTTP and UDP) and encode what ``astra.client`` sends, so the wire format
is defined here once.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta
from msgspec.structs import force_setattr

Text = Annotated[str, Meta(max_length=4000)]
LongText = Annotated[str, Meta(max_length=65536)]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
Snowflake = Annotated[int, Meta(ge=0)]
# A guild or channel name as Discord allows it (guilds 2-100, channels 1-100 characters).
ShortName = Annotated[str, Meta(max_length=100)]
NonNegative = Annotated[float, Meta(ge=0)]
Count = Annotated[int, Meta(ge=0)]
TagValue = Annotated[str, Meta(max_length=1000)] | int | float | bool
Tags = Annotated[dict[Annotated[str, Meta(max_length=100)], TagValue], Meta(max_length=64)]
# Unix seconds up to the year ~71,700: far enough, and inside every datetime conversion.
MAX_TS = float(2**41)

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
Severity = Literal["warning", "error", "critical"]

# Ids are unique per process run and cheap to make: a random prefix and a counter.
_ID_PREFIX = os.urandom(5).hex()
_id_counter = itertools.count(1)


def run_id() -> str:
    """This process run's id: ten hex digits, in attachment names and its own events' ids."""
    return _ID_PREFIX


def new_event_id() -> str:
    """Return a fresh event id, unique within this process and practically across runs."""
    return f"{_ID_PREFIX}-{next(_id_counter):x}"


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """Fields common to every event.

    ``id`` is kept end to end (assigned when absent), ``ts`` accepts unix seconds or an
    RFC 3339 string and is stored as unix seconds, ``seq`` is stamped by the bus, ``host``
    by a fleet member before it publishes.
    """

    id: Annotated[str, Meta(max_length=128)] = ""
    ts: Annotated[float, Meta(ge=0, le=MAX_TS)] | datetime = 0.0
    source: Annotated[str, Meta(max_length=200)] = ""
    seq: Count = 0
    # Fleet mode: the member (sidecar) whose bus stamped it; "" on a single sidecar.
    host: Annotated[str, Meta(max_length=200)] = ""

    def __post_init__(self) -> None:
        # Frozen for everyone downstream; normalising here happens before anyone holds it.
        if not self.id:
            force_setattr(self, "id", new_event_id())
        ts = self.ts
        if isinstance(ts, datetime):
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=UTC)
            seconds = ts.timestamp()
            if not 0 <= seconds <= MAX_TS:
                # msgspec reports this as a validation error on the event.
                raise ValueError("ts: must be between 1970 and the year 71,700")
            force_setattr(self, "ts", seconds)
        elif ts == 0:
            force_setattr(self, "ts", time.time())

    @property
    def time(self) -> float:
        """Event time as unix seconds (``ts`` after normalisation)."""
        ts = self.ts
        return ts.timestamp() if isinstance(ts, datetime) else ts


# --- what a bot reports -----------------------------------------------------------------


class Message(Event, tag="message", frozen=True):
    """A message the bot saw. ``content`` only when the operator opted in."""

    guild_id: Snowflake | None = None
    channel_id: Snowflake | None = None
    author_id: Snowflake | None = None
    bot: bool = False
    length: Count = 0
    attachments: Count = 0
    embeds: Count = 0
    content: Text | None = None
    guild_name: ShortName | None = None
    channel_name: ShortName | None = None


class Command(Event, tag="command", frozen=True):
    """A prefix, slash or context-menu command that completed (``ok``) or failed."""

    name: Name
    ok: bool = True
    command_type: Literal["prefix", "slash", "context", "other"] = "prefix"
    duration_ms: NonNegative | None = None
    error: Text | None = None
    error_type: Annotated[str, Meta(max_length=200)] | None = None
    traceback: LongText | None = None
    guild_id: Snowflake | None = None
    channel_id: Snowflake | None = None
    user_id: Snowflake | None = None
    guild_name: ShortName | None = None
    channel_name: ShortName | None = None


class Guild(Event, tag="guild", frozen=True):
    """The bot joined or left a guild."""

    action: Literal["join", "leave"]
    guild_id: Snowflake
    name: Annotated[str, Meta(max_length=200)] | None = None
    member_count: Count | None = None


class Member(Event, tag="member", frozen=True):
    """A member joined or left a guild."""

    action: Literal["join", "leave"]
    guild_id: Snowflake
    user_id: Snowflake
    bot: bool = False
    guild_name: ShortName | None = None


class Voice(Event, tag="voice", frozen=True):
    """A voice state change: joined, left or moved between voice channels."""

    action: Literal["join", "leave", "move"]
    guild_id: Snowflake
    user_id: Snowflake
    channel_id: Snowflake | None = None
    from_channel_id: Snowflake | None = None
    guild_name: ShortName | None = None
    channel_name: ShortName | None = None


class Reaction(Event, tag="reaction", frozen=True):
    """A reaction added to or removed from a message."""

    action: Literal["add", "remove"]
    emoji: Annotated[str, Meta(max_length=200)]
    guild_id: Snowflake | None = None
    channel_id: Snowflake | None = None
    message_id: Snowflake | None = None
    user_id: Snowflake | None = None
    guild_name: ShortName | None = None
    channel_name: ShortName | None = None


class Log(Event, tag="log", frozen=True):
    """A log record."""

    level: LogLevel
    message: LongText
    logger: Annotated[str, Meta(max_length=200)] = ""


class Error(Event, tag="error", frozen=True):
    """An exception or error report; ``type`` is the exception class name."""

    message: LongText
    severity: Severity = "error"
    type: Annotated[str, Meta(max_length=200)] = ""
    traceback: LongText | None = None


class Metric(Event, tag="metric", frozen=True):
    """A named measurement: counter increment, gauge reading or histogram sample."""

    name: Name
    value: float
    type: Literal["counter", "gauge", "histogram"] = "gauge"
    unit: Annotated[str, Meta(max_length=32)] = ""
    tags: Tags = msgspec.field(default_factory=dict)


class Latency(Event, tag="latency", frozen=True):
    """A latency sample in milliseconds; ``of`` says what was timed (gateway by default)."""

    ms: NonNegative
    of: Annotated[str, Meta(min_length=1, max_length=100)] = "gateway"
    shard_id: Count | None = None


# --- what the pipeline says about itself ------------------------------------------------


# The one part of ``lifecycle`` a bot may send: its gateway connection (``gateway.ready``,
# ``gateway.disconnect``...). astra's own lifecycle actions never start with it, and ingest
# refuses every other action, so a line in this namespace is always the bot's.
BOT_LIFECYCLE_PREFIX = "gateway."


class Lifecycle(Event, tag="lifecycle", frozen=True):
    """A step in the sidecar's life (started, stopping, webhook provisioned...), or the bot's
    gateway connection (``gateway.*`` actions, the only ones ingest accepts)."""

    action: Annotated[str, Meta(min_length=1, max_length=64)]
    detail: Text = ""
    channel: Annotated[str, Meta(max_length=32)] | None = None


class ConfigLoaded(Event, tag="config", frozen=True):
    """The configuration the sidecar runs with (no secrets: only how each channel posts)."""

    path: Text
    flush_interval: float
    channels: dict[str, str]
    routes: dict[str, str]


class Pipeline(Event, tag="pipeline", frozen=True):
    """The pipeline's own trouble counters over ``window_s`` seconds (only sent when non-zero).

    The ``*_total`` fields count since start, so a report that is late or lost loses no
    drop: the next one still carries every drop so far.
    """

    window_s: float
    received: Count = 0
    rejected_http: Count = 0
    malformed_udp: Count = 0
    kernel_drops: Count = 0
    dropped_buffer: Count = 0
    retries: Count = 0
    rate_limited: Count = 0
    failed_posts: Count = 0
    undeliverable: Count = 0
    unauthorized: Count = 0
    header_timeouts: Count = 0
    body_timeouts: Count = 0
    connections_refused: Count = 0
    accept_errors: Count = 0
    dropped_buffer_total: Count = 0
    dropped_by_channel: dict[str, Count] = msgspec.field(default_factory=dict)
    kernel_drops_total: Count = 0
    undeliverable_total: Count = 0


# --- what astra's collectors observe ----------------------------------------------------


class DiskStat(msgspec.Struct, frozen=True, kw_only=True):
    """One mounted file system: usage and I/O rates over the collector's interval."""

    mount: str
    device: str = ""
    total_bytes: Count = 0
    used_bytes: Count = 0
    percent: NonNegative = 0.0
    read_bytes_per_s: NonNegative | None = None
    write_bytes_per_s: NonNegative | None = None


class NetStat(msgspec.Struct, frozen=True, kw_only=True):
    """Network I/O over every non-loopback interface, per second."""

    bytes_sent_per_s: NonNegative = 0.0
    bytes_recv_per_s: NonNegative = 0.0
    packets_sent_per_s: NonNegative = 0.0
    packets_recv_per_s: NonNegative = 0.0
    errors_per_s: NonNegative = 0.0
    drops_per_s: NonNegative = 0.0


class System(Event, tag="system", frozen=True):
    """A host snapshot; rates cover the ``interval_s`` before ``ts``.

    ``cpu_trend`` and ``memory_trend`` hold the last readings (oldest first, this one last),
    so a window that carries one snapshot still shows a trend.
    """

    interval_s: NonNegative
    cpu_percent: NonNegative
    per_cpu: list[float] = msgspec.field(default_factory=list)
    load: list[float] = msgspec.field(default_factory=list)
    cores: Count = 0
    memory_total_bytes: Count = 0
    memory_used_bytes: Count = 0
    memory_percent: NonNegative = 0.0
    swap_total_bytes: Count = 0
    swap_used_bytes: Count = 0
    swap_percent: NonNegative = 0.0
    disks: list[DiskStat] = msgspec.field(default_factory=list)
    net: NetStat | None = None
    uptime_s: NonNegative = 0.0
    cpu_trend: list[float] = msgspec.field(default_factory=list)
    memory_trend: list[float] = msgspec.field(default_factory=list)


class Process(Event, tag="process", frozen=True):
    """A watched process (or astra itself): usage now, or that it is gone.

    ``change`` marks the reading where something happened: a new pid (``restarted``), back
    after being gone (``returned``), or ``gone``. ``restarts`` counts new pids noticed.
    """

    name: Name
    running: bool = True
    pid: Count | None = None
    change: Literal["", "restarted", "returned", "gone"] = ""
    cpu_percent: NonNegative = 0.0
    rss_bytes: Count = 0
    threads: Count = 0
    fds: Count | None = None
    connections: Count | None = None
    uptime_s: NonNegative = 0.0
    restarts: Count = 0
    rss_trend: list[float] = msgspec.field(default_factory=list)


class File(Event, tag="file", frozen=True):
    """A watched file's size and growth rate (over ``growth_span_s`` of readings)."""

    name: Name
    path: Text
    exists: bool = True
    size_bytes: Count | None = None
    growth_bytes_per_day: float | None = None
    growth_span_s: NonNegative = 0.0
    size_trend: list[float] = msgspec.field(default_factory=list)


class Quantiles(msgspec.Struct, frozen=True, kw_only=True):
    """Streaming percentiles of one series over a window (milliseconds)."""

    of: str
    count: Count
    p50: float
    p95: float
    p99: float
    max: float


class Performance(Event, tag="performance", frozen=True):
    """The pipeline's own figures and the client's latency percentiles over ``window_s``."""

    window_s: NonNegative
    events_in: Count = 0
    events_per_s: NonNegative = 0.0
    queue_depth: Count = 0
    delivered: Count = 0
    delivery_ms: Quantiles | None = None
    retries: Count = 0
    rate_limited: Count = 0
    dropped: Count = 0
    commands: Count = 0
    commands_failed: Count = 0
    latencies: list[Quantiles] = msgspec.field(default_factory=list)
    slow_commands: list[Quantiles] = msgspec.field(default_factory=list)
    rate_trend: list[float] = msgspec.field(default_factory=list)


class Alert(Event, tag="alert", frozen=True):
    """A threshold rule crossed (``firing``) or back to normal (``resolved``).

    ``subject`` tells apart alerts of one rule (``disk:/``, ``process:bot``); ``since`` is
    when it started firing; ``repeat`` counts reminders sent after the cooldown.
    """

    rule: Name
    subject: Name
    state: Literal["firing", "resolved"]
    severity: Severity = "warning"
    message: Text = ""
    value: float | None = None
    threshold: float | None = None
    unit: Annotated[str, Meta(max_length=32)] = ""
    since: NonNegative = 0.0
    repeat: Count = 0
    muted: bool = False


class Component(msgspec.Struct, frozen=True, kw_only=True):
    """One part of the pipeline and how it is doing."""

    name: str
    status: Literal["ok", "warning", "error", "off"]
    detail: str = ""
    last_ok: float | None = None


class Health(Event, tag="health", frozen=True):
    """A health score 0-100, what lowered it, what to do, and each component's status."""

    score: Annotated[int, Meta(ge=0, le=100)]
    reasons: list[str] = msgspec.field(default_factory=list)
    recommendations: list[str] = msgspec.field(default_factory=list)
    components: list[Component] = msgspec.field(default_factory=list)


class Ranked(msgspec.Struct, frozen=True):
    """A name and how often it occurred."""

    name: str
    count: Count


class ProblemGroup(msgspec.Struct, frozen=True, kw_only=True):
    """Problems sharing a fingerprint: type + normalised message + top frame."""

    label: str
    sample: str
    severity: LogLevel
    count: Count
    first: float
    last: float


class ProcessDay(msgspec.Struct, frozen=True, kw_only=True):
    """A watched process over the report's day."""

    name: str
    up_percent: NonNegative
    restarts: Count = 0
    peak_rss_bytes: Count = 0


class MemberDay(msgspec.Struct, frozen=True, kw_only=True):
    """A fleet member over the report's day (fleet mode: one row per member)."""

    name: str
    events: Count = 0
    problems: Count = 0
    peak_cpu_percent: NonNegative | None = None
    peak_memory_percent: NonNegative | None = None
    host_uptime_s: NonNegative | None = None


class ChartSeries(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a chart (or one bar a category); ``None`` where a bucket had no data."""

    label: str
    values: list[float | None] = msgspec.field(default_factory=list)


class Chart(msgspec.Struct, frozen=True, kw_only=True):
    """The data of one chart: series of values, one value per label along the x axis.

    A time chart has a label per bucket (``14:00``), buckets starting at ``start`` and
    ``step_s`` wide; a category chart (``step_s`` 0) a label per category. ``name`` ends
    up in the image's file name.
    """

    name: Annotated[str, Meta(min_length=1, max_length=40)]
    title: str
    unit: str = ""
    style: Literal["line", "bar"] = "line"
    start: float = 0.0
    step_s: NonNegative = 0.0
    labels: list[str] = msgspec.field(default_factory=list)
    series: list[ChartSeries] = msgspec.field(default_factory=list)


class Report(Event, tag="report", frozen=True):
    """The daily report: a projection of the day's events, sent at the configured time."""

    day: str
    timezone: str
    start: float
    end: float
    events: dict[str, int] = msgspec.field(default_factory=dict)
    top_commands: list[Ranked] = msgspec.field(default_factory=list)
    top_guilds: list[Ranked] = msgspec.field(default_factory=list)
    problems: list[ProblemGroup] = msgspec.field(default_factory=list)
    problem_total: Count = 0
    alerts_fired: Count = 0
    host_uptime_s: NonNegative | None = None
    processes: list[ProcessDay] = msgspec.field(default_factory=list)
    peak_cpu_percent: NonNegative | None = None
    peak_memory_percent: NonNegative | None = None
    delivered: Count = 0
    delivery_p95_ms: NonNegative | None = None
    retries: Count = 0
    rate_limited: Count = 0
    dropped: Count = 0
    # Set when the report does not cover its whole day: from when it counts, and why.
    coverage: Text = ""
    charts: list[Chart] = msgspec.field(default_factory=list)
    # Names of the top guilds where the bot sent them (guild id → name).
    guild_names: dict[str, str] = msgspec.field(default_factory=dict)
    # In a fleet, each member's share of the day (empty for a single sidecar).
    members: list[MemberDay] = msgspec.field(default_factory=list)


class Digest(Event, tag="digest", frozen=True):
    """The hourly performance digest: the last ``window_s`` seconds as charts and totals."""

    window_s: NonNegative
    start: float
    end: float
    events: Count = 0
    commands: Count = 0
    errors: Count = 0
    charts: list[Chart] = msgspec.field(default_factory=list)


AnyEvent = (
    Message
    | Command
    | Guild
    | Member
    | Voice
    | Reaction
    | Log
    | Error
    | Metric
    | Latency
    | Lifecycle
    | ConfigLoaded
    | Pipeline
    | System
    | Process
    | File
    | Performance
    | Alert
    | Health
    | Report
    | Digest
)

EVENT_TYPES: tuple[type[Event], ...] = (
    Message,
    Command,
    Guild,
    Member,
    Voice,
    Reaction,
    Log,
    Error,
    Metric,
    Latency,
    Lifecycle,
    ConfigLoaded,
    Pipeline,
    System,
    Process,
    File,
    Performance,
    Alert,
    Health,
    Report,
    Digest,
)
KINDS: frozenset[str] = frozenset(str(t.__struct_config__.tag) for t in EVENT_TYPES)

_decoder = msgspec.json.Decoder(AnyEvent)
_encoder = msgspec.json.Encoder()


def encode(event: Event) -> bytes:
    """Encode one event as a compact JSON object (``kind`` first)."""
    return _encoder.encode(event)


def encode_lines(events: list[AnyEvent] | list[Event]) -> bytes:
    """Encode events as JSON Lines (one object per line, trailing newline)."""
    buf = bytearray()
    for ev in events:
        _encoder.encode_into(ev, buf, len(buf))
        buf.extend(b"\n")
    return bytes(buf)


def decode_one(raw: bytes | msgspec.Raw) -> AnyEvent:
    """Decode and validate one JSON event; raises ``msgspec.ValidationError``/``DecodeError``."""
    event: AnyEvent = _decoder.decode(raw)
    return event


def route_key(event: Event) -> str:
    """The key routes are written in: the event kind, or command.ok / command.failed."""
    if isinstance(event, Command):
        return "command.ok" if event.ok else "command.failed"
    return str(event.__struct_config__.tag)


# A projection listening to the bus: called with events of one type, in sequence order.
Listener = Callable[[Sequence[Event]], None]
# How ingest hands over what it decoded: the events, the bytes they came in, and those bytes.
Ingest = Callable[[Sequence[Event], int, bytes], None]
# How a projection subscribes: its listener and the event types it wants (None: all).
Subscribe = Callable[[Listener, Iterable[type[Event]] | None], None]


def is_critical(event: Event) -> bool:
    """True for events that must not wait for the flush interval."""
    if isinstance(event, Error):
        return event.severity == "critical"
    if isinstance(event, Log):
        return event.level == "critical"
    if isinstance(event, Alert):
        # A muted alert is recorded with the next window: it must not notify.
        return event.severity == "critical" and event.state == "firing" and not event.muted
    return False


def describe_validation_error(exc: Exception) -> str:
    """Turn a msgspec error into a short message naming the field (``$.field`` -> ``field``)."""
    text = str(exc)
    if " - at `$." in text:
        message, _, path = text.rpartition(" - at `$.")
        return f"{path.rstrip('`')}: {message}"
    if " - at `$`" in text:
        return text.replace(" - at `$`", "")
    return text


def utc_iso(ts: float) -> str:
    """ISO 8601 with microseconds and offset, the form Discord wants for embed timestamps."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")
