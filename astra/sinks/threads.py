"""Where a channel's posts go: the channel itself, a configured thread, or the day's forum thread.

A forum channel (``forum = true``) gets one thread a day, named from ``thread_name``. The
first post of the day creates it (``thread_name`` on the execute; Discord answers with the
thread's id as the message's ``channel_id``); later posts go into it with ``thread_id``.
After a restart, the day's thread is found again through the API (active threads of the
guild, then the forum's archived public threads) when astra has the bot token and the
channel's id; without them a restart starts a second thread for the day.
"""

from __future__ import annotations

import logging
import time
import zoneinfo
from collections.abc import Callable
from datetime import datetime

import msgspec

from astra.config import Channel, thread_title
from astra.errors import DiscordApiError
from astra.sinks.discord_http import UNKNOWN_CHANNEL, Delivered, DiscordHttp, Outcome, Rejected

log = logging.getLogger("astra.delivery")

# Discord's codes for a webhook in a forum channel without a thread, and for a thread
# name sent to a channel that is no forum.
FORUM_NEEDS_THREAD = 220001
NOT_A_FORUM = 220003
FORUM_PROBLEM = "forum channel: set forum = true"


class Destination(msgspec.Struct, frozen=True, kw_only=True):
    """One post's target: a thread id, a forum thread to create, or neither (the channel)."""

    thread_id: int | None = None
    thread_name: str = ""


class Misplaced(msgspec.Struct, frozen=True, kw_only=True):
    """Discord refused a post for where it went: what to fix, and whether to preview."""

    problem: str = ""  # for the status board ("" when nothing needs fixing)
    preview: bool = False  # show the channel in the terminal from now on


class ThreadTarget:
    """Decides each post's destination for one channel and learns the threads it creates."""

    def __init__(
        self,
        channel: Channel,
        http: DiscordHttp | None,
        *,
        timezone: str = "UTC",
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._channel = channel
        self._http = http
        self._forum = channel.forum
        self._fixed = channel.thread_id
        self._tz = zoneinfo.ZoneInfo(timezone)
        self._clock = wall_clock
        self._known: dict[str, int] = {}
        self._looked_up: set[str] = set()
        self._guild_id: int | None = None
        self.created = 0

    @property
    def can_find(self) -> bool:
        """Whether the day's forum thread can be found again after a restart."""
        return (
            self._http is not None
            and self._http.has_bot_token
            and self._channel.channel_id is not None
        )

    def today(self) -> str:
        """The name of today's forum thread (the date in the report's time zone)."""
        day = datetime.fromtimestamp(self._clock(), self._tz).date().isoformat()
        return thread_title(self._channel.thread_name, day, self._channel.name)

    async def destination(self) -> Destination:
        """Where the next post goes."""
        if self._fixed is not None:
            return Destination(thread_id=self._fixed)
        if not self._forum:
            return Destination()
        name = self.today()
        if name not in self._known and name not in self._looked_up:
            self._looked_up.add(name)
            found = await self._find(name)
            if found is not None:
                self._known[name] = found
                log.info("channels.%s: posting into today's thread %r", self._channel.name, name)
        if name in self._known:
            return Destination(thread_id=self._known[name])
        return Destination(thread_name=name)

    def settle(self, where: Destination, outcome: Outcome) -> None:
        """Learn a created thread's id; forget a thread Discord no longer knows."""
        if isinstance(outcome, Delivered) and where.thread_name and outcome.channel_id.isdigit():
            self._known[where.thread_name] = int(outcome.channel_id)
            self.created += 1
            log.info("channels.%s: started thread %r", self._channel.name, where.thread_name)
        elif (
            isinstance(outcome, Rejected)
            and outcome.code == UNKNOWN_CHANNEL
            and where.thread_id is not None
        ):
            self._known = {k: v for k, v in self._known.items() if v != where.thread_id}

    def post_in_channel(self) -> None:
        """Stop using threads: post into the channel itself."""
        self._forum = False
        self._fixed = None

    def misplaced(self, refused: Rejected) -> Misplaced | None:
        """What a refusal about the post's destination means (None: it is about the payload).

        The post is worth sending again in every case: into a new forum thread, into the
        channel itself, or to the terminal.
        """
        name = self._channel.name
        if refused.code == FORUM_NEEDS_THREAD:
            log.error(
                "channels.%s: the webhook is in a forum channel, which needs a thread for every "
                "post: %s under [channels.%s] (this channel is shown in the terminal until then)",
                name,
                FORUM_PROBLEM.partition(": ")[2],
                name,
            )
            return Misplaced(problem=FORUM_PROBLEM, preview=True)
        if refused.code == NOT_A_FORUM:
            problem = "not a forum channel: remove forum = true"
        elif refused.code == UNKNOWN_CHANNEL and refused.status == 404:
            if self._forum:
                log.warning("channels.%s: today's thread is gone; starting a new one", name)
                return Misplaced()
            problem = f"thread {self._channel.thread_id} not found: check thread_id"
        else:
            return None
        log.error("channels.%s: %s; posting into the channel itself", name, problem)
        self.post_in_channel()
        return Misplaced(problem=problem)

    async def _find(self, name: str) -> int | None:
        http, channel_id = self._http, self._channel.channel_id
        if http is None or not self.can_find or channel_id is None:
            return None
        try:
            if self._guild_id is None:
                self._guild_id = int(str((await http.channel_info(channel_id))["guild_id"]))
            return await http.find_thread(self._guild_id, channel_id, name)
        except (DiscordApiError, KeyError, ValueError) as exc:
            log.warning(
                "channels.%s: cannot look for today's thread (%s); starting a new one",
                self._channel.name,
                exc,
            )
            return None
