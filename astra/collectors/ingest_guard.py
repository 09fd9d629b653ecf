"""The HTTP ingest's connection guard: a cap on connections and a deadline for request heads.

aiohttp has no timeout for a request head that never completes, and asyncio's own accept
loop, once the process runs out of file descriptors, retries and logs an error for every
attempt. So the ingest accepts connections itself:

- at most ``max_connections`` are open at once (clamped below the process's
  ``RLIMIT_NOFILE`` soft limit minus a reserve, so the rest of the sidecar keeps the file
  descriptors it needs); a connection over the cap is accepted and closed at once (plain
  HTTP gets a short ``503`` first), so the kernel's backlog never fills up;
- a connection that has not delivered a complete request head ``header_timeout`` seconds
  after it was accepted (after its TLS handshake, which gets as long) is closed;
- accept failures for lack of descriptors or memory are logged once per burst, with a
  count, not once per attempt; the event loop's exception handler does the same for such
  errors coming from anywhere else.

Each accepted connection is served by aiohttp's own ``RequestHandler`` behind a thin
protocol that forwards every call to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
import sys
from typing import Any

from aiohttp import web

log = logging.getLogger("astra.ingest.http")

# File descriptors kept for the rest of the sidecar (Discord connections, the UDP socket,
# the event loop, files the collectors read) when the connection cap is clamped.
RESERVED_FDS = 64
BACKLOG = 1024
# Connections taken from the backlog per wake-up, so one burst cannot monopolise the loop.
_ACCEPT_BATCH = 64
# After accept() failed for lack of resources, wait this long before trying again.
_ACCEPT_RETRY_S = 0.5
# Accept failures are logged at most once per this many seconds (with a count).
ERROR_LOG_EVERY_S = 10.0
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# Errors of one connection that the client caused (it left before being accepted).
_GONE_ERRNOS = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.ECONNRESET, errno.EPERM})
_BUSY_BODY = b'{"error": "too many connections: try again shortly"}'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n\r\n" + _BUSY_BODY
)


def file_limit() -> int | None:
    """The process's ``RLIMIT_NOFILE`` soft limit, None when unlimited or unknown."""
    if sys.platform == "win32":
        return None
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    return int(soft)


def connection_cap(requested: int, limit: int | None) -> int:
    """``requested``, or less when the file-descriptor ``limit`` cannot hold it and a reserve."""
    if limit is None:
        return requested
    room = limit - RESERVED_FDS if limit >= 2 * RESERVED_FDS else limit // 2
    return max(1, min(requested, room))


class BurstLog:
    """Logs a recurring resource failure once per burst instead of once per occurrence.

    The first failure is logged at once; later ones are counted and one line every
    ``every`` seconds says how many there were, until a period passes without any.
    """

    def __init__(self, every: float = ERROR_LOG_EVERY_S) -> None:
        self.count = 0  # failures since start
        self._every = every
        self._pending = 0
        self._detail = ""
        self._timer: asyncio.TimerHandle | None = None
        self._previous: Any = None
        self._installed_on: asyncio.AbstractEventLoop | None = None

    def note(self, detail: str) -> None:
        """Count one failure (on the event loop); log it if no burst is being reported."""
        self.count += 1
        self._detail = detail
        if self._timer is not None:
            self._pending += 1
            return
        log.warning(
            "ingest: cannot accept connections: %s; until this stops, failures are counted "
            "and reported every %g s",
            detail,
            self._every,
        )
        self._schedule()

    def _schedule(self) -> None:
        loop = self._installed_on
        try:
            loop = loop or asyncio.get_running_loop()
            self._timer = loop.call_later(self._every, self._flush)
        except RuntimeError:  # no loop running any more (shutting down): nothing to batch
            self._timer = None

    def _flush(self) -> None:
        self._timer = None
        if not self._pending:
            return  # the burst is over: the next failure is logged at once again
        log.warning(
            "ingest: %d more accept failures in the last %g s (%s)",
            self._pending,
            self._every,
            self._detail,
        )
        self._pending = 0
        self._schedule()

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Route the loop's resource errors (EMFILE & co.) through this log."""
        self._previous = loop.get_exception_handler()
        self._installed_on = loop
        loop.set_exception_handler(self._handle)

    def _handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS:
            self.note(f"{context.get('message', 'error')}: {exc.strerror or exc}")
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)

    def close(self) -> None:
        """Report what is still counted and give the loop its previous handler back."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            log.warning("ingest: %d more accept failures (%s)", self._pending, self._detail)
            self._pending = 0
        loop = self._installed_on
        if loop is not None and loop.get_exception_handler() == self._handle:
            loop.set_exception_handler(self._previous)
        self._installed_on = None


class _Slot:
    """One admitted connection's place under the cap; released exactly once."""

    __slots__ = ("_listener", "released")

    def __init__(self, listener: GuardedListener) -> None:
        self._listener = listener
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._listener.open_connections -= 1

    def timed_out(self) -> None:
        """The connection's request head came too late (it is being closed)."""
        self._listener.header_timeouts += 1


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, closed if no request head arrives in time."""

    def __init__(self, inner: web.RequestHandler, slot: _Slot, header_timeout: float) -> None:
        self._inner = inner
        self._slot = slot
        self._header_timeout = header_timeout
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._header_timeout, self._head_too_late)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)
        # aiohttp counts a request when its parser has the whole head (or found it
        # malformed, which it answers with 400): from then on its own timeouts and ours
        # for the body apply. Idle keep-alive connections are closed by aiohttp's
        # keepalive_timeout, which also bounds a later head that never completes.
        if self._timer is not None and self._inner._request_count:
            self._timer.cancel()
            self._timer = None

    def eof_received(self) -> bool | None:
        self._inner.eof_received()
        return None  # close the transport, as aiohttp's protocol does

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._slot.release()
        self._inner.connection_lost(exc)

    def _head_too_late(self) -> None:
        self._timer = None
        self._slot.timed_out()
        transport = self._transport
        if isinstance(transport, asyncio.WriteTransport):
            transport.abort()
        elif transport is not None:
            transport.close()


class GuardedListener:
    """Listens on TCP and hands admitted connections to aiohttp (see the module docstring)."""

    def __init__(
        self,
        server: web.Server,
        *,
        max_connections: int,
        header_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        errors: BurstLog,
    ) -> None:
        self._server = server
        self.max_connections = max_connections
        self.refused = 0  # connections closed at once: the cap was reached
        self.header_timeouts = 0  # connections closed for a head that came too slowly
        self._header_timeout = header_timeout
        self._ssl = ssl_context
        self._errors = errors
        self.open_connections = 0
        self._sockets: list[socket.socket] = []
        self._paused = False
        self._resume: asyncio.TimerHandle | None = None
        self._connecting: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def sockets(self) -> list[socket.socket]:
        """The listening sockets."""
        return list(self._sockets)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind every address of ``host`` and start accepting; returns the first bound one."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        seen: set[tuple[int, Any]] = set()
        try:
            for family, kind, proto, _, address in infos:
                if (family, address) in seen:
                    continue
                seen.add((family, address))
                sock = socket.socket(family, kind, proto)
                self._sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                    # As asyncio's create_server does: "::" means IPv6 only.
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(BACKLOG)
                sock.setblocking(False)
        except OSError:
            self.close()
            raise
        self._listen()
        bound = self._sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    def _listen(self) -> None:
        assert self._loop is not None
        for sock in self._sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _unlisten(self) -> None:
        if self._loop is None:
            return
        for sock in self._sockets:
            if sock.fileno() >= 0:
                self._loop.remove_reader(sock.fileno())

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, _address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _GONE_ERRNOS:
                    continue
                if exc.errno in RESOURCE_ERRNOS:
                    self._errors.note(f"socket.accept() out of system resource: {exc.strerror}")
                else:
                    self._errors.note(f"socket.accept() failed: {exc}")
                self._pause()
                return
            if self.open_connections >= self.max_connections:
                self._refuse(conn)
            else:
                self._admit(conn)

    def _pause(self) -> None:
        """Stop accepting for a moment (connections wait in the backlog meanwhile)."""
        if self._paused or self._loop is None:
            return
        self._paused = True
        self._unlisten()
        self._resume = self._loop.call_later(_ACCEPT_RETRY_S, self._unpause)

    def _unpause(self) -> None:
        self._resume = None
        self._paused = False
        if self._sockets:
            self._listen()

    def _refuse(self, conn: socket.socket) -> None:
        self.refused += 1
        with contextlib.suppress(OSError):
            conn.setblocking(False)
            if self._ssl is None:
                conn.send(_BUSY)
        conn.close()

    def _admit(self, conn: socket.socket) -> None:
        assert self._loop is not None
        conn.setblocking(False)
        self.open_connections += 1
        slot = _Slot(self)
        task = self._loop.create_task(self._serve(conn, slot))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _serve(self, conn: socket.socket, slot: _Slot) -> None:
        assert self._loop is not None

        def protocol() -> _Guarded:
            return _Guarded(self._server(), slot, self._header_timeout)

        try:
            await self._loop.connect_accepted_socket(
                protocol,
                conn,
                ssl=self._ssl,
                # A peer that never finishes (or answers) the TLS handshake or shutdown
                # holds its place no longer than one that never sends a head.
                ssl_handshake_timeout=self._header_timeout if self._ssl is not None else None,
                ssl_shutdown_timeout=self._header_timeout if self._ssl is not None else None,
            )
        except asyncio.CancelledError:
            slot.release()
            conn.close()
            raise
        except Exception as exc:
            # A failed or too slow TLS handshake, or the connection went away: asyncio has
            # closed the transport; the socket is closed again here in case it had none.
            log.debug("ingest: connection not set up: %r", exc)
            slot.release()
            conn.close()

    def close(self) -> None:
        """Stop listening; connections already admitted are aiohttp's to close."""
        self._unlisten()
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()
        for task in list(self._connecting):
            task.cancel()
