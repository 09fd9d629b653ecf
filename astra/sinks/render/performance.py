"""The performance channel: how fast and how heavy.

The host, watched processes and files (``host``), the pipeline's own figures, and latency
percentiles and samples over the window.
"""

from __future__ import annotations

from collections import defaultdict

import msgspec

from astra.events import (
    Digest,
    Event,
    File,
    Latency,
    Metric,
    Performance,
    Process,
    Quantiles,
    System,
)
from astra.sinks.messages import Embed, Field, code_block, cut
from astra.sinks.render.digest import render_digest
from astra.sinks.render.format import (
    COLOR_ERROR,
    COLOR_INFO,
    COLOR_WARNING,
    delivery_trouble,
    header,
    other_events,
    pack_embeds,
    sparkline,
    table,
)
from astra.sinks.render.host import NAME_MAX, files_field, host_fields, latest, process_fields
from astra.streams.windows import Window
from astra.units import fmt_duration, fmt_int, fmt_ms, fmt_num, fmt_pct

# Kinds this summary shows; any other is only counted.
_SHOWN = ("system", "process", "file", "performance", "latency", "metric", "digest")


def render_performance(window: Window) -> list[Embed]:
    """How fast and how heavy: host, processes, files, pipeline, latency percentiles."""
    events = window.events
    fields: list[Field] = []
    color = COLOR_INFO
    systems = [e for e in events if isinstance(e, System)]
    if systems:
        host = _busiest_host(systems)
        fields += host_fields(host, member=host.host)
        if max([host.cpu_percent, host.memory_percent, *(d.percent for d in host.disks)]) >= 90:
            color = COLOR_WARNING
    # In a fleet every member may watch a process of the same name: named by member.
    process_events = [_by_member(e) for e in events if isinstance(e, Process)]
    processes = latest(process_events, Process)
    if processes:
        fields += process_fields(processes, process_events)
        if any(not p.running for p in processes):
            color = COLOR_ERROR
    files = latest(events, File)
    if files:
        fields.append(files_field(files))
    perfs = [e for e in events if isinstance(e, Performance)]
    if perfs:
        fields += _pipeline_fields(_fleet_performance(perfs) if perfs[-1].host else perfs[-1])
    fields += _raw_latency_fields(events)
    fields += other_events(events, _SHOWN)
    digests = [e for e in events if isinstance(e, Digest)]
    embeds = pack_embeds(header(window, color), fields)
    for digest in digests:
        embeds += render_digest(digest)
    return embeds


def _busiest_host(systems: list[System]) -> System:
    """The latest reading; in a fleet, the latest of the member with the highest CPU."""
    if not systems[-1].host:
        return systems[-1]
    members = {s.host: s for s in systems}
    return max(members.values(), key=lambda s: s.cpu_percent)


def _by_member(process: Process) -> Process:
    return (
        msgspec.structs.replace(process, name=f"{process.host}/{process.name}")
        if process.host
        else process
    )


def _fleet_performance(perfs: list[Performance]) -> Performance:
    """A fleet's pipeline: each member's latest figures added up. Event → Discord comes from
    the member that delivered most (the poster); the bot's latency percentiles cannot be
    added, and the fleet embed shows them merged from the samples."""
    members = list({p.host: p for p in perfs}.values())
    poster = max(members, key=lambda p: p.delivery_ms.count if p.delivery_ms else -1)
    # Trends end now: add them up aligned at their ends.
    trend = [0.0] * max(len(p.rate_trend) for p in members)
    for member in members:
        offset = len(trend) - len(member.rate_trend)
        for index, rate in enumerate(member.rate_trend):
            trend[offset + index] += rate
    return Performance(
        window_s=max(p.window_s for p in members),
        events_in=sum(p.events_in for p in members),
        events_per_s=sum(p.events_per_s for p in members),
        queue_depth=sum(p.queue_depth for p in members),
        delivered=sum(p.delivered for p in members),
        delivery_ms=poster.delivery_ms,
        retries=sum(p.retries for p in members),
        rate_limited=sum(p.rate_limited for p in members),
        dropped=sum(p.dropped for p in members),
        commands=sum(p.commands for p in members),
        commands_failed=sum(p.commands_failed for p in members),
        rate_trend=trend,
    )


def _pipeline_fields(perf: Performance) -> list[Field]:
    pipeline = (
        f"in **{fmt_num(perf.events_per_s)}/s** {sparkline(perf.rate_trend, lo=0)}"
        f" ({fmt_int(perf.events_in)} in {fmt_duration(perf.window_s)})\n"
        f"queue {fmt_int(perf.queue_depth)} · delivered {fmt_int(perf.delivered)}\n"
        + delivery_trouble(perf.retries, perf.rate_limited, perf.dropped)
    )
    fields = [Field("Pipeline", pipeline, True)]
    if perf.delivery_ms is not None:
        d = perf.delivery_ms
        fields.append(
            Field(
                "Event → Discord",
                f"p50 {fmt_ms(d.p50)}\np95 {fmt_ms(d.p95)}\np99 {fmt_ms(d.p99)}"
                f" · max {fmt_ms(d.max)}",
                True,
            )
        )
    if perf.commands:
        rate = 100.0 * perf.commands_failed / perf.commands
        fields.append(
            Field(
                "Commands",
                f"{fmt_int(perf.commands)} run\n{fmt_int(perf.commands_failed)} failed"
                f" ({fmt_pct(rate)})",
                True,
            )
        )
    if perf.latencies:
        fields.append(Field("Latency percentiles", _quantile_table(perf.latencies)))
    if perf.slow_commands:
        fields.append(Field("Slowest commands (p95)", _quantile_table(perf.slow_commands)))
    return fields


def _quantile_table(series: list[Quantiles]) -> str:
    rows = [
        (
            cut(q.of, NAME_MAX),
            fmt_int(q.count),
            fmt_ms(q.p50),
            fmt_ms(q.p95),
            fmt_ms(q.p99),
            fmt_ms(q.max),
        )
        for q in series
    ]
    return code_block(table(rows, ("of", "n", "p50", "p95", "p99", "max")))


def _raw_latency_fields(events: list[Event]) -> list[Field]:
    latencies: dict[str, list[float]] = defaultdict(list)
    metrics: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for ev in events:
        if isinstance(ev, Latency):
            latencies[ev.of].append(ev.ms)
        elif isinstance(ev, Metric):
            metrics[(ev.name, ev.type, ev.unit)].append(ev.value)
    fields = []
    if latencies:
        latency_rows = [
            (of, fmt_int(len(v)), fmt_num(min(v)), fmt_num(sum(v) / len(v)), fmt_num(max(v)))
            for of, v in sorted(latencies.items())
        ]
        fields.append(
            Field(
                "Latency samples (ms)",
                code_block(table(latency_rows, ("of", "n", "min", "avg", "max"))),
            )
        )
    if metrics:
        metric_rows = []
        for (name, type_, unit), values in sorted(metrics.items()):
            shown = sum(values) if type_ == "counter" else values[-1]
            metric_rows.append(
                (
                    name,
                    type_[0],
                    fmt_num(shown) + (f" {unit}" if unit else ""),
                    fmt_num(min(values)),
                    fmt_num(max(values)),
                    fmt_int(len(values)),
                )
            )
        fields.append(
            Field(
                "Metrics (c: sum, g/h: last)",
                code_block(table(metric_rows, ("name", "t", "value", "min", "max", "n"))),
            )
        )
    return fields
