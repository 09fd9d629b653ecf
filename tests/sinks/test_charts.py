"""Charts: valid PNGs of the expected size, data drawn where it belongs, files kept with embeds."""

from __future__ import annotations

import struct
import zlib

from astra.collectors.trends import TrendFold
from astra.config import DEFAULT_ROUTES
from astra.events import Chart, ChartSeries, Command, Error, Latency, Message, Report, System
from astra.sinks.messages import Attachment, Embed, EmbedImage, pack_messages
from astra.sinks.png import PNG_SIGNATURE, png_size
from astra.sinks.render.charts import (
    BOTTOM,
    CHART_H,
    CHART_W,
    LEFT,
    RIGHT,
    SERIES_COLORS,
    TOP,
    axis_label,
    chart_attachments,
    draw_chart,
    nice_ceiling,
)
from tests.conftest import Clock


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Check every chunk's CRC and inflate IDAT: width, height and RGB pixels (8-bit RGB)."""
    assert data[:8] == PNG_SIGNATURE
    offset, chunks = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks.append((kind, body))
        offset += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, color_type = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (depth, color_type) == (8, 2)
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    stride = 1 + width * 3
    assert len(raw) == height * stride
    assert all(raw[y * stride] == 0 for y in range(height))
    pixels = b"".join(raw[y * stride + 1 : (y + 1) * stride] for y in range(height))
    return width, height, pixels


def pixel(pixels: bytes, x: int, y: int) -> tuple[int, int, int]:
    """The RGB colour at (x, y) of a CHART_W-wide image."""
    i = (y * CHART_W + x) * 3
    return pixels[i], pixels[i + 1], pixels[i + 2]


def test_a_line_chart_is_a_valid_png_with_the_line_where_the_value_is() -> None:
    """A flat 50 % line crosses the middle of the plot in the first series' colour."""
    chart = Chart(
        name="host",
        title="Host",
        unit="%",
        labels=[f"{h:02d}:00" for h in range(24)],
        series=[ChartSeries(label="cpu", values=[50.0] * 24)],
    )
    data = draw_chart(chart)
    assert png_size(data) == (CHART_W, CHART_H)
    width, height, pixels = decode_png(data)
    assert (width, height) == (CHART_W, CHART_H)
    middle = TOP + (CHART_H - TOP - BOTTOM) // 2
    x = LEFT + (CHART_W - LEFT - RIGHT) // 2
    column = [pixel(pixels, x, y) for y in range(middle - 3, middle + 4)]
    assert SERIES_COLORS[0] in column
    assert pixel(pixels, x, TOP + 20) != SERIES_COLORS[0]


def test_bars_rise_in_proportion_and_missing_values_draw_nothing() -> None:
    """A bar of the top value fills the plot's height; a None is an empty slot."""
    chart = Chart(
        name="channels",
        title="Events per channel",
        style="bar",
        labels=["analytics", "logs"],
        series=[ChartSeries(label="events", values=[400.0, None])],
    )
    _, _, pixels = decode_png(draw_chart(chart))
    slot = (CHART_W - LEFT - RIGHT) // 2
    assert pixel(pixels, LEFT + slot // 2, TOP + 2) == SERIES_COLORS[0]
    assert pixel(pixels, LEFT + slot + slot // 2, CHART_H - BOTTOM - 5) != SERIES_COLORS[0]


def test_axis_numbers_are_round_and_short() -> None:
    """Grid steps are round numbers; labels are compact."""
    assert nice_ceiling(57.5) == 60.0
    assert nice_ceiling(0.0) == 1.0
    assert [axis_label(v) for v in (0, 12.5, 250, 1500, 2_000_000)] == [
        "0",
        "12.5",
        "250",
        "1.5k",
        "2M",
    ]


def test_trends_make_the_four_charts_from_bus_events() -> None:
    """Host, gateway latency, commands and errors, and events per channel, per bucket."""
    clock = Clock(36_000.0)
    trends = TrendFold(step_s=60.0, max_buckets=10, routes=DEFAULT_ROUTES, wall_clock=clock)
    trends.observe_many([System(interval_s=60, cpu_percent=40.0, memory_percent=70.0)])
    trends.observe_many([Latency(ms=100.0), Latency(ms=120.0)])
    trends.observe_many([Command(name="a"), Command(name="b", ok=False)])
    clock.now += 60
    trends.observe_many([Error(message="x"), Error(message="y")])
    trends.observe_many([Message(), Message(), Message()])
    charts = {c.name: c for c in trends.charts(36_000.0, clock.now, lambda t: f"{t:.0f}")}
    assert list(charts) == ["host", "latency", "activity", "channels"]
    assert charts["host"].labels == ["36000", "36060"]
    assert [s.values for s in charts["host"].series] == [[40.0, None], [70.0, None]]
    assert charts["latency"].series[0].values[1] is None
    assert [s.values for s in charts["activity"].series] == [[2.0, 0.0], [1.0, 2.0]]
    channels = charts["channels"]
    assert dict(zip(channels.labels, channels.series[0].values, strict=True)) == {
        "analytics": 4.0,
        "logs": 3.0,
        "performance": 3.0,
    }
    assert trends.totals(36_000.0, clock.now) == (10, 2, 3)


def test_a_chart_file_rides_with_the_embed_that_shows_it() -> None:
    """Eleven embeds split over two messages: each image's file is in its embed's message."""
    files = [Attachment(f"chart-1-c{n}.png", b"png") for n in range(11)]
    embeds = [
        Embed(title=f"c{n}", image=EmbedImage(url=f"attachment://chart-1-c{n}.png"))
        for n in range(11)
    ]
    events = Attachment("events-x-1-2.jsonl.gz", b"gz")
    messages = pack_messages(embeds, [*files, events])
    for message in messages:
        names = {f.filename for f in message.files}
        assert {e.attachment() for e in message.embeds} <= names
        assert len(message.files) <= 10
    assert sum(len(m.files) for m in messages) == 12


def test_reports_and_digests_bring_one_png_per_chart() -> None:
    """Every chart of a report becomes ``chart-<seq>-<name>.png``, a valid 800×320 PNG."""
    chart = Chart(name="activity", title="t", labels=["a"], series=[ChartSeries(label="n")])
    report = Report(day="2026-12-01", timezone="UTC", start=0, end=1, seq=7, charts=[chart])
    [file] = chart_attachments([report, Message()])
    assert file.filename == "chart-7-activity.png"
    assert png_size(file.data) == (CHART_W, CHART_H)
