"""What every channel's summary shares: its look and the packing of its fields.

Colours, the window header, tables, sparklines, Discord timestamp markup, and fields
spread over as few embeds as the limits allow. Figures with units come from
``astra.units``; this module only lays them out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import msgspec

from astra.events import Command, Event, utc_iso
from astra.sinks.messages import (
    FIELD_VALUE_MAX,
    FIELDS_PER_EMBED,
    Embed,
    Field,
    Footer,
    code_block,
    cut,
)
from astra.streams.windows import Window
from astra.units import fmt_int

COLOR_OK = 0x2ECC71
COLOR_INFO = 0x5865F2
COLOR_WARNING = 0xF1C40F
COLOR_ERROR = 0xE67E22
COLOR_CRITICAL = 0xE74C3C

# Colours from best to worst, to pick the worse of two.
COLOR_RANK = (COLOR_OK, COLOR_INFO, COLOR_WARNING, COLOR_ERROR, COLOR_CRITICAL)

ICONS = {"analytics": "📊", "diagnostics": "🩺", "logs": "📜", "performance": "⚡"}
TOP_N = 10
SPARKS = "▁▂▃▄▅▆▇█"
# Fields of one embed are kept under this, so a post of a few embeds stays within 6000.
EMBED_TEXT_BUDGET = 4500


def ts_markup(ts: float, style: str = "T") -> str:
    """Discord timestamp markup: each reader sees it in their own time zone."""
    return f"<t:{int(ts)}:{style}>"


def table(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None) -> list[str]:
    """Left-align the first column and right-align the rest, for a code block.

    A short row (``("worker", "77", "not running")``) is padded with empty cells.
    """
    all_rows = ([list(header)] if header else []) + [list(r) for r in rows]
    if not all_rows:
        return []
    columns = max(len(r) for r in all_rows)
    all_rows = [r + [""] * (columns - len(r)) for r in all_rows]
    widths = [max(len(r[i]) for r in all_rows) for i in range(columns)]
    lines = []
    for row in all_rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def sparkline(values: Sequence[float], lo: float | None = None, hi: float | None = None) -> str:
    """A Unicode sparkline (▁▂▃▄▅▆▇█); ``lo``/``hi`` fix the scale (e.g. 0-100 for percent)."""
    points = [v for v in values if v == v]
    if not points:
        return ""
    low = min(points) if lo is None else lo
    high = max(points) if hi is None else hi
    if high <= low:
        return (SPARKS[0] if high == 0 else SPARKS[3]) * len(points)
    top = len(SPARKS) - 1
    return "".join(SPARKS[min(top, max(0, round((v - low) / (high - low) * top)))] for v in points)


def worse_color(a: int, b: int) -> int:
    """The worse of two summary colours (``COLOR_RANK`` order)."""
    return max(a, b, key=COLOR_RANK.index)


def header(window: Window, color: int, subtitle: str = "") -> Embed:
    """The first embed of a channel's summary: what, when, how many, and drops before it."""
    n = len(window.events)
    title = f"{ICONS.get(window.channel, '')} {window.channel} · {fmt_int(n)} event{'s' * (n != 1)}"
    lines = [
        f"{ts_markup(window.opened)} → {ts_markup(window.closed)} ({ts_markup(window.closed, 'R')})"
    ]
    if subtitle:
        lines.append(subtitle)
    if window.dropped_before:
        lines.append(
            f"⚠️ **{fmt_int(window.dropped_before)} events dropped** before this window: "
            "the buffer was full while Discord was unreachable."
        )
    footer = f"astra · seq {window.first_seq}–{window.last_seq}" if window.events else "astra"
    return Embed(
        title=title.strip(),
        description="\n".join(lines),
        color=COLOR_WARNING if window.dropped_before and color == COLOR_OK else color,
        footer=Footer(footer),
        timestamp=utc_iso(window.closed),
    )


def kind_counts(events: list[Event]) -> list[tuple[str, str]]:
    """Events counted by kind and action (``command ok``, ``guild join``), most first."""
    counts: Counter[str] = Counter()
    for ev in events:
        kind = str(ev.__struct_config__.tag)
        action = getattr(ev, "action", None)
        if isinstance(ev, Command):
            action = "ok" if ev.ok else "failed"
        counts[f"{kind} {action}" if isinstance(action, str) else kind] += 1
    return [(k, fmt_int(v)) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def other_events(events: list[Event], handled: tuple[str, ...]) -> list[Field]:
    """A count of the events a channel's summary does not show otherwise (if any)."""
    others = [row for row in kind_counts(events) if not row[0].startswith(handled)]
    return [Field("Other events", code_block(table(others)))] if others else []


def delivery_trouble(retries: int, rate_limited: int, dropped: int) -> str:
    """The delivery trouble line: ``retries 3 · 429s 1 · drops 0``."""
    return f"retries {fmt_int(retries)} · 429s {fmt_int(rate_limited)} · drops {fmt_int(dropped)}"


def line_fields(name: str, lines: list[str]) -> list[Field]:
    """Lines spread over as few fields as the 1024-character field limit allows."""
    fields: list[Field] = []
    chunk: list[str] = []
    for line in lines:
        line = cut(line, FIELD_VALUE_MAX)
        if chunk and len("\n".join([*chunk, line])) > FIELD_VALUE_MAX:
            fields.append(Field(name if not fields else "\u200b", "\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        fields.append(Field(name if not fields else "\u200b", "\n".join(chunk)))
    return fields


def fit_lines(lines: Sequence[str], limit: int = FIELD_VALUE_MAX) -> str:
    """As many whole lines as fit in ``limit`` characters, then ``… N more`` for the rest."""
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        left = len(lines) - index - 1
        # Room for the "… N more" line, unless this is the last line.
        reserve = len(f"\n… {left + 1} more") if left else 0
        cost = len(line) + (1 if kept else 0)
        if used + cost + reserve > limit:
            kept.append(f"… {len(lines) - index} more")
            break
        kept.append(line)
        used += cost
    return "\n".join(kept)


def pack_embeds(head: Embed, fields: list[Field]) -> list[Embed]:
    """``head`` with ``fields``, continued in more embeds when one would be too long."""
    out: list[Embed] = []
    current: list[Field] = []
    used = len(head.title) + len(head.description)
    for f in (f for f in fields if f.value):
        size = len(f.name) + len(f.value)
        if current and (len(current) >= FIELDS_PER_EMBED or used + size > EMBED_TEXT_BUDGET):
            out.append(_continued(head, current, first=not out))
            current, used = [], 0
        current.append(f)
        used += size
    out.append(_continued(head, current, first=not out))
    return [e for e in out if not e.is_empty()]


def _continued(head: Embed, fields: list[Field], *, first: bool) -> Embed:
    # Only the first embed carries the header; the ones after it keep its colour.
    if first:
        return msgspec.structs.replace(head, fields=fields)
    return Embed(color=head.color, fields=fields)
