"""The heartbeat out: a URL called every ``interval`` while the pipeline is healthy.

For Uptime Kuma push monitors and healthchecks.io-style checks: when the calls stop, the
service outside Discord raises the alarm, so a dead host or a stuck sidecar is noticed
even when Discord itself shows nothing. Healthy means every channel can post: no channel
has events waiting without a post for a while, and none needs a configuration fix. The
URL is a secret (push URLs carry their token): it is never logged, only why a call failed,
once per burst of failures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import aiohttp
import anyio

from astra import __version__
from astra.statistics import HeartbeatStatistics, SidecarStatistics
from astra.units import fmt_duration, fmt_int

log = logging.getLogger("astra.heartbeat")

USER_AGENT = f"astra-heartbeat/{__version__}"


def pipeline_trouble(snapshot: SidecarStatistics, stale_after_s: float) -> str:
    """Why the pipeline is unhealthy now, in one line; "" when every channel can post."""
    for name, figures in snapshot.channels.items():
        delivery = figures.delivery
        if delivery.problem:
            return f"#{name}: {delivery.problem}"
        since = delivery.last_post if delivery.last_post is not None else snapshot.started
        waiting = figures.stream.pending
        if waiting and snapshot.at - since > stale_after_s:
            return (
                f"#{name}: no post for {fmt_duration(snapshot.at - since)}, "
                f"{fmt_int(waiting)} events waiting"
            )
    return ""


class Heartbeat:
    """Calls the heartbeat URL every ``interval_s`` while ``trouble()`` answers ""."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        interval_s: float,
        timeout_s: float,
        trouble: Callable[[], str],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._url = url
        self.interval_s = interval_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._trouble = trouble
        self._clock = wall_clock
        self._sent = 0
        self._failed = 0
        self._skipped = 0
        self._last_ok: float | None = None
        self._failing = 0
        self._held = False

    def statistics(self) -> HeartbeatStatistics:
        """The calls made so far and how they went."""
        return HeartbeatStatistics(
            enabled=True,
            sent=self._sent,
            failed=self._failed,
            skipped=self._skipped,
            last_ok=self._last_ok,
        )

    async def run(self) -> None:
        """Beat, then wait ``interval_s``; forever (the owner cancels it)."""
        while True:
            await self.beat()
            await anyio.sleep(self.interval_s)

    async def beat(self) -> bool:
        """One heartbeat: call the URL if the pipeline is healthy; whether it was answered 2xx."""
        reason = self._trouble()
        if reason:
            self._skipped += 1
            if not self._held:
                log.warning("heartbeat: held back while the pipeline is unhealthy: %s", reason)
            self._held = True
            return False
        if self._held:
            log.info("heartbeat: the pipeline is healthy again; beating again")
        self._held = False
        why = await self._call()
        if not why:
            self._sent += 1
            self._last_ok = self._clock()
            if self._failing:
                log.info("heartbeat: answered again after %d failed calls", self._failing)
            self._failing = 0
            return True
        self._failed += 1
        if not self._failing:
            log.warning(
                "heartbeat: the call failed (%s); retrying every %s, quietly until it works",
                why,
                fmt_duration(self.interval_s),
            )
        self._failing += 1
        return False

    async def _call(self) -> str:
        """GET the URL; "" when answered 2xx, else why not (never the URL: it is a secret)."""
        try:
            async with self._session.get(
                self._url, timeout=self._timeout, headers={"User-Agent": USER_AGENT}
            ) as response:
                await response.read()
                return "" if 200 <= response.status < 300 else f"HTTP {response.status}"
        except TimeoutError:
            return f"no answer within {self._timeout.total:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            # Only the type: aiohttp's messages carry the URL.
            return type(exc).__name__
