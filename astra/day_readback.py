"""Reading the report day back from the channels into the projections.

Two callers: a sidecar that starts (its report, alert state and watched processes go on
from the day's posts) and, in a fleet, a member that becomes the poster (the fleet's
report goes on from every member's posts). Both read the posts made since the report
day began and before a moment (the start, the takeover), fold them oldest first through
the live fold, and say what they read, or why they could not, on stderr and in
#diagnostics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import aiohttp
import msgspec

from astra.collectors.report import next_report_time
from astra.config import CHANNELS, Config, history_gaps
from astra.errors import DiscordApiError
from astra.events import Event, Lifecycle
from astra.readback.history import ChannelHistory
from astra.readback.recovery import SpanReader
from astra.readback.source import channel_histories, unreadable
from astra.readback.when import local_day_bounds, snowflake_at
from astra.sinks.discord_read import DiscordReader
from astra.sinks.ratelimit import RateLimiter

log = logging.getLogger("astra")

# Problems found while reading history back that are also posted (all go to stderr).
MAX_NOTICES = 20
# Live event ids remembered while reading back (it takes seconds; this bounds a flood).
MAX_LIVE_IDS = 1_000_000


class DayPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What to read back: the report day's start, as a unix time and as readers see it."""

    start: float
    since: str  # HH:MM local
    channels: list[str]  # the channels whose history can be read


class LiveIds:
    """Bus listener: the ids of live events seen while the day is read back (bounded), so
    that an event both posted before and arriving live counts once."""

    def __init__(self) -> None:
        self.ids: set[str] | None = None

    def start(self) -> None:
        """Remember live ids from now on."""
        self.ids = set()

    def stop(self) -> None:
        """Stop remembering, and forget."""
        self.ids = None

    def observe(self, events: Sequence[Event]) -> None:
        """Bus listener (every kind)."""
        ids = self.ids
        if ids is not None and len(ids) < MAX_LIVE_IDS:
            ids.update(e.id for e in events)

    def unseen(self, events: Sequence[Event]) -> list[Event]:
        """``events`` without those already seen live."""
        ids = self.ids or set()
        return [e for e in events if e.id not in ids]


def clock(ts: float, tz: ZoneInfo) -> str:
    """``HH:MM`` local time, as the report's readers see it."""
    return datetime.fromtimestamp(ts, tz).strftime("%H:%M")


def plan_day(config: Config, at: float) -> DayPlan | list[str]:
    """The report day around ``at`` and the channels to read it from; or, when the history
    cannot be read, the settings that are missing (empty when every channel only previews:
    nothing was ever posted, so there is nothing to say)."""
    report = config.collectors.report
    tz = ZoneInfo(report.timezone)
    due = next_report_time(at, report.time, tz)
    start, _ = local_day_bounds(datetime.fromtimestamp(due, tz).date(), report.time, tz)
    unread = unreadable(config, list(CHANNELS))
    readable = [n for n in CHANNELS if n not in unread]
    missing = history_gaps(config, readable or list(CHANNELS))
    if not missing:
        return DayPlan(start=start, since=clock(start, tz), channels=readable)
    if all(channel.mode == "preview" for channel in config.channels.values()):
        return []
    return missing


class DayReadBack:
    """One reading of the day's posts back into projections."""

    def __init__(
        self,
        config: Config,
        session: aiohttp.ClientSession,
        limiter: RateLimiter,
        *,
        emit: Callable[[Event], object],
        label: str = "recovery",
    ) -> None:
        """``label`` starts every line it logs (``recovery``, ``fleet report``)."""
        self._config = config
        self._session = session
        self._limiter = limiter
        self._emit = emit
        self._label = label
        # The lifecycle lines of a start's recovery say just what was read.
        self._prefix = "" if label == "recovery" else f"{label}: "
        self._notices = 0

    def _notice(self, line: str) -> None:
        self._notices += 1
        log.warning("%s: %s", self._label, line)
        if self._notices <= MAX_NOTICES:
            self._emit(Lifecycle(action="history_damage", detail=line))

    async def run(
        self,
        plan: DayPlan,
        *,
        before: float,
        restore: Callable[[Sequence[Event]], None],
        skip_run: str = "",
        end: float | None = None,
    ) -> tuple[float, str]:
        """Read the posts from the day's start until ``before`` (unix s), skipping the
        attachments of run ``skip_run``, and hand each batch to ``restore``, oldest first
        (``end``: only events before it).

        Returns the time the day now counts from and what the report should say about its
        coverage ("" when the whole day was read)."""
        config = self._config
        began = time.monotonic()
        tz = ZoneInfo(config.collectors.report.timezone)
        reader = DiscordReader(
            self._session, config.discord.api_base, self._limiter, bot_token=config.discord.token
        )
        bounds = config.recovery
        span: SpanReader | None = None
        counted_from, coverage, failure = plan.start, "", ""
        histories: list[ChannelHistory] = []
        try:
            histories = await channel_histories(config, reader, plan.channels, notice=self._notice)
            span = SpanReader(
                reader,
                histories,
                start=plan.start,
                end=end,
                before=snowflake_at(before),
                max_messages=bounds.max_messages,
                max_bytes=bounds.max_bytes,
                notice=self._notice,
                skip_run=skip_run,
            )
            async for events in span.events():
                restore(events)
        except DiscordApiError as exc:
            failure = str(exc)
        read_some = span is not None and span.batches.totals.events > 0
        if failure and read_some:
            coverage = f"history read only in part ({failure}): counts may be low"
        elif failure:
            counted_from = before
            coverage = f"counted from {clock(before, tz)}; history not read: {failure}"
        elif span is not None and not span.coverage.complete:
            counted_from = span.coverage.counted_from
            coverage = (
                f"counted from {clock(counted_from, tz)}; earlier history not read "
                "(recovery.max_messages / recovery.max_bytes)"
            )
        unread = unreadable(config, list(CHANNELS))
        if unread:
            skipped = ", ".join(f"#{name} ({why})" for name, why in unread.items())
            coverage = "; ".join(filter(None, (coverage, f"not read back: {skipped}")))
        if failure:
            log.warning("%s: %s; today's report counts from now", self._label, failure)
            self._emit(Lifecycle(action="recovery_failed", detail=self._prefix + failure))
            return counted_from, coverage
        assert span is not None
        totals = span.batches.totals
        fetched = sum(h.fetched for h in histories)
        way = (
            f"{fetched:,} posts fetched through the webhook (no Message Content intent)"
            if fetched
            else "attachments from the channel listing"
        )
        detail = (
            f"read {totals.posts:,} posts, {totals.events:,} events since {plan.since} in "
            f"{time.monotonic() - began:.1f} s; {way}"
            + (f"; {coverage}" if coverage else "")
            + (f"; {self._notices} problems (stderr)" if self._notices else "")
        )
        log.info("%s: %s", self._label, detail)
        self._emit(Lifecycle(action="recovered", detail=self._prefix + detail))
        return counted_from, coverage
