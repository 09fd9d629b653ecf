"""The daily report on the diagnostics channel.

The day in counts, tops, problems, uptime, peaks and delivery, from one ``report`` event.
"""

from __future__ import annotations

from astra.events import Ranked, Report
from astra.sinks.messages import FIELD_VALUE_MAX, Embed, Field, code_block, cut, escape_text
from astra.sinks.render.charts import chart_embeds
from astra.sinks.render.format import (
    COLOR_INFO,
    delivery_trouble,
    line_fields,
    pack_embeds,
    table,
    ts_markup,
)
from astra.units import fmt_bytes, fmt_duration, fmt_int, fmt_ms, fmt_pct

# Kinds listed in "Events by kind"; the rest of the day's kinds are in the event itself.
KINDS_SHOWN = 15
# Fleet members listed by name; the rest are counted in one row.
MEMBERS_SHOWN = 14
MEMBER_NAME_MAX = 24


def render_report(report: Report) -> list[Embed]:
    """The daily report: the day in counts, tops, problems, uptime, peaks and delivery."""
    total = sum(report.events.values())
    embed = Embed(
        title=f"📅 daily report · {report.day} ({report.timezone})",
        description=(
            f"{ts_markup(report.start, 'f')} → {ts_markup(report.end, 'f')} · "
            f"{fmt_int(total)} events · {fmt_int(report.problem_total)} problems · "
            f"{fmt_int(report.alerts_fired)} alerts"
            + (f"\n⚠️ {escape_text(report.coverage)}" if report.coverage else "")
        ),
        color=COLOR_INFO,
    )
    kinds = [(k, fmt_int(v)) for k, v in report.events.items()]
    fields = [
        Field("Events by kind", code_block(table(kinds[:KINDS_SHOWN], ("kind", "events"))), True)
    ]
    fields += _ranked_fields("Top commands", report.top_commands, ("command", "uses"))
    names = report.guild_names
    guilds = [Ranked(names.get(g.name, g.name)[:32], g.count) for g in report.top_guilds]
    fields += _ranked_fields("Top guilds", guilds, ("guild", "events"))
    problem_lines = [
        f"**{escape_text(cut(g.label, 120))}** ×{fmt_int(g.count)} · first"
        f" {ts_markup(g.first, 't')} · last {ts_markup(g.last, 't')}"
        for g in report.problems
    ]
    fields += line_fields("Errors by group", problem_lines)
    fields += _members_fields(report)
    fields += _uptime_fields(report)
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
            + delivery_trouble(report.retries, report.rate_limited, report.dropped),
            True,
        )
    )
    return pack_embeds(embed, fields) + chart_embeds(report, report.charts, COLOR_INFO)


def _ranked_fields(name: str, ranked: list[Ranked], columns: tuple[str, str]) -> list[Field]:
    rows = [(r.name, fmt_int(r.count)) for r in ranked]
    return [Field(name, code_block(table(rows, columns)), True)] if rows else []


def _members_fields(report: Report) -> list[Field]:
    """A fleet's day, member by member (the host figures are each member's own)."""
    rows = [
        (
            cut(m.name, MEMBER_NAME_MAX),
            fmt_int(m.events),
            fmt_int(m.problems),
            "-" if m.peak_cpu_percent is None else fmt_pct(m.peak_cpu_percent),
            "-" if m.peak_memory_percent is None else fmt_pct(m.peak_memory_percent),
            "-" if m.host_uptime_s is None else fmt_duration(m.host_uptime_s),
        )
        for m in report.members[:MEMBERS_SHOWN]
    ]
    if not rows:
        return []
    left = report.members[MEMBERS_SHOWN:]
    if left:
        rows.append((f"+{len(left)} more", fmt_int(sum(m.events for m in left)), "", "", "", ""))
    columns = ("member", "events", "errors", "peak cpu", "peak mem", "host up")
    title = f"Fleet · {len(report.members)} member{'s' * (len(report.members) != 1)}"
    return [Field(title, code_block(table(rows, columns)))]


def _uptime_fields(report: Report) -> list[Field]:
    # In a fleet each member's host uptime is in its row: one host's here would mislead.
    host_up = report.host_uptime_s if not report.members else None
    up = [f"host up {fmt_duration(host_up)}"] if host_up else []
    if report.processes:
        process_rows = [
            (p.name, fmt_pct(p.up_percent), fmt_int(p.restarts), fmt_bytes(p.peak_rss_bytes))
            for p in report.processes
        ]
        # The block shares the field with the host line: size it for what is left.
        room = FIELD_VALUE_MAX - sum(len(line) + 1 for line in up)
        columns = ("process", "up", "restarts", "peak rss")
        up.append(code_block(table(process_rows, columns), room))
    return [Field("Uptime", "\n".join(up))] if up else []
