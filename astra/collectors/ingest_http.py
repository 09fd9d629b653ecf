"""HTTP ingest: ``POST /v1/events`` and ``GET /healthz``.

Answers every request: 200 with what was accepted and which events were rejected (index
and field), 4xx with a message naming the problem when nothing could be accepted.

Hostile clients are bounded (``ingest_guard``): connections are capped, a request head must
arrive within ``header_timeout``, a body within ``body_timeout``, idle keep-alive
connections close after ``keepalive_timeout``. Compressed bodies (gzip, deflate) are
inflated here, never by aiohttp, so ``max_body_bytes`` holds while inflating: a small
body that would inflate past it stops at the limit and gets 413. With a token, ``POST``
needs ``Authorization: Bearer <token>``; ``GET /healthz`` stays open (it holds no secret).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import zlib
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from astra.collectors.ingest_guard import BurstLog, GuardedListener, connection_cap, file_limit
from astra.errors import BatchError
from astra.events import Ingest
from astra.statistics import HttpIngestStatistics
from astra.wire import decode_batch
from astra.wire_auth import bearer_ok, token_key

log = logging.getLogger("astra.ingest.http")

_json = msgspec.json.Encoder()
# After an answer sent before the whole body was read (401, 408, 413, 415), aiohttp keeps
# reading and discarding the rest for this long, so the client sees the answer.
_LINGER_S = 2.0
_GZIP = ("gzip", "x-gzip")
_IDENTITY = ("", "identity")
_ENCODINGS = "gzip, deflate"


def _answer(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=_json.encode(body), content_type="application/json", headers=headers
    )


class _TooLarge(Exception):
    """The body inflates past the limit."""


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """Decompress a gzip or deflate body, stopping as soon as it exceeds ``limit`` bytes.

    Raises ``_TooLarge`` past the limit, ``ValueError`` for a corrupt or truncated stream.
    """
    if encoding in _GZIP:
        wbits = 16 + zlib.MAX_WBITS
    else:
        # HTTP's "deflate" is a zlib stream, but some clients send raw deflate.
        zlib_header = len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0
        wbits = zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"invalid {encoding} body: {exc}") from None
    if len(data) > limit:
        raise _TooLarge
    if not inflater.eof:
        raise ValueError(f"invalid {encoding} body: the compressed stream is truncated")
    if inflater.unused_data:
        raise ValueError(f"invalid {encoding} body: data after the end of the compressed stream")
    return data


class HttpIngest:
    """The ingest HTTP server: ``POST /v1/events`` into ``ingest``, ``/healthz``, ``/metrics``."""

    def __init__(
        self,
        ingest: Ingest,
        *,
        max_body_bytes: int,
        max_events: int,
        health: Callable[[], dict[str, Any]],
        metrics: Callable[[str], tuple[bytes, str]] | None = None,
        token: str = "",
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
        keepalive_timeout: float = 15.0,
        max_connections: int = 256,
        ssl_context: ssl.SSLContext | None = None,
        add_routes: Callable[[web.Application], None] | None = None,
    ) -> None:
        self._ingest = ingest
        # More routes on the same server (the control endpoint), with their own auth.
        self._add_routes = add_routes
        self._max_body = max_body_bytes
        self._max_events = max_events
        self._health = health
        self._metrics = metrics
        self._requests = 0
        self._received = 0
        self._rejected = 0
        self._refused = 0
        self._unauthorized = 0
        self._body_timeouts = 0
        self._key = token_key(token) if token else None
        self._header_timeout = header_timeout
        self._body_timeout = body_timeout
        self._keepalive_timeout = keepalive_timeout
        self._max_connections = max_connections
        self._ssl = ssl_context
        self._errors = BurstLog()
        self.accepting = True
        self._runner: web.AppRunner | None = None
        self._listener: GuardedListener | None = None

    @property
    def scheme(self) -> str:
        """``https`` with TLS, else ``http``."""
        return "https" if self._ssl is not None else "http"

    @property
    def max_connections(self) -> int:
        """The connection cap in force (after clamping to the file-descriptor limit)."""
        return self._listener.max_connections if self._listener else self._max_connections

    @property
    def open_connections(self) -> int:
        """HTTP connections open now (TLS handshakes included)."""
        return self._listener.open_connections if self._listener else 0

    def statistics(self) -> HttpIngestStatistics:
        """The HTTP ingest's figures now."""
        listener = self._listener
        return HttpIngestStatistics(
            requests=self._requests,
            received=self._received,
            rejected=self._rejected,
            refused_requests=self._refused,
            unauthorized=self._unauthorized,
            header_timeouts=listener.header_timeouts if listener else 0,
            body_timeouts=self._body_timeouts,
            connections=self.open_connections,
            connections_refused=listener.refused if listener else 0,
            accept_errors=self._errors.count,
        )

    def app(self) -> web.Application:
        """The aiohttp application (routes and body limit)."""
        app = web.Application(client_max_size=self._max_body)
        app.router.add_post("/v1/events", self.post_events)
        app.router.add_get("/healthz", self.healthz)
        if self._metrics is not None:
            app.router.add_get("/metrics", self.metrics)
        if self._add_routes is not None:
            self._add_routes(app)
        return app

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on host:port; returns the bound address (port 0 picks a free one)."""
        # A client stuck mid-request must not hold shutdown for aiohttp's default 60 s.
        runner = web.AppRunner(
            self.app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=1.0,
            keepalive_timeout=self._keepalive_timeout,
            lingering_time=_LINGER_S,
            # Compressed bodies are inflated by post_events, within the body limit.
            auto_decompress=False,
        )
        await runner.setup()
        self._runner = runner
        assert runner.server is not None
        limit = file_limit()
        cap = connection_cap(self._max_connections, limit)
        if cap < self._max_connections:
            log.warning(
                "ingest.max_connections: %d does not fit the file-descriptor limit "
                "(RLIMIT_NOFILE %s, with some kept for the rest of astra): using %d "
                "(raise the limit, e.g. LimitNOFILE= or ulimit -n, to allow more)",
                self._max_connections,
                limit,
                cap,
            )
        self._errors.install(asyncio.get_running_loop())
        self._listener = GuardedListener(
            runner.server,
            max_connections=cap,
            header_timeout=self._header_timeout,
            ssl_context=self._ssl,
            errors=self._errors,
        )
        try:
            return await self._listener.start(host, port)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop accepting requests."""
        self.accepting = False
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._errors.close()

    async def healthz(self, request: web.Request) -> web.Response:
        """Liveness and the pipeline's figures."""
        return _answer(200, {"status": "ok", **self._health()})

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus text exposition, or OpenMetrics when the scraper asks for it."""
        assert self._metrics is not None
        body, content_type = self._metrics(request.headers.get("Accept", ""))
        response = web.Response(body=body)
        # The content type carries parameters (version, charset) aiohttp won't take apart.
        response.headers["Content-Type"] = content_type
        return response

    async def post_events(self, request: web.Request) -> web.Response:
        """Accept a JSON object, a JSON array or NDJSON lines of events."""
        self._requests += 1
        if self._key is not None and not bearer_ok(request.headers.get("Authorization"), self._key):
            self._unauthorized += 1
            return _answer(
                401,
                {"error": "missing or wrong bearer token"},
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not self.accepting:
            return _answer(503, {"error": "shutting down"})
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in _IDENTITY and encoding not in _GZIP and encoding != "deflate":
            self._refused += 1
            return _answer(
                415,
                {
                    "error": f"unsupported Content-Encoding {encoding[:40]!r}: "
                    f"send the body uncompressed or as {_ENCODINGS}"
                },
                headers={"Accept-Encoding": _ENCODINGS},
            )
        if request.content_length is not None and request.content_length > self._max_body:
            return self._too_large()
        try:
            async with asyncio.timeout(self._body_timeout):
                body = await request.read()
        except TimeoutError:
            self._body_timeouts += 1
            late = _answer(
                408, {"error": f"request body not received within {self._body_timeout:g} s"}
            )
            late.force_close()
            return late
        except web.HTTPRequestEntityTooLarge:
            return self._too_large()
        if encoding not in _IDENTITY:
            try:
                body = inflate(body, encoding, self._max_body)
            except _TooLarge:
                return self._too_large(" once decompressed")
            except ValueError as exc:
                self._refused += 1
                return _answer(400, {"error": str(exc)})
        try:
            events, rejected = decode_batch(body, self._max_events)
        except BatchError as exc:
            self._refused += 1
            return _answer(400, {"error": str(exc)})
        self._ingest(events, len(body), body)
        self._received += len(events)
        self._rejected += len(rejected)
        if not events:
            first = rejected[0]
            return _answer(
                400,
                {
                    "error": f"no valid events: event {first.index}: {first.error}",
                    "accepted": 0,
                    "rejected": msgspec.to_builtins(rejected),
                },
            )
        return _answer(200, {"accepted": len(events), "rejected": msgspec.to_builtins(rejected)})

    def _too_large(self, how: str = "") -> web.Response:
        self._refused += 1
        return _answer(413, {"error": f"body too large{how}: limit is {self._max_body} bytes"})
