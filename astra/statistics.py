"""Typed snapshots of every stage's figures: what each ``statistics()`` returns.

The pipeline's introspection contract, as ``astra.events`` is its data contract. Every
stage keeps its own counters and answers ``statistics()`` with a frozen snapshot;
``Sidecar.statistics()`` composes them into ``SidecarStatistics``, which ``/healthz``,
``/metrics``, ``astra top``, the performance and health collectors and the pipeline report
all read. Figures flow out of the stages; nothing writes into a shared counter object.

Counters count since start and only grow; gauges say how things are now. Times are unix
seconds (wall clock) unless a name says otherwise. Base layer: no I/O, no astra imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec


class HttpIngestStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /v1/events`` and the connections carrying it."""

    requests: int = 0  # event requests answered, whatever the status
    received: int = 0  # events accepted
    rejected: int = 0  # events refused one by one (invalid, reserved kind)
    refused_requests: int = 0  # whole bodies refused: not JSON, empty, too many, too large
    unauthorized: int = 0  # requests without the right bearer token (401)
    header_timeouts: int = 0  # connections closed before a complete request head arrived
    body_timeouts: int = 0  # requests answered 408: the body did not arrive in time
    connections: int = 0  # connections open now
    connections_refused: int = 0  # connections closed at once: max_connections were open
    accept_errors: int = 0  # accept() failures for lack of file descriptors or memory


class UdpIngestStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """Datagrams of events."""

    datagrams: int = 0  # datagrams read from the socket
    received: int = 0  # events accepted
    malformed: int = 0  # datagrams or events in them that could not be decoded
    unauthorized: int = 0  # datagrams dropped for a missing or wrong signature
    kernel_drops: int = 0  # datagrams the kernel dropped for this socket since start
    receive_buffer_bytes: int = 0  # SO_RCVBUF the kernel granted


class StreamStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """A channel stream: what waits for the channel's next window."""

    pending: int = 0  # events waiting for the next window
    pending_bytes: int = 0  # their size as received (astra's own: as encoded)
    inflight: int = 0  # events of closed windows not yet posted or given up
    evictable: int = 0  # pending events that came over ingest (the only ones the bound drops)
    dropped_total: int = 0  # ingested events evicted by the memory bound since start
    dropped_unreported: int = 0  # of those, not yet announced in a post
    early_windows: int = 0  # windows closed early for critical events since start
    critical_deferred: int = 0  # critical events that waited: the early-window budget was spent


class BusStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """The bus: every event, stamped and routed, and the memory bound."""

    published: int = 0  # events stamped since start, astra's own and ingested
    ingested: int = 0  # of those, events that came over ingest
    held: int = 0  # events in memory: pending in windows plus in windows being posted
    held_bytes: int = 0  # their size (as received; astra's own as encoded)
    max_events: int = 0  # the bound on ``held``
    max_bytes: int = 0  # the bound on ``held_bytes``
    dropped: int = 0  # ingested events evicted by the bound since start, all channels


class LatencySketch(msgspec.Struct, frozen=True, kw_only=True):
    """A log-histogram's state (``astra.quantiles.LogHistogram``), for quantiles and diffs."""

    relative_accuracy: float = 0.01  # every quantile is within this fraction of the truth
    count: int = 0  # values counted
    sum: float = 0.0  # their sum
    zeros: int = 0  # values counted as zero
    max: float = 0.0  # the largest value (0 when empty)
    buckets: dict[int, int] = msgspec.field(default_factory=dict)  # log bucket -> count


class DeliveryStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """One channel's delivery: posts, their outcomes, and how late events arrive."""

    mode: Literal["discord", "preview"]  # where this channel's posts go now
    posts: int = 0  # messages stored by Discord (or shown in the terminal)
    posted_events: int = 0  # events carried by those posts
    failed_posts: int = 0  # posts Discord refused (4xx), before a simpler form was tried
    retries: int = 0  # sends repeated after a 429, 5xx, reset or timeout
    rate_limited: int = 0  # of those, after a 429
    undeliverable: int = 0  # events given up: Discord refused every form of their post
    inflight: int = 0  # events of the window being sent now
    last_post: float | None = None  # when the last post was stored
    latency_ms: LatencySketch = msgspec.field(default_factory=LatencySketch)  # event ts -> post
    problem: str = ""  # what a person must fix in the configuration ("" when nothing)


def merged_sketch(parts: Sequence[LatencySketch]) -> LatencySketch:
    """One sketch of every value the parts counted (same relative accuracy): exact, since
    a log-histogram's buckets add up."""
    buckets: dict[int, int] = {}
    for part in parts:
        for bucket, count in part.buckets.items():
            buckets[bucket] = buckets.get(bucket, 0) + count
    return LatencySketch(
        relative_accuracy=parts[0].relative_accuracy if parts else 0.01,
        count=sum(p.count for p in parts),
        sum=sum(p.sum for p in parts),
        zeros=sum(p.zeros for p in parts),
        max=max((p.max for p in parts), default=0.0),
        buckets=buckets,
    )


def combined_delivery(parts: Sequence[DeliveryStatistics]) -> DeliveryStatistics:
    """One channel's delivery by several senders of one sidecar (the fleet's poster in each
    lease it held, and its own): counts added, the latest post, latencies merged. The last
    part gives the mode; the first problem found is kept. Parts are added in their order:
    keep it the same from call to call, or float sums may go backwards."""
    last = [p.last_post for p in parts if p.last_post is not None]
    return DeliveryStatistics(
        mode=parts[-1].mode,
        posts=sum(p.posts for p in parts),
        posted_events=sum(p.posted_events for p in parts),
        failed_posts=sum(p.failed_posts for p in parts),
        retries=sum(p.retries for p in parts),
        rate_limited=sum(p.rate_limited for p in parts),
        undeliverable=sum(p.undeliverable for p in parts),
        inflight=sum(p.inflight for p in parts),
        last_post=max(last) if last else None,
        latency_ms=merged_sketch([p.latency_ms for p in parts]),
        problem=next((p.problem for p in parts if p.problem), ""),
    )


class RateLimiterStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """astra's own bookkeeping of Discord's limits."""

    limited: dict[str, int] = msgspec.field(default_factory=dict)  # 429s by scope, and bans
    blocked_for_s: float = 0.0  # seconds until a global block or ban lifts (0: none)
    buckets: int = 0  # webhook buckets known from headers


class TransportStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """Requests to Discord's REST API and what came of them."""

    requests: int = 0  # webhook executes and bot-token calls sent
    waits: int = 0  # requests that first waited for a rate-limit budget
    waited_s: float = 0.0  # seconds spent waiting for budgets, in all
    outcomes: dict[str, int] = msgspec.field(default_factory=dict)  # by outcome
    network_errors: int = 0  # connection failures, resets and timeouts


class ReadStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """Reading Discord back (history pages, webhook message fetches, attachment files)."""

    requests: int = 0  # API reads and CDN downloads sent
    retries: int = 0  # of them, sent again after a 5xx, reset or timeout
    rate_limited: int = 0  # 429s received (then waited out)
    downloaded_bytes: int = 0  # attachment bytes read from the CDN


class CollectorStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """One scheduled collector and how its runs went."""

    name: str  # the collector (system, process, files, performance, errors, health, report)
    interval_s: float  # seconds between runs
    runs: int = 0  # runs that completed
    failures: int = 0  # runs that raised
    last_ok: float | None = None  # when the last run completed
    last_error: str = ""  # the last failure, one line
    last_error_at: float | None = None  # when it happened


class ChannelStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """A channel: its stream and its delivery."""

    stream: StreamStatistics = msgspec.field(default_factory=StreamStatistics)
    delivery: DeliveryStatistics


class PipelineTotals(msgspec.Struct, frozen=True, kw_only=True):
    """The pipeline's counters since start, summed over its stages (``/healthz``'s keys)."""

    received: int  # events accepted over HTTP and UDP
    rejected_http: int  # HTTP events and bodies refused
    malformed_udp: int  # datagrams or events in them that could not be decoded
    kernel_drops: int  # datagrams the kernel dropped before astra read them
    dropped_buffer: int  # ingested events evicted by the memory bound
    retries: int  # sends repeated after a 429, 5xx, reset or timeout
    rate_limited: int  # of those, after a 429
    failed_posts: int  # posts Discord refused (4xx)
    undeliverable: int  # events given up
    posts: int  # messages stored (or previewed)
    posted_events: int  # events carried by them
    unauthorized: int  # HTTP requests answered 401 and UDP datagrams without a valid signature
    header_timeouts: int  # HTTP connections closed before a complete request head arrived
    body_timeouts: int  # HTTP requests answered 408
    connections_refused: int  # HTTP connections over ingest.max_connections
    accept_errors: int  # accept() failures for lack of file descriptors or memory


class ControlStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """The control endpoint (``/v1/control/*``, the ``/astra`` commands)."""

    enabled: bool = False  # a control token is configured
    requests: int = 0  # requests to the control routes, answered or refused
    unauthorized: int = 0  # refused: no control token, or a wrong one
    mutes: int = 0  # alert mutes in force now


class FleetStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """Fleet mode: this member's role, the lease, Redis, publishing and (as poster) reading."""

    member: str = ""  # this member's name
    role: str = "member"  # poster, member, or fallback (posting directly, Redis unreachable)
    holder: str = ""  # the lease holder's name as last seen ("" when unknown or none)
    redis: str = "unknown"  # ok or unreachable
    redis_error: str = ""  # the last Redis error, redacted
    unreachable_s: float = 0.0  # seconds Redis has been unreachable (0 when reachable)
    published_events: int = 0  # events appended to the stream
    published_entries: int = 0  # stream entries appended
    publish_failures: int = 0  # appends that failed (events kept in memory and retried)
    awaiting_redis: int = 0  # events held in memory for Redis
    unconfirmed: int = 0  # events appended, kept in memory until the poster acknowledges them
    republished: int = 0  # events appended again after Redis restarted without them
    unprotected: int = 0  # appended events let go unacknowledged, to stay in the memory bound
    fallback_posts: int = 0  # windows posted directly while Redis was unreachable
    leases: int = 0  # times this member became the poster
    token: int = 0  # fencing token of the lease held now (0 when not the poster)
    read_entries: int = 0  # as poster: entries read from the stream
    read_events: int = 0  # as poster: valid events read
    malformed: int = 0  # as poster: invalid events (or entries) counted and skipped
    claimed: int = 0  # as poster: pending entries taken over from a former poster
    acked: int = 0  # as poster: entries acknowledged after their posts were stored
    trimmed: int = 0  # as poster: events the stream bound dropped before they were read
    posts: int = 0  # as poster: posts Discord stored for the fleet
    silent: list[str] = msgspec.field(default_factory=list)  # members alerting as silent
    # As poster: every member with a heartbeat in Redis when last looked (silent ones too;
    # a member that left cleanly is gone); empty while not the poster.
    members: list[str] = msgspec.field(default_factory=list)


class StatusBoardStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """The status board in #diagnostics: its message and how its updates went."""

    enabled: bool = False  # whether a board is kept (diagnostics posts to Discord)
    message_id: str = ""  # the board's message ("" before it is posted)
    posts: int = 0  # board messages posted (the first, and after deletions)
    edits: int = 0  # edits stored
    recreated: int = 0  # times the message was found deleted and posted again
    found: int = 0  # times the board of an earlier run was found in the channel's history
    failures: int = 0  # posts and edits Discord did not take


class HeartbeatStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """The outgoing heartbeat (``[heartbeat] url``)."""

    enabled: bool = False  # whether a heartbeat URL is configured
    sent: int = 0  # calls answered 2xx
    failed: int = 0  # calls that failed (network error, timeout, non-2xx answer)
    skipped: int = 0  # beats held back because the pipeline was unhealthy
    last_ok: float | None = None  # when a call last succeeded


class SidecarStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """The running sidecar: every stage's snapshot, taken at ``at``."""

    version: str  # astra's version
    at: float  # when this snapshot was taken
    started: float  # when the sidecar started
    http: HttpIngestStatistics = msgspec.field(default_factory=HttpIngestStatistics)
    udp: UdpIngestStatistics = msgspec.field(default_factory=UdpIngestStatistics)
    bus: BusStatistics = msgspec.field(default_factory=BusStatistics)
    channels: dict[str, ChannelStatistics] = msgspec.field(default_factory=dict)
    limiter: RateLimiterStatistics = msgspec.field(default_factory=RateLimiterStatistics)
    transport: TransportStatistics = msgspec.field(default_factory=TransportStatistics)
    collectors: list[CollectorStatistics] = msgspec.field(default_factory=list)
    control: ControlStatistics = msgspec.field(default_factory=ControlStatistics)
    fleet: FleetStatistics | None = None  # None without [fleet]
    board: StatusBoardStatistics = msgspec.field(default_factory=StatusBoardStatistics)
    heartbeat: HeartbeatStatistics = msgspec.field(default_factory=HeartbeatStatistics)

    @property
    def uptime_s(self) -> float:
        """Seconds since start."""
        return max(0.0, self.at - self.started)

    @property
    def totals(self) -> PipelineTotals:
        """Every stage's counters summed into the pipeline's totals."""
        http, udp = self.http, self.udp
        channels = [c.delivery for c in self.channels.values()]
        delivery = combined_delivery(channels) if channels else DeliveryStatistics(mode="preview")
        return PipelineTotals(
            received=http.received + udp.received,
            rejected_http=http.rejected + http.refused_requests,
            malformed_udp=udp.malformed,
            kernel_drops=udp.kernel_drops,
            dropped_buffer=self.bus.dropped,
            retries=delivery.retries,
            rate_limited=delivery.rate_limited,
            failed_posts=delivery.failed_posts,
            undeliverable=delivery.undeliverable,
            posts=delivery.posts,
            posted_events=delivery.posted_events,
            unauthorized=http.unauthorized + udp.unauthorized,
            header_timeouts=http.header_timeouts,
            body_timeouts=http.body_timeouts,
            connections_refused=http.connections_refused,
            accept_errors=http.accept_errors,
        )
