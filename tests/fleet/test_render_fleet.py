"""One picture of the fleet: per-member rows, merged latency, and the degraded mark."""

from __future__ import annotations

from astra.events import Error, Event, Latency, Log, Performance, Process, Quantiles, System
from astra.quantiles import LogHistogram
from astra.sinks.messages import Embed
from astra.sinks.render import render_window
from astra.streams.windows import Window
from astra.units import fmt_ms


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
