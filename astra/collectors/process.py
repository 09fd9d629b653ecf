"""Processes: astra itself and the ones it is told to watch (by pid, pid file or pattern).

Each run reports CPU (percent of one core), RSS, threads, open file descriptors, sockets and
uptime per process, and notices restarts (a new pid, or the same pid reused by another
process). A watched process that disappears raises an alert; its return is a ``process``
event with ``change = "returned"`` and the alert's resolution.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import msgspec
import psutil

from astra.collectors.alerts import AlertBook
from astra.config import WatchProcess
from astra.events import Event, Process

TREND_POINTS = 15
SELF_NAME = "astra"


def read_pid_file(path: str) -> int | None:
    """The pid written in a pid file, or None when it is missing or holds no pid."""
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace")[:64]
    except OSError:
        return None
    token = text.strip().split()[0] if text.strip() else ""
    return int(token) if token.isdigit() and int(token) > 0 else None


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


class _Target:
    """One watched process and what was last seen of it."""

    def __init__(self, spec: WatchProcess, rss_limit_bytes: float) -> None:
        self.spec = spec
        self.name = spec.name
        self.rss_limit_bytes = rss_limit_bytes
        self.pattern = re.compile(spec.pattern) if spec.pattern else None
        self.process: psutil.Process | None = None
        self.last_identity: tuple[int, float] | None = None  # (pid, create time)
        self.gone = False
        self.restarts = 0
        self.last_cpu: tuple[float, float] | None = None  # (cpu seconds, clock)
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
        alerts: AlertBook,
        default_rss_limit_mib: float = 1024.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._alerts = alerts
        self._clock = clock
        self._wall_clock = wall_clock
        me = WatchProcess(name=SELF_NAME, pid=os.getpid())
        self.targets = [
            _Target(spec, (spec.rss_limit_mib or default_rss_limit_mib) * 1024 * 1024)
            for spec in [me, *watch]
        ]

    def collect(self) -> list[Event]:
        """Read every target; emit its figures, its disappearance or its return."""
        events: list[Event] = []
        for target in self.targets:
            events.extend(self._read(target))
        return events

    def _read(self, target: _Target) -> list[Event]:
        process = target.locate()
        identity = _identity(process) if process is not None else None
        if identity is None:
            return self._gone(target)
        if identity != target.last_identity:
            target.last_cpu = None  # another process: its CPU time starts from zero
        reading = self._measure(target, process) if process is not None else None
        if reading is None:
            return self._gone(target)
        # A new pid, or the same pid now held by a newer process, is a restart.
        restarted = target.last_identity is not None and identity != target.last_identity
        if restarted:
            target.restarts += 1
        change = "returned" if target.gone else "restarted" if restarted else ""
        target.process, target.last_identity, target.gone = process, identity, False
        events: list[Event] = [
            msgspec.structs.replace(reading, change=change, restarts=target.restarts)
        ]
        alert = self._alerts.update(
            "process_down",
            f"process:{target.name}",
            False,
            message=f"watched process {target.name} is running again (pid {reading.pid})",
        )
        if alert is not None:
            events.append(alert)
        return events

    def _gone(self, target: _Target) -> list[Event]:
        first_notice = not target.gone
        target.gone, target.process, target.last_cpu = True, None, None
        where = target.spec.pid_file or target.spec.pattern or f"pid {target.spec.pid}"
        events: list[Event] = [
            Process(
                source="astra",
                ts=self._wall_clock(),
                name=target.name,
                running=False,
                pid=target.last_identity[0] if target.last_identity else None,
                change="gone" if first_notice else "",
                restarts=target.restarts,
                rss_trend=list(target.rss_trend),
            )
        ]
        alert = self._alerts.update(
            "process_down",
            f"process:{target.name}",
            True,
            severity="critical",
            message=f"watched process {target.name} is not running ({where})",
        )
        if alert is not None:
            events.append(alert)
        return events

    def _measure(self, target: _Target, process: psutil.Process) -> Process | None:
        now = self._clock()
        try:
            with process.oneshot():
                times = process.cpu_times()
                rss = process.memory_info().rss
                threads = process.num_threads()
                created = process.create_time()
                fds = _optional(process.num_fds) if hasattr(process, "num_fds") else None
                connections = _optional(lambda: len(process.net_connections(kind="inet")))
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None
        cpu_seconds = times.user + times.system
        cpu = 0.0
        if target.last_cpu is not None and now > target.last_cpu[1]:
            cpu = max(0.0, (cpu_seconds - target.last_cpu[0]) / (now - target.last_cpu[1]) * 100)
        target.last_cpu = (cpu_seconds, now)
        target.rss_trend.append(float(rss))
        wall = self._wall_clock()
        return Process(
            source="astra",
            ts=wall,
            name=target.name,
            pid=process.pid,
            cpu_percent=round(cpu, 1),
            rss_bytes=rss,
            threads=threads,
            fds=fds,
            connections=connections,
            uptime_s=round(max(0.0, wall - created), 1),
            rss_trend=list(target.rss_trend),
        )


def _optional(read: Callable[[], int]) -> int | None:
    # Another user's process hides its descriptors and sockets: unknown, not an error.
    try:
        return read()
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return None


def _identity(process: psutil.Process) -> tuple[int, float] | None:
    try:
        return process.pid, process.create_time()
    except psutil.Error:
        return None
