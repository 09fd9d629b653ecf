"""The ingest wire format: a JSON object, a JSON array of objects, or NDJSON lines.

Shared by the HTTP and UDP ingest (and what ``astra.client`` produces), so a batch is
parsed the same way wherever it arrives. Bad events are reported by index and field;
the good ones in the same batch are kept.
"""

from __future__ import annotations

import msgspec

from astra.events import AnyEvent, decode_one, describe_validation_error

# Kinds only astra itself emits: accepting them from the network would let anyone who can
# reach the port forge the pipeline's figures, raise alerts, or grow the collectors' state.
RESERVED_KINDS = frozenset(
    {"config", "pipeline", "health", "report", "performance", "system", "process", "file", "alert"}
)


class Rejection(msgspec.Struct, frozen=True):
    """Why the event at ``index`` of a batch was not accepted."""

    index: int
    error: str


class BatchError(ValueError):
    """The body as a whole is unusable (empty, not JSON, too deep, too many events)."""


def decode_batch(body: bytes, max_events: int) -> tuple[list[AnyEvent], list[Rejection]]:
    """Decode a body into events and per-event rejections.

    Raises ``BatchError`` when nothing in it can be read as events.
    """
    stripped = body.strip()
    if not stripped:
        raise BatchError("empty body: send a JSON object, a JSON array or NDJSON lines")
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
            kind = str(event.__struct_config__.tag)
            if kind in RESERVED_KINDS:
                rejected.append(Rejection(index, f"kind: '{kind}' is reserved for astra itself"))
                continue
            events.append(event)
        except msgspec.ValidationError as exc:
            rejected.append(Rejection(index, describe_validation_error(exc)))
        except msgspec.DecodeError as exc:
            rejected.append(Rejection(index, f"invalid JSON: {_short(exc)}"))
        except RecursionError:
            rejected.append(Rejection(index, "JSON nested too deeply"))
    return events, rejected


def _short(exc: Exception) -> str:
    return str(exc).removeprefix("JSON is malformed: ")
