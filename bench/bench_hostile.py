"""What hostile or unlucky input costs the real sidecar, printed as plain figures.

Runs ``astra run`` (the real CLI, in a subprocess, every channel in preview mode, flush
interval 3600 s so nothing is delivered while measuring) and prints:

(a) per-event HTTP ingest cost, end to end (client send → 200 answer), for ``log``
    events of ~1 KB, ~16 KB and ~64 KB, each clean and "secret-looking" (``token=`` then
    one long unbroken run, or ``webhooks/`` repeated). Each case gets a fresh sidecar,
    sends its few requests (more while under 2 s), with a per-request timeout and a time
    budget: a case that times out is reported as such and its sidecar killed, instead of
    hanging the run. A thread polls ``/healthz`` every 0.1 s meanwhile: its longest wait
    shows how long the event loop was blocked;
(b) ``GET /healthz`` latency (p50, p99, worst) while another process posts the largest
    allowed bodies (``ingest.max_body_bytes``, 4 MiB, full of ~64 KB events) back to back;
(c) bytes per pending event: the sidecar's RSS growth after N small events that stay
    pending, divided by N.

Usage: python bench/bench_hostile.py [--timeout 60] [--budget 20] [--load-seconds 10]
                                     [--pending 100000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from other_load import OtherLoad  # noqa: E402

from tests.sidecar import free_port, write_config  # noqa: E402

KIB = 1024
MAX_BODY = 4 * 1024 * 1024  # ingest.max_body_bytes, the shipped default
CLEAN_TEXT = "the quick brown fox jumps over the lazy dog 0123456789, "
STARTUP_TIMEOUT_S = 20.0
MIN_CASE_S = 2.0  # a case keeps sending (up to MAX_REQUEST_FACTOR x its count) this long
MAX_REQUEST_FACTOR = 1000
# The sidecar runs the astra next to this script, whatever the working directory.
SIDECAR_ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
}


# --- the sidecar --------------------------------------------------------------------------


class Astra:
    """``astra run`` in a subprocess on a temp config; stdout discarded, stderr kept."""

    def __init__(self, max_events: int = 1_000_000) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.port = free_port()
        body = (
            "[flush]\ninterval = 3600\n"
            f"[buffer]\nmax_events = {max_events}\n"
            "[shutdown]\ndeadline = 1\n"
        )
        config = write_config(Path(self._tmp.name) / "config.toml", self.port, body)
        self._stderr = open(Path(self._tmp.name) / "stderr.txt", "w+b")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "astra", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            env=SIDECAR_ENV,
        )
        self.ps = psutil.Process(self.process.pid)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                self.health()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    self.process.wait()
                    why = self.stderr()
                    self.stop()
                    raise RuntimeError(f"astra did not start: {why}") from None
                time.sleep(0.05)

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-2000:]

    def health(self, timeout: float = 5) -> dict[str, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", "/healthz")
            data: dict[str, Any] = json.loads(connection.getresponse().read())
            return data
        finally:
            connection.close()

    def cpu_s(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it does not exit soon (a blocked event loop cannot)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()
        self._tmp.cleanup()

    def __enter__(self) -> Astra:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def post(connection: http.client.HTTPConnection, body: bytes) -> dict[str, Any]:
    """POST a body on a kept-alive connection; the JSON answer (raises on non-200)."""
    connection.request(
        "POST", "/v1/events", body=body, headers={"Content-Type": "application/json"}
    )
    response = connection.getresponse()
    data: dict[str, Any] = json.loads(response.read())
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {str(data)[:300]}")
    return data


# --- (a) per-event cost by size and content ---------------------------------------------


def log_event(size: int, style: str) -> dict[str, object]:
    """A ``log`` event whose JSON is ``size`` bytes (give or take a few)."""
    overhead = len(json.dumps({"kind": "log", "level": "info", "logger": "bench", "message": ""}))
    n = size - overhead
    if style == "clean":
        message = (CLEAN_TEXT * (n // len(CLEAN_TEXT) + 1))[:n]
    elif style == "token=":
        message = "token=" + "A" * (n - 6)
    elif style == "webhooks/":
        message = ("webhooks/" * (n // 9 + 1))[:n]
    else:
        raise ValueError(style)
    return {"kind": "log", "level": "info", "logger": "bench", "message": message}


@dataclass
class Case:
    size: int
    style: str
    per_request: int
    requests: int


CASES = [
    Case(1 * KIB, "clean", 1000, 20),
    Case(16 * KIB, "clean", 64, 16),
    Case(64 * KIB - 1, "clean", 16, 16),
    Case(1 * KIB, "token=", 10, 5),
    Case(16 * KIB, "token=", 1, 3),
    Case(64 * KIB - 1, "token=", 1, 3),
    Case(1 * KIB, "webhooks/", 10, 5),
    Case(16 * KIB, "webhooks/", 1, 3),
    Case(64 * KIB - 1, "webhooks/", 1, 3),
]


def number(value: float) -> str:
    """3 decimals below 1, 1 below 100, whole numbers with thousands separators above."""
    if value < 1:
        return f"{value:.3f}"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


class HealthWatch:
    """A thread polling ``GET /healthz`` every ``interval`` s; keeps the longest wait.

    A poll still unanswered when the watch stops (the sidecar was killed) counts for as
    long as it had waited, marked as a lower bound.
    """

    def __init__(self, port: int, interval: float = 0.1) -> None:
        self._port, self._interval = port, interval
        self._stop = threading.Event()
        self.worst, self.polls, self._open_since = 0.0, 0, 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=600)
        while not self._stop.is_set():
            self._open_since = time.perf_counter()
            try:
                connection.request("GET", "/healthz")
                connection.getresponse().read()
            except (OSError, http.client.HTTPException):
                return
            self.worst = max(self.worst, time.perf_counter() - self._open_since)
            self._open_since = 0.0
            self.polls += 1
            self._stop.wait(self._interval)

    def start(self) -> HealthWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)  # let a poll in flight come back
        if self._open_since:
            self.worst = max(self.worst, time.perf_counter() - self._open_since)
            self.lower_bound = True

    lower_bound = False

    def describe(self) -> str:
        mark = "≥ " if self.lower_bound else ""
        return f"worst /healthz wait meanwhile {mark}{self.worst:,.2f} s"


def run_case(case: Case, timeout: float, budget: float) -> str:
    """Send the case's requests one after another to a fresh sidecar; one result line."""
    event = log_event(case.size, case.style)
    body = json.dumps([event] * case.per_request).encode()
    event_bytes = len(json.dumps(event))
    label = f"{case.style:<10} {event_bytes:>6,} B/event"
    refused = ""
    with Astra() as astra:
        watch = HealthWatch(astra.port).start()
        connection = http.client.HTTPConnection("127.0.0.1", astra.port, timeout=timeout)
        sent, requests, worst, timed_out = 0, 0, 0.0, False
        cpu_before = astra.cpu_s()
        started = time.perf_counter()
        elapsed, cpu = 0.0, 0.0
        # At least case.requests requests, more while under MIN_CASE_S (fast code gets
        # enough samples, slow code no more than asked); never past the budget.
        while requests < case.requests or (
            elapsed < MIN_CASE_S and requests < MAX_REQUEST_FACTOR * case.requests
        ):
            t0 = time.perf_counter()
            try:
                accepted = post(connection, body)["accepted"]
            except TimeoutError:
                timed_out = True
                break
            except RuntimeError as exc:
                refused = str(exc)
                break
            # Up to the last answer: a request that timed out is not counted.
            elapsed, cpu = time.perf_counter() - started, astra.cpu_s() - cpu_before
            worst = max(worst, time.perf_counter() - t0)
            requests += 1
            sent += accepted
            if accepted != case.per_request:
                refused = f"accepted {accepted} of {case.per_request}"
                break
            if elapsed > budget:
                break
        connection.close()
        watch.stop()
        if timed_out:
            astra.process.kill()
    if refused:
        return f"{label}  REFUSED: {refused[:200]}"
    if timed_out and not sent:
        return (
            f"{label}  TIMED OUT: no answer to one request of {case.per_request} event(s) "
            f"within {timeout:.0f} s (sidecar killed); {watch.describe()}"
        )
    wall_us = 1e6 * elapsed / sent
    line = (
        f"{label}  {sent:>6,} events in {case.per_request:>4}/request  "
        f"{number(wall_us):>10} µs/event  {number(1e6 / wall_us):>7} events/s  "
        f"{len(body) * requests / (elapsed * 1024 * 1024):>6,.1f} MiB/s  "
        f"(sidecar CPU {number(1e6 * cpu / sent)} µs/event, slowest request {worst:,.2f} s, "
        f"{watch.describe()})"
    )
    if timed_out:
        line += f"; the next request TIMED OUT after {timeout:.0f} s (sidecar killed)"
    return line


# --- (b) /healthz latency under the largest bodies ---------------------------------------


def max_body(max_bytes: int = MAX_BODY) -> tuple[bytes, int]:
    """A JSON array of ~64 KB clean events, as many as fit in ``max_bytes``."""
    event = json.dumps(log_event(64 * KIB - 1, "clean")).encode()
    count = (max_bytes - 2) // (len(event) + 1)
    body = b"[" + b",".join([event] * count) + b"]"
    assert len(body) <= max_bytes
    return body, count


def blast(port: int, body: bytes, seconds: float, done: Any) -> None:
    """Child process: POST ``body`` back to back for ``seconds``; put the request count."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    count, deadline = 0, time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            post(connection, body)
            count += 1
    except (OSError, RuntimeError, http.client.HTTPException) as exc:
        done.put(f"sender stopped after {count} bodies: {exc}"[:300])
        return
    done.put(count)


def poll_health(port: int, seconds: float, interval: float = 0.01) -> list[float]:
    """GET /healthz every ``interval`` for ``seconds``; each answer's latency in seconds."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    latencies, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        latencies.append(time.perf_counter() - t0)
        time.sleep(interval)
    connection.close()
    return latencies


def describe(latencies: list[float]) -> str:
    ordered = sorted(latencies)

    def at(q: float) -> float:
        return 1e3 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (
        f"{len(ordered):>5,} polls  p50 {at(0.5):8.2f} ms  p99 {at(0.99):8.2f} ms  "
        f"worst {1e3 * ordered[-1]:8.2f} ms"
    )


def health_under_load(seconds: float) -> list[str]:
    body, per_body = max_body()
    lines = []
    # A bounded buffer, so ~10 s of 64 KB events do not pile up gigabytes (oldest dropped).
    with Astra(max_events=2000) as astra:
        lines.append(f"idle                       {describe(poll_health(astra.port, 2.0))}")
        done: Any = multiprocessing.Queue()
        sender = multiprocessing.Process(target=blast, args=(astra.port, body, seconds, done))
        cpu_before = astra.cpu_s()
        started = time.perf_counter()
        sender.start()
        time.sleep(0.2)  # the first body is on its way
        latencies = poll_health(astra.port, seconds - 0.2)
        requests = done.get(timeout=180)
        sender.join()
        if isinstance(requests, str):
            return [*lines, f"under 4 MiB bodies         FAILED: {requests}"]
        elapsed = time.perf_counter() - started
        cpu = astra.cpu_s() - cpu_before
        rss = astra.rss()
    lines.append(f"under 4 MiB bodies         {describe(latencies)}")
    lines.append(
        f"  load: {requests:,} bodies of {len(body):,} B ({per_body} events of ~64 KB each) "
        f"in {elapsed:.1f} s = {requests * len(body) / elapsed / 2**20:,.1f} MiB/s, "
        f"{requests * per_body / elapsed:,.0f} events/s; sidecar CPU {cpu:.1f} s "
        f"({100 * cpu / elapsed:.0f} % of a core), RSS after {rss / 2**20:,.0f} MiB "
        "(buffer.max_events = 2000)"
    )
    return lines


# --- (c) memory per pending event ---------------------------------------------------------


def small_events(n: int) -> list[dict[str, object]]:
    """The small ``command`` events bench_ingest sends (~100 B of JSON each)."""
    return [
        {
            "kind": "command",
            "name": f"cmd{i % 13}",
            "duration_ms": i % 250,
            "guild_id": i % 97,
            "id": f"pending{i}",
        }
        for i in range(n)
    ]


def bytes_per_pending(n: int) -> str:
    events = small_events(n)
    bodies = [json.dumps(events[i : i + 1000]).encode() for i in range(0, n, 1000)]
    json_bytes = sum(len(b) for b in bodies) / n
    with Astra(max_events=max(1_000_000, 2 * n)) as astra:
        time.sleep(2.0)  # let the start-up collectors run once
        before, pending_before = astra.rss(), astra.health()["pending"]
        connection = http.client.HTTPConnection("127.0.0.1", astra.port, timeout=60)
        for body in bodies:
            post(connection, body)
        connection.close()
        time.sleep(0.5)
        after, pending = astra.rss(), astra.health()["pending"]
    grown = after - before
    return (
        f"{n:,} small command events (~{json_bytes:.0f} B of JSON each) pending: "
        f"RSS {before / 2**20:.1f} → {after / 2**20:.1f} MiB, +{grown / 2**20:.1f} MiB = "
        f"{grown / n:,.0f} bytes per pending event (pending {pending_before:,} → {pending:,})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    parser.add_argument("--budget", type=float, default=20.0, help="per case, seconds")
    parser.add_argument("--load-seconds", type=float, default=10.0)
    parser.add_argument("--pending", type=int, default=100_000)
    args = parser.parse_args()
    started, load = time.monotonic(), OtherLoad()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; astra from {REPO}"
    )
    print("astra run: every channel in preview mode, flush interval 3600 s")
    print(
        f"(a) HTTP ingest cost per event, end to end, one client, requests in sequence "
        f"(at least {MIN_CASE_S:.0f} s or the requests listed, per-request timeout "
        f"{args.timeout:.0f} s, a case stops after {args.budget:.0f} s)"
    )
    for case in CASES:
        print("  " + run_case(case, args.timeout, args.budget), flush=True)
    print(
        f"(b) GET /healthz latency, polled every 10 ms, idle then while another process "
        f"posts {MAX_BODY:,} B bodies back to back for {args.load_seconds:.0f} s"
    )
    for line in health_under_load(args.load_seconds):
        print("  " + line, flush=True)
    print("(c) memory per pending event (flush interval 3600 s, nothing delivered)")
    print("  " + bytes_per_pending(args.pending))
    print(f"bench_hostile took {time.monotonic() - started:.0f} s; {load.describe()}")


if __name__ == "__main__":
    main()
