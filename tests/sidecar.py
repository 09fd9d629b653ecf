"""Run the real ``astra`` CLI in a subprocess and talk to it over real sockets."""

from __future__ import annotations

import json
import os
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


def free_port() -> int:
    """A port that is free for both TCP and UDP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


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
