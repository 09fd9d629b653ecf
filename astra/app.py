"""Wiring and lifecycle: build the pipeline from a Config, run it, shut it down cleanly."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio
import msgspec

from astra import __version__
from astra.collectors.ingest_http import HttpIngest
from astra.collectors.ingest_udp import UdpIngest
from astra.collectors.pipeline import PipelineReporter
from astra.collectors.suite import Collectors
from astra.config import CHANNELS, Config, ingest_warnings, parse_address, server_tls_context
from astra.events import ConfigLoaded, Event, Lifecycle
from astra.redaction import Redactor
from astra.sinks.delivery import ChannelDelivery
from astra.sinks.discord_http import DiscordHttp
from astra.sinks.preview import Preview
from astra.sinks.ratelimit import RateLimiter
from astra.statistics import (
    ChannelStatistics,
    DeliveryStatistics,
    FleetStatistics,
    SidecarStatistics,
    TransportStatistics,
)
from astra.streams.bus import Bus
from astra.streams.router import Router
from astra.streams.windows import ChannelStream

if TYPE_CHECKING:
    from astra.fleet.node import Fleet
    from astra.metrics import MetricsEndpoint

log = logging.getLogger("astra")

PIPELINE_REPORT_INTERVAL_S = 60.0
# A second stop signal this soon after the first is the same stop, delivered twice.
DUPLICATE_SIGNAL_S = 1.0


class Sidecar:
    """The running pipeline: ingest → bus → windows → delivery."""

    def __init__(self, config: Config, redactor: Redactor) -> None:
        self.config = config
        self.redactor = redactor
        self.started = time.time()
        streams = [
            ChannelStream(
                name,
                interval=config.flush.interval,
                critical_delay=config.flush.critical_delay,
                clock=time.monotonic,
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
            self.ingest,
            max_body_bytes=config.ingest.max_body_bytes,
            max_events=config.ingest.max_events_per_request,
            health=self.health,
            metrics=self._render_metrics,
            token=config.ingest.token,
            header_timeout=config.ingest.header_timeout,
            body_timeout=config.ingest.body_timeout,
            keepalive_timeout=config.ingest.keepalive_timeout,
            max_connections=config.ingest.max_connections,
            ssl_context=server_tls_context(config.ingest),
        )
        self.udp_ingest = UdpIngest(
            self.ingest,
            max_events=config.ingest.max_events_per_request,
            token=config.ingest.token,
            unauthenticated=config.ingest.udp_unauthenticated,
        )
        self.limiter = RateLimiter(
            time.monotonic,
            channel_per_minute=config.discord.channel_posts_per_minute,
            global_per_second=config.discord.global_requests_per_second,
        )
        self._transport: DiscordHttp | None = None
        self._metrics: MetricsEndpoint | None = None
        self.reporter = PipelineReporter(self.statistics, self.emit)
        self.deliveries: list[ChannelDelivery] = []
        self.collectors = Collectors(
            config, emit=self.emit, subscribe=self.bus.subscribe, snapshot=self.statistics
        )
        self.fleet: Fleet | None = None
        if config.fleet is not None:
            # Imported only in fleet mode: a single sidecar never loads redis-py.
            from astra.fleet.node import Fleet

            self.fleet = Fleet(config, redactor, streams=self.bus.streams, emit=self.emit)

    def emit(self, event: Event) -> None:
        """Put one of astra's own events on the bus (collectors' only way in)."""
        self.bus.publish(event)

    def ingest(self, events: Sequence[Event], size: int, raw: bytes) -> None:
        """Put events that came over the network on the bus (``raw``: the bytes they came in)."""
        self.bus.ingest(events, size, raw)

    def _render_metrics(self, accept: str) -> tuple[bytes, str]:
        if self._metrics is None:
            # Imported at the first scrape: a sidecar nobody scrapes keeps prometheus_client
            # (about 1.5 MiB of RSS) out of memory.
            from astra.metrics import MetricsEndpoint

            self._metrics = MetricsEndpoint(self.statistics)
        return self._metrics.render(accept)

    def statistics(self) -> SidecarStatistics:
        """Every stage's figures, composed into one snapshot taken now."""
        deliveries = {d.name: d.statistics() for d in self.deliveries}
        idle = DeliveryStatistics(mode="preview")
        return SidecarStatistics(
            version=__version__,
            at=time.time(),
            started=self.started,
            http=self.http_ingest.statistics(),
            udp=self.udp_ingest.statistics(),
            bus=self.bus.statistics(),
            channels={
                name: ChannelStatistics(
                    stream=stream.statistics(), delivery=deliveries.get(name, idle)
                )
                for name, stream in self.bus.streams.items()
            },
            limiter=self.limiter.statistics(),
            transport=(self._transport.statistics() if self._transport else TransportStatistics()),
            collectors=self.collectors.scheduler.statistics(),
            fleet=self.fleet.statistics() if self.fleet is not None else None,
        )

    def health(self) -> dict[str, Any]:
        """Figures for ``GET /healthz``: the documented keys, and the typed snapshot whole."""
        snapshot = self.statistics()
        return {
            "version": snapshot.version,
            "uptime_s": round(snapshot.uptime_s, 1),
            "pending": snapshot.bus.held,
            "published": snapshot.bus.published,
            "udp_receive_buffer": snapshot.udp.receive_buffer_bytes,
            "channels": {name: c.delivery.mode for name, c in snapshot.channels.items()},
            "role": snapshot.fleet.role if snapshot.fleet else "standalone",
            **({"fleet": _fleet_health(snapshot.fleet)} if snapshot.fleet else {}),
            **msgspec.structs.asdict(snapshot.totals),
            "statistics": msgspec.to_builtins(snapshot),
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
            http = self._transport = DiscordHttp(
                session,
                api_base=self.config.discord.api_base,
                limiter=self.limiter,
                bot_token=self.config.discord.token,
                username=self.config.discord.username,
            )
            preview = Preview()

            def make_delivery(name: str, stream: ChannelStream, **hooks: Any) -> ChannelDelivery:
                channel = self.config.channels[name]
                return ChannelDelivery(
                    channel,
                    stream,
                    http=None if channel.mode == "preview" else http,
                    preview=preview,
                    add_secret=self.redactor.add_secret,
                    webhook_name=self.config.discord.webhook_name,
                    max_window_events=self.config.buffer.max_events,
                    **{"emit": self.emit, **hooks},
                )

            for name in CHANNELS:
                self.deliveries.append(make_delivery(name, self.bus.streams[name]))
            if self.fleet is not None:
                await self.fleet.start()
            await self._start_ingest()
            self._announce()
            # One receiver for the whole run: a second signal during shutdown must cut the
            # drain short, not kill the process with a traceback.
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async with anyio.create_task_group() as deliveries:
                    if self.fleet is not None:
                        deliveries.start_soon(self.fleet.run, self.deliveries, make_delivery)
                    for delivery in self.deliveries if self.fleet is None else ():
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
                if self.fleet is not None:
                    await self.fleet.drain()
                for delivery in self.deliveries:
                    delivery.stream.close()
                # One channel's post may emit into another (a webhook provisioned): wait
                # until all are idle at once.
                while self.fleet is None and not all(d.idle() for d in self.deliveries):
                    for delivery in self.deliveries:
                        await delivery.wait_drained()
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


def _fleet_health(fleet: FleetStatistics) -> dict[str, Any]:
    """The fleet keys of ``/healthz``: who this member is, who posts, whether Redis answers."""
    return {
        "member": fleet.member,
        "role": fleet.role,
        "lease_holder": fleet.holder,
        "redis": fleet.redis,
        "redis_error": fleet.redis_error,
        "awaiting_redis": fleet.awaiting_redis,
        "silent_members": fleet.silent,
    }
