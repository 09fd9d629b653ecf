"""Processes: astra itself and the ones it is told to watch (by pid, pid file or pattern).

Each run reports CPU (percent of one core), RSS, threads, open file descriptors, sockets and
uptime per process, and notices restarts (a new pid, or the same pid reused by another
process), a disappearance (``change = "gone"``, ``running = false``) and a return
(``change = "returned"``). The alerts and notices those lead to (``process_down``, the
restart notice) are decided by the errors collector from these events: this collector holds
no shared state, so it runs in a worker thread (scanning command lines, reading pid files
and sockets can be slow).

A figure the OS refuses to show (another user's process, ``hidepid``) is reported as
unknown: ``fds`` and ``connections`` as null, CPU, RSS and threads as 0, with one ``log``
warning per process naming what could not be read.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TypeVar

import msgspec
import psutil

from astra.config import WatchProcess
from astra.events import Event, Log, Process

TREND_POINTS = 15
SELF_NAME = "astra"
# A pid file holds a number and a newline; whatever is at the path, read no more than this.
PID_FILE_MAX_BYTES = 256
# Pids fit in 32 bits; longer digit runs are not pids (and would overflow psutil).
MAX_PID_DIGITS = 10

T = TypeVar("T")


def read_pid_file(path: str) -> int | None:
    """The pid written in a pid file, or None when it is missing or holds no pid.

    Reads at most ``PID_FILE_MAX_BYTES`` of a regular file: whatever the path points at (a
    huge file, a FIFO with no writer, a device), the read is bounded and cannot block.
    """
    try:
        # Non-blocking, so opening a FIFO with no writer returns at once (POSIX only).
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        raw = os.read(fd, PID_FILE_MAX_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    text = raw.decode("ascii", errors="replace")
    token = text.strip().split()[0] if text.strip() else ""
    if not (token.isdigit() and len(token) <= MAX_PID_DIGITS):
        return None
    return int(token) or None


def find_by_pattern(pattern: re.Pattern[str], exclude: int) -> psutil.Process | None:
    """The oldest process whose command line matches ``pattern`` (not ``exclude``)."""
    found: list[tuple[float, psutil.Process]] = []
    for proc in psutil.process_iter(["cmdline", "create_time"]):
        if proc.pid == exclude:
            continue
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if cmdline and pattern.search(cmdline):
            found.append((proc.info.get("create_time") or 0.0, proc))
    return min(found, key=lambda item: item[0])[1] if found else None


def locator(spec: WatchProcess) -> str:
    """How a watched process is found, for messages: its pid file, pattern or pid."""
    return spec.pid_file or spec.pattern or f"pid {spec.pid}"


class _Target:
    """One watched process and what was last seen of it."""

    def __init__(self, spec: WatchProcess) -> None:
        self.spec = spec
        self.name = spec.name
        self.pattern = re.compile(spec.pattern) if spec.pattern else None
        self.process: psutil.Process | None = None
        self.last_identity: tuple[int, float] | None = None  # (pid, create time)
        self.gone = False
        self.restarts = 0
        # The pid the previous run of astra saw last (read back at start), if any.
        self.restored_pid: int | None = None
        self.last_cpu: tuple[float, float] | None = None  # (cpu seconds, clock)
        self.denied_noticed: tuple[int, float] | None = None  # identity last warned about
        self.rss_trend: deque[float] = deque(maxlen=TREND_POINTS)

    def locate(self) -> psutil.Process | None:
        """The process now, reusing the last one while it is alive."""
        current = self.process
        # is_running() compares create times too, so a reused pid is not mistaken for ours.
        if current is not None and current.is_running() and self._still_ours(current):
            return current
        pid: int | None = None
        if self.spec.pid is not None:
            pid = self.spec.pid
        elif self.spec.pid_file:
            pid = read_pid_file(self.spec.pid_file)
        elif self.pattern is not None:
            return find_by_pattern(self.pattern, os.getpid())
        if pid is None:
            return None
        try:
            return psutil.Process(pid)
        except psutil.Error:
            return None

    def _still_ours(self, current: psutil.Process) -> bool:
        if self.spec.pid_file:
            return read_pid_file(self.spec.pid_file) == int(current.pid)
        return True


class ProcessCollector:
    """Emits one ``process`` event per watched process (and astra) per run."""

    name = "process"

    def __init__(
        self,
        watch: list[WatchProcess],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        me = WatchProcess(name=SELF_NAME, pid=os.getpid())
        self.targets = [_Target(spec) for spec in [me, *watch]]

    def restore(self, readings: Sequence[Process]) -> None:
        """Take in readings read back from the channels (oldest first): each watched
        process's restart count goes on from the last one, and a pid that changed while
        astra was down is a restart too."""
        last = {r.name: r for r in readings}
        for target in self.targets[1:]:  # astra itself is new at every start
            reading = last.get(target.name)
            if reading is None:
                continue
            target.restarts += reading.restarts
            if target.last_identity is None and reading.running:
                target.restored_pid = reading.pid

    def collect(self) -> list[Event]:
        """Read every target; emit its figures, its disappearance or its return."""
        events: list[Event] = []
        for target in self.targets:
            try:
                events.extend(self._read(target))
            except psutil.Error as exc:
                # One unreadable target must not cost the others their reading.
                events.append(
                    Log(
                        source="astra",
                        ts=self._wall_clock(),
                        level="warning",
                        logger="astra.process",
                        message=f"process {target.name} could not be read: {exc!r}"[:4000],
                    )
                )
        return events

    def _read(self, target: _Target) -> list[Event]:
        process = target.locate()
        identity = _identity(process) if process is not None else None
        if process is None or identity is None:
            return [self._gone(target)]
        if identity != target.last_identity:
            target.last_cpu = None  # another process: its CPU time starts from zero
        measured = self._measure(target, process)
        if measured is None:
            return [self._gone(target)]
        reading, denied = measured
        # A new pid, or the same pid now held by a newer process, is a restart.
        restarted = target.last_identity is not None and identity != target.last_identity
        if target.last_identity is None and target.restored_pid is not None:
            restarted = identity[0] != target.restored_pid
        target.restored_pid = None
        if restarted:
            target.restarts += 1
        change = "returned" if target.gone else "restarted" if restarted else ""
        target.process, target.last_identity, target.gone = process, identity, False
        events: list[Event] = [
            msgspec.structs.replace(reading, change=change, restarts=target.restarts)
        ]
        if denied and target.denied_noticed != identity:
            target.denied_noticed = identity
            events.append(
                Log(
                    source="astra",
                    ts=reading.ts,
                    level="warning",
                    logger="astra.process",
                    message=(
                        f"process {target.name} (pid {reading.pid}): access denied reading "
                        f"{', '.join(denied)}; shown as unknown. Run astra as the same user "
                        "as the process to see them."
                    ),
                )
            )
        return events

    def _gone(self, target: _Target) -> Process:
        first_notice = not target.gone
        target.gone, target.process, target.last_cpu = True, None, None
        return Process(
            source="astra",
            ts=self._wall_clock(),
            name=target.name,
            running=False,
            pid=target.last_identity[0] if target.last_identity else None,
            change="gone" if first_notice else "",
            restarts=target.restarts,
            rss_trend=list(target.rss_trend),
        )

    def _measure(
        self, target: _Target, process: psutil.Process
    ) -> tuple[Process, list[str]] | None:
        """The process's figures and the names of those the OS refused; None if it is gone."""
        now = self._clock()
        wall = self._wall_clock()
        denied: list[str] = []

        def readable(label: str, read: Callable[[], T], unknown: T) -> T:
            # Denied is per figure: report what can be read rather than lose the target.
            try:
                return read()
            except psutil.AccessDenied:
                denied.append(label)
                return unknown

        try:
            with process.oneshot():
                times = readable("CPU", process.cpu_times, None)
                rss = readable("RSS", lambda: int(process.memory_info().rss), 0)
                threads = readable("threads", process.num_threads, 0)
                created = readable("start time", process.create_time, None)
                fds = _optional(process.num_fds) if hasattr(process, "num_fds") else None
                connections = _optional(lambda: len(process.net_connections(kind="inet")))
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None
        cpu = 0.0
        if times is not None:
            cpu_seconds = times.user + times.system
            if target.last_cpu is not None and now > target.last_cpu[1]:
                cpu = (cpu_seconds - target.last_cpu[0]) / (now - target.last_cpu[1]) * 100
            elif created is not None and wall > created:
                # First sight of this process: its average since it started, not 0.
                cpu = cpu_seconds / (wall - created) * 100
            target.last_cpu = (cpu_seconds, now)
        target.rss_trend.append(float(rss))
        reading = Process(
            source="astra",
            ts=wall,
            name=target.name,
            pid=process.pid,
            cpu_percent=round(max(0.0, cpu), 1),
            rss_bytes=rss,
            threads=threads,
            fds=fds,
            connections=connections,
            uptime_s=round(max(0.0, wall - created), 1) if created is not None else 0.0,
            rss_trend=list(target.rss_trend),
        )
        return reading, denied


def _optional(read: Callable[[], int]) -> int | None:
    # Another user's process hides its descriptors and sockets: unknown, not an error.
    try:
        return read()
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return None


def _identity(process: psutil.Process) -> tuple[int, float] | None:
    try:
        return process.pid, process.create_time()
    except psutil.AccessDenied:
        # Running but hidden: known by pid alone (a reused pid goes unnoticed).
        return process.pid, 0.0
    except psutil.Error:
        return None
