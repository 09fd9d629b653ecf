"""The machine-readable half of a post: ``events-<channel>-<first>-<last>.jsonl.gz``."""

from __future__ import annotations

import gzip

from astra.events import Event, encode_lines
from astra.sinks.messages import MAX_FILE_BYTES, Attachment

# Level 5 compresses telemetry JSON about as well as 9 at a third of the CPU.
_GZIP_LEVEL = 5


def attachment_name(channel: str, events: list[Event]) -> str:
    """The file name readers (and ``astra replay``) key on."""
    return f"events-{channel}-{events[0].seq}-{events[-1].seq}.jsonl.gz"


def build_attachments(
    channel: str, events: list[Event], max_bytes: int = MAX_FILE_BYTES
) -> list[Attachment]:
    """Gzip the events as JSON Lines, split into as many files as needed to fit ``max_bytes``.

    Built in memory only: astra never writes a file.
    """
    if not events:
        return []
    data = gzip.compress(encode_lines(events), compresslevel=_GZIP_LEVEL, mtime=0)
    if len(data) <= max_bytes or len(events) == 1:
        return [Attachment(attachment_name(channel, events), data, events)]
    middle = len(events) // 2
    return build_attachments(channel, events[:middle], max_bytes) + build_attachments(
        channel, events[middle:], max_bytes
    )
