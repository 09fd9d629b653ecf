"""Ingest throughput and delivery efficiency, printed as plain figures.

Runs, on this machine, in one go:

1. the ceiling: a bare asyncio UDP socket and a bare aiohttp handler that only count;
2. ``astra run`` (the real CLI, in a subprocess) taking events over HTTP batches and UDP;
3. a burst delivered to the strict fake Discord: events per webhook request.

Usage: python bench/bench_ingest.py [--events N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fake_discord import FakeDiscord  # noqa: E402
from tests.sidecar import Sidecar, free_port, write_config  # noqa: E402

BARE_SERVER = textwrap.dedent(
    """
    import asyncio, socket, sys
    from aiohttp import web
    port = int(sys.argv[1])
    counts = {"udp": 0, "http": 0}

    class Count(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            counts["udp"] += data.count(b'"kind"')

    async def events(request):
        body = await request.read()
        counts["http"] += body.count(b'"kind"')
        return web.json_response({"accepted": 0})

    async def health(request):
        return web.json_response({"received": counts["udp"] + counts["http"]})

    async def main():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, 33, 8 * 1024 * 1024)
        sock.bind(("127.0.0.1", port))
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(Count, sock=sock)
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/v1/events", events)
        app.router.add_get("/healthz", health)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def make_events(n: int, prefix: str) -> list[dict[str, object]]:
    return [
        {
            "kind": "command",
            "name": f"cmd{i % 13}",
            "duration_ms": i % 250,
            "guild_id": i % 97,
            "id": f"{prefix}{i}",
        }
        for i in range(n)
    ]


async def post_batches(
    port: int, events: list[dict[str, object]], batch: int, parallel: int
) -> None:
    bodies = [json.dumps(events[i : i + batch]).encode() for i in range(0, len(events), batch)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                async with session.post(
                    f"http://127.0.0.1:{port}/v1/events",
                    data=body,
                    headers={"Content-Type": "application/json"},
                ) as r:
                    await r.read()

        await asyncio.gather(*(worker() for _ in range(parallel)))


def udp_datagrams(events: list[dict[str, object]], max_bytes: int = 8192) -> list[bytes]:
    datagrams, current, size = [], [], 0
    for event in events:
        line = json.dumps(event).encode()
        if size + len(line) + 1 > max_bytes and current:
            datagrams.append(b"\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        datagrams.append(b"\n".join(current))
    return datagrams


def health(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        data: dict[str, int] = json.loads(response.read())
        return data


def received(port: int) -> int:
    return int(health(port)["received"])


def wait_received(port: int, target: int, timeout: float = 120) -> tuple[int, float]:
    """Poll until ``target`` events are counted or the count stops moving.

    Returns the count and the time it last grew, so a stall does not dilute the rate.
    """
    deadline = time.monotonic() + timeout
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = received(port)
        if count != last:
            last, last_change = count, time.monotonic()
        if count >= target or time.monotonic() - last_change > 1.0:
            break
        time.sleep(0.01)
    return last, last_change


def send_udp(port: int, datagrams: list[bytes], events_per: int, paced_base: int | None) -> None:
    """Blast every datagram, or (paced) keep at most ~2 MiB in flight, as a client would."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for index, datagram in enumerate(datagrams):
            if paced_base is not None and index % 64 == 0:
                while (index * events_per) - (received(port) - paced_base) > 250 * events_per:
                    time.sleep(0.001)
            sock.sendto(datagram, ("127.0.0.1", port))


def measure(port: int, n: int, label: str) -> list[str]:
    lines = []
    base = received(port)
    events = make_events(n, label)
    start = time.monotonic()
    asyncio.run(post_batches(port, events, batch=1000, parallel=4))
    count, end = wait_received(port, base + n)
    lines.append(
        f"{label:<24} HTTP batches  {count - base:>9,} events "
        f"{(count - base) / (end - start):>10,.0f} events/s"
    )
    for paced in (False, True):
        base = received(port)
        datagrams = udp_datagrams(make_events(n, label[:5] + ("p" if paced else "b")))
        per = n // len(datagrams)
        start = time.monotonic()
        send_udp(port, datagrams, per, base if paced else None)
        count, end = wait_received(port, base + n)
        got = count - base
        extra = ""
        if "astra" in label:
            extra = f", kernel drops so far: {health(port)['kernel_drops']:,} datagrams"
        lines.append(
            f"{label:<24} UDP {'paced' if paced else 'burst'}     {got:>9,} events "
            f"{got / (end - start):>10,.0f} events/s  ({len(datagrams):,} datagrams, "
            f"{n - got:,} events lost{extra})"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    n = args.events
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"events per run: {n:,} "
        "(HTTP: batches of 1000, 4 in parallel; UDP: NDJSON datagrams ≤ 8 KiB)"
    )

    port = free_port()
    bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port)])
    try:
        for _ in range(100):
            try:
                received(port)
                break
            except OSError:
                time.sleep(0.05)
        for line in measure(port, n, "ceiling (bare asyncio)"):
            print(line)
    finally:
        bare.terminate()
        bare.wait()

    with FakeDiscord() as discord, tempfile.TemporaryDirectory() as tmp:
        lines = [f'[discord]\napi_base = "{discord.api_base}"\n']
        for index, name in enumerate(("analytics", "diagnostics", "logs", "performance")):
            channel_id = 1419858425424253000 + index
            hook = discord.create_webhook(channel_id)
            lines.append(f'[channels.{name}]\nwebhook = "{hook.url}"\n')
        port = free_port()
        body = "\n".join(lines) + "[flush]\ninterval = 2\n[buffer]\nmax_events = 1000000\n"
        config = write_config(Path(tmp) / "config.toml", port, body)
        sidecar = Sidecar(config, port).start()
        try:
            for line in measure(port, n, "astra run"):
                print(line)
            total = received(port)
            analytics = 1419858425424253000
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and len(discord.all_events(analytics)) < total:
                time.sleep(0.2)
            delivered = len(discord.all_events(analytics))
            executes = [
                r for r in discord.requests if r.method == "POST" and "/webhooks/" in r.path
            ]
            print(
                f"delivery: {delivered:,} of {total:,} events reached Discord in "
                f"{len(executes):,} webhook requests = {delivered / max(1, len(executes)):,.0f} "
                "events per request"
            )
        finally:
            sidecar.stop()
        print(f"violations at the strict fake Discord: {len(discord.violations)}")


if __name__ == "__main__":
    main()
