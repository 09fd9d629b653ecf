"""The sidecar's own diagnostics on stderr: one line each, secrets redacted."""

from __future__ import annotations

import logging
import sys

from astra.redaction import Redactor


class RedactingFormatter(logging.Formatter):
    """Formats ``astra: level: message`` and removes secrets from the whole line."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__("astra: %(levelname)s: %(message)s")
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        """Format the record (and any exception, as one line) and redact it."""
        record.levelname = record.levelname.lower()
        saved = record.exc_info, record.exc_text
        if record.exc_info and record.exc_info[1] is not None:
            # One line, never a traceback: the exception's type and message.
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = None
        record.exc_info, record.exc_text = None, None
        try:
            return self._redactor.text(super().format(record))
        finally:
            record.exc_info, record.exc_text = saved


def setup_logging(redactor: Redactor, level: str = "info") -> None:
    """Send astra's log records to stderr through the redacting formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(redactor))
    root = logging.getLogger("astra")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # aiohttp logs unexpected server errors with tracebacks; keep them one line and clean.
    for name in ("aiohttp.server", "aiohttp.access", "asyncio"):
        other = logging.getLogger(name)
        other.handlers[:] = [handler]
        other.propagate = False
        other.setLevel(logging.WARNING)
