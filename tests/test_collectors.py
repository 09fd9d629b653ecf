"""Collectors against the real machine: psutil readings, a real child process, real files."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from astra.collectors.alerts import AlertBook
from astra.collectors.files import FilesCollector
from astra.collectors.performance import PerformanceCollector
from astra.collectors.process import ProcessCollector
from astra.collectors.schedule import Scheduler
from astra.collectors.system import SystemCollector
from astra.config import WatchFile, WatchProcess
from astra.events import Alert, Command, Error, Event, File, Latency, Performance, Process, System
from astra.stats import PipelineStats


class Clock:
    """A hand-driven clock."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def only(events: list[Event], kind: type[Event]) -> list[Event]:
    return [e for e in events if isinstance(e, kind)]


def test_system_collector_reads_this_machine() -> None:
    """CPU, cores, memory, a disk, network rates and uptime are plausible for this host."""
    collector = SystemCollector()
    sum(i * i for i in range(200_000))  # some CPU time between the two readings
    (event,) = collector.collect()
    assert isinstance(event, System)
    assert 0 <= event.cpu_percent <= 100
    assert event.cores == os.cpu_count() and len(event.per_cpu) == event.cores
    assert len(event.load) == 3
    assert 0 < event.memory_used_bytes < event.memory_total_bytes
    assert 0 < event.memory_percent < 100
    assert event.disks and all(d.total_bytes > 0 and 0 <= d.percent <= 100 for d in event.disks)
    assert event.uptime_s > 0
    (second,) = collector.collect()
    assert isinstance(second, System) and len(second.cpu_trend) == 2


@pytest.fixture
def child(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start sleeping children on demand; kill whatever is left at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def spawn(started: list[subprocess.Popen[bytes]], tag: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", tag])
    started.append(proc)
    return proc


def test_watched_process_killed_and_restarted(
    tmp_path: Path, child: list[subprocess.Popen[bytes]]
) -> None:
    """Killing the watched process raises a critical alert; its return resolves it once."""
    pid_file = tmp_path / "bot.pid"
    first = spawn(child, "astra-test-bot")
    pid_file.write_text(f"{first.pid}\n")
    clock = Clock()
    book = AlertBook(cooldown_s=300, clock=clock)
    collector = ProcessCollector([WatchProcess(name="bot", pid_file=str(pid_file))], book)

    events = collector.collect()
    procs = {e.name: e for e in only(events, Process) if isinstance(e, Process)}
    assert procs["bot"].running and procs["bot"].pid == first.pid
    assert procs["bot"].rss_bytes > 1_000_000 and procs["bot"].threads >= 1
    assert procs["astra"].pid == os.getpid() and procs["astra"].fds
    assert not only(events, Alert)

    first.kill()
    first.wait()
    clock.now += 60
    events = collector.collect()
    (gone,) = [e for e in only(events, Process) if isinstance(e, Process) and e.name == "bot"]
    assert not gone.running and gone.change == "gone"
    (alert,) = only(events, Alert)
    assert isinstance(alert, Alert)
    assert (alert.state, alert.severity, alert.subject) == ("firing", "critical", "process:bot")

    clock.now += 60
    assert not only(collector.collect(), Alert), "no repeat within the cooldown"

    second = spawn(child, "astra-test-bot")
    pid_file.write_text(f"{second.pid}\n")
    clock.now += 60
    events = collector.collect()
    (back,) = [e for e in only(events, Process) if isinstance(e, Process) and e.name == "bot"]
    assert back.running and back.change == "returned" and back.pid == second.pid
    assert back.restarts == 1
    (resolved,) = only(events, Alert)
    assert isinstance(resolved, Alert) and resolved.state == "resolved"
    assert resolved.since == 1_060.0


def test_watched_process_by_pattern_notices_a_restart(
    child: list[subprocess.Popen[bytes]],
) -> None:
    """A process found by command-line pattern that is replaced between runs counts a restart."""
    tag = f"astra-pattern-{os.getpid()}"
    first = spawn(child, tag)
    book = AlertBook(300)
    collector = ProcessCollector([WatchProcess(name="bot", pattern=tag)], book)
    (bot,) = [e for e in collector.collect() if isinstance(e, Process) and e.name == "bot"]
    assert bot.pid == first.pid
    first.kill()
    first.wait()
    second = spawn(child, tag)
    events = collector.collect()
    (bot,) = [e for e in events if isinstance(e, Process) and e.name == "bot"]
    assert (bot.pid, bot.change, bot.restarts) == (second.pid, "restarted", 1)
    assert not only(events, Alert)


def test_files_collector_reports_size_and_growth_per_day(tmp_path: Path) -> None:
    """A file growing 1 MiB per hour reads as +24 MiB/day; a missing file is reported as such."""
    db = tmp_path / "games.db"
    db.write_bytes(b"\0" * 2**20)
    clock = Clock()
    collector = FilesCollector(
        [WatchFile(path=str(db)), WatchFile(path=str(tmp_path / "nope"), name="gone")], clock
    )
    first, missing = collector.collect()
    assert isinstance(first, File) and first.size_bytes == 2**20 and first.name == "games.db"
    assert isinstance(missing, File) and not missing.exists and missing.name == "gone"
    with db.open("ab") as handle:
        handle.write(b"\0" * 2**20)
    clock.now += 3600
    grown, _ = collector.collect()
    assert isinstance(grown, File)
    assert grown.growth_bytes_per_day == 24 * 2**20 and grown.growth_span_s == 3600


def test_performance_collector_summarises_the_window() -> None:
    """Latency and command events become p50/p95/p99; pipeline figures are per window."""
    stats = PipelineStats()
    figures = {"published": 0, "pending": 0, "retries": 0, "rate_limited": 0}
    clock = Clock()
    collector = PerformanceCollector(stats, lambda: figures, clock)
    for ms in range(1, 1001):
        collector.observe(Latency(ms=float(ms)))
        collector.observe(Command(name="vote", duration_ms=float(ms), ok=ms % 100 != 0))
    stats.delivered("logs", [Latency(ts=time.time() - 2, ms=1.0)])
    figures.update(published=3000, pending=12, retries=2, rate_limited=1)
    clock.now += 60
    (perf,) = collector.collect()
    assert isinstance(perf, Performance)
    assert (perf.events_in, perf.events_per_s, perf.queue_depth) == (3000, 50.0, 12)
    assert (perf.retries, perf.rate_limited, perf.commands, perf.commands_failed) == (
        2,
        1,
        1000,
        10,
    )
    gateway = {q.of: q for q in perf.latencies}["gateway"]
    assert gateway.count == 1000
    assert abs(gateway.p50 - 500) <= 5 and abs(gateway.p95 - 950) <= 9.5
    assert abs(gateway.p99 - 990) <= 9.9 and gateway.max == 1000
    assert perf.slow_commands[0].of == "vote"
    assert perf.delivery_ms is not None and 1900 < perf.delivery_ms.p50 < 2500
    clock.now += 60
    (quiet,) = collector.collect()
    assert isinstance(quiet, Performance)
    assert quiet.events_in == 0 and not quiet.latencies and quiet.delivery_ms is None


class Boom:
    """A collector that always fails."""

    name = "boom"

    def __init__(self) -> None:
        self.calls = 0

    def collect(self) -> list[Event]:
        self.calls += 1
        raise PermissionError("/proc is not readable")


class Ticker:
    """A collector that counts its runs."""

    name = "ticker"

    def __init__(self) -> None:
        self.calls = 0

    def collect(self) -> list[Event]:
        self.calls += 1
        return [Latency(ms=float(self.calls), of="tick")]


def test_a_failing_collector_reports_and_keeps_its_schedule() -> None:
    """Failures become error events from source astra; the failing and other collectors go on."""
    emitted: list[Event] = []
    scheduler = Scheduler(emitted.append)
    boom, ticker = Boom(), Ticker()
    scheduler.add(boom, 0.01)
    scheduler.add(ticker, 0.01, in_thread=True)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(scheduler.run)
            with anyio.fail_after(30):
                while boom.calls < 3 or ticker.calls < 3:
                    await anyio.sleep(0.01)
            group.cancel_scope.cancel()

    anyio.run(main)
    errors = [e for e in emitted if isinstance(e, Error)]
    assert len(errors) >= 3 and all(e.source == "astra" for e in errors)
    assert errors[0].type == "PermissionError"
    assert errors[0].message == "collector boom failed: /proc is not readable"
    assert scheduler.status["boom"].failures >= 3 and scheduler.status["boom"].last_ok is None
    assert scheduler.status["ticker"].failures == 0 and scheduler.status["ticker"].last_ok
    assert any(isinstance(e, Latency) and e.of == "tick" for e in emitted)
