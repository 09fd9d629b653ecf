"""Wiring and lifecycle: build the pipeline from a Config, run it, shut it down cleanly."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp
import anyio

from astra import __version__
from astra.collectors.ingest_http import HttpIngest
from astra.collectors.ingest_udp import UdpIngest
from astra.collectors.pipeline import PipelineReporter
from astra.collectors.suite import Collectors
from astra.config import CHANNELS, Config, ingest_warnings, parse_address, server_tls_context
from astra.events import ConfigLoaded, Event, Lifecycle, encode
from astra.redaction import Redactor
from astra.sinks.delivery import ChannelDelivery
from astra.sinks.discord_http import DiscordHttp
from astra.sinks.preview import Preview
from astra.sinks.ratelimit import RateLimiter
from astra.stats import PipelineStats
from astra.streams.bus import Bus
from astra.streams.router import Router
from astra.streams.windows import ChannelStream

log = logging.getLogger("astra")

PIPELINE_REPORT_INTERVAL_S = 60.0
# A second stop signal this soon after the first is the same stop, delivered twice.
DUPLICATE_SIGNAL_S = 1.0


class Sidecar:
    """The running pipeline: ingest → bus → windows → delivery."""

    def __init__(self, config: Config, redactor: Redactor) -> None:
        self.config = config
        self.redactor = redactor
        self.stats = PipelineStats()
        self.started = time.time()
        streams = [
            ChannelStream(
                name,
                config.flush.interval,
                config.flush.critical_delay,
                time.monotonic,
                critical_per_minute=config.flush.critical_per_minute,
            )
            for name in CHANNELS
        ]
        self.bus = Bus(
            Router(config.routes),
            streams,
            redactor,
            max_events=config.buffer.max_events,
            max_bytes=config.buffer.max_bytes,
        )
        self.http_ingest = HttpIngest(
            self._ingest_one,
            self.stats,
            config.ingest.max_body_bytes,
            config.ingest.max_events_per_request,
            self.health,
            token=config.ingest.token,
            header_timeout=config.ingest.header_timeout,
            body_timeout=config.ingest.body_timeout,
            keepalive_timeout=config.ingest.keepalive_timeout,
            max_connections=config.ingest.max_connections,
            ssl_context=server_tls_context(config.ingest),
        )
        self.udp_ingest = UdpIngest(
            self._ingest_one,
            self.stats,
            config.ingest.max_events_per_request,
            token=config.ingest.token,
            unauthenticated=config.ingest.udp_unauthenticated,
        )
        self.reporter = PipelineReporter(
            self.stats,
            self.emit,
            self._refresh_stats,
            lambda: {name: s.dropped_total for name, s in self.bus.streams.items()},
        )
        self.deliveries: list[ChannelDelivery] = []
        self.collectors = Collectors(config, self.emit, self.bus, self.stats, self.health)

    def emit(self, event: Event) -> None:
        """Put one of astra's own events on the bus (collectors' only way in)."""
        self.bus.publish(event)

    def ingest(self, events: Sequence[Event], size: int) -> None:
        """Put events that came over the network on the bus (``size`` bytes as received)."""
        self.bus.ingest(events, size)

    def _ingest_one(self, event: Event) -> None:
        self.bus.ingest([event], len(encode(event)))

    def _refresh_stats(self) -> None:
        self.udp_ingest.refresh_kernel_drops()
        self.stats.dropped_buffer = self.bus.dropped

    def health(self) -> dict[str, Any]:
        """Figures for ``GET /healthz``."""
        self._refresh_stats()
        return {
            "version": __version__,
            "uptime_s": round(time.time() - self.started, 1),
            "pending": self.bus.pending,
            "published": self.bus.published,
            "udp_receive_buffer": self.udp_ingest.granted_buffer,
            "channels": {
                d.name: ("preview" if d.previewing else "discord") for d in self.deliveries
            },
            **self.stats.snapshot(),
        }

    def undelivered(self) -> int:
        """Events still in memory: pending in windows or in a window being sent."""
        return self.bus.pending

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT, then drain within the shutdown deadline; exit status."""
        # Per connect and per read, not in total: a post with ten large attachments may
        # rightly take longer than a minute on a slow uplink while still making progress.
        seconds = self.config.discord.timeout
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)
        connector = aiohttp.TCPConnector(limit=16)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            limiter = RateLimiter(
                time.monotonic,
                self.config.discord.channel_posts_per_minute,
                self.config.discord.global_requests_per_second,
            )
            http = DiscordHttp(
                session,
                self.config.discord.api_base,
                limiter,
                self.config.discord.token,
                self.config.discord.username,
            )
            preview = Preview()
            for name in CHANNELS:
                channel = self.config.channels[name]
                self.deliveries.append(
                    ChannelDelivery(
                        channel,
                        self.bus.streams[name],
                        None if channel.mode == "preview" else http,
                        preview,
                        self.stats,
                        self.emit,
                        self.redactor.add_secret,
                        self.config.discord.webhook_name,
                        self.config.buffer.max_events,
                    )
                )
            await self._start_ingest()
            self._announce()
            # One receiver for the whole run: a second signal during shutdown must cut the
            # drain short, not kill the process with a traceback.
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async with anyio.create_task_group() as deliveries:
                    for delivery in self.deliveries:
                        deliveries.start_soon(delivery.run)
                    async with anyio.create_task_group() as background:
                        background.start_soon(self.reporter.run, PIPELINE_REPORT_INTERVAL_S)
                        background.start_soon(self.collectors.run)
                        signum = await signals.__anext__()
                        log.info(
                            "received %s: stopping intake and delivering what is pending",
                            signal.Signals(signum).name,
                        )
                        background.cancel_scope.cancel()
                    await self._shutdown(signals)
                    deliveries.cancel_scope.cancel()
        return 0

    async def _start_ingest(self) -> None:
        ingest = self.config.ingest
        for warning in ingest_warnings(self.config):
            log.warning("%s", warning)
        if ingest.http not in ("", "off"):
            host, port = parse_address(ingest.http, "ingest.http")
            bound = await self.http_ingest.start(host, port)
            log.info(
                "ingest: HTTP on %s://%s:%d/v1/events (%s; at most %d connections)",
                self.http_ingest.scheme,
                *bound,
                "bearer token required" if ingest.token else "no token",
                self.http_ingest.max_connections,
            )
        if ingest.udp not in ("", "off"):
            host, port = parse_address(ingest.udp, "ingest.udp")
            bound = await self.udp_ingest.start(host, port, ingest.udp_receive_buffer)
            signed = "unsigned datagrams dropped" if ingest.token else "no signature needed"
            if ingest.token and ingest.udp_unauthenticated:
                signed = "unsigned datagrams accepted (ingest.udp_unauthenticated)"
            log.info(
                "ingest: UDP on %s:%d (receive buffer %d KiB; %s)",
                *bound,
                self.udp_ingest.granted_buffer // 1024,
                signed,
            )

    def _announce(self) -> None:
        modes = {name: self.config.channels[name].mode for name in CHANNELS}
        log.info(
            "astra %s started (pid %d); channels: %s",
            __version__,
            os.getpid(),
            ", ".join(f"{k}={v}" for k, v in modes.items()),
        )
        self.emit(Lifecycle(action="started", detail=f"astra {__version__}, pid {os.getpid()}"))
        self.emit(
            ConfigLoaded(
                path=self.config.path,
                flush_interval=self.config.flush.interval,
                channels=modes,
                routes=self.config.routes,
            )
        )

    async def _shutdown(self, signals: AsyncIterator[int]) -> None:
        """Stop intake, close every window and deliver, all within the shutdown deadline."""
        deadline = self.config.shutdown.deadline
        interrupted: list[str] = []
        started = time.monotonic()
        with anyio.move_on_after(deadline) as scope:
            async with anyio.create_task_group() as drain:

                async def second_signal() -> None:
                    async for signum in signals:
                        # `timeout`, process managers and a Ctrl-C in a shell can deliver
                        # the same stop to the process and its group at once: only a
                        # signal sent deliberately later cuts the drain short.
                        if time.monotonic() - started < DUPLICATE_SIGNAL_S:
                            continue
                        interrupted.append(signal.Signals(signum).name)
                        drain.cancel_scope.cancel()
                        return

                drain.start_soon(second_signal)
                await self.http_ingest.stop()
                self.udp_ingest.stop()
                self.reporter.report(PIPELINE_REPORT_INTERVAL_S)
                self.emit(
                    Lifecycle(action="stopping", detail=f"{self.bus.published:,} events this run")
                )
                for delivery in self.deliveries:
                    delivery.stream.closing = True
                    delivery.wake()
                await _wait_until(lambda: all(d.idle() for d in self.deliveries))
                drain.cancel_scope.cancel()
        left = self.undelivered()
        if scope.cancelled_caught or interrupted:
            why = (
                f"second {interrupted[0]}" if interrupted else f"shutdown deadline ({deadline:g} s)"
            )
            print(f"astra: {why}: {left:,} events were not delivered", file=sys.stderr)
        else:
            log.info(
                "stopped: everything delivered (%s events this run)", f"{self.bus.published:,}"
            )


async def _wait_until(condition: Callable[[], bool], interval: float = 0.05) -> None:
    while not condition():
        await anyio.sleep(interval)
