"""``astra export``: a channel's events as NDJSON, oldest first, each event once.

Each channel is read forward from ``since`` a page at a time; ``--channel all`` merges the
channels by event time as it goes, holding one slice per channel. Lines go out exactly as
they were posted (the attachment's JSON, which is the event as ingested, stamped).
"""

from __future__ import annotations

import heapq
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO, TextIO

import msgspec

from astra.events import AnyEvent
from astra.readback.batches import Slice
from astra.readback.history import ChannelHistory
from astra.readback.reading import Batches, ReadTotals
from astra.readback.when import snowflake_at
from astra.units import fmt_bytes, fmt_int

# Events reach Discord some time after they happen (a window, retries, an outage): posts up
# to this long after ``until`` are still read for events before it.
UNTIL_GRACE_S = 3600.0
PROGRESS_EVERY_S = 0.5


class Selection(msgspec.Struct, frozen=True, kw_only=True):
    """Which events to export: a time range, kinds and sources (empty: all)."""

    since: float | None = None
    until: float | None = None
    kinds: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()

    def wanted(self, event: AnyEvent) -> bool:
        """Whether ``event`` is in the selection."""
        ts = event.time
        if self.since is not None and ts < self.since:
            return False
        if self.until is not None and ts >= self.until:
            return False
        if self.kinds and str(event.__struct_config__.tag) not in self.kinds:
            return False
        return not self.sources or event.source in self.sources


class Progress:
    """A status line on a terminal's stderr: messages, events, bytes and the rate."""

    def __init__(self, stream: TextIO | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._shown = 0.0

    def update(self, messages: int, totals: ReadTotals, *, final: bool = False) -> None:
        """Redraw the line, at most every ``PROGRESS_EVERY_S`` unless ``final``."""
        if self._stream is None:
            return
        now = self._clock()
        if not final and now - self._shown < PROGRESS_EVERY_S:
            return
        self._shown = now
        rate = totals.events / max(now - self._started, 1e-6)
        self._stream.write(
            f"\r{fmt_int(messages)} messages · {fmt_int(totals.events)} events · "
            f"{fmt_bytes(totals.bytes)} · {fmt_int(round(rate))} events/s" + ("\n" if final else "")
        )
        self._stream.flush()


async def export(
    histories: list[ChannelHistory],
    batches: Batches,
    selection: Selection,
    out: BinaryIO,
    progress: Progress,
) -> ReadTotals:
    """Write the selected events of ``histories`` to ``out`` as NDJSON; the totals read."""
    after = snowflake_at(selection.since) - 1 if selection.since is not None else 0
    until = snowflake_at(selection.until + UNTIL_GRACE_S) if selection.until is not None else None
    streams = [_slices(h, batches, after, until) for h in histories]

    def messages() -> int:
        return sum(h.messages for h in histories)

    written = bytearray()
    if len(streams) == 1:
        async for piece in streams[0]:
            for line, event in zip(piece.lines, piece.events, strict=True):
                if selection.wanted(event):
                    written += line
                    written += b"\n"
            out.write(written)
            written.clear()
            progress.update(messages(), batches.totals)
    else:
        async for line in _merged(streams, selection):
            written += line
            written += b"\n"
            if len(written) >= 1 << 20:
                out.write(written)
                written.clear()
                progress.update(messages(), batches.totals)
        out.write(written)
    out.flush()
    progress.update(messages(), batches.totals, final=True)
    return batches.totals


async def _slices(
    history: ChannelHistory, batches: Batches, after: int, until: int | None
) -> AsyncIterator[Slice]:
    """A channel's events, slice by slice, oldest post first."""
    async for post in history.forward(after, until):
        async for piece in batches.slices(post):
            yield piece


async def _merged(
    streams: list[AsyncIterator[Slice]], selection: Selection
) -> AsyncIterator[bytes]:
    """The selected lines of several channels, merged by event time (ties: channel order)."""
    current: list[Slice | None] = [None] * len(streams)
    position = [0] * len(streams)
    heap: list[tuple[float, int]] = []

    async def advance(index: int) -> None:
        """Put channel ``index``'s next selected event on the heap, if it has one."""
        while True:
            piece = current[index]
            if piece is None or position[index] >= len(piece.events):
                piece = await anext(streams[index], None)
                current[index], position[index] = piece, 0
                if piece is None:
                    return
            event = piece.events[position[index]]
            if selection.wanted(event):
                heapq.heappush(heap, (event.time, index))
                return
            position[index] += 1

    for index in range(len(streams)):
        await advance(index)
    while heap:
        _, index = heapq.heappop(heap)
        piece = current[index]
        assert piece is not None
        yield piece.lines[position[index]]
        position[index] += 1
        await advance(index)


def progress_stream(quiet: bool) -> TextIO | None:
    """stderr when it is a terminal and not ``quiet``; otherwise no progress at all."""
    return None if quiet or not sys.stderr.isatty() else sys.stderr
