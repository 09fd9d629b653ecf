"""The host, its watched processes and files as their collectors last saw them.

Part of the performance channel's summary.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from astra.events import Event, File, Process, System
from astra.sinks.messages import Field, code_block, cut, escape_text
from astra.sinks.render.format import line_fields, sparkline, table, ts_markup
from astra.units import (
    fmt_bytes,
    fmt_duration,
    fmt_growth,
    fmt_int,
    fmt_num,
    fmt_pct,
    fmt_rate,
)

# Names in table columns are cut to this, so one long name does not push the columns away.
NAME_MAX = 24

E = TypeVar("E", bound=Event)


def latest(events: Iterable[Event], kind: type[E]) -> list[E]:
    """The last event of ``kind`` per subject (``name``, else one overall), in first-seen order."""
    last: dict[str, E] = {}
    for ev in events:
        if isinstance(ev, kind):
            last[str(getattr(ev, "name", ""))] = ev
    return list(last.values())


def host_fields(host: System, member: str = "") -> list[Field]:
    """CPU, memory, network, disks and uptime of the host, from its latest reading
    (``member``: in a fleet, whose host it is, named in the CPU field)."""
    load = " · ".join(f"{x:.2f}" for x in host.load) if host.load else "-"
    cpu = (
        f"**{fmt_pct(host.cpu_percent)}** {sparkline(host.cpu_trend, 0, 100)}\n"
        f"load {load} ({host.cores} cores)\n"
        f"per core {sparkline(host.per_cpu, 0, 100)}"
    )
    swap = (
        f"swap {fmt_bytes(host.swap_used_bytes)} of {fmt_bytes(host.swap_total_bytes)}"
        if host.swap_total_bytes
        else "no swap"
    )
    memory = (
        f"**{fmt_pct(host.memory_percent)}** {sparkline(host.memory_trend, 0, 100)}\n"
        f"{fmt_bytes(host.memory_used_bytes)} of {fmt_bytes(host.memory_total_bytes)}\n{swap}"
    )
    cpu_name = f"CPU · {cut(escape_text(member), 40)}" if member else "CPU"
    fields = [Field(cpu_name, cpu, True), Field("Memory", memory, True)]
    if host.net is not None:
        net = host.net
        fields.append(
            Field(
                "Network",
                f"↓ {fmt_rate(net.bytes_recv_per_s)} · ↑ {fmt_rate(net.bytes_sent_per_s)}\n"
                f"{fmt_num(net.packets_recv_per_s)} / {fmt_num(net.packets_sent_per_s)} pkt/s"
                f" in/out\n{fmt_num(net.errors_per_s)} err/s · {fmt_num(net.drops_per_s)} drop/s",
                True,
            )
        )
    if host.disks:
        rows = [
            (
                d.mount,
                fmt_bytes(d.used_bytes),
                fmt_bytes(d.total_bytes),
                fmt_pct(d.percent, digits=0),
                fmt_rate(d.read_bytes_per_s),
                fmt_rate(d.write_bytes_per_s),
            )
            for d in host.disks
        ]
        columns = ("mount", "used", "size", "use", "read", "write")
        fields.append(Field("Disks", code_block(table(rows, columns))))
    fields.append(
        Field(
            "Host",
            f"up {fmt_duration(host.uptime_s)} · sampled {ts_markup(host.time, 'R')}"
            f" every {fmt_duration(host.interval_s)}",
        )
    )
    return fields


def process_fields(latest: list[Process], all_readings: list[Process]) -> list[Field]:
    """A table of the watched processes, their memory trends and what changed (restarts)."""
    rows: list[tuple[str, ...]] = []
    for proc in latest:
        if not proc.running:
            rows.append((cut(proc.name, NAME_MAX), str(proc.pid or "-"), "not running"))
            continue
        rows.append(
            (
                cut(proc.name, NAME_MAX),
                str(proc.pid),
                fmt_pct(proc.cpu_percent),
                fmt_bytes(proc.rss_bytes),
                fmt_int(proc.threads),
                "-" if proc.fds is None else fmt_int(proc.fds),
                "-" if proc.connections is None else fmt_int(proc.connections),
                fmt_duration(proc.uptime_s),
                fmt_int(proc.restarts),
            )
        )
    columns = ("process", "pid", "cpu", "rss", "thr", "fds", "conn", "up", "restarts")
    fields = [Field("Processes", code_block(table(rows, columns)))]
    trends = [
        f"{escape_text(p.name)} {sparkline(p.rss_trend, lo=0)} {fmt_bytes(p.rss_bytes)}"
        for p in latest
        if p.running and len(p.rss_trend) > 1
    ]
    changes = [
        f"**{escape_text(p.name)}** {p.change}"
        + (f" (pid {p.pid})" if p.pid else "")
        + f" · {ts_markup(p.time, 'R')}"
        for p in all_readings
        if p.change
    ]
    fields += line_fields("RSS trend", trends)
    fields += line_fields("Process changes", changes[-10:])
    return fields


def files_field(files: list[File]) -> Field:
    """The watched files: size, growth per day and size trend."""
    rows: list[tuple[str, ...]] = []
    for watched in files:
        if not watched.exists or watched.size_bytes is None:
            rows.append((cut(watched.name, NAME_MAX), "missing"))
            continue
        growth = watched.growth_bytes_per_day
        shown = "-" if growth is None or watched.growth_span_s <= 0 else fmt_growth(growth)
        rows.append(
            (
                cut(watched.name, NAME_MAX),
                fmt_bytes(watched.size_bytes),
                shown,
                sparkline(watched.size_trend),
            )
        )
    return Field("Watched files", code_block(table(rows, ("file", "size", "growth", "trend"))))
