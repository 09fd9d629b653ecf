"""Charts reach Discord inside their embeds: the hourly digest from the real sidecar, and the
daily report through the real delivery, both posted to the strict fake Discord."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from astra.collectors.report import DailyReportCollector
from astra.config import CHANNELS, DEFAULT_ROUTES, Channel, WebhookRef
from astra.events import Command, Error, Latency, Message, System
from astra.sinks.delivery import ChannelDelivery
from astra.sinks.discord_http import DiscordHttp
from astra.sinks.png import png_size
from astra.sinks.preview import Preview
from astra.sinks.ratelimit import RateLimiter
from astra.sinks.render.charts import CHART_H, CHART_W
from astra.streams.windows import ChannelStream, Window
from tests.conftest import Clock, Launch, webhook_channels
from tests.e2e.test_config import assert_one_line_error, check
from tests.fake_discord import FakeDiscord, PostedMessage
from tests.sinks.test_charts import decode_png

DIGEST = """
[flush]
interval = 0.3
[collectors.system]
interval = 0.3
[collectors.digest]
interval = 3
"""


def chart_posts(fake: FakeDiscord, channel_id: int) -> list[PostedMessage]:
    """The posts of ``channel_id`` that show at least one chart."""
    return [m for m in fake.messages(channel_id) if m.embed_images()]


def test_the_hourly_digest_shows_its_charts_inside_embeds(
    discord: FakeDiscord, launch: Launch
) -> None:
    """The digest's four charts are valid 800×320 PNGs, each shown by its own embed."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + DIGEST)
    traffic: list[dict[str, Any]] = [
        {"kind": "command", "name": "play", "duration_ms": 12},
        {"kind": "command", "name": "play", "ok": False, "error": "boom"},
        {"kind": "latency", "ms": 42.0},
        {"kind": "latency", "ms": 87.0},
        {"kind": "message", "guild_id": 1},
    ]

    def four_charts() -> bool:
        # Traffic keeps coming, as from a live bot, so every digest has all four charts.
        assert sidecar.post(traffic).status == 200
        return any(len(m.embed_images()) == 4 for m in chart_posts(discord, ids["performance"]))

    sidecar.wait_for(four_charts, timeout=60)
    assert sidecar.stop() == 0
    discord.assert_no_violations()

    post = next(m for m in chart_posts(discord, ids["performance"]) if len(m.embed_images()) == 4)
    titles = [e["title"] for e in post.embeds if "image" in e]
    assert titles == [
        "📈 Host CPU and memory (%)",
        "📈 Gateway latency (ms)",
        "📈 Commands and errors per 250 ms",
        "📈 Events per channel",
    ]
    for name, data in post.embed_images():
        assert name.startswith("chart-") and name.endswith(".png")
        assert png_size(data) == (CHART_W, CHART_H)
        assert decode_png(data)[:2] == (CHART_W, CHART_H)
    digest = next(e for e in post.jsonl_events() if e["kind"] == "digest")
    assert {c["name"] for c in digest["charts"]} == {"host", "latency", "activity", "channels"}
    assert digest["commands"] >= 2 and digest["errors"] >= 1
    header = next(e for e in post.embeds if e.get("title", "").startswith("📊"))
    assert "commands" in header["description"]


@pytest.mark.anyio
async def test_the_daily_report_posts_its_charts_through_delivery(discord: FakeDiscord) -> None:
    """A report folded from a day of events is posted with its charts shown in its embeds."""
    clock = Clock(time.time())
    report = DailyReportCollector("23:00", "UTC", wall_clock=clock, routes=DEFAULT_ROUTES)
    for hour in range(3):
        report.observe_many([System(interval_s=60, cpu_percent=20.0 + hour, memory_percent=50.0)])
        report.observe_many([Latency(ms=80.0 + hour)])
        report.observe_many([Command(name="play"), Command(name="play", ok=False)])
        report.observe_many([Error(message="boom")])
        report.observe_many([Message(guild_id=7, guild_name="Cats")])
        clock.now += 3600
    built = report.build(clock.now)
    assert [c.name for c in built.charts] == ["host", "latency", "activity", "channels"]

    channel_id = 1419858425424259000
    discord.add_channel(channel_id)
    hook = discord.create_webhook(channel_id, name="ops-diagnostics")
    channel = Channel(
        name=CHANNELS[1], channel_id=channel_id, webhook=WebhookRef(id=hook.id, token=hook.token)
    )
    stream = ChannelStream(CHANNELS[1], 30.0, 1.0, clock=time.monotonic)
    async with aiohttp.ClientSession() as session:
        limiter = RateLimiter(time.monotonic)
        http = DiscordHttp(session, discord.api_base, limiter)
        delivery = ChannelDelivery(
            channel,
            stream,
            http=http,
            preview=Preview(),
            emit=lambda e: None,
            add_secret=lambda s: None,
        )
        with anyio.fail_after(30):
            await delivery.deliver(
                Window(channel="diagnostics", events=[built], opened=0, closed=1)
            )
    discord.assert_no_violations()

    shown = [image for m in discord.messages(channel_id) for image in m.embed_images()]
    assert [name for name, _ in shown] == [
        f"chart-0-{n}.png" for n in ("host", "latency", "activity", "channels")
    ]
    for _, data in shown:
        assert decode_png(data)[:2] == (CHART_W, CHART_H)
    embeds = [e for m in discord.messages(channel_id) for e in m.embeds]
    [daily] = [e for e in embeds if e.get("title", "").startswith("📅 daily report")]
    top_guilds = next(f for f in daily["fields"] if f["name"] == "Top guilds")
    assert "Cats" in top_guilds["value"]


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("[collectors.digest]\ninterval = 0.5\n", ["collectors.digest.interval", ">= 1"]),
        ("[collectors.digest]\nevery = 60\n", ["collectors.digest.every", "unknown key"]),
    ],
)
def test_digest_config_errors_are_one_line(tmp_path: Path, text: str, needles: list[str]) -> None:
    """``astra check`` names the digest key and the problem in one line."""
    code, output = check(tmp_path, text)
    assert_one_line_error(code, output, *needles)
