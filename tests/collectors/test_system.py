"""The system collector against this machine: CPU, memory, disks, network rates and mounts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import psutil
import pytest

from astra.collectors.system import SystemCollector, local_mounts, net_rates
from astra.events import NetStat, System
from tests.conftest import Clock


def test_system_collector_reads_this_machine() -> None:
    """CPU, cores, memory, a disk, network rates and uptime are plausible for this host."""
    collector = SystemCollector()
    sum(i * i for i in range(200_000))  # some CPU time between the two readings
    (event,) = collector.collect()
    assert isinstance(event, System)
    assert 0 <= event.cpu_percent <= 100
    assert event.cores == os.cpu_count() and len(event.per_cpu) == event.cores
    assert len(event.load) == 3
    assert 0 < event.memory_used_bytes < event.memory_total_bytes
    assert 0 < event.memory_percent < 100
    assert event.disks and all(d.total_bytes > 0 and 0 <= d.percent <= 100 for d in event.disks)
    assert event.uptime_s > 0
    (second,) = collector.collect()
    assert isinstance(second, System) and len(second.cpu_trend) == 2


class Nic(NamedTuple):
    """One interface's counters, as psutil.net_io_counters(pernic=True) gives them."""

    bytes_sent: int = 0
    bytes_recv: int = 0
    packets_sent: int = 0
    packets_recv: int = 0
    errin: int = 0
    errout: int = 0
    dropin: int = 0
    dropout: int = 0


def test_network_rates_survive_an_interface_going_away_or_resetting() -> None:
    """Rates sum per-interface deltas over interfaces in both readings; a reset counts 0."""
    before = {"eth0": Nic(bytes_recv=10_000, packets_recv=10), "wg0": Nic(bytes_recv=900_000)}
    # wg0 went away (its large counter must not cancel eth0's traffic), tun1 appeared.
    after = {"eth0": Nic(bytes_recv=16_000, packets_recv=16), "tun1": Nic(bytes_recv=50_000)}
    rates = net_rates(before, after, 2.0)
    assert (rates.bytes_recv_per_s, rates.packets_recv_per_s) == (3000.0, 3.0)
    # eth0 was re-created (counter back near zero): 0 for it, the others still count.
    reset = net_rates(
        {"eth0": Nic(bytes_sent=5_000_000), "eth1": Nic(bytes_sent=100)},
        {"eth0": Nic(bytes_sent=200), "eth1": Nic(bytes_sent=1_100)},
        10.0,
    )
    assert reset == NetStat(bytes_sent_per_s=100.0)


def test_system_collector_keys_network_counters_by_interface(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the collector: an interface vanishing between runs does not zero the rates."""
    readings = iter(
        [
            {"lo": Nic(bytes_recv=1), "eth0": Nic(bytes_recv=0), "veth9": Nic(bytes_recv=10**9)},
            {"lo": Nic(bytes_recv=10**6), "eth0": Nic(bytes_recv=60_000)},
        ]
    )
    monkeypatch.setattr(psutil, "net_io_counters", lambda pernic: next(readings))
    clock = Clock()
    collector = SystemCollector(clock=clock)
    clock.now += 60
    (event,) = collector.collect()
    assert isinstance(event, System) and event.net is not None
    assert event.net.bytes_recv_per_s == 1000.0


class Part(NamedTuple):
    """One entry of psutil.disk_partitions()."""

    device: str
    mountpoint: str
    fstype: str = "ext4"
    opts: str = "rw"


def test_automatic_mounts_start_with_root_and_skip_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In a container "/" is an overlay psutil does not list as a disk, and the host's disk
    shows up as bind-mounted files: "/" is reported, the files are not."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    data = tmp_path / "data"
    data.mkdir()
    physical = [
        Part("/dev/sda1", str(resolv)),
        Part("/dev/sda1", str(data)),
        Part("/dev/sdb1", str(tmp_path / "hosts-file-missing")),
    ]
    every = [Part("overlay", "/", "overlay"), *physical]

    def partitions(all: bool = False) -> list[Part]:
        return every if all else physical

    monkeypatch.setattr(psutil, "disk_partitions", partitions)
    mounts = local_mounts([])
    assert [(m.mount, m.device) for m in mounts] == [("/", "overlay"), (str(data), "/dev/sda1")]
    assert [m.mount for m in local_mounts(["/srv"])] == ["/srv"], "asked-for mounts as given"
