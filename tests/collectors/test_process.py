"""Collectors against the real machine: psutil readings, a real child process, real files."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import psutil
import pytest

from astra.collectors import system as system_module
from astra.collectors.alerts import AlertBook
from astra.collectors.errors import ErrorsCollector
from astra.collectors.files import FilesCollector
from astra.collectors.performance import MAX_LATENCY_SERIES, PerformanceCollector
from astra.collectors.process import (
    PID_FILE_MAX_BYTES,
    ProcessCollector,
    locator,
    read_pid_file,
)
from astra.collectors.schedule import Scheduler
from astra.collectors.suite import Collectors
from astra.collectors.system import SystemCollector, local_mounts, net_rates
from astra.config import CHANNELS, AlertsConfig, WatchFile, WatchProcess, parse
from astra.events import (
    Alert,
    Command,
    Error,
    Event,
    File,
    Latency,
    Log,
    NetStat,
    Performance,
    Process,
    System,
)
from astra.quantiles import LogHistogram
from astra.redaction import Redactor
from astra.statistics import (
    BusStatistics,
    ChannelStatistics,
    DeliveryStatistics,
    SidecarStatistics,
)
from astra.streams.bus import Bus
from astra.streams.router import Router
from astra.streams.windows import ChannelStream


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
    """A sleeping Python child, returned once its interpreter is up (bounded wait)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", tag])
    started.append(proc)
    # Right after exec the child is a few hundred KiB; the tests read its real figures.
    deadline = time.monotonic() + 30
    while psutil.Process(proc.pid).memory_info().rss < 4 * 2**20:
        assert time.monotonic() < deadline, "the child did not start"
        time.sleep(0.01)
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
    watch = WatchProcess(name="bot", pid_file=str(pid_file))
    collector = ProcessCollector([watch])
    checks = ErrorsCollector(AlertsConfig(), book, process_locators={"bot": locator(watch)})

    def run() -> list[Event]:
        events = collector.collect()
        for event in events:
            checks.observe(event)
        return events + checks.collect()

    events = run()
    procs = {e.name: e for e in only(events, Process) if isinstance(e, Process)}
    assert procs["bot"].running and procs["bot"].pid == first.pid
    assert procs["bot"].rss_bytes > 1_000_000 and procs["bot"].threads >= 1
    assert procs["astra"].pid == os.getpid() and procs["astra"].fds
    assert not only(events, Alert)

    first.kill()
    first.wait()
    clock.now += 60
    events = run()
    (gone,) = [e for e in only(events, Process) if isinstance(e, Process) and e.name == "bot"]
    assert not gone.running and gone.change == "gone"
    (alert,) = only(events, Alert)
    assert isinstance(alert, Alert)
    assert (alert.state, alert.severity, alert.subject) == ("firing", "critical", "process:bot")
    assert alert.message == f"watched process bot is not running ({pid_file})"

    clock.now += 60
    assert not only(run(), Alert), "no repeat within the cooldown"

    second = spawn(child, "astra-test-bot")
    pid_file.write_text(f"{second.pid}\n")
    clock.now += 60
    events = run()
    (back,) = [e for e in only(events, Process) if isinstance(e, Process) and e.name == "bot"]
    assert back.running and back.change == "returned" and back.pid == second.pid
    assert back.restarts == 1
    (resolved,) = only(events, Alert)
    assert isinstance(resolved, Alert) and resolved.state == "resolved"
    assert resolved.since == 1_060.0


def test_watched_process_by_pattern_notices_a_restart(
    child: list[subprocess.Popen[bytes]],
) -> None:
    """A process found by command-line pattern that is replaced between runs counts a restart,
    and the restart reaches #logs as one warning (it never was "gone", so no alert)."""
    tag = f"astra-pattern-{os.getpid()}"
    first = spawn(child, tag)
    collector = ProcessCollector([WatchProcess(name="bot", pattern=tag)])
    checks = ErrorsCollector(AlertsConfig(), AlertBook(300, Clock()))
    (bot,) = [e for e in collector.collect() if isinstance(e, Process) and e.name == "bot"]
    assert bot.pid == first.pid
    first.kill()
    first.wait()
    second = spawn(child, tag)
    events = collector.collect()
    (bot,) = [e for e in events if isinstance(e, Process) and e.name == "bot"]
    assert (bot.pid, bot.change, bot.restarts) == (second.pid, "restarted", 1)
    assert not only(events, Alert)
    for event in events:
        checks.observe(event)
    (notice,) = checks.collect()
    assert isinstance(notice, Log) and notice.level == "warning"
    assert notice.message == (
        f"watched process bot restarted: now pid {second.pid} (1 restart since astra started)"
    )


def test_pid_file_read_is_bounded(tmp_path: Path) -> None:
    """A pid file is read no further than a few hundred bytes; no pid, no process."""
    big = tmp_path / "big.pid"
    big.write_bytes(b"4242\n" + b"x" * (PID_FILE_MAX_BYTES * 100))
    assert read_pid_file(str(big)) == 4242
    digits = tmp_path / "digits.pid"
    digits.write_bytes(b"7" * (PID_FILE_MAX_BYTES * 100))
    assert read_pid_file(str(digits)) is None, "a run of digits longer than any pid"
    assert read_pid_file(str(tmp_path)) is None, "a directory"
    assert read_pid_file(str(tmp_path / "missing")) is None
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.pid"
        os.mkfifo(fifo)
        assert read_pid_file(str(fifo)) is None, "a FIFO with no writer does not block"


def test_first_reading_of_a_process_shows_its_average_cpu() -> None:
    """A newly seen process reads its CPU time over its lifetime, not 0.0."""
    me = psutil.Process()
    started = me.create_time()
    wall = Clock(started + 1.0)  # one second old, as far as the collector can tell
    collector = ProcessCollector([], wall_clock=wall)
    sum(i * i for i in range(300_000))  # some CPU time of our own
    before = sum(me.cpu_times()[:2])
    (astra,) = collector.collect()
    after = sum(me.cpu_times()[:2])
    assert isinstance(astra, Process) and astra.name == "astra"
    assert before > 0
    assert round(100 * before, 1) - 0.1 <= astra.cpu_percent <= round(100 * after, 1) + 0.1


def test_access_denied_on_one_target_keeps_the_others(
    monkeypatch: pytest.MonkeyPatch, child: list[subprocess.Popen[bytes]]
) -> None:
    """A figure the OS refuses is unknown for that process only; one warning says so."""
    denied = spawn(child, "astra-test-denied")
    real_threads = psutil.Process.num_threads
    real_connections = psutil.Process.net_connections

    def num_threads(self: psutil.Process) -> Any:
        if self.pid == denied.pid:
            raise psutil.AccessDenied(self.pid)
        return real_threads(self)

    def net_connections(self: psutil.Process, kind: str = "inet") -> Any:
        if self.pid == denied.pid:
            raise psutil.AccessDenied(self.pid)
        return real_connections(self, kind)

    monkeypatch.setattr(psutil.Process, "num_threads", num_threads)
    monkeypatch.setattr(psutil.Process, "net_connections", net_connections)
    collector = ProcessCollector([WatchProcess(name="bot", pid=denied.pid)])
    events = collector.collect()
    procs = {e.name: e for e in only(events, Process) if isinstance(e, Process)}
    assert procs["astra"].threads >= 1 and procs["astra"].connections is not None
    bot = procs["bot"]
    assert bot.running and bot.pid == denied.pid and bot.rss_bytes > 1_000_000
    assert (bot.threads, bot.connections) == (0, None)
    (warning,) = only(events, Log)
    assert isinstance(warning, Log) and warning.level == "warning"
    assert f"process bot (pid {denied.pid}): access denied reading threads" in warning.message
    again = collector.collect()
    assert not only(again, Log), "said once per process, not every run"


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
    figures = [SidecarStatistics(version="t", at=0, started=0)]
    clock = Clock()
    collector = PerformanceCollector(lambda: figures[-1], clock)
    collector.collect()
    for ms in range(1, 1001):
        collector.observe(Latency(ms=float(ms)))
        collector.observe(Command(name="vote", duration_ms=float(ms), ok=ms % 100 != 0))
    delivered = LogHistogram()
    delivered.add(2000.0)  # one event posted two seconds after it happened
    logs = DeliveryStatistics(
        mode="discord", retries=2, rate_limited=1, latency_ms=delivered.sketch()
    )
    figures.append(
        SidecarStatistics(
            version="t",
            at=60,
            started=0,
            bus=BusStatistics(published=3000, held=12),
            channels={"logs": ChannelStatistics(delivery=logs)},
        )
    )
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
    status = {c.name: c for c in scheduler.statistics()}
    assert status["boom"].failures >= 3 and status["boom"].last_ok is None
    assert status["ticker"].failures == 0 and status["ticker"].last_ok
    assert any(isinstance(e, Latency) and e.of == "tick" for e in emitted)


class Nic(NamedTuple):
    """One interface's counters, as psutil.net_io_counters(pernic=True) gives them."""

    bytes_sent: int = 0
    bytes_recv: int = 0
    packets_sent: int = 0
    packets_recv: int = 0
    errin: int = 0
    errout: int = 0
    dropin: int = 0
    dropout: int = 0


def test_network_rates_survive_an_interface_going_away_or_resetting() -> None:
    """Rates sum per-interface deltas over interfaces in both readings; a reset counts 0."""
    before = {"eth0": Nic(bytes_recv=10_000, packets_recv=10), "wg0": Nic(bytes_recv=900_000)}
    # wg0 went away (its large counter must not cancel eth0's traffic), tun1 appeared.
    after = {"eth0": Nic(bytes_recv=16_000, packets_recv=16), "tun1": Nic(bytes_recv=50_000)}
    rates = net_rates(before, after, 2.0)
    assert (rates.bytes_recv_per_s, rates.packets_recv_per_s) == (3000.0, 3.0)
    # eth0 was re-created (counter back near zero): 0 for it, the others still count.
    reset = net_rates(
        {"eth0": Nic(bytes_sent=5_000_000), "eth1": Nic(bytes_sent=100)},
        {"eth0": Nic(bytes_sent=200), "eth1": Nic(bytes_sent=1_100)},
        10.0,
    )
    assert reset == NetStat(bytes_sent_per_s=100.0)


def test_system_collector_keys_network_counters_by_interface(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the collector: an interface vanishing between runs does not zero the rates."""
    readings = iter(
        [
            {"lo": Nic(bytes_recv=1), "eth0": Nic(bytes_recv=0), "veth9": Nic(bytes_recv=10**9)},
            {"lo": Nic(bytes_recv=10**6), "eth0": Nic(bytes_recv=60_000)},
        ]
    )
    monkeypatch.setattr(system_module.psutil, "net_io_counters", lambda pernic: next(readings))
    clock = Clock()
    collector = SystemCollector(clock=clock)
    clock.now += 60
    (event,) = collector.collect()
    assert isinstance(event, System) and event.net is not None
    assert event.net.bytes_recv_per_s == 1000.0


class Part(NamedTuple):
    """One entry of psutil.disk_partitions()."""

    device: str
    mountpoint: str
    fstype: str = "ext4"
    opts: str = "rw"


def test_automatic_mounts_start_with_root_and_skip_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In a container "/" is an overlay psutil does not list as a disk, and the host's disk
    shows up as bind-mounted files: "/" is reported, the files are not."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    data = tmp_path / "data"
    data.mkdir()
    physical = [
        Part("/dev/sda1", str(resolv)),
        Part("/dev/sda1", str(data)),
        Part("/dev/sdb1", str(tmp_path / "hosts-file-missing")),
    ]
    every = [Part("overlay", "/", "overlay"), *physical]

    def partitions(all: bool = False) -> list[Part]:
        return every if all else physical

    monkeypatch.setattr(system_module.psutil, "disk_partitions", partitions)
    mounts = local_mounts([])
    assert [(m.mount, m.device) for m in mounts] == [("/", "overlay"), (str(data), "/dev/sda1")]
    assert [m.mount for m in local_mounts(["/srv"])] == ["/srv"], "asked-for mounts as given"


def test_gateway_and_command_latency_are_never_crowded_out() -> None:
    """Once the cap on latency series is reached by custom series, gateway and command still
    get theirs (the alert rules read them)."""
    empty = SidecarStatistics(version="t", at=0, started=0)
    collector = PerformanceCollector(lambda: empty, Clock())
    for n in range(MAX_LATENCY_SERIES + 10):
        collector.observe(Latency(ms=5.0, of=f"custom-{n}"))
    collector.observe(Latency(ms=40.0))
    collector.observe(Command(name="vote", duration_ms=120.0))
    (perf,) = collector.collect()
    assert isinstance(perf, Performance)
    names = [q.of for q in perf.latencies]
    assert names[:2] == ["gateway", "command"]
    assert len(names) == MAX_LATENCY_SERIES + 2


class Pair:
    """A collector emitting two events per run."""

    name = "pair"

    def collect(self) -> list[Event]:
        return [Latency(ms=1.0, of="first"), Latency(ms=2.0, of="second")]


def test_a_raising_listener_costs_one_event_not_the_run() -> None:
    """Emitting is guarded per event: the next event still goes out and the run counts."""
    emitted: list[Event] = []

    def emit(event: Event) -> None:
        if isinstance(event, Latency) and event.of == "first":
            raise RuntimeError("a bus listener broke")
        emitted.append(event)

    scheduler = Scheduler(emit)
    pair = Pair()
    scheduler.add(pair, 60)
    scheduler.run_once(pair)
    assert [e.of for e in emitted if isinstance(e, Latency)] == ["second"]
    [status] = scheduler.statistics()
    assert status.name == "pair" and status.last_ok is not None
    assert status.failures == 0


class Hung:
    """A thread collector stuck in the OS (statvfs on a dead NFS mount) until released."""

    name = "hung"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.daemon: bool | None = None

    def collect(self) -> list[Event]:
        self.daemon = threading.current_thread().daemon
        self.entered.set()
        self.release.wait()
        return []


def test_a_hung_thread_collector_does_not_block_shutdown() -> None:
    """Cancelling the scheduler returns while a thread run is stuck; that run is in a daemon
    thread, so it cannot hold up interpreter exit either."""
    hung = Hung()
    scheduler = Scheduler(lambda event: None)
    scheduler.add(hung, 0.01, in_thread=True)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(scheduler.run)
            with anyio.fail_after(30):
                while not hung.entered.is_set():
                    await anyio.sleep(0.01)
            group.cancel_scope.cancel()

    # In a thread of its own, so that a shutdown that does block fails the test instead of
    # hanging it (the join is a bound, not a measurement).
    runner = threading.Thread(target=anyio.run, args=(main,), daemon=True)
    try:
        runner.start()
        runner.join(timeout=60)
        assert not runner.is_alive(), "cancelling waited for the stuck run"
        assert hung.entered.is_set() and not hung.release.is_set(), "still stuck, yet we returned"
        assert hung.daemon is True
        assert [c.runs for c in scheduler.statistics() if c.name == "hung"] == [0]
    finally:
        hung.release.set()


def test_suite_runs_blocking_collectors_in_threads_and_decides_process_down_in_errors(
    tmp_path: Path,
) -> None:
    """system and process run in threads (process holds no shared state); a watched process
    gone reaches the errors collector over the bus, which raises process_down."""
    pid_file = tmp_path / "bot.pid"
    config = parse(f'[[watch.process]]\nname = "bot"\npid_file = "{pid_file}"\n', "c.toml", {})
    streams = [ChannelStream(name, 30.0, 1.0, time.monotonic) for name in CHANNELS]
    bus = Bus(Router(config.routes), streams, Redactor(), max_events=10_000, max_bytes=1 << 30)
    published: list[Event] = []
    bus.subscribe(published.extend)
    empty = SidecarStatistics(version="t", at=0, started=0)
    collectors = Collectors(
        config, emit=bus.publish, subscribe=bus.subscribe, snapshot=lambda: empty
    )
    entries = {e.collector.name: e for e in collectors.scheduler._entries}
    assert {name: e.in_thread for name, e in entries.items()} == {
        "system": True,
        "process": True,
        "performance": False,
        "errors": False,
        "health": False,
        "report": False,
    }
    collectors.scheduler.run_once(entries["process"].collector)
    collectors.scheduler.run_once(entries["errors"].collector)
    (alert,) = [e for e in published if isinstance(e, Alert)]
    assert (alert.rule, alert.state, alert.severity) == ("process_down", "firing", "critical")
    assert alert.message == f"watched process bot is not running ({pid_file})"
