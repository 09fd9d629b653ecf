"""Every built-in collector, built from the configuration and run on one scheduler.

The sidecar hands over how to emit, how to subscribe to the bus (the projections listen to
every event) and how to take a snapshot of its statistics (the performance and health
collectors read it). Nothing here posts, or knows about the bus or sinks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from astra.collectors.alerts import AlertBook
from astra.collectors.digest import DigestCollector
from astra.collectors.errors import ErrorsCollector
from astra.collectors.files import FilesCollector, file_label
from astra.collectors.health import HealthCollector
from astra.collectors.mutes import Mutes
from astra.collectors.performance import PerformanceCollector
from astra.collectors.process import ProcessCollector, locator
from astra.collectors.recent import RecentProblems
from astra.collectors.report import CHECK_INTERVAL_S, DailyReportCollector
from astra.collectors.schedule import Emit, Scheduler
from astra.collectors.system import SystemCollector
from astra.config import Config
from astra.events import (
    Alert,
    Event,
    File,
    Listener,
    Performance,
    Process,
    Subscribe,
    System,
)
from astra.statistics import SidecarStatistics

# What the errors and health collectors fold: the collectors' own readings, a few a minute.
READINGS: tuple[type[Event], ...] = (System, Performance, Process, File)


def one_by_one(observe: Callable[[Event], None]) -> Listener:
    """A bus listener handing each event of a batch to ``observe`` (for rare events)."""

    def listener(events: Sequence[Event]) -> None:
        for event in events:
            observe(event)

    return listener


class _AfterRecovery:
    """Runs a collector only once the day's history is restored (no alert fired twice)."""

    def __init__(self, inner: ErrorsCollector, ready: Callable[[], bool]) -> None:
        self.name = inner.name
        self._inner = inner
        self._ready = ready

    def collect(self) -> list[Event]:
        """The inner collector's events, once recovery is over; nothing before."""
        return self._inner.collect() if self._ready() else []


class Collectors:
    """The configured collectors and the scheduler that runs them."""

    def __init__(
        self,
        config: Config,
        *,
        emit: Emit,
        subscribe: Subscribe,
        snapshot: Callable[[], SidecarStatistics],
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        daily_report: bool = True,
    ) -> None:
        """``daily_report``: whether this sidecar keeps the daily report (in a fleet, the
        poster keeps the fleet's, outside these collectors)."""
        on = config.collectors
        self.scheduler = Scheduler(emit, clock=clock, wall_clock=wall_clock)
        self.mutes = Mutes(wall_clock)
        self.alerts = AlertBook(config.alerts.cooldown, wall_clock, mutes=self.mutes)
        # What the control endpoint answers from (None: that collector is off).
        self.recent = RecentProblems(wall_clock=wall_clock)
        subscribe(self.recent.observe_many, self.recent.kinds)
        self.health: HealthCollector | None = None
        self.report: DailyReportCollector | None = None
        self.processes: ProcessCollector | None = None
        self._recovering = False
        watch = config.watch
        if on.system.enabled:
            system = SystemCollector(on.system.mounts, clock=clock, wall_clock=wall_clock)
            # psutil and statvfs can block on a slow mount: off the event loop.
            self.scheduler.add(system, on.system.interval, in_thread=True)
        if on.process.enabled:
            # Scanning command lines and reading pid files and sockets can block; it holds
            # no shared state (process_down is decided by the errors collector).
            processes = ProcessCollector(watch.process, clock=clock, wall_clock=wall_clock)
            self.processes = processes
            self.scheduler.add(processes, on.process.interval, in_thread=True)
        if on.files.enabled and watch.file:
            files = FilesCollector(watch.file, clock=clock, wall_clock=wall_clock)
            self.scheduler.add(files, on.files.interval, in_thread=True)
        if on.performance.enabled:
            performance = PerformanceCollector(snapshot, clock)
            subscribe(performance.observe_many, performance.kinds)
            self.scheduler.add(performance, on.performance.interval)
        if on.errors.enabled:
            checks = ErrorsCollector(
                config.alerts,
                self.alerts,
                rss_limits_mib={p.name: p.rss_limit_mib for p in watch.process if p.rss_limit_mib},
                growth_limits_mib_per_day={
                    file_label(f): f.growth_limit_mib_per_day
                    for f in watch.file
                    if f.growth_limit_mib_per_day
                },
                process_locators={p.name: locator(p) for p in watch.process},
                input_intervals={
                    "system": on.system.interval,
                    "process": on.process.interval,
                    "files": on.files.interval,
                    "performance": on.performance.interval,
                },
                clock=wall_clock,
            )
            subscribe(one_by_one(checks.observe), READINGS)
            self.scheduler.add(
                _AfterRecovery(checks, lambda: not self._recovering), on.errors.interval
            )
        if on.health.enabled:
            ingest = {
                "http": "" if config.ingest.http == "off" else config.ingest.http,
                "udp": "" if config.ingest.udp == "off" else config.ingest.udp,
            }
            health = HealthCollector(
                self.alerts,
                snapshot,
                ingest=ingest,
                flush_interval_s=config.flush.interval,
                wall_clock=wall_clock,
            )
            subscribe(one_by_one(health.observe), READINGS)
            self.scheduler.add(health, on.health.interval)
            self.health = health
        if on.report.enabled and daily_report:
            report = DailyReportCollector(
                on.report.time, on.report.timezone, wall_clock=wall_clock, routes=config.routes
            )
            subscribe(report.observe_many, report.kinds)
            self.scheduler.add(report, CHECK_INTERVAL_S)
            self.report = report
        if on.digest.enabled:
            digest = DigestCollector(
                config.routes,
                window_s=on.digest.interval,
                timezone=on.report.timezone,
                wall_clock=wall_clock,
            )
            subscribe(digest.observe_many, digest.kinds)
            self.scheduler.add(digest, on.digest.interval)

    def hold(self) -> None:
        """The day's history is about to be read back: alerts and the report wait for it."""
        self._recovering = True
        if self.report is not None:
            self.report.hold()

    def restore(self, events: Sequence[Event]) -> None:
        """Fold events read back from the channels (oldest first) into the projections,
        through the same fold as live events."""
        if self.report is not None:
            self.report.fold(events)
        self.alerts.restore([e for e in events if isinstance(e, Alert)])
        if self.processes is not None:
            self.processes.restore([e for e in events if isinstance(e, Process)])

    def recovered(self, counted_from: float, coverage: str = "") -> None:
        """Recovery is over (or not possible): the report counts from ``counted_from``."""
        self._recovering = False
        if self.report is not None:
            self.report.recovered(counted_from, coverage)

    async def run(self) -> None:
        """Run every enabled collector until cancelled."""
        await self.scheduler.run()
