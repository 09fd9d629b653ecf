"""A fleet member's life: publish, maybe post, and post directly when Redis is gone.

Two loops run side by side. The member loop appends the local events to the stream and
beats the member's heart in Redis; when Redis stays unreachable past ``fallback_after``
it lets the local deliveries post directly (marked degraded) until Redis answers again.
The lease loop tries for the lease; while it holds it, a ``Poster`` runs, and losing the
lease (a failed renewal, or the fencing check before a post) cancels that poster at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import anyio
import anyio.abc
import msgspec

from astra.config import Config, FleetConfig
from astra.errors import ConfigError
from astra.events import Event, Lifecycle, Listener, Subscribe
from astra.fleet.connection import (
    Keys,
    RedisError,
    certificate_advice,
    connect,
    describe,
    is_auth_error,
    untrusted_certificate,
)
from astra.fleet.lease import Lease
from astra.fleet.poster import MakeDelivery, Poster, PosterFigures
from astra.fleet.publisher import Publisher
from astra.fleet.silence import SilenceWatcher
from astra.redaction import Redactor
from astra.sinks.delivery import ChannelDelivery
from astra.statistics import DeliveryStatistics, FleetStatistics, combined_delivery
from astra.streams.windows import ChannelStream, Window

log = logging.getLogger("astra.fleet")

PUBLISH_INTERVAL_S = 0.1
# Heartbeats every tenth of silent_after, at least every 5 s, at most every second (unless
# silent_after is so short that a quarter of it is less).
HEARTBEAT_MIN_S = 1.0
HEARTBEAT_MAX_S = 5.0
CONFIRM_S = 1.0
# How long the fleet remembers that a day's report was made.
REPORT_KEY_TTL_S = 2 * 86400
# Work that runs while this member holds the lease, given how to subscribe to the poster's bus.
LeaseTask = Callable[[Subscribe], Coroutine[Any, Any, None]]
DEGRADED_NOTE = "Redis unreachable: {member} posts by itself until it is back"

_HEARTBEAT = """
local now = redis.call('time')
redis.call('hset', KEYS[1], ARGV[1], now[1] * 1000 + math.floor(now[2] / 1000))
return 1
"""


class Fleet:
    """This sidecar as a fleet member: its publisher, its lease, its poster when it holds it."""

    def __init__(
        self,
        config: Config,
        redactor: Redactor,
        *,
        streams: Mapping[str, ChannelStream],
        emit: Callable[[Event], object],
    ) -> None:
        assert config.fleet is not None
        self.config = config
        self.settings: FleetConfig = config.fleet
        self.member = self.settings.name
        self._redactor = redactor
        self._streams = streams
        self._client = connect(self.settings.redis, self.settings.tls_ca)
        self.keys = Keys(self.settings.key_prefix)
        run = f"{os.urandom(4).hex()}-{os.getpid()}"
        self.publisher = Publisher(
            self._client,
            self.keys,
            streams,
            member=self.member,
            run=run,
            max_stream_len=self.settings.max_stream_len,
            # Half the bound at most for what Redis already has: new events need room too.
            max_kept=config.buffer.max_events // 2,
        )
        self.lease = Lease(self._client, self.keys, self.member, self.settings.lease)
        self._heartbeat = self._client.register_script(_HEARTBEAT)
        self._silence = SilenceWatcher(self.settings.silent_after)
        self._local: dict[str, ChannelDelivery] = {}
        self._make_delivery: MakeDelivery | None = None
        self._emit = emit
        self.poster: Poster | None = None
        self._poster_scope: anyio.CancelScope | None = None
        self._reachable: bool | None = None
        self._unreachable_since: float | None = None
        self._last_error = ""
        self._fallback = False
        self._posting_directly: set[str] = set()
        self._fallback_posts = 0
        self._leases = 0
        self._stopping = False
        self._last_beat = 0.0
        self._last_confirm = 0.0
        silent = self.settings.silent_after
        self._heartbeat_every = min(
            HEARTBEAT_MAX_S, max(silent / 10, min(HEARTBEAT_MIN_S, silent / 4))
        )
        # Poster figures of past leases, added to the current poster's.
        self._past = PosterFigures()
        # Each channel's delivery figures of past leases, added to the current poster's.
        self._past_delivery: dict[str, DeliveryStatistics] = {}
        # Listeners on every poster's bus, which carries the whole fleet's events.
        self._watchers: list[tuple[Listener, tuple[type[Event], ...] | None]] = []
        self._lease_tasks: list[LeaseTask] = []

    def watch(self, listener: Listener, kinds: tuple[type[Event], ...] | None = None) -> None:
        """Subscribe ``listener`` to the bus of every poster this member becomes: while it
        holds the lease, the listener sees every member's events (stamped with their host)."""
        self._watchers.append((listener, kinds))

    def on_lease(self, task: LeaseTask) -> None:
        """Run ``task(subscribe)`` for as long as each lease this member holds lasts, with
        ``subscribe`` to that poster's bus; it is cancelled with the lease. It should
        subscribe before its first ``await``: the poster's reading starts right after."""
        self._lease_tasks.append(task)

    async def first_to_report(self, day: str) -> bool:
        """Whether this member is the first in the fleet to make the daily report of ``day``
        (a key in Redis, kept two days), so a day's report is made once whoever posts.
        True when Redis cannot tell: a report twice beats a report lost."""
        try:
            with anyio.fail_after(3):
                made = await self._client.set(
                    self.keys.report(day), self.member, nx=True, ex=REPORT_KEY_TTL_S
                )
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning(
                "fleet: cannot tell whether %s's report was made: %s", day, self._describe(exc)
            )
            return True
        return bool(made)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Check Redis before ingest opens: wrong credentials or a TLS certificate that fails
        verification end the start with one line.

        Raises ``ConfigError`` for those; an unreachable Redis is only reported (events
        wait in memory, then the fallback posts them).
        """
        try:
            with anyio.fail_after(5):
                await self._client.ping()
        except TimeoutError:
            self._unreachable("no answer within 5 s")
        except RedisError as exc:
            if is_auth_error(exc):
                raise ConfigError(
                    f"fleet.redis: Redis refused the credentials "
                    f"({describe(exc, self._redactor.text)})"
                ) from None
            refused = untrusted_certificate(exc)
            if refused is not None:
                advice = certificate_advice(refused, self.settings.tls_ca)
                raise ConfigError(
                    "fleet.redis: Redis's TLS certificate failed verification "
                    f"({self._redactor.text(advice)})"
                ) from None
            self._unreachable(describe(exc, self._redactor.text))
        else:
            self._reached()
            log.info("fleet: member %s joined (Redis ok)", self.member)

    async def run(self, local: list[ChannelDelivery], make_delivery: MakeDelivery) -> None:
        """Publish, hold the lease when free, fall back when Redis is gone; until cancelled."""
        self._local = {d.name: d for d in local}
        self._make_delivery = make_delivery
        async with anyio.create_task_group() as group:
            group.start_soon(self._member_loop, group)
            group.start_soon(self._lease_loop)

    async def drain(self) -> None:
        """A clean stop: everything local out to Redis (or Discord), the poster's posts out,
        the lease given up and the member's heartbeat removed. The caller sets the deadline."""
        self._stopping = True
        for stream in self._streams.values():
            stream.close()
        while self.publisher.has_work() or not all(d.idle() for d in self._local.values()):
            await anyio.sleep(PUBLISH_INTERVAL_S)
        if self.poster is not None:
            await self.poster.finish()
        try:
            with anyio.fail_after(3):
                await self.lease.release()
                await self._client.hdel(self.keys.members, self.member)
        except (RedisError, TimeoutError) as exc:
            log.info("fleet: could not leave cleanly: %s", self._describe(exc))
        else:
            log.info("fleet: member %s left the fleet", self.member)

    # --- member loop --------------------------------------------------------------------

    async def _member_loop(self, group: anyio.abc.TaskGroup) -> None:
        while True:
            appended = 0
            try:
                if not self._fallback:
                    appended = await self.publisher.publish()
                await self._beat()
            except (RedisError, OSError) as exc:
                self._unreachable(self._describe(exc))
            else:
                self._reached()
            if self._should_fall_back():
                self._enter_fallback(f"for {self.settings.fallback_after:g} s")
                for name in self._local:
                    # A channel still finishing the last fallback's window keeps its worker.
                    if name not in self._posting_directly:
                        self._posting_directly.add(name)
                        group.start_soon(self._post_directly, name)
            if not appended:
                await anyio.sleep(PUBLISH_INTERVAL_S)

    async def _beat(self) -> None:
        now = time.monotonic()
        if now - self._last_confirm >= CONFIRM_S and not self._fallback:
            await self.publisher.confirm()
            self._last_confirm = now
        if now - self._last_beat >= self._heartbeat_every:
            await self._heartbeat(keys=[self.keys.members], args=[self.member])
            self._last_beat = now
        elif self._fallback:
            await self._client.ping()

    def _should_fall_back(self) -> bool:
        since = self._unreachable_since
        if self._fallback or since is None:
            return False
        # Stopping without Redis: nothing else would take the events, so post them now.
        return self._stopping or time.monotonic() - since >= self.settings.fallback_after

    def _enter_fallback(self, how_long: str) -> None:
        if self._fallback:
            return
        self._fallback = True
        print(
            f"astra: fleet: Redis unreachable {how_long}: {self.member} posts directly to "
            "Discord (degraded) until it is back",
            file=sys.stderr,
        )

    async def _post_directly(self, channel: str) -> None:
        """Deliver this channel's windows from local memory while Redis is unreachable."""
        delivery = self._local[channel]
        stream = self._streams[channel]
        note = DEGRADED_NOTE.format(member=self.member)
        try:
            for held in self.publisher.take_held(channel):
                await self._deliver_degraded(delivery, held, note)
            while self._fallback:
                if stream.closing and not stream.has_work():
                    await stream.wait_changed(PUBLISH_INTERVAL_S * 5)
                    continue
                delay = stream.due_in()
                if delay > 0:
                    await stream.wait_changed(min(delay, PUBLISH_INTERVAL_S * 5))
                    continue
                window = stream.close_window(delivery.max_window_events)
                if window is not None:
                    await self._deliver_degraded(delivery, window, note)
        finally:
            self._posting_directly.discard(channel)

    async def _deliver_degraded(self, delivery: ChannelDelivery, window: Window, note: str) -> None:
        for event in window.events:
            if not event.host:
                msgspec.structs.force_setattr(event, "host", self.member)
        self._fallback_posts += 1
        await delivery.deliver(msgspec.structs.replace(window, note=note))

    # --- reachability -------------------------------------------------------------------

    def _describe(self, exc: BaseException) -> str:
        return describe(exc, self._redactor.text)

    def _unreachable(self, why: str) -> None:
        self._last_error = why
        if self._reachable is False:
            return
        self._reachable = False
        self._unreachable_since = time.monotonic()
        print(
            f"astra: fleet: Redis unreachable ({why}); keeping events in memory "
            f"(at most {self.config.buffer.max_events:,}), posting directly after "
            f"{self.settings.fallback_after:g} s",
            file=sys.stderr,
        )

    def _reached(self) -> None:
        if self._reachable is False:
            log.info("fleet: Redis reachable again; %s publishes to the fleet", self.member)
            if self._fallback:
                self._emit(
                    Lifecycle(action="fleet_rejoined", detail=f"{self.member}: Redis is back")
                )
        self._reachable = True
        self._unreachable_since = None
        self._fallback = False

    # --- lease loop ---------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        retry = min(1.0, self.settings.lease / 4)
        while True:
            try:
                idle = self._fallback or self._stopping
                acquired = not idle and await self.lease.try_acquire()
            except (RedisError, OSError):
                acquired = False  # the member loop reports an unreachable Redis
            if acquired:
                await self._serve()
            await anyio.sleep(retry)

    async def _serve(self) -> None:
        """Be the poster until the lease is lost (or the sidecar stops)."""
        self._leases += 1
        token = self.lease.token
        log.info("fleet: %s is the fleet's poster (lease token %d)", self.member, token)
        assert self._make_delivery is not None
        poster = Poster(
            self._client,
            self.keys,
            self.config,
            self._redactor,
            member=self.member,
            make_delivery=self._make_delivery,
            silence=self._silence,
            fence=self._fence,
            lease_s=self.settings.lease,
        )
        for listener, kinds in self._watchers:
            poster.bus.subscribe(listener, kinds)
        # A member's own event: through Redis, on the bus of this lease and its report.
        self._emit(
            Lifecycle(action="fleet_poster", detail=f"{self.member} posts (lease token {token})")
        )
        self.poster = poster
        renew_every = self.settings.lease / 3
        try:
            async with anyio.create_task_group() as group:
                self._poster_scope = group.cancel_scope
                for task in self._lease_tasks:
                    group.start_soon(task, poster.bus.subscribe)
                group.start_soon(poster.run)
                while True:
                    await anyio.sleep(renew_every)
                    if not await self._renew(renew_every):
                        log.warning(
                            "fleet: %s lost the lease (token %d); it no longer posts",
                            self.member,
                            token,
                        )
                        group.cancel_scope.cancel()
        except Exception as exc:
            # Whatever went wrong, the fleet needs a poster: let another member take over.
            log.error("fleet: the poster stopped: %s", self._describe(_first(exc)))
            with anyio.move_on_after(3), contextlib.suppress(RedisError, OSError):
                await self.lease.release()
        finally:
            self._keep_figures(poster)
            self.poster = None
            self._poster_scope = None
            self.lease.lost()

    async def _renew(self, renew_every: float) -> bool:
        try:
            return await self.lease.renew()
        except (RedisError, OSError):
            # Keep posting only while the lease surely lives on without a renewal.
            return self.lease.valid_for() > renew_every

    async def _fence(self) -> None:
        """Right before each post: stop here, for good, unless the lease is still ours."""
        if await self.lease.holds():
            return
        log.warning("fleet: %s no longer holds the lease; it stops posting", self.member)
        self.lease.lost()
        if self._poster_scope is not None:
            self._poster_scope.cancel()
        await anyio.lowlevel.checkpoint()
        raise anyio.get_cancelled_exc_class()()

    def _keep_figures(self, poster: Poster) -> None:
        self._past = _add(self._past, poster.figures())
        for delivery in poster.deliveries:
            parts = [delivery.statistics()]
            if delivery.name in self._past_delivery:
                parts.insert(0, self._past_delivery[delivery.name])
            self._past_delivery[delivery.name] = combined_delivery(parts)

    # --- figures ------------------------------------------------------------------------

    @property
    def role(self) -> str:
        """``poster``, ``member``, or ``fallback`` (posting directly without Redis)."""
        if self.poster is not None:
            return "poster"
        return "fallback" if self._fallback else "member"

    def delivery_statistics(self) -> dict[str, list[DeliveryStatistics]]:
        """Each channel's posts for the fleet: past leases' and the current poster's."""
        parts = {name: [past] for name, past in self._past_delivery.items()}
        for delivery in self.poster.deliveries if self.poster is not None else ():
            parts.setdefault(delivery.name, []).append(delivery.statistics())
        return parts

    def statistics(self) -> FleetStatistics:
        """This member's fleet figures now."""
        past, poster = self._past, self.poster
        publisher = self.publisher
        unreachable = self._unreachable_since
        live = poster.figures() if poster is not None else PosterFigures()
        return FleetStatistics(
            member=self.member,
            role=self.role,
            holder=self.member if poster is not None else self.lease.holder,
            redis={True: "ok", False: "unreachable", None: "unknown"}[self._reachable],
            redis_error=self._last_error if self._reachable is False else "",
            unreachable_s=0.0 if unreachable is None else time.monotonic() - unreachable,
            published_events=publisher.published_events,
            published_entries=publisher.published_entries,
            publish_failures=publisher.failures,
            awaiting_redis=publisher.awaiting,
            unconfirmed=publisher.unconfirmed,
            republished=publisher.republished_events,
            unprotected=publisher.unprotected_events,
            fallback_posts=self._fallback_posts,
            leases=self._leases,
            token=self.lease.token if poster is not None else 0,
            **msgspec.structs.asdict(_add(past, live)),
            silent=self._silence.silent,
            members=self._silence.members if poster is not None else [],
        )


def _add(a: PosterFigures, b: PosterFigures) -> PosterFigures:
    return PosterFigures(
        **{name: getattr(a, name) + getattr(b, name) for name in PosterFigures.__struct_fields__}
    )


def _first(exc: BaseException) -> BaseException:
    """The first real exception inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
