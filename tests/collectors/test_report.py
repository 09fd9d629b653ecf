"""The daily report: its schedule in a time zone (injected clock) and what it is made of."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from astra.collectors.report import DailyReportCollector, next_report_time
from astra.events import (
    Alert,
    Command,
    Error,
    Message,
    Performance,
    Process,
    Quantiles,
    Report,
    System,
)

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, tz: ZoneInfo = BERLIN) -> float:
    """The timestamp of a local ISO time in ``tz``."""
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


class Clock:
    """A hand-driven wall clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_next_report_time_in_berlin_across_days_and_dst() -> None:
    """23:00 Berlin is 21:00 UTC in summer and 22:00 UTC in winter; the next one is tomorrow's."""
    assert next_report_time(at("2026-07-01T10:00"), "23:00", BERLIN) == at("2026-07-01T23:00")
    assert next_report_time(at("2026-07-01T23:00"), "23:00", BERLIN) == at("2026-07-02T23:00")
    summer = datetime.fromtimestamp(at("2026-07-01T23:00"), ZoneInfo("UTC")).hour
    winter = datetime.fromtimestamp(at("2026-01-15T23:00"), ZoneInfo("UTC")).hour
    assert (summer, winter) == (21, 22)
    # The night clocks go back (25 October 2026): still 23:00 local, 25 hours later.
    before = next_report_time(at("2026-10-24T23:30"), "23:00", BERLIN)
    assert before == at("2026-10-25T23:00")
    assert before - at("2026-10-24T23:00") == 25 * 3600
    # On the spring-forward day 02:30 does not exist; the report still comes once that day.
    gap = next_report_time(at("2026-03-29T00:00"), "02:30", BERLIN)
    assert datetime.fromtimestamp(gap, BERLIN).date().isoformat() == "2026-03-29"
    tokyo = ZoneInfo("Asia/Tokyo")
    assert next_report_time(at("2026-07-01T22:59", tokyo), "23:00", tokyo) == at(
        "2026-07-01T23:00", tokyo
    )


def test_report_is_sent_once_at_its_time_and_built_from_the_events() -> None:
    """Nothing before 23:00; at 23:00 one report of the folded events; then a fresh day."""
    clock = Clock(at("2026-07-01T09:00"))
    report = DailyReportCollector("23:00", "Europe/Berlin", clock)
    trace = 'File "bot.py", line 3, in handle_vote'
    events = [
        *[Message(guild_id=7, author_id=i) for i in range(50)],
        *[Command(name="vote", guild_id=7, duration_ms=10) for _ in range(30)],
        *[Command(name="play", guild_id=8) for _ in range(5)],
        Command(name="vote", ok=False, error="KeyError: 3", traceback=trace),
        *[
            Error(ts=clock.now + i, type="KeyError", message=f"KeyError: {i}", traceback=trace)
            for i in range(143)
        ],
        System(interval_s=120, cpu_percent=97.5, memory_percent=60, uptime_s=86400),
        System(interval_s=120, cpu_percent=20, memory_percent=93.2, uptime_s=90000),
        Process(name="bot", rss_bytes=2**20),
        Process(name="bot", running=False, change="gone"),
        Process(name="bot", rss_bytes=3 * 2**20, change="returned", restarts=1),
        Process(name="bot", rss_bytes=2**20),
        Alert(rule="cpu", subject="host", state="firing", message="CPU 97.5 %"),
        Alert(rule="cpu", subject="host", state="firing", message="CPU 97.5 %", repeat=1),
        Performance(
            window_s=60,
            delivered=1000,
            retries=2,
            rate_limited=1,
            dropped=3,
            delivery_ms=Quantiles(
                of="delivery", count=1000, p50=10, p95=31000, p99=32000, max=33000
            ),
        ),
        Performance(
            window_s=60,
            delivered=500,
            delivery_ms=Quantiles(of="delivery", count=500, p50=10, p95=900, p99=1000, max=1000),
        ),
    ]
    for event in events:
        report.observe(event)
    clock.now = at("2026-07-01T22:59:59")
    assert report.collect() == []
    clock.now = at("2026-07-01T23:00:10")
    (sent,) = report.collect()
    assert isinstance(sent, Report)
    assert (sent.day, sent.timezone) == ("2026-07-01", "Europe/Berlin")
    assert sent.start == at("2026-07-01T09:00") and sent.end == clock.now
    assert sent.events["message"] == 50 and sent.events["command.ok"] == 35
    assert sent.events["command.failed"] == 1 and sent.events["error"] == 143
    assert [(r.name, r.count) for r in sent.top_commands] == [("vote", 31), ("play", 5)]
    assert [(r.name, r.count) for r in sent.top_guilds] == [("7", 80), ("8", 5)]
    top = sent.problems[0]
    assert (top.label, top.count) == ("KeyError in handle_vote", 143)
    assert sent.problem_total == 144
    assert sent.alerts_fired == 1
    assert (sent.peak_cpu_percent, sent.peak_memory_percent) == (97.5, 93.2)
    assert sent.host_uptime_s == 90000
    (bot,) = sent.processes
    assert (bot.name, bot.up_percent, bot.restarts, bot.peak_rss_bytes) == (
        "bot",
        75.0,
        1,
        3 * 2**20,
    )
    assert (sent.delivered, sent.retries, sent.rate_limited, sent.dropped) == (1500, 2, 1, 3)
    assert sent.delivery_p95_ms == 31000

    clock.now = at("2026-07-02T12:00")
    assert report.collect() == []
    report.observe(Message())
    clock.now = at("2026-07-02T23:00")
    (next_day,) = report.collect()
    assert isinstance(next_day, Report)
    assert next_day.day == "2026-07-02" and next_day.events == {"message": 1}


def test_a_sleeping_machine_sends_one_report_not_a_backlog() -> None:
    """Waking up three days late sends one report and schedules the next for tonight."""
    clock = Clock(at("2026-07-01T09:00"))
    report = DailyReportCollector("23:00", "Europe/Berlin", clock)
    clock.now = at("2026-07-04T08:00")
    assert len(report.collect()) == 1
    assert report.collect() == []
    assert report.due == at("2026-07-04T23:00")


def test_the_report_names_its_top_guilds_where_the_bot_sent_names() -> None:
    """Top guilds keep their ids; names the bot sent come along, and the embed shows them."""
    from astra.events import Guild, Message
    from astra.sinks.render.report import render_report

    report = DailyReportCollector("23:00", "Europe/Berlin", Clock(1_700_000_000.0))
    report.observe_many([Message(guild_id=1, guild_name="Cats"), Message(guild_id=1)])
    report.observe_many([Guild(action="join", guild_id=2, name="Dogs")])
    report.observe_many([Message(guild_id=2), Message(guild_id=3)])
    built = report.build(1_700_000_100.0)
    assert [(r.name, r.count) for r in built.top_guilds] == [("1", 2), ("2", 1), ("3", 1)]
    assert built.guild_names == {"1": "Cats", "2": "Dogs"}
    embed = render_report(built)[0]
    [guilds] = [f.value for f in embed.fields if f.name == "Top guilds"]
    assert "Cats" in guilds and "Dogs" in guilds and "3 " in guilds


def test_a_fleet_report_has_a_row_per_member_and_keeps_their_processes_apart() -> None:
    """Events carrying members' hosts give the report one row per member (events, errors,
    that host's peaks and uptime), and the same process name on two hosts stays two rows."""
    clock = Clock(at("2026-07-01T09:00"))
    report = DailyReportCollector("23:00", "Europe/Berlin", clock)
    report.observe_many([Message(host="shard-a") for _ in range(5)])
    report.observe_many([Command(name="vote", host="shard-b") for _ in range(3)])
    report.observe_many([Command(name="vote", ok=False, error="KeyError: 1", host="shard-b")])
    report.observe_many([Message(host="shard-a"), Message(host="shard-b")])
    report.observe(Error(type="KeyError", message="KeyError: 2", host="shard-a"))
    report.observe(
        System(interval_s=60, cpu_percent=91, memory_percent=40, uptime_s=100, host="shard-a")
    )
    report.observe(
        System(interval_s=60, cpu_percent=12, memory_percent=70, uptime_s=900, host="shard-b")
    )
    report.observe(Process(name="bot", rss_bytes=2**20, host="shard-a"))
    report.observe(Process(name="bot", running=False, change="gone", host="shard-b"))
    report.observe(Message())  # the poster's own events have no host: no member row
    clock.now = at("2026-07-01T23:00")
    (sent,) = report.collect()
    assert isinstance(sent, Report)
    rows = {m.name: m for m in sent.members}
    assert sorted(rows) == ["shard-a", "shard-b"]
    a, b = rows["shard-a"], rows["shard-b"]
    assert (a.events, a.problems, a.peak_cpu_percent, a.host_uptime_s) == (9, 1, 91, 100)
    assert (b.events, b.problems, b.peak_memory_percent, b.host_uptime_s) == (7, 1, 70, 900)
    assert sent.events["message"] == 8 and sent.problem_total == 2
    assert {(p.name, p.up_percent) for p in sent.processes} == {
        ("shard-a/bot", 100.0),
        ("shard-b/bot", 0.0),
    }


def test_a_single_sidecars_report_has_no_member_rows() -> None:
    """Without fleet hosts on the events, the report lists no members and names processes
    as before."""
    clock = Clock(at("2026-07-01T09:00"))
    report = DailyReportCollector("23:00", "Europe/Berlin", clock)
    report.observe_many([Message() for _ in range(3)])
    report.observe(Process(name="bot", rss_bytes=1))
    clock.now = at("2026-07-01T23:00")
    (sent,) = report.collect()
    assert isinstance(sent, Report)
    assert sent.members == [] and [p.name for p in sent.processes] == ["bot"]
