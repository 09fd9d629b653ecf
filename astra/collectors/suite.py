"""Every built-in collector, built from the configuration and run on one scheduler.

The sidecar hands over how to emit, the bus (projections subscribe to it, and its
per-channel backlog feeds the health check), the pipeline's counters and a probe of its
live figures. Nothing here posts or knows about sinks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from astra.collectors.alerts import AlertBook
from astra.collectors.errors import ErrorsCollector
from astra.collectors.files import FilesCollector, file_label
from astra.collectors.health import HealthCollector
from astra.collectors.performance import PerformanceCollector
from astra.collectors.process import ProcessCollector, locator
from astra.collectors.report import CHECK_INTERVAL_S, DailyReportCollector
from astra.collectors.schedule import Emit, Scheduler
from astra.collectors.system import SystemCollector
from astra.config import Config
from astra.stats import PipelineStats
from astra.streams.bus import Bus


class Collectors:
    """The configured collectors and the scheduler that runs them."""

    def __init__(
        self,
        config: Config,
        emit: Emit,
        bus: Bus,
        stats: PipelineStats,
        probe: Callable[[], Mapping[str, Any]],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        on = config.collectors
        self.scheduler = Scheduler(emit, clock, wall_clock)
        self.alerts = AlertBook(config.alerts.cooldown, wall_clock)
        watch = config.watch
        if on.system.enabled:
            system = SystemCollector(on.system.mounts, clock, wall_clock)
            # psutil and statvfs can block on a slow mount: off the event loop.
            self.scheduler.add(system, on.system.interval, in_thread=True)
        if on.process.enabled:
            # Scanning command lines and reading pid files and sockets can block; it holds
            # no shared state (process_down is decided by the errors collector).
            processes = ProcessCollector(watch.process, clock, wall_clock)
            self.scheduler.add(processes, on.process.interval, in_thread=True)
        if on.files.enabled and watch.file:
            self.scheduler.add(
                FilesCollector(watch.file, clock, wall_clock), on.files.interval, in_thread=True
            )
        if on.performance.enabled:
            performance = PerformanceCollector(stats, probe, clock)
            bus.subscribe(performance.observe)
            self.scheduler.add(performance, on.performance.interval)
        if on.errors.enabled:
            checks = ErrorsCollector(
                config.alerts,
                self.alerts,
                {p.name: p.rss_limit_mib for p in watch.process if p.rss_limit_mib},
                {
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
            bus.subscribe(checks.observe)
            self.scheduler.add(checks, on.errors.interval)
        if on.health.enabled:
            ingest = {
                "http": "" if config.ingest.http == "off" else config.ingest.http,
                "udp": "" if config.ingest.udp == "off" else config.ingest.udp,
            }
            health = HealthCollector(
                self.alerts,
                self.scheduler.status,
                stats,
                probe,
                lambda: {name: len(stream) for name, stream in bus.streams.items()},
                ingest=ingest,
                flush_interval_s=config.flush.interval,
                wall_clock=wall_clock,
            )
            bus.subscribe(health.observe)
            self.scheduler.add(health, on.health.interval)
        if on.report.enabled:
            report = DailyReportCollector(on.report.time, on.report.timezone, wall_clock)
            bus.subscribe(report.observe)
            self.scheduler.add(report, CHECK_INTERVAL_S)

    async def run(self) -> None:
        """Run every enabled collector until cancelled."""
        await self.scheduler.run()
