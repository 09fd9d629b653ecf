"""The control endpoint: ``/v1/control/*`` on the ingest HTTP server, behind its own token.

What the discord.py extension's ``/astra`` commands ask the sidecar:

- ``GET /v1/control/health``: the health score, its reasons, firing alerts and mutes;
- ``GET /v1/control/errors``: the problem groups of the last hour, worst first;
- ``GET /v1/control/report``: the daily report of today so far;
- ``POST /v1/control/mute`` ``{"alert": "cpu", "duration": "2h", "by": "alice"}``;
- ``POST /v1/control/unmute`` ``{"alert": "cpu", "by": "alice"}``.

Every route needs ``Authorization: Bearer <[control] token>``, compared in constant time.
The ingest token never grants control (the two must differ): whoever can send events can
not mute alerts. Without a control token the routes answer 404 and say how to turn them on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from astra.collectors.mutes import MuteError, Mutes
from astra.events import Event, Lifecycle
from astra.statistics import ControlStatistics
from astra.units import fmt_duration
from astra.wire_auth import bearer_ok, token_key

log = logging.getLogger("astra.control")

_json = msgspec.json.Encoder()
# A control request body is a few names: anything larger is not one.
MAX_BODY_BYTES = 4096
OFF = 'control endpoint is off: set [control] token (e.g. token = "${ASTRA_CONTROL_TOKEN}")'

Handler = Callable[[web.Request], Awaitable[web.Response]]


class MuteRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The body of ``POST /v1/control/mute`` and ``/unmute``."""

    alert: str
    duration: str = ""
    by: str = ""


_mute_decoder = msgspec.json.Decoder(MuteRequest)


def _answer(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=_json.encode(body), content_type="application/json", headers=headers
    )


class ControlEndpoint:
    """The control routes; each answer is built by a callable of the sidecar's."""

    def __init__(
        self,
        token: str,
        *,
        mutes: Mutes,
        emit: Callable[[Event], object],
        health: Callable[[], dict[str, Any]],
        errors: Callable[[], dict[str, Any]],
        report: Callable[[], dict[str, Any]],
    ) -> None:
        self._key = token_key(token) if token else None
        self._mutes = mutes
        self._emit = emit
        self._views = {"health": health, "errors": errors, "report": report}
        self.requests = 0
        self.unauthorized = 0

    def statistics(self) -> ControlStatistics:
        """The control endpoint's figures now."""
        return ControlStatistics(
            enabled=self._key is not None,
            requests=self.requests,
            unauthorized=self.unauthorized,
            mutes=len(self._mutes.active()),
        )

    def add_routes(self, app: web.Application) -> None:
        """Register the control routes on ``app``."""
        for name in self._views:
            app.router.add_get(f"/v1/control/{name}", self._guarded(self._view(name)))
        app.router.add_post("/v1/control/mute", self._guarded(self.mute))
        app.router.add_post("/v1/control/unmute", self._guarded(self.unmute))

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.Response:
            self.requests += 1
            if self._key is None:
                return _answer(404, {"error": OFF})
            if not bearer_ok(request.headers.get("Authorization"), self._key):
                self.unauthorized += 1
                return _answer(
                    401,
                    {"error": "missing or wrong control token"},
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return await handler(request)

        return guarded

    def _view(self, name: str) -> Handler:
        view = self._views[name]

        async def answer(request: web.Request) -> web.Response:
            return _answer(200, view())

        return answer

    async def _body(self, request: web.Request) -> MuteRequest | web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _answer(413, {"error": f"body too large: limit is {MAX_BODY_BYTES} bytes"})
        # Bounded twice: by Content-Length above and by the server's body limit here.
        raw = await request.read()
        if len(raw) > MAX_BODY_BYTES:
            return _answer(413, {"error": f"body too large: limit is {MAX_BODY_BYTES} bytes"})
        try:
            return _mute_decoder.decode(raw)
        except msgspec.DecodeError as exc:
            return _answer(400, {"error": f"invalid body: {exc}"})

    async def mute(self, request: web.Request) -> web.Response:
        """Mute an alert for a while."""
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        try:
            mute = self._mutes.mute(body.alert, body.duration, by=body.by)
        except MuteError as exc:
            return _answer(400, {"error": str(exc)})
        left = fmt_duration(mute.seconds)
        by = f" by {mute.by}" if mute.by else ""
        log.info("alert %s muted for %s%s", mute.alert, left, by)
        self._emit(Lifecycle(action="alert_muted", detail=f"{mute.alert} for {left}{by}"[:4000]))
        return _answer(200, {"alert": mute.alert, "until": mute.until, "muted": self._muted()})

    async def unmute(self, request: web.Request) -> web.Response:
        """End an alert's mute."""
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        name = body.alert.strip()[:200]
        if not self._mutes.unmute(name):
            return _answer(404, {"error": f"{name!r} is not muted", "muted": self._muted()})
        by = f" by {body.by[:100]}" if body.by else ""
        log.info("alert %s unmuted%s", name, by)
        self._emit(Lifecycle(action="alert_unmuted", detail=f"{name}{by}"[:4000]))
        return _answer(200, {"alert": name, "muted": self._muted()})

    def _muted(self) -> list[dict[str, Any]]:
        return [msgspec.to_builtins(m) for m in self._mutes.active()]
