"""What ``astra.client.Telemetry`` costs the bot, printed as plain figures.

For each run: the caller's cost per ``send()`` (ns/event, the bot's only cost), the events
packed per datagram, and what a receiver in another process counted (so the figures
include the flusher thread's work competing for the GIL, but not the receiver's).
``send()`` encodes the event and decodes the encoding with the sidecar's own decoder (its
validation): the two baseline lines show what each costs alone.

Usage: python bench/bench_client.py [--events N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import socket
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from astra import events
from astra.client import DEFAULT_MAX_DATAGRAM, DEFAULT_MAX_QUEUE, Telemetry

STOP = b"STOP"
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def receive(conn: Connection) -> None:
    """Child process: count events and datagrams until STOP, then report them."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, 64 * 1024 * 1024)
            break
        except OSError:
            continue
    sock.bind(("127.0.0.1", 0))
    conn.send(sock.getsockname()[1])
    received = datagrams = largest = 0
    while True:
        data = sock.recv(65535)
        if data == STOP:
            break
        datagrams += 1
        largest = max(largest, len(data))
        received += data.count(b"\n") + 1
    conn.send((received, datagrams, largest))


def message_event(i: int) -> events.Event:
    return events.Message(
        guild_id=1_200_000_000_000_000_000 + i % 50,
        channel_id=1_300_000_000_000_000_000 + i % 400,
        author_id=1_400_000_000_000_000_000 + i % 5000,
        length=i % 300,
        attachments=i % 3,
        source="bench-bot",
    )


def command_event(i: int) -> events.Event:
    return events.Command(
        name=f"command{i % 20}",
        duration_ms=(i % 900) / 7,
        guild_id=1_200_000_000_000_000_000 + i % 50,
        channel_id=1_300_000_000_000_000_000 + i % 400,
        user_id=1_400_000_000_000_000_000 + i % 5000,
        source="bench-bot",
    )


def run(
    label: str,
    n: int,
    make: Callable[[int], events.Event],
    max_queue: int,
    rate_per_s: float | None = None,
) -> None:
    """Send ``n`` prebuilt events (a tight loop, or paced at ``rate_per_s``); report both sides.

    The ns/event figure is the time spent inside ``send()`` calls only.
    """
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=receive, args=(child,), daemon=True)
    process.start()
    port = parent.recv()
    batch = [make(i) for i in range(n)]
    client = Telemetry(f"udp://127.0.0.1:{port}", source="bench-bot", max_queue=max_queue)
    send = client.send
    elapsed = 0
    chunk = n if rate_per_s is None else max(1, int(rate_per_s / 100))
    for offset in range(0, n, chunk):
        start = time.perf_counter_ns()
        for event in batch[offset : offset + chunk]:
            send(event)
        elapsed += time.perf_counter_ns() - start
        if rate_per_s is not None:
            time.sleep(0.01)  # the bot doing something else between bursts
    client.close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(STOP, ("127.0.0.1", port))
    received, datagrams, largest = parent.recv()
    process.join()
    stats = client.stats
    size = len(events.encode(batch[0]))
    print(
        f"{label:<34} send() {elapsed / n:>6.0f} ns/event   "
        f"{stats.sent / max(stats.datagrams, 1):>5.1f} events/datagram (~{size} B each)   "
        f"sent {stats.sent:,} dropped {stats.dropped:,}   "
        f"received {received:,} in {datagrams:,} datagrams (largest {largest:,} B)"
    )


def per_call(label: str, n: int, call: Callable[[int], object]) -> None:
    """Time ``call(i)`` for i in range(n)."""
    start = time.perf_counter_ns()
    for i in range(n):
        call(i)
    print(f"{label:<34} {(time.perf_counter_ns() - start) / n:>6.0f} ns/call")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    n = parser.parse_args().events
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {n:,} events per run; "
        f"max_datagram {DEFAULT_MAX_DATAGRAM} B"
    )
    sample = message_event(1)
    encoded = events.encode(sample)
    per_call("baseline: events.encode(message)", n, lambda i: events.encode(sample))
    per_call("baseline: events.decode_one(message)", n, lambda i: events.decode_one(encoded))
    run("message, queue holds the burst", n, message_event, max_queue=n)
    run("command, queue holds the burst", n, command_event, max_queue=n)
    run(f"message, default max_queue {DEFAULT_MAX_QUEUE:,}", n, message_event, DEFAULT_MAX_QUEUE)
    run(
        "message, defaults, ~100k events/s",
        n,
        message_event,
        DEFAULT_MAX_QUEUE,
        rate_per_s=100_000,
    )

    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=receive, args=(child,), daemon=True)
    process.start()
    port = parent.recv()
    with Telemetry(f"udp://127.0.0.1:{port}", source="bench-bot", max_queue=2 * n) as client:
        per_call("helper: telemetry.metric(name, v)", n, lambda i: client.metric("bench", i))
        tags: dict[str, str | int] = {"shard": 3, "queue": "default"}
        per_call(
            "helper: metric(name, v, tags=2 tags)",
            n,
            lambda i: client.metric("bench", i, tags=tags),
        )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(STOP, ("127.0.0.1", port))
    received, datagrams, _ = parent.recv()
    process.join()
    print(
        f"{'':<34} metrics: {client.stats.sent:,} sent, {received:,} received "
        f"in {datagrams:,} datagrams, {client.stats.dropped:,} dropped"
    )


if __name__ == "__main__":
    main()
