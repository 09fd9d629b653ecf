"""``TelemetryHandler``: log records as astra events.

Records without exception info become ``log`` events; records with it become ``error``
events carrying the traceback. Warning and above by default.

    import logging
    from astra.client.logging import TelemetryHandler

    logging.getLogger().addHandler(TelemetryHandler())

It never recurses: records from astra's own client loggers (``astra.client``…) are not
forwarded (they describe trouble reaching the sidecar, which the same path could not fix),
and a record logged while the handler is already emitting in the same thread is skipped.
An exception already reported (by ``Telemetry.error_from_exception`` or the discord.py
extension) is not reported a second time when it is logged afterwards, and a record that
reaches two ``TelemetryHandler``s sending to the same address (the extension's, and one the
operator added) is sent once.
"""

from __future__ import annotations

import logging
import threading
import weakref

from astra import events
from astra.client._errors import LONG_TEXT_CHARS, NAME_CHARS, clip, error_event_once
from astra.client._telemetry import Telemetry

_OWN_LOGGERS = ("astra.client",)


class _Handled(threading.local):
    """The record being dispatched in this thread, and the addresses it was sent to.

    ``logging`` hands one record to every handler in turn, in the thread that logged it:
    remembering the current record (weakly, and without touching it, since other handlers
    may serialise its attributes) is enough to notice the second handler.
    """

    def __init__(self) -> None:
        self.record: weakref.ref[logging.LogRecord] | None = None
        self.addresses: set[str] = set()

    def first_time(self, record: logging.LogRecord, address: str) -> bool:
        """True unless ``record`` was already sent to ``address``; remembers it."""
        if self.record is None or self.record() is not record:
            self.record = weakref.ref(record)
            self.addresses = {address}
            return True
        if address in self.addresses:
            return False
        self.addresses.add(address)
        return True


_handled = _Handled()


def _level_name(levelno: int) -> events.LogLevel:
    if levelno >= logging.CRITICAL:
        return "critical"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


def _severity(levelno: int) -> events.Severity:
    if levelno >= logging.CRITICAL:
        return "critical"
    if levelno >= logging.ERROR:
        return "error"
    return "warning"


class TelemetryHandler(logging.Handler):
    """A ``logging.Handler`` that sends records to the sidecar through a ``Telemetry``.

    ``telemetry`` defaults to a new client configured from the environment (``ASTRA_ADDRESS``,
    ``ASTRA_SOURCE``, ``ASTRA_INGEST_TOKEN``, ``ASTRA_INGEST_CA``); a client the handler
    created is closed by ``close()``.
    """

    def __init__(self, telemetry: Telemetry | None = None, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self._owns_telemetry = telemetry is None
        self.telemetry = telemetry if telemetry is not None else Telemetry()
        self._emitting = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        """Send ``record`` as a ``log`` or ``error`` event; never raises."""
        if record.name.startswith(_OWN_LOGGERS) or getattr(self._emitting, "active", False):
            return
        if not _handled.first_time(record, self.telemetry.address):
            return  # another TelemetryHandler already sent it to the same sidecar
        self._emitting.active = True
        try:
            event = self._to_event(record)
            if event is not None:
                self.telemetry.send(event)
        except Exception:
            # Counted like every other client failure; printing here could recurse.
            self.telemetry._internal_error(Exception("log record not convertible"), None)
        finally:
            self._emitting.active = False

    def _to_event(self, record: logging.LogRecord) -> events.Event | None:
        message = _message(record)
        exc = record.exc_info[1] if record.exc_info else None
        source = self.telemetry.source
        if exc is None:
            return events.Log(
                level=_level_name(record.levelno),
                message=clip(message, LONG_TEXT_CHARS),
                logger=clip(record.name, NAME_CHARS),
                ts=record.created,
                source=source,
            )
        return error_event_once(
            exc, message, source=source, severity=_severity(record.levelno), ts=record.created
        )

    def close(self) -> None:
        """Detach; closes the ``Telemetry`` only if this handler created it."""
        try:
            if self._owns_telemetry:
                self.telemetry.close()
        finally:
            super().close()


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:
        # A broken %-format in the caller's log call: keep the template rather than nothing.
        return str(record.msg)
