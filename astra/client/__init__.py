"""What a bot imports to report to the astra sidecar.

- ``Telemetry``: fire-and-forget client (UDP by default, or HTTP) sending the typed events
  of ``astra.events``, so the wire format is the sidecar's ingest format by construction.
- ``astra.client.discordpy``: ``await bot.load_extension("astra.client.discordpy")``.
- ``astra.client.logging``: ``TelemetryHandler``, log records as ``log`` / ``error`` events.
- ``astra.client.testing``: a real-socket stand-in for the sidecar, for tests.

    from astra.client import Telemetry

    telemetry = Telemetry()            # ASTRA_ADDRESS or udp://127.0.0.1:8787
                                       # (and ASTRA_INGEST_TOKEN when the sidecar has one)
    telemetry.metric("queue.depth", 12)
    telemetry.increment("jobs.done")
"""

from astra.client._flusher import DROPPED_METRIC
from astra.client._telemetry import (
    DEFAULT_FLUSH_INTERVAL_S,
    DEFAULT_MAX_DATAGRAM,
    DEFAULT_MAX_QUEUE,
    ENV_ADDRESS,
    ENV_CA,
    ENV_SOURCE,
    ENV_TOKEN,
    ClientStats,
    Telemetry,
)
from astra.client._transport import DEFAULT_ADDRESS, MAX_UDP_DATAGRAM, parse_address

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_FLUSH_INTERVAL_S",
    "DEFAULT_MAX_DATAGRAM",
    "DEFAULT_MAX_QUEUE",
    "DROPPED_METRIC",
    "ENV_ADDRESS",
    "ENV_CA",
    "ENV_SOURCE",
    "ENV_TOKEN",
    "MAX_UDP_DATAGRAM",
    "ClientStats",
    "Telemetry",
    "parse_address",
]
