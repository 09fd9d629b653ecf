"""Wiring and lifecycle: build the pipeline from a Config, run it, shut it down cleanly."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import aiohttp
import anyio
import msgspec
from aiohttp import web

from astra import __version__
from astra.collectors.control_http import ControlEndpoint
from astra.collectors.control_views import ControlViews
from astra.collectors.ingest_http import HttpIngest
from astra.collectors.ingest_udp import UdpIngest
from astra.collectors.pipeline import PipelineReporter
from astra.collectors.report import DailyReportCollector
from astra.collectors.suite import Collectors
from astra.config import (
    CHANNELS,
    Config,
    ingest_warnings,
    mention_ids,
    parse_address,
    server_tls_context,
)
from astra.day_readback import DayPlan, DayReadBack, LiveIds, clock, plan_day
from astra.events import Alert, ConfigLoaded, Event, Health, Lifecycle, Subscribe, run_id
from astra.fleet_report import FleetReport
from astra.redaction import Redactor
from astra.sinks.delivery import ChannelDelivery
from astra.sinks.discord_http import DiscordHttp
from astra.sinks.discord_read import DiscordReader
from astra.sinks.heartbeat import Heartbeat, pipeline_trouble
from astra.sinks.notify import Mentions
from astra.sinks.preview import Preview
from astra.sinks.ratelimit import RateLimiter
from astra.sinks.render.names import NameBook
from astra.sinks.status_board import MIN_INTERVAL_S, StatusBoard
from astra.statistics import (
    ChannelStatistics,
    DeliveryStatistics,
    FleetStatistics,
    HeartbeatStatistics,
    SidecarStatistics,
    StatusBoardStatistics,
    TransportStatistics,
    combined_delivery,
)
from astra.streams.bus import configured_bus
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
        self.bus = configured_bus(config, redactor)
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
            add_routes=self._add_control_routes,
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
        self.board: StatusBoard | None = None
        self.heartbeat: Heartbeat | None = None
        self.collectors = Collectors(
            config,
            emit=self.emit,
            subscribe=self.bus.subscribe,
            snapshot=self.statistics,
            # A fleet has one daily report, kept by its poster from every member's events.
            daily_report=config.fleet is None,
        )
        # Guild and channel names learned from events, for the embeds.
        self.names = NameBook()
        self.bus.subscribe(self.names.observe_many, NameBook.kinds)
        views = ControlViews(
            self.collectors,
            self.statistics,
            daily_report=self._fleet_daily_report if config.fleet is not None else None,
        )
        self.control = ControlEndpoint(
            config.control.token,
            mutes=self.collectors.mutes,
            emit=self.emit,
            health=views.health,
            errors=views.errors,
            report=views.report,
        )
        self.fleet: Fleet | None = None
        if config.fleet is not None:
            # Imported only in fleet mode: a single sidecar never loads redis-py.
            from astra.fleet.node import Fleet

            self.fleet = Fleet(config, redactor, streams=self.bus.streams, emit=self.emit)
        # Ids of live events while today's history is read back.
        self._live = LiveIds()
        self.bus.subscribe(self._live.observe, None)
        # In a fleet: the fleet's daily report, kept while this member posts.
        self.fleet_report: FleetReport | None = None

    def _fleet_daily_report(self) -> DailyReportCollector | str:
        """In a fleet, the report the control endpoint answers from, or why there is none."""
        if self.fleet_report is not None and self.fleet_report.report is not None:
            return self.fleet_report.report
        if not self.config.collectors.report.enabled:
            return "the daily report is off ([collectors.report] enabled = false)"
        holder = (self.fleet.lease.holder if self.fleet else "") or "no member yet"
        return f"in a fleet the daily report is kept by the poster ({holder}): ask its bot"

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
        if self.fleet is not None:
            # A member's own deliveries post only without Redis; as the fleet's poster it
            # posts through the poster's: the channel's figures are all of them (past
            # leases first, then the current one, then its own, as the leases add up).
            for name, parts in self.fleet.delivery_statistics().items():
                if name in deliveries:
                    deliveries[name] = combined_delivery([*parts, deliveries[name]])
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
            control=self.control.statistics(),
            fleet=self.fleet.statistics() if self.fleet is not None else None,
            board=self.board.statistics() if self.board else StatusBoardStatistics(),
            heartbeat=self.heartbeat.statistics() if self.heartbeat else HeartbeatStatistics(),
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

    def _add_control_routes(self, app: web.Application) -> None:
        self.control.add_routes(app)

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
            roles, users = mention_ids(self.config.alerts)

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
                    names=self.names,
                    mentions=Mentions(roles=roles, users=users),
                    timezone=self.config.collectors.report.timezone,
                    **{"emit": self.emit, **hooks},
                )

            for name in CHANNELS:
                self.deliveries.append(make_delivery(name, self.bus.streams[name]))
            self._start_board_and_heartbeat(http, session)
            if self.fleet is not None:
                await self.fleet.start()
            await self._start_ingest()
            self._announce()
            recovery = self._recovery_plan() if self.config.recovery.enabled else None
            if recovery is not None:
                # Held before the collectors first run: no alert may fire twice.
                self.collectors.hold()
            # One receiver for the whole run: a second signal during shutdown must cut the
            # drain short, not kill the process with a traceback.
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async with anyio.create_task_group() as deliveries:
                    if self.fleet is not None:
                        if self.config.collectors.report.enabled:
                            self.fleet_report = FleetReport(
                                self.config, self.fleet, session, self.limiter, self.emit
                            )
                            self.fleet.on_lease(self.fleet_report.run)
                        deliveries.start_soon(self.fleet.run, self.deliveries, make_delivery)
                    for delivery in self.deliveries if self.fleet is None else ():
                        deliveries.start_soon(delivery.run)
                    async with anyio.create_task_group() as background:
                        background.start_soon(self.reporter.run, PIPELINE_REPORT_INTERVAL_S)
                        background.start_soon(self.collectors.run)
                        if self.board is not None:
                            background.start_soon(self.board.run)
                        if self.heartbeat is not None:
                            background.start_soon(self.heartbeat.run)
                        if recovery is not None:
                            background.start_soon(self._recover, session, recovery)
                        signum = await signals.__anext__()
                        log.info(
                            "received %s: stopping intake and delivering what is pending",
                            signal.Signals(signum).name,
                        )
                        background.cancel_scope.cancel()
                    await self._shutdown(signals)
                    deliveries.cancel_scope.cancel()
        return 0

    def _start_board_and_heartbeat(self, http: DiscordHttp, session: aiohttp.ClientSession) -> None:
        """The status board (when #diagnostics posts to Discord) and the heartbeat (if set)."""
        diagnostics = next(d for d in self.deliveries if d.name == "diagnostics")
        if self.config.status_board.enabled and not diagnostics.previewing:
            if diagnostics.channel.forum:
                log.warning("status board: off, #diagnostics is a forum channel (use thread_id)")
            else:
                reader = None
                if http.has_bot_token:
                    reader = DiscordReader(
                        session,
                        self.config.discord.api_base,
                        self.limiter,
                        bot_token=self.config.discord.token,
                    )
                # At every health run, however often, but alert bursts coalesced.
                every = min(MIN_INTERVAL_S, self.config.collectors.health.interval)
                self.board = StatusBoard(
                    diagnostics,
                    http,
                    self.statistics,
                    reader=reader,
                    min_interval_s=every,
                    # In a fleet only the poster edits it: members posting by themselves
                    # without Redis hear no fleet events, and would all edit one message.
                    keeps_board=lambda: self.fleet is None or self.fleet.role == "poster",
                )
                if self.fleet is None:
                    self.bus.subscribe(self.board.observe, (Health, Alert))
                else:
                    self._watch_fleet(self.board)
                if not http.has_bot_token:
                    log.info(
                        "status board: without [discord] token astra cannot find its board "
                        "after a restart: each run posts a new one"
                    )
        beat = self.config.heartbeat
        if beat.url:
            stale_after = max(300.0, 3 * self.config.flush.interval)
            self.heartbeat = Heartbeat(
                session,
                beat.url,
                interval_s=beat.interval,
                timeout_s=beat.timeout,
                trouble=lambda: pipeline_trouble(self.statistics(), stale_after),
            )
            log.info("heartbeat: calling the heartbeat URL every %g s while healthy", beat.interval)

    def _watch_fleet(self, board: StatusBoard) -> None:
        """The fleet's board folds the fleet's events, from the poster's bus: every member's,
        the poster's own included (they come back through Redis stamped with its name, so
        the local bus would count them twice), and the poster's member_silent alerts."""
        assert self.fleet is not None

        async def new_lease(_subscribe: Subscribe) -> None:
            # Before the poster reads anything: this board starts from what this lease sees.
            board.forget()

        self.fleet.on_lease(new_lease)
        self.fleet.watch(board.observe, (Health, Alert))

    def _recovery_plan(self) -> DayPlan | None:
        """The report day to read back at start; when its history cannot be read, say once
        that the day's report starts now, and return None."""
        plan = plan_day(self.config, self.started)
        if isinstance(plan, DayPlan):
            if self.fleet is not None:
                # A member takes up only its own alerts and watched processes (the poster
                # keeps the fleet's report): only the channels they are routed to are read.
                own = {self.config.routes["alert"], self.config.routes["process"]}
                channels = [c for c in plan.channels if c in own]
                plan = msgspec.structs.replace(plan, channels=channels)
            # From now until recovery ends, live event ids are noted: a client that sent the
            # same event to the previous run and to this one must not count twice.
            self._live.start()
            return plan
        if plan:
            now = clock(self.started, ZoneInfo(self.config.collectors.report.timezone))
            why = f"reading today's history back needs {', '.join(plan)}"
            if self.fleet is not None:
                # A member keeps no report: what it cannot take up is its own alert state.
                line = f"{self.fleet.member}'s alerts and watched processes start afresh"
                log.info("recovery: %s: %s", line, why)
                self.emit(Lifecycle(action="history_not_read", detail=f"{line}: {why}"))
            else:
                log.info("recovery: today's report starts now (%s): %s", now, why)
                self.emit(
                    Lifecycle(action="report_starts_now", detail=f"counted from {now}: {why}")
                )
            self.collectors.recovered(self.started, f"counted from {now}; {why}")
        return None

    async def _recover(self, session: aiohttp.ClientSession, plan: DayPlan) -> None:
        """Read today's posts back and fold them into the projections, beside live intake."""
        member = self.fleet.member if self.fleet is not None else None

        def restore(batch: Sequence[Event]) -> None:
            events = self._live.unseen(batch)
            if member is not None:
                # A fleet's history holds every member's events: a member's alerts and
                # watched processes are its own (the fleet's report is the poster's).
                events = [e for e in events if e.host == member]
            self.collectors.restore(events)
            if self.board is not None:
                # What was firing before the restart is on the board again.
                self.board.observe([e for e in events if isinstance(e, Alert)])

        counted_from, coverage = self.started, ""
        try:
            counted_from, coverage = await DayReadBack(
                self.config, session, self.limiter, emit=self.emit
            ).run(plan, before=self.started, restore=restore, skip_run=run_id())
        finally:
            self._live.stop()
            self.collectors.recovered(counted_from, coverage)

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
            if self.config.control.token:
                log.info("control: /v1/control/* on the same address (control token required)")
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
                # A fleet goes on when its poster stops: only a single sidecar's board says
                # it stopped.
                if self.board is not None and self.board.posted and self.fleet is None:
                    await self.board.refresh_safely(stopped=True)
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
