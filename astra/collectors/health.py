"""Health: a score from 0 to 100, the reasons that lowered it, what to do, and components.

A projection of the bus (the latest host, process, file and pipeline figures and each
process's RSS over the last hour) plus the state of the parts that make the pipeline: the
alert book, the collectors' runs, ingest and each channel's delivery.

Scoring: 100, minus 30 / 20 / 10 for each critical / error / warning alert firing, minus
5 for a resource (CPU, memory, a disk) at 80 % or more that is not yet alerting, minus 5
for a component in warning and 15 for one in error, minus 10 if events were dropped in the
last window; never below 0. A collector is in warning when its last run failed, or when it
has not completed a run for three of its intervals (stale: hung, or the loop stalled).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping

from astra.collectors.alerts import AlertBook, Firing
from astra.events import Component, Event, File, Health, Performance, Process, System
from astra.statistics import CollectorStatistics, SidecarStatistics
from astra.units import fmt_bytes, fmt_duration

MIB = 1024 * 1024
RSS_HISTORY_S = 3600.0
PRESSURE_PERCENT = 80.0
ALERT_POINTS = {"warning": 10, "error": 20, "critical": 30}
COMPONENT_POINTS = {"ok": 0, "off": 0, "warning": 5, "error": 15}
MAX_REASONS = 10
# A collector with no successful run for this many intervals is stale (hung, or stalled).
STALE_INTERVALS = 3


class HealthCollector:
    """Emits one ``health`` event per run."""

    name = "health"

    def __init__(
        self,
        alerts: AlertBook,
        snapshot: Callable[[], SidecarStatistics],
        *,
        ingest: Mapping[str, str],
        flush_interval_s: float = 30.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._alerts = alerts
        self._snapshot = snapshot
        self._ingest = dict(ingest)
        self._stale_after = max(300.0, 3 * flush_interval_s)
        self._clock = wall_clock
        self._started = wall_clock()
        self.system: System | None = None
        self.performance: Performance | None = None
        self.processes: dict[str, Process] = {}
        self.files: dict[str, File] = {}
        self._rss: dict[str, deque[tuple[float, int]]] = {}

    def observe(self, event: Event) -> None:
        """Bus listener: keep the latest figures and each process's RSS for an hour."""
        if isinstance(event, System):
            self.system = event
        elif isinstance(event, Performance):
            self.performance = event
        elif isinstance(event, File):
            self.files[event.name] = event
        elif isinstance(event, Process):
            self.processes[event.name] = event
            if event.running:
                history = self._rss.setdefault(event.name, deque(maxlen=1000))
                history.append((event.time, event.rss_bytes))
                while history and event.time - history[0][0] > RSS_HISTORY_S:
                    history.popleft()

    def collect(self) -> list[Event]:
        """Score the system now."""
        return [self.assess()]

    def assess(self) -> Health:
        """The health event for this moment."""
        components = self._components()
        penalties: list[tuple[int, str, str]] = []
        firing_rules = set()
        for alert in sorted(self._alerts.firing.values(), key=lambda a: -ALERT_POINTS[a.severity]):
            firing_rules.add((alert.rule, alert.subject))
            penalties.append((ALERT_POINTS[alert.severity], alert.message, self._advice(alert)))
        penalties.extend(self._pressure(firing_rules))
        for component in components:
            points = COMPONENT_POINTS[component.status]
            if points:
                penalties.append(
                    (
                        points,
                        f"{component.name}: {component.detail}",
                        _component_advice(component),
                    )
                )
        if self.performance is not None and self.performance.dropped:
            penalties.append(
                (
                    10,
                    f"{self.performance.dropped:,} events dropped in the last window",
                    "Discord was unreachable for longer than the buffer holds: "
                    "raise [buffer] max_events or check the network",
                )
            )
        penalties.sort(key=lambda p: -p[0])
        score = max(0, 100 - sum(p[0] for p in penalties))
        recommendations = list(dict.fromkeys(p[2] for p in penalties if p[2]))
        return Health(
            source="astra",
            ts=self._clock(),
            score=score,
            reasons=[p[1] for p in penalties][:MAX_REASONS],
            recommendations=recommendations[:MAX_REASONS],
            components=components,
        )

    # --- components ------------------------------------------------------------------

    def _components(self) -> list[Component]:
        now = self._clock()
        snapshot = self._snapshot()
        out = [self._collector(status, now) for status in snapshot.collectors]
        totals = snapshot.totals
        received = totals.received
        rejected = totals.rejected_http + totals.malformed_udp
        listening = " · ".join(f"{k.upper()} {v}" for k, v in self._ingest.items() if v)
        out.append(
            Component(
                name="ingest",
                status="ok" if listening else "off",
                detail=f"{listening or 'off'} · {received:,} received · {rejected:,} rejected",
            )
        )
        for channel, figures in snapshot.channels.items():
            mode = figures.delivery.mode
            last = figures.delivery.last_post
            waiting = figures.stream.pending
            silent_for = now - (last if last is not None else self._started)
            name = f"channel {channel}"
            if waiting and silent_for > self._stale_after:
                detail = f"no post for {fmt_duration(silent_for)}, {waiting:,} events waiting"
                out.append(Component(name=name, status="error", detail=detail, last_ok=last))
            else:
                via = "terminal preview" if mode == "preview" else "webhook"
                detail = f"{via} · {waiting:,} pending"
                out.append(Component(name=name, status="ok", detail=detail, last_ok=last))
        return out

    def _collector(self, status: CollectorStatistics, now: float) -> Component:
        every = f"every {status.interval_s:g} s"
        name = f"collector {status.name}"
        failed_last = status.last_error_at is not None and (
            status.last_ok is None or status.last_error_at > status.last_ok
        )
        if failed_last:
            return Component(
                name=name,
                status="warning",
                detail=f"last run failed: {status.last_error}"[:300],
                last_ok=status.last_ok,
            )
        # A run stuck in the OS (statvfs on a dead mount) neither succeeds nor fails: only
        # the time since the last good run tells. Before the first, count from our start.
        since = status.last_ok if status.last_ok is not None else self._started
        if now - since > STALE_INTERVALS * status.interval_s:
            return Component(
                name=name,
                status="warning",
                detail=f"stale: no successful run for {fmt_duration(now - since)} ({every})",
                last_ok=status.last_ok,
            )
        detail = f"{every} · {status.runs:,} runs" if status.runs else f"{every} · not run yet"
        return Component(name=name, status="ok", detail=detail, last_ok=status.last_ok)

    # --- reasons and advice ----------------------------------------------------------

    def _pressure(self, firing: set[tuple[str, str]]) -> list[tuple[int, str, str]]:
        system = self.system
        if system is None:
            return []
        out = []
        checks = [
            ("cpu", "host", "CPU", system.cpu_percent),
            ("memory", "host", "memory", system.memory_percent),
        ]
        checks += [("disk", f"disk:{d.mount}", f"disk {d.mount}", d.percent) for d in system.disks]
        for rule, subject, label, value in checks:
            if value >= PRESSURE_PERCENT and (rule, subject) not in firing:
                fake = Firing(
                    rule=rule,
                    subject=subject,
                    severity="warning",
                    message="",
                    since=0.0,
                    value=value,
                )
                out.append((5, f"{label} at {value:.0f} %", self._advice(fake)))
        return out

    def _advice(self, alert: Firing) -> str:
        value = alert.value if alert.value is not None else 0.0
        name = alert.subject.partition(":")[2]
        if alert.rule == "memory":
            return self._memory_advice(value)
        if alert.rule == "cpu":
            busiest = max(
                (p for p in self.processes.values() if p.running),
                key=lambda p: p.cpu_percent,
                default=None,
            )
            if busiest is not None and busiest.cpu_percent >= 10:
                return (
                    f"CPU {value:.0f} %: {busiest.name} uses {busiest.cpu_percent:.0f} % "
                    "of a core; profile it or move work off this host"
                )
            return f"CPU {value:.0f} %: no watched process stands out; look at the host's top"
        if alert.rule == "disk":
            return self._disk_advice(name, value)
        if alert.rule == "gateway_latency":
            return (
                f"gateway latency {value:,.0f} ms: the bot's event loop is blocked or the "
                "network is slow; look for blocking calls in event handlers"
            )
        if alert.rule == "command_latency":
            slow = self.performance.slow_commands if self.performance else []
            if slow:
                return (
                    f"commands p95 {value:,.0f} ms: slowest is {slow[0].of} "
                    f"(p95 {slow[0].p95:,.0f} ms); cache or defer its work"
                )
            return f"commands p95 {value:,.0f} ms: find the slow command in the analytics channel"
        if alert.rule == "command_errors":
            return (
                f"{value:.1f} % of commands failed: the logs channel groups the errors "
                "by type and place"
            )
        if alert.rule == "process_down":
            return (
                f"{name} is not running: check its service manager "
                "(systemctl status, journalctl) and whether it crashed"
            )
        if alert.rule == "process_rss":
            grown = self._growth(name)
            extra = f"; it grew {fmt_bytes(grown[0])} in {fmt_duration(grown[1])}" if grown else ""
            return f"{name} uses {value:,.0f} MiB{extra}: look for a leak, or raise rss_limit_mib"
        if alert.rule == "file_growth":
            return (
                f"{name} grows {value:,.1f} MiB/day: prune old rows, VACUUM, or move it to "
                "a bigger volume"
            )
        return ""

    def _memory_advice(self, value: float) -> str:
        grown = [(g[0], g[1], n) for n in self._rss if (g := self._growth(n))]
        if grown:
            size, span, who = max(grown)
            if size >= MIB:
                return (
                    f"memory {value:.0f} %: the watched {who} grew {fmt_bytes(size)} in "
                    f"{fmt_duration(span)}; look for a leak or restart it"
                )
        biggest = max(
            (p for p in self.processes.values() if p.running),
            key=lambda p: p.rss_bytes,
            default=None,
        )
        if biggest is not None:
            return (
                f"memory {value:.0f} %: the largest watched process is {biggest.name} "
                f"({fmt_bytes(biggest.rss_bytes)}); free memory or add RAM or swap"
            )
        return f"memory {value:.0f} %: free memory or add RAM or swap"

    def _disk_advice(self, mount: str, value: float) -> str:
        on_mount = [
            f
            for f in self.files.values()
            if f.size_bytes is not None and _on_mount(f.path, mount, self.system)
        ]
        if on_mount:
            top = max(on_mount, key=lambda f: f.growth_bytes_per_day or 0.0)
            growth = (
                f", +{fmt_bytes(top.growth_bytes_per_day)}/day" if top.growth_bytes_per_day else ""
            )
            return (
                f"disk {mount} {value:.0f} %: {top.name} is "
                f"{fmt_bytes(top.size_bytes or 0)}{growth}; prune or move it"
            )
        return f"disk {mount} {value:.0f} %: free space (old logs, caches) or grow the volume"

    def _growth(self, name: str) -> tuple[int, float] | None:
        history = self._rss.get(name)
        if not history or len(history) < 2:
            return None
        (t0, rss0), (t1, rss1) = history[0], history[-1]
        return (rss1 - rss0, t1 - t0) if rss1 > rss0 else None


def _on_mount(path: str, mount: str, system: System | None) -> bool:
    # The file is on the longest mount point that prefixes its path.
    mounts = [d.mount for d in system.disks] if system else [mount]
    best = max((m for m in mounts if path.startswith(m.rstrip("/") + "/")), key=len, default="")
    return best == mount


def _component_advice(component: Component) -> str:
    if component.name.startswith("collector") and component.detail.startswith("stale"):
        return (
            f"{component.name} is {component.detail}: a run may hang in the OS (a dead "
            "network mount, an unresponsive /proc); check the host"
        )
    if component.name.startswith("collector"):
        return f"{component.name} fails: {component.detail}; the logs channel has the traceback"
    if component.name.startswith("channel"):
        return (
            f"{component.name}: check the webhook (deleted? wrong URL?) and the network; "
            "astra keeps retrying"
        )
    return ""
