"""The client with a token (and HTTPS) against the real sidecar: it still just delivers.

``Telemetry`` reads ``ASTRA_INGEST_TOKEN`` (or ``token=``) and sends the bearer header over
HTTP or signs every datagram over UDP; ``ASTRA_INGEST_CA`` (or ``ca_file=``) trusts an
HTTPS sidecar's certificate. The logging handler and the discord.py extension get all of it
through the environment.
"""

from __future__ import annotations

import json
import logging
import ssl
from pathlib import Path

import pytest

from astra.client import ENV_CA, ENV_TOKEN, Telemetry
from astra.client.logging import TelemetryHandler
from tests.conftest import webhook_channels
from tests.e2e.test_ingest_security import FAST, TOKEN, token_lines
from tests.e2e.test_ingest_transport import (
    Start,
    Started,
    config_text,
    start,
    tls_lines,
)
from tests.fake_discord import FakeDiscord
from tests.sidecar import free_port
from tests.tls import self_signed

__all__ = ["start"]  # the fixture, shared with test_ingest_transport


def with_token(start: Start, extra: str = "", body: str = "") -> Started:
    """A sidecar requiring TOKEN on HTTP and UDP alike."""
    port = free_port()
    return start(
        config_text(port, token_lines(extra=extra), body),
        port,
        env={"ASTRA_INGEST_TOKEN": TOKEN},
    )


def test_the_client_signs_datagrams_with_the_token_from_the_environment(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ASTRA_INGEST_TOKEN set, every datagram the client packs is accepted."""
    sidecar = with_token(start)
    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    with Telemetry(f"udp://127.0.0.1:{sidecar.port}", source="bot", max_datagram=512) as client:
        for index in range(200):
            client.metric("players", index, tags={"shard": index % 4})
        assert client.flush()
        assert client.stats.datagrams > 10, "several datagrams, each signed"
    sidecar.wait_for(lambda: sidecar.health()["received"] == 200, timeout=10)
    health = sidecar.health()
    assert health["unauthorized"] == 0 and health["malformed_udp"] == 0
    assert sidecar.stop() == 0


def test_the_client_sends_the_bearer_token_over_http(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ASTRA_INGEST_TOKEN set, HTTP posts carry the bearer token and are accepted."""
    sidecar = with_token(start)
    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    with Telemetry(f"http://127.0.0.1:{sidecar.port}", source="bot") as client:
        client.log("hello", level="warning")
        client.increment("jobs.done")
        assert client.flush()
        assert client.stats.sent == 2 and client.stats.rejected == 0
    assert sidecar.health()["received"] == 2
    assert sidecar.stop() == 0


def test_an_explicit_token_wins_and_a_wrong_one_is_counted_on_both_sides(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """token= overrides the environment; with a wrong token nothing is taken, and both count it."""
    sidecar = with_token(start)
    monkeypatch.setenv(ENV_TOKEN, "wrong-token-from-the-environment")
    udp = Telemetry(f"udp://127.0.0.1:{sidecar.port}", token=TOKEN)
    http = Telemetry(f"http://127.0.0.1:{sidecar.port}")  # the wrong one, from the environment
    with udp, http:
        udp.metric("right", 1)
        http.metric("wrong", 1)
        assert udp.flush() and http.flush()
        assert http.stats.sent == 0 and http.stats.rejected == 1
    sidecar.wait_for(lambda: sidecar.health()["received"] == 1, timeout=10)
    assert sidecar.health()["unauthorized"] == 1
    assert sidecar.stop() == 0


def test_the_client_posts_over_https_trusting_the_given_certificate(
    start: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An https:// address with ca_file= or ASTRA_INGEST_CA reaches a self-signed sidecar."""
    cert, key = self_signed(tmp_path)
    port = free_port()
    sidecar = start(
        config_text(port, token_lines(extra=tls_lines(cert, key))),
        port,
        context=ssl.create_default_context(cafile=str(cert)),
        env={"ASTRA_INGEST_TOKEN": TOKEN},
    )
    address = f"https://localhost:{port}"
    with Telemetry(address, token=TOKEN, ca_file=str(cert)) as explicit:
        explicit.metric("tls", 1)
        assert explicit.flush() and explicit.stats.sent == 1
    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    monkeypatch.setenv(ENV_CA, str(cert))
    with Telemetry(address) as from_env:
        from_env.metric("tls", 2)
        assert from_env.flush() and from_env.stats.sent == 1
    monkeypatch.delenv(ENV_CA)
    with Telemetry(address) as untrusting:
        untrusting.metric("tls", 3)
        untrusting.flush()
        assert untrusting.stats.sent == 0 and untrusting.stats.dropped_send_error == 1
    with pytest.raises(ValueError, match="ca_file"):
        Telemetry(address, ca_file=str(tmp_path / "missing.pem"))
    assert sidecar.health()["received"] == 2
    assert sidecar.stop() == 0


def test_the_logging_handler_delivers_with_the_token_from_the_environment(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TelemetryHandler() builds its client from the environment, token included."""
    sidecar = with_token(start)
    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    monkeypatch.setenv("ASTRA_ADDRESS", f"udp://127.0.0.1:{sidecar.port}")
    handler = TelemetryHandler()
    logger = logging.getLogger("test.client_auth")
    logger.addHandler(handler)
    try:
        logger.warning("disk almost full")
        assert handler.telemetry.flush()
    finally:
        logger.removeHandler(handler)
        handler.close()
    sidecar.wait_for(lambda: sidecar.health()["received"] == 1, timeout=10)
    assert sidecar.health()["unauthorized"] == 0
    assert sidecar.stop() == 0


@pytest.fixture
def anyio_backend() -> str:
    """The discord.py test runs on asyncio."""
    return "asyncio"


@pytest.mark.anyio
async def test_a_discordpy_bot_with_the_token_reaches_discord_without_showing_it(
    start: Start, discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The extension signs with ASTRA_INGEST_TOKEN; events land, the token shows nowhere."""
    from tests.client.test_discordpy import Calls, flushed, message_payload, running_bot

    body, ids = webhook_channels(discord)
    sidecar = with_token(start, body=body + FAST)
    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    async with running_bot(f"udp://127.0.0.1:{sidecar.port}", Calls()) as bot:
        bot._connection.parse_message_create(message_payload(1, "hello there"))
        logging.getLogger("mybot").error("could not log in with %s", TOKEN)
        await flushed(bot)

        def landed() -> bool:
            analytics = discord.all_events(ids["analytics"])
            logs = discord.all_events(ids["logs"])
            return any(e["kind"] == "message" for e in analytics) and any(
                e["kind"] == "log" and "could not log in" in e["message"] for e in logs
            )

        sidecar.wait_for(landed, timeout=30)
    assert sidecar.health()["unauthorized"] == 0
    assert sidecar.stop() == 0
    posted = json.dumps([[m.payload, m.jsonl_events()] for m in discord.all_messages()])
    assert TOKEN not in posted and "[redacted]" in posted
    assert TOKEN not in sidecar.stderr + sidecar.stdout
    discord.assert_no_violations()
