"""astra's own exceptions, in one place.

    AstraError
    ├── ConfigError          the configuration cannot be used (astra.config)
    ├── BatchError           an ingest body holds no readable events (astra.wire); a ValueError
    ├── DiscordApiError      a bot-token REST call to Discord failed (astra.sinks.discord_http)
    └── SidecarUnreachable   nothing at the URL answers as a sidecar (astra.top)

Each message is one line meant for the user. This is a base module: it imports nothing
from astra, so every layer can raise and catch these. The modules named above import their
exception from here and still expose it under the old name (``from astra.config import
ConfigError`` keeps working). Misuse of an API raises the built-in exception instead
(``Telemetry`` given a limit that cannot work: ``ValueError``), and so does a wait that
runs out (``astra.client.testing``: ``TimeoutError``).

Private exceptions that never leave their module stay there (``_TooLarge`` in
``astra.collectors.ingest_http``: a body inflating past the limit, answered 413 at once).
"""

from __future__ import annotations


class AstraError(Exception):
    """Base of astra's own exceptions: catch it to catch any of them."""


class ConfigError(AstraError):
    """A configuration problem, with a one-line message for the user."""


class BatchError(AstraError, ValueError):
    """The body as a whole is unusable (empty, not JSON, too deep, too many events)."""


class DiscordApiError(AstraError):
    """A REST call failed; the message is one line without secrets."""


class SidecarUnreachable(AstraError):
    """The sidecar did not answer at the URL (one line, for the user)."""
