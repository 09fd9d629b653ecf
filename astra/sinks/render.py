"""Rendering: a closed window becomes embeds a person can read at a glance.

Each channel gets its own summary (counts, top items, grouped errors); the raw events go
in the attachment. All text that came from an event is escaped here.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from astra.events import (
    Command,
    ConfigLoaded,
    Error,
    Event,
    Guild,
    Latency,
    Lifecycle,
    Log,
    Member,
    Message,
    Metric,
    Pipeline,
    Reaction,
    Voice,
    utc_iso,
)
from astra.sinks.messages import Embed, Field, Footer, code_block, cut, escape_code, escape_text
from astra.streams.windows import Window

COLOR_OK = 0x2ECC71
COLOR_INFO = 0x5865F2
COLOR_WARNING = 0xF1C40F
COLOR_ERROR = 0xE67E22
COLOR_CRITICAL = 0xE74C3C

ICONS = {"analytics": "📊", "diagnostics": "🩺", "logs": "📜", "performance": "⚡"}
TOP_N = 10


def fmt_int(n: float) -> str:
    """Thousands separators: 12,345."""
    return f"{n:,.0f}"


def fmt_num(x: float) -> str:
    """A compact number: 12,345 / 12.3 / 0.042."""
    if x != x:  # NaN
        return "nan"
    if abs(x) >= 1000 or x == int(x):
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:,.1f}"
    return f"{x:.3g}"


def ts_markup(ts: float, style: str = "T") -> str:
    """Discord timestamp markup: each reader sees it in their own time zone."""
    return f"<t:{int(ts)}:{style}>"


def table(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None) -> list[str]:
    """Left-align the first column and right-align the rest, for a code block."""
    all_rows = ([list(header)] if header else []) + [list(r) for r in rows]
    if not all_rows:
        return []
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(all_rows[0]))]
    lines = []
    for row in all_rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


_NUMBERS = re.compile(r"0x[0-9a-fA-F]+|\b\d+(?:\.\d+)?\b")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_FRAME = re.compile(r'File "[^"]*", line \d+, in (\S+)')


def normalise_message(message: str) -> str:
    """A message with its variable parts (numbers, ids, quoted values) folded, for grouping."""
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    return _QUOTED.sub("…", _NUMBERS.sub("#", first_line))[:200]


def top_frame(traceback: str | None) -> str:
    """The innermost function named in a Python traceback, or ''."""
    if not traceback:
        return ""
    frames = _FRAME.findall(traceback)
    return frames[-1] if frames else ""


@dataclass
class Group:
    """Events that share a fingerprint (type + normalised message + top frame)."""

    label: str
    sample: str
    severity: int
    count: int = 0
    first: float = 0.0
    last: float = 0.0
    sources: set[str] = field(default_factory=set)


_SEVERITY = {"debug": 0, "info": 1, "warning": 2, "error": 3, "critical": 4}
_SEVERITY_COLOR = {
    0: COLOR_INFO,
    1: COLOR_INFO,
    2: COLOR_WARNING,
    3: COLOR_ERROR,
    4: COLOR_CRITICAL,
}


def group_problems(events: Iterable[Event]) -> list[Group]:
    """Group errors, warning-and-above logs and failed commands by fingerprint."""
    groups: dict[tuple[str, str, str], Group] = {}
    for ev in events:
        if isinstance(ev, Error):
            type_, message, where = ev.type or "Error", ev.message, top_frame(ev.traceback)
            severity = _SEVERITY[ev.severity]
        elif isinstance(ev, Log) and _SEVERITY[ev.level] >= 2:
            type_, message, where = ev.level.upper(), ev.message, ev.logger
            severity = _SEVERITY[ev.level]
        elif isinstance(ev, Command) and not ev.ok:
            type_ = f"/{ev.name} failed" if ev.command_type != "prefix" else f"{ev.name} failed"
            message, where = ev.error or ev.error_type or "", top_frame(ev.traceback)
            severity = 3
        else:
            continue
        key = (type_, normalise_message(message), where)
        group = groups.get(key)
        if group is None:
            label = f"{type_} in {where}" if where else type_
            group = groups[key] = Group(label, message, severity, first=ev.time)
        group.count += 1
        group.first = min(group.first, ev.time)
        group.last = max(group.last, ev.time)
        group.severity = max(group.severity, severity)
        if ev.source:
            group.sources.add(ev.source)
    return sorted(groups.values(), key=lambda g: (-g.severity, -g.count, g.first))


def _header(window: Window, color: int, subtitle: str = "") -> Embed:
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


def _kind_counts(events: list[Event]) -> list[tuple[str, str]]:
    counts: Counter[str] = Counter()
    for ev in events:
        kind = str(ev.__struct_config__.tag)
        action = getattr(ev, "action", None)
        if isinstance(ev, Command):
            action = "ok" if ev.ok else "failed"
        counts[f"{kind} {action}" if isinstance(action, str) else kind] += 1
    return [(k, fmt_int(v)) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def render_analytics(window: Window) -> list[Embed]:
    """Who used the bot and how."""
    events = window.events
    embed = _header(window, COLOR_OK)
    fields = [Field("Activity", code_block(table(_kind_counts(events))), inline=False)]

    commands: dict[str, list[float]] = defaultdict(list)
    command_counts: Counter[str] = Counter()
    guilds: Counter[int] = Counter()
    authors: set[int] = set()
    emojis: Counter[str] = Counter()
    for ev in events:
        if isinstance(ev, Command):
            command_counts[ev.name] += 1
            if ev.duration_ms is not None:
                commands[ev.name].append(ev.duration_ms)
        if isinstance(ev, Message) and ev.author_id is not None:
            authors.add(ev.author_id)
        if isinstance(ev, Reaction) and ev.action == "add":
            emojis[ev.emoji] += 1
        guild_id = getattr(ev, "guild_id", None)
        if isinstance(ev, Message | Command | Reaction | Voice) and guild_id is not None:
            guilds[guild_id] += 1
    if command_counts:
        command_rows = []
        for name, count in command_counts.most_common():
            times = commands.get(name, [])
            avg = fmt_num(sum(times) / len(times)) if times else "-"
            peak = fmt_num(max(times)) if times else "-"
            command_rows.append((name, fmt_int(count), avg, peak))
        fields.append(
            Field(
                "Top commands",
                code_block(table(command_rows, ("command", "uses", "avg ms", "max ms"))),
            )
        )
    if guilds:
        guild_rows = [(str(g), fmt_int(c)) for g, c in guilds.most_common(TOP_N)]
        fields.append(
            Field("Busiest guilds", code_block(table(guild_rows, ("guild", "events"))), True)
        )
    if emojis:
        emoji_rows = [(e, fmt_int(c)) for e, c in emojis.most_common(TOP_N)]
        fields.append(
            Field("Top reactions", code_block(table(emoji_rows, ("emoji", "adds"))), True)
        )
    joins = sum(1 for e in events if isinstance(e, Guild | Member) and e.action == "join")
    leaves = sum(1 for e in events if isinstance(e, Guild | Member) and e.action == "leave")
    if authors or joins or leaves:
        fields.append(
            Field(
                "People",
                f"{fmt_int(len(authors))} distinct authors · {fmt_int(joins)} joins · "
                f"{fmt_int(leaves)} leaves",
            )
        )
    return [_with_fields(embed, fields)]


def render_logs(window: Window) -> list[Embed]:
    """What went wrong: grouped problems, with quieter records only counted."""
    events = window.events
    groups = group_problems(events)
    worst = max((g.severity for g in groups), default=1)
    levels: Counter[str] = Counter()
    for ev in events:
        if isinstance(ev, Log):
            levels[ev.level] += 1
        elif isinstance(ev, Error):
            levels[f"error:{ev.severity}"] += 1
        elif isinstance(ev, Command) and not ev.ok:
            levels["failed command"] += 1
        else:
            levels[str(ev.__struct_config__.tag)] += 1
    subtitle = f"{fmt_int(sum(g.count for g in groups))} problems in {len(groups)} groups"
    embed = _header(window, _SEVERITY_COLOR[worst], subtitle)
    fields = [
        Field(
            "By level",
            code_block(
                table([(k, fmt_int(v)) for k, v in sorted(levels.items(), key=lambda kv: -kv[1])])
            ),
        )
    ]
    for group in groups[:TOP_N]:
        sources = ", ".join(sorted(group.sources)[:3])
        value = (
            code_block([cut(group.sample.strip(), 600)], 700)
            + f"first {ts_markup(group.first)} · last {ts_markup(group.last)}"
            + (f" · {escape_text(sources)}" if sources else "")
        )
        fields.append(Field(cut(f"{escape_text(group.label)} ×{fmt_int(group.count)}", 256), value))
    if len(groups) > TOP_N:
        rest = sum(g.count for g in groups[TOP_N:])
        fields.append(Field("…", f"{len(groups) - TOP_N} more groups ({fmt_int(rest)} events)"))
    return [_with_fields(embed, fields)]


def render_performance(window: Window) -> list[Embed]:
    """How fast and how heavy: latency and metric summaries."""
    latencies: dict[str, list[float]] = defaultdict(list)
    metrics: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for ev in window.events:
        if isinstance(ev, Latency):
            latencies[ev.of].append(ev.ms)
        elif isinstance(ev, Metric):
            metrics[(ev.name, ev.type, ev.unit)].append(ev.value)
    embed = _header(window, COLOR_INFO)
    fields = []
    if latencies:
        latency_rows = [
            (of, fmt_int(len(v)), fmt_num(min(v)), fmt_num(sum(v) / len(v)), fmt_num(max(v)))
            for of, v in sorted(latencies.items())
        ]
        fields.append(
            Field("Latency (ms)", code_block(table(latency_rows, ("of", "n", "min", "avg", "max"))))
        )
    if metrics:
        metric_rows = []
        for (name, type_, unit), values in sorted(metrics.items()):
            shown = sum(values) if type_ == "counter" else values[-1]
            metric_rows.append(
                (
                    name,
                    type_[0],
                    fmt_num(shown) + (f" {unit}" if unit else ""),
                    fmt_num(min(values)),
                    fmt_num(max(values)),
                    fmt_int(len(values)),
                )
            )
        fields.append(
            Field(
                "Metrics (c: sum, g/h: last)",
                code_block(table(metric_rows, ("name", "t", "value", "min", "max", "n"))),
            )
        )
    others = [r for r in _kind_counts(window.events) if not r[0].startswith(("latency", "metric"))]
    if others:
        fields.append(Field("Other events", code_block(table(others))))
    return [_with_fields(embed, fields)]


def render_diagnostics(window: Window) -> list[Embed]:
    """Is the bot and the pipeline healthy: lifecycle, configuration, pipeline trouble."""
    fields = []
    trouble = 0
    life = [e for e in window.events if isinstance(e, Lifecycle)]
    if life:
        lines = []
        for life_ev in life[-15:]:
            where = f" [{life_ev.channel}]" if life_ev.channel else ""
            action, detail = escape_text(life_ev.action), escape_text(life_ev.detail)
            lines.append(f"{ts_markup(life_ev.time)} **{action}**{where} {detail}")
        if len(life) > 15:
            lines.insert(0, f"… {len(life) - 15} earlier")
        fields.append(Field("Lifecycle", cut("\n".join(lines), 1024)))
    for ev in window.events:
        if isinstance(ev, ConfigLoaded):
            channel_rows = [(name, mode) for name, mode in sorted(ev.channels.items())]
            fields.append(
                Field(
                    "Configuration",
                    f"flush every {fmt_num(ev.flush_interval)} s\n"
                    + code_block(table(channel_rows, ("channel", "posts via"))),
                )
            )
    stats = [e for e in window.events if isinstance(e, Pipeline)]
    if stats:
        totals: Counter[str] = Counter()
        for stat in stats:
            for name in stat.__struct_fields__:
                value = getattr(stat, name)
                if name not in ("id", "ts", "source", "seq", "window_s") and isinstance(value, int):
                    totals[name] += value
        trouble = sum(v for k, v in totals.items() if k != "received")
        trouble_rows = [(k.replace("_", " "), fmt_int(v)) for k, v in totals.items() if v]
        fields.append(Field("Pipeline trouble", code_block(table(trouble_rows))))
    others = [
        r
        for r in _kind_counts(window.events)
        if not r[0].startswith(("lifecycle", "config", "pipeline"))
    ]
    if others:
        fields.append(Field("Other events", code_block(table(others))))
    color = COLOR_WARNING if trouble or window.dropped_before else COLOR_OK
    return [_with_fields(_header(window, color), fields)]


def _with_fields(embed: Embed, fields: list[Field]) -> Embed:
    kept = [f for f in fields if f.value]
    return Embed(
        title=embed.title,
        description=embed.description,
        color=embed.color,
        fields=kept,
        footer=embed.footer,
        timestamp=embed.timestamp,
    )


RENDERERS: dict[str, Callable[[Window], list[Embed]]] = {
    "analytics": render_analytics,
    "diagnostics": render_diagnostics,
    "logs": render_logs,
    "performance": render_performance,
}


def render_window(window: Window) -> list[Embed]:
    """Embeds that summarise a window for its channel."""
    return RENDERERS.get(window.channel, render_diagnostics)(window)


__all__ = ["escape_code", "render_window"]
