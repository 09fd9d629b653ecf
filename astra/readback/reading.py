"""From astra's posts to events: download, decode, drop what was stored twice, find gaps.

A post stored twice (a retry after a lost confirmation) carries the same run and range of
event numbers as the first: the range is skipped whole, and any event id seen among the
last ``RECENT_IDS`` is skipped too. A range that starts past where its run left off is a
missing message (deleted, or a post given up); it is reported as the missing range.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

import anyio
import msgspec

from astra.events import AnyEvent
from astra.readback.batches import CorruptBatch, Slice, read_slices
from astra.readback.history import Post, StoredFile
from astra.sinks.discord_read import DiscordReader
from astra.units import fmt_int

# Event ids remembered to drop duplicates that ranges alone cannot tell (bounded memory).
RECENT_IDS = 50_000
# Files smaller than this are decoded on the event loop; larger ones in a worker thread.
INLINE_BYTES = 64 * 1024


class ReadTotals(msgspec.Struct, kw_only=True):
    """What a read-back went through, for its closing line and the report."""

    posts: int = 0
    files: int = 0
    bytes: int = 0
    events: int = 0
    duplicates: int = 0  # events skipped as stored twice
    corrupt_files: int = 0
    invalid_lines: int = 0
    missing_files: int = 0  # files the CDN no longer had
    gaps: int = 0  # missing ranges of event numbers


class Batches:
    """Turns posts into de-duplicated slices of events; reports damage through ``notice``."""

    def __init__(
        self,
        reader: DiscordReader,
        *,
        notice: Callable[[str], None],
        skip_run: str = "",
    ) -> None:
        self._reader = reader
        self._notice = notice
        self._skip_run = skip_run
        # (channel, run) -> the next event number expected, and the ranges seen.
        self._next: dict[tuple[str, str], int] = {}
        self._seen: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self.totals = ReadTotals()

    async def slices(self, post: Post) -> AsyncIterator[Slice]:
        """The events of one post's files, in order, each event once."""
        self.totals.posts += 1
        for stored in post.files:
            if stored.name.run == self._skip_run or self._read_before(post, stored):
                continue
            data = await self._reader.download(stored.url)
            if data is None:
                self.totals.missing_files += 1
                self._notice(f"#{post.channel}: {stored.filename} is gone from the CDN; skipped")
                continue
            self.totals.files += 1
            self.totals.bytes += len(data)
            corrupt = self.totals.corrupt_files
            self._check_gap(post, stored)
            async for piece in self._decoded(post, stored, data):
                yield piece
            if self.totals.corrupt_files == corrupt:
                # Only a file read whole covers its range: an intact copy of a damaged one
                # is still read.
                self._mark_read(post, stored)

    def _read_before(self, post: Post, stored: StoredFile) -> bool:
        """Whether the file's range was read whole already (a post stored twice)."""
        name = stored.name
        if not name.run:
            return False  # an older name: its numbers restart every run, ids tell copies apart
        seen = self._seen.get((post.channel, name.run), [])
        if any(first <= name.first and name.last <= last for first, last in seen):
            self.totals.duplicates += name.last - name.first + 1
            return True
        return False

    def _check_gap(self, post: Post, stored: StoredFile) -> None:
        """Report the range missing before this file, if its run skipped some numbers."""
        name = stored.name
        if not name.run:
            return
        key = (post.channel, name.run)
        expected = self._next.get(key)
        if expected is not None and name.first > expected:
            self.totals.gaps += 1
            self._notice(
                f"#{post.channel}: run {name.run}: events {fmt_int(expected)}–"
                f"{fmt_int(name.first - 1)} are missing (a deleted message, or a post given up)"
            )
        self._next[key] = max(expected or 0, name.last + 1)

    def _mark_read(self, post: Post, stored: StoredFile) -> None:
        """Remember the file's range as read."""
        if not stored.name.run:
            return
        seen = self._seen.setdefault((post.channel, stored.name.run), [])
        seen.append((stored.name.first, stored.name.last))
        if len(seen) > 64:
            # Duplicates come right after the original: old ranges need not be kept.
            del seen[:32]

    async def _decoded(self, post: Post, stored: StoredFile, data: bytes) -> AsyncIterator[Slice]:
        """Slices of one file, de-duplicated by id; damage reported, never raised."""
        pieces = read_slices(data)
        while True:
            try:
                if len(data) <= INLINE_BYTES:
                    piece = next(pieces, None)
                else:
                    piece = await anyio.to_thread.run_sync(next, pieces, None)
            except CorruptBatch as exc:
                self.totals.corrupt_files += 1
                self._notice(f"#{post.channel}: {stored.filename} is corrupt ({exc}); skipped")
                return
            if piece is None:
                return
            if piece.invalid:
                self.totals.invalid_lines += piece.invalid
                self._notice(
                    f"#{post.channel}: {stored.filename}: {piece.invalid} lines are not valid "
                    "events; skipped"
                )
            fresh = self._fresh(piece)
            self.totals.events += len(fresh.events)
            if fresh.events:
                yield fresh

    def _fresh(self, piece: Slice) -> Slice:
        """The slice without events whose id was read recently."""
        recent = self._recent
        lines: list[bytes] = []
        events: list[AnyEvent] = []
        for line, event in zip(piece.lines, piece.events, strict=True):
            if event.id in recent:
                self.totals.duplicates += 1
                continue
            recent[event.id] = None
            lines.append(line)
            events.append(event)
        while len(recent) > RECENT_IDS:
            recent.popitem(last=False)
        return Slice(lines, events)
