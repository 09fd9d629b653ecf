"""The HTTP ingest against hostile transports, through the real sidecar on real sockets.

Slow connections (no request head, a body that never comes, idle keep-alive), more
connections than the file-descriptor limit allows, compressed bodies that inflate far past
the body limit, and HTTPS.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from tests.sidecar import STARTUP_TIMEOUT_S, Response, Sidecar, free_port
from tests.tls import self_signed

_T = TypeVar("_T")

LINE = b'{"kind":"latency","ms":3}'
HALF_HEAD = b"POST /v1/events HTTP/1.1\r\nHost: astra\r\nContent-Type: application/json\r\n"


# --- a sidecar with a chosen config text, fd limit and scheme ------------------------------


@dataclass
class Answer(Response):
    """An HTTP answer: status, the JSON body (empty when there was none) and the headers."""

    headers: dict[str, str] = field(default_factory=dict)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    context: ssl.SSLContext | None = None,
    timeout: float = 15.0,
) -> Answer:
    """One HTTP(S) request on a fresh connection to the sidecar on 127.0.0.1."""
    connection: http.client.HTTPConnection
    if context is not None:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        payload = response.read()
        return Answer(
            status=response.status,
            headers={k.lower(): v for k, v in response.getheaders()},
            body=json.loads(payload) if payload else {},
        )
    finally:
        connection.close()


def config_text(port: int, ingest: str = "", body: str = "", http_host: str = "127.0.0.1") -> str:
    """A config with ingest on ``port`` (HTTP on ``http_host``), extra ingest lines, then body."""
    return f'[ingest]\nhttp = "{http_host}:{port}"\nudp = "127.0.0.1:{port}"\n{ingest}\n{body}'


class Started(Sidecar):
    """A ``Sidecar`` started with an optional file-descriptor limit and TLS."""

    context: ssl.SSLContext | None = None

    def health(self) -> dict[str, Any]:
        """GET /healthz (over HTTPS when the sidecar has TLS)."""
        answer = request(self.port, "GET", "/healthz", context=self.context, timeout=5)
        assert answer.status == 200, answer
        return answer.body

    def post_raw(self, body: bytes, content_type: str = "application/json") -> Answer:
        """POST a body (over HTTPS when the sidecar has TLS)."""
        return request(
            self.port,
            "POST",
            "/v1/events",
            body,
            {"Content-Type": content_type},
            context=self.context,
        )


Start = Callable[..., Started]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start ``astra run`` on a config text; killed at the end if still running."""
    started: list[Started] = []

    def _start(
        text: str,
        port: int,
        *,
        nofile: int | None = None,
        context: ssl.SSLContext | None = None,
        env: dict[str, str] | None = None,
    ) -> Started:
        path = tmp_path / f"config-{len(started)}.toml"
        path.write_text(text, encoding="utf-8")
        sidecar = Started(path, port, env or {})
        sidecar.context = context
        started.append(sidecar)

        def limit() -> None:  # in the child, before exec
            if nofile is not None:
                _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

        sidecar.process = subprocess.Popen(
            [sys.executable, "-m", "astra", "run", "--config", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            preexec_fn=limit,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if sidecar.process.poll() is not None:
                sidecar.stop()
                raise RuntimeError(f"astra exited at start: {sidecar.stderr}")
            try:
                sidecar.health()
                return sidecar
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
        sidecar.stop()
        raise RuntimeError(f"astra did not start: {sidecar.stderr}")

    yield _start
    for sidecar in started:
        if sidecar.process is not None and sidecar.process.poll() is None:
            sidecar.stop(signal.SIGKILL)


def until(condition: Callable[[], _T | None], timeout: float, interval: float = 0.05) -> _T:
    """Poll ``condition`` until it returns something truthy (a generous liveness bound)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except (OSError, http.client.HTTPException, AssertionError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(interval)


def closed_by_peer(sock: socket.socket) -> bool:
    """True once the sidecar closed ``sock`` (EOF or reset; a 503 before it counts)."""
    sock.settimeout(0.01)
    try:
        data = sock.recv(4096)
    except TimeoutError:
        return False
    except OSError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 503")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


# --- A: slow connections and the connection cap --------------------------------------------


def test_slow_connections_beyond_the_fd_limit_do_not_lock_out_ingest(start: Start) -> None:
    """300 half-sent request heads against a 256-fd sidecar: ingest stays reachable and quiet."""
    port = free_port()
    sidecar = start(
        config_text(port, "header_timeout = 1\nmax_connections = 1000\n"), port, nofile=256
    )
    assert sidecar.process is not None
    pid = sidecar.process.pid
    assert sidecar.health()["status"] == "ok"
    cpu_before, wall_before = cpu_seconds(pid), time.monotonic()

    slow: list[socket.socket] = []
    try:
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            slow.append(sock)
            with contextlib.suppress(OSError):  # refused over the cap: closed already
                sock.sendall(HALF_HEAD)
        opened = time.monotonic()
        health = until(sidecar.health, timeout=20)
        healthy_after = time.monotonic() - opened

        def accepted() -> Answer | None:
            """The answer to one post of LINE, once it is a 200."""
            answer = sidecar.post_raw(LINE)
            return answer if answer.status == 200 else None

        posted = until(accepted, timeout=20)
        assert posted.body == {"accepted": 1, "rejected": []}
        until(lambda: all(closed_by_peer(s) for s in slow), timeout=20)
        cpu = cpu_seconds(pid) - cpu_before
        wall = time.monotonic() - wall_before
    finally:
        for sock in slow:
            sock.close()
    print(
        f"healthz answered {healthy_after:.2f} s after the flood; sidecar CPU {cpu:.2f} s "
        f"over {wall:.2f} s"
    )
    assert health["status"] == "ok"
    figures = sidecar.health()
    # Every slow socket was either refused over the cap at once or closed by the timeout.
    assert figures["connections_refused"] >= 1
    assert figures["header_timeouts"] >= 1
    assert figures["connections_refused"] + figures["header_timeouts"] >= 300
    assert figures["accept_errors"] == 0
    assert cpu < 0.8 * wall, "no busy loop while the connections wait"
    assert sidecar.stop() == 0
    lines = sidecar.stderr.splitlines()
    about_connections = [line for line in lines if "accept" in line or "connection" in line]
    assert len(about_connections) < 20, about_connections
    assert len(sidecar.stderr) < 20_000
    clamp = [line for line in lines if "ingest.max_connections" in line]
    assert len(clamp) == 1 and "RLIMIT_NOFILE 256" in clamp[0] and "192" in clamp[0], lines
    assert clamp[0].startswith("astra: warning:")
    assert "Traceback" not in sidecar.stderr


def test_connections_over_the_cap_are_closed_at_once_with_a_503(start: Start) -> None:
    """Beyond ingest.max_connections a connection gets a short 503 and is closed at once."""
    port = free_port()
    sidecar = start(config_text(port, "max_connections = 5\n"), port)

    def admitted() -> http.client.HTTPConnection | None:
        """A keep-alive connection that got an answer (a 503 while others still close)."""
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        if response.status == 200:
            return connection
        connection.close()
        return None

    held = [until(admitted, timeout=10) for _ in range(5)]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
            extra.settimeout(10)
            answer = extra.recv(4096)
            assert answer.startswith(b"HTTP/1.1 503"), answer
            assert b"too many connections" in answer
            assert extra.recv(4096) == b""
        for connection in held:
            assert connection.sock is not None
            assert not closed_by_peer(connection.sock), "admitted connections stay open"
    finally:
        for connection in held:
            connection.close()
    # Once they are gone, their places are free again.
    assert until(lambda: sidecar.post_raw(LINE).status == 200, timeout=10)
    assert sidecar.health()["connections_refused"] >= 1
    assert sidecar.stop() == 0


def test_a_head_that_never_completes_is_closed_but_a_slow_body_in_time_is_taken(
    start: Start,
) -> None:
    """header_timeout closes a connection without a complete head, not one sending its body."""
    port = free_port()
    sidecar = start(config_text(port, "header_timeout = 1\nbody_timeout = 20\n"), port)
    stalled = socket.create_connection(("127.0.0.1", port), timeout=10)
    slow_body = socket.create_connection(("127.0.0.1", port), timeout=10)
    with stalled, slow_body:
        stalled.sendall(HALF_HEAD)
        slow_body.sendall(HALF_HEAD + b"Content-Length: %d\r\n\r\n" % len(LINE))
        until(lambda: closed_by_peer(stalled), timeout=15)
        # Well past the head's deadline, the body arrives: the head came in time.
        time.sleep(1.5)
        slow_body.sendall(LINE)
        slow_body.settimeout(10)
        answer = slow_body.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert b'"accepted":1' in answer
    figures = sidecar.health()
    assert figures["header_timeouts"] == 1 and figures["received"] == 1
    assert sidecar.stop() == 0


def test_a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_closed(
    start: Start,
) -> None:
    """A request whose body stalls past body_timeout is answered 408 and its connection closed."""
    port = free_port()
    sidecar = start(config_text(port, "body_timeout = 1\n"), port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(HALF_HEAD + b"Content-Length: 1000\r\n\r\n{")
        sock.settimeout(15)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"request body not received within 1 s" in answer
    assert b"Connection: close" in answer
    assert sidecar.health()["body_timeouts"] == 1
    assert sidecar.stop() == 0


def test_an_idle_keep_alive_connection_is_closed(start: Start) -> None:
    """After a request, a keep-alive connection left idle is closed after keepalive_timeout."""
    port = free_port()
    sidecar = start(config_text(port, "keepalive_timeout = 1\n"), port)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    response.read()
    assert response.status == 200 and not response.will_close
    sock = connection.sock
    assert sock is not None
    until(lambda: closed_by_peer(sock), timeout=15)
    connection.close()
    assert sidecar.stop() == 0


# --- B: compressed bodies -------------------------------------------------------------------


def gzip_bomb(inflated: int) -> bytes:
    """A gzip body of zeros inflating to ``inflated`` bytes (about 1000 : 1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1024 * 1024)
    parts = [compressor.compress(chunk) for _ in range(inflated // len(chunk))]
    parts.append(compressor.flush())
    return b"".join(parts)


def test_a_gzip_bomb_is_refused_while_inflating_and_does_not_stall_other_requests(
    start: Start,
) -> None:
    """1 MiB of gzip inflating to 1 GiB gets 413 at the body limit; a concurrent POST is served."""
    port = free_port()
    sidecar = start(config_text(port), port)
    bomb = gzip_bomb(1024**3)
    assert len(bomb) < 4 * 1024 * 1024  # within max_body_bytes as sent
    results: dict[str, Any] = {}

    def send_bomb() -> None:
        began = time.monotonic()
        results["bomb"] = request(
            port, "POST", "/v1/events", bomb, {"Content-Encoding": "gzip"}, timeout=30
        )
        results["bomb_s"] = time.monotonic() - began

    def send_normal() -> None:
        began = time.monotonic()
        results["normal"] = request(port, "POST", "/v1/events", LINE, timeout=30)
        results["normal_s"] = time.monotonic() - began

    threads = [threading.Thread(target=send_bomb), threading.Thread(target=send_normal)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    print(
        f"gzip bomb ({len(bomb):,} bytes): 413 after {results['bomb_s']:.3f} s; "
        f"concurrent POST answered in {results['normal_s']:.3f} s"
    )
    assert results["bomb"].status == 413
    assert "once decompressed" in results["bomb"].body["error"]
    assert results["normal"].status == 200
    assert results["bomb_s"] < 10 and results["normal_s"] < 10, "generous liveness bounds"
    figures = sidecar.health()
    assert figures["received"] == 1 and figures["rejected_http"] == 1
    assert sidecar.stop() == 0
    assert "Traceback" not in sidecar.stderr


def test_gzip_and_deflate_bodies_are_accepted(start: Start) -> None:
    """gzip, zlib-wrapped deflate and raw deflate bodies are inflated and accepted."""
    port = free_port()
    sidecar = start(config_text(port), port)
    lines = b"\n".join([LINE] * 50)
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    bodies = {
        "gzip": gzip.compress(lines),
        "x-gzip": gzip.compress(lines),
        "deflate": zlib.compress(lines),
        "Deflate ": raw.compress(lines) + raw.flush(),
    }
    for encoding, body in bodies.items():
        answer = request(port, "POST", "/v1/events", body, {"Content-Encoding": encoding})
        assert answer.status == 200 and answer.body["accepted"] == 50, (encoding, answer)
    assert sidecar.health()["received"] == 200
    assert sidecar.stop() == 0


def test_unsupported_or_broken_encodings_are_answered_not_guessed(start: Start) -> None:
    """br and zstd get 415 naming what is accepted; corrupt or truncated gzip gets 400."""
    port = free_port()
    sidecar = start(config_text(port, "max_body_bytes = 65536\n"), port)
    for encoding in ("br", "zstd", "gzip, br", "compress"):
        answer = request(port, "POST", "/v1/events", LINE, {"Content-Encoding": encoding})
        assert answer.status == 415, (encoding, answer)
        assert "unsupported Content-Encoding" in answer.body["error"]
        assert answer.headers["accept-encoding"] == "gzip, deflate"
    whole = gzip.compress(LINE)
    for body, needle in (
        (b"not gzip at all", "invalid gzip body"),
        (whole[: len(whole) // 2], "truncated"),
        (whole + b"junk", "data after the end"),
    ):
        answer = request(port, "POST", "/v1/events", body, {"Content-Encoding": "gzip"})
        assert answer.status == 400 and needle in answer.body["error"], answer
    # The limit holds for what a body inflates to, even just past it.
    fits = gzip.compress(b" " * (65536 - len(LINE)) + LINE)
    too_big = gzip.compress(b" " * 65536 + LINE)
    assert request(port, "POST", "/v1/events", fits, {"Content-Encoding": "gzip"}).status == 200
    answer = request(port, "POST", "/v1/events", too_big, {"Content-Encoding": "gzip"})
    assert answer.status == 413 and "limit is 65536 bytes" in answer.body["error"]
    assert sidecar.health()["status"] == "ok"
    assert sidecar.stop() == 0


# --- D: HTTPS -------------------------------------------------------------------------------


def tls_lines(cert: Path, key: Path) -> str:
    """The [ingest] lines for TLS with these files."""
    return f'tls_cert = "{cert}"\ntls_key = "{key}"\n'


def test_https_ingest_with_a_self_signed_certificate(start: Start, tmp_path: Path) -> None:
    """With tls_cert and tls_key ingest speaks HTTPS only: a trusting client posts, HTTP fails."""
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    port = free_port()
    sidecar = start(config_text(port, tls_lines(cert, key)), port, context=context)
    answer = request(port, "POST", "/v1/events", LINE, context=context)
    assert answer.status == 200 and answer.body["accepted"] == 1
    with pytest.raises((OSError, http.client.HTTPException)):
        request(port, "POST", "/v1/events", LINE, timeout=5)
    with pytest.raises(ssl.SSLCertVerificationError):
        request(port, "GET", "/healthz", context=ssl.create_default_context(), timeout=5)
    assert sidecar.health()["received"] == 1
    assert sidecar.stop() == 0
    assert "https://127.0.0.1:" in sidecar.stderr
    assert "Traceback" not in sidecar.stderr


def test_a_tls_handshake_that_never_starts_is_cut_off(start: Start, tmp_path: Path) -> None:
    """A TLS connection that sends nothing is closed after header_timeout, freeing its place."""
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    port = free_port()
    sidecar = start(
        config_text(port, tls_lines(cert, key) + "header_timeout = 1\nmax_connections = 2\n"),
        port,
        context=context,
    )
    silent = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
    try:
        for sock in silent:
            until(lambda s=sock: closed_by_peer(s), timeout=15)  # type: ignore[misc]
    finally:
        for sock in silent:
            sock.close()
    assert until(lambda: sidecar.post_raw(LINE).status == 200, timeout=10)
    assert sidecar.stop() == 0


@pytest.mark.parametrize(
    ("lines", "needles"),
    [
        ('tls_cert = "{cert}"\n', ["ingest.tls_key", "both or neither"]),
        ('tls_key = "{key}"\n', ["ingest.tls_cert", "both or neither"]),
        ('tls_cert = "{dir}/missing.pem"\ntls_key = "{key}"\n', ["ingest.tls_cert", "cannot read"]),
        ('tls_cert = "{cert}"\ntls_key = "{cert}"\n', ["ingest.tls_key", "no PEM private key"]),
        ('tls_cert = "{key}"\ntls_key = "{key}"\n', ["ingest.tls_cert", "no PEM certificate"]),
        ('tls_cert = "{cert}"\ntls_key = "{other}"\n', ["ingest.tls_key", "does not match"]),
    ],
)
def test_tls_mistakes_are_one_line_at_check_time(
    tmp_path: Path, lines: str, needles: list[str]
) -> None:
    """Missing, unreadable, wrong or mismatched TLS files: one line naming the key, exit 2."""
    cert, key = self_signed(tmp_path)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    _, other = self_signed(other_dir)
    port = free_port()
    path = tmp_path / "config.toml"
    ingest = lines.format(cert=cert, key=key, dir=tmp_path, other=other)
    path.write_text(config_text(port, ingest), encoding="utf-8")
    for command in ("check", "run"):
        result = subprocess.run(
            [sys.executable, "-m", "astra", command, "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2, result
        lines_out = result.stderr.strip().splitlines()
        assert len(lines_out) == 1, result.stderr
        assert all(needle in lines_out[0] for needle in needles), lines_out
        assert "Traceback" not in result.stderr
