"""Rendering: a closed window becomes embeds a person can read at a glance.

Each channel gets its own summary (counts, top items, grouped errors), one module a
channel; the raw events go in the attachment. All text that came from an event is
escaped here. ``format`` holds what the channels share.
"""

from __future__ import annotations

from collections.abc import Callable

from astra.sinks.messages import Embed
from astra.sinks.render.analytics import render_analytics
from astra.sinks.render.diagnostics import render_diagnostics
from astra.sinks.render.fleet import fleet_embeds
from astra.sinks.render.logs import render_logs
from astra.sinks.render.names import NameBook
from astra.sinks.render.performance import render_performance
from astra.streams.windows import Window

RENDERERS: dict[str, Callable[[Window], list[Embed]]] = {
    "analytics": render_analytics,
    "diagnostics": render_diagnostics,
    "logs": render_logs,
    "performance": render_performance,
}


def render_window(window: Window, names: NameBook | None = None) -> list[Embed]:
    """Embeds that summarise a window for its channel (diagnostics' for any other name).

    ``names`` shows guilds and channels by name where the sidecar learned them. Events from
    more than one fleet member add a per-member embed; a window's note (a degraded fleet
    member posting by itself) is shown on the last embed.
    """
    renderer = RENDERERS.get(window.channel, render_diagnostics)
    embeds = render_analytics(window, names) if renderer is render_analytics else renderer(window)
    return fleet_embeds(window, embeds)
