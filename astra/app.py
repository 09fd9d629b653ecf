"""Wiring and lifecycle: build the pipeline from a Config, run it, shut it down cleanly."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
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
from astra.collectors.report import next_report_time
from astra.collectors.suite import Collectors
from astra.config import (
    CHANNELS,
    Config,
    history_gaps,
    ingest_warnings,
    mention_ids,
    parse_address,
    server_tls_context,
)
from astra.errors import DiscordApiError
from astra.events import Alert, ConfigLoaded, Event, Health, Lifecycle, run_id
from astra.readback.history import ChannelHistory
from astra.readback.recovery import SpanReader
from astra.readback.source import channel_histories, unreadable
from astra.readback.when import local_day_bounds, snowflake_at
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
)
from astra.streams.bus import configured_bus
from astra.streams.windows import ChannelStream

if TYPE_CHECKING:
    from astra.fleet.node import Fleet
    from astra.metrics import MetricsEndpoint

log = logging.getLogger("astra")

PIPELINE_REPORT_INTERVAL_S = 60.0
# Problems found while reading history back that are also posted (all go to stderr).
MAX_RECOVERY_NOTICES = 20
# Live event ids remembered while recovery runs (it takes seconds; this bounds a flood).
MAX_LIVE_IDS = 1_000_000
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
            config, emit=self.emit, subscribe=self.bus.subscribe, snapshot=self.statistics
        )
        # Guild and channel names learned from events, for the embeds.
        self.names = NameBook()
        self.bus.subscribe(self.names.observe_many, NameBook.kinds)
        views = ControlViews(self.collectors, self.statistics)
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
        # Ids of live events while today's history is read back (None when not reading).
        self._live_ids: set[str] | None = None
        self.bus.subscribe(self._note_live, None)

    def _note_live(self, events: Sequence[Event]) -> None:
        """Bus listener: remember live event ids while recovery runs (bounded)."""
        live = self._live_ids
        if live is not None and len(live) < MAX_LIVE_IDS:
            live.update(e.id for e in events)

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
                            background.start_soon(self._recover, session, *recovery)
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
                    keeps_board=lambda: self.fleet is None or self.fleet.role != "member",
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

        def new_lease(events: Sequence[Event]) -> None:
            # The poster's first event: this board starts from what this lease sees.
            if any(
                isinstance(e, Lifecycle) and e.action == "fleet_poster" and not e.host
                for e in events
            ):
                board.forget()

        self.fleet.watch(new_lease, (Lifecycle,))
        self.fleet.watch(board.observe, (Health, Alert))

    def _recovery_plan(self) -> tuple[float, str, list[str]] | None:
        """The report day's start and its label, when its history can be read back; else
        say once that the day's report starts now, and return None."""
        report = self.config.collectors.report
        tz = ZoneInfo(report.timezone)
        due = next_report_time(self.started, report.time, tz)
        start, _ = local_day_bounds(datetime.fromtimestamp(due, tz).date(), report.time, tz)
        unread = unreadable(self.config, list(CHANNELS))
        readable = [n for n in CHANNELS if n not in unread]
        missing = history_gaps(self.config, readable or list(CHANNELS))
        if not missing:
            # From now until recovery ends, live event ids are noted: a client that sent the
            # same event to the previous run and to this one must not count twice.
            self._live_ids = set()
            return start, _clock(start, tz), readable
        if all(channel.mode == "preview" for channel in self.config.channels.values()):
            return None  # nothing was ever posted: nothing to say about reading it back
        now = _clock(self.started, tz)
        why = f"reading today's history back needs {', '.join(missing)}"
        log.info("recovery: today's report starts now (%s): %s", now, why)
        self.emit(Lifecycle(action="report_starts_now", detail=f"counted from {now}: {why}"))
        self.collectors.recovered(self.started, f"counted from {now}; {why}")
        return None

    async def _recover(
        self, session: aiohttp.ClientSession, start: float, since: str, channels: list[str]
    ) -> None:
        """Read today's posts back and fold them into the projections, beside live intake."""
        began = time.monotonic()
        notices = 0

        def notice(line: str) -> None:
            nonlocal notices
            notices += 1
            log.warning("recovery: %s", line)
            if notices <= MAX_RECOVERY_NOTICES:
                self.emit(Lifecycle(action="history_damage", detail=line))

        reader = DiscordReader(
            session, self.config.discord.api_base, self.limiter, bot_token=self.config.discord.token
        )
        bounds = self.config.recovery
        span: SpanReader | None = None
        counted_from, coverage, failure = start, "", ""
        histories: list[ChannelHistory] = []
        try:
            histories = await channel_histories(self.config, reader, channels, notice=notice)
            span = SpanReader(
                reader,
                histories,
                start=start,
                before=snowflake_at(self.started),
                max_messages=bounds.max_messages,
                max_bytes=bounds.max_bytes,
                notice=notice,
                skip_run=run_id(),
            )
            async for events in span.events():
                live = self._live_ids or set()
                events = [e for e in events if e.id not in live]
                self.collectors.restore(events)
                if self.board is not None:
                    # What was firing before the restart is on the board again.
                    self.board.observe([e for e in events if isinstance(e, Alert)])
        except DiscordApiError as exc:
            failure = str(exc)
        finally:
            self._live_ids = None
            tz = ZoneInfo(self.config.collectors.report.timezone)
            read_some = span is not None and span.batches.totals.events > 0
            if failure and read_some:
                coverage = f"history read only in part ({failure}): counts may be low"
            elif failure:
                counted_from = self.started
                coverage = f"counted from {_clock(self.started, tz)}; history not read: {failure}"
            elif span is not None and not span.coverage.complete:
                counted_from = span.coverage.counted_from
                coverage = (
                    f"counted from {_clock(counted_from, tz)}; earlier history not read "
                    "(recovery.max_messages / recovery.max_bytes)"
                )
            unread = unreadable(self.config, list(CHANNELS))
            if unread:
                skipped = ", ".join(f"#{name} ({why})" for name, why in unread.items())
                coverage = "; ".join(filter(None, (coverage, f"not read back: {skipped}")))
            self.collectors.recovered(counted_from, coverage)
        totals = span.batches.totals if span is not None else None
        if failure:
            log.warning("recovery: %s; today's report counts from now", failure)
            self.emit(Lifecycle(action="recovery_failed", detail=failure))
            return
        assert totals is not None and span is not None
        fetched = sum(h.fetched for h in histories)
        way = (
            f"{fetched:,} posts fetched through the webhook (no Message Content intent)"
            if fetched
            else "attachments from the channel listing"
        )
        detail = (
            f"read {totals.posts:,} posts, {totals.events:,} events since {since} in "
            f"{time.monotonic() - began:.1f} s; {way}"
            + (f"; {coverage}" if coverage else "")
            + (f"; {notices} problems (stderr)" if notices else "")
        )
        log.info("recovery: %s", detail)
        self.emit(Lifecycle(action="recovered", detail=detail))

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
                if self.board is not None and self.board.posted:
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


def _clock(ts: float, tz: ZoneInfo) -> str:
    """``HH:MM`` local time, as the report's readers see it."""
    return datetime.fromtimestamp(ts, tz).strftime("%H:%M")


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
