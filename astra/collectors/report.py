"""The daily report: a projection of the day's events, sent at a local time in a time zone.

Everything in it is folded from events as they pass on the bus (counts by kind, commands,
guilds, problems by fingerprint, alerts, host and process figures, delivery figures from the
``performance`` events), not read from counters kept beside them. The schedule runs on an
injected wall clock: ``collect()`` is cheap and sends the report once the configured time
has passed, so it can be checked often and tested without sleeping.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

from astra.events import (
    Alert,
    Command,
    Event,
    Message,
    Performance,
    Process,
    ProcessDay,
    Ranked,
    Reaction,
    Report,
    System,
    Voice,
)
from astra.problems import ProblemFold
from astra.streams.router import route_key

TOP_N = 10
# Bounds on what a day can hold, whatever the bot sends.
MAX_KEYS = 20_000
MAX_PROBLEM_GROUPS = 1000
SAMPLE_CHARS = 500
# How often the scheduler asks whether the report is due.
CHECK_INTERVAL_S = 30.0


def next_report_time(after: float, at: str, tz: ZoneInfo) -> float:
    """The first moment strictly after ``after`` (unix s) when the local clock shows ``at``.

    ``at`` is ``HH:MM``. On a day when that local time does not exist (a DST gap) it falls
    at the same offset past the gap, as ``zoneinfo`` resolves it.
    """
    hour, minute = (int(x) for x in at.split(":"))
    local = datetime.fromtimestamp(after, tz)
    day = local.date()
    for offset in range(3):
        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz) + timedelta(
            days=offset
        )
        # Adding days to an aware datetime keeps the wall time; re-attach to get the offset.
        candidate = candidate.replace(tzinfo=None).replace(tzinfo=tz)
        if candidate.timestamp() > after:
            return candidate.timestamp()
    raise AssertionError("unreachable: a local time recurs within three days")


class _Day(msgspec.Struct, kw_only=True):
    kinds: Counter[str] = msgspec.field(default_factory=Counter)
    commands: Counter[str] = msgspec.field(default_factory=Counter)
    guilds: Counter[int] = msgspec.field(default_factory=Counter)
    problems: ProblemFold = msgspec.field(
        default_factory=lambda: ProblemFold(
            max_groups=MAX_PROBLEM_GROUPS, sample_chars=SAMPLE_CHARS
        )
    )
    alerts_fired: int = 0
    host_uptime_s: float | None = None
    peak_cpu: float | None = None
    peak_memory: float | None = None
    # name → [samples, running samples, restarts, peak rss]
    processes: dict[str, list[int]] = msgspec.field(default_factory=dict)
    delivered: int = 0
    delivery_p95: float | None = None
    retries: int = 0
    rate_limited: int = 0
    dropped: int = 0


class DailyReportCollector:
    """Folds the day's events; ``collect()`` emits the ``report`` once its time has come."""

    name = "report"

    def __init__(
        self,
        at: str = "23:00",
        timezone: str = "Europe/Berlin",
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.at = at
        self.timezone = timezone
        self._tz = ZoneInfo(timezone)
        self._clock = wall_clock
        self.start = wall_clock()
        self.due = next_report_time(self.start, at, self._tz)
        self._day = _Day()

    def observe(self, event: Event) -> None:
        """Bus listener: fold one event into the day."""
        day = self._day
        key = route_key(event)
        if key in day.kinds or len(day.kinds) < MAX_KEYS:
            day.kinds[key] += 1
        if isinstance(event, Command) and (
            event.name in day.commands or len(day.commands) < MAX_KEYS
        ):
            day.commands[event.name] += 1
        guild = getattr(event, "guild_id", None)
        if (
            isinstance(event, Message | Command | Reaction | Voice)
            and guild is not None
            and (guild in day.guilds or len(day.guilds) < MAX_KEYS)
        ):
            day.guilds[guild] += 1
        if day.problems.add(event):
            return  # a problem carries none of the figures below
        if isinstance(event, System):
            day.peak_cpu = max(day.peak_cpu or 0.0, event.cpu_percent)
            day.peak_memory = max(day.peak_memory or 0.0, event.memory_percent)
            day.host_uptime_s = event.uptime_s
        elif isinstance(event, Process):
            seen = day.processes.setdefault(event.name, [0, 0, 0, 0])
            seen[0] += 1
            seen[1] += event.running
            seen[2] += event.change in ("restarted", "returned")
            seen[3] = max(seen[3], event.rss_bytes)
        elif isinstance(event, Performance):
            day.delivered += event.delivered
            day.retries += event.retries
            day.rate_limited += event.rate_limited
            day.dropped += event.dropped
            if event.delivery_ms is not None:
                day.delivery_p95 = max(day.delivery_p95 or 0.0, event.delivery_ms.p95)
        elif isinstance(event, Alert) and event.state == "firing" and event.repeat == 0:
            day.alerts_fired += 1

    def collect(self) -> list[Event]:
        """The report, when its time has passed; otherwise nothing."""
        now = self._clock()
        if now < self.due:
            return []
        report = self.build(now)
        self._day = _Day()
        self.start = now
        self.due = next_report_time(now, self.at, self._tz)
        return [report]

    def build(self, now: float) -> Report:
        """The report of everything folded since the last one."""
        day = self._day
        return Report(
            source="astra",
            ts=now,
            day=datetime.fromtimestamp(self.due, self._tz).date().isoformat(),
            timezone=self.timezone,
            start=self.start,
            end=now,
            events=dict(day.kinds.most_common()),
            top_commands=[Ranked(n, c) for n, c in day.commands.most_common(TOP_N)],
            top_guilds=[Ranked(str(g), c) for g, c in day.guilds.most_common(TOP_N)],
            problems=[g.reported() for g in day.problems.ranked()[:TOP_N]],
            problem_total=day.problems.total,
            alerts_fired=day.alerts_fired,
            host_uptime_s=day.host_uptime_s,
            processes=[
                ProcessDay(
                    name=name,
                    up_percent=round(100.0 * up / samples, 1) if samples else 0.0,
                    restarts=restarts,
                    peak_rss_bytes=peak,
                )
                for name, (samples, up, restarts, peak) in sorted(day.processes.items())
            ],
            peak_cpu_percent=day.peak_cpu,
            peak_memory_percent=day.peak_memory,
            delivered=day.delivered,
            delivery_p95_ms=day.delivery_p95,
            retries=day.retries,
            rate_limited=day.rate_limited,
            dropped=day.dropped,
        )
