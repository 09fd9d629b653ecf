"""Running collectors on their schedules, so that a failing one never stops the others.

A collector is a small object with a ``name`` and a ``collect()`` that returns the events of
one run. The scheduler calls it every ``interval_s`` on a fixed cadence (a slow run does not
push later runs back) and puts what it returns on the bus from the event loop. Collectors
added with ``in_thread=True`` run off the event loop, in a daemon thread: in the built-in
suite (``astra.collectors.suite``) those are ``system``, ``process`` and ``files``, which
block on the OS (psutil, ``stat``, ``statvfs``, scanning command lines); ``performance``,
``errors``, ``health`` and ``report`` only read memory and run on the loop. A run stuck in
the OS (``statvfs`` on a dead NFS mount) is abandoned on shutdown rather than waited for.
An exception becomes an ``error`` event (source ``astra``) and the schedule goes on; so does
a bus listener that raises while one event is emitted.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Protocol

import anyio
import msgspec

from astra.events import Error, Event
from astra.statistics import CollectorStatistics

log = logging.getLogger("astra.collectors")

Emit = Callable[[Event], object]


class Collector(Protocol):
    """What the scheduler runs."""

    name: str

    def collect(self) -> list[Event]:
        """One run: the events to emit (may raise; the scheduler reports it)."""
        ...


class _Status(msgspec.Struct, kw_only=True):
    """How a collector's runs went (mutable: the scheduler's own bookkeeping)."""

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
    status: _Status


class Scheduler:
    """Runs collectors on fixed cadences and records how each run went."""

    def __init__(
        self,
        emit: Emit,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._emit = emit
        self._clock = clock
        self._wall_clock = wall_clock
        self._entries: list[_Entry] = []
        self._status: dict[str, _Status] = {}

    def add(self, collector: Collector, interval_s: float, *, in_thread: bool = False) -> None:
        """Schedule ``collector`` every ``interval_s`` seconds (first run after one interval)."""
        status = _Status(name=collector.name, interval_s=interval_s)
        self._status[collector.name] = status
        self._entries.append(
            _Entry(collector=collector, interval_s=interval_s, in_thread=in_thread, status=status)
        )

    def statistics(self) -> list[CollectorStatistics]:
        """Each scheduled collector's runs so far, in the order they were added."""
        return [
            msgspec.convert(msgspec.structs.asdict(status), CollectorStatistics)
            for status in self._status.values()
        ]

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
                events = await self._in_thread(entry.collector)
            else:
                events = self._guarded(entry.collector)
            self._publish(entry.collector, events)
            # Fixed cadence; after a stall (suspend, overload) start again from now.
            next_run = max(next_run + entry.interval_s, self._clock())

    async def _in_thread(self, collector: Collector) -> list[Event] | BaseException:
        """One run in a daemon thread, awaited so that cancelling does not wait for it.

        ``abandon_on_cancel`` alone would let the task go, but anyio's worker threads are
        not daemons: one stuck in ``statvfs`` would still hold up interpreter exit. So the
        run gets its own daemon thread; the worker only waits for it and is released on
        cancellation. The next run of the same collector starts only after this one ended.
        """
        outcome: list[list[Event] | BaseException] = []
        finished = threading.Event()

        def work() -> None:
            try:
                outcome.append(self._guarded(collector))
            finally:
                finished.set()

        threading.Thread(target=work, name=f"astra-{collector.name}", daemon=True).start()
        try:
            await anyio.to_thread.run_sync(finished.wait, abandon_on_cancel=True)
        finally:
            finished.set()  # on cancellation: lets the waiting worker thread end now
        if not outcome:
            return RuntimeError(f"collector {collector.name} ended without a result")
        return outcome[0]

    def _guarded(self, collector: Collector) -> list[Event] | BaseException:
        try:
            return collector.collect()
        except Exception as exc:
            return exc

    def _publish(self, collector: Collector, outcome: list[Event] | BaseException) -> None:
        status = self._status.get(collector.name)
        now = self._wall_clock()
        if isinstance(outcome, BaseException):
            detail = f"{type(outcome).__name__}: {outcome}"
            log.warning("collector %s failed: %s", collector.name, detail)
            if status is not None:
                status.runs += 1
                status.failures += 1
                status.last_error, status.last_error_at = detail, now
            self._emit_guarded(
                collector,
                Error(
                    source="astra",
                    type=type(outcome).__name__,
                    message=f"collector {collector.name} failed: {outcome}"[:4000],
                    traceback="".join(traceback.format_exception(outcome))[-60000:],
                ),
            )
            return
        if status is not None:
            status.runs += 1
            status.last_ok = now
        for event in outcome:
            self._emit_guarded(collector, event)

    def _emit_guarded(self, collector: Collector, event: Event) -> None:
        # A bus listener that raises must cost one event, not the run's other events nor,
        # by escaping the loop, every collector on the scheduler.
        try:
            self._emit(event)
        except Exception:
            log.exception(
                "emitting a %s event of collector %s failed", _kind(event), collector.name
            )


def _kind(event: Event) -> str:
    return str(event.__struct_config__.tag)
