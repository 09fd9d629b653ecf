"""The diagnostics channel: is the bot and the pipeline healthy.

Lifecycle, configuration and the pipeline's own trouble here; the health check and the
daily report, which also come on this channel, in ``health`` and ``report``.
"""

from __future__ import annotations

from collections import Counter

from astra.events import BOT_LIFECYCLE_PREFIX, ConfigLoaded, Health, Lifecycle, Pipeline, Report
from astra.sinks.messages import FIELD_VALUE_MAX, Embed, Field, code_block, cut, escape_text
from astra.sinks.render.fleet import latest_health, render_fleet_health, worst_member
from astra.sinks.render.format import (
    COLOR_OK,
    COLOR_WARNING,
    header,
    other_events,
    pack_embeds,
    table,
    ts_markup,
    worse_color,
)
from astra.sinks.render.health import render_health, score_color
from astra.sinks.render.report import render_report
from astra.streams.windows import Window
from astra.units import fmt_int, fmt_num

# Kinds this summary shows; any other is only counted.
_SHOWN = ("lifecycle", "config", "pipeline", "health", "report")
# Lifecycle lines listed one by one; earlier ones are only counted.
LIFECYCLE_SHOWN = 15
_NOT_COUNTERS = frozenset({"seq", "window_s"})


def render_diagnostics(window: Window) -> list[Embed]:
    """Is the bot and the pipeline healthy: health, daily report, lifecycle, configuration."""
    events = window.events
    fields = _lifecycle_fields([e for e in events if isinstance(e, Lifecycle)])
    fields += [_config_field(e) for e in events if isinstance(e, ConfigLoaded)]
    stats = [e for e in events if isinstance(e, Pipeline)]
    totals = _window_totals(stats)
    if stats:
        fields += _pipeline_fields(totals, stats[-1])
    fields += other_events(events, _SHOWN)
    trouble = sum(v for k, v in totals.items() if k != "received")
    color = COLOR_WARNING if trouble or window.dropped_before else COLOR_OK
    health = [e for e in events if isinstance(e, Health)]
    # Checks from fleet members (stamped with their names) make one fleet health.
    fleet = any(e.host for e in health)
    if health:
        worst = worst_member(latest_health(health)) if fleet else None
        score = worst[1].score if worst is not None else health[-1].score
        color = worse_color(color, score_color(score))
    embeds = pack_embeds(header(window, color), fields)
    if health:
        embeds += render_fleet_health(health) if fleet else render_health(health[-1], len(health))
    for report in (e for e in events if isinstance(e, Report)):
        embeds += render_report(report)
    return embeds


def _lifecycle_fields(life: list[Lifecycle]) -> list[Field]:
    # Ingest only lets a bot send gateway.* actions: those are the bot's, shown apart and
    # never in bold, so nothing from the network reads like astra's own lines.
    own = [e for e in life if not e.action.startswith(BOT_LIFECYCLE_PREFIX)]
    bot = [e for e in life if e.action.startswith(BOT_LIFECYCLE_PREFIX)]
    fields = [Field("Lifecycle", _lifecycle_lines(own, bold=True))] if own else []
    if bot:
        fields.append(Field("Bot gateway", _lifecycle_lines(bot, bold=False)))
    return fields


def _lifecycle_lines(life: list[Lifecycle], *, bold: bool) -> str:
    lines = []
    for life_ev in life[-LIFECYCLE_SHOWN:]:
        where = f" [{escape_text(life_ev.channel)}]" if life_ev.channel else ""
        action, detail = escape_text(life_ev.action), escape_text(life_ev.detail)
        source = f" ({escape_text(life_ev.source)})" if life_ev.source and not bold else ""
        action = f"**{action}**" if bold else action
        lines.append(f"{ts_markup(life_ev.time)} {action}{where}{source} {detail}")
    if len(life) > LIFECYCLE_SHOWN:
        lines.insert(0, f"… {len(life) - LIFECYCLE_SHOWN} earlier")
    return cut("\n".join(lines), FIELD_VALUE_MAX)


def _config_field(config: ConfigLoaded) -> Field:
    channel_rows = [(name, mode) for name, mode in sorted(config.channels.items())]
    return Field(
        "Configuration",
        f"flush every {fmt_num(config.flush_interval)} s\n"
        + code_block(table(channel_rows, ("channel", "posts via"))),
    )


def _window_totals(stats: list[Pipeline]) -> Counter[str]:
    """The pipeline's counters added up over the window's reports."""
    totals: Counter[str] = Counter()
    for stat in stats:
        for name in stat.__struct_fields__:
            value = getattr(stat, name)
            # The window's changes add up; the *_total figures are since start.
            if name not in _NOT_COUNTERS and not name.endswith("_total") and type(value) is int:
                totals[name] += value
    return totals


def _pipeline_fields(totals: Counter[str], latest: Pipeline) -> list[Field]:
    trouble_rows = [(k.replace("_", " "), fmt_int(v)) for k, v in totals.items() if v]
    fields = [Field("Pipeline trouble", code_block(table(trouble_rows)))]
    since_start = [
        ("dropped (memory bound)", latest.dropped_buffer_total),
        ("dropped by the kernel", latest.kernel_drops_total),
        ("undeliverable", latest.undeliverable_total),
    ] + [(f"dropped in #{name}", n) for name, n in sorted(latest.dropped_by_channel.items())]
    rows = [(label, fmt_int(n)) for label, n in since_start if n]
    if rows:
        fields.append(Field("Lost since start", code_block(table(rows))))
    return fields
