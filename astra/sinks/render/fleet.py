"""Fleet mode: one picture of many members, and the mark of a member posting by itself.

Added after a channel's own summary when its events come from fleet members: events and
problems per member, and on #performance a row per member (CPU, memory, processes) with
latency percentiles from the members' sketches merged, never averaged percentiles.

The fleet's health (on #diagnostics, and on the status board) is its worst member's: the
lowest of the members' latest scores, with that member's reasons, and a row per member.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from astra.events import Command, Error, Event, Health, Latency, Log, Process, System
from astra.quantiles import LogHistogram
from astra.sinks.messages import Embed, Field, code_block, cut, escape_text
from astra.sinks.render.format import (
    COLOR_WARNING,
    line_fields,
    pack_embeds,
    table,
    ts_markup,
)
from astra.sinks.render.health import score_bar, score_color, score_icon
from astra.streams.windows import Window
from astra.units import fmt_int, fmt_ms, fmt_pct

MEMBER_MAX = 24
# Rows per table: a fleet of hundreds still fits one field.
MAX_ROWS = 25
# A member's top reason in its row of the fleet's health.
REASON_MAX = 100
_PROBLEM_LEVELS = frozenset({"error", "critical"})


def fleet_embeds(window: Window, embeds: list[Embed]) -> list[Embed]:
    """``embeds``, followed by the fleet's per-member embed when there is anything to show."""
    fields: list[Field] = []
    if window.note:
        fields.append(Field("⚠️ Degraded", window.note))
    members = _by_member(window.events)
    if members:
        fields.append(_counts_field(members))
        if window.channel == "performance":
            fields += _performance_fields(members)
    if not fields:
        return embeds
    title = f"🛰️ fleet · {len(members)} member{'s' * (len(members) != 1)}"
    color = COLOR_WARNING if window.note else (embeds[0].color if embeds else 0)
    return embeds + pack_embeds(Embed(title=title, color=color), fields)


def _by_member(events: list[Event]) -> dict[str, list[Event]]:
    members: dict[str, list[Event]] = {}
    for event in events:
        if event.host:
            members.setdefault(event.host, []).append(event)
    return dict(sorted(members.items()))


def _is_problem(event: Event) -> bool:
    if isinstance(event, Error):
        return True
    if isinstance(event, Log):
        return event.level in _PROBLEM_LEVELS
    return isinstance(event, Command) and not event.ok


def _counts_field(members: dict[str, list[Event]]) -> Field:
    rows = [
        (cut(name, MEMBER_MAX), fmt_int(len(events)), fmt_int(sum(map(_is_problem, events))))
        for name, events in members.items()
    ]
    return Field("By member", code_block(_capped(rows, ("member", "events", "errors"))))


def _performance_fields(members: dict[str, list[Event]]) -> list[Field]:
    rows: list[tuple[str, ...]] = []
    merged: dict[str, LogHistogram] = {}
    for name, events in members.items():
        host = next((e for e in reversed(events) if isinstance(e, System)), None)
        latest: dict[str, Process] = {}
        sketches: dict[str, LogHistogram] = {}
        for event in events:
            if isinstance(event, Process):
                latest[event.name] = event
            elif isinstance(event, Latency):
                sketches.setdefault(event.of, LogHistogram()).add(event.ms)
        running = sum(p.running for p in latest.values())
        gateway = sketches.get("gateway")
        rows.append(
            (
                cut(name, MEMBER_MAX),
                "-" if host is None else fmt_pct(host.cpu_percent),
                "-" if host is None else fmt_pct(host.memory_percent),
                f"{running}/{len(latest)}" if latest else "-",
                "-" if gateway is None else fmt_ms(gateway.quantile(0.99)),
            )
        )
        # Each member's sketch merged into the fleet's: percentiles of all samples.
        for of, sketch in sketches.items():
            merged.setdefault(of, LogHistogram()).merge(sketch)
    columns = ("member", "cpu", "mem", "procs", "gw p99")
    fields = [Field("Members", code_block(_capped(rows, columns)))]
    if merged:
        latency = [
            (
                cut(of, MEMBER_MAX),
                fmt_int(len(sketch)),
                fmt_ms(sketch.quantile(0.5)),
                fmt_ms(sketch.quantile(0.95)),
                fmt_ms(sketch.quantile(0.99)),
            )
            for of, sketch in sorted(merged.items())
        ]
        fields.append(
            Field(
                "Latency across the fleet (merged)",
                code_block(_capped(latency, ("of", "n", "p50", "p95", "p99"))),
            )
        )
    return fields


def _capped(rows: Sequence[tuple[str, ...]], columns: tuple[str, ...]) -> list[str]:
    shown = list(rows[:MAX_ROWS])
    if len(rows) > MAX_ROWS:
        shown.append((f"+{len(rows) - MAX_ROWS} more", *("" for _ in columns[1:])))
    return table(shown, columns)


# --- the fleet's health ----------------------------------------------------------------


def latest_health(checks: Iterable[Health]) -> dict[str, Health]:
    """Each member's latest health check, by member name (``host``)."""
    latest: dict[str, Health] = {}
    for check in checks:
        known = latest.get(check.host)
        if known is None or check.time >= known.time:
            latest[check.host] = check
    return latest


def worst_member(latest: Mapping[str, Health]) -> tuple[str, Health] | None:
    """The member with the lowest latest score (the first by name among equals)."""
    return min(latest.items(), key=lambda item: (item[1].score, item[0]), default=None)


def member_name(name: str) -> str:
    """A member's name as the embeds show it: cut, escaped ("—" for none)."""
    return escape_text(cut(name, MEMBER_MAX)) or "—"


def render_fleet_health(checks: Sequence[Health]) -> list[Embed]:
    """The health checks of several members as one: the fleet's score (its worst member's
    latest), that member's reasons and what to do, and a row per member, worst first."""
    latest = latest_health(checks)
    worst = worst_member(latest)
    if worst is None:
        return []
    name, health = worst
    who = member_name(name)
    count = len(latest)
    lines = [
        f"`{score_bar(health.score)}` worst of {count} member{'s' * (count != 1)}: "
        f"**{who}**, checked {ts_markup(health.time, 'R')}"
        + (f" ({len(checks)} checks in this window)" if len(checks) > count else "")
    ]
    if health.reasons:
        lines.append(f"**Why not 100 on {who}**")
        lines += [f"• {escape_text(cut(r, 300))}" for r in health.reasons]
    else:
        lines.append("Nothing to report: every check passed on every member.")
    if health.recommendations:
        lines.append(f"**What to do on {who}**")
        lines += [f"→ {escape_text(cut(r, 300))}" for r in health.recommendations]
    embed = Embed(
        title=f"🩺 fleet health {health.score}/100",
        description=cut("\n".join(lines), 4000),
        color=score_color(health.score),
    )
    ranked = sorted(latest.items(), key=lambda item: (item[1].score, item[0]))
    rows = [_member_row(member, check) for member, check in ranked[:MAX_ROWS]]
    if len(ranked) > MAX_ROWS:
        rows.append(f"… {len(ranked) - MAX_ROWS} more members")
    return pack_embeds(embed, line_fields("Members", rows))


def _member_row(name: str, check: Health) -> str:
    top = escape_text(cut(check.reasons[0], REASON_MAX)) if check.reasons else "all checks passed"
    return (
        f"{score_icon(check.score)} **{member_name(name)}** {check.score}/100 · "
        f"checked {ts_markup(check.time, 'R')} · {top}"
    )
