"""The live status board: one message in #diagnostics, edited in place.

The board folds the bus (the latest ``health`` event, the alerts firing now) and, at every
health run or alert change, renders the sidecar's state into one embed and edits its
message (PATCH on the webhook's message). It posts the message once; if someone deletes
it, the edit answers Unknown Message and a new one is posted. Health history still goes
out with every window, in the attachments.

In a fleet, only the poster keeps the board and it folds the fleet's events (every
member's, stamped with its name): the latest check of each member, the alerts firing on
any of them (the same rule on two members is two alerts), and the members the poster sees
in Redis (``FleetStatistics.members``; a member that left cleanly is no longer there).

Nothing is stored locally: after a restart the board is found again in the channel's
history (bot token), among the webhook's messages that were edited (no other astra post
ever is). Without the Message Content intent the listing shows those messages' embeds
empty, so each candidate is fetched through the webhook and recognised by its footer.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from astra.config import WebhookRef
from astra.errors import DiscordApiError
from astra.events import Alert, Event, Health
from astra.sinks.delivery import ChannelDelivery
from astra.sinks.discord_http import (
    Delivered,
    DiscordHttp,
    MessageGone,
    Outcome,
)
from astra.sinks.discord_read import PAGE_LIMIT, DiscordReader
from astra.sinks.messages import OutgoingMessage, fit_embed
from astra.sinks.notify import SUPPRESS_NOTIFICATIONS
from astra.sinks.render.board import (
    BOARD_MARKER,
    BoardState,
    ChannelRow,
    MemberRow,
    render_board,
)
from astra.statistics import FleetStatistics, SidecarStatistics, StatusBoardStatistics

log = logging.getLogger("astra.board")

# At most one board edit this often: a burst of alert changes becomes one edit.
MIN_INTERVAL_S = 10.0
# History pages (100 messages each) searched for the board after a restart.
SEARCH_PAGES = 20
# Members whose latest health check the board remembers (the oldest checked are forgotten).
MAX_MEMBERS = 1000


def is_board(message: dict[str, Any]) -> bool:
    """Whether a message object (as Discord returns it) is astra's status board."""
    embeds = message.get("embeds")
    for embed in embeds if isinstance(embeds, list) else []:
        footer = embed.get("footer") if isinstance(embed, dict) else None
        if isinstance(footer, dict) and footer.get("text") == BOARD_MARKER:
            return True
    return False


async def find_board(
    reader: DiscordReader, channel_id: int, webhook: WebhookRef, pages: int = SEARCH_PAGES
) -> str:
    """The id of the board ``webhook`` posted in ``channel_id``'s recent history, or "".

    Raises ``DiscordApiError`` when the history cannot be read.
    """
    before: int | None = None
    for _ in range(pages):
        page = await reader.messages(channel_id, before=before)
        for message in page:
            if str(message.get("webhook_id")) != str(webhook.id):
                continue
            if is_board(message):
                return str(message["id"])
            if message.get("edited_timestamp") and not message.get("embeds"):
                full = await reader.webhook_message(webhook, int(message["id"]))
                if full is not None and is_board(full):
                    return str(message["id"])
        if len(page) < PAGE_LIMIT:
            return ""
        before = int(page[-1]["id"])
    return ""


class BoardFold:
    """What the board folds from the events it observes: the latest health check (each
    member's, in a fleet) and the alerts firing now."""

    def __init__(self) -> None:
        self.latest: Health | None = None
        # Fleet mode: each member's latest check by member name (``host``), the least
        # recently checked first.
        self._checks: dict[str, Health] = {}
        # Keyed by member too: the same rule and subject on two members are two alerts.
        self._firing: dict[tuple[str, str, str], Alert] = {}

    def observe(self, events: Sequence[Event]) -> None:
        """Fold ``health`` and ``alert`` events (others are ignored)."""
        for event in events:
            if isinstance(event, Health):
                self.latest = event
                self._note_check(event)
            elif isinstance(event, Alert) and event.state == "firing":
                self._firing[(event.host, event.rule, event.subject)] = event
            elif isinstance(event, Alert):
                self._firing.pop((event.host, event.rule, event.subject), None)

    def own_alerts_only(self) -> BoardFold:
        """A fold holding only the alerts from no member (the poster's ``member_silent``)."""
        fold = BoardFold()
        fold._firing = {key: a for key, a in self._firing.items() if not a.host}
        return fold

    def alerts(self, fleet: FleetStatistics | None) -> list[Alert]:
        """The alerts firing now; in a fleet, only those of members still in it and the
        poster's own, which come from no member (``member_silent``)."""
        members = set(fleet.members) if fleet is not None else set()
        firing = self._firing.values()
        return [a for a in firing if not members or not a.host or a.host in members]

    def members(self, fleet: FleetStatistics | None) -> list[MemberRow]:
        """Fleet mode: every member the poster sees in Redis (before it first looked,
        every member that sent a check), with its latest check; none on a single sidecar."""
        if fleet is None:
            return []
        silent = set(fleet.silent)
        names = fleet.members or sorted(self._checks)
        return [
            MemberRow(name=name, health=self._checks.get(name), silent=name in silent)
            for name in names
        ]

    def _note_check(self, check: Health) -> None:
        if not check.host:
            return
        known = self._checks.pop(check.host, None)
        self._checks[check.host] = check if known is None or check.time >= known.time else known
        if len(self._checks) > MAX_MEMBERS:
            del self._checks[next(iter(self._checks))]


class StatusBoard:
    """Keeps one message in the diagnostics channel current."""

    def __init__(
        self,
        delivery: ChannelDelivery,
        http: DiscordHttp,
        snapshot: Callable[[], SidecarStatistics],
        *,
        reader: DiscordReader | None = None,
        hosts: Sequence[str] = (),
        min_interval_s: float = MIN_INTERVAL_S,
        keeps_board: Callable[[], bool] = lambda: True,
    ) -> None:
        """``keeps_board``: whether this sidecar edits the board now (in a fleet, only the
        member that posts does, so one message is edited by one writer)."""
        self._keeps_board = keeps_board
        self._delivery = delivery
        self._http = http
        self._snapshot = snapshot
        self.hosts = list(hosts) or [socket.gethostname()]
        self._min_interval_s = min_interval_s
        self.fold = BoardFold()
        self._changed = anyio.Event()
        self._message_id = ""
        self._posts = 0
        self._edits = 0
        self._recreated = 0
        self._failures = 0
        self._failing = False
        self._reader = reader
        self._searched = False
        self._found = 0

    def statistics(self) -> StatusBoardStatistics:
        """The board's posts and edits so far."""
        return StatusBoardStatistics(
            enabled=True,
            message_id=self._message_id,
            posts=self._posts,
            edits=self._edits,
            recreated=self._recreated,
            failures=self._failures,
            found=self._found,
        )

    @property
    def posted(self) -> bool:
        """Whether the board's message exists (posted, or found again)."""
        return bool(self._message_id)

    def observe(self, events: Sequence[Event]) -> None:
        """Bus listener (``health`` and ``alert`` events): fold them, and wake the board."""
        self.fold.observe(events)
        self._changed.set()

    def forget(self) -> None:
        """Start again from the next events (a new lease: what this member folded as a
        former poster is not the fleet's state now), keeping only the poster's own alerts,
        which its silence watcher still tracks and will resolve."""
        self.fold = self.fold.own_alerts_only()

    def state(self, *, stopped: bool = False) -> BoardState:
        """What the board shows now."""
        snapshot = self._snapshot()
        return BoardState(
            updated=snapshot.at,
            uptime_s=snapshot.uptime_s,
            version=snapshot.version,
            hosts=self.hosts,
            channels=[
                ChannelRow(
                    name=name,
                    mode=figures.delivery.mode,
                    last_post=figures.delivery.last_post,
                    pending=figures.stream.pending,
                    problem=figures.delivery.problem,
                )
                for name, figures in snapshot.channels.items()
            ],
            alerts=self.fold.alerts(snapshot.fleet),
            health=self.fold.latest,
            stopped=stopped,
            members=self.fold.members(snapshot.fleet),
        )

    async def run(self) -> None:
        """Refresh the board after every change, at most every ``min_interval_s``; forever."""
        while True:
            await self._changed.wait()
            self._changed = anyio.Event()
            await self.refresh_safely()
            await anyio.sleep(self._min_interval_s)

    async def refresh_safely(self, *, stopped: bool = False) -> None:
        """``refresh``, with any failure logged and counted: the board never stops astra."""
        try:
            await self.refresh(stopped=stopped)
        except Exception as exc:
            self._failures += 1
            log.error("status board: update failed: %s: %s", type(exc).__name__, str(exc)[:200])

    async def refresh(self, *, stopped: bool = False) -> None:
        """Render the board and edit its message (post it first if there is none)."""
        if not self._keeps_board():
            self._searched = False  # when this member posts again, the board may have moved
            return
        webhook = await self._delivery.board_webhook()
        if webhook is None:
            return
        embed = fit_embed(render_board(self.state(stopped=stopped)))
        if embed is None:
            return
        message = OutgoingMessage(embeds=[embed], flags=SUPPRESS_NOTIFICATIONS)
        thread_id = self._delivery.channel.thread_id
        if not self._searched:
            self._searched = True
            self._message_id = await self._find(webhook)
        if self._message_id:
            outcome = await self._http.edit_message(
                webhook, self._message_id, message, self._delivery.name, thread_id=thread_id
            )
            if isinstance(outcome, MessageGone):
                log.warning("status board: its message was deleted; posting a new one")
                self._message_id = ""
                self._recreated += 1
            elif self._settled(outcome):
                self._edits += 1
                return
            else:
                return
        outcome = await self._http.execute(
            webhook, message, self._delivery.name, thread_id=thread_id
        )
        if self._settled(outcome) and isinstance(outcome, Delivered):
            self._message_id = outcome.message_id
            self._posts += 1
            log.info("status board: posted (message %s)", outcome.message_id)
            # Edited at once: the edit mark is how the board is found after a restart.
            again = await self._http.edit_message(
                webhook, self._message_id, message, self._delivery.name, thread_id=thread_id
            )
            if isinstance(again, MessageGone):
                # Deleted between the post and this edit: the next refresh posts a new one
                # rather than editing a message Discord already said is gone.
                log.warning("status board: its message was deleted; posting a new one")
                self._message_id = ""
                self._recreated += 1
            else:
                self._edits += self._settled(again)

    async def _find(self, webhook: WebhookRef) -> str:
        """The board posted by an earlier run, found in the channel's history; or ""."""
        channel_id = self._delivery.channel.channel_id
        if self._reader is None or channel_id is None or self._delivery.channel.thread_id:
            return ""
        try:
            found = await find_board(self._reader, channel_id, webhook)
        except DiscordApiError as exc:
            log.warning("status board: cannot look for the earlier board (%s); posting one", exc)
            return ""
        if found:
            self._found += 1
            log.info("status board: found the earlier board (message %s)", found)
        return found

    def _settled(self, outcome: Outcome) -> bool:
        """Whether Discord took the post or edit; a failure is logged once per burst."""
        if isinstance(outcome, Delivered):
            if self._failing:
                log.info("status board: updating again")
            self._failing = False
            return True
        self._failures += 1
        if not self._failing:
            log.warning("status board: not updated (%s); trying at the next change", outcome.reason)
        self._failing = True
        return False
