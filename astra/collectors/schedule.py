"""Running collectors on their schedules, so that a failing one never stops the others.

A collector is a small object with a ``name`` and a ``collect()`` that returns the events of
one run. The scheduler calls it every ``interval_s`` on a fixed cadence (a slow run does not
push later runs back), in a worker thread when it blocks on the OS (psutil, ``stat``), and
puts what it returns on the bus from the event loop. An exception becomes an ``error`` event
(source ``astra``) and the schedule goes on.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import Protocol

import anyio
import msgspec

from astra.events import Error, Event

log = logging.getLogger("astra.collectors")

Emit = Callable[[Event], object]


class Collector(Protocol):
    """What the scheduler runs."""

    name: str

    def collect(self) -> list[Event]:
        """One run: the events to emit (may raise; the scheduler reports it)."""
        ...


class CollectorStatus(msgspec.Struct, kw_only=True):
    """How a collector's runs went, for the health collector."""

    name: str
    interval_s: float
    runs: int = 0
    failures: int = 0
    last_ok: float | None = None
    last_error: str = ""
    last_error_at: float | None = None


class _Entry(msgspec.Struct, kw_only=True):
    collector: Collector
    interval_s: float
    in_thread: bool
    status: CollectorStatus


class Scheduler:
    """Runs collectors on fixed cadences and records how each run went."""

    def __init__(
        self,
        emit: Emit,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._emit = emit
        self._clock = clock
        self._wall_clock = wall_clock
        self._entries: list[_Entry] = []
        self.status: dict[str, CollectorStatus] = {}

    def add(self, collector: Collector, interval_s: float, *, in_thread: bool = False) -> None:
        """Schedule ``collector`` every ``interval_s`` seconds (first run after one interval)."""
        status = CollectorStatus(name=collector.name, interval_s=interval_s)
        self.status[collector.name] = status
        self._entries.append(
            _Entry(collector=collector, interval_s=interval_s, in_thread=in_thread, status=status)
        )

    def run_once(self, collector: Collector) -> list[Event]:
        """Run one collection now, on this thread; emit its events or report its failure."""
        outcome = self._guarded(collector)
        self._publish(collector, outcome)
        return outcome if isinstance(outcome, list) else []

    async def run(self) -> None:
        """Run every scheduled collector until cancelled."""
        async with anyio.create_task_group() as group:
            for entry in self._entries:
                group.start_soon(self._loop, entry)

    async def _loop(self, entry: _Entry) -> None:
        next_run = self._clock() + entry.interval_s
        while True:
            await anyio.sleep(max(0.0, next_run - self._clock()))
            if entry.in_thread:
                events = await anyio.to_thread.run_sync(self._guarded, entry.collector)
            else:
                events = self._guarded(entry.collector)
            self._publish(entry.collector, events)
            # Fixed cadence; after a stall (suspend, overload) start again from now.
            next_run = max(next_run + entry.interval_s, self._clock())

    def _guarded(self, collector: Collector) -> list[Event] | BaseException:
        try:
            return collector.collect()
        except Exception as exc:
            return exc

    def _publish(self, collector: Collector, outcome: list[Event] | BaseException) -> None:
        status = self.status.get(collector.name)
        now = self._wall_clock()
        if isinstance(outcome, BaseException):
            detail = f"{type(outcome).__name__}: {outcome}"
            log.warning("collector %s failed: %s", collector.name, detail)
            if status is not None:
                status.runs += 1
                status.failures += 1
                status.last_error, status.last_error_at = detail, now
            self._emit(
                Error(
                    source="astra",
                    type=type(outcome).__name__,
                    message=f"collector {collector.name} failed: {outcome}"[:4000],
                    traceback="".join(traceback.format_exception(outcome))[-60000:],
                )
            )
            return
        if status is not None:
            status.runs += 1
            status.last_ok = now
        for event in outcome:
            self._emit(event)
