"""How encoded events leave the process: UDP datagrams or HTTP NDJSON posts.

Only the flusher thread calls a transport, so nothing here is on the caller's path and
nothing here needs a lock. A transport never raises: it reports what happened as a
``Delivery`` and the flusher turns that into counters.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import select
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol
from urllib.parse import urlsplit

import msgspec

from astra.wire_auth import SIGNATURE_BYTES, sign, token_key

DEFAULT_ADDRESS = "udp://127.0.0.1:8787"
INGEST_PATH = "/v1/events"
# The largest UDP payload over IPv4, and so the largest datagram the sidecar reads.
MAX_UDP_DATAGRAM = 65507
# How long the flusher waits for a full socket send buffer to drain before dropping.
_SEND_BUFFER_WAIT_S = 0.05
# After the sidecar has refused datagrams for this long, look its name up again: it may
# have moved (a restarted container gets a new address).
RERESOLVE_AFTER_S = 30.0
# Errors that say nothing about the address: the local send buffer is full.
_BUFFER_ERRNOS = (errno.ENOBUFS, errno.EAGAIN)


Scheme = Literal["udp", "http", "https"]
_SCHEMES: dict[str, Scheme] = {"udp": "udp", "http": "http", "https": "https"}


@dataclass(frozen=True)
class Address:
    """A parsed sidecar address."""

    scheme: Scheme
    host: str
    port: int
    url: str

    def __str__(self) -> str:
        return self.url


def parse_address(text: str) -> Address:
    """Parse ``udp://host:port``, ``http(s)://host:port[/path]`` or a bare ``host:port``.

    Raises ``ValueError`` naming the expected forms when ``text`` is none of them.
    """
    raw = text.strip()
    parts = urlsplit(raw if "://" in raw else f"udp://{raw}")
    try:
        port = parts.port
    except ValueError:
        port = None
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname or port is None:
        raise ValueError(
            f"invalid astra address {text!r}: expected udp://HOST:PORT, http://HOST:PORT "
            "or HOST:PORT (for example udp://127.0.0.1:8787)"
        )
    host = parts.hostname
    if scheme == "udp":
        return Address("udp", host, port, f"udp://{parts.netloc}")
    path = parts.path if parts.path not in ("", "/") else INGEST_PATH
    return Address(scheme, host, port, f"{scheme}://{parts.netloc}{path}")


class Delivery(NamedTuple):
    """What one ``deliver`` call did with the lines it was given."""

    sent: int  # events handed to the kernel (UDP) or accepted by the sidecar (HTTP)
    units: int  # datagrams or HTTP requests that went out
    failed: int  # events lost to send errors (refused, unreachable, buffer full, 5xx)
    oversize: int  # events larger than the transport can carry at all
    rejected: int  # events the sidecar answered as invalid (HTTP only)
    error: str | None  # the last error, for the client's rate-limited warning
    retracted: int = 0  # events counted in ``sent`` by an earlier call, now known lost (UDP)


class Transport(Protocol):
    """Delivers encoded events; implemented by ``UdpTransport`` and ``HttpTransport``."""

    def deliver(self, lines: list[bytes]) -> Delivery:
        """Send ``lines`` (one JSON event each); never raises."""
        ...

    def close(self) -> None:
        """Release the socket; never raises."""
        ...


def pack(lines: list[bytes], target: int, limit: int) -> tuple[list[tuple[bytes, int]], int]:
    """Join lines with ``\\n`` into chunks of at most ``target`` bytes.

    A line longer than ``target`` goes alone in its own chunk if it fits ``limit``; longer
    ones are left out. Returns ``([(chunk, events_in_chunk), ...], lines_left_out)``.
    """
    chunks: list[tuple[bytes, int]] = []
    oversize = 0
    batch: list[bytes] = []
    size = -1  # no separator before the first line
    for line in lines:
        length = len(line)
        if length > target:
            if length > limit:
                oversize += 1
            else:
                chunks.append((line, 1))
            continue
        if size + 1 + length > target:
            chunks.append((b"\n".join(batch), len(batch)))
            batch, size = [], -1
        batch.append(line)
        size += 1 + length
    if batch:
        chunks.append((b"\n".join(batch), len(batch)))
    return chunks, oversize


class UdpTransport:
    """Non-blocking, connected UDP socket: several NDJSON lines to a datagram.

    With a ``key`` (the sidecar's ``ingest.token``), every datagram starts with its auth
    line (``astra-hmac <HMAC-SHA256 hex>``), counted within ``max_datagram``.

    Counting with a dead sidecar: a connected UDP socket learns that nobody listens from the
    ICMP answer to a datagram already handed to the kernel, and the error (``ECONNREFUSED``)
    surfaces on the *next* send, which is not sent either. So a refusal counts two
    datagrams as failed: the refused one, and the last one sent before it (``retracted``
    from ``sent``, even when an earlier ``deliver`` sent it).
    """

    def __init__(
        self,
        host: str,
        port: int,
        max_datagram: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        key: bytes | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._key = key
        overhead = SIGNATURE_BYTES if key else 0
        self._max_datagram = max_datagram - overhead
        self._max_payload = MAX_UDP_DATAGRAM - overhead
        self._clock = clock
        self._sock: socket.socket | None = None
        self._unconfirmed = 0  # events in the last datagram sent, until the next send
        self._refused_since: float | None = None  # start of the current run of refusals
        self._last_refused = 0.0

    def _connect(self) -> socket.socket:
        # Resolved here, in the flusher thread, so a slow DNS never stalls the caller.
        # IPv4 first: "localhost" often resolves to ::1 first, while the sidecar listens on
        # 127.0.0.1 by default (a dual-stack sidecar on "::" takes IPv4 too).
        infos = socket.getaddrinfo(self._host, self._port, type=socket.SOCK_DGRAM)
        family, kind, proto, _, addr = min(infos, key=lambda info: info[0] != socket.AF_INET)
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            # Connected, so an ICMP "port unreachable" surfaces as ECONNREFUSED: a signal
            # that the sidecar is down, counted as drops instead of sending into the void.
            sock.connect(addr)
        except OSError:
            sock.close()
            raise
        return sock

    def deliver(self, lines: list[bytes]) -> Delivery:
        """Pack ``lines`` into datagrams and send them; errors become counts."""
        chunks, oversize = pack(lines, self._max_datagram, self._max_payload)
        if self._key:
            key = self._key
            chunks = [(sign(key, datagram), count) for datagram, count in chunks]
        sent = units = failed = retracted = 0
        error: str | None = None
        for index, (datagram, count) in enumerate(chunks):
            if self._sock is None:
                try:
                    self._sock = self._connect()
                except OSError as exc:
                    # A failed lookup (or connect) would fail the same way for every other
                    # datagram of this batch: fail them all now, without more lookups.
                    failed += sum(n for _, n in chunks[index:])
                    error = _describe_os_error(exc)
                    break
            try:
                self._send(self._sock, datagram)
            except OSError as exc:
                failed += count
                error = _describe_os_error(exc)
                if exc.errno == errno.ECONNREFUSED:
                    # The refusal answers the datagram sent before this one: lost as well.
                    retracted += self._unconfirmed
                    self._unconfirmed = 0
                    if self._refused_too_long():
                        self.close()  # the next datagram looks the address up again
                elif exc.errno not in _BUFFER_ERRNOS:
                    # Anything else (unreachable, no route) may be cured by a fresh socket.
                    self.close()
            else:
                sent += count
                units += 1
                self._unconfirmed = count
        return Delivery(sent, units, failed, oversize, 0, error, retracted)

    def _refused_too_long(self) -> bool:
        """True when refusals have kept coming for ``RERESOLVE_AFTER_S`` (then restarts)."""
        now = self._clock()
        # A run of refusals ends when none came for as long: the sidecar was back meanwhile.
        if self._refused_since is None or now - self._last_refused > RERESOLVE_AFTER_S:
            self._refused_since = now
        self._last_refused = now
        if now - self._refused_since >= RERESOLVE_AFTER_S:
            self._refused_since = None
            return True
        return False

    @staticmethod
    def _send(sock: socket.socket, datagram: bytes) -> None:
        try:
            sock.send(datagram)
        except BlockingIOError:
            # Send buffer full: this is the flusher thread, so a short wait costs the bot
            # nothing; after that the datagram is dropped rather than queued.
            _, writable, _ = select.select([], [sock], [], _SEND_BUFFER_WAIT_S)
            if not writable:
                raise
            sock.send(datagram)

    def close(self) -> None:
        """Close the socket (a later ``deliver`` opens a new one)."""
        self._unconfirmed = 0  # a new socket hears nothing about the old one's datagrams
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None


class _Rejection(msgspec.Struct):
    index: int
    error: str = ""


class _Reply(msgspec.Struct):
    """The sidecar's answer to ``POST /v1/events`` (200 and 4xx alike)."""

    accepted: int = 0
    rejected: list[_Rejection] = msgspec.field(default_factory=list)
    error: str = ""


_reply_decoder = msgspec.json.Decoder(_Reply)


class HttpTransport:
    """``POST`` NDJSON batches with urllib (blocking, but only the flusher thread waits).

    With a ``token``, every request carries ``Authorization: Bearer <token>``. For an
    ``https://`` URL the sidecar's certificate is checked against ``ca_file`` (a PEM file,
    e.g. its self-signed certificate) when given, else against the system's trust store.
    """

    def __init__(
        self,
        url: str,
        *,
        max_body_bytes: int,
        timeout_s: float,
        token: str = "",
        ca_file: str | None = None,
    ) -> None:
        self._url = url
        self._max_body = max_body_bytes
        self._timeout_s = timeout_s
        self._headers = {"Content-Type": "application/x-ndjson"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        # No proxies: the sidecar is local, and an http_proxy in the bot's environment
        # would otherwise swallow its telemetry.
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if url.startswith("https:"):
            handlers.append(urllib.request.HTTPSHandler(context=tls_context(ca_file)))
        self._opener = urllib.request.build_opener(*handlers)

    def deliver(self, lines: list[bytes]) -> Delivery:
        """Post ``lines`` in bodies of at most ``max_body_bytes``; errors become counts."""
        chunks, oversize = pack(lines, self._max_body - 1, self._max_body - 1)
        sent = units = failed = rejected = 0
        error: str | None = None
        for body, count in chunks:
            status, reply, problem = self._post(body + b"\n")
            if 200 <= status < 300:
                units += 1
                # An answer without the documented body still means the events were taken.
                accepted = count if reply is None else reply.accepted
                sent += accepted
                rejected += count - accepted
                if reply is not None and reply.rejected:
                    error = f"sidecar rejected an event: {reply.rejected[0].error}"
            elif 400 <= status < 500:
                units += 1
                rejected += count
                error = problem
            else:
                failed += count
                error = problem
        return Delivery(sent, units, failed, oversize, rejected, error)

    def _post(self, body: bytes) -> tuple[int, _Reply | None, str]:
        request = urllib.request.Request(
            self._url,
            data=body,
            method="POST",
            headers=self._headers,
        )
        try:
            with self._opener.open(request, timeout=self._timeout_s) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, _read_quietly(exc)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            # HTTPException: a garbled answer (BadStatusLine, IncompleteRead, LineTooLong…)
            # leaves the batch's fate unknown; counted as failed like a refused connection.
            return 0, None, f"POST {self._url} failed: {_describe_os_error(exc)}"
        try:
            reply = _reply_decoder.decode(payload)
        except msgspec.DecodeError:
            reply = None
        detail = (
            reply.error
            if reply is not None and reply.error
            else payload[:200].decode("utf-8", "replace")
        )
        return status, reply, f"POST {self._url} answered {status}: {detail}"

    def close(self) -> None:
        """Nothing to release: urllib opens a connection per request."""


def _read_quietly(response: urllib.error.HTTPError) -> bytes:
    try:
        return response.read()
    except (OSError, http.client.HTTPException):
        return b""
    finally:
        response.close()


def _describe_os_error(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    return f"{type(exc).__name__}: {exc}"


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A client TLS context trusting ``ca_file`` (or the system's store); ValueError if unusable."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ValueError(f"ca_file={ca_file!r}: not a readable PEM file: {reason}") from None


def open_transport(
    address: Address,
    *,
    max_datagram: int,
    max_body_bytes: int,
    timeout_s: float,
    token: str = "",
    ca_file: str | None = None,
) -> Transport:
    """The transport for ``address``'s scheme (``token``: the sidecar's ``ingest.token``)."""
    if address.scheme == "udp":
        key = token_key(token) if token else None
        return UdpTransport(address.host, address.port, max_datagram=max_datagram, key=key)
    return HttpTransport(
        address.url,
        max_body_bytes=max_body_bytes,
        timeout_s=timeout_s,
        token=token,
        ca_file=ca_file,
    )
