"""The host: CPU (total and per core), load, memory and swap, disks, network, uptime.

Rates (CPU, disk and network I/O) are deltas between two readings of the kernel's counters,
taken by this collector itself: ``psutil.cpu_percent(None)`` remembers its last reading per
calling thread, and collections run on whichever worker thread is free.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import psutil

from astra.events import DiskStat, Event, NetStat, System

TREND_POINTS = 15
AUTO_MOUNTS_MAX = 8


def _busy_idle(times: Any) -> tuple[float, float]:
    # guest and guest_nice are already counted in user and nice on Linux.
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total, idle


def cpu_percent_between(before: Any, after: Any) -> float:
    """Busy share of CPU time between two ``cpu_times()`` readings, in percent."""
    total_before, idle_before = _busy_idle(before)
    total_after, idle_after = _busy_idle(after)
    elapsed = total_after - total_before
    if elapsed <= 0:
        return 0.0
    busy = elapsed - max(0.0, idle_after - idle_before)
    return round(min(100.0, max(0.0, 100.0 * busy / elapsed)), 1)


class _Mount:
    __slots__ = ("device", "io_key", "mount")

    def __init__(self, mount: str, device: str) -> None:
        self.mount = mount
        self.device = device
        # /dev/mapper/root → dm-0: the I/O counters are keyed by the kernel's name.
        self.io_key = os.path.basename(os.path.realpath(device)) if device else ""


def local_mounts(wanted: list[str]) -> list[_Mount]:
    """The mounts to report: ``wanted`` ones, or ``/`` and each local disk partition.

    Automatic choice: ``/`` always comes first (in a container it is an overlay, which
    psutil does not count as a disk partition), then one mount per further device. Mount
    points that are not directories are skipped: a container's bind-mounted
    ``/etc/resolv.conf`` or ``/etc/hosts`` sits on the host's disk and would otherwise
    stand for it.
    """
    partitions = psutil.disk_partitions(all=False)
    by_mount = {p.mountpoint: p.device for p in partitions}
    if wanted:
        return [_Mount(m, by_mount.get(m, "")) for m in wanted]
    root_device = by_mount.get("/") or _device_of("/")
    mounts = [_Mount("/", root_device)]
    seen = {root_device} if root_device else set()
    for part in partitions:
        if part.mountpoint == "/" or part.device in seen:
            continue
        if part.fstype in ("squashfs", "iso9660") or not os.path.isdir(part.mountpoint):
            continue
        seen.add(part.device)
        mounts.append(_Mount(part.mountpoint, part.device))
    return mounts[:AUTO_MOUNTS_MAX]


def _device_of(mount: str) -> str:
    # Virtual file systems too (overlay, tmpfs): "/" is reported whatever it is.
    try:
        partitions = psutil.disk_partitions(all=True)
    except OSError:
        return ""
    return next((p.device for p in partitions if p.mountpoint == mount), "")


def net_rates(before: Mapping[str, Any], after: Mapping[str, Any], elapsed: float) -> NetStat:
    """Per-second network rates between two per-interface counter readings.

    Only interfaces present in both readings count: one that appeared or went away (a VPN,
    a container's veth) has no delta. An interface whose counter went backwards was reset
    (re-created, driver reload) and contributes 0 rather than cancelling the others.
    """
    seconds = max(1e-6, elapsed)
    common = [nic for nic in after if nic in before]

    def rate(*fields: str) -> float:
        total = 0.0
        for field in fields:
            for nic in common:
                delta = float(getattr(after[nic], field)) - float(getattr(before[nic], field))
                total += max(0.0, delta)
        return round(total / seconds, 2)

    return NetStat(
        bytes_sent_per_s=rate("bytes_sent"),
        bytes_recv_per_s=rate("bytes_recv"),
        packets_sent_per_s=rate("packets_sent"),
        packets_recv_per_s=rate("packets_recv"),
        errors_per_s=rate("errin", "errout"),
        drops_per_s=rate("dropin", "dropout"),
    )


class SystemCollector:
    """Emits one ``system`` event per run."""

    name = "system"

    def __init__(
        self,
        mounts: list[str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._mounts = local_mounts(mounts or [])
        self._cpu_trend: deque[float] = deque(maxlen=TREND_POINTS)
        self._memory_trend: deque[float] = deque(maxlen=TREND_POINTS)
        # The first readings, so the first run already has rates.
        self._last_t = clock()
        self._last_cpu = psutil.cpu_times()
        self._last_per_cpu = psutil.cpu_times(percpu=True)
        self._last_disk_io = self._disk_io()
        self._last_net = self._net()

    def collect(self) -> list[Event]:
        """Read the host's figures; rates cover the time since the previous run."""
        now = self._clock()
        elapsed = max(1e-6, now - self._last_t)
        cpu = psutil.cpu_times()
        per_cpu = psutil.cpu_times(percpu=True)
        cpu_total = cpu_percent_between(self._last_cpu, cpu)
        per_core = [
            cpu_percent_between(a, b) for a, b in zip(self._last_per_cpu, per_cpu, strict=False)
        ]
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        memory_used = memory.total - memory.available
        disk_io = self._disk_io()
        net = self._net()
        disks = [self._disk(m, disk_io, elapsed) for m in self._mounts]
        net_stat = self._net_rates(net, elapsed)
        self._last_t, self._last_cpu, self._last_per_cpu = now, cpu, per_cpu
        self._last_disk_io, self._last_net = disk_io, net
        self._cpu_trend.append(cpu_total)
        self._memory_trend.append(round(memory.percent, 1))
        wall = self._wall_clock()
        return [
            System(
                source="astra",
                ts=wall,
                interval_s=round(elapsed, 3),
                cpu_percent=cpu_total,
                per_cpu=per_core,
                load=[round(x, 2) for x in psutil.getloadavg()],
                cores=len(per_cpu),
                memory_total_bytes=memory.total,
                memory_used_bytes=max(0, memory_used),
                memory_percent=round(memory.percent, 1),
                swap_total_bytes=swap.total,
                swap_used_bytes=swap.used,
                swap_percent=round(swap.percent, 1),
                disks=[d for d in disks if d is not None],
                net=net_stat,
                uptime_s=max(0.0, round(wall - psutil.boot_time())),
                cpu_trend=list(self._cpu_trend),
                memory_trend=list(self._memory_trend),
            )
        ]

    @staticmethod
    def _disk_io() -> dict[str, Any]:
        try:
            return dict(psutil.disk_io_counters(perdisk=True) or {})
        except (OSError, RuntimeError):
            return {}

    @staticmethod
    def _net() -> dict[str, Any]:
        counters = psutil.net_io_counters(pernic=True) or {}
        return {nic: c for nic, c in counters.items() if not nic.startswith("lo")}

    def _disk(self, mount: _Mount, disk_io: dict[str, Any], elapsed: float) -> DiskStat | None:
        try:
            usage = psutil.disk_usage(mount.mount)
        except OSError:
            # A mount that went away (unplugged, unmounted) is left out, not an error.
            return None
        before, after = self._last_disk_io.get(mount.io_key), disk_io.get(mount.io_key)
        read = write = None
        if before is not None and after is not None:
            read = max(0.0, (after.read_bytes - before.read_bytes) / elapsed)
            write = max(0.0, (after.write_bytes - before.write_bytes) / elapsed)
        return DiskStat(
            mount=mount.mount,
            device=mount.device,
            total_bytes=usage.total,
            used_bytes=usage.used,
            percent=round(usage.percent, 1),
            read_bytes_per_s=None if read is None else round(read, 1),
            write_bytes_per_s=None if write is None else round(write, 1),
        )

    def _net_rates(self, net: dict[str, Any], elapsed: float) -> NetStat | None:
        if not net:
            return None
        return net_rates(self._last_net, net, elapsed)
