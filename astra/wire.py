"""The ingest wire format: a JSON object, a JSON array of objects, or NDJSON lines.

Shared by the HTTP and UDP ingest (and what ``astra.client`` produces), so a batch is
parsed the same way wherever it arrives. Bad events are reported by index and field;
the good ones in the same batch are kept.
"""

from __future__ import annotations

import msgspec

from astra.errors import BatchError as BatchError  # re-exported
from astra.events import (
    BOT_LIFECYCLE_PREFIX,
    EVENT_TYPES,
    AnyEvent,
    Event,
    Lifecycle,
    decode_one,
    describe_validation_error,
)

# Kinds only astra itself emits: accepting them from the network would let anyone who can
# reach the port forge the pipeline's figures or its own lines, raise alerts, or grow the
# collectors' state.
RESERVED_KINDS = frozenset(
    {
        "config",
        "pipeline",
        "health",
        "report",
        "performance",
        "system",
        "process",
        "file",
        "alert",
        "lifecycle",
        "digest",
    }
)
_RESERVED_TYPES = frozenset(
    t for t in EVENT_TYPES if str(t.__struct_config__.tag) in RESERVED_KINDS
)
_batch_decoder = msgspec.json.Decoder(list[AnyEvent])


class Rejection(msgspec.Struct, frozen=True):
    """Why the event at ``index`` of a batch was not accepted."""

    index: int
    error: str


def decode_batch(body: bytes, max_events: int) -> tuple[list[AnyEvent], list[Rejection]]:
    """Decode a body into events and per-event rejections.

    Raises ``BatchError`` when nothing in it can be read as events.
    """
    stripped = body.strip()
    if not stripped:
        raise BatchError("empty body: send a JSON object, a JSON array or NDJSON lines")
    whole = _decode_whole(stripped, max_events)
    if whole is not None:
        return whole
    items: list[bytes | msgspec.Raw]
    try:
        if stripped[:1] == b"[":
            items = list(msgspec.json.decode(stripped, type=list[msgspec.Raw]))
        else:
            try:
                items = [msgspec.json.decode(stripped, type=msgspec.Raw)]
            except msgspec.DecodeError as exc:
                if b"\n" not in stripped or "trailing characters" not in str(exc):
                    raise
                items = [line for line in stripped.split(b"\n") if line.strip()]
    except msgspec.ValidationError as exc:
        raise BatchError(f"expected a JSON object, array or NDJSON: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BatchError(f"invalid JSON: {_short(exc)}") from None
    except RecursionError:
        raise BatchError("JSON nested too deeply") from None
    if not items:
        raise BatchError("empty batch: the array holds no events")
    if len(items) > max_events:
        raise BatchError(f"too many events in one request: {len(items)} > {max_events}")
    events: list[AnyEvent] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(items):
        try:
            event = decode_one(item)
            why = refusal(event)
            if why:
                rejected.append(Rejection(index, why))
                continue
            events.append(event)
        except msgspec.ValidationError as exc:
            rejected.append(Rejection(index, describe_validation_error(exc)))
        except msgspec.DecodeError as exc:
            rejected.append(Rejection(index, f"invalid JSON: {_short(exc)}"))
        except RecursionError:
            rejected.append(Rejection(index, "JSON nested too deeply"))
    return events, rejected


def _decode_whole(
    stripped: bytes, max_events: int
) -> tuple[list[AnyEvent], list[Rejection]] | None:
    """The fast path: the whole body in one decoder call, or None to go event by event.

    A body with any invalid event falls back to the slow path, which names each one.
    """
    if stripped[:1] == b"[":
        array, lines = stripped, 0
    elif b"\n" in stripped:
        parts = [line for line in stripped.split(b"\n") if line.strip()]
        array, lines = b"[" + b",".join(parts) + b"]", len(parts)
    else:
        return None
    try:
        decoded = _batch_decoder.decode(array)
    except (msgspec.DecodeError, RecursionError):
        return None
    # Joined NDJSON must hold one event per line, or a line was not a single object.
    if not decoded or (lines and len(decoded) != lines):
        return None
    if len(decoded) > max_events:
        raise BatchError(f"too many events in one request: {len(decoded)} > {max_events}")
    if not any(type(event) in _RESERVED_TYPES for event in decoded):
        return decoded, []
    events: list[AnyEvent] = []
    rejected: list[Rejection] = []
    for index, event in enumerate(decoded):
        why = refusal(event)
        if why:
            rejected.append(Rejection(index, why))
        else:
            events.append(event)
    return events, rejected


def refusal(event: Event) -> str:
    """Why an event may not come from the network, or '' when it may (ingest and client)."""
    if type(event) not in _RESERVED_TYPES:
        return ""
    if isinstance(event, Lifecycle) and event.action.startswith(BOT_LIFECYCLE_PREFIX):
        return ""
    kind = str(event.__struct_config__.tag)
    if kind == "lifecycle":
        return (
            f"kind: 'lifecycle' is reserved for astra itself "
            f"(a bot may only send '{BOT_LIFECYCLE_PREFIX}*' actions)"
        )
    return f"kind: '{kind}' is reserved for astra itself"


def _short(exc: Exception) -> str:
    return str(exc).removeprefix("JSON is malformed: ")
