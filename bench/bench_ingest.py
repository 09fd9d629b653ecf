"""Ingest throughput and delivery efficiency, printed as plain figures.

Runs, on this machine, in one go:

1. the ceiling: a bare asyncio UDP socket and a bare aiohttp handler that only count;
2. a second ceiling: the same bare server decoding every body with msgspec into
   ``astra.events`` structs (a plain ``msgspec.json.Decoder(list[AnyEvent])``, the least
   any validating pipeline must do), over the same sockets with the same client; and, in
   this process, that decoder alone on the same bodies (``astra.wire.decode_batch`` beside
   it) with astra's own per-event work after it;
3. ``astra run`` (the real CLI, in a subprocess) taking events over HTTP batches and UDP,
   its HTTP figure also given as a share of the ceilings;
4. a burst delivered to the strict fake Discord: events per webhook request.

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
from typing import Any

import aiohttp
import msgspec

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from other_load import OtherLoad  # noqa: E402

from astra.events import AnyEvent  # noqa: E402
from astra.wire import decode_batch  # noqa: E402
from tests.fake_discord import FakeDiscord  # noqa: E402
from tests.sidecar import Sidecar, free_port, write_config  # noqa: E402

BARE_SERVER = textwrap.dedent(
    """
    import asyncio, socket, sys
    from aiohttp import web
    port, mode = int(sys.argv[1]), sys.argv[2]
    counts = {"udp": 0, "http": 0}
    if mode == "decode":
        import msgspec
        from astra.events import AnyEvent
        decoder = msgspec.json.Decoder(list[AnyEvent])

        def count_array(body):
            return len(decoder.decode(body))

        def count_lines(data):
            return len(decoder.decode(b"[" + b",".join(data.split(b"\\n")) + b"]"))
    else:
        def count_array(body):
            return body.count(b'"kind"')

        count_lines = count_array

    class Count(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            counts["udp"] += count_lines(data)

    async def events(request):
        body = await request.read()
        counts["http"] += count_array(body)
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


HTTP_BATCH = 1000
HTTP_PARALLEL = 4
DECODE_REPEATS = 3


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


def http_bodies(events: list[dict[str, object]], batch: int) -> list[bytes]:
    """The bodies ``post_batches`` sends: JSON arrays of ``batch`` events."""
    return [json.dumps(events[i : i + batch]).encode() for i in range(0, len(events), batch)]


def decode_ceiling(bodies: list[bytes], n: int) -> list[tuple[str, float]]:
    """Events/s of msgspec decoding ``bodies`` (best of a few passes), in this process.

    The plain decoder is the ceiling; ``decode_batch`` (astra's wire layer: split into raw
    items, decode each, refuse reserved kinds) is printed beside it for reference.
    """
    plain = msgspec.json.Decoder(list[AnyEvent])
    runs: list[tuple[str, Any]] = [
        ("msgspec Decoder(list[AnyEvent])", plain.decode),
        ("astra.wire.decode_batch", lambda body: decode_batch(body, 1_000_000)),
    ]
    results = []
    for label, decode in runs:
        best = float("inf")
        for _ in range(DECODE_REPEATS):
            started = time.perf_counter()
            for body in bodies:
                decode(body)
            best = min(best, time.perf_counter() - started)
        results.append((label, n / best))
    return results


def pipeline_in_process(bodies: list[bytes], n: int) -> float:
    """Events/s of astra's own per-event work on the same bodies, without the HTTP server.

    A ``Sidecar`` built from a config with every collector on (their projections listen to
    the bus), fed by ``decode_batch`` as the HTTP handler does; best of a few passes.
    """
    from astra.app import Sidecar as Pipeline
    from astra.config import parse
    from astra.redaction import Redactor

    config = parse(
        '[ingest]\nhttp = "off"\nudp = "off"\n[buffer]\nmax_events = 10000000\n'
        "max_bytes = 17179869184\n",
        "bench.toml",
        {},
    )
    best = float("inf")
    for _ in range(DECODE_REPEATS):
        sidecar = Pipeline(config, Redactor(config.secrets()))
        started = time.perf_counter()
        for body in bodies:
            events, _ = decode_batch(body, 1_000_000)
            sidecar.ingest(events, len(body), body)
        best = min(best, time.perf_counter() - started)
    return n / best


async def post_batches(
    port: int, events: list[dict[str, object]], batch: int, parallel: int
) -> None:
    bodies = http_bodies(events, batch)
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
    datagrams: list[bytes] = []
    current: list[bytes] = []
    size = 0
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


def measure(port: int, n: int, label: str, rates: dict[str, float]) -> list[str]:
    lines = []
    base = received(port)
    events = make_events(n, label)
    start = time.monotonic()
    asyncio.run(post_batches(port, events, batch=HTTP_BATCH, parallel=HTTP_PARALLEL))
    count, end = wait_received(port, base + n)
    rates[label] = (count - base) / (end - start)
    lines.append(
        f"{label:<24} HTTP batches  {count - base:>9,} events {rates[label]:>10,.0f} events/s"
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
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; astra from {REPO}"
    )
    print(
        f"events per run: {n:,} "
        f"(HTTP: batches of {HTTP_BATCH}, {HTTP_PARALLEL} in parallel; "
        "UDP: NDJSON datagrams ≤ 8 KiB)"
    )
    started, load = time.monotonic(), OtherLoad()
    rates: dict[str, float] = {}

    for mode, label in (("count", "ceiling (bare asyncio)"), ("decode", "ceiling (+ decode)")):
        port = free_port()
        bare = subprocess.Popen(
            [sys.executable, "-c", BARE_SERVER, str(port), mode],
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        try:
            for _ in range(100):
                try:
                    received(port)
                    break
                except OSError:
                    time.sleep(0.05)
            for line in measure(port, n, label, rates):
                print(line)
        finally:
            bare.terminate()
            bare.wait()

    # The same bodies astra is sent below (ids are prefixed with the label, as there).
    bodies = http_bodies(make_events(n, "astra run"), HTTP_BATCH)
    decoded = decode_ceiling(bodies, n)
    for label, rate in decoded:
        print(
            f"ceiling (decode only)    {label:<32} {n:>9,} events {rate:>10,.0f} events/s "
            f"(in-process, one core, best of {DECODE_REPEATS})"
        )
    pipeline = pipeline_in_process(bodies, n)
    print(
        f"astra in-process         {'decode_batch + Sidecar.ingest':<32} {n:>9,} events "
        f"{pipeline:>10,.0f} events/s (no HTTP: decode, stamp, route, window, every "
        f"projection; {100 * pipeline / decoded[0][1]:.0f} % of the msgspec ceiling)"
    )

    with FakeDiscord() as discord, tempfile.TemporaryDirectory() as tmp:
        lines = [f'[discord]\napi_base = "{discord.api_base}"\n']
        for index, name in enumerate(("analytics", "diagnostics", "logs", "performance")):
            channel_id = 1419858425424253000 + index
            hook = discord.create_webhook(channel_id)
            lines.append(f'[channels.{name}]\nwebhook = "{hook.url}"\n')
        port = free_port()
        body = "\n".join(lines) + "[flush]\ninterval = 2\n[buffer]\nmax_events = 1000000\n"
        config = write_config(Path(tmp) / "config.toml", port, body)
        # The astra next to this script, whatever the working directory.
        sidecar = Sidecar(config, port, env={"PYTHONPATH": str(REPO)}).start()
        try:
            for line in measure(port, n, "astra run", rates):
                print(line)
            astra_http = rates["astra run"]
            print(
                f"astra run HTTP = {100 * astra_http / rates['ceiling (+ decode)']:.0f} % of "
                "the bare HTTP handler decoding with msgspec (the goal: at least 50 %), "
                f"{100 * astra_http / rates['ceiling (bare asyncio)']:.0f} % of the bare "
                f"counting HTTP handler, {100 * astra_http / decoded[0][1]:.0f} % of msgspec "
                "decoding in-process with no HTTP at all"
            )
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
    print(f"bench_ingest took {time.monotonic() - started:.0f} s; {load.describe()}")


if __name__ == "__main__":
    main()
