"""Anomaly checks: threshold rules over the latest observations, turned into alerts.

The checker is a projection: it keeps the latest ``system``, ``process``, ``file`` and
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
=====================  ==================================================  =========

A rule without data (no gateway samples in the window, a stopped process) is not
evaluated, so neither fires nor resolves. Grouping errors by fingerprint is not done here:
it is a view of the events (the logs channel, the daily report), see
``astra.events.problem_of``.
"""

from __future__ import annotations

from collections.abc import Mapping

from astra.collectors.alerts import AlertBook
from astra.config import AlertsConfig
from astra.events import Alert, Event, File, Performance, Process, Severity, System

MIB = 1024 * 1024
# Below this many commands in a window an error rate says little (1 of 3 is 33 %).
MIN_COMMANDS_FOR_RATE = 20
# A growth rate measured over less than this is too noisy to alert on.
MIN_GROWTH_SPAN_S = 3600.0


class ErrorsCollector:
    """Evaluates the ``[alerts]`` rules each run; emits what the alert book decides."""

    name = "errors"

    def __init__(
        self,
        rules: AlertsConfig,
        alerts: AlertBook,
        rss_limits_mib: Mapping[str, float] | None = None,
        growth_limits_mib_per_day: Mapping[str, float] | None = None,
    ) -> None:
        self._rules = rules
        self._alerts = alerts
        self._rss_limits = dict(rss_limits_mib or {})
        self._growth_limits = dict(growth_limits_mib_per_day or {})
        self.system: System | None = None
        self.performance: Performance | None = None
        self.processes: dict[str, Process] = {}
        self.files: dict[str, File] = {}

    def observe(self, event: Event) -> None:
        """Bus listener: keep the latest observation of each kind and subject."""
        if isinstance(event, System):
            self.system = event
        elif isinstance(event, Performance):
            self.performance = event
        elif isinstance(event, Process):
            self.processes[event.name] = event
        elif isinstance(event, File):
            self.files[event.name] = event

    def collect(self) -> list[Event]:
        """Check every rule against the latest observations."""
        out: list[Alert | None] = []
        rules = self._rules
        if self.system is not None:
            sys_ = self.system
            out.append(
                self._check(
                    "cpu", "host", sys_.cpu_percent, rules.cpu_percent, "%", "warning", "CPU"
                )
            )
            out.append(
                self._check(
                    "memory",
                    "host",
                    sys_.memory_percent,
                    rules.memory_percent,
                    "%",
                    "error",
                    "memory",
                )
            )
            for disk in sys_.disks:
                out.append(
                    self._check(
                        "disk",
                        f"disk:{disk.mount}",
                        disk.percent,
                        rules.disk_percent,
                        "%",
                        "error",
                        f"disk {disk.mount}",
                    )
                )
        if self.performance is not None:
            out.extend(self._performance(self.performance))
        for proc in self.processes.values():
            if proc.running:
                limit = self._rss_limits.get(proc.name, rules.process_rss_mib)
                out.append(
                    self._check(
                        "process_rss",
                        f"process:{proc.name}",
                        proc.rss_bytes / MIB,
                        limit,
                        "MiB",
                        "warning",
                        f"{proc.name} RSS",
                    )
                )
        for watched in self.files.values():
            if watched.growth_bytes_per_day is not None and (
                watched.growth_span_s >= MIN_GROWTH_SPAN_S
            ):
                limit = self._growth_limits.get(watched.name, rules.file_growth_mib_per_day)
                out.append(
                    self._check(
                        "file_growth",
                        f"file:{watched.name}",
                        watched.growth_bytes_per_day / MIB,
                        limit,
                        "MiB/day",
                        "warning",
                        f"{watched.name} growth",
                    )
                )
        return [a for a in out if a is not None]

    def _performance(self, perf: Performance) -> list[Alert | None]:
        rules = self._rules
        out: list[Alert | None] = []
        by_name = {q.of: q for q in perf.latencies}
        gateway = by_name.get("gateway")
        if gateway is not None and gateway.count:
            out.append(
                self._check(
                    "gateway_latency",
                    "gateway",
                    gateway.p50,
                    rules.gateway_latency_ms,
                    "ms",
                    "warning",
                    "gateway latency (p50)",
                )
            )
        command = by_name.get("command")
        if command is not None and command.count:
            out.append(
                self._check(
                    "command_latency",
                    "commands",
                    command.p95,
                    rules.command_p95_ms,
                    "ms",
                    "warning",
                    "command latency (p95)",
                )
            )
        if perf.commands >= MIN_COMMANDS_FOR_RATE:
            rate = 100.0 * perf.commands_failed / perf.commands
            out.append(
                self._check(
                    "command_errors",
                    "commands",
                    rate,
                    rules.command_error_rate_percent,
                    "%",
                    "error",
                    f"command error rate ({perf.commands_failed:,} of {perf.commands:,})",
                )
            )
        return out

    def _check(
        self,
        rule: str,
        subject: str,
        value: float,
        threshold: float,
        unit: str,
        severity: Severity,
        what: str,
    ) -> Alert | None:
        breached = value > threshold
        shown = f"{value:,.1f} {unit}"
        if breached:
            message = f"{what} {shown}, above {threshold:,g} {unit}"
        else:
            message = f"{what} back to {shown} (limit {threshold:,g} {unit})"
        return self._alerts.update(
            rule,
            subject,
            breached,
            severity=severity,
            message=message,
            value=round(value, 2),
            threshold=threshold,
            unit=unit,
        )
