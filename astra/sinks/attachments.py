"""The machine-readable half of a post: ``events-<channel>-<run>-<first>-<last>.jsonl.gz``.

``run`` is the posting process run's id; ``first`` and ``last`` number the events this run
delivered on the channel, from 1, with no gaps between one post and the next. A reader that
finds a range missing knows a message is (a deleted message, a post given up), and a range
seen twice is the same post stored twice (a retry after a lost confirmation).
"""

from __future__ import annotations

import gzip
import re

import msgspec

from astra.events import Event, encode_lines, run_id
from astra.sinks.messages import MAX_FILE_BYTES, Attachment

# Level 5 compresses telemetry JSON about as well as 9 at a third of the CPU.
_GZIP_LEVEL = 5
# Before runs were named (astra 0.1 up to 2026-11-30): the first and last bus sequence
# numbers, which restart with every run; read back without range checks.
_LEGACY_NAME = re.compile(r"events-([a-z][a-z0-9_]{0,31})-(\d{1,18})-(\d{1,18})\.jsonl\.gz")
_NAME = re.compile(
    r"events-([a-z][a-z0-9_]{0,31})-([0-9a-f]{1,32})-(\d{1,18})-(\d{1,18})\.jsonl\.gz"
)


class BatchName(msgspec.Struct, frozen=True):
    """What an attachment's name says: channel, run and the range of event numbers.

    ``run`` is empty for the older names, whose numbers are not the channel's.
    """

    channel: str
    run: str
    first: int
    last: int


def attachment_name(channel: str, run: str, first: int, last: int) -> str:
    """The file name readers (``astra export``, recovery) key on."""
    return f"events-{channel}-{run}-{first}-{last}.jsonl.gz"


def parse_attachment_name(filename: str) -> BatchName | None:
    """The parts of an astra attachment name; ``None`` for any other file."""
    match = _NAME.fullmatch(filename)
    if match is not None:
        channel, run, first, last = match.group(1), match.group(2), match.group(3), match.group(4)
    elif legacy := _LEGACY_NAME.fullmatch(filename):
        channel, run, first, last = legacy.group(1), "", legacy.group(2), legacy.group(3)
    else:
        return None
    if not 1 <= int(first) <= int(last):
        return None
    return BatchName(channel, run, int(first), int(last))


def build_attachments(
    channel: str,
    events: list[Event],
    max_bytes: int = MAX_FILE_BYTES,
    *,
    first: int = 1,
    run: str = "",
) -> list[Attachment]:
    """Gzip the events as JSON Lines, split into as many files as needed to fit ``max_bytes``.

    ``first`` is the channel's number of ``events[0]`` in this run. Built in memory only:
    astra never writes a file.
    """
    if not events:
        return []
    run = run or run_id()
    data = gzip.compress(encode_lines(events), compresslevel=_GZIP_LEVEL, mtime=0)
    if len(data) <= max_bytes or len(events) == 1:
        name = attachment_name(channel, run, first, first + len(events) - 1)
        return [Attachment(name, data, events, first)]
    middle = len(events) // 2
    return build_attachments(
        channel, events[:middle], max_bytes, first=first, run=run
    ) + build_attachments(channel, events[middle:], max_bytes, first=first + middle, run=run)
