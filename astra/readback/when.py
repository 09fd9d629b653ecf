"""Points in time as a user writes them, and Discord snowflakes as points in time."""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

# Discord's epoch (2015-01-01T00:00:00Z) in milliseconds; a snowflake's top 42 bits count
# milliseconds since then.
DISCORD_EPOCH_MS = 1_420_070_400_000
_SPAN = re.compile(r"(\d{1,9})([smhdw])")
_SPAN_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class WhenError(ValueError):
    """A point in time that cannot be read; the message says what is accepted."""


def parse_when(text: str, tz: ZoneInfo, now: float | None = None) -> float:
    """Unix seconds for ``text``: RFC 3339, a date (local midnight in ``tz``) or a span back.

    ``90m``, ``6h``, ``3d`` and ``2w`` are spans back from ``now``.
    """
    now = time.time() if now is None else now
    value = text.strip()
    if span := _SPAN.fullmatch(value):
        return now - int(span.group(1)) * _SPAN_SECONDS[span.group(2)]
    if len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise WhenError(
            f"{text!r}: expected RFC 3339 (2026-11-29T14:00:00Z), a date (2026-11-29) "
            "or a span back from now (90m, 6h, 3d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.timestamp()


def snowflake_at(ts: float) -> int:
    """The smallest snowflake Discord could give a message posted at ``ts`` (unix seconds)."""
    return max(0, int(ts * 1000) - DISCORD_EPOCH_MS) << 22


def snowflake_time(snowflake: int) -> float:
    """When a snowflake was made, in unix seconds."""
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000


def local_day_bounds(day: date, at: str, tz: ZoneInfo) -> tuple[float, float]:
    """The span a daily report sent at local ``at`` on ``day`` covers: from the previous
    day's ``at`` to this one's."""
    hour, minute = (int(x) for x in at.split(":"))
    end = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
    before = day - timedelta(days=1)
    start = datetime(before.year, before.month, before.day, hour, minute, tzinfo=tz)
    return start.timestamp(), end.timestamp()
