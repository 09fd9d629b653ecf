"""Counters the pipeline keeps about itself, shared by ingest and delivery.

Plain integers bumped on the event loop; the pipeline collector turns their changes into
``pipeline`` events, so the figures end up in Discord like everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


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

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
