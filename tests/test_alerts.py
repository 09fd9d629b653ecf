"""Alerts: cooldown, reminders, escalation, resolution, flapping, and the default rules."""

from __future__ import annotations

from astra.collectors.alerts import AlertBook
from astra.collectors.errors import ErrorsCollector
from astra.config import AlertsConfig
from astra.events import (
    Alert,
    DiskStat,
    Event,
    File,
    Performance,
    Process,
    Quantiles,
    System,
)


class Clock:
    """A hand-driven clock."""

    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_fires_once_within_the_cooldown_then_reminds_then_resolves() -> None:
    """One firing, silence for the cooldown, a reminder, then one resolution when it clears."""
    clock = Clock()
    book = AlertBook(cooldown_s=300, clock=clock)
    first = book.update("cpu", "host", True, message="CPU 95 %", value=95, threshold=90)
    assert first is not None and (first.state, first.repeat, first.since) == ("firing", 0, 10_000)
    for _ in range(4):
        clock.now += 60
        assert book.update("cpu", "host", True, message="CPU 96 %") is None
    clock.now += 60
    reminder = book.update("cpu", "host", True, message="CPU 97 %", value=97)
    assert reminder is not None and reminder.repeat == 1 and reminder.since == 10_000
    clock.now += 30
    resolved = book.update("cpu", "host", False, message="CPU back to 40 %", value=40)
    assert resolved is not None
    assert (resolved.state, resolved.message, resolved.since) == (
        "resolved",
        "CPU back to 40 %",
        10_000,
    )
    assert book.update("cpu", "host", False) is None
    assert not book.firing


def test_escalation_is_sent_at_once() -> None:
    """A rise in severity is news: it does not wait for the cooldown."""
    clock = Clock()
    book = AlertBook(300, clock)
    assert book.update("disk", "disk:/", True, severity="warning") is not None
    clock.now += 10
    escalated = book.update("disk", "disk:/", True, severity="critical")
    assert escalated is not None and escalated.severity == "critical"


def test_flapping_within_the_cooldown_is_held_back() -> None:
    """Breach, clear, breach again within the cooldown: the second breach waits, then fires."""
    clock = Clock()
    book = AlertBook(300, clock)
    assert book.update("memory", "host", True) is not None
    clock.now += 30
    assert book.update("memory", "host", False) is not None
    clock.now += 30
    assert book.update("memory", "host", True) is None
    clock.now += 30
    assert book.update("memory", "host", False) is None, "never announced, so never resolved"
    clock.now += 30
    assert book.update("memory", "host", True) is None
    clock.now += 300
    late = book.update("memory", "host", True)
    assert late is not None and late.state == "firing" and late.repeat == 0


def test_subjects_are_independent() -> None:
    """Two disks breaching are two alerts."""
    book = AlertBook(300, Clock())
    assert book.update("disk", "disk:/", True) is not None
    assert book.update("disk", "disk:/srv", True) is not None
    assert len(book.firing) == 2


def observations(cpu: float, memory: float, disk: float) -> list[Event]:
    return [
        System(
            interval_s=90,
            cpu_percent=cpu,
            memory_percent=memory,
            disks=[DiskStat(mount="/", percent=disk), DiskStat(mount="/srv", percent=10)],
        ),
        Process(name="bot", rss_bytes=1500 * 2**20),
        Process(name="small", rss_bytes=10 * 2**20),
        File(
            name="games.db",
            path="/srv/games.db",
            size_bytes=1,
            growth_bytes_per_day=2 * 2**30,
            growth_span_s=7200,
        ),
        Performance(
            window_s=60,
            commands=1000,
            commands_failed=25,
            latencies=[
                Quantiles(of="gateway", count=10, p50=1500, p95=2000, p99=2000, max=2000),
                Quantiles(of="command", count=1000, p50=100, p95=2500, p99=3000, max=4000),
            ],
        ),
    ]


def test_default_rules_fire_with_severities_and_clear() -> None:
    """Every default rule fires on a breach and resolves once the figures are normal again."""
    clock = Clock()
    book = AlertBook(300, clock)
    checks = ErrorsCollector(AlertsConfig(), book)
    for event in observations(cpu=95, memory=93, disk=91):
        checks.observe(event)
    fired = {(a.rule, a.subject): a for a in checks.collect() if isinstance(a, Alert)}
    assert set(fired) == {
        ("cpu", "host"),
        ("memory", "host"),
        ("disk", "disk:/"),
        ("process_rss", "process:bot"),
        ("file_growth", "file:games.db"),
        ("gateway_latency", "gateway"),
        ("command_latency", "commands"),
        ("command_errors", "commands"),
    }
    assert fired[("memory", "host")].severity == "error"
    assert fired[("cpu", "host")].message == "CPU 95.0 %, above 90 %"
    assert fired[("command_errors", "commands")].value == 2.5
    clock.now += 90
    assert checks.collect() == [], "nothing repeats within the cooldown"

    calm = ErrorsCollector(AlertsConfig(), book)
    for event in observations(cpu=20, memory=50, disk=50):
        calm.observe(event)
    calm.observe(Process(name="bot", rss_bytes=100 * 2**20))
    calm.observe(
        File(name="games.db", path="/srv/games.db", growth_bytes_per_day=1.0, growth_span_s=7200)
    )
    calm.observe(
        Performance(
            window_s=60,
            commands=1000,
            commands_failed=0,
            latencies=[
                Quantiles(of="gateway", count=10, p50=40, p95=50, p99=60, max=60),
                Quantiles(of="command", count=1000, p50=100, p95=300, p99=400, max=500),
            ],
        )
    )
    resolved = [a for a in calm.collect() if isinstance(a, Alert)]
    assert len(resolved) == 8 and all(a.state == "resolved" for a in resolved)
    assert not book.firing


def test_per_target_limits_and_too_little_data() -> None:
    """Per-process RSS limits apply; a short growth span or few commands do not alert."""
    book = AlertBook(300, Clock())
    checks = ErrorsCollector(AlertsConfig(), book, rss_limits_mib={"small": 5})
    checks.observe(Process(name="small", rss_bytes=10 * 2**20))
    checks.observe(File(name="log", path="/x", growth_bytes_per_day=1e12, growth_span_s=600))
    checks.observe(Performance(window_s=60, commands=5, commands_failed=5))
    (alert,) = checks.collect()
    assert isinstance(alert, Alert) and alert.subject == "process:small" and alert.threshold == 5
