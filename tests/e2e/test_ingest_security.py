"""Authenticated ingest and exposure warnings, through the real sidecar and the real CLI.

With ``ingest.token`` set, HTTP posts need the bearer token and datagrams an HMAC of their
payload; the token is a secret the sidecar never prints or posts; ``astra check`` and
``astra run`` warn when ingest listens beyond loopback without one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from astra.wire_auth import sign
from tests.conftest import webhook_channels
from tests.e2e.test_ingest_transport import LINE, Start, config_text, request, start
from tests.fake_discord import FakeDiscord
from tests.sidecar import free_port, run_cli

__all__ = ["start"]  # the fixture, shared with test_ingest_transport

TOKEN = "s3cr3t-ingest-token-0123456789abcdef"
FAST = "[flush]\ninterval = 0.5\ncritical_delay = 0.2\n"


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def send_udp(port: int, datagrams: list[bytes]) -> None:
    """Send datagrams to the sidecar's UDP ingest on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in datagrams:
            sock.sendto(datagram, ("127.0.0.1", port))


def token_lines(token: str = TOKEN, extra: str = "") -> str:
    """[ingest] lines setting the token (from the environment, as config.toml does)."""
    return 'token = "${ASTRA_INGEST_TOKEN}"\n' + extra


# --- C: HTTP --------------------------------------------------------------------------------


def test_http_posts_need_the_bearer_token_and_healthz_stays_open(start: Start) -> None:
    """Without or with a wrong token a POST gets 401 and is counted; the right one gets 200."""
    port = free_port()
    sidecar = start(config_text(port, token_lines()), port, env={"ASTRA_INGEST_TOKEN": TOKEN})
    missing = request(port, "POST", "/v1/events", LINE)
    wrong = request(port, "POST", "/v1/events", LINE, bearer("x" * len(TOKEN)))
    other_scheme = request(port, "POST", "/v1/events", LINE, {"Authorization": f"Basic {TOKEN}"})
    right = request(port, "POST", "/v1/events", LINE, bearer(TOKEN))
    lower = request(port, "POST", "/v1/events", LINE, {"Authorization": f"bearer  {TOKEN} "})
    for refused in (missing, wrong, other_scheme):
        assert refused.status == 401, refused
        assert refused.body == {"error": "missing or wrong bearer token"}
        assert refused.headers["www-authenticate"] == "Bearer"
    assert right.status == 200 and right.body["accepted"] == 1
    assert lower.status == 200, "the scheme is case-insensitive, as HTTP says"
    health = request(port, "GET", "/healthz")  # no token: it holds no secret
    assert health.status == 200
    assert health.body["unauthorized"] == 3 and health.body["received"] == 2
    assert sidecar.stop() == 0
    assert TOKEN not in sidecar.stderr + sidecar.stdout
    assert "bearer token required" in sidecar.stderr


# --- C: UDP ---------------------------------------------------------------------------------


def test_udp_datagrams_must_be_signed_with_the_token(start: Start) -> None:
    """Unsigned or wrongly signed datagrams are dropped and counted; signed ones are taken."""
    port = free_port()
    sidecar = start(config_text(port, token_lines()), port, env={"ASTRA_INGEST_TOKEN": TOKEN})
    key = TOKEN.encode()
    three = b"\n".join([LINE] * 3)
    signed = sign(key, three)
    assert signed.startswith(b"astra-hmac ") and signed.endswith(b"\n" + three)
    send_udp(
        port,
        [
            LINE,  # unsigned
            sign(b"wrong-token-wrong-token", LINE),  # signed with another key
            signed[:20] + b"0" + signed[21:],  # tampered signature
            signed[:-1] + b" ",  # tampered payload
            b"astra-hmac short\n" + LINE,  # not a signature at all
            signed,
        ],
    )
    sidecar.wait_for(lambda: sidecar.health()["unauthorized"] == 5, timeout=10)
    sidecar.wait_for(lambda: sidecar.health()["received"] == 3, timeout=10)
    assert sidecar.health()["malformed_udp"] == 0, "refused datagrams are never decoded"
    assert sidecar.stop() == 0
    assert "unsigned datagrams dropped" in sidecar.stderr


def test_udp_unauthenticated_lets_unsigned_datagrams_in_but_checks_signed_ones(
    start: Start,
) -> None:
    """udp_unauthenticated = true takes unsigned datagrams; a wrong signature is still refused."""
    port = free_port()
    sidecar = start(
        config_text(port, token_lines(extra="udp_unauthenticated = true\n")),
        port,
        env={"ASTRA_INGEST_TOKEN": TOKEN},
    )
    send_udp(port, [LINE, sign(TOKEN.encode(), LINE), sign(b"another-key-another", LINE)])
    sidecar.wait_for(lambda: sidecar.health()["received"] == 2, timeout=10)
    sidecar.wait_for(lambda: sidecar.health()["unauthorized"] == 1, timeout=10)
    # HTTP still needs the token.
    assert request(port, "POST", "/v1/events", LINE).status == 401
    assert sidecar.stop() == 0


def test_without_a_token_signed_datagrams_are_taken_as_they_are(start: Start) -> None:
    """A client that signs may talk to a sidecar without a token: the auth line is removed."""
    port = free_port()
    sidecar = start(config_text(port), port)
    send_udp(port, [sign(TOKEN.encode(), LINE), LINE])
    sidecar.wait_for(lambda: sidecar.health()["received"] == 2, timeout=10)
    assert sidecar.health()["unauthorized"] == 0
    assert request(port, "POST", "/v1/events", LINE, bearer(TOKEN)).status == 200
    assert sidecar.stop() == 0


# --- C: the token is a secret ---------------------------------------------------------------


def test_the_token_never_reaches_stderr_or_discord(start: Start, discord: FakeDiscord) -> None:
    """Events quoting the ingest token are posted with it redacted; stderr never shows it."""
    body, ids = webhook_channels(discord)
    port = free_port()
    sidecar = start(
        config_text(port, token_lines(), body + FAST),
        port,
        env={"ASTRA_INGEST_TOKEN": TOKEN},
    )
    leaky: list[dict[str, Any]] = [
        {"kind": "log", "level": "error", "message": f"connecting with {TOKEN}", "id": "leak-1"},
        {"kind": "error", "message": f"auth failed for token={TOKEN}", "id": "leak-2"},
        {"kind": "metric", "name": "x", "value": 1, "tags": {"token": TOKEN}, "id": "leak-3"},
    ]
    answer = request(port, "POST", "/v1/events", json.dumps(leaky).encode(), bearer(TOKEN))
    assert answer.status == 200 and answer.body["accepted"] == 3
    send_udp(port, [sign(TOKEN.encode(), json.dumps(leaky[0] | {"id": "leak-4"}).encode())])

    def posted_ids() -> set[str]:
        return {e["id"] for channel in ids.values() for e in discord.all_events(channel)}

    sidecar.wait_for(lambda: {"leak-1", "leak-2", "leak-3", "leak-4"} <= posted_ids(), timeout=30)
    assert sidecar.stop() == 0
    text = json.dumps([[m.payload, m.jsonl_events()] for m in discord.all_messages()])
    assert TOKEN not in text
    assert "[redacted]" in text
    assert TOKEN not in sidecar.stderr + sidecar.stdout
    for recorded in discord.requests:
        assert TOKEN not in repr(recorded)
    discord.assert_no_violations()


@pytest.mark.parametrize(
    "token",
    [
        "short-token",
        "has spaces in the token 0123",
        "tab\tinside-0123456789",
        "ümlaut-0123456789ab",
    ],
)
def test_a_weak_or_odd_token_is_one_line_without_the_token(tmp_path: Path, token: str) -> None:
    """A token under 16 printable ASCII characters is refused in one line that never quotes it."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(free_port(), token_lines()), encoding="utf-8")
    for command in ("check", "run"):
        result = run_cli(command, "--config", str(path), env={"ASTRA_INGEST_TOKEN": token})
        assert result.returncode == 2, result
        [line] = result.stderr.strip().splitlines()
        assert "ingest.token" in line and "at least 16" in line
        assert token not in result.stderr + result.stdout


def test_an_unset_token_variable_is_named(tmp_path: Path) -> None:
    """token = "${ASTRA_INGEST_TOKEN}" with the variable unset is one line naming both."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(free_port(), token_lines()), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "astra", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={k: v for k, v in os.environ.items() if k != "ASTRA_INGEST_TOKEN"},
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "ingest.token" in line and "ASTRA_INGEST_TOKEN" in line


# --- E: exposure warnings -------------------------------------------------------------------


def check(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """Run ``astra check`` on ``text``; returns (exit status, stderr lines)."""
    path = tmp_path / "check.toml"
    path.write_text(text, encoding="utf-8")
    result = run_cli("check", "--config", str(path), env=env)
    assert "Traceback" not in result.stderr
    return result.returncode, result.stderr.strip().splitlines()


def test_check_warns_when_ingest_listens_beyond_loopback_without_a_token(tmp_path: Path) -> None:
    """Non-loopback ingest without a token: a warning line per listener, exit status 0."""
    exposed = '[ingest]\nhttp = "0.0.0.0:8787"\nudp = "[::]:8787"\n'
    status, lines = check(tmp_path, exposed)
    assert status == 0
    warnings = [line for line in lines if line.startswith("astra: warning:")]
    assert len(warnings) == 2, lines
    assert "ingest.http" in warnings[0] and "0.0.0.0:8787" in warnings[0]
    assert "ingest.udp" in warnings[1] and "without ingest.token" in warnings[1]

    for host in ("127.0.0.1", "127.3.2.1", "[::1]", "localhost", "LOCALHOST"):
        status, lines = check(tmp_path, f'[ingest]\nhttp = "{host}:8787"\nudp = "{host}:8787"\n')
        assert (status, lines) == (0, []), host

    status, lines = check(tmp_path, '[ingest]\nhttp = "off"\nudp = "10.0.0.5:8787"\n')
    assert status == 0 and len(lines) == 1 and "ingest.udp" in lines[0]
    status, lines = check(tmp_path, '[ingest]\nhttp = "bot.internal:8787"\nudp = "off"\n')
    assert status == 0 and len(lines) == 1 and "ingest.http" in lines[0]


def test_check_is_quiet_with_a_token_but_names_what_is_still_open(tmp_path: Path) -> None:
    """With a token, only unsigned UDP or the token over plain HTTP beyond loopback is warned of."""
    env = {"ASTRA_INGEST_TOKEN": TOKEN}
    text = '[ingest]\nhttp = "0.0.0.0:8787"\nudp = "0.0.0.0:8787"\n' + token_lines()
    status, lines = check(tmp_path, text, env)
    assert status == 0
    assert len(lines) == 1 and "without TLS" in lines[0] and "ingest.http" in lines[0]
    status, lines = check(tmp_path, text.replace('http = "0.0.0.0', 'http = "127.0.0.1'), env)
    assert (status, lines) == (0, [])
    udp_open = text.replace('http = "0.0.0.0:8787"', 'http = "off"')
    status, lines = check(tmp_path, udp_open + "udp_unauthenticated = true\n", env)
    assert status == 0 and len(lines) == 1 and "udp_unauthenticated" in lines[0]
    assert all(TOKEN not in line for line in lines)


def test_run_logs_the_exposure_warning_once_at_start(start: Start) -> None:
    """astra run on 0.0.0.0 without a token says so once on stderr, and still serves."""
    port = free_port()
    sidecar = start(config_text(port, http_host="0.0.0.0"), port)
    assert request(port, "POST", "/v1/events", LINE).status == 200
    assert sidecar.stop() == 0
    warnings = [line for line in sidecar.stderr.splitlines() if "beyond loopback" in line]
    assert len(warnings) == 1, sidecar.stderr
    assert warnings[0].startswith("astra: warning: ingest.http listens on 0.0.0.0:")
