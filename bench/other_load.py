"""What else the (shared) machine was doing while a benchmark ran."""

from __future__ import annotations

import time

import psutil


class OtherLoad:
    """CPU time used by other processes on this machine while the benchmark ran.

    The machine may be shared: system-wide busy time minus this process and its waited
    children (the sidecars, the senders). Printed so a contended run can be recognised.
    """

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._busy, self._own = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float]:
        system = psutil.cpu_times()
        busy = system.user + system.nice + system.system
        busy += getattr(system, "irq", 0.0) + getattr(system, "softirq", 0.0)
        own = psutil.Process().cpu_times()
        return busy, own.user + own.system + own.children_user + own.children_system

    def describe(self) -> str:
        busy, own = self._sample()
        elapsed = time.monotonic() - self._started
        other = max(0.0, (busy - self._busy) - (own - self._own))
        return (
            f"other processes used {other:.1f} CPU-s in these {elapsed:.0f} s "
            f"({100 * other / elapsed:.0f} % of one core; 0 on a quiet machine)"
        )
