"""One attachment's events: gunzipped in slices, each line validated with the event schema.

The file is never inflated whole: a 10 MiB attachment may hold 100 MiB of JSON, and reading
back must stay within a fixed memory budget whatever it reads. Lines that do not validate
are counted and skipped; a file that is not gzip, or ends early, is reported as corrupt
after the lines before the damage.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import msgspec

from astra.events import AnyEvent, decode_one

# Inflate this much at a time: bounds the memory of one slice of lines.
SLICE_BYTES = 1024 * 1024
_decoder = msgspec.json.Decoder(list[AnyEvent])


class Slice(msgspec.Struct):
    """Consecutive lines of a file, and the event each one validated as."""

    lines: list[bytes]
    events: list[AnyEvent]
    invalid: int = 0  # lines in this slice that are not a valid event


class CorruptBatch(Exception):
    """The attachment is not readable gzip, or ends before its end; says which."""


def read_slices(data: bytes, slice_bytes: int = SLICE_BYTES) -> Iterator[Slice]:
    """The events of a gzipped JSON Lines file, a slice at a time.

    Raises ``CorruptBatch`` at the damage, after yielding the lines before it.
    """
    inflater = zlib.decompressobj(wbits=31)
    pending = b""
    view = data
    while True:
        try:
            chunk = inflater.decompress(view, slice_bytes)
        except zlib.error as exc:
            raise CorruptBatch(f"not gzip: {exc}") from None
        view = inflater.unconsumed_tail
        pending += chunk
        done = inflater.eof or (not view and not chunk)
        cut = len(pending) if done else pending.rfind(b"\n") + 1
        if cut:
            lines = [line for line in pending[:cut].split(b"\n") if line.strip()]
            pending = pending[cut:]
            if lines:
                yield _validated(lines)
        if done:
            break
    if not inflater.eof:
        raise CorruptBatch("truncated: the gzip stream ends early")
    if inflater.unused_data.strip(b"\x00"):
        raise CorruptBatch("trailing bytes after the gzip stream")


def _validated(lines: list[bytes]) -> Slice:
    """Validate lines in one decoder call; one by one only when some line is bad."""
    try:
        events = _decoder.decode(b"[" + b",".join(lines) + b"]")
    except (msgspec.DecodeError, RecursionError):
        pass
    else:
        if len(events) == len(lines):
            return Slice(lines, events)
    kept: list[bytes] = []
    valid: list[AnyEvent] = []
    for line in lines:
        try:
            valid.append(decode_one(line))
        except (msgspec.DecodeError, RecursionError):
            continue
        kept.append(line)
    return Slice(kept, valid, invalid=len(lines) - len(kept))
