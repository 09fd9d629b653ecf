"""Secret redaction for everything astra posts or logs.

Two layers: the configured secrets verbatim (bot token, webhook URLs and tokens, whatever
host they point at) and secret-shaped text (Discord tokens, webhook URLs, bearer tokens,
``password=``-style pairs). Events are redacted once, when they enter the bus, so every
sink downstream (posts, attachments, the terminal preview) only ever sees clean text.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from astra.events import Event, encode

REDACTED = "[redacted]"

_SECRET_NAMES = r"password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Webhook URLs on any host, with or without a scheme: .../webhooks/<id>/<token>
    (re.compile(r"(?:https?://)?[^\s\"'<>]*?webhooks/\d+/[A-Za-z0-9._-]+"), REDACTED),
    # Discord bot/user tokens: base64 id . timestamp . hmac
    (re.compile(r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,40}\b"), REDACTED),
    (re.compile(r"(?i)\b(bearer|bot)\s+[A-Za-z0-9._~+/=-]{16,}"), r"\1 " + REDACTED),
    (
        re.compile(rf"(?i)\b({_SECRET_NAMES})(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&\"'}}]+)"),
        r"\1\2" + REDACTED,
    ),
)
_SECRET_KEY = re.compile(rf"(?i)^({_SECRET_NAMES})$")
# Cheap tests run first on the encoded event; the precise rewrite only happens on a hit.
# Substring checks on the lower-cased text are far faster than a case-insensitive regex.
_SUSPECT_WORDS = re.compile(
    "webhooks/|bearer|bot |passw|pwd|secret|token|api_key|api-key|apikey|access_key|access-key"
)
# Starting on a literal "." lets the regex engine skip ahead instead of trying every offset.
_TOKEN_SHAPE = re.compile(r"\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27}")


class Redactor:
    """Removes configured secrets and secret-shaped text from strings and events."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self._secrets: set[str] = set()
        self._verbatim: re.Pattern[str] | None = None
        for secret in secrets or []:
            self.add_secret(secret)

    def add_secret(self, secret: str) -> None:
        """Treat ``secret`` as confidential from now on (e.g. a freshly provisioned token)."""
        # Very short strings would redact ordinary words; real tokens are long.
        if len(secret) < 8 or secret in self._secrets:
            return
        self._secrets.add(secret)
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._verbatim = re.compile("|".join(re.escape(s) for s in ordered))

    def text(self, value: str) -> str:
        """Return ``value`` with every secret replaced by ``[redacted]``."""
        if self._verbatim is not None:
            value = self._verbatim.sub(REDACTED, value)
        for pattern, replacement in _PATTERNS:
            value = pattern.sub(replacement, value)
        return value

    def _suspect(self, blob: str) -> bool:
        if any(secret in blob for secret in self._secrets):
            return True
        if _SUSPECT_WORDS.search(blob.lower()) is not None:
            return True
        return _TOKEN_SHAPE.search(blob) is not None

    def event(self, event: Event) -> Event:
        """Return the event itself when clean, else a copy with every string redacted.

        Every string counts: fields, keys and values of mappings, items of lists, nested
        structures.
        """
        blob = encode(event).decode("utf-8", "replace")
        if not self._suspect(blob):
            return event
        clean = self._walk(msgspec.to_builtins(event))
        # The event passed validation already; redaction only shortens strings.
        return msgspec.convert(clean, type(event))

    def _walk(self, value: Any, key: str = "") -> Any:
        if isinstance(value, str):
            return REDACTED if _SECRET_KEY.match(key) else self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self._walk(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        return value
