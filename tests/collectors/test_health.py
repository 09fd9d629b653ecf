"""Health: the score, the reasons that lowered it, concrete recommendations, components."""

from __future__ import annotations

from typing import Literal

from astra.collectors.alerts import AlertBook
from astra.collectors.health import HealthCollector
from astra.events import DiskStat, File, Health, Process, System
from astra.statistics import (
    ChannelStatistics,
    CollectorStatistics,
    DeliveryStatistics,
    HttpIngestStatistics,
    SidecarStatistics,
    StreamStatistics,
)

T0 = 1_790_000_000.0


class Clock:
    """A hand-driven clock."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(
    clock: Clock,
    book: AlertBook,
    pending: dict[str, int] | None = None,
    collectors: dict[str, CollectorStatistics] | None = None,
    last_post: dict[str, float] | None = None,
) -> HealthCollector:
    """A health collector reading a fixed statistics snapshot with two channels."""
    modes: dict[str, Literal["discord", "preview"]] = {"logs": "discord", "performance": "preview"}
    channels = {
        name: ChannelStatistics(
            stream=StreamStatistics(pending=(pending or {}).get(name, 0)),
            delivery=DeliveryStatistics(mode=mode, last_post=(last_post or {}).get(name)),
        )
        for name, mode in modes.items()
    }
    snapshot = SidecarStatistics(
        version="test",
        at=T0,
        started=T0,
        http=HttpIngestStatistics(received=1234, rejected=2),
        channels=channels,
        collectors=list((collectors or {}).values()),
    )
    health = HealthCollector(
        book,
        lambda: snapshot,
        ingest={"http": "127.0.0.1:8787", "udp": ""},
        flush_interval_s=30,
        wall_clock=clock,
    )
    return health


def test_a_quiet_system_scores_100() -> None:
    """No alerts, no pressure, components fine: 100 and nothing to do."""
    clock = Clock()
    health = make(clock, AlertBook(300, clock))
    health.observe(System(interval_s=120, cpu_percent=5, memory_percent=30))
    event = health.assess()
    assert isinstance(event, Health)
    assert (event.score, event.reasons, event.recommendations) == (100, [], [])
    names = [c.name for c in event.components]
    assert names == ["ingest", "channel logs", "channel performance"]
    assert event.components[0].detail == "HTTP 127.0.0.1:8787 · 1,234 received · 2 rejected"


def test_memory_alert_names_the_growing_process() -> None:
    """A memory alert lowers the score and the advice names the watched process that grew."""
    clock = Clock()
    book = AlertBook(300, clock)
    health = make(clock, book)
    for minute, rss in ((0, 500), (30, 520), (60, 540)):
        health.observe(Process(ts=T0 + minute * 60, name="bot", rss_bytes=rss * 2**20))
    health.observe(Process(ts=T0 + 3600, name="astra", rss_bytes=40 * 2**20))
    health.observe(
        System(
            interval_s=120,
            cpu_percent=85,
            memory_percent=93,
            disks=[DiskStat(mount="/", percent=50)],
        )
    )
    book.update(
        "memory", "host", True, severity="error", message="memory 93.0 %, above 90 %", value=93.0
    )
    event = health.assess()
    assert event.score == 100 - 20 - 5  # the error alert, and CPU at 85 % (pressure)
    assert event.reasons == ["memory 93.0 %, above 90 %", "CPU at 85 %"]
    assert event.recommendations[0] == (
        "memory 93 %: the watched bot grew 40 MiB in 1 h; look for a leak or restart it"
    )


def test_disk_advice_names_the_watched_file_on_that_mount() -> None:
    """A full disk's advice points at the watched file growing on it."""
    clock = Clock()
    book = AlertBook(300, clock)
    health = make(clock, book)
    health.observe(
        System(
            interval_s=120,
            cpu_percent=5,
            memory_percent=30,
            disks=[DiskStat(mount="/", percent=20), DiskStat(mount="/srv", percent=95)],
        )
    )
    health.observe(
        File(
            name="games.db",
            path="/srv/bot/games.db",
            size_bytes=412 * 2**20,
            growth_bytes_per_day=6.1 * 2**20,
            growth_span_s=86400,
        )
    )
    book.update("disk", "disk:/srv", True, severity="error", message="disk /srv 95 %", value=95)
    event = health.assess()
    assert event.score == 80
    assert event.recommendations == [
        "disk /srv 95 %: games.db is 412 MiB, +6.1 MiB/day; prune or move it"
    ]


def test_components_report_failing_collectors_and_stalled_channels() -> None:
    """A collector whose last run failed is a warning; a channel with a backlog and no post
    for longer than the staleness limit is an error."""
    clock = Clock()
    failing = CollectorStatistics(
        name="files",
        interval_s=300,
        runs=3,
        failures=1,
        last_ok=T0 - 600,
        last_error="PermissionError: /srv",
        last_error_at=T0 - 10,
    )
    fine = CollectorStatistics(name="system", interval_s=120, runs=5, last_ok=T0 + 12 * 60 - 5)
    health = make(
        clock,
        AlertBook(300, clock),
        pending={"logs": 3400},
        collectors={"files": failing, "system": fine},
        last_post={"logs": T0},
    )
    clock.now += 12 * 60
    event = health.assess()
    by_name = {c.name: c for c in event.components}
    assert by_name["collector files"].status == "warning"
    assert by_name["collector system"].status == "ok"
    assert by_name["channel logs"].status == "error"
    assert by_name["channel logs"].detail == "no post for 12 min, 3,400 events waiting"
    assert by_name["channel logs"].last_ok == T0
    assert by_name["channel performance"].status == "ok"
    assert event.score == 100 - 15 - 5
    assert any("webhook" in r for r in event.recommendations)


def test_a_collector_without_a_good_run_for_three_intervals_is_stale() -> None:
    """A run hung in the OS neither succeeds nor fails: after 3 intervals without a good run
    the collector is a warning, and before its first run we count from astra's start."""
    clock = Clock()
    hung = CollectorStatistics(name="system", interval_s=120, runs=4, last_ok=T0)
    never = CollectorStatistics(name="files", interval_s=300)
    health = make(clock, AlertBook(300, clock), collectors={"system": hung, "files": never})
    clock.now = T0 + 360
    by_name = {c.name: c for c in health.assess().components}
    assert by_name["collector system"].status == "ok", "exactly 3 intervals is not yet stale"
    assert by_name["collector files"].status == "ok"
    clock.now = T0 + 361
    event = health.assess()
    by_name = {c.name: c for c in event.components}
    stale = by_name["collector system"]
    assert (stale.status, stale.last_ok) == ("warning", T0)
    assert stale.detail == "stale: no successful run for 6 min (every 120 s)"
    assert by_name["collector files"].status == "ok"
    assert event.score == 95
    assert any("may hang in the OS" in r for r in event.recommendations)
    clock.now = T0 + 901
    assert {c.name: c.status for c in health.assess().components}["collector files"] == "warning"
