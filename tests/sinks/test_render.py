"""Each channel's message for a realistic window: within Discord's limits, showing the facts."""

from __future__ import annotations

import json

import msgspec

from astra.events import (
    Alert,
    Command,
    Component,
    DiskStat,
    Error,
    Event,
    File,
    Guild,
    Health,
    Latency,
    Lifecycle,
    Log,
    MemberDay,
    Message,
    NetStat,
    Performance,
    ProblemGroup,
    Process,
    ProcessDay,
    Quantiles,
    Ranked,
    Reaction,
    Report,
    System,
)
from astra.sinks.messages import (
    DESCRIPTION_MAX,
    EMBEDS_PER_MESSAGE,
    FIELD_NAME_MAX,
    FIELD_VALUE_MAX,
    FIELDS_PER_EMBED,
    MESSAGE_TEXT_MAX,
    TITLE_MAX,
    Embed,
    fit_embed,
    pack_messages,
)
from astra.sinks.render import render_window
from astra.sinks.render.format import sparkline
from astra.streams.windows import Window
from astra.units import fmt_bytes, fmt_duration, fmt_ms

T0 = 1_790_000_000.0
HOSTILE = "@everyone <@&123> **bold** `tick` ```fence``` [link](http://x)"


def window(channel: str, events: list[Event], span: float = 30.0) -> Window:
    """A closed window of ``events`` on ``channel``, numbered from seq 1."""
    for seq, event in enumerate(events, 1):
        msgspec.structs.force_setattr(event, "seq", seq)
    return Window(channel=channel, events=events, opened=T0, closed=T0 + span)


def assert_within_limits(embeds: list[Embed]) -> str:
    """Every embed already fits (nothing to cut) and the packed posts respect every limit."""
    assert embeds
    for embed in embeds:
        assert fit_embed(embed) == embed, "the renderer left fitting to the packer"
        assert len(embed.title) <= TITLE_MAX and len(embed.description) <= DESCRIPTION_MAX
        assert len(embed.fields) <= FIELDS_PER_EMBED
        for field in embed.fields:
            assert field.name and field.value
            assert len(field.name) <= FIELD_NAME_MAX and len(field.value) <= FIELD_VALUE_MAX
            # Code blocks are closed: an odd number of fences would swallow the rest.
            assert field.value.count("```") % 2 == 0
    for message in pack_messages(embeds, []):
        assert len(message.embeds) <= EMBEDS_PER_MESSAGE
        assert sum(e.text_length() for e in message.embeds) <= MESSAGE_TEXT_MAX
    return json.dumps([msgspec.to_builtins(e) for e in embeds], ensure_ascii=False)


def host(ts: float, cpu: float = 37.5, memory: float = 93.2) -> System:
    """A realistic System reading of a small host at ``ts``."""
    return System(
        ts=ts,
        source="astra",
        interval_s=120,
        cpu_percent=cpu,
        per_cpu=[cpu + 10, cpu - 10],
        load=[0.8, 0.6, 0.5],
        cores=2,
        memory_total_bytes=8 * 2**30,
        memory_used_bytes=int(8 * 2**30 * memory / 100),
        memory_percent=memory,
        swap_total_bytes=2 * 2**30,
        swap_used_bytes=2**28,
        swap_percent=12.5,
        disks=[
            DiskStat(
                mount="/",
                device="/dev/vda",
                total_bytes=250 * 2**30,
                used_bytes=231 * 2**30,
                percent=92.4,
                read_bytes_per_s=40_960.0,
                write_bytes_per_s=1_250_000.0,
            ),
            DiskStat(
                mount="/srv", device="/dev/vdb", total_bytes=2**40, used_bytes=2**38, percent=25.0
            ),
        ],
        net=NetStat(
            bytes_sent_per_s=3_200.0,
            bytes_recv_per_s=12_700.0,
            packets_sent_per_s=9.0,
            packets_recv_per_s=14.0,
        ),
        uptime_s=3 * 86400 + 4 * 3600,
        cpu_trend=[12.0, 20.0, 35.0, 60.0, 37.5],
        memory_trend=[80.0, 85.0, 90.0, 93.2],
    )


def test_performance_channel_shows_host_processes_files_pipeline_and_percentiles() -> None:
    """The performance post carries units, separators, sparklines and the percentile table."""
    events: list[Event] = [
        host(T0 + 1),
        Process(
            ts=T0 + 2,
            name="astra",
            pid=4242,
            cpu_percent=0.4,
            rss_bytes=41 * 2**20,
            threads=4,
            fds=12,
            connections=2,
            uptime_s=7200,
            rss_trend=[40e6, 41e6, 43e6],
        ),
        Process(
            ts=T0 + 2,
            name=HOSTILE,
            pid=999,
            cpu_percent=180.0,
            rss_bytes=812 * 2**20,
            threads=31,
            fds=220,
            connections=14,
            uptime_s=86400 * 2,
            restarts=3,
            change="restarted",
            rss_trend=[700e6, 760e6, 812e6],
        ),
        Process(ts=T0 + 3, name="worker", running=False, pid=77, change="gone"),
        File(
            ts=T0 + 4,
            name="games.db",
            path="/srv/bot/games.db",
            size_bytes=412 * 2**20,
            growth_bytes_per_day=6.1 * 2**20,
            growth_span_s=86400,
            size_trend=[400e6, 405e6, 412e6],
        ),
        Performance(
            ts=T0 + 5,
            window_s=60,
            events_in=12_345,
            events_per_s=205.75,
            queue_depth=1_234,
            delivered=12_000,
            delivery_ms=Quantiles(
                of="delivery", count=12_000, p50=15_200, p95=29_800, p99=30_400, max=31_000
            ),
            retries=2,
            rate_limited=1,
            dropped=0,
            commands=4_000,
            commands_failed=12,
            latencies=[
                Quantiles(of="gateway", count=60, p50=41.2, p95=88.0, p99=120.0, max=130.0),
                Quantiles(of="command", count=4_000, p50=120, p95=2_400, p99=5_100, max=9_000),
            ],
            slow_commands=[
                Quantiles(of="vote", count=1_200, p50=800, p95=3_100, p99=6_000, max=9_000)
            ],
            rate_trend=[150.0, 180.0, 205.75],
        ),
        *[Latency(ts=T0 + 6 + i, ms=40.0 + i) for i in range(5)],
    ]
    text = assert_within_limits(render_window(window("performance", events)))
    for fact in (
        "37.5 %",
        "93.2 %",
        "7.46 GiB of 8 GiB",
        "92 %",
        "40 KiB/s",
        "12.4 KiB/s",
        "3 d 4 h",
        "812 MiB",
        "not running",
        "412 MiB",
        "+6.1 MiB/day",
        "12,345",
        "205.8/s",
        "1,234",
        "p95 29.8 s",
        "429s 1",
        "gateway",
        "2.4 s",
        "vote",
        "4,000 run",
    ):
        assert fact in text, fact
    assert sparkline([12.0, 20.0, 35.0, 60.0, 37.5], 0, 100) in text
    assert "@everyone" not in text.replace("@\u200beveryone", "")


def test_logs_channel_groups_errors_and_lists_alerts() -> None:
    """143 errors of one kind make one group with first/last; alerts show state and severity."""
    trace = 'Traceback:\n  File "bot.py", line 10, in handle_vote\nKeyError: 12'
    events: list[Event] = [
        Error(ts=T0 + i, type="KeyError", message=f"KeyError: {1000 + i}", traceback=trace)
        for i in range(143)
    ]
    events += [
        Log(ts=T0 + 1, level="info", message="tick"),
        Log(ts=T0 + 2, level="warning", message=HOSTILE, logger="bot"),
        Command(ts=T0 + 3, name="play", ok=False, error="Timeout after 30s"),
        Alert(
            ts=T0 + 4,
            rule="memory",
            subject="host",
            state="firing",
            severity="error",
            message="memory 93.2 %, above 90 %",
            value=93.2,
            threshold=90,
            unit="%",
            since=T0 + 4,
        ),
        Alert(
            ts=T0 + 20,
            rule="cpu",
            subject="host",
            state="resolved",
            severity="warning",
            message="CPU back to 40.0 % (limit 90 %)",
            since=T0 - 600,
        ),
        Alert(
            ts=T0 + 21,
            rule="process_down",
            subject="process:bot",
            state="firing",
            severity="critical",
            message="watched process bot is not running",
            since=T0,
        ),
    ]
    embeds = render_window(window("logs", events))
    text = assert_within_limits(embeds)
    assert "KeyError in handle\\\\_vote ×143" in text
    assert f"first <t:{int(T0)}:T> · last <t:{int(T0 + 142)}:T>" in text
    assert text.count("KeyError in handle") == 1
    assert "memory 93.2 %, above 90 %" in text and "🔴 **critical**" in text
    assert "✅ **resolved**" in text and "after 10 min" in text
    assert embeds[0].color == 0xE74C3C  # a critical alert colours the post
    assert "@everyone" not in text.replace("@\u200beveryone", "")


def test_diagnostics_channel_shows_health_and_the_daily_report() -> None:
    """Score, reasons, recommendations, components and the report's tables all appear."""
    health = Health(
        ts=T0 + 5,
        score=65,
        reasons=["memory 93.2 %, above 90 %", "disk / at 92 %", HOSTILE],
        recommendations=["memory 93 %: the watched bot grew 40 MiB in 1 h; look for a leak"],
        components=[
            Component(
                name="collector system", status="ok", detail="every 120 s · 12 runs", last_ok=T0
            ),
            Component(
                name="collector files", status="warning", detail="last run failed: PermissionError"
            ),
            Component(
                name="channel logs",
                status="error",
                detail="no post for 12 min, 3,400 events waiting",
                last_ok=T0 - 720,
            ),
        ],
    )
    report = Report(
        ts=T0 + 6,
        day="2026-09-21",
        timezone="Europe/Berlin",
        start=T0 - 86400,
        end=T0,
        events={"message": 120_000, "command.ok": 8_000, "error": 143},
        top_commands=[Ranked("vote", 4_000), Ranked(HOSTILE, 12)],
        top_guilds=[Ranked("1419858425424253000", 90_000)],
        problems=[
            ProblemGroup(
                label="KeyError in handle_vote",
                sample="KeyError: 1",
                severity="error",
                count=143,
                first=T0 - 3600,
                last=T0 - 60,
            )
        ],
        problem_total=150,
        alerts_fired=3,
        host_uptime_s=3 * 86400,
        processes=[ProcessDay(name="bot", up_percent=99.3, restarts=1, peak_rss_bytes=900 * 2**20)],
        peak_cpu_percent=97.5,
        peak_memory_percent=93.2,
        delivered=128_143,
        delivery_p95_ms=31_000,
        retries=4,
        rate_limited=1,
        dropped=0,
    )
    events: list[Event] = [Lifecycle(ts=T0, action="started", detail="astra 0.1.0"), health, report]
    embeds = render_window(window("diagnostics", events))
    text = assert_within_limits(embeds)
    for fact in (
        "health 65/100",
        "Why not 100",
        "What to do",
        "grew 40 MiB in 1 h",
        "🔴 **channel logs**",
        "🟡 **collector files**",
        f"<t:{int(T0)}:R>",
        "daily report · 2026-09-21 (Europe/Berlin)",
        "120,000",
        "vote",
        "×143",
        "99.3 %",
        "97.5 %",
        "128,143 events delivered",
        "worst p95 31 s",
    ):
        assert fact in text, fact
    assert any(e.title.startswith("🩺 health") and e.color == 0xE67E22 for e in embeds)


def test_analytics_channel_keeps_its_summary_and_adds_an_activity_trend() -> None:
    """Commands, guilds, reactions and people, with a sparkline of activity over the window."""
    events: list[Event] = []
    for i in range(600):
        events.append(Message(ts=T0 + i / 20, guild_id=i % 7, author_id=i % 50, length=12))
        events.append(
            Command(ts=T0 + i / 20, name=f"cmd{i % 30}", duration_ms=float(i % 90), guild_id=i % 7)
        )
    events.append(Reaction(ts=T0 + 29, action="add", emoji="👍"))
    events.append(Guild(ts=T0 + 29, action="join", guild_id=1, name=HOSTILE))
    text = assert_within_limits(render_window(window("analytics", events)))
    assert "activity " in text and "1,200" not in text  # counts are per kind
    assert "600" in text and "50 distinct authors" in text


def test_a_huge_window_still_fits() -> None:
    """Hundreds of error groups, processes and alerts are cut to the limits, not refused."""
    events: list[Event] = [
        Error(
            ts=T0 + i, type=f"E{i}", message="x" * 3000, traceback=f'File "a.py", line 1, in f{i}'
        )
        for i in range(300)
    ]
    events += [
        Alert(ts=T0, rule=f"r{i}", subject="s", state="firing", message="y" * 3000)
        for i in range(100)
    ]
    assert_within_limits(render_window(window("logs", events)))
    perf: list[Event] = [
        Process(
            ts=T0,
            name=f"p{i}" * 20,
            pid=i + 1,
            rss_bytes=i,
            change="restarted",
            rss_trend=[1.0, 2.0],
        )
        for i in range(200)
    ]
    assert_within_limits(render_window(window("performance", perf)))


def test_formatting_helpers() -> None:
    """Units, durations and sparklines read the way an operator expects."""
    assert fmt_bytes(512) == "512 B" and fmt_bytes(412 * 2**20) == "412 MiB"
    assert fmt_bytes(1.5 * 2**30) == "1.5 GiB"
    assert fmt_duration(45) == "45 s" and fmt_duration(3720) == "1 h 2 min"
    assert fmt_duration(3 * 86400 + 4 * 3600) == "3 d 4 h"
    assert fmt_ms(840) == "840 ms" and fmt_ms(1250) == "1.25 s"
    assert sparkline([0, 50, 100], 0, 100) == "▁▅█"
    assert sparkline([]) == "" and sparkline([3, 3]) == "▄▄"


def test_report_uptime_table_stays_closed_beside_the_host_line() -> None:
    """Many long process names: the code block is sized for what the host line leaves."""
    processes = [
        ProcessDay(
            name=f"worker-{i:02d}-" + "x" * 45,
            up_percent=99.9,
            restarts=i,
            peak_rss_bytes=(100 + i) * 2**20,
        )
        for i in range(11)
    ]
    report = Report(
        ts=T0,
        day="2026-09-21",
        timezone="UTC",
        start=T0 - 86400,
        end=T0,
        host_uptime_s=86400 * 40,
        processes=processes,
    )
    embeds = render_window(window("diagnostics", [report]))
    assert_within_limits(embeds)
    uptime = next(f for e in embeds for f in e.fields if f.name == "Uptime")
    assert uptime.value.startswith("host up ")
    assert uptime.value.count("```") == 2 and uptime.value.endswith("```")


def test_a_fleet_report_lists_its_members_and_no_single_host_uptime() -> None:
    """A fleet's daily report shows a row per member (events, errors, peaks, host uptime)
    and, past the shown rows, how many more; one host's uptime is not passed off as the
    fleet's."""
    members = [
        MemberDay(
            name=f"shard-host-{i}",
            events=1000 * i,
            problems=i,
            peak_cpu_percent=50.0 + i,
            peak_memory_percent=30.0,
            host_uptime_s=3600.0 * i,
        )
        for i in range(1, 24)
    ]
    report = Report(
        ts=T0,
        day="2026-09-21",
        timezone="UTC",
        start=T0 - 86400,
        end=T0,
        host_uptime_s=86400,
        processes=[ProcessDay(name="shard-host-1/bot", up_percent=100.0)],
        members=members,
    )
    embeds = render_window(window("diagnostics", [report]))
    assert_within_limits(embeds)
    fleet = next(f for e in embeds for f in e.fields if f.name.startswith("Fleet"))
    assert fleet.name == "Fleet · 23 members"
    assert "shard-host-1 " in fleet.value and "1,000" in fleet.value
    assert fleet.value.splitlines()[-2].split()[:3] == [
        "+9",
        "more",
        f"{sum(range(15, 24)) * 1000:,}",
    ]
    uptime = next(f for e in embeds for f in e.fields if f.name == "Uptime")
    assert not uptime.value.startswith("host up") and "shard-host-1/bot" in uptime.value
