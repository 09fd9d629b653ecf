"""The scheduler: failing, raising and hung collectors cost a run, never the schedule."""

from __future__ import annotations

import threading

import anyio

from astra.collectors.schedule import Scheduler
from astra.events import Error, Event, Latency


class Boom:
    """A collector that always fails."""

    name = "boom"

    def __init__(self) -> None:
        self.calls = 0

    def collect(self) -> list[Event]:
        """Count the run, then fail as an unreadable /proc would."""
        self.calls += 1
        raise PermissionError("/proc is not readable")


class Ticker:
    """A collector that counts its runs."""

    name = "ticker"

    def __init__(self) -> None:
        self.calls = 0

    def collect(self) -> list[Event]:
        """Count the run and report it as a latency."""
        self.calls += 1
        return [Latency(ms=float(self.calls), of="tick")]


def test_a_failing_collector_reports_and_keeps_its_schedule() -> None:
    """Failures become error events from source astra; the failing and other collectors go on."""
    emitted: list[Event] = []
    scheduler = Scheduler(emitted.append)
    boom, ticker = Boom(), Ticker()
    scheduler.add(boom, 0.01)
    scheduler.add(ticker, 0.01, in_thread=True)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(scheduler.run)
            with anyio.fail_after(30):
                while boom.calls < 3 or ticker.calls < 3:
                    await anyio.sleep(0.01)
            group.cancel_scope.cancel()

    anyio.run(main)
    errors = [e for e in emitted if isinstance(e, Error)]
    assert len(errors) >= 3 and all(e.source == "astra" for e in errors)
    assert errors[0].type == "PermissionError"
    assert errors[0].message == "collector boom failed: /proc is not readable"
    status = {c.name: c for c in scheduler.statistics()}
    assert status["boom"].failures >= 3 and status["boom"].last_ok is None
    assert status["ticker"].failures == 0 and status["ticker"].last_ok
    assert any(isinstance(e, Latency) and e.of == "tick" for e in emitted)


class Pair:
    """A collector emitting two events per run."""

    name = "pair"

    def collect(self) -> list[Event]:
        """Two latency events."""
        return [Latency(ms=1.0, of="first"), Latency(ms=2.0, of="second")]


def test_a_raising_listener_costs_one_event_not_the_run() -> None:
    """Emitting is guarded per event: the next event still goes out and the run counts."""
    emitted: list[Event] = []

    def emit(event: Event) -> None:
        if isinstance(event, Latency) and event.of == "first":
            raise RuntimeError("a bus listener broke")
        emitted.append(event)

    scheduler = Scheduler(emit)
    pair = Pair()
    scheduler.add(pair, 60)
    scheduler.run_once(pair)
    assert [e.of for e in emitted if isinstance(e, Latency)] == ["second"]
    [status] = scheduler.statistics()
    assert status.name == "pair" and status.last_ok is not None
    assert status.failures == 0


class Hung:
    """A thread collector stuck in the OS (statvfs on a dead NFS mount) until released."""

    name = "hung"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.daemon: bool | None = None

    def collect(self) -> list[Event]:
        """Block until released, noting whether the thread is a daemon."""
        self.daemon = threading.current_thread().daemon
        self.entered.set()
        self.release.wait()
        return []


def test_a_hung_thread_collector_does_not_block_shutdown() -> None:
    """Cancelling the scheduler returns while a thread run is stuck; that run is in a daemon
    thread, so it cannot hold up interpreter exit either."""
    hung = Hung()
    scheduler = Scheduler(lambda event: None)
    scheduler.add(hung, 0.01, in_thread=True)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(scheduler.run)
            with anyio.fail_after(30):
                while not hung.entered.is_set():
                    await anyio.sleep(0.01)
            group.cancel_scope.cancel()

    # In a thread of its own, so that a shutdown that does block fails the test instead of
    # hanging it (the join is a bound, not a measurement).
    runner = threading.Thread(target=anyio.run, args=(main,), daemon=True)
    try:
        runner.start()
        runner.join(timeout=60)
        assert not runner.is_alive(), "cancelling waited for the stuck run"
        assert hung.entered.is_set() and not hung.release.is_set(), "still stuck, yet we returned"
        assert hung.daemon is True
        assert [c.runs for c in scheduler.statistics() if c.name == "hung"] == [0]
    finally:
        hung.release.set()
