"""The process collector against real child processes: found by pid file or pattern, restarts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from astra.collectors.alerts import AlertBook
from astra.collectors.errors import ErrorsCollector
from astra.collectors.process import PID_FILE_MAX_BYTES, ProcessCollector, locator, read_pid_file
from astra.config import AlertsConfig, WatchProcess
from astra.events import Alert, Event, Log, Process
from tests.conftest import Clock


def only(events: list[Event], kind: type[Event]) -> list[Event]:
    """The events of one kind."""
    return [e for e in events if isinstance(e, kind)]


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


def test_restart_counts_go_on_after_astra_restarts(
    tmp_path: Path, child: list[subprocess.Popen[bytes]]
) -> None:
    """Readings read back at start carry the restart count on, and a pid that changed while
    astra was down is counted as a restart."""
    pid_file = tmp_path / "bot.pid"
    bot = spawn(child, "astra-test-bot")
    pid_file.write_text(f"{bot.pid}\n")
    watch = [WatchProcess(name="bot", pid_file=str(pid_file))]
    same = ProcessCollector(watch)
    same.restore([Process(name="bot", pid=bot.pid, restarts=3, source="astra")])
    (reading,) = [
        e for e in only(same.collect(), Process) if isinstance(e, Process) and e.name == "bot"
    ]
    assert (reading.restarts, reading.change) == (3, "")
    moved = ProcessCollector(watch)
    moved.restore([Process(name="bot", pid=bot.pid + 1, restarts=3, source="astra")])
    (reading,) = [
        e for e in only(moved.collect(), Process) if isinstance(e, Process) and e.name == "bot"
    ]
    assert (reading.restarts, reading.change) == (4, "restarted")
