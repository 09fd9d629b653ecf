"""Rendering: a closed window becomes embeds a person can read at a glance.

Each channel gets its own summary (counts, top items, grouped errors); the raw events go
in the attachment. All text that came from an event is escaped here.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from astra.events import (
    BOT_LIFECYCLE_PREFIX,
    Alert,
    Command,
    ConfigLoaded,
    Error,
    Event,
    File,
    Guild,
    Health,
    Latency,
    Lifecycle,
    Log,
    Member,
    Message,
    Metric,
    Performance,
    Pipeline,
    Process,
    Quantiles,
    Reaction,
    Report,
    System,
    Voice,
    level_rank,
    problem_of,
    utc_iso,
)
from astra.sinks.messages import (
    FIELD_VALUE_MAX,
    FIELDS_PER_EMBED,
    Embed,
    Field,
    Footer,
    code_block,
    cut,
    escape_text,
)
from astra.streams.windows import Window
from astra.units import fmt_bytes, fmt_duration

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


SPARKS = "▁▂▃▄▅▆▇█"
# Fields of one embed are kept under this, so a post of a few embeds stays within 6000.
EMBED_TEXT_BUDGET = 4500
# Names in table columns are cut to this, so one long name does not push the columns away.
NAME_MAX = 24
STATUS_ICONS = {"ok": "🟢", "warning": "🟡", "error": "🔴", "off": "⚪"}
ALERT_ICONS = {"warning": "🟡", "error": "🟠", "critical": "🔴"}


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


def fmt_rate(bytes_per_s: float | None) -> str:
    """A transfer rate: 12.4 KiB/s (``-`` when unknown)."""
    return "-" if bytes_per_s is None else f"{fmt_bytes(bytes_per_s)}/s"


def fmt_ms(ms: float) -> str:
    """A latency: 840 ms, 1.25 s, 2.1 min."""
    if ms < 1000:
        return f"{fmt_num(round(ms, 1))} ms"
    if ms < 60_000:
        return f"{ms / 1000:.3g} s"
    return f"{ms / 60_000:.2g} min"


def fmt_pct(x: float) -> str:
    """A percentage with one decimal: 93.4 %."""
    return f"{x:.1f} %"


_SEVERITY = {"debug": 0, "info": 1, "warning": 2, "error": 3, "critical": 4}
_SEVERITY_COLOR = {
    0: COLOR_INFO,
    1: COLOR_INFO,
    2: COLOR_WARNING,
    3: COLOR_ERROR,
    4: COLOR_CRITICAL,
}


def group_problems(events: Iterable[Event]) -> list[Group]:
    """Group errors, warning-and-above logs and failed commands by fingerprint.

    The fingerprint (type + normalised message + top frame) is ``astra.events.problem_of``'s,
    the same the daily report groups by.
    """
    groups: dict[tuple[str, str, str], Group] = {}
    for ev in events:
        problem = problem_of(ev)
        if problem is None:
            continue
        severity = level_rank(problem.level)
        key = problem.fingerprint
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(problem.label, problem.message, severity, first=ev.time)
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
    embed = _header(window, COLOR_OK, f"activity {_activity(window)}" if events else "")
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
    return _embeds(embed, fields)


def _activity(window: Window, buckets: int = 12) -> str:
    """Events over the window's time as a sparkline (one character per 1/12th)."""
    span = window.closed - window.opened
    if span <= 0 or len(window.events) < 2:
        return sparkline([len(window.events)])
    counts = [0] * buckets
    for ev in window.events:
        index = int((ev.time - window.opened) / span * buckets)
        counts[min(buckets - 1, max(0, index))] += 1
    return sparkline(counts, lo=0)


def render_logs(window: Window) -> list[Embed]:
    """What went wrong: alerts, grouped problems, and quieter records only counted."""
    events = window.events
    groups = group_problems(events)
    alerts = [e for e in events if isinstance(e, Alert)]
    worst = max((g.severity for g in groups), default=1)
    for alert in alerts:
        if alert.state == "firing":
            worst = max(worst, _SEVERITY[alert.severity])
    levels: Counter[str] = Counter()
    for ev in events:
        if isinstance(ev, Log):
            levels[ev.level] += 1
        elif isinstance(ev, Error):
            levels[f"error:{ev.severity}"] += 1
        elif isinstance(ev, Command) and not ev.ok:
            levels["failed command"] += 1
        elif isinstance(ev, Alert):
            levels[f"alert {ev.state}"] += 1
        else:
            levels[str(ev.__struct_config__.tag)] += 1
    subtitle = f"{fmt_int(sum(g.count for g in groups))} problems in {len(groups)} groups"
    if alerts:
        firing = sum(1 for a in alerts if a.state == "firing")
        subtitle += (
            f" · {firing} alert{'s' * (firing != 1)} firing, {len(alerts) - firing} resolved"
        )
    embed = _header(window, _SEVERITY_COLOR[worst], subtitle)
    fields = _alert_fields(alerts)
    fields.append(
        Field(
            "By level",
            code_block(
                table([(k, fmt_int(v)) for k, v in sorted(levels.items(), key=lambda kv: -kv[1])])
            ),
        )
    )
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
    return _embeds(embed, fields)


def _alert_fields(alerts: list[Alert]) -> list[Field]:
    lines = []
    for alert in alerts[-20:]:
        message = escape_text(cut(alert.message, 200))
        if alert.state == "resolved":
            lines.append(
                f"✅ **resolved** {message} · after {fmt_duration(alert.time - alert.since)}"
                f" · {ts_markup(alert.time, 'R')}"
            )
            continue
        again = f" · reminder {alert.repeat}, since {ts_markup(alert.since, 'R')}"
        lines.append(
            f"{ALERT_ICONS[alert.severity]} **{alert.severity}** {message}"
            + (again if alert.repeat else f" · {ts_markup(alert.time, 'R')}")
        )
    if len(alerts) > 20:
        lines.insert(0, f"… {len(alerts) - 20} earlier alerts in the attachment")
    return _line_fields("Alerts", lines)


def _line_fields(name: str, lines: list[str]) -> list[Field]:
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


def _latest(events: Iterable[Event], kind: type[Event]) -> list[Event]:
    """The last event of ``kind`` per subject (``name``, else one overall), in first-seen order."""
    latest: dict[str, Event] = {}
    for ev in events:
        if isinstance(ev, kind):
            latest[str(getattr(ev, "name", ""))] = ev
    return list(latest.values())


def render_performance(window: Window) -> list[Embed]:
    """How fast and how heavy: host, processes, files, pipeline, latency percentiles."""
    events = window.events
    fields: list[Field] = []
    color = COLOR_INFO
    systems = [e for e in events if isinstance(e, System)]
    if systems:
        fields += _host_fields(systems[-1])
        host = systems[-1]
        if max([host.cpu_percent, host.memory_percent, *(d.percent for d in host.disks)]) >= 90:
            color = COLOR_WARNING
    processes = [e for e in _latest(events, Process) if isinstance(e, Process)]
    if processes:
        fields += _process_fields(processes, [e for e in events if isinstance(e, Process)])
        if any(not p.running for p in processes):
            color = COLOR_ERROR
    files = [e for e in _latest(events, File) if isinstance(e, File)]
    if files:
        fields.append(_files_field(files))
    perfs = [e for e in events if isinstance(e, Performance)]
    if perfs:
        fields += _pipeline_fields(perfs[-1])
    fields += _raw_latency_fields(events)
    handled = ("system", "process", "file", "performance", "latency", "metric")
    others = [r for r in _kind_counts(events) if not r[0].startswith(handled)]
    if others:
        fields.append(Field("Other events", code_block(table(others))))
    return _embeds(_header(window, color), fields)


def _host_fields(host: System) -> list[Field]:
    load = " · ".join(f"{x:.2f}" for x in host.load) if host.load else "-"
    cpu = (
        f"**{fmt_pct(host.cpu_percent)}** {sparkline(host.cpu_trend, 0, 100)}\n"
        f"load {load} ({host.cores} cores)\n"
        f"per core {sparkline(host.per_cpu, 0, 100)}"
    )
    swap = (
        f"swap {fmt_bytes(host.swap_used_bytes)} of {fmt_bytes(host.swap_total_bytes)}"
        if host.swap_total_bytes
        else "no swap"
    )
    memory = (
        f"**{fmt_pct(host.memory_percent)}** {sparkline(host.memory_trend, 0, 100)}\n"
        f"{fmt_bytes(host.memory_used_bytes)} of {fmt_bytes(host.memory_total_bytes)}\n{swap}"
    )
    fields = [Field("CPU", cpu, True), Field("Memory", memory, True)]
    if host.net is not None:
        net = host.net
        fields.append(
            Field(
                "Network",
                f"↓ {fmt_rate(net.bytes_recv_per_s)} · ↑ {fmt_rate(net.bytes_sent_per_s)}\n"
                f"{fmt_num(net.packets_recv_per_s)} / {fmt_num(net.packets_sent_per_s)} pkt/s"
                f" in/out\n{fmt_num(net.errors_per_s)} err/s · {fmt_num(net.drops_per_s)} drop/s",
                True,
            )
        )
    if host.disks:
        rows = [
            (
                d.mount,
                fmt_bytes(d.used_bytes),
                fmt_bytes(d.total_bytes),
                f"{d.percent:.0f} %",
                fmt_rate(d.read_bytes_per_s),
                fmt_rate(d.write_bytes_per_s),
            )
            for d in host.disks
        ]
        header = ("mount", "used", "size", "use", "read", "write")
        fields.append(Field("Disks", code_block(table(rows, header))))
    fields.append(
        Field(
            "Host",
            f"up {fmt_duration(host.uptime_s)} · sampled {ts_markup(host.time, 'R')}"
            f" every {fmt_duration(host.interval_s)}",
        )
    )
    return fields


def _process_fields(latest: list[Process], all_readings: list[Process]) -> list[Field]:
    rows: list[tuple[str, ...]] = []
    for proc in latest:
        if not proc.running:
            rows.append((cut(proc.name, NAME_MAX), str(proc.pid or "-"), "not running"))
            continue
        rows.append(
            (
                cut(proc.name, NAME_MAX),
                str(proc.pid),
                fmt_pct(proc.cpu_percent),
                fmt_bytes(proc.rss_bytes),
                fmt_int(proc.threads),
                "-" if proc.fds is None else fmt_int(proc.fds),
                "-" if proc.connections is None else fmt_int(proc.connections),
                fmt_duration(proc.uptime_s),
                fmt_int(proc.restarts),
            )
        )
    header = ("process", "pid", "cpu", "rss", "thr", "fds", "conn", "up", "restarts")
    fields = [Field("Processes", code_block(table(rows, header)))]
    trends = [
        f"{escape_text(p.name)} {sparkline(p.rss_trend, lo=0)} {fmt_bytes(p.rss_bytes)}"
        for p in latest
        if p.running and len(p.rss_trend) > 1
    ]
    changes = [
        f"**{escape_text(p.name)}** {p.change}"
        + (f" (pid {p.pid})" if p.pid else "")
        + f" · {ts_markup(p.time, 'R')}"
        for p in all_readings
        if p.change
    ]
    fields += _line_fields("RSS trend", trends)
    fields += _line_fields("Process changes", changes[-10:])
    return fields


def _files_field(files: list[File]) -> Field:
    rows: list[tuple[str, ...]] = []
    for watched in files:
        if not watched.exists or watched.size_bytes is None:
            rows.append((cut(watched.name, NAME_MAX), "missing"))
            continue
        growth = watched.growth_bytes_per_day
        shown = (
            "-"
            if growth is None or watched.growth_span_s <= 0
            else (f"{'+' if growth >= 0 else '-'}{fmt_bytes(abs(growth))}/day")
        )
        rows.append(
            (
                cut(watched.name, NAME_MAX),
                fmt_bytes(watched.size_bytes),
                shown,
                sparkline(watched.size_trend),
            )
        )
    return Field("Watched files", code_block(table(rows, ("file", "size", "growth", "trend"))))


def _pipeline_fields(perf: Performance) -> list[Field]:
    pipeline = (
        f"in **{fmt_num(perf.events_per_s)}/s** {sparkline(perf.rate_trend, lo=0)}"
        f" ({fmt_int(perf.events_in)} in {fmt_duration(perf.window_s)})\n"
        f"queue {fmt_int(perf.queue_depth)} · delivered {fmt_int(perf.delivered)}\n"
        f"retries {fmt_int(perf.retries)} · 429s {fmt_int(perf.rate_limited)}"
        f" · drops {fmt_int(perf.dropped)}"
    )
    fields = [Field("Pipeline", pipeline, True)]
    if perf.delivery_ms is not None:
        d = perf.delivery_ms
        fields.append(
            Field(
                "Event → Discord",
                f"p50 {fmt_ms(d.p50)}\np95 {fmt_ms(d.p95)}\np99 {fmt_ms(d.p99)}"
                f" · max {fmt_ms(d.max)}",
                True,
            )
        )
    if perf.commands:
        rate = 100.0 * perf.commands_failed / perf.commands
        fields.append(
            Field(
                "Commands",
                f"{fmt_int(perf.commands)} run\n{fmt_int(perf.commands_failed)} failed"
                f" ({fmt_pct(rate)})",
                True,
            )
        )
    if perf.latencies:
        fields.append(Field("Latency percentiles", _quantile_table(perf.latencies)))
    if perf.slow_commands:
        fields.append(Field("Slowest commands (p95)", _quantile_table(perf.slow_commands)))
    return fields


def _quantile_table(series: list[Quantiles]) -> str:
    rows = [
        (
            cut(q.of, NAME_MAX),
            fmt_int(q.count),
            fmt_ms(q.p50),
            fmt_ms(q.p95),
            fmt_ms(q.p99),
            fmt_ms(q.max),
        )
        for q in series
    ]
    return code_block(table(rows, ("of", "n", "p50", "p95", "p99", "max")))


def _raw_latency_fields(events: list[Event]) -> list[Field]:
    latencies: dict[str, list[float]] = defaultdict(list)
    metrics: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for ev in events:
        if isinstance(ev, Latency):
            latencies[ev.of].append(ev.ms)
        elif isinstance(ev, Metric):
            metrics[(ev.name, ev.type, ev.unit)].append(ev.value)
    fields = []
    if latencies:
        latency_rows = [
            (of, fmt_int(len(v)), fmt_num(min(v)), fmt_num(sum(v) / len(v)), fmt_num(max(v)))
            for of, v in sorted(latencies.items())
        ]
        fields.append(
            Field(
                "Latency samples (ms)",
                code_block(table(latency_rows, ("of", "n", "min", "avg", "max"))),
            )
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
    return fields


_PIPELINE_WINDOW_FIELDS = (
    "received",
    "rejected_http",
    "malformed_udp",
    "kernel_drops",
    "dropped_buffer",
    "retries",
    "rate_limited",
    "failed_posts",
    "undeliverable",
)


def _lifecycle_lines(life: list[Lifecycle], *, bold: bool) -> str:
    lines = []
    for life_ev in life[-15:]:
        where = f" [{escape_text(life_ev.channel)}]" if life_ev.channel else ""
        action, detail = escape_text(life_ev.action), escape_text(life_ev.detail)
        source = f" ({escape_text(life_ev.source)})" if life_ev.source and not bold else ""
        action = f"**{action}**" if bold else action
        lines.append(f"{ts_markup(life_ev.time)} {action}{where}{source} {detail}")
    if len(life) > 15:
        lines.insert(0, f"… {len(life) - 15} earlier")
    return cut("\n".join(lines), 1024)


def render_diagnostics(window: Window) -> list[Embed]:
    """Is the bot and the pipeline healthy: health, daily report, lifecycle, configuration."""
    fields = []
    trouble = 0
    life = [e for e in window.events if isinstance(e, Lifecycle)]
    # Ingest only lets a bot send gateway.* actions: those are the bot's, shown apart and
    # never in bold, so nothing from the network reads like astra's own lines.
    own = [e for e in life if not e.action.startswith(BOT_LIFECYCLE_PREFIX)]
    bot = [e for e in life if e.action.startswith(BOT_LIFECYCLE_PREFIX)]
    if own:
        fields.append(Field("Lifecycle", _lifecycle_lines(own, bold=True)))
    if bot:
        fields.append(Field("Bot gateway", _lifecycle_lines(bot, bold=False)))
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
            for name in _PIPELINE_WINDOW_FIELDS:
                totals[name] += getattr(stat, name)
        trouble = sum(v for k, v in totals.items() if k != "received")
        trouble_rows = [(k.replace("_", " "), fmt_int(v)) for k, v in totals.items() if v]
        fields.append(Field("Pipeline trouble", code_block(table(trouble_rows))))
        latest = stats[-1]
        since_start = [
            ("dropped (memory bound)", latest.dropped_buffer_total),
            ("dropped by the kernel", latest.kernel_drops_total),
            ("undeliverable", latest.undeliverable_total),
        ] + [(f"dropped in #{name}", n) for name, n in sorted(latest.dropped_by_channel.items())]
        rows = [(label, fmt_int(n)) for label, n in since_start if n]
        if rows:
            fields.append(Field("Lost since start", code_block(table(rows))))
    handled = ("lifecycle", "config", "pipeline", "health", "report")
    others = [r for r in _kind_counts(window.events) if not r[0].startswith(handled)]
    if others:
        fields.append(Field("Other events", code_block(table(others))))
    health = [e for e in window.events if isinstance(e, Health)]
    color = COLOR_WARNING if trouble or window.dropped_before else COLOR_OK
    if health:
        color = max(color, _score_color(health[-1].score), key=_COLOR_RANK.index)
    embeds = _embeds(_header(window, color), fields)
    if health:
        embeds += render_health(health[-1], len(health))
    for report in (e for e in window.events if isinstance(e, Report)):
        embeds += render_report(report)
    return embeds


_COLOR_RANK = [COLOR_OK, COLOR_INFO, COLOR_WARNING, COLOR_ERROR, COLOR_CRITICAL]


def _score_color(score: int) -> int:
    if score >= 90:
        return COLOR_OK
    if score >= 70:
        return COLOR_WARNING
    return COLOR_ERROR if score >= 40 else COLOR_CRITICAL


def render_health(health: Health, checks: int = 1) -> list[Embed]:
    """A health event: score, reasons, recommendations, components."""
    bar = "█" * (health.score // 10) + "░" * (10 - health.score // 10)
    lines = [f"`{bar}` checked {ts_markup(health.time, 'R')}"]
    if checks > 1:
        lines[0] += f" (latest of {checks})"
    if health.reasons:
        lines.append("**Why not 100**")
        lines += [f"• {escape_text(cut(r, 300))}" for r in health.reasons]
    else:
        lines.append("Nothing to report: every check passed.")
    if health.recommendations:
        lines.append("**What to do**")
        lines += [f"→ {escape_text(cut(r, 300))}" for r in health.recommendations]
    component_lines = []
    for c in health.components:
        seen = f" · ok {ts_markup(c.last_ok, 'R')}" if c.last_ok else ""
        component_lines.append(
            f"{STATUS_ICONS[c.status]} **{escape_text(c.name)}** {escape_text(cut(c.detail, 200))}"
            + seen
        )
    embed = Embed(
        title=f"🩺 health {health.score}/100",
        description=cut("\n".join(lines), 4000),
        color=_score_color(health.score),
    )
    return _embeds(embed, _line_fields("Components", component_lines))


def render_report(report: Report) -> list[Embed]:
    """The daily report: the day in counts, tops, problems, uptime, peaks and delivery."""
    total = sum(report.events.values())
    embed = Embed(
        title=f"📅 daily report · {report.day} ({report.timezone})",
        description=(
            f"{ts_markup(report.start, 'f')} → {ts_markup(report.end, 'f')} · "
            f"{fmt_int(total)} events · {fmt_int(report.problem_total)} problems · "
            f"{fmt_int(report.alerts_fired)} alerts"
        ),
        color=COLOR_INFO,
    )
    kinds = [(k, fmt_int(v)) for k, v in report.events.items()]
    fields = [Field("Events by kind", code_block(table(kinds[:15], ("kind", "events"))), True)]
    if report.top_commands:
        rows = [(r.name, fmt_int(r.count)) for r in report.top_commands]
        fields.append(Field("Top commands", code_block(table(rows, ("command", "uses"))), True))
    if report.top_guilds:
        rows = [(r.name, fmt_int(r.count)) for r in report.top_guilds]
        fields.append(Field("Top guilds", code_block(table(rows, ("guild", "events"))), True))
    problem_lines = [
        f"**{escape_text(cut(g.label, 120))}** ×{fmt_int(g.count)} · first"
        f" {ts_markup(g.first, 't')} · last {ts_markup(g.last, 't')}"
        for g in report.problems
    ]
    fields += _line_fields("Errors by group", problem_lines)
    up = [f"host up {fmt_duration(report.host_uptime_s)}"] if report.host_uptime_s else []
    if report.processes:
        process_rows = [
            (p.name, f"{p.up_percent:.1f} %", fmt_int(p.restarts), fmt_bytes(p.peak_rss_bytes))
            for p in report.processes
        ]
        # The block shares the field with the host line: size it for what is left.
        room = FIELD_VALUE_MAX - sum(len(line) + 1 for line in up)
        header = ("process", "up", "restarts", "peak rss")
        up.append(code_block(table(process_rows, header), room))
    if up:
        fields.append(Field("Uptime", "\n".join(up)))
    peaks = []
    if report.peak_cpu_percent is not None:
        peaks.append(f"CPU {fmt_pct(report.peak_cpu_percent)}")
    if report.peak_memory_percent is not None:
        peaks.append(f"memory {fmt_pct(report.peak_memory_percent)}")
    if peaks:
        fields.append(Field("Peaks", " · ".join(peaks), True))
    worst = f"\nworst p95 {fmt_ms(report.delivery_p95_ms)}" if report.delivery_p95_ms else ""
    fields.append(
        Field(
            "Delivery",
            f"{fmt_int(report.delivered)} events delivered{worst}\n"
            f"retries {fmt_int(report.retries)} · 429s {fmt_int(report.rate_limited)}"
            f" · drops {fmt_int(report.dropped)}",
            True,
        )
    )
    return _embeds(embed, fields)


def _embeds(head: Embed, fields: list[Field]) -> list[Embed]:
    """``head`` with ``fields``, continued in more embeds when one would be too long."""
    kept = [f for f in fields if f.value]
    out: list[Embed] = []
    current: list[Field] = []
    used = len(head.title) + len(head.description)
    for f in kept:
        size = len(f.name) + len(f.value)
        if current and (len(current) >= FIELDS_PER_EMBED or used + size > EMBED_TEXT_BUDGET):
            out.append(_with_fields(head if not out else Embed(color=head.color), current))
            current, used = [], 0
        current.append(f)
        used += size
    out.append(_with_fields(head if not out else Embed(color=head.color), current))
    return [e for e in out if not e.is_empty()]


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
