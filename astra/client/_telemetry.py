"""``Telemetry``: the fire-and-forget client a bot uses to send events to the sidecar.

The caller's cost is one msgspec encode, one decode of that encoding by the sidecar's own
decoder (so nothing the sidecar would refuse is sent) and one ``deque.append`` (no lock,
no syscall): a daemon thread drains the queue every ``flush_interval_s`` (sooner when it
fills up), packs the lines into datagrams or HTTP bodies and sends them.

Why a thread and not ``loop.call_later``: it works the same from sync code, from async code
and from threads without an event loop, and it moves the packing and the socket syscalls
off the bot's event loop entirely (the loop only pays for the encode and the append).
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import weakref
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, NamedTuple

import msgspec

from astra import events
from astra.client._closing import Closing
from astra.client._errors import (
    LONG_TEXT_CHARS,
    MAX_TAGS,
    NAME_CHARS,
    TAG_KEY_CHARS,
    TAG_VALUE_CHARS,
    TEXT_CHARS,
    TRACEBACK_CHARS,
    clip,
    clip_tail,
    describe,
    format_traceback,
    mark_reported,
    type_name,
)
from astra.client._flusher import Counters, Flusher, Warnings, track
from astra.client._transport import (
    DEFAULT_ADDRESS,
    MAX_UDP_DATAGRAM,
    open_transport,
    parse_address,
)
from astra.wire import refusal
from astra.wire_auth import SIGNATURE_BYTES

ENV_ADDRESS = "ASTRA_ADDRESS"
ENV_SOURCE = "ASTRA_SOURCE"
ENV_TOKEN = "ASTRA_INGEST_TOKEN"
ENV_CA = "ASTRA_INGEST_CA"

DEFAULT_MAX_DATAGRAM = 8192
DEFAULT_FLUSH_INTERVAL_S = 0.1
DEFAULT_MAX_QUEUE = 10_000
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_HTTP_TIMEOUT_S = 2.0
DEFAULT_DROP_REPORT_INTERVAL_S = 10.0
# Wake the flusher early once this many events wait: enough for several full datagrams,
# few enough that a burst never reaches max_queue before the flusher runs.
_WAKE_AT = 256

# Text fields ``send`` may cut when an event is too large for a datagram or a body,
# longest first; a traceback keeps its tail (the failing frame), the others their start.
_CUTTABLE = ("traceback", "message", "content", "error", "detail")
_SHRINK_ROUNDS = 16
_json_encode = msgspec.json.Encoder().encode
_LEVELS: dict[str, events.LogLevel] = {
    "debug": "debug",
    "info": "info",
    "warning": "warning",
    "warn": "warning",
    "error": "error",
    "critical": "critical",
    "fatal": "critical",
}
_SEVERITIES: dict[str, events.Severity] = {
    "warning": "warning",
    "warn": "warning",
    "error": "error",
    "critical": "critical",
    "fatal": "critical",
}
# msgspec encodes integers in this range only.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


class ClientStats(NamedTuple):
    """A snapshot of the client's counters since it was created."""

    sent: int  # events handed to the kernel (UDP) or accepted by the sidecar (HTTP)
    datagrams: int  # UDP datagrams sent, or HTTP requests answered
    dropped: int  # events lost for any reason below
    dropped_queue_full: int  # queue at max_queue when send() was called
    dropped_send_error: int  # socket or HTTP error (sidecar down, buffer full, 5xx)
    dropped_oversize: int  # single event larger than a datagram or a body can be
    dropped_closed: int  # sent after close()
    rejected: int  # invalid events: refused by send() itself, or by the sidecar (HTTP answers)
    internal_errors: int  # failures inside astra, caught before they reached the caller
    queued: int  # events waiting for the flusher right now


def default_source() -> str:
    """``ASTRA_SOURCE``, else the name of the script that started the process."""
    env = os.environ.get(ENV_SOURCE, "").strip()
    if env:
        return clip(env, NAME_CHARS)
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 in ("", "-c", "-m"):
        return "python"
    path = Path(argv0)
    # python -m mybot runs mybot/__main__.py: the package is the better name.
    name = path.parent.name if path.stem == "__main__" else path.stem
    return clip(name or "python", NAME_CHARS)


class Telemetry(Closing):
    """Sends astra events to the sidecar without ever blocking or raising into the caller.

    ``address`` is ``udp://HOST:PORT`` (the default, from ``ASTRA_ADDRESS`` or
    ``udp://127.0.0.1:8787``), ``http://HOST:PORT``, ``https://HOST:PORT`` or a bare
    ``HOST:PORT`` (UDP). ``source`` names the sender on every event (default:
    ``ASTRA_SOURCE`` or the script name). ``token`` is the sidecar's ``ingest.token``
    (default: ``ASTRA_INGEST_TOKEN``): HTTP requests carry it as a bearer token, datagrams
    are signed with it (HMAC-SHA256). ``ca_file`` is a PEM file to verify an ``https://``
    sidecar's certificate against, e.g. its self-signed certificate (default:
    ``ASTRA_INGEST_CA``, else the system's trust store). Every method is safe to call from
    any thread, with or without an event loop.

    Raises ``ValueError`` for an address or a limit that cannot work; after construction,
    nothing it does raises: failures are counted in ``stats``.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        source: str | None = None,
        max_datagram: int = DEFAULT_MAX_DATAGRAM,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        http_timeout_s: float = DEFAULT_HTTP_TIMEOUT_S,
        drop_report_interval_s: float = DEFAULT_DROP_REPORT_INTERVAL_S,
        token: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        _check_limits(max_datagram, flush_interval_s, max_queue, max_body_bytes, http_timeout_s)
        self._address = parse_address(address or os.environ.get(ENV_ADDRESS) or DEFAULT_ADDRESS)
        token = (os.environ.get(ENV_TOKEN, "") if token is None else token).strip()
        _check_token(token)
        ca_file = ca_file or os.environ.get(ENV_CA) or None
        self._source = clip(source, NAME_CHARS) if source is not None else default_source()
        self._max_queue = max_queue
        self._wake_at = max(1, min(_WAKE_AT, max_queue // 2))
        # The largest single event the transport can carry (see transport.pack's limit).
        self._max_event_bytes = (
            MAX_UDP_DATAGRAM - (SIGNATURE_BYTES if token else 0)
            if self._address.scheme == "udp"
            else max_body_bytes - 1
        )
        self._close_timeout_s = http_timeout_s + 1.0
        self._queue: deque[bytes] = deque()
        self._counters = Counters()
        self._warnings = Warnings()
        self._closed = False
        transport = open_transport(
            self._address,
            max_datagram=max_datagram,
            max_body_bytes=max_body_bytes,
            timeout_s=http_timeout_s,
            token=token,
            ca_file=ca_file,
        )
        self._flusher = Flusher(
            queue=self._queue,
            counters=self._counters,
            warnings=self._warnings,
            transport=transport,
            address=self._address,
            source=self._source,
            interval_s=flush_interval_s,
            drop_report_interval_s=drop_report_interval_s,
        )
        # If the client is garbage collected, its flusher sends what is queued and ends. The
        # finalizer only signals the thread: a collection can happen on the bot's event loop,
        # which must not wait for a send. At interpreter exit, an atexit hook of _flusher
        # waits for every flusher still running (``track``).
        self._finalizer = weakref.finalize(self, self._flusher.signal_stop)
        self._finalizer.atexit = False
        track(self._flusher, self._close_timeout_s)
        self._flusher.thread.start()

    # --- properties ------------------------------------------------------------------

    @property
    def address(self) -> str:
        """Where events go, normalised (``udp://…`` or ``http://…/v1/events``)."""
        return str(self._address)

    @property
    def source(self) -> str:
        """The ``source`` field stamped on events that do not carry one."""
        return self._source

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._closed

    @property
    def stats(self) -> ClientStats:
        """The counters now (see ``ClientStats``)."""
        c = self._counters
        return ClientStats(
            sent=c.sent,
            datagrams=c.datagrams,
            dropped=c.dropped(),
            dropped_queue_full=c.queue_full,
            dropped_send_error=c.send_error,
            dropped_oversize=c.oversize,
            dropped_closed=c.closed,
            rejected=c.rejected,
            internal_errors=c.internal_errors,
            queued=len(self._queue),
        )

    # --- sending ---------------------------------------------------------------------

    def send(self, event: events.Event) -> None:
        """Queue one event (any ``astra.events`` type) for sending. Never blocks or raises.

        The event is checked the way the sidecar will check it: its encoding is decoded by
        ``astra.events.decode_one``, the sidecar's own decoder (about 0.6 µs for a typical
        event), and kinds the ingest refuses (``astra.wire.refusal``) are refused
        here. An invalid event is not sent: it is counted in ``stats.rejected`` and named
        in a (rate-limited) warning of the ``astra.client`` logger. An event too large for
        one datagram (65507 bytes) or body has its text cut to fit (the traceback's tail is
        kept), so a huge error report still arrives.
        """
        try:
            if not event.source:
                event = msgspec.structs.replace(event, source=self._source)
            data = events.encode(event)
            if len(data) > self._max_event_bytes:
                event, data = shrink_text(event, data, self._max_event_bytes)
            decoded = events.decode_one(data)
            # What the sidecar's ingest refuses (only astra itself emits it), checked on the
            # decoded event, i.e. on the kind the sidecar would see.
            refused = refusal(decoded)
            if refused:
                self._reject(event, refused)
                return
        except msgspec.ValidationError as exc:
            self._reject(event, events.describe_validation_error(exc))
            return
        except Exception as exc:
            self._internal_error(exc, event)
            return
        queue = self._queue
        if len(queue) >= self._max_queue or self._closed:
            self._count_drop()
            return
        queue.append(data)
        if len(queue) >= self._wake_at:
            wake = self._flusher.wake
            if not wake.is_set():
                wake.set()

    def metric(
        self,
        name: str,
        value: float,
        *,
        type: Literal["counter", "gauge", "histogram"] = "gauge",
        unit: str = "",
        tags: Mapping[str, events.TagValue] | None = None,
    ) -> None:
        """Send a ``metric`` event: a gauge reading by default.

        Made to fit the schema: a non-finite ``value`` (``nan``, ``inf``) is skipped, the
        name is clipped to 200 characters (an empty one is counted in ``stats.rejected``),
        only the first 64 tags are kept, tag keys are clipped to 100 characters and string
        values to 1000, and tag values that are not str, int, float or bool (``None``…) or
        not finite are left out.
        """
        try:
            if not math.isfinite(value):
                return
            self.send(
                events.Metric(
                    name=clip(name, NAME_CHARS),
                    value=value,
                    type=type,
                    unit=clip(unit, 32),
                    tags=clean_tags(tags) if tags else {},
                    source=self._source,
                )
            )
        except Exception as exc:
            self._internal_error(exc, None)

    def increment(
        self,
        name: str,
        value: float = 1,
        *,
        unit: str = "",
        tags: Mapping[str, events.TagValue] | None = None,
    ) -> None:
        """Send a counter ``metric`` (``value`` added to ``name``)."""
        self.metric(name, value, type="counter", unit=unit, tags=tags)

    def log(self, message: str, *, level: events.LogLevel = "info", logger: str = "") -> None:
        """Send a ``log`` event (``level`` also accepts ``"warn"``, ``"fatal"`` and upper case)."""
        try:
            self.send(
                events.Log(
                    level=_LEVELS.get(str(level).lower(), level),
                    message=clip(message, LONG_TEXT_CHARS),
                    logger=clip(logger, NAME_CHARS),
                    source=self._source,
                )
            )
        except Exception as exc:
            self._internal_error(exc, None)

    def error(
        self,
        message: str,
        *,
        type: str = "",
        traceback: str | None = None,
        severity: events.Severity = "error",
    ) -> None:
        """Send an ``error`` event from its parts."""
        try:
            self.send(
                events.Error(
                    message=clip(message, TEXT_CHARS),
                    type=clip(type, NAME_CHARS),
                    traceback=None if traceback is None else clip_tail(traceback, TRACEBACK_CHARS),
                    severity=_SEVERITIES.get(str(severity).lower(), severity),
                    source=self._source,
                )
            )
        except Exception as exc:
            self._internal_error(exc, None)

    def error_from_exception(
        self,
        exc: BaseException,
        *,
        message: str | None = None,
        severity: events.Severity = "error",
    ) -> None:
        """Send an ``error`` event for ``exc`` with its traceback, and mark it reported.

        ``message`` defaults to ``str(exc)``. Once marked, the logging handler does not
        report the same exception again when it is logged afterwards.
        """
        try:
            text = describe(exc) if message is None else f"{message}: {describe(exc)}"
            self.error(
                text, type=type_name(exc), traceback=format_traceback(exc), severity=severity
            )
            mark_reported(exc)
        except Exception as err:
            self._internal_error(err, None)

    def latency(self, ms: float, *, of: str = "gateway", shard_id: int | None = None) -> None:
        """Send a ``latency`` sample in milliseconds (non-finite or negative ones are skipped)."""
        if not math.isfinite(ms) or ms < 0:
            return
        try:
            self.send(
                events.Latency(
                    ms=ms, of=clip(of, 100) or "gateway", shard_id=shard_id, source=self._source
                )
            )
        except Exception as exc:
            self._internal_error(exc, None)

    # --- lifecycle -------------------------------------------------------------------

    def flush(self, timeout_s: float = 2.0) -> bool:
        """Block until everything queued before the call was sent; False on timeout.

        From async code, ``await asyncio.to_thread(telemetry.flush)`` keeps the loop free.
        """
        try:
            return self._flusher.flush(timeout_s)
        except Exception as exc:
            self._internal_error(exc, None)
            return False

    def close(self, timeout_s: float | None = None) -> None:
        """Send what is queued and stop the flusher; later sends are counted as dropped.

        Waits at most ``timeout_s`` (default: the HTTP timeout plus one second). Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._finalizer.detach()
            self._flusher.stop(self._close_timeout_s if timeout_s is None else timeout_s)
        except Exception as exc:
            self._internal_error(exc, None)
        if not self._flusher.thread.is_alive() and self._queue:
            # Raced in between the last drain and the stop: lost, so counted.
            with self._counters.lock:
                self._counters.closed += len(self._queue)
            self._queue.clear()

    async def aclose(self) -> None:
        """``close()`` in a worker thread, for async code."""
        await asyncio.to_thread(self.close)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Telemetry {self._address} source={self._source!r} {state}>"

    # --- rare paths ------------------------------------------------------------------

    def _count_drop(self) -> None:
        with self._counters.lock:
            if self._closed:
                self._counters.closed += 1
            else:
                self._counters.queue_full += 1

    def _reject(self, event: events.Event, why: str) -> None:
        """Count an event not sent because the sidecar would refuse it, and say why."""
        with self._counters.lock:
            self._counters.rejected += 1
        self._warnings.warn(
            "invalid", "astra.client: dropped an invalid %s event: %s", type(event).__name__, why
        )

    def _internal_error(self, exc: Exception, event: events.Event | None) -> None:
        with self._counters.lock:
            self._counters.internal_errors += 1
        what = type(event).__name__ if event is not None else "an"
        self._warnings.warn("encode", "astra.client: could not send %s event: %r", what, exc)


def _check_limits(
    max_datagram: int,
    flush_interval_s: float,
    max_queue: int,
    max_body_bytes: int,
    http_timeout_s: float,
) -> None:
    if not 512 <= max_datagram <= MAX_UDP_DATAGRAM:
        raise ValueError(
            f"max_datagram={max_datagram}: choose 512..{MAX_UDP_DATAGRAM} bytes "
            "(the sidecar reads datagrams up to 65507 bytes)"
        )
    if not 0.001 <= flush_interval_s <= 60:
        raise ValueError(f"flush_interval_s={flush_interval_s}: choose 0.001..60 seconds")
    if max_queue < 1:
        raise ValueError(f"max_queue={max_queue}: the queue must hold at least one event")
    if max_body_bytes < 1024:
        raise ValueError(f"max_body_bytes={max_body_bytes}: choose at least 1024 bytes")
    if not http_timeout_s > 0:
        raise ValueError(f"http_timeout_s={http_timeout_s}: must be positive")


def _check_token(token: str) -> None:
    # Never quote the token: it is a secret.
    if token and not (token.isascii() and token.isprintable() and " " not in token):
        raise ValueError(
            "token: the ingest token is printable ASCII without spaces "
            "(as the sidecar's ingest.token)"
        )


def clean_tags(tags: Mapping[str, events.TagValue]) -> dict[str, events.TagValue]:
    """``tags`` within the schema's limits: the first 64 usable ones, keys and strings clipped."""
    clean: dict[str, events.TagValue] = {}
    for key, value in tags.items():
        if len(clean) >= MAX_TAGS:
            break
        if not isinstance(key, str):
            continue
        if isinstance(value, str):
            value = clip(value, TAG_VALUE_CHARS)
        elif isinstance(value, float):
            if not math.isfinite(value):
                continue
        elif not isinstance(value, int) or not _INT_MIN <= value <= _INT_MAX:
            continue  # None, objects, integers msgspec cannot encode (bool is an int)
        clean[clip(key, TAG_KEY_CHARS)] = value
    return clean


def shrink_text(event: events.Event, data: bytes, limit: int) -> tuple[events.Event, bytes]:
    """Cut the event's longest text field until its encoding fits ``limit`` bytes.

    Each round cuts the longest of ``_CUTTABLE`` in proportion to the excess (characters
    and bytes differ: emoji are four bytes, control characters six once escaped) and
    re-encodes. Gives up after a few rounds, or when no text is left to cut: the transport
    then counts the event as ``dropped_oversize``.
    """
    for _ in range(_SHRINK_ROUNDS):
        if len(data) <= limit:
            break
        name, text = "", ""
        for field in _CUTTABLE:
            value = getattr(event, field, None)
            if isinstance(value, str) and len(value) > len(text):
                name, text = field, value
        if len(text) < 2:
            break
        text_bytes = len(_json_encode(text)) - 2  # without the quotes
        excess = len(data) - limit
        share = (text_bytes - excess) / text_bytes if text_bytes > excess else 0.0
        keep = max(1, min(len(text) - 1, int(len(text) * share * 0.95)))
        cut = clip_tail(text, keep) if name == "traceback" else clip(text, keep)
        event = msgspec.structs.replace(event, **{name: cut})
        data = events.encode(event)
    return event, data
