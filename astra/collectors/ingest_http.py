"""HTTP ingest: ``POST /v1/events`` and ``GET /healthz``.

Answers every request: 200 with what was accepted and which events were rejected (index
and field), 4xx with a message naming the problem when nothing could be accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from astra.events import Event
from astra.stats import PipelineStats
from astra.wire import BatchError, decode_batch

log = logging.getLogger("astra.ingest.http")

_json = msgspec.json.Encoder()


def _answer(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=_json.encode(body), content_type="application/json")


class HttpIngest:
    """The ingest HTTP server; events go to ``emit``, problems to the stats."""

    def __init__(
        self,
        emit: Callable[[Event], object],
        stats: PipelineStats,
        max_body_bytes: int,
        max_events: int,
        health: Callable[[], dict[str, Any]],
    ) -> None:
        self._emit = emit
        self._stats = stats
        self._max_body = max_body_bytes
        self._max_events = max_events
        self._health = health
        self.accepting = True
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        """The aiohttp application (routes and body limit)."""
        app = web.Application(client_max_size=self._max_body)
        app.router.add_post("/v1/events", self.post_events)
        app.router.add_get("/healthz", self.healthz)
        return app

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on host:port; returns the bound address (port 0 picks a free one)."""
        # A client stuck mid-request must not hold shutdown for aiohttp's default 60 s.
        self._runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[:2] if sockets else (host, port)
        return str(bound[0]), int(bound[1])

    async def stop(self) -> None:
        """Stop accepting requests."""
        self.accepting = False
        if self._runner is not None:
            await self._runner.cleanup()

    async def healthz(self, request: web.Request) -> web.Response:
        """Liveness and the pipeline's figures."""
        return _answer(200, {"status": "ok", **self._health()})

    async def post_events(self, request: web.Request) -> web.Response:
        """Accept a JSON object, a JSON array or NDJSON lines of events."""
        if not self.accepting:
            return _answer(503, {"error": "shutting down"})
        if request.content_length is not None and request.content_length > self._max_body:
            self._stats.rejected_http += 1
            return _answer(413, {"error": f"body too large: limit is {self._max_body} bytes"})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self._stats.rejected_http += 1
            return _answer(413, {"error": f"body too large: limit is {self._max_body} bytes"})
        try:
            events, rejected = decode_batch(body, self._max_events)
        except BatchError as exc:
            self._stats.rejected_http += 1
            return _answer(400, {"error": str(exc)})
        for event in events:
            self._emit(event)
        self._stats.received += len(events)
        self._stats.rejected_http += len(rejected)
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
