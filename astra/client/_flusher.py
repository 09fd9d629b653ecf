"""The client's background thread: drain the queue, send, count.

One daemon thread per ``Telemetry``. It wakes every flush interval, or when the caller
signals that enough events wait, hands everything queued to the transport in one go, and
turns the transport's report into counters and (rate-limited) warnings.

Every flusher is tracked (weakly) for two process-wide hooks: at interpreter exit, each one
still running sends what is queued (waiting at most its timeout); in a forked child, each
one gets fresh locks and a new thread, since the child inherits none of the parent's threads.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
import weakref
from collections import deque

from astra import events
from astra.client._transport import Address, Transport

log = logging.getLogger("astra.client")

# The client's own warnings (sidecar unreachable, event not encodable) at most this often.
_WARN_EVERY_S = 60.0
DROPPED_METRIC = "astra.client.dropped"


class Counters:
    """Counters written by the flusher thread alone, or under ``lock`` by callers."""

    __slots__ = (
        "closed",
        "datagrams",
        "internal_errors",
        "lock",
        "oversize",
        "queue_full",
        "rejected",
        "send_error",
        "sent",
    )

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """All counters to zero (a new client, or the child after a fork)."""
        self.sent = self.datagrams = self.send_error = self.oversize = self.rejected = 0
        self.queue_full = self.closed = self.internal_errors = 0

    def after_fork_in_child(self) -> None:
        """A fresh lock (another thread of the parent may have held it at the fork), zeros."""
        self.lock = threading.Lock()
        self.reset()

    def dropped(self) -> int:
        """Events lost so far, for every reason."""
        return self.queue_full + self.send_error + self.oversize + self.closed + self.rejected


class Warnings:
    """Log each kind of trouble at most once per ``_WARN_EVERY_S`` (no flood, no recursion)."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def after_fork_in_child(self) -> None:
        """A fresh lock: another thread of the parent may have held it at the fork."""
        self._lock = threading.Lock()

    def warn(self, key: str, message: str, *args: object) -> None:
        """Log ``message`` at warning level unless ``key`` was warned about lately."""
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -math.inf) < _WARN_EVERY_S:
                return
            self._last[key] = now
        log.warning(message, *args)


class Flusher:
    """The daemon thread: drain the queue, send, count. Holds no reference to ``Telemetry``.

    Keeping ``Telemetry`` out of it lets a ``weakref.finalize`` on the client stop the thread
    when the client is garbage collected, and flush at interpreter exit.
    """

    def __init__(
        self,
        *,
        queue: deque[bytes],
        counters: Counters,
        warnings: Warnings,
        transport: Transport,
        address: Address,
        source: str,
        interval_s: float,
        drop_report_interval_s: float,
    ) -> None:
        self.queue = queue
        self.wake = threading.Event()
        self._counters = counters
        self._warnings = warnings
        self._transport = transport
        self._address = address
        self._source = source
        self._interval_s = interval_s
        self._drop_report_interval_s = drop_report_interval_s
        self._next_drop_report = time.monotonic() + drop_report_interval_s
        self._dropped_reported = 0
        self._waiters: list[threading.Event] = []
        self._waiters_lock = threading.Lock()
        self._stopping = False
        self.thread = self._new_thread()

    def _new_thread(self) -> threading.Thread:
        return threading.Thread(target=self._run, name="astra-telemetry", daemon=True)

    def _run(self) -> None:
        while True:
            self.wake.wait(self._interval_s)
            self.wake.clear()
            stopping = self._stopping
            with self._waiters_lock:
                waiters, self._waiters = self._waiters, []
            try:
                self._flush_once()
            except Exception as exc:  # a bug here must not kill the thread
                with self._counters.lock:
                    self._counters.internal_errors += 1
                self._warnings.warn("flusher", "astra.client: flusher error: %r", exc)
            for waiter in waiters:
                waiter.set()
            if stopping:
                break
        self._transport.close()

    def _flush_once(self) -> None:
        queue = self.queue
        lines = [queue.popleft() for _ in range(len(queue))]
        report = self._drop_report()
        if report is not None:
            lines.insert(0, report)
        if not lines:
            return
        counters = self._counters
        try:
            result = self._transport.deliver(lines)
        except Exception:
            # A transport never raises; if one does anyway, the batch is lost: counted.
            counters.send_error += len(lines)
            raise
        # ``retracted``: events counted as sent earlier, now known lost (see UdpTransport).
        counters.sent += result.sent - result.retracted
        counters.datagrams += result.units
        counters.send_error += result.failed + result.retracted
        counters.oversize += result.oversize
        counters.rejected += result.rejected
        if result.error is not None:
            self._warnings.warn(
                "deliver",
                "astra.client: events to %s are being dropped (%s); %d dropped so far",
                self._address,
                result.error,
                counters.dropped(),
            )

    def _drop_report(self) -> bytes | None:
        """Every interval, a counter metric of the events dropped since the last one."""
        now = time.monotonic()
        if now < self._next_drop_report:
            return None
        self._next_drop_report = now + self._drop_report_interval_s
        dropped = self._counters.dropped()
        delta = dropped - self._dropped_reported
        if delta <= 0:
            return None
        self._dropped_reported = dropped
        metric = events.Metric(
            name=DROPPED_METRIC, value=delta, type="counter", unit="events", source=self._source
        )
        return events.encode(metric)

    def flush(self, timeout_s: float) -> bool:
        """Wake the thread and wait until what was queued before the call has been sent."""
        if threading.current_thread() is self.thread or not self.thread.is_alive():
            return not self.queue
        done = threading.Event()
        with self._waiters_lock:
            self._waiters.append(done)
        self.wake.set()
        return done.wait(timeout_s)

    def signal_stop(self) -> None:
        """Ask the thread to send what is queued and end, without waiting for it."""
        self._stopping = True
        self.wake.set()

    def stop(self, timeout_s: float) -> None:
        """Send what is queued, then end the thread (waits at most ``timeout_s``)."""
        self.signal_stop()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout_s)

    def after_fork_in_child(self) -> None:
        """In a forked child: fresh locks, an empty queue, new counters, a new thread.

        The events queued at the fork are the parent's (it sends them), and so is the
        socket; the child starts from nothing and sends its own events.
        """
        self.queue.clear()
        self._counters.after_fork_in_child()
        self._dropped_reported = 0
        self._warnings.after_fork_in_child()
        self.wake = threading.Event()
        self._waiters = []
        self._waiters_lock = threading.Lock()
        self._transport.close()
        self.thread = self._new_thread()
        if not self._stopping:
            self.thread.start()


# Every flusher whose thread may still run, with how long interpreter exit waits for it.
_tracked: weakref.WeakKeyDictionary[Flusher, float] = weakref.WeakKeyDictionary()


def track(flusher: Flusher, exit_timeout_s: float) -> None:
    """Have ``flusher`` drained at interpreter exit and restarted in a forked child."""
    _tracked[flusher] = exit_timeout_s


def _drain_at_exit() -> None:
    for flusher, timeout_s in list(_tracked.items()):
        flusher.stop(timeout_s)


def _restart_in_child() -> None:
    for flusher in list(_tracked.keys()):
        try:
            flusher.after_fork_in_child()
        except Exception as exc:  # that client stays silent in the child; the fork goes on
            log.warning("astra.client: no flusher in the forked child: %r", exc)


atexit.register(_drain_at_exit)
if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_restart_in_child)
