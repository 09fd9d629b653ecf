"""Stream entries: a batch of one member's events and what the poster needs to trust it.

An entry's fields: ``m`` the member name, ``r`` its run id, ``t`` how many events this run
of the member has published with this entry included, ``n`` how many this entry holds, and
``e`` the events as one JSON array. From ``t`` and ``n`` the poster sees the events the
stream's ``MAXLEN`` bound trimmed before it read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from astra.events import AnyEvent, Event, decode_one, describe_validation_error

# The whole batch in one decoder call: the same event types the ingest decodes.
_batch_decoder = msgspec.json.Decoder(list[AnyEvent])
_encoder = msgspec.json.Encoder()
_MAX_NAME = 200


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One decoded stream entry: whose events, how many so far, the valid events."""

    member: str
    run: str
    total: int
    count: int
    events: list[AnyEvent]
    malformed: int = 0
    size: int = 0
    problem: str = ""


def encode_entry(member: str, run: str, total: int, events: Sequence[Event]) -> dict[str, bytes]:
    """The fields of the entry that carries ``events`` (``total`` includes them)."""
    return {
        "m": member.encode(),
        "r": run.encode(),
        "t": str(total).encode(),
        "n": str(len(events)).encode(),
        "e": _encoder.encode(events),
    }


def decode_entry(fields: Mapping[bytes, bytes]) -> Entry:
    """Decode and validate an entry; never raises.

    A field missing or garbled leaves an entry with no events and ``problem`` set; an
    invalid event is counted in ``malformed`` and skipped, the others kept.
    """
    try:
        member = fields[b"m"].decode()[:_MAX_NAME]
        run = fields[b"r"].decode()[:_MAX_NAME]
        total = int(fields[b"t"])
        count = int(fields[b"n"])
        body = fields[b"e"]
    except (KeyError, ValueError) as exc:
        return Entry(member="", run="", total=0, count=0, events=[], problem=f"bad entry: {exc}")
    events, malformed, problem = _decode_events(body)
    return Entry(
        member=member,
        run=run,
        total=total,
        count=count,
        events=events,
        malformed=malformed,
        size=len(body),
        problem=problem,
    )


def _decode_events(body: bytes) -> tuple[list[AnyEvent], int, str]:
    try:
        return _batch_decoder.decode(body), 0, ""
    except (msgspec.DecodeError, RecursionError):
        pass
    # One bad event must not cost the others: event by event, as the ingest does.
    try:
        items = msgspec.json.decode(body, type=list[msgspec.Raw])
    except (msgspec.DecodeError, RecursionError) as exc:
        return [], 1, f"not a JSON array of events: {str(exc)[:200]}"
    events: list[AnyEvent] = []
    problem = ""
    for item in items:
        try:
            events.append(decode_one(item))
        except msgspec.ValidationError as exc:
            problem = problem or describe_validation_error(exc)
        except (msgspec.DecodeError, RecursionError) as exc:
            problem = problem or str(exc)[:200]
    return events, len(items) - len(events), problem
