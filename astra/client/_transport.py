"""How encoded events leave the process: UDP datagrams or HTTP NDJSON posts.

Only the flusher thread calls a transport, so nothing here is on the caller's path and
nothing here needs a lock. A transport never raises: it reports what happened as a
``Delivery`` and the flusher turns that into counters.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol
from urllib.parse import urlsplit

import msgspec

DEFAULT_ADDRESS = "udp://127.0.0.1:8787"
INGEST_PATH = "/v1/events"
# The largest UDP payload over IPv4, and so the largest datagram the sidecar reads.
MAX_UDP_DATAGRAM = 65507
# How long the flusher waits for a full socket send buffer to drain before dropping.
_SEND_BUFFER_WAIT_S = 0.05


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
    """Non-blocking, connected UDP socket: several NDJSON lines to a datagram."""

    def __init__(self, host: str, port: int, max_datagram: int) -> None:
        self._host = host
        self._port = port
        self._max_datagram = max_datagram
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        # Resolved here, in the flusher thread, so a slow DNS never stalls the caller.
        family, kind, proto, _, addr = socket.getaddrinfo(
            self._host, self._port, type=socket.SOCK_DGRAM
        )[0]
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
        chunks, oversize = pack(lines, self._max_datagram, MAX_UDP_DATAGRAM)
        sent = units = failed = 0
        error: str | None = None
        for datagram, count in chunks:
            try:
                if self._sock is None:
                    self._sock = self._connect()
                self._send(self._sock, datagram)
            except OSError as exc:
                failed += count
                error = _describe_os_error(exc)
                if exc.errno not in (errno.ECONNREFUSED, errno.ENOBUFS, errno.EAGAIN):
                    # Anything else (unreachable, DNS) may be cured by a fresh socket.
                    self.close()
            else:
                sent += count
                units += 1
        return Delivery(sent, units, failed, oversize, 0, error)

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
    """``POST`` NDJSON batches with urllib (blocking, but only the flusher thread waits)."""

    def __init__(self, url: str, max_body_bytes: int, timeout_s: float) -> None:
        self._url = url
        self._max_body = max_body_bytes
        self._timeout_s = timeout_s
        # No proxies: the sidecar is local, and an http_proxy in the bot's environment
        # would otherwise swallow its telemetry.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

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
            headers={"Content-Type": "application/x-ndjson"},
        )
        try:
            with self._opener.open(request, timeout=self._timeout_s) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, _read_quietly(exc)
        except (OSError, ValueError) as exc:
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
    except OSError:
        return b""
    finally:
        response.close()


def _describe_os_error(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    return f"{type(exc).__name__}: {exc}"


def open_transport(
    address: Address, *, max_datagram: int, max_body_bytes: int, timeout_s: float
) -> Transport:
    """The transport for ``address``'s scheme."""
    if address.scheme == "udp":
        return UdpTransport(address.host, address.port, max_datagram)
    return HttpTransport(address.url, max_body_bytes, timeout_s)
