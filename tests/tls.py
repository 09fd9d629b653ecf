"""TLS for the tests: a self-signed certificate (openssl CLI) and a TLS-terminating proxy."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

STARTUP_TIMEOUT_S = 10.0
CHUNK = 65536


def self_signed(directory: Path, names: str = "DNS:localhost,IP:127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate (and its key) for ``names`` (127.0.0.1 and localhost),
    made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed: no certificate to test TLS with")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            f"subjectAltName={names}",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class TlsProxy:
    """Accepts TLS on 127.0.0.1:``port`` with ``cert``/``key`` and forwards the plain bytes
    both ways to ``127.0.0.1:upstream`` (what a stunnel in front of Redis does).

    It runs an asyncio loop in a thread of its own; ``handshakes_failed`` counts the
    clients that gave up during the TLS handshake (for example a certificate they refused),
    ``connections`` those that completed it.
    """

    def __init__(self, cert: Path, key: Path, upstream: int) -> None:
        self.upstream = upstream
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.handshakes_failed = 0
        self.connections = 0
        self._failed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> TlsProxy:
        """Serve in the background (the port already listens)."""
        self._thread.start()
        self._loop.call_soon_threadsafe(self._spawn, self._serve())
        return self

    def stop(self) -> None:
        """Close the listener and every connection, then end the loop's thread."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(STARTUP_TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=STARTUP_TIMEOUT_S)
        self._loop.close()
        self._listener.close()

    def wait_handshake_failed(self, timeout: float = STARTUP_TIMEOUT_S) -> bool:
        """Wait until a client gave up a handshake (the proxy notices after the client left);
        False if none did within ``timeout``."""
        return self._failed.wait(timeout)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self) -> None:
        while True:
            sock, _ = await self._loop.sock_accept(self._listener)
            self._spawn(self._forward(sock))

    async def _forward(self, sock: socket.socket) -> None:
        # The handshake runs on the accepted socket itself: upgrading a stream that already
        # read the client's first bytes (StreamWriter.start_tls) would lose its ClientHello.
        client_r = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(client_r)
        try:
            transport, _ = await self._loop.connect_accepted_socket(
                lambda: protocol, sock, ssl=self.context, ssl_handshake_timeout=STARTUP_TIMEOUT_S
            )
        except (OSError, ssl.SSLError, TimeoutError):
            sock.close()
            self.handshakes_failed += 1
            self._failed.set()
            return
        client_w = asyncio.StreamWriter(transport, protocol, client_r, self._loop)
        self.connections += 1
        try:
            upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", self.upstream)
            try:
                await asyncio.gather(
                    self._pump(client_r, upstream_w), self._pump(upstream_r, client_w)
                )
            finally:
                upstream_w.close()
        finally:
            client_w.close()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy until end of stream (or a reset), then pass the end of stream on."""
        with contextlib.suppress(OSError, ssl.SSLError):
            while chunk := await reader.read(CHUNK):
                writer.write(chunk)
                await writer.drain()
        with contextlib.suppress(OSError, ssl.SSLError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()
