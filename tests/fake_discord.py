"""A strict, Discord-compatible HTTP server for astra's test suite.

``FakeDiscord`` runs an aiohttp application on 127.0.0.1 (real sockets, ephemeral
port) in a background thread so plain synchronous pytest code can use it::

    with FakeDiscord(bucket_limit=2, bucket_window=0.5) as discord:
        hook = discord.create_webhook(123)
        ...  # point the code under test at hook.url
        discord.assert_no_violations()

It is *strict*: everything real Discord refuses is refused with Discord's
status, code and JSON shape, and additionally recorded in ``violations`` so a
test can assert that a well-behaved client never earned one.  The limits it
enforces are the ones listed in ``/work/shared/discord-api.md``.

Deliberate choices where Discord is unverified or lenient (documented so test
authors know what they are up against):

* Unversioned (``/api/webhooks/...``, which is v6) and non-v10 paths are
  refused with 400 / 50041 even though Discord would serve them.
* A missing/foreign ``User-Agent`` or a missing/unsupported ``Content-Type``
  is refused with 400 / code 0.
* A first 401, 403 or 404 for a given resource is merely noted in
  ``refusals`` (the client could not have known); *repeating* the request
  after such an answer is a violation (Discord escalates repeated invalid
  requests to a Cloudflare ban).
* Every execute must carry ``allowed_mentions`` with ``parse: []`` (and, if
  present, empty ``users``/``roles``): astra policy, recorded as a violation
  but the post is still accepted, as Discord would.
* Multipart parts other than ``payload_json`` and ``files[n]``/``file``/``fileN``
  are dropped and recorded as a violation (e.g. percent-escaped
  ``files%5B0%5D`` from ``aiohttp.FormData(quote_fields=True)``).
* More than ``max_files`` attachments are refused as 50035 on ``attachments``.
* Execute bodies are also checked against Discord's OpenAPI description
  (discord/discord-api-spec, ``IncomingWebhookRequestPartial`` and the schemas it
  references; see "execute-webhook schema" below), and are stricter than Discord where
  it is lenient: keys that are no property of their schema are refused (Discord drops
  them silently), snowflakes such as ``attachments[].id`` must be strings as the spec
  says (Discord also takes the integers its own docs' example sends), and every
  ``attachments[].id`` must name the ``n`` of a ``files[n]`` part of the same request.
* Channels have a ``type`` (0 text, 15 forum, 11 public thread). Executing into a forum
  needs ``thread_name`` (creates a thread) or ``?thread_id=`` (220001 / 220002 otherwise);
  ``thread_name`` elsewhere is 220003; ``?thread_id=`` must name a thread of the webhook's
  channel (an unknown one is 404 / 10003, unverified status) and unarchives it. Per-channel
  limits are counted on the webhook's own channel (the parent), stricter than per thread.
* ``flags`` on an execute may only hold SUPPRESS_EMBEDS (1<<2), SUPPRESS_NOTIFICATIONS
  (1<<12) and IS_COMPONENTS_V2 (1<<15); on an edit only SUPPRESS_EMBEDS and
  IS_COMPONENTS_V2 (others: 50035 on ``flags``, fake-only code MESSAGE_FLAGS_INVALID).
* The mention policy allows ``allowed_mentions.roles`` / ``users`` only for ids the
  content really mentions (``<@&id>`` / ``<@id>``): no phantom ping lists. Stored
  messages answer with ``mentions`` / ``mention_roles`` as Discord computes them.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import gzip
import hashlib
import http
import itertools
import json
import math
import re
import secrets
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final

from aiohttp import web
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

__all__ = [
    "API_VERSION",
    "FakeDiscord",
    "MiB",
    "PostedMessage",
    "RecordedRequest",
    "Webhook",
]

API_VERSION: Final = 10
MiB: Final = 1024 * 1024
DISCORD_EPOCH_MS: Final = 1_420_070_400_000
VIA: Final = "1.1 google"

# Documented limits (see discord-api.md).
MAX_CONTENT: Final = 2000
MAX_EMBEDS: Final = 10
MAX_TITLE: Final = 256
MAX_DESCRIPTION: Final = 4096
MAX_FIELDS: Final = 25
MAX_FIELD_NAME: Final = 256
MAX_FIELD_VALUE: Final = 1024
MAX_FOOTER_TEXT: Final = 2048
MAX_AUTHOR_NAME: Final = 256
MAX_EMBED_TOTAL: Final = 6000
MAX_COLOR: Final = 0xFFFFFF
MAX_USERNAME: Final = 80
MAX_WEBHOOKS_PER_CHANNEL: Final = 15
MAX_THREAD_NAME: Final = 100

# Channel types (Discord's channel object ``type``).
GUILD_TEXT: Final = 0
PUBLIC_THREAD: Final = 11
GUILD_FORUM: Final = 15

# Message flags.
SUPPRESS_EMBEDS: Final = 1 << 2
SUPPRESS_NOTIFICATIONS: Final = 1 << 12
IS_COMPONENTS_V2: Final = 1 << 15
EXECUTE_FLAGS: Final = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
EDIT_FLAGS: Final = SUPPRESS_EMBEDS | IS_COMPONENTS_V2

# Slack for client/server clock reading differences: a request that arrives this
# close to a reset is treated as after it.  Header values are rounded *up* to the
# millisecond, so a client that honours them always lands after the reset anyway.
_CLOCK_TOLERANCE: Final = 0.001

_API_PATH = re.compile(r"^/api(?:/v(\d+))?(/.*)?$")
_ROUTE_WEBHOOK = re.compile(r"^/webhooks/(\d+)/([^/]+)$")
_ROUTE_WEBHOOK_MESSAGE = re.compile(r"^/webhooks/(\d+)/([^/]+)/messages/(\d+)$")
_ROUTE_CHANNEL_WEBHOOKS = re.compile(r"^/channels/(\d+)/webhooks$")
_ROUTE_CHANNEL = re.compile(r"^/channels/(\d+)$")
_ROUTE_ACTIVE_THREADS = re.compile(r"^/guilds/(\d+)/threads/active$")
_ROUTE_ARCHIVED_THREADS = re.compile(r"^/channels/(\d+)/threads/archived/public$")
_FORUM_NEEDS_THREAD: Final = (
    "Webhooks posted to forum channels must have a thread_name or thread_id"
)
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROUTE_CHANNEL_MESSAGES = re.compile(r"^/channels/(\d+)/messages$")
_CDN_ATTACHMENT = re.compile(r"^/attachments/(\d+)/(\d+)/([^/]+)$")
# Attachments of a message in the listing without the Message Content intent, and in
# Discord's own history reads: https://discord.com/developers/docs/topics/gateway#message-content-intent
MAX_HISTORY_LIMIT: Final = 100
CDN_LINK_SECONDS: Final = 24 * 3600
_FILE_PART = re.compile(r"^(?:files\[\d+\]|file\d*)$")
_FILES_N = re.compile(r"files\[(\d+)\]")
_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_TOKEN_IN_PATH = re.compile(r"(/webhooks/\d+/)[^/?]+")

JSONObject = dict[str, Any]


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Webhook:
    """A webhook known to the fake (created by a test or through the bot API)."""

    id: int
    token: str
    channel_id: int
    name: str
    application_id: int | None
    url: str  # the fake's versioned execute URL
    discord_url: str  # what the Discord client would show (unversioned, real host)


@dataclass(frozen=True)
class PostedMessage:
    """A message Discord accepted and stored."""

    message_id: int
    webhook_id: int
    channel_id: int
    payload: JSONObject  # the JSON body, or the parsed ``payload_json`` part
    files: list[tuple[str, bytes]]
    headers: dict[str, str]
    timestamp: str
    edited_timestamp: str | None = None
    edits: int = 0

    @property
    def flags(self) -> int:
        """The message's ``flags`` as sent (0 when absent)."""
        value = self.payload.get("flags")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    @property
    def mention_roles(self) -> list[str]:
        """Role ids this message pings, as Discord computes them from content and policy."""
        return _mentioned(self.payload, "roles")

    @property
    def mentions(self) -> list[str]:
        """User ids this message pings, as Discord computes them from content and policy."""
        return _mentioned(self.payload, "users")

    # A message from a person or another bot (``webhook_id`` is then 0): its author object.
    author: JSONObject | None = None
    # Snowflakes of the attachments, in file order (assigned when stored).
    attachment_ids: tuple[int, ...] = ()

    @property
    def content(self) -> str | None:
        """The message's ``content`` as sent (``None`` when absent)."""
        value = self.payload.get("content")
        return value if isinstance(value, str) else None

    @property
    def embeds(self) -> list[JSONObject]:
        """The message's embeds as sent."""
        value = self.payload.get("embeds")
        return list(value) if isinstance(value, list) else []

    def jsonl_events(self) -> list[JSONObject]:
        """Gunzip every ``*.jsonl.gz`` attachment and parse one JSON object per line."""
        events: list[JSONObject] = []
        for filename, data in self.files:
            if not filename.endswith(".jsonl.gz"):
                continue
            for line in gzip.decompress(data).decode("utf-8").splitlines():
                if not line.strip():
                    continue
                event = json.loads(line)
                if not isinstance(event, dict):
                    raise ValueError(f"{filename}: line is not a JSON object: {line[:80]!r}")
                events.append(event)
        return events


@dataclass
class RecordedRequest:
    """One HTTP request as received (for secret scanning and protocol assertions).

    ``status`` is ``None`` while the request is being answered, and stays ``None``
    when the connection was dropped on purpose (``reset`` is then true).
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    reset: bool = False


@dataclass
class _Bucket:
    """A per-route fixed window that starts with its first request."""

    bucket_id: str
    limit: int
    window_end: float = 0.0  # monotonic
    used: int = 0
    blocked_until: float = 0.0  # set by an injected 429 (ratelimit_next)


@dataclass
class _Channel:
    """A channel (text, forum or thread): bot permissions, and its recent posts."""

    id: int
    manage_webhooks: bool
    type: int = GUILD_TEXT
    parent_id: int | None = None  # threads: the text or forum channel they live in
    name: str = ""
    archived: bool = False
    # VIEW_CHANNEL and READ_MESSAGE_HISTORY for the bot: listing messages needs both.
    read_history: bool = True
    # Arrival times (monotonic) of stored messages, for the per-channel sliding window.
    message_times: deque[float] = field(default_factory=deque)


class _FormErrors:
    """Collects an ``errors`` tree in Discord's "Invalid Form Body" shape."""

    def __init__(self) -> None:
        self.tree: JSONObject = {}
        self.paths: list[str] = []

    def add(self, path: tuple[str | int, ...], code: str, message: str) -> None:
        """Record ``message`` with ``code`` at ``path`` of the errors tree."""
        node = self.tree
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
        self.paths.append(f"{'.'.join(str(p) for p in path) or '<root>'} ({code})")

    def __bool__(self) -> bool:
        return bool(self.paths)


class _BareResponse(web.Response):
    """A response that did not come from Discord's API (no ``Via`` header added)."""


@dataclass
class _Injections:
    """Faults the test injected: queued answers, resets, bans, an outage until a time."""

    fail: deque[int] = field(default_factory=deque)  # statuses, one per execute
    resets: int = 0
    outage_until: float = 0.0
    outage_status: int = 503
    ratelimits: deque[float] = field(default_factory=deque)  # retry_after values
    delays: deque[float] = field(default_factory=deque)
    bans: int = 0
    read_fail: deque[int] = field(default_factory=deque)  # statuses, one per history read
    read_ratelimits: deque[float] = field(default_factory=deque)


# ---------------------------------------------------------------------- helpers


def _json_body(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, as Discord sends it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _json_response(status: int, value: Any, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response with ``status`` and ``headers``."""
    return web.Response(
        status=status,
        body=_json_body(value),
        content_type="application/json",
        headers=headers,
    )


def _error(message: str, code: int) -> JSONObject:
    """Discord's error body: a message and a JSON error code."""
    return {"message": message, "code": code}


def _http_error(status: int) -> JSONObject:
    """Discord's generic error body for an HTTP status."""
    # Discord's generic shape, e.g. {"message": "401: Unauthorized", "code": 0}.
    return _error(f"{status}: {http.HTTPStatus(status).phrase}", 0)


def _ceil_ms(seconds: float) -> float:
    """Round up to the millisecond so a client sleeping this long is never early."""
    return math.ceil(max(0.0, seconds) * 1000) / 1000


def _redact(path: str) -> str:
    """``path`` with any webhook token replaced by ``<token>``."""
    return _TOKEN_IN_PATH.sub(r"\1<token>", path)


def _is_int(value: Any) -> bool:
    """Whether ``value`` is a JSON integer (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _mentioned(payload: JSONObject, kind: str) -> list[str]:
    """Ids of ``kind`` ("users" or "roles") that the content pings under ``allowed_mentions``.

    Webhooks parse only user mentions when ``allowed_mentions`` is absent (Discord's docs).
    """
    content = payload.get("content")
    if not isinstance(content, str):
        return []
    pattern = _ROLE_MENTION if kind == "roles" else _USER_MENTION
    named = list(dict.fromkeys(pattern.findall(content)))
    allowed = payload.get("allowed_mentions")
    if not isinstance(allowed, dict):
        return named if kind == "users" else []
    parse = allowed.get("parse")
    if isinstance(parse, list) and kind in parse:
        return named
    listed = allowed.get(kind)
    ids = {str(i) for i in listed} if isinstance(listed, list) else set()
    return [i for i in named if i in ids]


def _parse_multipart(
    body: bytes, boundary: str
) -> list[tuple[str | None, str | None, bytes]] | None:
    """Split a multipart/form-data body into (name, filename, data); ``None`` if malformed.

    Hand-rolled (binary safe) because aiohttp's reader only works on the live
    stream and we also want the raw body for ``requests``.
    """
    delimiter = b"--" + boundary.encode("latin-1")
    pos = body.find(delimiter)
    if pos < 0:
        return None
    pos += len(delimiter)
    parts: list[tuple[str | None, str | None, bytes]] = []
    while True:
        if body.startswith(b"--", pos):
            return parts
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            return None
        pos = eol + 2
        if body.startswith(b"\r\n", pos):
            raw_headers, content_start = b"", pos + 2
        else:
            end = body.find(b"\r\n\r\n", pos)
            if end < 0:
                return None
            raw_headers, content_start = body[pos:end], end + 4
        next_delimiter = body.find(b"\r\n" + delimiter, content_start)
        if next_delimiter < 0:
            return None
        name: str | None = None
        filename: str | None = None
        for line in raw_headers.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-disposition":
                _, params = parse_content_disposition(value.strip())
                name = params.get("name")
                filename = content_disposition_filename(params, "filename")
        parts.append((name, filename, body[content_start:next_delimiter]))
        pos = next_delimiter + 2 + len(delimiter)


# ------------------------------------------------------- execute-webhook schema
#
# Rules read from Discord's official OpenAPI description: github.com/discord/discord-api-spec,
# specs/openapi.json at commit 74fda0fad044407ea280043a03ffc9bc64c4e49e (2026-07-18),
# operation ``execute_webhook`` (POST /webhooks/{webhook_id}/{webhook_token}). The spec is
# not copied here: each rule is written out as a check, named after the schema it comes from.
#
# How the spec was read:
#
# * The request body is ``anyOf: [IncomingWebhookRequestPartial,
#   IncomingWebhookUpdateRequestPartial]`` (``x-discord-union: oneOf``), the same for
#   application/json and multipart/form-data (the spec does not describe ``payload_json``
#   or the ``files[n]`` parts; the multipart body is the JSON body, as Discord's docs say).
#   The second schema has a subset of the first one's properties, typed identically, so a
#   body satisfies the union exactly when it satisfies IncomingWebhookRequestPartial: that
#   is the schema checked.
# * Almost every optional property is typed ``[T, "null"]`` (or ``oneOf: [null, $ref]``):
#   null is accepted there and treated like absence. Where the spec does not allow null
#   (``SnowflakeType``; RichEmbedField ``name``/``value``; array items) null is refused.
# * ``SnowflakeType`` is ``type: string`` with pattern ``^(0|[1-9][0-9]*)$``; it does NOT
#   allow integers. So ``attachments[].id`` (MessageAttachmentRequest, ``id`` required)
#   must be a string such as "0". The fake follows the spec and refuses integers, although
#   Discord's own docs ("Uploading Files" example) and discord.py (``File.to_dict``) send
#   ``"id": 0`` and the live API accepts that: here the fake is stricter than Discord.
# * ``integer`` is checked as a JSON integer (Python ``int``, never ``bool``); ``1.0`` stays
#   refused as before, though JSON Schema would count it as an integer. The spec's README
#   adds that the API also accepts int-parseable strings for integer fields; the fake does
#   not (it follows the schema's type).
# * ``additionalProperties``: the spec sets none on these schemas, so JSON Schema allows
#   extra keys, and Discord silently ignores them. The fake refuses every key that is not a
#   property of the schema (fake-only code ``UNKNOWN_PROPERTY``), because a key Discord
#   drops is a client bug (a typo such as ``colour`` or ``embed``) that would go unseen.
# * ``format: uri`` is checked loosely (a scheme and no whitespace); ``format: date-time``
#   keeps the fake's earlier ISO 8601 check.
# * ``components`` items and ``poll`` are only checked to be objects (their schemas,
#   ActionRowComponentForMessageRequest... and PollCreateRequest, are not encoded).
#
# Error codes and messages are Discord's where known (BASE_TYPE_*, NUMBER_TYPE_*,
# MODEL_TYPE_CONVERT, URL_TYPE_INVALID_URL, DATE_TYPE_PARSE); UNKNOWN_PROPERTY,
# UNKNOWN_ATTACHMENT and the set-uniqueness code are the fake's own.

_SNOWFLAKE_PATTERN = re.compile(r"0|[1-9][0-9]*")  # SnowflakeType ``pattern``, fullmatch
_INT32_MAX: Final = 2_147_483_647
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")  # RFC 3986: a URI starts "scheme:"


@dataclass(frozen=True, kw_only=True)
class _String:
    """A string rule of the spec: length bounds, format, nullability."""

    max_len: int | None = None
    min_len: int = 0
    fmt: str = ""  # "uri" | "date-time" | ""
    nullable: bool = True


@dataclass(frozen=True, kw_only=True)
class _Integer:
    """An integer rule of the spec: bounds and nullability."""

    minimum: int | None = None
    maximum: int | None = None
    nullable: bool = True


@dataclass(frozen=True, kw_only=True)
class _Number:
    """A number rule of the spec: bounds and nullability."""

    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = True


@dataclass(frozen=True, kw_only=True)
class _Boolean:
    """A boolean rule of the spec."""

    nullable: bool = True


@dataclass(frozen=True, kw_only=True)
class _Snowflake:
    """SnowflakeType: a decimal string, never a number."""

    nullable: bool = False


@dataclass(frozen=True, kw_only=True)
class _Choice:
    """A string rule of the spec that allows only ``values``."""

    values: tuple[str, ...]
    nullable: bool = True


@dataclass(frozen=True, kw_only=True)
class _Array:
    """An array rule of the spec: its items' rule, a length bound, uniqueness."""

    items: _Rule
    max_items: int
    unique: bool = False
    nullable: bool = True


@dataclass(frozen=True, kw_only=True)
class _Object:
    """An object rule of the spec: named properties and which are required."""

    schema: str
    properties: dict[str, _Rule] | None  # None: only "is an object" is checked
    required: tuple[str, ...] = ()
    nullable: bool = True


_Rule = _String | _Integer | _Number | _Boolean | _Snowflake | _Choice | _Array | _Object

# Every URL property in these schemas: ``[string, null]``, maxLength 2048, format uri.
_URL = _String(max_len=2048, fmt="uri")


def _embed_media(schema: str) -> _Object:
    """RichEmbedImage, RichEmbedThumbnail and RichEmbedVideo have the same properties."""
    return _Object(
        schema=schema,
        properties={
            "url": _URL,
            "width": _Integer(),
            "height": _Integer(),
            "placeholder": _String(max_len=64),
            "placeholder_version": _Integer(minimum=0, maximum=_INT32_MAX),
            "is_animated": _Boolean(),
            "description": _String(max_len=4096),
        },
    )


# RichEmbed (items of IncomingWebhookRequestPartial.embeds: a bare $ref, so not nullable).
_RICH_EMBED = _Object(
    schema="RichEmbed",
    nullable=False,
    properties={
        "type": _String(max_len=152_133),
        "url": _URL,
        "title": _String(max_len=MAX_TITLE),
        "color": _Integer(minimum=0, maximum=MAX_COLOR),
        "timestamp": _String(fmt="date-time"),
        "description": _String(max_len=MAX_DESCRIPTION),
        "author": _Object(
            schema="RichEmbedAuthor",
            properties={"name": _String(max_len=MAX_AUTHOR_NAME), "url": _URL, "icon_url": _URL},
        ),
        "image": _embed_media("RichEmbedImage"),
        "thumbnail": _embed_media("RichEmbedThumbnail"),
        "footer": _Object(
            schema="RichEmbedFooter",
            properties={"text": _String(max_len=MAX_FOOTER_TEXT), "icon_url": _URL},
        ),
        "fields": _Array(
            max_items=MAX_FIELDS,
            items=_Object(
                schema="RichEmbedField",
                nullable=False,
                required=("name", "value"),
                properties={
                    "name": _String(max_len=MAX_FIELD_NAME, nullable=False),
                    "value": _String(max_len=MAX_FIELD_VALUE, nullable=False),
                    "inline": _Boolean(),
                },
            ),
        ),
        "provider": _Object(
            schema="RichEmbedProvider",
            properties={"name": _String(max_len=256), "url": _URL},
        ),
        "video": _embed_media("RichEmbedVideo"),
    },
)

# MessageAllowedMentionsRequest. ``parse`` items are ``oneOf: [null, AllowedMentionTypes]``
# in the spec; the fake keeps refusing null items there, as it did before (stricter).
_ALLOWED_MENTIONS = _Object(
    schema="MessageAllowedMentionsRequest",
    properties={
        "parse": _Array(
            items=_Choice(values=("users", "roles", "everyone"), nullable=False),
            max_items=1521,
            unique=True,
        ),
        "users": _Array(items=_Snowflake(nullable=True), max_items=100, unique=True),
        "roles": _Array(items=_Snowflake(nullable=True), max_items=100, unique=True),
        "replied_user": _Boolean(),
    },
)

# MessageAttachmentRequest (items of IncomingWebhookRequestPartial.attachments).
_ATTACHMENT = _Object(
    schema="MessageAttachmentRequest",
    nullable=False,
    required=("id",),
    properties={
        "id": _Snowflake(),
        "filename": _String(min_len=1, max_len=1024),
        "description": _String(max_len=1024),
        "duration_secs": _Number(minimum=0, maximum=_INT32_MAX),
        "waveform": _String(max_len=400),
        "title": _String(max_len=1024),
        "is_spoiler": _Boolean(),
        "is_remix": _Boolean(),
    },
)

# IncomingWebhookRequestPartial: the execute body.
MAX_ATTACHMENTS: Final = 10  # attachments maxItems
_WEBHOOK_BODY = _Object(
    schema="IncomingWebhookRequestPartial",
    nullable=False,
    properties={
        "content": _String(max_len=MAX_CONTENT),
        "embeds": _Array(items=_RICH_EMBED, max_items=MAX_EMBEDS),
        "allowed_mentions": _ALLOWED_MENTIONS,
        "components": _Array(
            items=_Object(schema="message component", properties=None, nullable=False),
            max_items=40,
        ),
        "attachments": _Array(items=_ATTACHMENT, max_items=MAX_ATTACHMENTS),
        "poll": _Object(schema="PollCreateRequest", properties=None),
        "tts": _Boolean(),
        "flags": _Integer(),  # [integer, null]; the spec lists no flag values
        "username": _String(min_len=1, max_len=MAX_USERNAME),
        "avatar_url": _URL,
        "thread_name": _String(min_len=0, max_len=100),
        "applied_tags": _Array(items=_Snowflake(), max_items=5),
    },
)

# Edit Webhook Message: the properties its JSON/form params table lists.
_EDIT_BODY = _Object(
    schema="WebhookMessageEditRequest",
    nullable=False,
    properties={
        key: rule
        for key, rule in _WEBHOOK_BODY.properties.items()  # type: ignore[union-attr]
        if key in ("content", "embeds", "allowed_mentions", "components", "attachments", "poll")
    }
    | {"flags": _Integer()},
)

_MODEL_TYPE = "Only dictionaries may be used in a ModelType"


def _check_schema(
    errors: _FormErrors, path: tuple[str | int, ...], value: Any, rule: _Rule
) -> None:
    """Check ``value`` against one spec rule, recursively; add each problem to ``errors``."""
    if value is None:
        if not rule.nullable:
            if isinstance(rule, _Object):
                errors.add(path, "MODEL_TYPE_CONVERT", _MODEL_TYPE)
            else:
                errors.add(path, "BASE_TYPE_REQUIRED", "This field is required")
        return
    if isinstance(rule, _String):
        _check_schema_string(errors, path, value, rule)
    elif isinstance(rule, _Integer | _Number):
        _check_schema_number(errors, path, value, rule)
    elif isinstance(rule, _Boolean):
        if not isinstance(value, bool):
            errors.add(path, "BASE_TYPE_BOOLEAN", "Must be either true or false.")
    elif isinstance(rule, _Snowflake):
        if not isinstance(value, str):
            # SnowflakeType is ``type: string``: a JSON number is refused (see above).
            errors.add(path, "BASE_TYPE_STRING", "Must be a string (a snowflake).")
        elif not _SNOWFLAKE_PATTERN.fullmatch(value):
            errors.add(path, "NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.')
    elif isinstance(rule, _Choice):
        if value not in rule.values:
            choices = ", ".join(f"'{v}'" for v in rule.values)
            errors.add(path, "BASE_TYPE_CHOICES", f"Value must be one of {{{choices}}}.")
    elif isinstance(rule, _Array):
        if not isinstance(value, list):
            errors.add(path, "BASE_TYPE_ARRAY", "Must be an array.")
            return
        if len(value) > rule.max_items:
            errors.add(
                path, "BASE_TYPE_MAX_LENGTH", f"Must be {rule.max_items} or fewer in length."
            )
        seen: list[Any] = []
        for n, item in enumerate(value):
            _check_schema(errors, (*path, n), item, rule.items)
            if rule.unique:
                if item in seen:
                    errors.add(
                        (*path, n),
                        "SET_TYPE_ALREADY_CONTAINS_VALUE",
                        "The set already contains this value",
                    )
                seen.append(item)
    else:
        if not isinstance(value, dict):
            errors.add(path, "MODEL_TYPE_CONVERT", _MODEL_TYPE)
            return
        if rule.properties is None:
            return
        for key in value:
            if key not in rule.properties:
                errors.add(
                    (*path, key),
                    "UNKNOWN_PROPERTY",
                    f"Not a property of {rule.schema} (Discord would silently drop it).",
                )
        for key in rule.required:
            if key not in value:
                errors.add((*path, key), "BASE_TYPE_REQUIRED", "This field is required")
        for key, sub in rule.properties.items():
            if key in value:
                _check_schema(errors, (*path, key), value[key], sub)


def _check_schema_string(
    errors: _FormErrors, path: tuple[str | int, ...], value: Any, rule: _String
) -> None:
    """Check ``value`` against a string rule, as Discord words the errors."""
    if not isinstance(value, str):
        errors.add(path, "BASE_TYPE_STRING", "Must be a string.")
        return
    if rule.min_len > 0 and rule.max_len is not None:
        if not rule.min_len <= len(value) <= rule.max_len:
            errors.add(
                path,
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between {rule.min_len} and {rule.max_len} in length.",
            )
    elif rule.max_len is not None and len(value) > rule.max_len:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {rule.max_len} or fewer in length.")
    if rule.fmt == "uri":
        scheme, colon, _ = value.partition(":")
        if not colon or not _URI_SCHEME.fullmatch(scheme) or re.search(r"\s", value):
            errors.add(path, "URL_TYPE_INVALID_URL", "Not a well formed URL.")
    elif rule.fmt == "date-time":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            errors.add(path, "DATE_TYPE_PARSE", f"Could not parse {value}. Should be ISO8601.")


def _check_schema_number(
    errors: _FormErrors, path: tuple[str | int, ...], value: Any, rule: _Integer | _Number
) -> None:
    """Check ``value`` against an integer or number rule, as Discord words the errors."""
    if isinstance(rule, _Integer):
        if not _is_int(value):
            errors.add(path, "NUMBER_TYPE_COERCE", f'Value "{value}" is not int.')
            return
        kind = "int"
    else:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            errors.add(path, "NUMBER_TYPE_COERCE", f'Value "{value}" is not a number.')
            return
        kind = "float"
    if rule.minimum is not None and value < rule.minimum:
        errors.add(
            path,
            "NUMBER_TYPE_MIN",
            f"{kind} value should be greater than or equal to {rule.minimum}.",
        )
    elif rule.maximum is not None and value > rule.maximum:
        errors.add(
            path, "NUMBER_TYPE_MAX", f"{kind} value should be less than or equal to {rule.maximum}."
        )


# ------------------------------------------- what Discord enforces beyond the spec


def _check_name(errors: _FormErrors, key: str, value: Any, *, length: bool = True) -> None:
    """Username/webhook-name rules: 1..80, no clyde/discord, not everyone/here."""
    if not isinstance(value, str):
        if length:
            errors.add((key,), "BASE_TYPE_STRING", "Must be a string.")
        return
    if length and not 1 <= len(value) <= MAX_USERNAME:
        errors.add(
            (key,), "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_USERNAME} in length."
        )
    lowered = value.lower()
    for banned in ("clyde", "discord"):
        if banned in lowered:
            errors.add((key,), "USERNAME_INVALID_CONTAINS", f'Username cannot contain "{banned}"')
    if lowered.strip() in ("everyone", "here"):
        errors.add((key,), "USERNAME_INVALID", f'Username cannot be "{lowered.strip()}"')


def _text(value: Any) -> str:
    """``value`` if it is a string, else the empty string."""
    return value if isinstance(value, str) else ""


def _require_text(errors: _FormErrors, path: tuple[str | int, ...], value: Any) -> None:
    """Discord refuses a missing or blank text here (a wrong type is the schema's error)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        errors.add(path, "BASE_TYPE_REQUIRED", "This field is required")


def _check_embed(errors: _FormErrors, index: int, embed: Any) -> int:
    """Discord's embed rules beyond RichEmbed's types; return the characters it counts.

    The characters are those towards the 6000-per-message total (title, description,
    field names and values, footer text, author name).
    """
    if not isinstance(embed, dict):
        return 0  # already refused by the schema
    base: tuple[str | int, ...] = ("embeds", index)
    total = len(_text(embed.get("title"))) + len(_text(embed.get("description")))
    has_body = bool(embed.get("title")) or bool(embed.get("description"))
    for key, text_key in (("footer", "text"), ("author", "name")):
        sub = embed.get(key)
        if isinstance(sub, dict):
            _require_text(errors, (*base, key, text_key), sub.get(text_key))
            total += len(_text(sub.get(text_key)))
            has_body = has_body or bool(sub.get(text_key))
    for key in ("image", "thumbnail"):
        sub = embed.get(key)
        if isinstance(sub, dict):
            _require_text(errors, (*base, key, "url"), sub.get("url"))
            has_body = True
    fields = embed.get("fields")
    if isinstance(fields, list):
        for n, item in enumerate(fields):
            if not isinstance(item, dict):
                continue
            for key in ("name", "value"):
                # A missing or null name/value is the schema's BASE_TYPE_REQUIRED already.
                if isinstance(item.get(key), str):
                    _require_text(errors, (*base, "fields", n, key), item[key])
                total += len(_text(item.get(key)))
        has_body = has_body or bool(fields)
    if not has_body:
        # What Discord answers for {} (and for embeds with nothing displayable).
        errors.add((*base, "description"), "BASE_TYPE_REQUIRED", "This field is required")
    return total


def _check_allowed_mentions(errors: _FormErrors, value: Any) -> None:
    """``parse: ["users"]`` with ``users: [ids]`` (or roles) is refused by Discord."""
    if not isinstance(value, dict):
        return
    parse = value.get("parse")
    for key in ("users", "roles"):
        ids = value.get(key)
        if isinstance(ids, list) and ids and isinstance(parse, list) and key in parse:
            errors.add(
                ("allowed_mentions",),
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                f'parse:["{key}"] and {key}: [ids...] are mutually exclusive.',
            )


def _check_attachment_ids(errors: _FormErrors, attachments: Any, file_slots: set[int]) -> None:
    """Each ``attachments[].id`` names the ``n`` of a ``files[n]`` part of this request.

    Discord's docs: "for new attachments this must match the n in files[n]". An execute
    creates a message, so there is no existing attachment to name instead. The error code
    is the fake's own (Discord's is unverified). Ids that are not snowflake strings were
    already refused by the schema.
    """
    if not isinstance(attachments, list):
        return
    for n, item in enumerate(attachments):
        if not isinstance(item, dict):
            continue
        ref = item.get("id")
        if (
            isinstance(ref, str)
            and _SNOWFLAKE_PATTERN.fullmatch(ref)
            and int(ref) not in file_slots
        ):
            errors.add(
                ("attachments", n, "id"),
                "UNKNOWN_ATTACHMENT",
                f"No files[{ref}] part in this request.",
            )


def _check_flags(errors: _FormErrors, value: Any, allowed: int) -> None:
    """Only the documented flags may be set (the error code is the fake's own)."""
    if _is_int(value) and value & ~allowed:
        errors.add(
            ("flags",),
            "MESSAGE_FLAGS_INVALID",
            f"Only flags {allowed} may be set here (got {value}).",
        )


def _validate_message(
    payload: JSONObject,
    file_slots: set[int],
    file_count: int,
    max_files: int,
    *,
    edit: bool = False,
) -> _FormErrors:
    """Check an execute (or edit) body against the spec's schema and Discord's limits.

    ``file_slots`` holds the ``n`` of each ``files[n]`` part; ``file_count`` counts every
    uploaded file (including legacy ``file``/``fileN`` parts).
    """
    errors = _FormErrors()
    _check_schema(errors, (), payload, _EDIT_BODY if edit else _WEBHOOK_BODY)
    _check_flags(errors, payload.get("flags"), EDIT_FLAGS if edit else EXECUTE_FLAGS)
    if isinstance(payload.get("username"), str):
        _check_name(errors, "username", payload["username"], length=False)
    embeds = payload.get("embeds")
    if isinstance(embeds, list):
        total = sum(_check_embed(errors, n, embed) for n, embed in enumerate(embeds))
        if total > MAX_EMBED_TOTAL:
            errors.add(
                ("embeds",),
                "MAX_EMBED_SIZE_EXCEEDED",
                f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}",
            )
    _check_allowed_mentions(errors, payload.get("allowed_mentions"))
    _check_attachment_ids(errors, payload.get("attachments"), file_slots)
    if file_count > max_files:
        errors.add(
            ("attachments",), "BASE_TYPE_MAX_LENGTH", f"Must be {max_files} or fewer in length."
        )
    return errors


def _is_empty_message(payload: JSONObject, file_count: int) -> bool:
    """Whether a message would have no content, embed, component, poll, sticker or file."""
    content = payload.get("content")
    has_content = isinstance(content, str) and bool(content.strip())
    has_other = any(
        bool(payload.get(key)) for key in ("embeds", "components", "poll", "sticker_ids")
    )
    return not (has_content or has_other or file_count)


def _mentions_policy_problem(payload: JSONObject) -> str | None:
    """astra policy: nothing parses mentions; only ids the content names may be listed."""
    value = payload.get("allowed_mentions")
    if not isinstance(value, dict):
        return "no allowed_mentions object"
    if value.get("parse") != []:
        return f"parse is {value.get('parse')!r}, expected []"
    content = payload.get("content")
    text = content if isinstance(content, str) else ""
    for key, pattern in (("users", _USER_MENTION), ("roles", _ROLE_MENTION)):
        listed = value.get(key)
        if key in value and not isinstance(listed, list):
            return f"{key} is {listed!r}, expected a list"
        named = set(pattern.findall(text))
        phantom = [i for i in listed or [] if str(i) not in named]
        if phantom:
            return f"{key} lists {phantom!r}, which the content does not mention"
    return None


# ------------------------------------------------------------------------ server


class FakeDiscord:
    """Strict fake of Discord's HTTP API (webhooks + channel webhooks) on 127.0.0.1.

    All limits are constructor keyword arguments so tests can make windows tight.
    State is guarded by a ``threading.Lock``: the server thread writes it, tests
    read it from the main thread through the inspection methods/properties, which
    return copies.
    """

    def __init__(
        self,
        *,
        bucket_limit: int = 5,
        bucket_window: float = 2.0,
        channel_limit: int = 30,
        channel_window: float = 60.0,
        global_limit: int = 50,
        global_window: float = 1.0,
        max_file_size: int = 10 * MiB,
        max_files: int = 10,
        require_allowed_mentions: bool = True,
        message_content_intent: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        shutdown_timeout: float = 1.0,
    ) -> None:
        """Configure the fake; nothing listens until :meth:`start`."""
        self.bucket_limit = bucket_limit
        self.bucket_window = bucket_window
        self.channel_limit = channel_limit
        self.channel_window = channel_window
        self.global_limit = global_limit
        self.global_window = global_window
        self.max_file_size = max_file_size
        self.max_files = max_files
        self.require_allowed_mentions = require_allowed_mentions
        # Without the privileged intent, listings show webhook messages with empty content,
        # embeds and attachments (discord-api-docs#5411); fetching through the webhook works.
        self.message_content_intent = message_content_intent
        self.host = host
        self._requested_port = port
        self._shutdown_timeout = shutdown_timeout

        self._lock = threading.Lock()
        self._id_lock = threading.Lock()
        self._increment = itertools.count()
        self._last_snowflake = 0

        self.guild_id: int = self._snowflake()
        self.application_id: int = self._snowflake()
        # The id used for webhooks a test creates "by hand" (another app / a user).
        self.other_application_id: int = self._snowflake()
        self.bot_token: str = self._make_bot_token(self.application_id)

        self._channels: dict[int, _Channel] = {}
        self._webhooks: dict[int, Webhook] = {}
        self._deleted: set[int] = set()
        self._messages: list[PostedMessage] = []
        self._deleted_messages: set[int] = set()
        self._attachments: dict[int, tuple[PostedMessage, int]] = {}
        # Signs CDN links the way Discord does (ex/is/hm): an unsigned or altered link is 404.
        self._cdn_key = secrets.token_bytes(16)
        self._requests: list[RecordedRequest] = []
        self._violations: list[str] = []
        self._refusals: list[str] = []
        self._refused: set[tuple[str, int, int]] = set()
        self._buckets: dict[str, _Bucket] = {}
        self._global_times: deque[float] = deque()
        self._inject = _Injections()
        self._webhooks_created = 0
        self._channel_429s = 0
        self._global_429s = 0
        self._bucket_429s = 0

        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._port: int | None = None
        self._used = False

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FakeDiscord:
        """Start serving on ``host``/ephemeral port in a background thread; single use."""
        if self._used:
            raise RuntimeError("FakeDiscord is single-use; create a new instance")
        self._used = True
        ready = threading.Event()
        failures: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready, failures), name="fake-discord", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError("FakeDiscord did not start within 10 s")
        if failures:
            raise RuntimeError("FakeDiscord failed to start") from failures[0]
        return self

    def stop(self) -> None:
        """Stop the server and join its thread (in-flight requests get ``shutdown_timeout``)."""
        loop, stop_event, thread = self._loop, self._stop_event, self._thread
        if loop is None or stop_event is None or thread is None:
            return
        loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout=self._shutdown_timeout + 10)
        self._loop = self._stop_event = self._thread = None

    def __enter__(self) -> FakeDiscord:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _thread_main(self, ready: threading.Event, failures: list[BaseException]) -> None:
        """The server thread: run the event loop until stopped."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready, failures))
        except BaseException as exc:
            failures.append(exc)
            ready.set()
        finally:
            loop.close()

    async def _serve(self, ready: threading.Event, failures: list[BaseException]) -> None:
        """Serve on the loop until stopped; ``ready`` is set once it listens or failed."""
        self._stop_event = asyncio.Event()
        # Room for max_files files one byte over the limit, so an oversize file is
        # answered with Discord's 413 body rather than aiohttp's.
        app = web.Application(client_max_size=(self.max_files + 2) * (self.max_file_size + MiB))
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=self._shutdown_timeout)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._requested_port)
            await site.start()
            self._port = int(runner.addresses[0][1])
        except BaseException as exc:
            failures.append(exc)
            ready.set()
            await runner.cleanup()
            return
        ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await runner.cleanup()

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("FakeDiscord is not started")
        return self._port

    @property
    def api_base(self) -> str:
        """``http://127.0.0.1:PORT/api/v10``."""
        return f"http://{self.host}:{self.port}/api/v{API_VERSION}"

    # ------------------------------------------------------------ setup API

    def add_channel(
        self,
        channel_id: int,
        *,
        manage_webhooks: bool = True,
        read_history: bool = True,
        channel_type: int = GUILD_TEXT,
    ) -> None:
        """Declare a channel; ``manage_webhooks=False`` makes bot calls answer 403.

        ``read_history=False`` (no View Channel / Read Message History) makes listing its
        messages answer 403. ``channel_type`` is Discord's channel type: ``GUILD_TEXT`` (0)
        or ``GUILD_FORUM`` (15). Calling it again for a known channel changes all three.
        """
        with self._lock:
            channel = self._channels.setdefault(channel_id, _Channel(channel_id, manage_webhooks))
            channel.manage_webhooks = manage_webhooks
            channel.read_history = read_history
            channel.type = channel_type

    def add_thread(self, parent_id: int, name: str, *, archived: bool = False) -> int:
        """Create a public thread in ``parent_id`` (a known channel) by hand; its id."""
        thread_id = self._snowflake()
        with self._lock:
            self._channels[thread_id] = _Channel(
                thread_id,
                True,
                type=PUBLIC_THREAD,
                parent_id=parent_id,
                name=name,
                archived=archived,
            )
        return thread_id

    def archive_thread(self, thread_id: int) -> None:
        """Archive a thread, as Discord does after its inactivity period."""
        with self._lock:
            self._channels[thread_id].archived = True

    def delete_thread(self, thread_id: int) -> None:
        """Delete a thread (a moderator did): posts naming it answer 404 / 10003."""
        with self._lock:
            if self._channels[thread_id].type != PUBLIC_THREAD:
                raise KeyError(thread_id)
            del self._channels[thread_id]

    def threads(self, parent_id: int) -> dict[str, int]:
        """The threads of ``parent_id``: name → id (the latest of a name wins)."""
        with self._lock:
            return {
                c.name: c.id
                for c in sorted(self._channels.values(), key=lambda c: c.id)
                if c.parent_id == parent_id
            }

    def create_webhook(
        self,
        channel_id: int,
        name: str = "astra",
        *,
        application_id: int | bool | None = True,
    ) -> Webhook:
        """Create a webhook "by hand" (as a user would in the Discord client).

        The channel is added implicitly if unknown.  By default the webhook belongs
        to ``other_application_id`` so the bot API lists it *without* a token;
        pass ``application_id=discord.application_id`` to make it look bot-created,
        or ``None`` for a user-created webhook.  Does not count in
        ``webhooks_created`` and ignores the 15-per-channel cap.
        """
        app_id = self.other_application_id if application_id is True else application_id
        if isinstance(app_id, bool):
            raise TypeError("application_id must be an int, None or left at its default")
        with self._lock:
            if channel_id not in self._channels:
                self._channels[channel_id] = _Channel(channel_id, True)
            return self._new_webhook_locked(channel_id, name, app_id)

    def delete_webhook(self, webhook_id: int) -> None:
        """Delete a webhook: later executes answer 404 / 10015 Unknown Webhook."""
        with self._lock:
            if webhook_id not in self._webhooks:
                raise KeyError(webhook_id)
            self._deleted.add(webhook_id)

    # ------------------------------------------------------ failure injection

    def fail_next(self, n: int, status: int = 500) -> None:
        """The next ``n`` executes answer ``status`` with a JSON body; nothing is stored.

        Rate-limit headers are still sent and the bucket is still consumed (the
        request reached Discord's API layer).
        """
        with self._lock:
            self._inject.fail.extend([status] * n)

    def reset_next(self, n: int) -> None:
        """The next ``n`` executes are read, then the TCP connection is reset (RST)
        without any response; nothing is stored and no bucket slot is used."""
        with self._lock:
            self._inject.resets += n

    def outage(self, seconds: float, status: int = 503) -> None:
        """For the next ``seconds``, every execute answers ``status`` (JSON body, with
        rate-limit headers); nothing is stored."""
        with self._lock:
            self._inject.outage_until = time.monotonic() + seconds
            self._inject.outage_status = status

    def ratelimit_next(self, n: int, retry_after: float = 1.0) -> None:
        """The next ``n`` executes answer a genuine-looking 429 (scope ``user``).

        Not a violation; but sending again to that webhook before ``retry_after``
        has elapsed *is* one ("ignored rate limit headers").
        """
        with self._lock:
            self._inject.ratelimits.extend([retry_after] * n)

    def delay_next(self, n: int, seconds: float) -> None:
        """The next ``n`` accepted executes are answered after ``seconds``.

        The message IS stored (after the delay) even if the client timed out and
        went away: this mimics Discord posting while the client sees a timeout, so
        a naive retry posts a duplicate.
        """
        with self._lock:
            self._inject.delays.extend([seconds] * n)

    def ban_next(self, n: int) -> None:
        """The next ``n`` requests (any route) get a Cloudflare ban: 429, no ``Via``,
        ``text/plain`` body ``error code: 1015``."""
        with self._lock:
            self._inject.bans += n

    def fail_reads_next(self, n: int, status: int = 500) -> None:
        """The next ``n`` history reads (``GET /channels/{id}/messages``) answer ``status``."""
        with self._lock:
            self._inject.read_fail.extend([status] * n)

    def ratelimit_reads_next(self, n: int, retry_after: float = 1.0) -> None:
        """The next ``n`` history reads answer a genuine-looking 429 (scope ``user``);
        reading again before ``retry_after`` is a violation."""
        with self._lock:
            self._inject.read_ratelimits.extend([retry_after] * n)

    # ------------------------------------------------------- channel content

    def post_as_user(
        self,
        channel_id: int,
        content: str,
        *,
        bot: bool = False,
        files: list[tuple[str, bytes]] | None = None,
    ) -> PostedMessage:
        """Store a message a person (or, with ``bot=True``, another bot) sent to the channel."""
        author = {
            "id": str(self._snowflake()),
            "username": "another-bot" if bot else "a-person",
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
        }
        return self._store(channel_id, 0, {"content": content}, files or [], author)

    def store_through_webhook(
        self,
        webhook: Webhook,
        payload: JSONObject,
        files: list[tuple[str, bytes]] | None = None,
    ) -> PostedMessage:
        """Store a message as if some other program had executed ``webhook`` (no checks)."""
        return self._store(webhook.channel_id, webhook.id, payload, files or [], None)

    def delete_message(self, message_id: int) -> None:
        """Delete a stored message: listings and fetches no longer find it."""
        with self._lock:
            if not any(m.message_id == message_id for m in self._messages):
                raise KeyError(message_id)
            self._deleted_messages.add(message_id)

    def _store(
        self,
        channel_id: int,
        webhook_id: int,
        payload: JSONObject,
        files: list[tuple[str, bytes]],
        author: JSONObject | None,
    ) -> PostedMessage:
        """Store a message that did not come through an execute request."""
        message = PostedMessage(
            message_id=self._snowflake(),
            webhook_id=webhook_id,
            channel_id=channel_id,
            payload=payload,
            files=list(files),
            headers={},
            timestamp=datetime.now(UTC).isoformat(timespec="microseconds"),
            author=author,
        )
        with self._lock:
            self._channels.setdefault(channel_id, _Channel(channel_id, True))
            return self._remember_locked(message)

    def _remember_locked(self, message: PostedMessage) -> PostedMessage:
        """Store ``message``, giving each attachment its own id (what CDN links name)."""
        ids = tuple(self._snowflake() for _ in message.files)
        message = replace(message, attachment_ids=ids)
        self._messages.append(message)
        for n, attachment_id in enumerate(ids):
            self._attachments[attachment_id] = (message, n)
        return message

    # ------------------------------------------------------------ inspection

    def messages(self, channel_id: int) -> list[PostedMessage]:
        """Messages stored in ``channel_id``, in arrival (storage) order.

        A forum or text channel's own list leaves out its threads' messages (see
        ``thread_messages``), as Discord's channel history does.
        """
        with self._lock:
            return [
                m
                for m in self._messages
                if m.channel_id == channel_id and m.message_id not in self._deleted_messages
            ]

    def thread_messages(self, parent_id: int) -> list[PostedMessage]:
        """Messages stored in any thread of ``parent_id``, in storage order."""
        with self._lock:
            threads = {c.id for c in self._channels.values() if c.parent_id == parent_id}
            return [
                m
                for m in self._messages
                if m.channel_id in threads and m.message_id not in self._deleted_messages
            ]

    def all_messages(self) -> list[PostedMessage]:
        """Every stored message, in storage order."""
        with self._lock:
            return [m for m in self._messages if m.message_id not in self._deleted_messages]

    def all_events(self, channel_id: int) -> list[JSONObject]:
        """``jsonl_events()`` of every message in ``channel_id``, concatenated in order."""
        return [event for message in self.messages(channel_id) for event in message.jsonl_events()]

    def webhooks(self, channel_id: int) -> list[Webhook]:
        """Live (not deleted) webhooks of ``channel_id``."""
        with self._lock:
            return self._channel_webhooks_locked(channel_id)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in arrival order (bodies included)."""
        with self._lock:
            return list(self._requests)

    @property
    def violations(self) -> list[str]:
        """Everything a correct client never does, one line each."""
        with self._lock:
            return list(self._violations)

    @property
    def refusals(self) -> list[str]:
        """First-time 401/403/404 answers (not violations; repeating them is)."""
        with self._lock:
            return list(self._refusals)

    @property
    def webhooks_created(self) -> int:
        """Webhooks created through ``POST /channels/{id}/webhooks``."""
        with self._lock:
            return self._webhooks_created

    @property
    def channel_429s(self) -> int:
        """Per-channel (``scope: shared``) 429s served."""
        with self._lock:
            return self._channel_429s

    @property
    def global_429s(self) -> int:
        """Global 429s served."""
        with self._lock:
            return self._global_429s

    @property
    def bucket_429s(self) -> int:
        """Per-route 429s earned by ignoring headers (each is also a violation)."""
        with self._lock:
            return self._bucket_429s

    def assert_no_violations(self) -> None:
        """Raise ``AssertionError`` listing every violation, if any."""
        violations = self.violations
        if violations:
            raise AssertionError("Discord protocol violations:\n  " + "\n  ".join(violations))

    # ------------------------------------------------------------- internals

    def _snowflake(self) -> int:
        """A new Discord snowflake, increasing across threads."""
        with self._id_lock:
            now_ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
            value = (now_ms << 22) | (1 << 17) | (next(self._increment) & 0xFFF)
            value = max(value, self._last_snowflake + 1)
            self._last_snowflake = value
            return value

    @staticmethod
    def _make_bot_token(application_id: int) -> str:
        """A random token shaped like a real bot token."""
        # Same shape as real tokens: base64(user id) . 6 chars . 38 chars.
        head = base64.b64encode(str(application_id).encode()).decode().rstrip("=")
        return f"{head}.{secrets.token_urlsafe(4)[:6]}.{secrets.token_urlsafe(29)[:38]}"

    def _new_webhook_locked(
        self, channel_id: int, name: str, application_id: int | None
    ) -> Webhook:
        """Create and store a webhook on ``channel_id``."""
        webhook_id = self._snowflake()
        token = secrets.token_urlsafe(51)[:68]
        webhook = Webhook(
            id=webhook_id,
            token=token,
            channel_id=channel_id,
            name=name,
            application_id=application_id,
            url=f"{self.api_base}/webhooks/{webhook_id}/{token}",
            discord_url=f"https://discord.com/api/webhooks/{webhook_id}/{token}",
        )
        self._webhooks[webhook_id] = webhook
        return webhook

    def _channel_webhooks_locked(self, channel_id: int) -> list[Webhook]:
        """The webhooks of ``channel_id`` that are not deleted."""
        return [
            w
            for w in self._webhooks.values()
            if w.channel_id == channel_id and w.id not in self._deleted
        ]

    def _violation_locked(self, category: str, detail: str, request: web.Request) -> None:
        """Record a protocol violation, with the request, token redacted."""
        self._violations.append(f"{category}: {detail} [{request.method} {_redact(request.path)}]")

    def _refuse_locked(
        self, request: web.Request, kind: str, resource: int, status: int, body: JSONObject
    ) -> web.Response:
        """Answer a 401/403/404; only a repeat after the same answer is a violation."""
        key = (kind, resource, status)
        line = f"{status} {body['message']} ({kind} {resource})"
        if key in self._refused:
            self._violation_locked("repeated request after", line, request)
        else:
            self._refused.add(key)
            self._refusals.append(line)
        return _json_response(status, body)

    def _webhook_json(self, webhook: Webhook, *, with_token: bool) -> JSONObject:
        """A webhook object as Discord returns it, with its token if asked."""
        data: JSONObject = {
            "application_id": None
            if webhook.application_id is None
            else str(webhook.application_id),
            "avatar": None,
            "channel_id": str(webhook.channel_id),
            "guild_id": str(self.guild_id),
            "id": str(webhook.id),
            "name": webhook.name,
            "type": 1,
        }
        if with_token:
            data["token"] = webhook.token
        return data

    def _cdn_url(self, message: PostedMessage, n: int) -> str:
        """A signed CDN link to attachment ``n``, valid for a day (Discord's ex/is/hm)."""
        filename = message.files[n][0]
        path = f"/attachments/{message.channel_id}/{message.attachment_ids[n]}/{filename}"
        issued = int(time.time())
        expires = issued + CDN_LINK_SECONDS
        return f"http://{self.host}:{self.port}{path}?{self._cdn_query(path, expires, issued)}"

    def _cdn_query(self, path: str, expires: int, issued: int) -> str:
        """The ``ex``/``is``/``hm`` query of a CDN link."""
        mac = hashlib.sha256(self._cdn_key + f"{path}:{expires:x}:{issued:x}".encode())
        return f"ex={expires:x}&is={issued:x}&hm={mac.hexdigest()}&"

    def _message_json(
        self, message: PostedMessage, webhook: Webhook | None, *, readable: bool = True
    ) -> JSONObject:
        """A message object as Discord returns it (``?wait=true``, fetches, listings).

        ``readable=False`` is a listing without the Message Content intent: content, embeds
        and attachments come back empty.
        """
        payload = message.payload
        embeds = [{**e, "type": "rich"} for e in message.embeds if isinstance(e, dict)]
        attachments = [
            {
                "id": str(message.attachment_ids[n]),
                "filename": filename,
                "size": len(data),
                "url": self._cdn_url(message, n),
                "proxy_url": self._cdn_url(message, n),
                "content_type": "application/gzip"
                if filename.endswith(".gz")
                else "application/octet-stream",
            }
            for n, (filename, data) in enumerate(message.files)
        ]
        if message.author is not None or webhook is None:
            author = dict(message.author or {})
        else:
            author = {
                "id": str(webhook.id),
                "username": payload.get("username") or webhook.name,
                "discriminator": "0000",
                "avatar": None,
                "bot": True,
            }
        data: JSONObject = {
            "id": str(message.message_id),
            "type": 0,
            "channel_id": str(message.channel_id),
            "author": author,
            "content": (message.content or "") if readable else "",
            "embeds": embeds if readable else [],
            "attachments": attachments if readable else [],
            "mentions": [
                {"id": i, "username": f"user{i}", "discriminator": "0", "avatar": None}
                for i in message.mentions
            ],
            "mention_roles": message.mention_roles,
            "mention_everyone": False,
            "pinned": False,
            "tts": bool(payload.get("tts", False)),
            "timestamp": message.timestamp,
            "edited_timestamp": message.edited_timestamp,
            "flags": message.flags,
        }
        if message.webhook_id:
            data["webhook_id"] = str(message.webhook_id)
        return data

    def _thread_json(self, thread: _Channel) -> JSONObject:
        """A thread channel object as the thread listings return it."""
        return {
            "id": str(thread.id),
            "type": thread.type,
            "guild_id": str(self.guild_id),
            "parent_id": str(thread.parent_id),
            "name": thread.name,
            "owner_id": str(self.application_id),
            "message_count": sum(1 for m in self._messages if m.channel_id == thread.id),
            "thread_metadata": {
                "archived": thread.archived,
                "auto_archive_duration": 1440,
                "archive_timestamp": datetime.now(UTC).isoformat(),
                "locked": False,
            },
        }

    # ---- rate limiting

    def _bucket_locked(self, key: str) -> _Bucket:
        """The rate-limit bucket of ``key``, created on first use."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket_id = hashlib.md5(
                f"{self.application_id}:{key}".encode(), usedforsecurity=False
            ).hexdigest()
            bucket = self._buckets[key] = _Bucket(bucket_id, self.bucket_limit)
        return bucket

    def _bucket_headers(self, bucket: _Bucket, now: float) -> dict[str, str]:
        """The X-RateLimit headers of ``bucket`` at ``now``."""
        reset_after = _ceil_ms(bucket.window_end - now)
        return {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Remaining": str(max(0, bucket.limit - bucket.used)),
            "X-RateLimit-Reset": f"{_ceil_ms(time.time() + reset_after):.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket.bucket_id,
        }

    @staticmethod
    def _too_many(
        retry_after: float, *, scope: str, is_global: bool, headers: dict[str, str]
    ) -> web.Response:
        """A 429 in Discord's shape, with Retry-After and the scope."""
        retry_after = max(_ceil_ms(retry_after), 0.001)
        headers = {
            **headers,
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Scope": scope,
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": is_global,
        }
        return _json_response(429, body, headers)

    def _take_bucket_locked(
        self, request: web.Request, key: str, now: float
    ) -> tuple[_Bucket, web.Response | None]:
        """Consume one slot of a route bucket, or answer the 429 the client earned."""
        bucket = self._bucket_locked(key)
        if now < bucket.blocked_until - _CLOCK_TOLERANCE:
            self._bucket_429s += 1
            self._violation_locked(
                "ignored rate limit headers",
                f"sent {bucket.blocked_until - now:.3f}s before retry_after elapsed",
                request,
            )
            headers = self._bucket_headers(bucket, now)
            headers["X-RateLimit-Remaining"] = "0"
            headers["X-RateLimit-Reset-After"] = f"{_ceil_ms(bucket.blocked_until - now):.3f}"
            return bucket, self._too_many(
                bucket.blocked_until - now, scope="user", is_global=False, headers=headers
            )
        if now >= bucket.window_end - _CLOCK_TOLERANCE:
            bucket.window_end = now + self.bucket_window
            bucket.used = 0
        if bucket.used >= bucket.limit:
            self._bucket_429s += 1
            self._violation_locked(
                "ignored rate limit headers",
                f"Remaining was 0, sent {bucket.window_end - now:.3f}s before the reset",
                request,
            )
            return bucket, self._too_many(
                bucket.window_end - now,
                scope="user",
                is_global=False,
                headers=self._bucket_headers(bucket, now),
            )
        bucket.used += 1
        return bucket, None

    def _take_global_locked(self, now: float) -> web.Response | None:
        """Count a request against the global limit; a 429 when it is spent."""
        times = self._global_times
        while times and times[0] <= now - self.global_window + _CLOCK_TOLERANCE:
            times.popleft()
        if len(times) >= self.global_limit:
            self._global_429s += 1
            return self._too_many(
                times[0] + self.global_window - now, scope="global", is_global=True, headers={}
            )
        times.append(now)
        return None

    # ---- request handling

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """Record a request and its answer (a 413 for a body over the server's limit)."""
        too_large = False
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            body, too_large = b"", True
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=request.query_string,
            headers=dict(request.headers),
            body=body,
        )
        with self._lock:
            self._requests.append(record)
        if too_large:
            with self._lock:
                self._violation_locked(
                    "Request entity too large", "body over the server limit", request
                )
            response: web.StreamResponse | None = _json_response(
                413, _error("Request entity too large", 40005)
            )
        else:
            response = await self._dispatch(request, body)
        if response is None:  # connection deliberately reset
            with self._lock:
                record.reset = True
            return web.Response(status=500)  # never written: the transport is gone
        if not isinstance(response, _BareResponse):
            response.headers["Via"] = VIA
        with self._lock:
            record.status = response.status
        return response

    async def _dispatch(self, request: web.Request, body: bytes) -> web.StreamResponse | None:
        """Route a request to its endpoint; an injected Cloudflare ban answers first."""
        with self._lock:
            if self._inject.bans > 0:
                self._inject.bans -= 1
                return _BareResponse(status=429, text="error code: 1015", content_type="text/plain")

        if cdn := _CDN_ATTACHMENT.match(request.path):
            return self._cdn_download(request, int(cdn.group(1)), int(cdn.group(2)), cdn.group(3))
        match = _API_PATH.match(request.path)
        if match is None:
            with self._lock:
                self._violation_locked("unknown route", "not under /api", request)
            return _json_response(404, _http_error(404))
        version, sub = match.group(1), match.group(2) or ""
        if version != str(API_VERSION):
            with self._lock:
                self._violation_locked(
                    "unversioned or wrong API version", f"v{version or '6 (implicit)'}", request
                )
            return _json_response(400, _error("Invalid API version provided", 50041))

        now = time.monotonic()
        with self._lock:
            limited = self._take_global_locked(now)
        if limited is not None:
            return limited

        user_agent = request.headers.get("User-Agent", "")
        if not user_agent.startswith("DiscordBot ("):
            with self._lock:
                self._violation_locked(
                    "missing or invalid User-Agent",
                    repr(user_agent) if user_agent else "none",
                    request,
                )
            return _json_response(400, _http_error(400))

        if m := _ROUTE_WEBHOOK.match(sub):
            if request.method == "POST":
                return await self._execute(request, body, int(m.group(1)), m.group(2))
            if request.method == "GET":
                return self._get_webhook(request, int(m.group(1)), m.group(2))
        elif m := _ROUTE_WEBHOOK_MESSAGE.match(sub):
            if request.method == "GET":
                return self._get_message(request, int(m.group(1)), m.group(2), int(m.group(3)))
            if request.method in ("PATCH", "DELETE"):
                return self._edit_message(
                    request, body, int(m.group(1)), m.group(2), int(m.group(3))
                )
        elif m := _ROUTE_CHANNEL_MESSAGES.match(sub):
            if request.method == "GET":
                return self._channel_messages(request, int(m.group(1)))
        elif m := _ROUTE_CHANNEL_WEBHOOKS.match(sub):
            if request.method in ("GET", "POST"):
                return self._channel_webhooks(request, body, int(m.group(1)))
        elif m := _ROUTE_CHANNEL.match(sub):
            if request.method == "GET":
                return self._get_channel(request, int(m.group(1)))
        elif m := _ROUTE_ACTIVE_THREADS.match(sub) or _ROUTE_ARCHIVED_THREADS.match(sub):
            if request.method == "GET":
                return self._list_threads(request, int(m.group(1)), "guilds" in sub)
        else:
            with self._lock:
                self._violation_locked("unknown route", sub, request)
            return _json_response(404, _http_error(404))
        with self._lock:
            self._violation_locked("method not allowed", request.method, request)
        return _json_response(405, _http_error(405))

    def _lookup_locked(
        self, request: web.Request, webhook_id: int, token: str
    ) -> Webhook | web.Response:
        """The webhook of ``webhook_id`` if ``token`` matches; a refusal otherwise."""
        webhook = self._webhooks.get(webhook_id)
        if webhook is None or webhook_id in self._deleted:
            return self._refuse_locked(
                request, "webhook", webhook_id, 404, _error("Unknown Webhook", 10015)
            )
        if not secrets.compare_digest(webhook.token, token):
            return self._refuse_locked(
                request, "webhook", webhook_id, 401, _error("Invalid Webhook Token", 50027)
            )
        return webhook

    def _parse_body_locked(
        self, request: web.Request, body: bytes
    ) -> tuple[JSONObject, list[tuple[str, bytes]], set[int]] | web.Response:
        """Decode a JSON or multipart execute body (violations recorded by caller's lock).

        Returns the payload, the uploaded files in part order, and the ``n`` of every
        ``files[n]`` part (what ``attachments[].id`` may name).
        """
        content_type = request.content_type
        files: list[tuple[str, bytes]] = []
        file_slots: set[int] = set()
        if content_type == "application/json":
            raw: bytes | None = body
        elif content_type == "multipart/form-data":
            boundary = _BOUNDARY.search(request.headers.get("Content-Type", ""))
            parts = (
                _parse_multipart(body, boundary.group(1) or boundary.group(2)) if boundary else None
            )
            if parts is None:
                self._violation_locked("malformed multipart body", "could not split parts", request)
                return _json_response(400, _http_error(400))
            raw = None
            for name, filename, data in parts:
                if name == "payload_json" and filename is None:
                    raw = data
                elif name is not None and _FILE_PART.match(name) and filename:
                    files.append((filename, data))
                    if slot := _FILES_N.fullmatch(name):
                        file_slots.add(int(slot.group(1)))
                else:
                    self._violation_locked(
                        "unrecognised multipart part",
                        f"name={name!r} filename={filename!r} (dropped)",
                        request,
                    )
        else:
            self._violation_locked(
                "missing or unsupported Content-Type",
                request.headers.get("Content-Type", "none"),
                request,
            )
            return _json_response(400, _http_error(400))
        if raw is None:
            return {}, files, file_slots
        try:
            payload = json.loads(raw)
        except ValueError:
            self._violation_locked("invalid JSON", "body does not parse", request)
            return _json_response(400, _error("The request body contains invalid JSON.", 50109))
        if not isinstance(payload, dict):
            errors = _FormErrors()
            errors.add((), "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            self._violation_locked("Invalid Form Body", ", ".join(errors.paths), request)
            return _json_response(
                400, {**_error("Invalid Form Body", 50035), "errors": errors.tree}
            )
        return payload, files, file_slots

    async def _execute(
        self, request: web.Request, body: bytes, webhook_id: int, token: str
    ) -> web.StreamResponse | None:
        """POST /webhooks/{id}/{token}: check, store and answer an execute."""
        now = time.monotonic()
        with self._lock:
            found = self._lookup_locked(request, webhook_id, token)
            if isinstance(found, web.Response):
                return found
            webhook = found
            if self._inject.resets > 0:
                self._inject.resets -= 1
                transport = request.transport
                if transport is not None:
                    sock = transport.get_extra_info("socket")
                    if sock is not None:
                        # SO_LINGER 0 turns close into an RST: "connection reset by peer".
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                    transport.abort()
                return None

            bucket, limited = self._take_bucket_locked(request, f"webhook:{webhook_id}", now)
            if limited is not None:
                return limited
            if self._inject.ratelimits:
                retry_after = self._inject.ratelimits.popleft()
                bucket.used -= 1  # an injected 429 does not use a slot
                bucket.blocked_until = now + retry_after
                headers = self._bucket_headers(bucket, now)
                headers["X-RateLimit-Remaining"] = "0"
                headers["X-RateLimit-Reset-After"] = f"{_ceil_ms(retry_after):.3f}"
                headers["X-RateLimit-Reset"] = f"{_ceil_ms(time.time() + retry_after):.3f}"
                return self._too_many(retry_after, scope="user", is_global=False, headers=headers)
            headers = self._bucket_headers(bucket, now)

            failure: int | None = None
            if now < self._inject.outage_until:
                failure = self._inject.outage_status
            elif self._inject.fail:
                failure = self._inject.fail.popleft()
            if failure is not None:
                return _json_response(failure, _http_error(failure), headers)

            wait_raw = request.query.get("wait")
            wait = False
            if wait_raw is not None:
                if wait_raw.lower() in ("true", "1"):
                    wait = True
                elif wait_raw.lower() not in ("false", "0"):
                    errors = _FormErrors()
                    errors.add(
                        ("wait",), "BOOLEAN_TYPE_COERCE", f'Value "{wait_raw}" is not boolean.'
                    )
                    self._violation_locked("Invalid Form Body", ", ".join(errors.paths), request)
                    return _json_response(
                        400, {**_error("Invalid Form Body", 50035), "errors": errors.tree}, headers
                    )

            parsed = self._parse_body_locked(request, body)
            if isinstance(parsed, web.Response):
                parsed.headers.update(headers)
                return parsed
            payload, files, file_slots = parsed

            oversize = [(name, len(data)) for name, data in files if len(data) > self.max_file_size]
            if oversize:
                self._violation_locked(
                    "Request entity too large",
                    ", ".join(
                        f"{name} is {size} bytes > {self.max_file_size}" for name, size in oversize
                    ),
                    request,
                )
                return _json_response(413, _error("Request entity too large", 40005), headers)

            errors = _validate_message(payload, file_slots, len(files), self.max_files)
            if errors:
                self._violation_locked("Invalid Form Body", ", ".join(errors.paths), request)
                return _json_response(
                    400, {**_error("Invalid Form Body", 50035), "errors": errors.tree}, headers
                )
            if _is_empty_message(payload, len(files)):
                self._violation_locked(
                    "Cannot send an empty message", "no content, embeds or files", request
                )
                return _json_response(400, _error("Cannot send an empty message", 50006), headers)

            target = self._thread_target_locked(request, webhook, payload)
            if isinstance(target, web.Response):
                target.headers.update(headers)
                return target

            if self.require_allowed_mentions and (problem := _mentions_policy_problem(payload)):
                self._violation_locked("allowed_mentions missing", problem, request)

            # Per-channel limit: a sliding window over stored messages, invisible in
            # the X-RateLimit headers (that is the trap clients must budget for).
            channel = self._channels[webhook.channel_id]
            times = channel.message_times
            while times and times[0] <= now - self.channel_window + _CLOCK_TOLERANCE:
                times.popleft()
            if len(times) >= self.channel_limit:
                self._channel_429s += 1
                return self._too_many(
                    times[0] + self.channel_window - now,
                    scope="shared",
                    is_global=False,
                    headers=headers,
                )
            times.append(now)
            delay = self._inject.delays.popleft() if self._inject.delays else 0.0
            if isinstance(target, str):
                target = self._snowflake()
                self._channels[target] = _Channel(
                    target,
                    True,
                    type=PUBLIC_THREAD,
                    parent_id=webhook.channel_id,
                    name=payload["thread_name"].strip(),
                )
            self._channels[target].archived = False  # posting unarchives a thread

        if delay:
            await asyncio.sleep(delay)
        message = PostedMessage(
            message_id=self._snowflake(),
            webhook_id=webhook.id,
            channel_id=target,
            payload=payload,
            files=files,
            headers=dict(request.headers),
            timestamp=datetime.now(UTC).isoformat(timespec="microseconds"),
        )
        with self._lock:
            message = self._remember_locked(message)
            # Recomputed so a delayed answer reports the time left *now*.
            headers = self._bucket_headers(bucket, time.monotonic())
        if wait:
            return _json_response(200, self._message_json(message, webhook), headers)
        return web.Response(status=204, headers=headers)

    def _thread_target_locked(
        self, request: web.Request, webhook: Webhook, payload: JSONObject
    ) -> int | str | web.Response:
        """Where an execute goes: a channel or thread id, a thread name to create, or a refusal.

        Follows Execute Webhook's notes: a forum needs ``thread_id`` or ``thread_name``
        (220001), never both (220002); ``thread_name`` elsewhere is 220003.
        """
        parent = self._channels[webhook.channel_id]
        raw = request.query.get("thread_id")
        name = payload.get("thread_name")
        named = isinstance(name, str)
        if raw is not None and not _SNOWFLAKE_PATTERN.fullmatch(raw):
            errors = _FormErrors()
            errors.add(("thread_id",), "NUMBER_TYPE_COERCE", f'Value "{raw}" is not snowflake.')
            self._violation_locked("Invalid Form Body", ", ".join(errors.paths), request)
            return _json_response(
                400, {**_error("Invalid Form Body", 50035), "errors": errors.tree}
            )
        refusal: tuple[str, int] | None = None
        if parent.type == GUILD_FORUM and raw is not None and named:
            refusal = (
                "Webhooks posted to forum channels cannot have both a thread_name and thread_id",
                220002,
            )
        elif parent.type == GUILD_FORUM and raw is None and not named:
            # A client cannot know a pasted webhook's channel is a forum before trying once.
            return self._refuse_locked(
                request,
                "forum",
                webhook.id,
                400,
                _error(_FORUM_NEEDS_THREAD, 220001),
            )
        elif parent.type != GUILD_FORUM and named:
            refusal = ("Webhooks can only create threads in forum channels", 220003)
        if refusal is not None:
            self._violation_locked("refused", f"{refusal[0]} ({refusal[1]})", request)
            return _json_response(400, _error(*refusal))
        if named:
            assert isinstance(name, str)
            if not name.strip():
                errors = _FormErrors()
                errors.add(("thread_name",), "BASE_TYPE_REQUIRED", "This field is required")
                self._violation_locked("Invalid Form Body", ", ".join(errors.paths), request)
                return _json_response(
                    400, {**_error("Invalid Form Body", 50035), "errors": errors.tree}
                )
            return name
        if raw is None:
            return webhook.channel_id
        thread = self._channels.get(int(raw))
        if thread is None or thread.parent_id != webhook.channel_id:
            return self._refuse_locked(
                request, "thread", int(raw), 404, _error("Unknown Channel", 10003)
            )
        return thread.id

    def _edit_message(
        self, request: web.Request, body: bytes, webhook_id: int, token: str, message_id: int
    ) -> web.Response:
        """PATCH (edit) or DELETE /webhooks/{id}/{token}/messages/{message_id}.

        A message in a thread is only found with ``?thread_id=`` naming that thread.
        """
        with self._lock:
            found = self._lookup_locked(request, webhook_id, token)
            if isinstance(found, web.Response):
                return found
            now = time.monotonic()
            bucket, limited = self._take_bucket_locked(
                request, f"{request.method}-message:{webhook_id}", now
            )
            if limited is not None:
                return limited
            headers = self._bucket_headers(bucket, now)
            raw = request.query.get("thread_id", "")
            where = int(raw) if _SNOWFLAKE_PATTERN.fullmatch(raw) else found.channel_id
            index = next(
                (
                    n
                    for n, m in enumerate(self._messages)
                    if m.message_id == message_id
                    and m.webhook_id == webhook_id
                    and m.channel_id == where
                    and m.message_id not in self._deleted_messages
                ),
                None,
            )
            if index is None:
                response = self._refuse_locked(
                    request, "message", message_id, 404, _error("Unknown Message", 10008)
                )
                response.headers.update(headers)
                return response
            if request.method == "DELETE":
                self._deleted_messages.add(message_id)
                return web.Response(status=204, headers=headers)
            return self._apply_edit_locked(request, body, found, index, headers)

    def _apply_edit_locked(
        self,
        request: web.Request,
        body: bytes,
        webhook: Webhook,
        index: int,
        headers: dict[str, str],
    ) -> web.Response:
        """Validate an edit body and apply it to the stored message at ``index``."""
        parsed = self._parse_body_locked(request, body)
        if isinstance(parsed, web.Response):
            parsed.headers.update(headers)
            return parsed
        payload, files, slots = parsed
        old = self._messages[index]
        kept_ids = set(old.attachment_ids)
        errors = _validate_message(
            payload, slots | kept_ids, len(old.files) + len(files), self.max_files, edit=True
        )
        if errors:
            self._violation_locked("Invalid Form Body", ", ".join(errors.paths), request)
            return _json_response(
                400, {**_error("Invalid Form Body", 50035), "errors": errors.tree}, headers
            )
        merged = {**old.payload, **{k: v for k, v in payload.items() if k != "attachments"}}
        if "content" in payload and "allowed_mentions" not in payload:
            # Discord re-parses edited content with default allowances.
            merged.pop("allowed_mentions", None)
        merged["flags"] = (old.flags & ~EDIT_FLAGS) | (payload.get("flags") or 0)
        kept = list(zip(old.files, old.attachment_ids, strict=True))
        if isinstance(payload.get("attachments"), list):
            named = {str(a.get("id")) for a in payload["attachments"] if isinstance(a, dict)}
            kept = [(f, i) for f, i in kept if str(i) in named]
        if _is_empty_message(merged, len(kept) + len(files)):
            self._violation_locked("Cannot send an empty message", "edit empties it", request)
            return _json_response(400, _error("Cannot send an empty message", 50006), headers)
        if self.require_allowed_mentions and (problem := _mentions_policy_problem(merged)):
            self._violation_locked("allowed_mentions missing", problem, request)
        new_ids = tuple(self._snowflake() for _ in files)
        edited = replace(
            old,
            payload=merged,
            files=[f for f, _ in kept] + files,
            attachment_ids=tuple(i for _, i in kept) + new_ids,
            edited_timestamp=datetime.now(UTC).isoformat(timespec="microseconds"),
            edits=old.edits + 1,
        )
        self._messages[index] = edited
        for n, attachment_id in enumerate(edited.attachment_ids):
            self._attachments[attachment_id] = (edited, n)
        return _json_response(200, self._message_json(edited, webhook), headers)

    def _get_channel(self, request: web.Request, channel_id: int) -> web.Response:
        """GET /channels/{id} with the bot token: the channel object (type, guild, parent)."""
        with self._lock:
            if request.headers.get("Authorization") != f"Bot {self.bot_token}":
                return self._refuse_locked(request, "bot-auth", channel_id, 401, _http_error(401))
            channel = self._channels.get(channel_id)
            if channel is None:
                return self._refuse_locked(
                    request, "channel", channel_id, 404, _error("Unknown Channel", 10003)
                )
            now = time.monotonic()
            bucket, limited = self._take_bucket_locked(request, f"channel:{channel_id}", now)
            if limited is not None:
                return limited
            if channel.type == PUBLIC_THREAD:
                body = self._thread_json(channel)
            else:
                body = {
                    "id": str(channel.id),
                    "type": channel.type,
                    "guild_id": str(self.guild_id),
                    "name": channel.name or f"channel-{channel.id}",
                    "parent_id": None,
                }
            return _json_response(200, body, self._bucket_headers(bucket, now))

    def _list_threads(self, request: web.Request, resource_id: int, active: bool) -> web.Response:
        """GET /guilds/{id}/threads/active or /channels/{id}/threads/archived/public (bot)."""
        with self._lock:
            if request.headers.get("Authorization") != f"Bot {self.bot_token}":
                return self._refuse_locked(request, "bot-auth", resource_id, 401, _http_error(401))
            if active and resource_id != self.guild_id:
                return self._refuse_locked(
                    request, "guild", resource_id, 404, _error("Unknown Guild", 10004)
                )
            if not active and resource_id not in self._channels:
                return self._refuse_locked(
                    request, "channel", resource_id, 404, _error("Unknown Channel", 10003)
                )
            now = time.monotonic()
            route = "active-threads" if active else f"archived-threads:{resource_id}"
            bucket, limited = self._take_bucket_locked(request, route, now)
            if limited is not None:
                return limited
            threads = sorted(
                (
                    c
                    for c in self._channels.values()
                    if c.type == PUBLIC_THREAD
                    and (not c.archived if active else c.archived and c.parent_id == resource_id)
                ),
                key=lambda c: -c.id,
            )
            answer: JSONObject = {"threads": [self._thread_json(c) for c in threads], "members": []}
            if not active:
                answer["has_more"] = False
            return _json_response(200, answer, self._bucket_headers(bucket, now))

    def _get_webhook(self, request: web.Request, webhook_id: int, token: str) -> web.Response:
        """GET /webhooks/{id}/{token}."""
        with self._lock:
            found = self._lookup_locked(request, webhook_id, token)
            if isinstance(found, web.Response):
                return found
            now = time.monotonic()
            bucket, limited = self._take_bucket_locked(request, f"get-webhook:{webhook_id}", now)
            if limited is not None:
                return limited
            return _json_response(
                200, self._webhook_json(found, with_token=True), self._bucket_headers(bucket, now)
            )

    def _get_message(
        self, request: web.Request, webhook_id: int, token: str, message_id: int
    ) -> web.Response:
        """GET /webhooks/{id}/{token}/messages/{message_id}."""
        with self._lock:
            found = self._lookup_locked(request, webhook_id, token)
            if isinstance(found, web.Response):
                return found
            now = time.monotonic()
            bucket, limited = self._take_bucket_locked(request, f"get-message:{webhook_id}", now)
            if limited is not None:
                return limited
            headers = self._bucket_headers(bucket, now)
            thread = request.query.get("thread_id")
            for message in self._messages:
                channel = self._channels.get(message.channel_id)
                # A message in a thread is found only when the request names that thread.
                in_thread = channel is not None and channel.parent_id is not None
                if (
                    message.message_id == message_id
                    and message.webhook_id == webhook_id
                    and message_id not in self._deleted_messages
                    and (thread == str(message.channel_id) if in_thread else thread is None)
                ):
                    return _json_response(200, self._message_json(message, found), headers)
            response = self._refuse_locked(
                request, "message", message_id, 404, _error("Unknown Message", 10008)
            )
            response.headers.update(headers)
            return response

    def _channel_messages(self, request: web.Request, channel_id: int) -> web.Response:
        """GET /channels/{id}/messages: a page of history, newest first, with the bot token."""
        with self._lock:
            if request.headers.get("Authorization") != f"Bot {self.bot_token}":
                return self._refuse_locked(request, "bot-auth", channel_id, 401, _http_error(401))
            channel = self._channels.get(channel_id)
            if channel is None:
                return self._refuse_locked(
                    request, "channel", channel_id, 404, _error("Unknown Channel", 10003)
                )
            if not channel.read_history:
                return self._refuse_locked(
                    request, "history", channel_id, 403, _error("Missing Access", 50001)
                )
            now = time.monotonic()
            bucket, limited = self._take_bucket_locked(
                request, f"GET:channels/{channel_id}/messages", now
            )
            if limited is not None:
                return limited
            if self._inject.read_ratelimits:
                retry_after = self._inject.read_ratelimits.popleft()
                bucket.used -= 1
                bucket.blocked_until = now + retry_after
                headers = self._bucket_headers(bucket, now)
                headers["X-RateLimit-Remaining"] = "0"
                headers["X-RateLimit-Reset-After"] = f"{_ceil_ms(retry_after):.3f}"
                return self._too_many(retry_after, scope="user", is_global=False, headers=headers)
            headers = self._bucket_headers(bucket, now)
            if self._inject.read_fail:
                status = self._inject.read_fail.popleft()
                return _json_response(status, _http_error(status), headers)

            errors = _FormErrors()
            query = request.query
            anchors = [key for key in ("before", "after", "around") if key in query]
            values: dict[str, int] = {}
            for key in ("limit", *anchors):
                raw = query.get(key)
                if raw is None:
                    continue
                if not raw.isdigit():
                    code = "NUMBER_TYPE_COERCE" if key == "limit" else "SNOWFLAKE_TYPE_COERCE"
                    errors.add((key,), code, f'Value "{raw}" is not int.')
                else:
                    values[key] = int(raw)
            limit = values.get("limit", 50)
            if "limit" in values and not 1 <= limit <= MAX_HISTORY_LIMIT:
                errors.add(
                    ("limit",),
                    "NUMBER_TYPE_MAX" if limit > MAX_HISTORY_LIMIT else "NUMBER_TYPE_MIN",
                    f"int value should be between 1 and {MAX_HISTORY_LIMIT}.",
                )
            if len(anchors) > 1:
                # Discord documents them as mutually exclusive; the fake holds clients to it.
                errors.add((anchors[1],), "MUTUALLY_EXCLUSIVE", "before, after and around")
            if errors:
                self._violation_locked("Invalid Form Body", ", ".join(errors.paths), request)
                return _json_response(
                    400, {**_error("Invalid Form Body", 50035), "errors": errors.tree}, headers
                )
            held = sorted(
                (
                    m
                    for m in self._messages
                    if m.channel_id == channel_id and m.message_id not in self._deleted_messages
                ),
                key=lambda m: m.message_id,
            )
            ids = [m.message_id for m in held]
            if "before" in values:
                end = bisect.bisect_left(ids, values["before"])
                page = held[max(0, end - limit) : end]
            elif "after" in values:
                start = bisect.bisect_right(ids, values["after"])
                page = held[start : start + limit]
            elif "around" in values:
                middle = bisect.bisect_left(ids, values["around"])
                start = max(0, middle - limit // 2)
                page = held[start : start + limit]
            else:
                page = held[-limit:]
            listing = [
                self._message_json(
                    m, self._webhooks.get(m.webhook_id), readable=self.message_content_intent
                )
                for m in reversed(page)
            ]
            return _json_response(200, listing, headers)

    def _cdn_download(
        self, request: web.Request, channel_id: int, attachment_id: int, filename: str
    ) -> web.Response:
        """GET a signed CDN link: the attachment's bytes, or 404 when unsigned or expired."""
        gone = _BareResponse(
            status=404, text="This content is no longer available.", content_type="text/plain"
        )
        query = request.query
        try:
            expires, issued = int(query["ex"], 16), int(query["is"], 16)
        except (KeyError, ValueError):
            return gone
        expected = self._cdn_query(request.path, expires, issued)
        if (
            not secrets.compare_digest(
                f"ex={query['ex']}&is={query['is']}&hm={query.get('hm', '')}&", expected
            )
            or expires < time.time()
        ):
            return gone
        with self._lock:
            found = self._attachments.get(attachment_id)
            if found is None or found[0].message_id in self._deleted_messages:
                return gone
            message, n = found
        name, data = message.files[n]
        if message.channel_id != channel_id or name != filename:
            return gone
        return _BareResponse(body=data, content_type="application/octet-stream")

    def _channel_webhooks(self, request: web.Request, body: bytes, channel_id: int) -> web.Response:
        """GET or POST /channels/{id}/webhooks, with the bot token."""
        with self._lock:
            if request.headers.get("Authorization") != f"Bot {self.bot_token}":
                return self._refuse_locked(request, "bot-auth", channel_id, 401, _http_error(401))
            channel = self._channels.get(channel_id)
            if channel is None:
                return self._refuse_locked(
                    request, "channel", channel_id, 404, _error("Unknown Channel", 10003)
                )
            if not channel.manage_webhooks:
                return self._refuse_locked(
                    request, "channel", channel_id, 403, _error("Missing Permissions", 50013)
                )
            now = time.monotonic()
            bucket, limited = self._take_bucket_locked(
                request, f"{request.method}:channels/{channel_id}/webhooks", now
            )
            if limited is not None:
                return limited
            headers = self._bucket_headers(bucket, now)

            if request.method == "GET":
                listing = [
                    self._webhook_json(w, with_token=w.application_id == self.application_id)
                    for w in self._channel_webhooks_locked(channel_id)
                ]
                return _json_response(200, listing, headers)

            if request.content_type != "application/json":
                self._violation_locked(
                    "missing or unsupported Content-Type",
                    request.headers.get("Content-Type", "none"),
                    request,
                )
                return _json_response(400, _http_error(400), headers)
            parsed = self._parse_body_locked(request, body)
            if isinstance(parsed, web.Response):
                parsed.headers.update(headers)
                return parsed
            payload, _, _ = parsed
            errors = _FormErrors()
            if "name" not in payload:
                errors.add(("name",), "BASE_TYPE_REQUIRED", "This field is required")
            else:
                _check_name(errors, "name", payload["name"])
            if errors:
                self._violation_locked("Invalid Form Body", ", ".join(errors.paths), request)
                return _json_response(
                    400, {**_error("Invalid Form Body", 50035), "errors": errors.tree}, headers
                )
            if len(self._channel_webhooks_locked(channel_id)) >= MAX_WEBHOOKS_PER_CHANNEL:
                return self._refuse_at_cap_locked(request, channel_id, headers)
            webhook = self._new_webhook_locked(
                channel_id, str(payload["name"]), self.application_id
            )
            self._webhooks_created += 1
            return _json_response(200, self._webhook_json(webhook, with_token=True), headers)

    def _refuse_at_cap_locked(
        self, request: web.Request, channel_id: int, headers: dict[str, str]
    ) -> web.Response:
        """Refuse a webhook beyond the channel's cap, as Discord does."""
        # Like 401/403/404: a client cannot know the cap is reached before trying
        # once, but trying again is a violation.
        body = _error(f"Maximum number of webhooks reached ({MAX_WEBHOOKS_PER_CHANNEL})", 30007)
        response = self._refuse_locked(request, "webhook-cap", channel_id, 400, body)
        response.headers.update(headers)
        return response
