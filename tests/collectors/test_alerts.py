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
    Log,
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
    """The given CPU, memory and disk use, beside a large bot, a growing file and slow commands."""
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

    clock.now += 90
    calm = [
        System(
            interval_s=90,
            cpu_percent=20,
            memory_percent=50,
            disks=[DiskStat(mount="/", percent=50), DiskStat(mount="/srv", percent=10)],
        ),
        Process(name="bot", rss_bytes=100 * 2**20),
        Process(name="small", rss_bytes=10 * 2**20),
        File(name="games.db", path="/srv/games.db", growth_bytes_per_day=1.0, growth_span_s=7200),
        # Enough good commands to bring the last 15 minutes' rate under 1 %.
        Performance(
            window_s=60,
            commands=3000,
            commands_failed=0,
            latencies=[
                Quantiles(of="gateway", count=10, p50=40, p95=50, p99=60, max=60),
                Quantiles(of="command", count=1000, p50=100, p95=300, p99=400, max=500),
            ],
        ),
    ]
    for event in calm:
        checks.observe(event)
    resolved = [a for a in checks.collect() if isinstance(a, Alert)]
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


def test_every_performance_window_is_checked() -> None:
    """Two performance windows between two checks: a breach in the earlier one is not lost
    behind a calm later one (performance every 60 s, errors every 90 s)."""
    book = AlertBook(300, Clock())
    checks = ErrorsCollector(AlertsConfig(), book)
    checks.observe(Performance(window_s=60, latencies=[gateway(p50=1800)]))
    checks.observe(Performance(window_s=60, latencies=[gateway(p50=40)]))
    (alert,) = checks.collect()
    assert isinstance(alert, Alert) and alert.rule == "gateway_latency"
    assert alert.state == "firing" and alert.value == 1800


def test_a_quiet_bot_trips_the_error_rate_over_fifteen_minutes() -> None:
    """5 commands a minute never reach 20 in one window, but do over the rolling window."""
    clock = Clock()
    book = AlertBook(300, clock)
    checks = ErrorsCollector(AlertsConfig(), book)
    fired = []
    for _ in range(6):
        checks.observe(Performance(window_s=60, commands=5, commands_failed=1))
        fired += checks.collect()
        clock.now += 60
    last_commands = clock.now - 60
    (alert,) = fired
    assert isinstance(alert, Alert) and alert.rule == "command_errors"
    assert alert.value == 20.0 and "(4 of 20 in 15 min)" in alert.message
    # Commands stop: they age out of the window (under 20 left: nothing to check), and
    # twice the cooldown after the last check the rule resolves.
    resolutions = []
    while clock.now < last_commands + 40 * 60:
        checks.observe(Performance(window_s=60))
        resolutions += [
            (clock.now, a)
            for a in checks.collect()
            if isinstance(a, Alert) and a.state == "resolved"
        ]
        clock.now += 90
    ((when, resolved),) = resolutions
    assert last_commands + 2 * 300 < when <= last_commands + 900 + 2 * 300 + 90
    assert resolved.message == "command error rate: no data for 10 min, resolved without a reading"


def gateway(p50: float) -> Quantiles:
    """Gateway latency quantiles that are all ``p50``."""
    return Quantiles(of="gateway", count=10, p50=p50, p95=p50, p99=p50, max=p50)


def test_a_rule_without_input_resolves_after_two_cooldowns() -> None:
    """The bot disconnects (no gateway samples), a mount and a watched file go away: their
    alerts resolve as "no data" after twice the cooldown, not sooner and not never."""
    clock = Clock()
    book = AlertBook(300, clock)
    checks = ErrorsCollector(AlertsConfig(), book)
    checks.observe(
        System(
            interval_s=120,
            cpu_percent=5,
            memory_percent=5,
            disks=[DiskStat(mount="/", percent=50), DiskStat(mount="/mnt/usb", percent=99)],
        )
    )
    checks.observe(Performance(window_s=60, latencies=[gateway(p50=2500)]))
    checks.observe(
        File(name="games.db", path="/srv/games.db", growth_bytes_per_day=2e9, growth_span_s=7200)
    )
    assert {(a.rule, a.state) for a in checks.collect() if isinstance(a, Alert)} == {
        ("disk", "firing"),
        ("gateway_latency", "firing"),
        ("file_growth", "firing"),
    }
    for _ in range(6):  # 9 minutes of readings without those subjects
        clock.now += 90
        checks.observe(System(interval_s=120, cpu_percent=5, memory_percent=5))
        checks.observe(Performance(window_s=60))
        checks.observe(File(name="games.db", path="/srv/games.db", exists=False))
        assert checks.collect() == []
    assert len(book.firing) == 3
    clock.now += 90
    resolved = {a.rule: a for a in checks.collect() if isinstance(a, Alert)}
    assert set(resolved) == {"disk", "gateway_latency", "file_growth"}
    assert all(a.state == "resolved" and a.value is None for a in resolved.values())
    assert (
        resolved["disk"].message == "disk /mnt/usb: no data for 10 min, resolved without a reading"
    )
    assert resolved["gateway_latency"].message.startswith("gateway latency (p50): no data")
    assert not book.firing
    clock.now += 3600
    assert checks.collect() == [], "resolved once"


def test_no_data_waits_for_slow_inputs() -> None:
    """A rule fed by a collector slower than the cooldown waits three of its intervals."""
    clock = Clock()
    book = AlertBook(300, clock)
    checks = ErrorsCollector(AlertsConfig(), book, input_intervals={"files": 600})
    checks.observe(File(name="db", path="/db", growth_bytes_per_day=2e9, growth_span_s=7200))
    assert len(checks.collect()) == 1
    clock.now += 1700
    assert checks.collect() == [], "under 3 × 600 s"
    clock.now += 200
    (resolved,) = checks.collect()
    assert isinstance(resolved, Alert) and resolved.state == "resolved"


def test_process_down_is_decided_from_process_events() -> None:
    """Not running at any reading since the last check fires process_down (critical), even
    when it is back by the check; running again resolves it."""
    clock = Clock()
    book = AlertBook(300, clock)
    checks = ErrorsCollector(AlertsConfig(), book, process_locators={"bot": "/run/bot.pid"})
    checks.observe(Process(name="bot", pid=10, rss_bytes=2**20))
    assert checks.collect() == []
    checks.observe(Process(name="bot", pid=10, running=False, change="gone"))
    checks.observe(Process(name="bot", pid=11, rss_bytes=2**20, change="returned"))
    clock.now += 90
    (down,) = checks.collect()
    assert isinstance(down, Alert)
    assert (down.rule, down.subject, down.state, down.severity) == (
        "process_down",
        "process:bot",
        "firing",
        "critical",
    )
    assert down.message == "watched process bot is not running (/run/bot.pid); seen back as pid 11"
    checks.observe(Process(name="bot", pid=11, rss_bytes=2**20))
    clock.now += 90
    (back,) = checks.collect()
    assert isinstance(back, Alert) and back.state == "resolved"
    assert back.message == "watched process bot is running again (pid 11)"


def test_restart_notices_go_to_logs_at_most_once_per_cooldown() -> None:
    """A fast restart (new pid, never seen gone) is a warning log; more restarts within the
    cooldown are counted into the next notice."""
    clock = Clock()
    checks = ErrorsCollector(AlertsConfig(), AlertBook(300, clock))

    def restart(pid: int, total: int) -> None:
        checks.observe(Process(name="bot", pid=pid, change="restarted", restarts=total))

    restart(20, 1)
    (first,) = checks.collect()
    assert isinstance(first, Log) and (first.level, first.logger) == ("warning", "astra.process")
    assert (
        first.message == "watched process bot restarted: now pid 20 (1 restart since astra started)"
    )
    clock.now += 60
    restart(21, 2)
    clock.now += 60
    restart(22, 3)
    assert checks.collect() == [], "within the cooldown"
    clock.now += 200
    (second,) = checks.collect()
    assert isinstance(second, Log)
    assert second.message == (
        "watched process bot restarted 2 times: now pid 22 (3 restarts since astra started)"
    )
    clock.now += 600
    assert checks.collect() == []


def test_a_restored_alert_waits_for_input_after_the_restart_before_no_data() -> None:
    """An alert restored from the channels is not resolved as "no data" for the time astra
    was down: its inputs get the usual grace from the restart on."""
    clock = Clock(100_000.0)
    book = AlertBook(300, clock)
    book.restore(
        [
            Alert(
                rule="file_growth",
                subject="file:games.db",
                state="firing",
                message="games.db grows fast",
                since=clock.now - 3 * 3600,
                ts=clock.now - 600,
            )
        ]
    )
    checks = ErrorsCollector(AlertsConfig(), book, input_intervals={"files": 300})
    clock.now += 60
    assert [e for e in checks.collect() if isinstance(e, Alert)] == []
    assert ("file_growth", "file:games.db") in book.firing
    clock.now += 3 * 300 + 1
    (resolved,) = [e for e in checks.collect() if isinstance(e, Alert)]
    assert resolved.state == "resolved" and "no data for 16 min" in resolved.message
