"""One picture of the fleet: per-member rows, merged latency, and the degraded mark."""

from __future__ import annotations

from astra.events import (
    Error,
    Event,
    Health,
    Latency,
    Log,
    Performance,
    Process,
    Quantiles,
    System,
)
from astra.quantiles import LogHistogram
from astra.sinks.messages import Embed
from astra.sinks.render import render_window
from astra.sinks.render.health import score_color
from astra.streams.windows import Window
from astra.units import fmt_ms
from tests.sinks.test_render import assert_within_limits


def window(channel: str, events: list[Event], note: str = "") -> Window:
    """A closed window of ``events`` for ``channel``."""
    return Window(channel=channel, events=events, opened=1000.0, closed=1030.0, note=note)


def fleet_fields(embeds: list[Embed]) -> dict[str, str]:
    """The fields of the fleet embed, by name."""
    fleet = [e for e in embeds if e.title.startswith("🛰️ fleet")]
    assert len(fleet) == 1, embeds
    return {f.name: f.value for f in fleet[0].fields}


def test_events_and_errors_are_counted_per_member() -> None:
    """#logs shows each member's events and errors in its own row."""
    events: list[Event] = [Log(level="info", message="x", host="alpha")] * 3
    events += [Error(message="boom", host="beta"), Log(level="error", message="y", host="beta")]
    fields = fleet_fields(render_window(window("logs", events)))
    rows = {line.split()[0]: line.split()[1:] for line in fields["By member"].splitlines()[2:-1]}
    assert rows["alpha"] == ["3", "0"] and rows["beta"] == ["2", "2"]


def test_performance_has_a_row_per_member_and_latency_from_merged_sketches() -> None:
    """CPU, memory and processes per member; fleet p99 from all samples, not averaged."""
    events: list[Event] = [
        System(interval_s=60, cpu_percent=12.5, memory_percent=40.0, host="alpha"),
        System(interval_s=60, cpu_percent=88.0, memory_percent=70.0, host="beta"),
        Process(name="bot", host="alpha"),
        Process(name="bot", running=False, host="beta"),
    ]
    fast = [float(i % 10 + 1) for i in range(980)]
    slow = [1000.0 + i for i in range(20)]
    events += [Latency(ms=v, host="alpha") for v in fast]
    events += [Latency(ms=v, host="beta") for v in slow]
    fields = fleet_fields(render_window(window("performance", events)))
    members = fields["Members"]
    rows = {line.split()[0]: line for line in members.splitlines()[2:-1]}
    assert "12.5 %" in rows["alpha"] and "1/1" in rows["alpha"]
    assert "88.0 %" in rows["beta"] and "0/1" in rows["beta"]
    every = LogHistogram()
    every.add_many(fast + slow)
    merged = fields["Latency across the fleet (merged)"].splitlines()[2].split()
    assert merged[:2] == ["gateway", "1,000"]
    # p50, p95 and p99 of all 1,000 samples: 5 ms, 10 ms and about a second.
    assert " ".join(merged[2:]) == " ".join(fmt_ms(every.quantile(q)) for q in (0.5, 0.95, 0.99)), (
        merged
    )
    assert fmt_ms(every.quantile(0.99)).endswith(" s")


def test_a_degraded_window_says_so_and_single_sidecars_look_as_before() -> None:
    """A fallback post carries the note; events without a member add no fleet embed."""
    note = "Redis unreachable: alpha posts by itself until it is back"
    fields = fleet_fields(render_window(window("logs", [Log(level="info", message="x")], note)))
    assert fields["⚠️ Degraded"] == note
    plain = render_window(window("logs", [Log(level="info", message="x")]))
    assert not any(e.title.startswith("🛰️") for e in plain)


def test_the_performance_summary_adds_up_the_members_and_names_whose_host_it_shows() -> None:
    """#performance in a fleet: the pipeline figures are every member's latest added up
    (delivery latency from the poster), the host shown is the busiest member's and says so,
    and two members' processes of one name are two rows."""
    delivery = Quantiles(of="delivery", count=900, p50=800, p95=1500, p99=2100, max=2500)
    events: list[Event] = [
        Performance(window_s=60, events_in=100, events_per_s=1.5, queue_depth=7, host="alpha"),
        Performance(window_s=60, events_in=300, events_per_s=5.0, queue_depth=1, host="alpha"),
        Performance(
            window_s=60,
            events_in=50,
            events_per_s=1.0,
            delivered=900,
            delivery_ms=delivery,
            host="beta",
        ),
        System(interval_s=60, cpu_percent=12.5, memory_percent=40.0, host="alpha"),
        System(interval_s=60, cpu_percent=88.0, memory_percent=70.0, host="beta"),
        Process(name="bot", host="alpha"),
        Process(name="bot", running=False, host="beta"),
    ]
    embeds = render_window(window("performance", events))
    fields = {f.name: f.value for f in embeds[0].fields}
    assert "in **6/s**" in fields["Pipeline"] and "(350 in" in fields["Pipeline"]
    assert "queue 1 · delivered 900" in fields["Pipeline"]
    assert "p99 2.1 s" in fields["Event → Discord"]
    assert "CPU · beta" in fields and "**88.0 %**" in fields["CPU · beta"]
    processes = "\n".join(v for k, v in fields.items() if k.startswith("Process"))
    assert "alpha/bot" in processes and "beta/bot" in processes


def diagnostics(events: list[Event]) -> list[Embed]:
    """The #diagnostics embeds of a window of ``events``, checked against Discord's limits."""
    embeds = render_window(window("diagnostics", events))
    assert_within_limits(embeds)
    return embeds


def test_fleet_health_is_the_worst_members_with_a_row_per_member() -> None:
    """Checks from three members make one fleet health: the worst latest score, that
    member's reasons and advice under its name, and a row per member, worst first."""
    events: list[Event] = [
        Health(ts=1001.0, score=40, reasons=["an old reason"], host="alpha"),
        Health(
            ts=1005.0,
            score=55,
            reasons=["process_down: bot is not running", "CPU at 85 %"],
            recommendations=["bot is not running: check its service manager"],
            host="beta",
        ),
        Health(ts=1010.0, score=95, reasons=["disk / at 81 %"], host="alpha"),
        Health(ts=1012.0, score=100, host="gamma"),
    ]
    embeds = diagnostics(events)
    assert embeds[0].color == score_color(55)
    (fleet,) = [e for e in embeds if e.title.startswith("🩺")][1:]
    assert fleet.title == "🩺 fleet health 55/100"
    lines = fleet.description.splitlines()
    assert lines[0] == (
        "`█████░░░░░` worst of 3 members: **beta**, checked <t:1005:R> (4 checks in this window)"
    )
    assert lines[1:] == [
        "**Why not 100 on beta**",
        "• process\\_down: bot is not running",
        "• CPU at 85 %",
        "**What to do on beta**",
        "→ bot is not running: check its service manager",
    ]
    assert [(f.name, f.value.splitlines()) for f in fleet.fields] == [
        (
            "Members",
            [
                "🟠 **beta** 55/100 · checked <t:1005:R> · process\\_down: bot is not running",
                "🟢 **alpha** 95/100 · checked <t:1010:R> · disk / at 81 %",
                "🟢 **gamma** 100/100 · checked <t:1012:R> · all checks passed",
            ],
        )
    ]
    assert not any(e.title.startswith("🩺 health") for e in embeds)


def test_a_large_fleets_health_keeps_within_discords_limits() -> None:
    """Forty members with long hostile names and reasons: 25 rows then a count of the
    rest, names cut and escaped, every embed and post within the limits."""
    hostile = "@everyone **x** `y` " * 20
    events: list[Event] = [
        Health(
            ts=1000.0 + i,
            score=i,
            reasons=[hostile] * 10,
            recommendations=[hostile] * 10,
            host=f"{hostile}{i:02}",
        )
        for i in range(40)
    ]
    embeds = diagnostics(events)
    text = "\n".join(f.value for e in embeds for f in e.fields if not e.title.startswith("🛰️"))
    rows = [line for line in text.splitlines() if "/100 · checked" in line]
    assert len(rows) == 25 and "… 15 more members" in text
    assert rows[0].startswith("🔴 **@\u200beveryone \\*\\*x\\*\\*")
    assert "@everyone **" not in text


def test_a_single_sidecars_health_is_shown_as_before() -> None:
    """Checks without a member name keep the single sidecar's health embed."""
    events: list[Event] = [Health(ts=1001.0, score=60), Health(ts=1002.0, score=80)]
    embeds = diagnostics(events)
    titles = [e.title for e in embeds]
    assert "🩺 health 80/100" in titles and not any("fleet health" in t for t in titles)
    assert "(latest of 2)" in embeds[titles.index("🩺 health 80/100")].description
