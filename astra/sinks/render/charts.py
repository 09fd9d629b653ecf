"""Charts: the ``charts`` of a report or digest drawn as PNG images, shown inside embeds.

Each chart becomes a file ``chart-<seq>-<name>.png`` attached to the post and an embed
whose image is ``attachment://`` that file, so Discord shows it inside the embed. Drawn in
memory on ``astra.sinks.png``'s canvas; nothing is written to disk.
"""

from __future__ import annotations

import math

from astra.events import Chart, Digest, Event, Report
from astra.sinks.messages import Attachment, Embed, EmbedImage
from astra.sinks.png import Canvas, Color

CHART_W, CHART_H = 800, 320
LEFT, RIGHT, TOP, BOTTOM = 70, 16, 36, 34
BACKGROUND: Color = (43, 45, 49)
GRID: Color = (66, 69, 77)
TEXT: Color = (219, 222, 225)
# The colours of Discord's square emoji (🟦 🟩 🟨 🟥 🟪 🟧), so an embed can name them.
SERIES_COLORS: tuple[Color, ...] = (
    (85, 172, 238),
    (120, 177, 89),
    (253, 203, 88),
    (221, 46, 68),
    (170, 142, 214),
    (244, 144, 12),
)
SERIES_SQUARES = ("🟦", "🟩", "🟨", "🟥", "🟪", "🟧")
LABEL_SCALE = 2
GRID_LINES = 4


def chart_filename(event: Event, chart: Chart) -> str:
    """The attachment's file name: unique per event and chart, letters Discord accepts."""
    stem = "".join(c if c.isascii() and (c.isalnum() or c == "-") else "-" for c in chart.name)
    return f"chart-{event.seq}-{stem}.png"


def chart_embeds(event: Event, charts: list[Chart], color: int) -> list[Embed]:
    """One embed per chart, its image the chart's attachment, its legend in the text."""
    embeds = []
    for chart in charts:
        squares = SERIES_SQUARES
        legend = " · ".join(
            f"{squares[n % len(squares)]} {s.label}" for n, s in enumerate(chart.series)
        )
        unit = f" ({chart.unit})" if chart.unit else ""
        embeds.append(
            Embed(
                title=f"📈 {chart.title}{unit}"[:256],
                description=legend[:4096],
                color=color,
                image=EmbedImage(url=f"attachment://{chart_filename(event, chart)}"),
            )
        )
    return embeds


def chart_attachments(events: list[Event]) -> list[Attachment]:
    """The PNG files of every chart of the reports and digests among ``events``."""
    files = []
    for event in events:
        if isinstance(event, Report | Digest):
            for chart in event.charts:
                files.append(Attachment(chart_filename(event, chart), draw_chart(chart)))
    return files


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 3, 4, 5, 6, 8 × 10^k at or above ``value`` (1 for nothing)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power


def axis_label(value: float) -> str:
    """A short axis label: 0, 12.5, 250, 1.5k, 2M."""
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            scaled = value / limit
            return f"{scaled:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:.1f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))


def draw_chart(chart: Chart) -> bytes:
    """The chart as a CHART_W × CHART_H PNG: grid, y labels, x labels, legend, data."""
    canvas = Canvas(CHART_W, CHART_H, BACKGROUND)
    width, height = CHART_W - LEFT - RIGHT, CHART_H - TOP - BOTTOM
    points = max([len(chart.labels), *(len(s.values) for s in chart.series), 1])
    values = [v for s in chart.series for v in s.values if v is not None and math.isfinite(v)]
    top = 100.0 if chart.unit == "%" and max(values, default=0) <= 100 else None
    # A round step between grid lines, so every label is a round number.
    top = top or nice_ceiling(max(values, default=0) / GRID_LINES) * GRID_LINES
    for n in range(GRID_LINES + 1):
        y = TOP + height - round(height * n / GRID_LINES)
        canvas.fill(LEFT, y, LEFT + width, y + 1, GRID)
        label = axis_label(top * n / GRID_LINES)
        x = LEFT - 8 - Canvas.text_width(label, LABEL_SCALE)
        canvas.text(x, y - 7, label, TEXT, LABEL_SCALE)
    slot = width / points
    _x_labels(canvas, chart.labels, slot)
    for index, series in enumerate(chart.series):
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        if chart.style == "bar":
            _bars(canvas, series.values, index, len(chart.series), slot, top, color)
        else:
            _line(canvas, series.values, slot, top, color)
    _legend(canvas, [s.label for s in chart.series])
    return canvas.png()


def _y(value: float, top: float) -> int:
    height = CHART_H - TOP - BOTTOM
    return TOP + height - round(height * min(max(value, 0.0), top) / top)


def _line(canvas: Canvas, values: list[float | None], slot: float, top: float, c: Color) -> None:
    previous: tuple[int, int] | None = None
    for n, value in enumerate(values):
        if value is None or not math.isfinite(value):
            previous = None  # a gap in the data is a gap in the line
            continue
        point = (LEFT + round(slot * (n + 0.5)), _y(value, top))
        if previous is not None:
            canvas.line(*previous, *point, c, width=3)
        else:
            canvas.fill(point[0] - 2, point[1] - 2, point[0] + 3, point[1] + 3, c)
        previous = point


def _bars(
    canvas: Canvas,
    values: list[float | None],
    index: int,
    count: int,
    slot: float,
    top: float,
    c: Color,
) -> None:
    group = slot * 0.8
    bar = max(1.0, group / max(1, count))
    base = _y(0.0, top)
    for n, value in enumerate(values):
        if value is None or not math.isfinite(value) or value <= 0:
            continue
        x0 = LEFT + round(slot * n + slot * 0.1 + bar * index)
        canvas.fill(x0, _y(value, top), x0 + max(1, round(bar) - 1), base, c)


def _x_labels(canvas: Canvas, labels: list[str], slot: float) -> None:
    if not labels:
        return
    char_w = Canvas.text_width("0", LABEL_SCALE) + LABEL_SCALE
    widest = max(len(label) for label in labels) * char_w
    every = max(1, math.ceil((widest + 12) / slot))
    chars = max(1, int((slot * every - 8) // char_w))
    for n in range(0, len(labels), every):
        label = labels[n][:chars]
        x = LEFT + round(slot * (n + 0.5)) - Canvas.text_width(label, LABEL_SCALE) // 2
        canvas.text(max(0, x), CHART_H - BOTTOM + 10, label, TEXT, LABEL_SCALE)


def _legend(canvas: Canvas, labels: list[str]) -> None:
    x = LEFT
    for index, label in enumerate(labels):
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        canvas.fill(x, 10, x + 14, 24, color)
        canvas.text(x + 20, 10, label[:24], TEXT, LABEL_SCALE)
        x += 20 + Canvas.text_width(label[:24], LABEL_SCALE) + 24
