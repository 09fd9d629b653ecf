"""The health check on the diagnostics channel: score, why not 100, what to do, components."""

from __future__ import annotations

from astra.events import Health
from astra.sinks.messages import Embed, cut, escape_text
from astra.sinks.render.format import (
    COLOR_CRITICAL,
    COLOR_ERROR,
    COLOR_OK,
    COLOR_WARNING,
    line_fields,
    pack_embeds,
    ts_markup,
)

STATUS_ICONS = {"ok": "🟢", "warning": "🟡", "error": "🔴", "off": "⚪"}


def score_color(score: int) -> int:
    """Green from 90, yellow from 70, orange from 40, red below."""
    if score >= 90:
        return COLOR_OK
    if score >= 70:
        return COLOR_WARNING
    return COLOR_ERROR if score >= 40 else COLOR_CRITICAL


def score_icon(score: int) -> str:
    """The score's colour as a dot: 🟢 from 90, 🟡 from 70, 🟠 from 40, 🔴 below."""
    if score >= 90:
        return "🟢"
    if score >= 70:
        return "🟡"
    return "🟠" if score >= 40 else "🔴"


def score_bar(score: int) -> str:
    """The score as ten blocks: ``███████░░░`` for 70 to 79."""
    return "█" * (score // 10) + "░" * (10 - score // 10)


def render_health(health: Health, checks: int = 1) -> list[Embed]:
    """A health event: score, reasons, recommendations, components."""
    lines = [f"`{score_bar(health.score)}` checked {ts_markup(health.time, 'R')}"]
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
        color=score_color(health.score),
    )
    return pack_embeds(embed, line_fields("Components", component_lines))
