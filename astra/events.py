"""The event schema: the one contract between collectors, the bus and the sinks.

Every event is a frozen ``msgspec.Struct`` tagged on ``kind``. The same types decode the
sidecar's ingest (HTTP and UDP) and encode what ``astra.client`` sends, so the wire format
is defined here once.
"""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta
from msgspec.structs import force_setattr

Text = Annotated[str, Meta(max_length=4000)]
LongText = Annotated[str, Meta(max_length=65536)]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
Snowflake = Annotated[int, Meta(ge=0)]
NonNegative = Annotated[float, Meta(ge=0)]
Count = Annotated[int, Meta(ge=0)]
TagValue = str | int | float | bool
Tags = Annotated[dict[str, TagValue], Meta(max_length=64)]

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
Severity = Literal["warning", "error", "critical"]

# Ids are unique per process run and cheap to make: a random prefix and a counter.
_ID_PREFIX = os.urandom(5).hex()
_id_counter = itertools.count(1)


def new_event_id() -> str:
    """Return a fresh event id, unique within this process and practically across runs."""
    return f"{_ID_PREFIX}-{next(_id_counter):x}"


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """Fields common to every event.

    ``id`` is kept end to end (assigned when absent), ``ts`` accepts unix seconds or an
    RFC 3339 string and is stored as unix seconds, ``seq`` is stamped by the bus.
    """

    id: Annotated[str, Meta(max_length=128)] = ""
    ts: Annotated[float, Meta(ge=0)] | datetime = 0.0
    source: Annotated[str, Meta(max_length=200)] = ""
    seq: Count = 0

    def __post_init__(self) -> None:
        # Frozen for everyone downstream; normalising here happens before anyone holds it.
        if not self.id:
            force_setattr(self, "id", new_event_id())
        ts = self.ts
        if isinstance(ts, datetime):
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=UTC)
            force_setattr(self, "ts", ts.timestamp())
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


class Voice(Event, tag="voice", frozen=True):
    """A voice state change: joined, left or moved between voice channels."""

    action: Literal["join", "leave", "move"]
    guild_id: Snowflake
    user_id: Snowflake
    channel_id: Snowflake | None = None
    from_channel_id: Snowflake | None = None


class Reaction(Event, tag="reaction", frozen=True):
    """A reaction added to or removed from a message."""

    action: Literal["add", "remove"]
    emoji: Annotated[str, Meta(max_length=200)]
    guild_id: Snowflake | None = None
    channel_id: Snowflake | None = None
    message_id: Snowflake | None = None
    user_id: Snowflake | None = None


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


class Lifecycle(Event, tag="lifecycle", frozen=True):
    """A step in the sidecar's life: started, stopping, stopped, webhook provisioned..."""

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
    """The pipeline's own trouble counters over ``window_s`` seconds (only sent when non-zero)."""

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


def is_critical(event: Event) -> bool:
    """True for events that must not wait for the flush interval."""
    if isinstance(event, Error):
        return event.severity == "critical"
    if isinstance(event, Log):
        return event.level == "critical"
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
