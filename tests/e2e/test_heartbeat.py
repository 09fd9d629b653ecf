"""End to end: the heartbeat URL is called while the pipeline is healthy, and kept secret."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import Launch, webhook_channels
from tests.fake_discord import GUILD_FORUM, FakeDiscord

PUSH_TOKEN = "hb-push-token-0123456789abcdef"


class PushServer:
    """A real HTTP server standing in for Uptime Kuma's push endpoint; counts the calls."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                body = b'{"ok":true}' if outer.status == 200 else b'{"ok":false}'
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The push URL, its token in the path as Uptime Kuma has it."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/push/{PUSH_TOKEN}?status=up"

    def __enter__(self) -> PushServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def push() -> Iterator[PushServer]:
    """A push server on a free port."""
    with PushServer() as server:
        yield server


def test_heartbeat_is_called_every_interval_and_never_logged(
    discord: FakeDiscord, launch: Launch, push: PushServer
) -> None:
    """The URL is called again and again; its token shows up nowhere astra writes."""
    body, _ = webhook_channels(discord)
    sidecar = launch(body + f'[heartbeat]\nurl = "{push.url}"\ninterval = 1\n')
    sidecar.wait_for(lambda: len(push.hits) >= 3)
    figures = sidecar.health()["statistics"]["heartbeat"]
    assert figures["enabled"] and figures["sent"] >= 3 and figures["failed"] == 0
    assert sidecar.stop() == 0
    assert push.hits[0] == f"/api/push/{PUSH_TOKEN}?status=up"
    assert PUSH_TOKEN not in sidecar.stdout + sidecar.stderr
    assert all(PUSH_TOKEN.encode() not in r.body for r in discord.requests)
    assert "heartbeat: calling the heartbeat URL every 1 s while healthy" in sidecar.stderr


def test_heartbeat_failures_are_logged_once_per_burst(
    discord: FakeDiscord, launch: Launch, push: PushServer
) -> None:
    """A run of failed calls is one warning, and recovery one line, without the URL."""
    push.status = 503
    body, _ = webhook_channels(discord)
    sidecar = launch(body + f'[heartbeat]\nurl = "{push.url}"\ninterval = 1\n')
    sidecar.wait_for(lambda: len(push.hits) >= 3)
    push.status = 200
    failed = len(push.hits)
    sidecar.wait_for(lambda: sidecar.health()["statistics"]["heartbeat"]["sent"] >= 1)
    assert sidecar.stop() == 0
    assert len(push.hits) > failed
    assert sidecar.stderr.count("heartbeat: the call failed (HTTP 503)") == 1
    assert sidecar.stderr.count("heartbeat: answered again after") == 1
    assert PUSH_TOKEN not in sidecar.stderr


def test_heartbeat_unreachable_is_named_by_cause(discord: FakeDiscord, launch: Launch) -> None:
    """A heartbeat URL nobody listens on fails with the error type, not the URL."""
    with PushServer() as server:
        url = server.url
    body, _ = webhook_channels(discord)
    sidecar = launch(body + f'[heartbeat]\nurl = "{url}"\ninterval = 1\n')
    sidecar.wait_for(lambda: sidecar.health()["statistics"]["heartbeat"]["failed"] >= 2)
    assert sidecar.stop() == 0
    assert sidecar.stderr.count("heartbeat: the call failed (ClientConnectorError)") == 1
    assert PUSH_TOKEN not in sidecar.stderr


def test_heartbeat_is_held_back_while_a_channel_cannot_post(
    discord: FakeDiscord, launch: Launch, push: PushServer
) -> None:
    """A channel that needs a configuration fix stops the heartbeat, said once."""
    body, ids = webhook_channels(discord)
    discord.add_channel(ids["logs"], channel_type=GUILD_FORUM)
    sidecar = launch(
        body + f'[flush]\ninterval = 0.3\n[heartbeat]\nurl = "{push.url}"\ninterval = 1\n'
    )
    assert sidecar.post({"kind": "log", "level": "error", "message": "x"}).status == 200
    sidecar.wait_for(lambda: sidecar.health()["statistics"]["heartbeat"]["skipped"] >= 2)
    assert sidecar.stop() == 0
    assert (
        sidecar.stderr.count(
            "heartbeat: held back while the pipeline is unhealthy: "
            "#logs: forum channel: set forum = true"
        )
        == 1
    )
