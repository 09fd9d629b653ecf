"""Run the real ``astra`` CLI in a subprocess and talk to it over real sockets."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT_S = 20.0


# Ports for the servers the tests start (sidecars, Redis) come from below Linux's ephemeral
# range (32768-60999), where the kernel finds ports for bind(0) and outgoing connections, and
# each pytest-xdist worker hands out ports from its own block of that pool. So no two workers
# ever get the same port, not even one that a test frees for a while to start a server on it
# again (Redis killed and restarted), and no connection takes a port between free_port() and
# the bind. A worker starts at a random place in its block, so two suites run at once on one
# machine do not walk the same ports in step; the bind test below skips ports in use.
PORT_POOL = range(20_000, 32_768)


def _port_block() -> range:
    """This test process's block of PORT_POOL: the whole pool without xdist."""
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) % count if worker[2:].isdigit() else 0
    size = len(PORT_POOL) // count
    start = PORT_POOL.start + index * size
    return range(start, start + size)


_BLOCK = _port_block()
_next_port = itertools.count(random.SystemRandom().randrange(len(_BLOCK)))


def free_port() -> int:
    """A port that is free for both TCP and UDP on 127.0.0.1 right now, from this worker's
    block of ports (none other hands it out); each call gives the next one in turn."""
    for _ in range(len(_BLOCK)):
        port = _BLOCK[next(_next_port) % len(_BLOCK)]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                tcp.bind(("127.0.0.1", port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free port in {_BLOCK}")


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run ``astra ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "astra", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@dataclass
class Response:
    """An HTTP answer from the ingest server."""

    status: int
    body: dict[str, Any]


@dataclass
class Sidecar:
    """A running ``astra run`` process."""

    config_path: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    process: subprocess.Popen[str] | None = None
    stdout: str = ""
    stderr: str = ""
    returncode: int | None = None

    def start(self) -> Sidecar:
        """Start the process and wait until /healthz answers."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "astra", "run", "--config", str(self.config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **self.env},
            cwd=self.cwd,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"astra exited at start: {self.stderr}")
            try:
                self.health()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"astra did not start: {self.stderr}")

    @property
    def base_url(self) -> str:
        """The sidecar's HTTP address."""
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> dict[str, Any]:
        """GET /healthz."""
        with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=5) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data

    def post_raw(self, body: bytes, content_type: str = "application/json") -> Response:
        """POST a raw body to /v1/events."""
        request = urllib.request.Request(
            f"{self.base_url}/v1/events",
            data=body,
            method="POST",
            headers={"Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Response(response.status, json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            return Response(exc.code, json.loads(exc.read() or b"{}"))

    def post(self, events: Any) -> Response:
        """POST events (an object or a list) as JSON."""
        return self.post_raw(json.dumps(events).encode())

    def send_udp(self, datagrams: list[bytes]) -> None:
        """Send datagrams to the UDP ingest."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for datagram in datagrams:
                sock.sendto(datagram, ("127.0.0.1", self.port))

    def send_signal(self, signum: int = signal.SIGTERM) -> None:
        """Send a signal to the process."""
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal the process, wait for it, collect its output; returns the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        self.stdout, self.stderr = out, err
        self.returncode = self.process.returncode
        return self.returncode

    def wait_for(
        self, predicate: Callable[[], object], timeout: float = 60, interval: float = 0.1
    ) -> None:
        """Poll ``predicate`` until true; fail the test with the sidecar's stderr otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(interval)
        alive = self.process is not None and self.process.poll() is None
        if alive:
            self.stop()
        raise AssertionError(f"condition not met in {timeout} s; astra stderr:\n{self.stderr}")


def write_config(path: Path, port: int, body: str = "", ingest: str = "") -> Path:
    """A config file with ingest on ``port`` (plus ``ingest`` lines), then ``body``."""
    text = f'[ingest]\nhttp = "127.0.0.1:{port}"\nudp = "127.0.0.1:{port}"\n{ingest}\n{body}'
    path.write_text(text, encoding="utf-8")
    return path
