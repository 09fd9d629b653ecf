"""The logs channel: what went wrong, grouped by fingerprint, and the alerts."""

from __future__ import annotations

from collections import Counter

from astra.events import Alert, Command, Error, Event, Log
from astra.problems import Group, ProblemFold, level_rank
from astra.sinks.messages import Embed, Field, code_block, cut, escape_text
from astra.sinks.render.format import (
    COLOR_CRITICAL,
    COLOR_ERROR,
    COLOR_INFO,
    COLOR_WARNING,
    TOP_N,
    header,
    line_fields,
    pack_embeds,
    table,
    ts_markup,
)
from astra.streams.windows import Window
from astra.units import fmt_duration, fmt_int

# By level rank (``astra.problems.level_rank``): debug and info are both plain info.
_RANK_COLOR = (COLOR_INFO, COLOR_INFO, COLOR_WARNING, COLOR_ERROR, COLOR_CRITICAL)
ALERT_ICONS = {"warning": "🟡", "error": "🟠", "critical": "🔴"}
# Alerts listed one by one; earlier ones are only counted (all are in the attachment).
ALERTS_SHOWN = 20


def render_logs(window: Window) -> list[Embed]:
    """What went wrong: alerts, grouped problems, and quieter records only counted."""
    events = window.events
    problems = ProblemFold()
    for ev in events:
        problems.add(ev)
    groups = problems.ranked()
    alerts = [e for e in events if isinstance(e, Alert)]
    worst = max((g.rank for g in groups), default=1)
    for alert in alerts:
        if alert.state == "firing":
            worst = max(worst, level_rank(alert.severity))
    subtitle = f"{fmt_int(problems.total)} problems in {len(groups)} groups"
    if alerts:
        firing = sum(1 for a in alerts if a.state == "firing")
        subtitle += (
            f" · {firing} alert{'s' * (firing != 1)} firing, {len(alerts) - firing} resolved"
        )
    levels = _level_counts(events)
    fields = _alert_fields(alerts)
    fields.append(
        Field(
            "By level",
            code_block(
                table([(k, fmt_int(v)) for k, v in sorted(levels.items(), key=lambda kv: -kv[1])])
            ),
        )
    )
    fields += _group_fields(groups)
    return pack_embeds(header(window, _RANK_COLOR[worst], subtitle), fields)


def _level_counts(events: list[Event]) -> Counter[str]:
    """Every event counted: logs by level, errors by severity, the rest by kind."""
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
    return levels


def _group_fields(groups: list[Group]) -> list[Field]:
    """A field per group (the top ones), a sample of its message, when and where it came from."""
    fields = []
    for group in groups[:TOP_N]:
        sources = ", ".join(group.sources)
        value = (
            code_block([cut(group.sample.strip(), 600)], 700)
            + f"first {ts_markup(group.first)} · last {ts_markup(group.last)}"
            + (f" · {escape_text(sources)}" if sources else "")
        )
        fields.append(Field(cut(f"{escape_text(group.label)} ×{fmt_int(group.count)}", 256), value))
    if len(groups) > TOP_N:
        rest = sum(g.count for g in groups[TOP_N:])
        fields.append(Field("…", f"{len(groups) - TOP_N} more groups ({fmt_int(rest)} events)"))
    return fields


def _alert_fields(alerts: list[Alert]) -> list[Field]:
    lines = []
    for alert in alerts[-ALERTS_SHOWN:]:
        message = escape_text(cut(alert.message, 200))
        if alert.state == "resolved":
            lines.append(
                f"✅ **resolved** {message} · after {fmt_duration(alert.time - alert.since)}"
                f" · {ts_markup(alert.time, 'R')}"
            )
            continue
        again = f" · reminder {alert.repeat}, since {ts_markup(alert.since, 'R')}"
        muted = "🔇 muted · " if alert.muted else ""
        lines.append(
            f"{muted}{ALERT_ICONS[alert.severity]} **{alert.severity}** {message}"
            + (again if alert.repeat else f" · {ts_markup(alert.time, 'R')}")
        )
    if len(alerts) > ALERTS_SHOWN:
        lines.insert(0, f"… {len(alerts) - ALERTS_SHOWN} earlier alerts in the attachment")
    return line_fields("Alerts", lines)
