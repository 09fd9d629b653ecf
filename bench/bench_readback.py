"""Reading the channels back: ``astra export`` throughput and peak RSS, and recovery time.

Fills the local fake Discord with astra's own posts (attachments built by astra's encoder,
named as astra names them, ``--per-post`` events each), then:

- ``export``: runs ``astra export --channel logs --quiet`` on ``--events`` events, counting
  the lines it prints (all must come out); prints events/s end to end (process start to
  exit) and the peak RSS, sampled at every MiB of output;
- ``recovery``: spreads ``--day`` events over the four channels and starts ``astra run``
  with a bot token: prints the time from start until it logs that recovery is done, and
  the events it restored.

The fake runs in this process (a thread), on the same two cores: the figures include the
server's side of every request.

Usage: python bench/bench_readback.py [--events 1000000] [--day 500000] [--per-post 5000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from astra.events import Command, Event, Log, Message  # noqa: E402
from astra.sinks.attachments import build_attachments  # noqa: E402
from tests.fake_discord import FakeDiscord, Webhook  # noqa: E402
from tests.sidecar import free_port  # noqa: E402

CHANNELS = ("analytics", "diagnostics", "logs", "performance")
RUN = "be0c4a11ce"
ASTRA = (sys.executable, "-m", "astra")


def day_events(n: int, start: int, prefix: str) -> list[Event]:
    """``n`` events of a busy bot: messages, commands and log lines (~200 bytes each)."""
    now = time.time() - 3600
    events: list[Event] = []
    for i in range(start, start + n):
        ts = now + i / 1000
        if i % 3 == 0:
            events.append(
                Message(id=f"{prefix}{i}", ts=ts, seq=i + 1, guild_id=1000 + i % 50, length=42)
            )
        elif i % 3 == 1:
            events.append(
                Command(id=f"{prefix}{i}", ts=ts, seq=i + 1, name=f"cmd{i % 20}", duration_ms=12.5)
            )
        else:
            events.append(
                Log(
                    id=f"{prefix}{i}",
                    ts=ts,
                    seq=i + 1,
                    level="info",
                    message=f"handled request {i}",
                )
            )
    return events


def fill(discord: FakeDiscord, hook: Webhook, channel: str, total: int, per_post: int) -> None:
    """Store ``total`` events in posts of ``per_post``, as astra would have posted them."""
    for first in range(0, total, per_post):
        events = day_events(min(per_post, total - first), first, channel[0])
        files = build_attachments(channel, events, first=first + 1, run=RUN)
        discord.store_through_webhook(
            hook,
            {"embeds": [{"title": f"{channel} window"}]},
            [(f.filename, f.data) for f in files],
        )


def config_for(discord: FakeDiscord, channels: dict[str, tuple[int, Webhook]], port: int) -> str:
    """A config reading (and posting to) the fake's channels, with the bot token."""
    lines = [
        f'[ingest]\nhttp = "127.0.0.1:{port}"\nudp = "off"\n',
        f'[discord]\napi_base = "{discord.api_base}"\ntoken = "{discord.bot_token}"\n',
    ]
    for name, (channel_id, hook) in channels.items():
        lines.append(f'[channels.{name}]\nid = {channel_id}\nwebhook = "{hook.url}"\n')
    return "\n".join(lines)


def fake() -> FakeDiscord:
    """A fake with read limits loose enough not to be what is measured."""
    return FakeDiscord(bucket_limit=1000, bucket_window=1.0, global_limit=10_000).start()


def bench_export(total: int, per_post: int) -> None:
    """Export ``total`` events from one channel; events/s and peak RSS."""
    discord = fake()
    try:
        channel_id = 1419858425424256000
        discord.add_channel(channel_id)
        hook = discord.create_webhook(channel_id, application_id=discord.application_id)
        started = time.monotonic()
        fill(discord, hook, "logs", total, per_post)
        print(f"filled {total:,} events in {time.monotonic() - started:.1f} s")
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "config.toml"
            config.write_text(config_for(discord, {"logs": (channel_id, hook)}, free_port()))
            started = time.monotonic()
            process = subprocess.Popen(
                [*ASTRA, "export", "--config", str(config), "--channel", "logs", "--quiet"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert process.stdout is not None
            watched = psutil.Process(process.pid)
            peak, lines = 0, 0
            while chunk := process.stdout.read(1 << 20):
                lines += chunk.count(b"\n")
                with contextlib.suppress(psutil.NoSuchProcess):
                    peak = max(peak, watched.memory_info().rss)
            _, err = process.communicate()
            elapsed = time.monotonic() - started
        if process.returncode != 0 or lines != total:
            raise SystemExit(f"export printed {lines:,} of {total:,} events: {err.decode()}")
        print(
            f"export: {lines:,} events in {elapsed:.2f} s = {total / elapsed:,.0f} events/s "
            f"end to end; peak RSS {peak / 2**20:.1f} MiB"
        )
    finally:
        discord.stop()


def bench_recovery(day: int, per_post: int) -> None:
    """Start ``astra run`` on a day of ``day`` events; seconds until it has restored them."""
    discord = fake()
    try:
        channels: dict[str, tuple[int, Webhook]] = {}
        for index, name in enumerate(CHANNELS):
            channel_id = 1419858425424257000 + index
            discord.add_channel(channel_id)
            hook = discord.create_webhook(channel_id, application_id=discord.application_id)
            fill(discord, hook, name, day // len(CHANNELS), per_post)
            channels[name] = (channel_id, hook)
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "config.toml"
            config.write_text(config_for(discord, channels, free_port()))
            started = time.monotonic()
            process = subprocess.Popen(
                [*ASTRA, "run", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert process.stderr is not None
            line = ""
            for line in process.stderr:
                if "recovery:" in line:
                    break
            elapsed = time.monotonic() - started
            peak = psutil.Process(process.pid).memory_info().rss
            process.terminate()
            process.communicate(timeout=60)
        found = re.search(r"read ([\d,]+) posts, ([\d,]+) events .* in ([\d.]+) s", line)
        print(f"recovery: {line.strip()}")
        if found:
            print(
                f"recovery: {found.group(2)} events from {found.group(1)} posts; "
                f"{elapsed:.1f} s from process start; RSS after it {peak / 2**20:.1f} MiB"
            )
    finally:
        discord.stop()


def main() -> None:
    """Parse arguments and run both measurements."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--day", type=int, default=500_000)
    parser.add_argument("--per-post", type=int, default=5_000)
    args = parser.parse_args()
    print(
        f"{platform.node()} · {platform.processor() or platform.machine()} · "
        f"{os.cpu_count()} cores · Python {platform.python_version()}"
    )
    bench_export(args.events, args.per_post)
    bench_recovery(args.day, args.per_post)


if __name__ == "__main__":
    main()
