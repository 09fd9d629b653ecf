"""Anomaly checks: threshold rules over what the other collectors observed, turned into alerts.

The checker is a projection: it folds the ``system``, ``process``, ``file`` and
``performance`` events from the bus and, each run, asks the alert book (cooldown and
resolution live there) about every rule in ``[alerts]``:

=====================  ==================================================  =========
rule                   breached when                                       severity
=====================  ==================================================  =========
cpu                    host CPU above ``cpu_percent``                      warning
memory                 host memory above ``memory_percent``                error
disk                   a mount's usage above ``disk_percent``              error
gateway_latency        gateway latency p50 above ``gateway_latency_ms``    warning
command_latency        command p95 above ``command_p95_ms``                warning
command_errors         failed commands above ``command_error_rate_percent``  error
process_rss            a watched process's RSS above its limit             warning
file_growth            a watched file growing faster than its limit        warning
process_down           a watched process is not running                    critical
=====================  ==================================================  =========

Every reading counts, not only the latest: each run checks the worst value each rule saw
since the previous run (the performance collector's windows and this collector's runs do not
line up, and a breach seen once must not be skipped). The error rate is taken over the
commands of the last ``ROLLING_WINDOW_S`` (15 min), so a quiet bot reaches the minimum of
``MIN_COMMANDS_FOR_RATE`` commands too.

A firing rule whose input stops (the bot disconnected and sends no gateway samples, traffic
fell below the minimum, a mount or a watched file went away) is resolved with a "no data"
message once nothing came for ``NO_DATA_COOLDOWNS`` cooldowns (or ``NO_DATA_INTERVALS``
intervals of the collector feeding it, when that is longer): an alert that can no longer be
checked must not stay firing, and lower the health score, forever.

A watched process seen restarting (a new pid between two readings, so never "gone") is a
``log`` warning on #logs, not an alert: a restart is a happening, not a condition that
resolves. It is sent at most once per cooldown per process; restarts in between are counted
in the next notice.

Grouping errors by fingerprint is not done here: it is a view of the events (the logs
channel, the daily report), see ``astra.problems``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping

import msgspec

from astra.collectors.alerts import AlertBook
from astra.config import AlertsConfig
from astra.events import Alert, Event, File, Log, Performance, Process, Severity, System
from astra.units import fmt_duration

MIB = 1024 * 1024
# The error rate is taken over this many seconds of commands...
ROLLING_WINDOW_S = 900.0
# ...and only from this many commands on (1 failure of 3 is 33 % and says little).
MIN_COMMANDS_FOR_RATE = 20
# A growth rate measured over less than this is too noisy to alert on.
MIN_GROWTH_SPAN_S = 3600.0
# A firing rule with no input for max(this many cooldowns, this many of its source's
# intervals) is resolved as "no data".
NO_DATA_COOLDOWNS = 2
NO_DATA_INTERVALS = 3
# Which collector's events feed each rule (for its interval, see above).
RULE_SOURCES: dict[str, str] = {
    "cpu": "system",
    "memory": "system",
    "disk": "system",
    "gateway_latency": "performance",
    "command_latency": "performance",
    "command_errors": "performance",
    "process_rss": "process",
    "process_down": "process",
    "file_growth": "files",
}
# Each threshold rule's unit and severity (the table above).
RULE_UNITS: dict[str, tuple[str, Severity]] = {
    "cpu": ("%", "warning"),
    "memory": ("%", "error"),
    "disk": ("%", "error"),
    "gateway_latency": ("ms", "warning"),
    "command_latency": ("ms", "warning"),
    "command_errors": ("%", "error"),
    "process_rss": ("MiB", "warning"),
    "file_growth": ("MiB/day", "warning"),
}


class _Reading(msgspec.Struct, kw_only=True):
    rule: str
    subject: str
    value: float
    threshold: float
    unit: str
    severity: Severity
    what: str


def _reading(rule: str, subject: str, what: str, *, value: float, threshold: float) -> _Reading:
    """A reading of ``rule``, in the rule's unit and at its severity."""
    unit, severity = RULE_UNITS[rule]
    return _Reading(
        rule=rule,
        subject=subject,
        value=value,
        threshold=threshold,
        unit=unit,
        severity=severity,
        what=what,
    )


class _Commands(msgspec.Struct, kw_only=True):
    at: float
    commands: int
    failed: int


class _Presence(msgspec.Struct, kw_only=True):
    """A watched process as seen since the last run: down at any point, and the latest."""

    down: bool
    latest: Process


class _Restarts(msgspec.Struct, kw_only=True):
    unsent: int = 0
    pid: int | None = None
    total: int = 0
    last_notice: float | None = None


class ErrorsCollector:
    """Evaluates the ``[alerts]`` rules each run; emits what the alert book decides."""

    name = "errors"

    def __init__(
        self,
        rules: AlertsConfig,
        alerts: AlertBook,
        *,
        rss_limits_mib: Mapping[str, float] | None = None,
        growth_limits_mib_per_day: Mapping[str, float] | None = None,
        process_locators: Mapping[str, str] | None = None,
        input_intervals: Mapping[str, float] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``process_locators``: how each watched process is found (for messages);
        ``input_intervals``: each feeding collector's interval by name (for "no data");
        ``clock``: wall clock, by default the alert book's."""
        self._rules = rules
        self._alerts = alerts
        self._rss_limits = dict(rss_limits_mib or {})
        self._growth_limits = dict(growth_limits_mib_per_day or {})
        self._locators = dict(process_locators or {})
        self._intervals = dict(input_intervals or {})
        self._clock = clock or alerts.now
        # The worst reading of each (rule, subject) since the last run.
        self._pending: dict[tuple[str, str], _Reading] = {}
        self._presence: dict[str, _Presence] = {}
        self._commands: deque[_Commands] = deque()
        self._restarts: dict[str, _Restarts] = {}
        # When each (rule, subject) last had input, and how to name it.
        self._last_input: dict[tuple[str, str], float] = {}
        self._labels: dict[tuple[str, str], str] = {}
        # An alert restored from the channels had no chance of input before this start.
        self._started = self._clock()

    # --- folding the bus ---------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """Bus listener: fold every reading into what the next run will check."""
        if isinstance(event, System):
            self._system(event)
        elif isinstance(event, Performance):
            self._performance(event)
        elif isinstance(event, Process):
            self._process(event)
        elif isinstance(event, File):
            self._file(event)

    def _offer(self, rule: str, subject: str, what: str, *, value: float, threshold: float) -> None:
        reading = _reading(rule, subject, what, value=value, threshold=threshold)
        key = (rule, subject)
        held = self._pending.get(key)
        # Every rule is "above a threshold": the highest reading is the worst.
        if held is None or reading.value >= held.value:
            self._pending[key] = reading

    def _system(self, sys_: System) -> None:
        rules = self._rules
        self._offer("cpu", "host", "CPU", value=sys_.cpu_percent, threshold=rules.cpu_percent)
        self._offer(
            "memory", "host", "memory", value=sys_.memory_percent, threshold=rules.memory_percent
        )
        for disk in sys_.disks:
            self._offer(
                "disk",
                f"disk:{disk.mount}",
                f"disk {disk.mount}",
                value=disk.percent,
                threshold=rules.disk_percent,
            )

    def _performance(self, perf: Performance) -> None:
        rules = self._rules
        if perf.commands:
            now = self._clock()
            self._commands.append(
                _Commands(at=now, commands=perf.commands, failed=perf.commands_failed)
            )
            self._prune(now)
        by_name = {q.of: q for q in perf.latencies}
        gateway = by_name.get("gateway")
        if gateway is not None and gateway.count:
            what = "gateway latency (p50)"
            threshold = rules.gateway_latency_ms
            self._offer("gateway_latency", "gateway", what, value=gateway.p50, threshold=threshold)
        command = by_name.get("command")
        if command is not None and command.count:
            what = "command latency (p95)"
            threshold = rules.command_p95_ms
            self._offer("command_latency", "commands", what, value=command.p95, threshold=threshold)

    def _process(self, proc: Process) -> None:
        presence = self._presence.get(proc.name)
        if presence is None:
            self._presence[proc.name] = _Presence(down=not proc.running, latest=proc)
        else:
            presence.down = presence.down or not proc.running
            presence.latest = proc
        if proc.change == "restarted":
            restarts = self._restarts.setdefault(proc.name, _Restarts())
            restarts.unsent += 1
            restarts.pid, restarts.total = proc.pid, proc.restarts
        # RSS 0 of a running process means the OS denied reading it: no reading, not "fine".
        if proc.running and proc.rss_bytes > 0:
            self._offer(
                "process_rss",
                f"process:{proc.name}",
                f"{proc.name} RSS",
                value=proc.rss_bytes / MIB,
                threshold=self._rss_limits.get(proc.name, self._rules.process_rss_mib),
            )

    def _file(self, watched: File) -> None:
        if watched.growth_bytes_per_day is None or watched.growth_span_s < MIN_GROWTH_SPAN_S:
            return
        self._offer(
            "file_growth",
            f"file:{watched.name}",
            f"{watched.name} growth",
            value=watched.growth_bytes_per_day / MIB,
            threshold=self._growth_limits.get(watched.name, self._rules.file_growth_mib_per_day),
        )

    def _prune(self, now: float) -> None:
        while self._commands and now - self._commands[0].at > ROLLING_WINDOW_S:
            self._commands.popleft()

    # --- checking ----------------------------------------------------------------------

    def collect(self) -> list[Event]:
        """Check every rule that had input since the last run; resolve those without any."""
        now = self._clock()
        out: list[Event | None] = []
        pending, self._pending = self._pending, {}
        for key, reading in pending.items():
            self._seen(key, reading.what, now)
            out.append(self._check(reading))
        out.extend(self._process_down(now))
        out.append(self._error_rate(now))
        out.extend(self._restart_notices(now))
        out.extend(self._no_data(now))
        return [e for e in out if e is not None]

    def _seen(self, key: tuple[str, str], what: str, now: float) -> None:
        self._last_input[key] = now
        self._labels[key] = what

    def _process_down(self, now: float) -> list[Alert | None]:
        out: list[Alert | None] = []
        presence, self._presence = self._presence, {}
        for name, seen in presence.items():
            key = ("process_down", f"process:{name}")
            self._seen(key, f"watched process {name}", now)
            latest = seen.latest
            if seen.down:
                where = self._locators.get(name)
                message = f"watched process {name} is not running" + (
                    f" ({where})" if where else ""
                )
                if latest.running:
                    message += f"; seen back as pid {latest.pid}"
            else:
                message = f"watched process {name} is running again (pid {latest.pid})"
            # Down at any reading since the last run counts: a short outage is still news.
            out.append(self._alerts.update(*key, seen.down, severity="critical", message=message))
        return out

    def _error_rate(self, now: float) -> Alert | None:
        self._prune(now)
        commands = sum(c.commands for c in self._commands)
        if commands < MIN_COMMANDS_FOR_RATE:
            return None
        failed = sum(c.failed for c in self._commands)
        minutes = round(ROLLING_WINDOW_S / 60)
        reading = _reading(
            "command_errors",
            "commands",
            f"command error rate ({failed:,} of {commands:,} in {minutes} min)",
            value=100.0 * failed / commands,
            threshold=self._rules.command_error_rate_percent,
        )
        self._seen((reading.rule, reading.subject), "command error rate", now)
        return self._check(reading)

    def _restart_notices(self, now: float) -> list[Log]:
        out = []
        cooldown = self._rules.cooldown
        for name, restarts in self._restarts.items():
            if not restarts.unsent:
                continue
            if restarts.last_notice is not None and now - restarts.last_notice < cooldown:
                continue  # counted, and told in the next notice
            times = "" if restarts.unsent == 1 else f" {restarts.unsent} times"
            total = f"{restarts.total:,} restart" + ("" if restarts.total == 1 else "s")
            out.append(
                Log(
                    source="astra",
                    ts=now,
                    level="warning",
                    logger="astra.process",
                    message=(
                        f"watched process {name} restarted{times}: now pid {restarts.pid} "
                        f"({total} since astra started)"
                    ),
                )
            )
            restarts.unsent, restarts.last_notice = 0, now
        return out

    def _no_data(self, now: float) -> list[Alert | None]:
        out: list[Alert | None] = []
        for (rule, subject), firing in list(self._alerts.firing.items()):
            source = RULE_SOURCES.get(rule)
            if source is None:
                continue  # not one of ours
            key = (rule, subject)
            last = self._last_input.get(key, max(firing.since, self._started))
            limit = max(
                NO_DATA_COOLDOWNS * self._alerts.cooldown_s,
                NO_DATA_INTERVALS * self._intervals.get(source, 0.0),
            )
            if now - last <= limit:
                continue
            what = self._labels.get(key, f"{rule} {subject}")
            out.append(
                self._alerts.update(
                    rule,
                    subject,
                    False,
                    message=(
                        f"{what}: no data for {fmt_duration(now - last)}, resolved "
                        "without a reading"
                    ),
                )
            )
            self._last_input.pop(key, None)
        return out

    def _check(self, reading: _Reading) -> Alert | None:
        value, threshold, unit = reading.value, reading.threshold, reading.unit
        breached = value > threshold
        shown = f"{value:,.1f} {unit}"
        if breached:
            message = f"{reading.what} {shown}, above {threshold:,g} {unit}"
        else:
            message = f"{reading.what} back to {shown} (limit {threshold:,g} {unit})"
        return self._alerts.update(
            reading.rule,
            reading.subject,
            breached,
            severity=reading.severity,
            message=message,
            value=round(value, 2),
            threshold=threshold,
            unit=unit,
        )
