"""Delivery: one worker per channel turns due windows into posts, in order, without loss.

The worker closes a window when it is due, renders it, and sends its messages one by one.
Transient failures (429, 5xx, resets, timeouts) retry the same message with backoff until
it is stored; meanwhile new events collect in the channel's stream, so the next window
merges the backlog into as few posts as the limits allow. A payload Discord refuses is
never resent as is: it is split or simplified, and reported when nothing works.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable

import anyio

from astra.config import Channel, WebhookRef
from astra.errors import DiscordApiError
from astra.events import Event, Lifecycle
from astra.quantiles import LogHistogram
from astra.sinks.attachments import build_attachments
from astra.sinks.discord_http import (
    Delivered,
    DiscordHttp,
    MessageGone,
    Outcome,
    Rejected,
    RetryLater,
    WebhookGone,
)
from astra.sinks.messages import MAX_FILE_BYTES, Embed, Field, OutgoingMessage, pack_messages
from astra.sinks.notify import Mentions, apply_notice, inherit, window_notice
from astra.sinks.preview import Preview
from astra.sinks.render import render_window
from astra.sinks.render.charts import chart_attachments
from astra.sinks.render.names import NameBook
from astra.sinks.threads import Misplaced, ThreadTarget
from astra.statistics import DeliveryStatistics
from astra.streams.windows import ChannelStream, Window

log = logging.getLogger("astra.delivery")

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
# Events per window: bounds the work (and memory) of one render.
MAX_EVENTS_PER_WINDOW = 100_000


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter (between half and all of the step)."""
    # Cap the exponent, not only the result: 2**1024 overflows a float after hours of outage.
    step = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(attempt, 16))
    return float(step * random.uniform(0.5, 1.0))


class ChannelDelivery:
    """Delivers one channel's windows to its webhook, or previews them in the terminal."""

    def __init__(
        self,
        channel: Channel,
        stream: ChannelStream,
        *,
        http: DiscordHttp | None,
        preview: Preview,
        emit: Callable[[Event], object],
        add_secret: Callable[[str], None],
        webhook_name: str = "astra",
        max_window_events: int = MAX_EVENTS_PER_WINDOW,
        wall_clock: Callable[[], float] = time.time,
        names: NameBook | None = None,
        on_done: Callable[[list[Event]], None] | None = None,
        fence: Callable[[], Awaitable[None]] | None = None,
        mentions: Mentions | None = None,
        timezone: str = "UTC",
    ) -> None:
        self.channel = channel
        self._names = names
        self.stream = stream
        self._http = http
        self._preview = preview
        self._emit = emit
        self._add_secret = add_secret
        self._webhook_name = webhook_name
        self._wall_clock = wall_clock
        self._webhook: WebhookRef | None = channel.webhook
        self._previewing = channel.mode == "preview" or http is None
        self.inflight = 0
        self.max_window_events = min(max_window_events, MAX_EVENTS_PER_WINDOW)
        self.max_file_bytes = MAX_FILE_BYTES
        self._idle_changed = anyio.Event()
        self._posts = 0
        self._posted_events = 0
        self._failed_posts = 0
        self._retries = 0
        self._rate_limited = 0
        self._undeliverable = 0
        self._last_post: float | None = None
        self._latency_ms = LogHistogram()
        # Fleet mode: told which events are posted (or given up), so their stream entries
        # can be acknowledged; and awaited right before every post, to stop a former poster.
        self._on_done = on_done
        self._fence = fence
        self._mentions = mentions or Mentions()
        self._threads = ThreadTarget(channel, http, timezone=timezone, wall_clock=wall_clock)
        # What a person must fix in the configuration, shown on the status board.
        self.problem = ""
        # The status board asks for the webhook too: provision one webhook, not two.
        self._webhook_lock = anyio.Lock()
        if channel.forum and not self._previewing and not self._threads.can_find:
            log.info(
                "channels.%s: without [discord] token and the channel's id, astra cannot find "
                "today's forum thread after a restart: a restart starts a new one",
                channel.name,
            )
        # The channel's number for the next event delivered (attachment names carry them).
        self._next_number = 1

    @property
    def name(self) -> str:
        """The channel's name."""
        return self.channel.name

    def statistics(self) -> DeliveryStatistics:
        """This channel's delivery figures now."""
        return DeliveryStatistics(
            mode="preview" if self._previewing else "discord",
            posts=self._posts,
            posted_events=self._posted_events,
            failed_posts=self._failed_posts,
            retries=self._retries,
            rate_limited=self._rate_limited,
            undeliverable=self._undeliverable,
            inflight=self.inflight,
            last_post=self._last_post,
            latency_ms=self._latency_ms.sketch(),
            problem=self.problem,
        )

    async def run(self) -> None:
        """Close and deliver windows, forever; the owner cancels it once everything is out.

        It never returns on its own: during shutdown another channel may still emit into
        this one (a webhook provisioned, a lifecycle step), and that must go out too.
        """
        while True:
            if self.stream.closing and not self.stream.has_work():
                self._idle_changed.set()
                delay = math.inf
            else:
                delay = self.stream.due_in()
            if delay > 0:
                await self.stream.wait_changed(delay)
                continue
            window = self.stream.close_window(self.max_window_events)
            if window is not None:
                await self.deliver(window)

    async def wait_drained(self) -> None:
        """Return once nothing is pending or being sent (after the stream began closing)."""
        while not self.idle():
            self._idle_changed = anyio.Event()
            await self._idle_changed.wait()

    @property
    def previewing(self) -> bool:
        """True when this channel's posts go to the terminal instead of Discord."""
        return self._previewing

    def idle(self) -> bool:
        """Nothing pending and nothing being sent."""
        return not self.stream.has_work() and self.inflight == 0

    async def deliver(self, window: Window) -> None:
        """Render one window and send all of its messages, in order; never raises."""
        self.inflight = len(window.events)
        try:
            await self._deliver(window)
        except Exception as exc:  # one bad window must not stop the channel
            self._undeliverable += self.inflight
            log.error(
                "channels.%s: could not deliver %d events: %s: %s",
                self.name,
                self.inflight,
                type(exc).__name__,
                str(exc)[:200],
            )
        finally:
            # Whatever is not posted by now was given up and counted: free its memory.
            self.stream.release(self.inflight)
            self.inflight = 0
            self._idle_changed.set()

    async def _deliver(self, window: Window) -> None:
        embeds = await anyio.to_thread.run_sync(render_window, window, self._names)
        first, self._next_number = self._next_number, self._next_number + len(window.events)
        files = await anyio.to_thread.run_sync(
            functools.partial(
                build_attachments, window.channel, window.events, self.max_file_bytes, first=first
            )
        )
        charts = await anyio.to_thread.run_sync(chart_attachments, window.events)
        notice = window_notice(window.events, notify=self.channel.notify, mentions=self._mentions)
        queue = deque(apply_notice(pack_messages(embeds, charts + files), notice))
        while queue:
            message = queue.popleft()
            outcome = await self._send(message)
            if isinstance(outcome, Rejected):
                replacement = await self._repair(message, outcome, window.dropped_before)
                if replacement is None:
                    self._give_up(message, outcome.reason)
                else:
                    queue.extendleft(reversed(inherit(replacement, message)))
                continue
            posted = [e for f in message.files for e in f.events]
            self.inflight -= len(posted)
            self.stream.release(len(posted))
            self._delivered(posted)

    def _delivered(self, events: list[Event]) -> None:
        """Record a stored post: each event's latency from its ``ts``, the last post time."""
        now = self._wall_clock()
        # Client clocks can run ahead; a negative latency is a zero.
        self._latency_ms.add_many([max(0.0, now - event.time) * 1000 for event in events])
        self._posted_events += len(events)
        self._last_post = now
        if self._on_done is not None:
            self._on_done(events)

    async def _send(self, message: OutgoingMessage) -> Delivered | Rejected | None:
        """Send until stored; ``None`` when shown in the terminal instead."""
        attempt = 0
        while True:
            if self._previewing:
                self._preview.show(self.name, message)
                return None
            webhook = await self._ensure_webhook()
            if webhook is None:
                continue
            if self._fence is not None:
                await self._fence()
            outcome = await self._post(webhook, message)
            if isinstance(outcome, Delivered):
                self._posts += 1
                return outcome
            if isinstance(outcome, Rejected):
                misplaced = self._threads.misplaced(outcome)
                if misplaced is None:
                    return outcome
                self._misplaced(misplaced)
                continue
            if isinstance(outcome, WebhookGone | MessageGone):
                # An execute never answers MessageGone (only edits do).
                self._webhook_gone(WebhookGone(404, outcome.reason))
                continue
            self._retrying(outcome, attempt)
            await anyio.sleep(outcome.after if outcome.rate_limited else backoff(attempt))
            attempt += 1

    async def _post(self, webhook: WebhookRef, message: OutgoingMessage) -> Outcome:
        """Execute into the channel, its configured thread, or today's forum thread."""
        assert self._http is not None
        where = await self._threads.destination()
        outcome = await self._http.execute(
            webhook,
            message,
            self.name,
            thread_id=where.thread_id,
            thread_name=where.thread_name,
        )
        self._threads.settle(where, outcome)
        return outcome

    def _misplaced(self, misplaced: Misplaced) -> None:
        """A post went to the wrong place: note what to fix, and preview if nothing else works."""
        if misplaced.problem and misplaced.problem != self.problem:
            self.problem = misplaced.problem
            self._emit(
                Lifecycle(action="channel_misconfigured", channel=self.name, detail=self.problem)
            )
        if misplaced.preview:
            self._previewing = True

    def _retrying(self, outcome: RetryLater, attempt: int) -> None:
        self._retries += 1
        if outcome.rate_limited:
            self._rate_limited += 1
            log.info(
                "channels.%s: %s, retrying in %.1f s", self.name, outcome.reason, outcome.after
            )
        elif attempt in (0, 3) or attempt % 10 == 0:
            # Say it early and then now and again, not once per retry of a long outage.
            log.warning("channels.%s: delivery failed (%s), retrying", self.name, outcome.reason)

    def _webhook_gone(self, outcome: WebhookGone) -> None:
        webhook_id = self._webhook.id if self._webhook else 0
        self._webhook = None
        if self.channel.can_provision:
            log.warning(
                "channels.%s: webhook %s is gone (%s); provisioning a new one",
                self.name,
                webhook_id,
                outcome.reason,
            )
            self._emit(Lifecycle(action="webhook_lost", channel=self.name, detail=outcome.reason))
            return
        log.error(
            "channels.%s: webhook %s is gone (%s) and there is no bot token to create another; "
            "previewing this channel in the terminal from now on",
            self.name,
            webhook_id,
            outcome.reason,
        )
        self._emit(Lifecycle(action="webhook_lost", channel=self.name, detail=outcome.reason))
        self._previewing = True

    async def board_webhook(self) -> WebhookRef | None:
        """The webhook the status board posts with (provisioned if need be); None in preview."""
        if self._previewing or self._http is None or self.channel.forum:
            return None
        return await self._ensure_webhook()

    async def _ensure_webhook(self) -> WebhookRef | None:
        async with self._webhook_lock:
            return await self._ensure_webhook_locked()

    async def _ensure_webhook_locked(self) -> WebhookRef | None:
        if self._webhook is not None:
            return self._webhook
        assert self._http is not None and self.channel.channel_id is not None
        attempt = 0
        while True:
            try:
                webhook, created = await self._http.find_or_create_webhook(
                    self.channel.channel_id, self._webhook_name
                )
            except DiscordApiError as exc:
                log.error("channels.%s: cannot get a webhook: %s", self.name, exc)
                await anyio.sleep(backoff(attempt + 3))
                attempt += 1
                continue
            self._add_secret(webhook.token)
            self._webhook = webhook
            action = "webhook_created" if created else "webhook_reused"
            log.info("channels.%s: %s (id %s)", self.name, action.replace("_", " "), webhook.id)
            self._emit(Lifecycle(action=action, channel=self.name, detail=f"webhook {webhook.id}"))
            return webhook

    async def _repair(
        self, message: OutgoingMessage, outcome: Rejected, dropped: int
    ) -> list[OutgoingMessage] | None:
        """A smaller or simpler message for what Discord refused, or None when out of ideas."""
        log.warning("channels.%s: Discord refused a post: %s", self.name, outcome.reason)
        self._failed_posts += 1
        too_large = outcome.status == 413 or outcome.code == 40005
        if too_large and len(message.files) > 1:
            # Charts stay with the embeds that show them; every other file goes on its own.
            shown = {e.attachment() for e in message.embeds}
            images = [f for f in message.files if f.filename in shown]
            return [OutgoingMessage(embeds=message.embeds, files=images)] * bool(message.embeds) + [
                OutgoingMessage(files=[f]) for f in message.files if f not in images
            ]
        if too_large and message.files:
            refused = message.files[0]
            events = refused.events
            self.max_file_bytes = max(256 * 1024, self.max_file_bytes // 2)
            if len(events) < 2:
                return None
            middle = len(events) // 2
            files = []
            for first, half in (
                (refused.first, events[:middle]),
                (refused.first + middle, events[middle:]),
            ):
                files += await anyio.to_thread.run_sync(
                    functools.partial(
                        build_attachments, self.name, half, self.max_file_bytes, first=first
                    )
                )
            return pack_messages(list(message.embeds), files)
        if message.embeds and not (
            len(message.embeds) == 1 and message.embeds[0].title == "⚠️ summary unavailable"
        ):
            fallback = Embed(
                title="⚠️ summary unavailable",
                description="Discord refused this window's summary; "
                "every event is in the attachment.",
                fields=[Field("Reason", outcome.reason[:1000])]
                + [Field("Dropped", f"⚠️ {dropped:,} events dropped before this window")]
                * bool(dropped),
            )
            return [OutgoingMessage(embeds=[fallback], files=message.files)]
        if message.embeds and message.files:
            return [OutgoingMessage(files=message.files)]
        return None

    def _give_up(self, message: OutgoingMessage, reason: str) -> None:
        lost = sum(len(f.events) for f in message.files)
        if self._on_done is not None:
            self._on_done([e for f in message.files for e in f.events])
        self._undeliverable += lost
        self.inflight -= lost
        self.stream.release(lost)
        log.error(
            "channels.%s: could not post %d events, Discord refused every form of the message: %s",
            self.name,
            lost,
            reason,
        )
