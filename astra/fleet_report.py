"""The fleet's one daily report, kept by whichever member posts for the fleet.

Members keep no report of their own. While a member holds the lease, it folds every
member's events as they pass the poster's bus; when it takes the lease over (at start, or
after the last poster died) it first reads the day's posts back from the channels, where
every member's events went. If the last poster went away around the report time without
making the day's report, the new one reads that whole day back and makes it late. A key in
Redis (``Fleet.first_to_report``) makes each day's report once, whoever posts. The report is
one of this member's own events: it reaches #diagnostics through Redis like any other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import aiohttp
import anyio

from astra.collectors.report import CHECK_INTERVAL_S, DailyReportCollector
from astra.config import Config
from astra.day_readback import DayPlan, DayReadBack, LiveIds, clock, plan_day
from astra.events import Event, Report, Subscribe
from astra.readback.when import local_day_bounds
from astra.sinks.ratelimit import RateLimiter

if TYPE_CHECKING:
    from astra.fleet.node import Fleet

log = logging.getLogger("astra")

# A report missed at the report time is made late only this soon after it: later, the
# operator rebuilds it with `astra report --date D --post`.
CATCH_UP_S = 3600.0


class FleetReport:
    """The fleet's daily report for each lease this member holds (``Fleet.on_lease``)."""

    def __init__(
        self,
        config: Config,
        fleet: Fleet,
        session: aiohttp.ClientSession,
        limiter: RateLimiter,
        emit: Callable[[Event], object],
    ) -> None:
        self._config = config
        self._fleet = fleet
        self._session = session
        self._limiter = limiter
        self._emit = emit
        self._tz = ZoneInfo(config.collectors.report.timezone)
        self.report: DailyReportCollector | None = None

    def _read_back(self) -> DayReadBack:
        return DayReadBack(
            self._config, self._session, self._limiter, emit=self._emit, label="fleet report"
        )

    async def run(self, subscribe: Subscribe) -> None:
        """Keep the report for as long as the lease lasts (cancelled with it)."""
        on = self._config.collectors.report
        report = DailyReportCollector(on.time, on.timezone, routes=self._config.routes)
        live = LiveIds()
        subscribe(report.observe_many, None)
        subscribe(live.observe, None)
        takeover = time.time()
        self.report = report
        try:
            plan = plan_day(self._config, takeover) if self._config.recovery.enabled else []
            if isinstance(plan, DayPlan):
                live.start()
                reported: set[str] = set()

                def restore(batch: Sequence[Event]) -> None:
                    reported.update(e.day for e in batch if isinstance(e, Report))
                    report.fold(live.unseen(batch))

                try:
                    counted_from, coverage = await self._read_back().run(
                        plan, before=takeover, restore=restore
                    )
                    poster = self._fleet.poster
                    if poster is not None:
                        # What a dead poster posted but never acknowledged is read back and
                        # claimed again: ids are compared until the claim is through.
                        await poster.took_over.wait()
                finally:
                    live.stop()
                report.recovered(counted_from, coverage)
                await self._catch_up(plan, takeover, reported)
            elif plan:
                now = clock(takeover, self._tz)
                why = f"reading the day back needs {', '.join(plan)}"
                log.info("fleet report: counted from %s, when this member became the poster", now)
                report.recovered(
                    takeover,
                    f"counted from {now}, when {self._fleet.member} became the poster; {why}",
                )
            while True:
                for event in report.collect():
                    if isinstance(event, Report) and not await self._fleet.first_to_report(
                        event.day
                    ):
                        log.info("fleet report: %s's report was already made", event.day)
                        continue
                    self._emit(event)
                # Checked right at the report time too: a poster change just after it must
                # find the report made.
                await anyio.sleep(min(CHECK_INTERVAL_S, max(0.5, report.due - time.time())))
        finally:
            self.report = None

    async def _catch_up(self, plan: DayPlan, takeover: float, reported: set[str]) -> None:
        """Make the previous day's report late when the poster changed around the report
        time and nobody made it."""
        due = plan.start  # the current day began when the previous day's report was due
        day = datetime.fromtimestamp(due, self._tz).date()
        if takeover - due > CATCH_UP_S or day.isoformat() in reported:
            return
        if not await self._fleet.first_to_report(day.isoformat()):
            return  # made by the poster before, and on its way through Redis
        on = self._config.collectors.report
        start, _ = local_day_bounds(day, on.time, self._tz)
        previous = DailyReportCollector(
            on.time, on.timezone, wall_clock=lambda: due, routes=self._config.routes
        )
        previous.due = due
        whole = DayPlan(start=start, since=clock(start, self._tz), channels=plan.channels)
        counted_from, coverage = await self._read_back().run(
            whole, before=takeover, end=due, restore=previous.fold
        )
        late = f"made late by {self._fleet.member}: the poster changed at the report time"
        previous.recovered(counted_from, "; ".join(filter(None, (coverage, late))))
        log.info("fleet report: %s's report %s", day.isoformat(), late)
        self._emit(previous.build(due))
