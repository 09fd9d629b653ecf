"""Exceptions as event fields: clipped text, tracebacks, and "already reported" marks.

The mark lets the discord.py extension and the logging handler report one exception once:
whoever reports it first marks it, and the other sees the mark and stays silent (discord.py
logs every exception it hands to ``on_error`` again, which would otherwise be a duplicate).
"""

from __future__ import annotations

import contextlib
import traceback

from astra import events

# The schema's limits (astra.events): Text is 4000 characters, LongText 65536, names 200.
TEXT_CHARS = 4000
NAME_CHARS = 200
# Tracebacks and log messages are clipped to well under LongText (65536 characters). These
# are characters, and a datagram is bytes: 16,000 emoji are 64 KB of UTF-8, and a control
# character is escaped to six bytes. So this bound alone does not make an event fit in a
# datagram (65507 bytes); ``Telemetry.send`` cuts the text further when the encoded event
# is still too large (``shrink_text``).
TRACEBACK_CHARS = 16_000
LONG_TEXT_CHARS = 16_000
# Metric tags (astra.events.Tags): at most 64, keys up to 100 characters, string values
# up to 1000.
MAX_TAGS = 64
TAG_KEY_CHARS = 100
TAG_VALUE_CHARS = 1000

_MARK = "__astra_reported__"


def clip(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def clip_tail(text: str, limit: int) -> str:
    """Keep the last ``limit`` characters: a traceback's tail names the failing frame."""
    if len(text) <= limit:
        return text
    marker = f"… {len(text) - limit} characters cut …\n"
    if len(marker) >= limit:
        return text[len(text) - limit :]
    return marker + text[len(text) - limit + len(marker) :]


def format_traceback(exc: BaseException) -> str:
    """The traceback as Python prints it (with causes), clipped to ``TRACEBACK_CHARS``."""
    return clip_tail("".join(traceback.format_exception(exc)), TRACEBACK_CHARS)


def describe(exc: BaseException) -> str:
    """``str(exc)`` or, when that is empty, the class name; clipped to ``TEXT_CHARS``."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    return clip(text or type(exc).__name__, TEXT_CHARS)


def type_name(exc: BaseException) -> str:
    """The exception's class name as the ``type`` / ``error_type`` fields want it."""
    return clip(type(exc).__name__, NAME_CHARS)


def mark_reported(*excs: BaseException | None) -> None:
    """Remember that these exceptions have been sent (attribute on the exception itself)."""
    for exc in excs:
        if exc is None:
            continue
        # Exceptions with __slots__ cannot carry the mark: at worst a duplicate report.
        with contextlib.suppress(AttributeError, TypeError):
            setattr(exc, _MARK, True)


def was_reported(exc: BaseException | None) -> bool:
    """True when ``mark_reported`` saw this exception (or the one it wraps)."""
    for _ in range(8):  # a cause chain can loop; a few hops cover every real wrapper
        if exc is None:
            return False
        if getattr(exc, _MARK, False):
            return True
        exc = exc.__cause__
    return False


def error_event_once(
    exc: BaseException,
    context: str,
    *,
    source: str,
    severity: events.Severity = "error",
    ts: float = 0.0,
) -> events.Error | None:
    """An ``error`` event for ``exc``, its message after ``context``; marks it reported.

    None when it was reported already (by this path or the other one, see above).
    """
    if was_reported(exc):
        return None
    mark_reported(exc)
    return events.Error(
        message=clip(f"{context}: {describe(exc)}", TEXT_CHARS),
        severity=severity,
        type=type_name(exc),
        traceback=format_traceback(exc),
        ts=ts,
        source=source,
    )
