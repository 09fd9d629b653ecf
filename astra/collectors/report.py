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
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol, TypeVar, cast
from zoneinfo import ZoneInfo

import msgspec

from astra.collectors.trends import TrendFold
from astra.events import (
    Alert,
    Command,
    Error,
    Event,
    Guild,
    Log,
    MemberDay,
    Message,
    Performance,
    Process,
    ProcessDay,
    Ranked,
    Reaction,
    Report,
    System,
    Voice,
    route_key,
)
from astra.problems import ProblemFold

_K = TypeVar("_K")
TOP_N = 10
# Bounds on what a day can hold, whatever the bot sends.
MAX_KEYS = 20_000
MAX_PROBLEM_GROUPS = 1000
MAX_MEMBERS = 1000
SAMPLE_CHARS = 500
# How often the scheduler asks whether the report is due.
CHECK_INTERVAL_S = 30.0


# Events whose guild is counted among the day's top guilds.
_GUILD_KINDS: frozenset[type[Event]] = frozenset({Message, Command, Reaction, Voice})
# Events that may be problems or carry figures: folded one by one (the rest only counted;
# a command is a problem only when it failed, which the count already tells apart).
_FOLDED_ONE_BY_ONE: frozenset[type[Event]] = frozenset(
    {Error, Log, System, Process, Performance, Alert}
)


def _count(counter: Counter[_K], key: _K, n: int) -> None:
    """Add ``n`` to ``key``, unless the counter is full and the key new (bounded memory)."""
    if n and (key in counter or len(counter) < MAX_KEYS):
        counter[key] += n


def _ranked(counter: Counter[_K], n: int | None = None) -> list[tuple[_K, int]]:
    """Most counted first, ties by key: the same day gives the same report, whatever order
    its events were folded in (live, or read back after a restart)."""
    ranked = sorted(counter.items(), key=lambda item: (-item[1], str(item[0])))
    return ranked if n is None else ranked[:n]


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


class _GuildNamed(Protocol):
    """Message, command, voice and reaction events: a guild id and maybe its name."""

    guild_id: int | None
    guild_name: str | None


class _Member(msgspec.Struct, kw_only=True):
    events: int = 0
    problems: int = 0
    peak_cpu: float | None = None
    peak_memory: float | None = None
    uptime_s: float | None = None
    uptime_at: float = 0.0


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
    host_uptime_at: float = 0.0
    peak_cpu: float | None = None
    peak_memory: float | None = None
    # name → [samples, running samples, restarts, peak rss]
    processes: dict[str, list[int]] = msgspec.field(default_factory=dict)
    delivered: int = 0
    delivery_p95: float | None = None
    retries: int = 0
    rate_limited: int = 0
    dropped: int = 0
    # Fleet mode: each member's share, by the host events carry.
    members: dict[str, _Member] = msgspec.field(default_factory=dict)

    def member(self, host: str) -> _Member | None:
        """The day of member ``host`` ("" is a single sidecar's: None), while room lasts."""
        if not host:
            return None
        found = self.members.get(host)
        if found is None and len(self.members) < MAX_MEMBERS:
            found = self.members[host] = _Member()
        return found


class DailyReportCollector:
    """Folds the day's events; ``collect()`` emits the ``report`` once its time has come."""

    name = "report"

    def __init__(
        self,
        at: str = "23:00",
        timezone: str = "Europe/Berlin",
        wall_clock: Callable[[], float] = time.time,
        routes: Mapping[str, str] | None = None,
    ) -> None:
        self.at = at
        self.timezone = timezone
        self._tz = ZoneInfo(timezone)
        self._clock = wall_clock
        self.start = wall_clock()
        self.due = next_report_time(self.start, at, self._tz)
        self._day = _Day()
        # Guild names the bot sent (id → latest name), kept across days.
        self._guild_names: dict[int, str] = {}
        # The day hour by hour, for the report's charts (a day and a DST hour fit).
        self._trends = TrendFold(
            step_s=3600.0, max_buckets=26, routes=routes or {}, wall_clock=wall_clock
        )
        # While the day's history is being read back, the report waits for it.
        self._held = False
        self._coverage = ""

    # Every event counts in the report.
    kinds = None

    def observe(self, event: Event) -> None:
        """Fold one event into the day."""
        self.observe_many((event,))

    def observe_many(self, events: Sequence[Event]) -> None:
        """Bus listener: fold a batch of events of one type into the day (and its charts)."""
        self._trends.observe_many(events)
        self._observe_day(events)

    def _observe_day(self, events: Sequence[Event]) -> None:
        """Fold a batch of events of one type into the day.

        Counting runs over the whole batch at once; only the types that carry problems or
        figures are looked at one by one.
        """
        if not events:
            return
        day = self._day
        kind = type(events[0])
        if kind is Command:
            commands = [e for e in events if isinstance(e, Command)]
            ok = sum(1 for e in commands if e.ok)
            _count(day.kinds, "command.ok", ok)
            _count(day.kinds, "command.failed", len(commands) - ok)
            for name, n in Counter(e.name for e in commands).items():
                _count(day.commands, name, n)
            for failed in (e for e in commands if not e.ok):
                day.problems.add(failed)
        else:
            _count(day.kinds, route_key(events[0]), len(events))
        if kind in _GUILD_KINDS:
            guilds: Counter[int] = Counter(
                g for e in events if (g := getattr(e, "guild_id", None)) is not None
            )
            for guild, n in guilds.items():
                _count(day.guilds, guild, n)
        if kind in _GUILD_KINDS or kind is Guild:
            self._learn_names(events)
        if events[0].host or events[-1].host:
            self._count_members(events)
        if kind in _FOLDED_ONE_BY_ONE:
            for event in events:
                self._fold(event)

    def _count_members(self, events: Sequence[Event]) -> None:
        """Fleet mode: each member's events and failed commands (a poster's batch is
        usually one member's entry: counted at once)."""
        day = self._day
        hosts = (
            Counter({events[0].host: len(events)})
            if events[0].host == events[-1].host
            else Counter(e.host for e in events)
        )
        for host, n in hosts.items():
            member = day.member(host)
            if member is not None:
                member.events += n
        if isinstance(events[0], Command):
            for failed in (e for e in cast(Sequence[Command], events) if not e.ok):
                member = day.member(failed.host)
                if member is not None:
                    member.problems += 1

    def _learn_names(self, events: Sequence[Event]) -> None:
        names = self._guild_names
        # One pass without a call per event (the hot path: every message and command).
        pairs: set[tuple[int | None, str | None]]
        if isinstance(events[0], Guild):
            pairs = {(e.guild_id, e.name) for e in cast(Sequence[Guild], events) if e.name}
        else:
            named = cast(Sequence[_GuildNamed], events)
            pairs = {(e.guild_id, e.guild_name) for e in named if e.guild_name}
        for guild_id, name in pairs:
            if guild_id is not None and name and (guild_id in names or len(names) < MAX_KEYS):
                names[guild_id] = name

    def _fold(self, event: Event) -> None:
        day = self._day
        member = day.member(event.host)
        if day.problems.add(event):
            if member is not None:
                member.problems += 1
            return  # a problem carries none of the figures below
        if isinstance(event, System):
            day.peak_cpu = max(day.peak_cpu or 0.0, event.cpu_percent)
            day.peak_memory = max(day.peak_memory or 0.0, event.memory_percent)
            # Read-back folds older readings after live ones: the latest reading wins.
            if event.time >= day.host_uptime_at:
                day.host_uptime_s, day.host_uptime_at = event.uptime_s, event.time
            if member is not None:
                member.peak_cpu = max(member.peak_cpu or 0.0, event.cpu_percent)
                member.peak_memory = max(member.peak_memory or 0.0, event.memory_percent)
                if event.time >= member.uptime_at:
                    member.uptime_s, member.uptime_at = event.uptime_s, event.time
        elif isinstance(event, Process):
            # In a fleet, each member watches its own processes of the same names.
            name = f"{event.host}/{event.name}" if event.host else event.name
            seen = day.processes.setdefault(name, [0, 0, 0, 0])
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

    def fold(self, events: Sequence[Event]) -> None:
        """Fold events read back from the channels, in order, through the live fold."""
        run: list[Event] = []
        for event in events:
            if run and type(event) is not type(run[0]):
                self._replay(run)
                run = []
            run.append(event)
        self._replay(run)

    def _replay(self, events: Sequence[Event]) -> None:
        if events:
            # Read-back events go in the chart buckets of their own time, not of now.
            self._trends.replay(events)
            self._observe_day(events)

    def hold(self) -> None:
        """Send no report until ``recovered``: the day's history is being read back."""
        self._held = True

    def recovered(self, counted_from: float, coverage: str = "") -> None:
        """The day is counted from ``counted_from`` (``coverage`` says why, when it is not the
        day's start); the report may go out again."""
        self.start = counted_from
        self._coverage = coverage
        self._held = False

    def collect(self) -> list[Event]:
        """The report, when its time has passed; otherwise nothing."""
        now = self._clock()
        if now < self.due or self._held:
            return []
        report = self.build(now)
        self._day = _Day()
        self._coverage = ""
        self.start = now
        self.due = next_report_time(now, self.at, self._tz)
        return [report]

    def build(self, now: float) -> Report:
        """The report of everything folded since the last one."""
        day = self._day
        top_guilds = _ranked(day.guilds, TOP_N)
        return Report(
            source="astra",
            ts=now,
            day=datetime.fromtimestamp(self.due, self._tz).date().isoformat(),
            timezone=self.timezone,
            start=self.start,
            end=now,
            events=dict(_ranked(day.kinds)),
            top_commands=[Ranked(n, c) for n, c in _ranked(day.commands, TOP_N)],
            top_guilds=[Ranked(str(g), c) for g, c in top_guilds],
            guild_names={
                str(g): self._guild_names[g] for g, _ in top_guilds if g in self._guild_names
            },
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
            charts=self._trends.charts(self.start, now, self._hour_label),
            coverage=self._coverage,
            members=[
                MemberDay(
                    name=name,
                    events=m.events,
                    problems=m.problems,
                    peak_cpu_percent=m.peak_cpu,
                    peak_memory_percent=m.peak_memory,
                    host_uptime_s=m.uptime_s,
                )
                for name, m in sorted(day.members.items())
            ],
        )

    def _hour_label(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self._tz).strftime("%H:%M")
