"""The status board: one message in #diagnostics that always shows how things stand now.

Score, the alerts firing, each channel's last post and what needs fixing, the components,
the hosts and the uptime, in one embed. Its footer carries ``BOARD_MARKER``, by which
astra recognises its board in the channel after a restart.

A fleet's board shows the fleet: the worst member's score and components, every alert
firing on any member (named on its line), and every member with its latest score.
"""

from __future__ import annotations

import msgspec

from astra.events import Alert, Health, utc_iso
from astra.sinks.messages import Embed, Field, Footer, cut, escape_text
from astra.sinks.render.fleet import member_name, worst_member
from astra.sinks.render.format import COLOR_INFO, fit_lines, line_fields, ts_markup
from astra.sinks.render.health import STATUS_ICONS, score_bar, score_color, score_icon
from astra.units import fmt_duration, fmt_int

BOARD_MARKER = "astra status board"
SEVERITY_ICONS = {"info": "🔵", "warning": "🟡", "error": "🟠", "critical": "🔴"}
MAX_ALERTS = 15


class ChannelRow(msgspec.Struct, frozen=True, kw_only=True):
    """One channel on the board."""

    name: str
    mode: str  # "discord" or "preview"
    last_post: float | None = None
    pending: int = 0
    problem: str = ""


class MemberRow(msgspec.Struct, frozen=True, kw_only=True):
    """One fleet member on the board: its latest health check (if any came yet), and
    whether it is silent (no heartbeat for ``fleet.silent_after``)."""

    name: str
    health: Health | None = None
    silent: bool = False


class BoardState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the board shows, gathered at one moment.

    ``members`` is set in fleet mode only: then the score and components are the worst
    member's, ``health`` is unused and the hosts are the members.
    """

    updated: float
    uptime_s: float
    version: str
    hosts: list[str]
    channels: list[ChannelRow]
    alerts: list[Alert]
    health: Health | None = None
    stopped: bool = False
    members: list[MemberRow] = msgspec.field(default_factory=list)


def render_board(state: BoardState) -> Embed:
    """The board's embed."""
    health, worst = state.health, ""
    if state.members:
        found = worst_member({m.name: m.health for m in state.members if m.health is not None})
        worst, health = found if found is not None else ("", None)
    if state.stopped:
        title, color = "⏹️ astra stopped", COLOR_INFO
        lead = f"stopped {ts_markup(state.updated, 'R')}: nothing below is live any more"
    elif health is None:
        title, color = "📋 astra status", COLOR_INFO
        lead = f"waiting for the first health check · updated {ts_markup(state.updated, 'R')}"
    else:
        title, color = f"📋 astra status · {health.score}/100", score_color(health.score)
        lead = f"`{score_bar(health.score)}` checked {ts_markup(health.time, 'R')}"
        if state.members:
            count = len(state.members)
            lead = (
                f"`{score_bar(health.score)}` worst of {count} member{'s' * (count != 1)}: "
                f"**{member_name(worst)}**, checked {ts_markup(health.time, 'R')}"
            )
    fields = [Field("Alerts firing now", _alert_lines(state.alerts))]
    fields += line_fields("Channels", [_channel_line(c) for c in state.channels])
    if health is not None and health.components:
        where = f" of {member_name(worst)}" if state.members else ""
        fields += line_fields(f"Components{where}", _component_lines(health))
    if state.members:
        fields.append(Field("Hosts", _member_lines(state.members)))
    else:
        hosts = ", ".join(escape_text(h) for h in state.hosts) or "—"
        fields.append(Field("Hosts", cut(hosts, 1024), inline=True))
    fields += [
        Field("Uptime", fmt_duration(state.uptime_s), inline=True),
        Field("Version", escape_text(state.version), inline=True),
    ]
    return Embed(
        title=title,
        description=lead,
        color=color,
        fields=fields,
        footer=Footer(BOARD_MARKER),
        timestamp=utc_iso(state.updated),
    )


def _alert_lines(alerts: list[Alert]) -> str:
    if not alerts:
        return "none"
    ranked = sorted(alerts, key=lambda a: (list(SEVERITY_ICONS).index(a.severity) * -1, a.since))
    lines = []
    for alert in ranked[:MAX_ALERTS]:
        muted = " · 🔕 muted" if alert.muted else ""
        text = f" — {escape_text(cut(alert.message, 150))}" if alert.message else ""
        where = f" on **{member_name(alert.host)}**" if alert.host else ""
        lines.append(
            f"{SEVERITY_ICONS[alert.severity]} **{escape_text(alert.rule)}** "
            f"{escape_text(alert.subject)}{where}{text} · since {ts_markup(alert.since, 'R')}"
            f"{muted}"
        )
    if len(ranked) > MAX_ALERTS:
        lines.append(f"… {len(ranked) - MAX_ALERTS} more")
    return cut("\n".join(lines), 1024)


def _channel_line(row: ChannelRow) -> str:
    where = "terminal preview" if row.mode == "preview" else "Discord"
    last = f"last post {ts_markup(row.last_post, 'R')}" if row.last_post else "no post yet"
    line = f"**#{row.name}** → {where} · {last} · {fmt_int(row.pending)} pending"
    if row.problem:
        line += f"\n⚠️ {escape_text(row.problem)}"
    return line


def _component_lines(health: Health) -> list[str]:
    order = {"error": 0, "warning": 1, "ok": 2, "off": 3}
    return [
        f"{STATUS_ICONS[c.status]} {escape_text(c.name)} · {escape_text(cut(c.detail, 120))}"
        for c in sorted(health.components, key=lambda c: order[c.status])
    ]


def _member_lines(members: list[MemberRow]) -> str:
    """Every member by name with its latest score, silent ones marked: as many as fit the
    field, then how many more."""
    lines = []
    for member in sorted(members, key=lambda m: m.name):
        check = member.health
        line = (
            f"⚪ {member_name(member.name)} · no check yet"
            if check is None
            else f"{score_icon(check.score)} {member_name(member.name)} · {check.score}/100"
        )
        lines.append(line + (" · 💤 silent" if member.silent else ""))
    return fit_lines(lines)
