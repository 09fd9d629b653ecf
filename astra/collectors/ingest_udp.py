"""UDP ingest: datagrams holding one JSON event or NDJSON lines of events.

With ``[ingest] token`` set, a datagram must start with an auth line (``astra.wire_auth``):
one without a valid signature is dropped and counted (``unauthorized``) before anything
in it is decoded, unless ``udp_unauthenticated`` lets unsigned datagrams in.

A burst overflows the kernel's default receive buffer long before Python is busy, so the
socket asks for a large ``SO_RCVBUF`` (as the DogStatsD agent does), reports what the
kernel granted, and counts the kernel's own drops from ``/proc/net/udp``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

from astra.errors import BatchError
from astra.events import Ingest
from astra.statistics import UdpIngestStatistics
from astra.wire import decode_batch
from astra.wire_auth import signature_ok, split_signed, token_key

log = logging.getLogger("astra.ingest.udp")

MAX_DATAGRAM = 65507
# SO_RCVBUFFORCE lets a privileged process go past net.core.rmem_max; not in socket on all builds.
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def open_udp_socket(host: str, port: int, receive_buffer: int) -> tuple[socket.socket, int]:
    """Bind a non-blocking UDP socket and grow its receive buffer; returns (socket, granted)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, receive_buffer)
            break
        except OSError:
            continue
    sock.bind((host, port))
    sock.setblocking(False)
    # Linux reports twice the usable size (it counts its bookkeeping).
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
    return sock, granted


def kernel_drops(sock: socket.socket, proc_path: str = "/proc/net/udp") -> int | None:
    """Datagrams the kernel dropped for this socket (``drops`` column), None if unknown."""
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
        paths = [proc_path, proc_path + "6"] if sock.family == socket.AF_INET6 else [proc_path]
        for path in paths:
            with open(path, encoding="ascii") as table:
                next(table)
                for line in table:
                    columns = line.split()
                    if len(columns) >= 13 and columns[9] == inode:
                        return int(columns[12])
    except (OSError, ValueError, StopIteration):
        return None
    return None


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, ingest: UdpIngest) -> None:
        self._ingest = ingest

    def datagram_received(self, data: bytes, addr: object) -> None:
        self._ingest.handle(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp receive error: %s", exc)


class UdpIngest:
    """Receives event datagrams; malformed ones are counted, never fatal."""

    def __init__(
        self,
        ingest: Ingest,
        *,
        max_events: int,
        token: str = "",
        unauthenticated: bool = False,
    ) -> None:
        self._ingest = ingest
        self._max_events = max_events
        self._received = 0
        self._malformed = 0
        self._unauthorized = 0
        self._kernel_drops = 0
        self._key = token_key(token) if token else None
        self._require_signature = bool(token) and not unauthenticated
        self._transport: asyncio.DatagramTransport | None = None
        self.socket: socket.socket | None = None
        self.granted_buffer = 0
        self.datagrams = 0
        self._drops_at_start = 0

    async def start(self, host: str, port: int, receive_buffer: int) -> tuple[str, int]:
        """Bind and start receiving; returns the bound address."""
        sock, self.granted_buffer = open_udp_socket(host, port, receive_buffer)
        self.socket = sock
        if self.granted_buffer < receive_buffer:
            log.warning(
                "ingest.udp: asked for a %d KiB receive buffer, the kernel granted %d KiB "
                "(raise net.core.rmem_max to avoid drops in bursts)",
                receive_buffer // 1024,
                self.granted_buffer // 1024,
            )
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        self._transport = transport
        self._drops_at_start = kernel_drops(sock) or 0
        bound = sock.getsockname()
        return str(bound[0]), int(bound[1])

    def handle(self, data: bytes) -> None:
        """Check one datagram's signature, decode it and emit its events."""
        self.datagrams += 1
        signature, payload = split_signed(data)
        if signature is not None:
            # Without a token there is nothing to check a signature against: a signing
            # client is simply ahead of its sidecar's configuration.
            if self._key is not None and not signature_ok(self._key, signature, payload):
                self._unauthorized += 1
                return
            data = payload
        elif self._require_signature:
            self._unauthorized += 1
            return
        try:
            events, rejected = decode_batch(data, self._max_events)
        except BatchError:
            self._malformed += 1
            return
        self._malformed += len(rejected)
        self._ingest(events, len(data), data)
        self._received += len(events)

    def statistics(self) -> UdpIngestStatistics:
        """The UDP ingest's figures now (the kernel's drop count read afresh)."""
        self._refresh_kernel_drops()
        return UdpIngestStatistics(
            datagrams=self.datagrams,
            received=self._received,
            malformed=self._malformed,
            unauthorized=self._unauthorized,
            kernel_drops=self._kernel_drops,
            receive_buffer_bytes=self.granted_buffer,
        )

    def _refresh_kernel_drops(self) -> None:
        if self.socket is None:
            return
        drops = kernel_drops(self.socket)
        if drops is not None:
            self._kernel_drops = drops - self._drops_at_start

    def stop(self, drain_seconds: float = 0.5) -> None:
        """Stop receiving; what is already in the kernel buffer is read first, for a moment.

        Bounded in time: a bot that keeps sending must not keep the sidecar from stopping.
        """
        if self._transport is None or self.socket is None:
            return
        self._refresh_kernel_drops()
        deadline = time.monotonic() + drain_seconds
        while time.monotonic() < deadline:
            try:
                data = self.socket.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError, OSError):
                break
            self.handle(data)
        self._transport.close()
        self._transport = None
