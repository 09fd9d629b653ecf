"""Reading a span of the channels back for the projections (recovery at start, ``astra report``).

First the channels are listed newest first, down to the span's start, keeping only what
the bounds allow (``max_messages`` posts, ``max_bytes`` of files): when they cut the span
short, the newest part is kept and the result says from when it counts. Then the kept posts
are read oldest first, so the projections fold the events in the order they happened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import msgspec

from astra.events import AnyEvent
from astra.readback.history import ChannelHistory, Pending, Post
from astra.readback.reading import Batches
from astra.readback.when import snowflake_at, snowflake_time
from astra.sinks.discord_read import DiscordReader


class Coverage(msgspec.Struct, kw_only=True):
    """How much of the span was read: all of it, or from ``counted_from`` on."""

    start: float
    counted_from: float
    complete: bool
    posts: int = 0


class SpanReader:
    """Reads the posts of ``histories`` from ``start`` to ``end`` (listed up to ``before``)."""

    def __init__(
        self,
        reader: DiscordReader,
        histories: list[ChannelHistory],
        *,
        start: float,
        before: int,
        max_messages: int,
        max_bytes: int,
        notice: Callable[[str], None],
        skip_run: str = "",
        end: float | None = None,
    ) -> None:
        self._histories = histories
        self._start = start
        self._end = end
        self._before = before
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self.batches = Batches(reader, notice=notice, skip_run=skip_run)
        self.coverage = Coverage(start=start, counted_from=start, complete=True)

    async def events(self) -> AsyncIterator[list[AnyEvent]]:
        """The span's events in posting order, from ``start`` on, a slice at a time."""
        start, end = self._start, self._end
        for post in await self._kept_posts():
            async for piece in self.batches.slices(post):
                events = [
                    e for e in piece.events if e.time >= start and (end is None or e.time < end)
                ]
                if events:
                    yield events

    async def _kept_posts(self) -> list[Post]:
        """The newest posts the bounds allow, oldest first; notes where the cut fell.

        Messages are listed first (ids only: nothing is fetched), the newest
        ``max_messages`` of all channels kept; then astra's posts among them are resolved,
        newest first, until ``max_bytes`` of files.
        """
        # Every message listed (``None``: not astra's), so the bound counts them all.
        listed: list[tuple[int, Post | Pending | None]] = []
        cut_at = self._start
        stop_at = snowflake_at(self._start)
        for history in self._histories:
            seen = 0
            async for found in history.backward(self._before, stop_at):
                listed.append((history.last_listed, found))
                seen += 1
                if seen >= self._max_messages:
                    # Older messages of this channel may exist: the span counts from here on.
                    cut_at = max(cut_at, snowflake_time(history.last_listed))
                    break
        listed.sort(key=lambda item: item[0], reverse=True)
        if len(listed) > self._max_messages:
            cut_at = max(cut_at, snowflake_time(listed[self._max_messages][0]))
            del listed[self._max_messages :]
        kept: list[Post] = []
        size = 0
        by_name = {h.name: h for h in self._histories}
        for _, found in listed:
            if found is None:
                continue
            post = (
                await by_name[found.channel].fetch(found) if isinstance(found, Pending) else found
            )
            if post is None:
                continue
            post_size = sum(f.size for f in post.files)
            if size + post_size > self._max_bytes:
                cut_at = max(cut_at, post.posted)
                break
            kept.append(post)
            size += post_size
        kept = [p for p in kept if p.posted >= cut_at]
        self.coverage = Coverage(
            start=self._start,
            counted_from=cut_at,
            complete=cut_at <= self._start,
            posts=len(kept),
        )
        kept.reverse()
        return kept
