"""The hourly performance digest on the performance channel: totals, then its charts."""

from __future__ import annotations

from astra.events import Digest
from astra.sinks.messages import Embed
from astra.sinks.render.charts import chart_embeds
from astra.sinks.render.format import COLOR_INFO, ts_markup
from astra.units import fmt_duration, fmt_int


def render_digest(digest: Digest) -> list[Embed]:
    """A header with the period's totals, and one embed per chart."""
    head = Embed(
        title=f"📊 performance digest · last {fmt_duration(digest.window_s)}",
        description=(
            f"{ts_markup(digest.start, 't')} → {ts_markup(digest.end, 't')} · "
            f"{fmt_int(digest.events)} events · {fmt_int(digest.commands)} commands · "
            f"{fmt_int(digest.errors)} errors"
        ),
        color=COLOR_INFO,
    )
    return [head, *chart_embeds(digest, digest.charts, COLOR_INFO)]
