"""Stand-ins for the sidecar's ingest, on real sockets, for testing code that uses astra.

``UdpReceiver`` is a UDP socket on 127.0.0.1 that decodes every datagram the way the
sidecar does (``astra.wire.decode_batch``: NDJSON lines, each validated by
``astra.events.decode_one``, reserved kinds refused); ``HttpReceiver`` answers
``POST /v1/events`` with the sidecar's documented replies. An event the sidecar would refuse
is kept in ``invalid`` rather than raised, so a test can assert there is none.

    receiver = UdpReceiver()
    telemetry = Telemetry(receiver.address, source="test")
    telemetry.metric("x", 1)
    [metric] = receiver.wait_for(lambda e: isinstance(e, events.Metric))
"""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading
import time
from collections.abc import Callable

import msgspec

from astra.client._closing import Closing
from astra.errors import BatchError
from astra.events import AnyEvent, Event
from astra.wire import decode_batch
from astra.wire_auth import split_signed

Predicate = Callable[[AnyEvent], bool]

_POLL_S = 0.005
# The sidecar's default ingest limit (``[ingest] max_events_per_request``).
_MAX_EVENTS = 50_000
_json = msgspec.json.Encoder()


class _Collected:
    """Events decoded so far, shared by both receivers."""

    def __init__(self) -> None:
        self.events: list[AnyEvent] = []
        self.invalid: list[tuple[bytes, str]] = []
        self.batches = 0
        self._lock = threading.Lock()

    def add_batch(self, body: bytes) -> tuple[int, dict[str, object]]:
        """Decode ``body`` as the sidecar does; returns (HTTP status, the sidecar's answer)."""
        try:
            decoded, rejections = decode_batch(body, _MAX_EVENTS)
        except BatchError as exc:
            with self._lock:
                self.batches += 1
                self.invalid.append((body, str(exc)))
            return 400, {"error": str(exc)}
        # Rejections name an index into the batch; show the line itself when they map.
        lines = [line for line in body.strip().split(b"\n") if line.strip()]
        by_line = len(lines) == len(decoded) + len(rejections)
        with self._lock:
            self.batches += 1
            self.events.extend(decoded)
            for rejection in rejections:
                line = lines[rejection.index] if by_line else body
                self.invalid.append((line, rejection.error))
        rejected = msgspec.to_builtins(rejections)
        if not decoded:
            first = rejections[0]
            return 400, {
                "error": f"no valid events: event {first.index}: {first.error}",
                "accepted": 0,
                "rejected": rejected,
            }
        return 200, {"accepted": len(decoded), "rejected": rejected}

    def matching(self, predicate: Predicate) -> list[AnyEvent]:
        with self._lock:
            return [event for event in self.events if predicate(event)]

    def clear(self) -> None:
        with self._lock:
            self.events.clear()
            self.invalid.clear()


class _Receiver(Closing):
    """Polling helpers common to the UDP and HTTP receivers."""

    _collected: _Collected

    @property
    def events(self) -> list[AnyEvent]:
        """Every valid event received so far, in arrival order."""
        self.poll()
        return list(self._collected.events)

    @property
    def invalid(self) -> list[tuple[bytes, str]]:
        """Lines the sidecar would refuse (invalid, or a reserved kind), with the reason."""
        self.poll()
        return list(self._collected.invalid)

    @property
    def batches(self) -> int:
        """Datagrams or HTTP bodies received."""
        self.poll()
        return self._collected.batches

    def poll(self) -> None:
        """Read what has arrived without waiting."""

    def clear(self) -> None:
        """Forget everything received so far."""
        self.poll()
        self._collected.clear()

    def of_kind(self, kind: type[Event]) -> list[AnyEvent]:
        """The events received so far of one type."""
        self.poll()
        return self._collected.matching(lambda event: isinstance(event, kind))

    def _poll_once(
        self, predicate: Predicate, count: int, deadline: float, timeout_s: float
    ) -> list[AnyEvent] | None:
        """The matching events once there are ``count``, else None; past ``deadline``, raises."""
        self.poll()
        found = self._collected.matching(predicate)
        if len(found) >= count:
            return found
        if time.monotonic() >= deadline:
            kinds = [event.__struct_config__.tag for event in self._collected.events]
            raise TimeoutError(
                f"expected {count} matching event(s) within {timeout_s} s; received {kinds}"
            )
        return None

    def wait_for(
        self, predicate: Predicate, *, count: int = 1, timeout_s: float = 5.0
    ) -> list[AnyEvent]:
        """Poll until ``count`` received events match; raises ``TimeoutError`` after that."""
        deadline = time.monotonic() + timeout_s
        while (found := self._poll_once(predicate, count, deadline, timeout_s)) is None:
            time.sleep(_POLL_S)
        return found

    async def wait_for_async(
        self, predicate: Predicate, *, count: int = 1, timeout_s: float = 5.0
    ) -> list[AnyEvent]:
        """``wait_for`` that lets the event loop run between polls."""
        deadline = time.monotonic() + timeout_s
        while (found := self._poll_once(predicate, count, deadline, timeout_s)) is None:
            await asyncio.sleep(_POLL_S)
        return found


class UdpReceiver(_Receiver):
    """A UDP socket bound on ``host`` (a free port by default) collecting astra events."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._collected = _Collected()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self._sock.bind((host, port))
        self._sock.setblocking(False)
        bound_host, bound_port = self._sock.getsockname()[:2]
        self.address = f"udp://{bound_host}:{bound_port}"
        self.port = int(bound_port)

    def poll(self) -> None:
        """Read every datagram waiting in the socket."""
        while True:
            try:
                datagram = self._sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # closed
            # A signed datagram (ASTRA_INGEST_TOKEN set): taken as a sidecar without a
            # token takes it, auth line removed and the signature not checked.
            self._collected.add_batch(split_signed(datagram)[1])

    def close(self) -> None:
        """Close the socket (later sends to its port are refused)."""
        self.poll()
        self._sock.close()


class HttpReceiver(_Receiver):
    """An HTTP server on 127.0.0.1 answering ``POST /v1/events`` as the sidecar does.

    ``hold()`` makes it keep requests waiting until ``release()``: a sidecar that hangs.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._collected = _Collected()
        self._open = threading.Event()
        self._open.set()
        self.requests = 0
        self._arrived = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                with receiver._arrived:
                    receiver.requests += 1
                    receiver._arrived.notify_all()
                receiver._open.wait()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/v1/events":
                    self._answer(404, {"error": f"no route {self.path}"})
                    return
                status, answer = receiver._collected.add_batch(body)
                self._answer(status, answer)

            def _answer(self, status: int, body: dict[str, object]) -> None:
                payload = _json.encode(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: tests read the collected events, not an access log."""

        # Its handler threads are daemons (ThreadingHTTPServer.daemon_threads): a held
        # request does not keep the test process alive.
        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        bound_host, bound_port = self._server.server_address[:2]
        self.address = f"http://{bound_host!s}:{bound_port}"
        self.port = int(bound_port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="astra-http-receiver", daemon=True
        )
        self._thread.start()

    def hold(self) -> None:
        """Keep incoming requests waiting (the client's flusher blocks on them)."""
        self._open.clear()

    def release(self) -> None:
        """Answer held requests and stop holding."""
        self._open.set()

    def wait_for_requests(self, count: int, timeout_s: float = 5.0) -> bool:
        """Wait until ``count`` requests have arrived (answered or held)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: self.requests >= count, timeout_s)

    def close(self) -> None:
        """Stop the server."""
        self.release()
        self._server.shutdown()
        self._server.server_close()
