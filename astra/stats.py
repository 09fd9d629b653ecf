"""Counters the pipeline keeps about itself, shared by ingest and delivery.

Plain integers bumped on the event loop; the pipeline collector turns their changes into
``pipeline`` events, so the figures end up in Discord like everything else.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, fields

from astra.collectors.quantiles import LogHistogram
from astra.events import Event


@dataclass
class PipelineStats:
    """Monotonic counters since start."""

    received: int = 0
    rejected_http: int = 0
    malformed_udp: int = 0
    kernel_drops: int = 0
    dropped_buffer: int = 0
    retries: int = 0
    rate_limited: int = 0
    failed_posts: int = 0
    undeliverable: int = 0
    posts: int = 0
    posted_events: int = 0
    # Ingest guard (HTTP connections, authentication).
    unauthorized: int = 0  # HTTP requests answered 401, UDP datagrams without a valid signature
    header_timeouts: int = 0  # HTTP connections closed before a complete request head arrived
    body_timeouts: int = 0  # HTTP requests answered 408: the body did not arrive in time
    connections_refused: int = 0  # HTTP connections over ingest.max_connections, closed at once
    accept_errors: int = 0  # accept() failures for lack of file descriptors or memory

    def __post_init__(self) -> None:
        # Not dataclass fields, so ``snapshot`` stays a dict of counters. The performance
        # collector swaps the histogram out each interval (a window, not forever).
        self.delivery_latency_ms: LogHistogram = LogHistogram()
        self.last_post: dict[str, float] = {}

    def delivered(self, channel: str, events: Iterable[Event], now: float | None = None) -> None:
        """Record a stored post: each event's latency from its ``ts``, the channel's last post."""
        now = time.time() if now is None else now
        histogram = self.delivery_latency_ms
        for event in events:
            # Client clocks can run ahead; a negative latency is a zero.
            histogram.add(max(0.0, now - event.time) * 1000)
        self.last_post[channel] = now

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
