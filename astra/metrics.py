"""``GET /metrics``: the sidecar's statistics in Prometheus (or OpenMetrics) exposition.

A ``prometheus_client`` custom collector reads a fresh ``SidecarStatistics`` snapshot on
every scrape: nothing is copied into client-library counters, so the figures are exactly
what ``/healthz`` and ``astra top`` show. Names follow Prometheus conventions: ``astra_``
prefix, ``_total`` on counters, ``_seconds`` and ``_bytes`` units, labels for ``channel``,
``transport``, ``outcome``, ``reason``, ``scope`` and ``collector``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from astra.quantiles import LogHistogram
from astra.statistics import SidecarStatistics

# Event -> Discord latency buckets (seconds): a 30 s flush puts most events between 1 and 60.
LATENCY_BUCKETS_S = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 900.0)


class SidecarCollector(Collector):
    """Turns one statistics snapshot per scrape into metric families."""

    def __init__(self, snapshot: Callable[[], SidecarStatistics]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        """Every figure of a fresh snapshot."""
        s = self._snapshot()
        yield InfoMetricFamily("astra_build", "astra's version.", value={"version": s.version})
        yield GaugeMetricFamily(
            "astra_start_time_seconds", "When the sidecar started (unix time).", value=s.started
        )
        yield from _ingest(s)
        yield from _bus(s)
        yield from _delivery(s)
        yield from _discord(s)
        yield from _collectors(s)
        yield from _fleet(s)


Rows = Sequence[tuple[list[str], float]]
Family = type[CounterMetricFamily] | type[GaugeMetricFamily]


def _family(kind: Family, name: str, doc: str, labels: list[str], rows: Rows) -> Metric:
    """A family of ``kind`` holding one sample per row (label values, value)."""
    family = kind(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family


def _counter(name: str, doc: str, labels: list[str], rows: Rows) -> Metric:
    return _family(CounterMetricFamily, name, doc, labels, rows)


def _gauge(name: str, doc: str, labels: list[str], rows: Rows) -> Metric:
    return _family(GaugeMetricFamily, name, doc, labels, rows)


def _ingest(s: SidecarStatistics) -> Iterator[Metric]:
    http, udp = s.http, s.udp
    yield _counter(
        "astra_events_received",
        "Events accepted by ingest.",
        ["transport"],
        [(["http"], http.received), (["udp"], udp.received)],
    )
    yield _counter(
        "astra_events_rejected",
        "Events, bodies and datagrams refused by ingest, by reason.",
        ["transport", "reason"],
        [
            (["http", "invalid"], http.rejected),
            (["http", "body"], http.refused_requests),
            (["http", "unauthorized"], http.unauthorized),
            (["udp", "malformed"], udp.malformed),
            (["udp", "unauthorized"], udp.unauthorized),
        ],
    )
    yield _counter("astra_http_requests", "Event requests answered.", [], [([], http.requests)])
    yield _gauge("astra_http_connections", "Open ingest connections.", [], [([], http.connections)])
    yield _counter(
        "astra_http_connections_refused",
        "Connections closed at once because ingest.max_connections were open.",
        [],
        [([], http.connections_refused)],
    )
    yield _counter(
        "astra_http_timeouts",
        "Requests whose head or body came too slowly.",
        ["phase"],
        [(["header"], http.header_timeouts), (["body"], http.body_timeouts)],
    )
    yield _counter(
        "astra_http_accept_errors",
        "accept() failures for lack of file descriptors or memory.",
        [],
        [([], http.accept_errors)],
    )
    yield _counter(
        "astra_udp_datagrams", "Datagrams read from the socket.", [], [([], udp.datagrams)]
    )
    yield _counter(
        "astra_udp_kernel_drops",
        "Datagrams the kernel dropped before astra read them.",
        [],
        [([], udp.kernel_drops)],
    )
    yield _gauge(
        "astra_udp_receive_buffer_bytes",
        "SO_RCVBUF the kernel granted.",
        [],
        [([], udp.receive_buffer_bytes)],
    )


def _bus(s: SidecarStatistics) -> Iterator[Metric]:
    bus, channels = s.bus, s.channels
    yield _counter(
        "astra_events_published", "Events stamped by the bus.", [], [([], bus.published)]
    )
    yield _gauge(
        "astra_events_pending",
        "Events waiting for their channel's next window.",
        ["channel"],
        [([name], c.stream.pending) for name, c in channels.items()],
    )
    yield _gauge(
        "astra_events_inflight",
        "Events of windows being posted.",
        ["channel"],
        [([name], c.stream.inflight) for name, c in channels.items()],
    )
    yield _gauge("astra_buffer_events", "Events held in memory.", [], [([], bus.held)])
    yield _gauge(
        "astra_buffer_bytes", "Bytes of the events held in memory.", [], [([], bus.held_bytes)]
    )
    yield _gauge(
        "astra_buffer_max_events", "The memory bound in events.", [], [([], bus.max_events)]
    )
    yield _gauge("astra_buffer_max_bytes", "The memory bound in bytes.", [], [([], bus.max_bytes)])
    dropped = [([name, "buffer"], c.stream.dropped_total) for name, c in channels.items()]
    dropped += [([name, "undeliverable"], c.delivery.undeliverable) for name, c in channels.items()]
    yield _counter(
        "astra_events_dropped",
        "Events lost, by channel and reason.",
        ["channel", "reason"],
        dropped,
    )


def _delivery(s: SidecarStatistics) -> Iterator[Metric]:
    channels = s.channels
    yield _counter(
        "astra_posts",
        "Posts by channel and outcome: stored by Discord, or refused (4xx).",
        ["channel", "outcome"],
        [([n, "stored"], c.delivery.posts) for n, c in channels.items()]
        + [([n, "refused"], c.delivery.failed_posts) for n, c in channels.items()],
    )
    yield _counter(
        "astra_posted_events",
        "Events carried by stored posts.",
        ["channel"],
        [([n], c.delivery.posted_events) for n, c in channels.items()],
    )
    yield _counter(
        "astra_post_retries",
        "Sends repeated after a 429, 5xx, reset or timeout.",
        ["channel"],
        [([n], c.delivery.retries) for n, c in channels.items()],
    )
    yield _gauge(
        "astra_last_post_timestamp_seconds",
        "When each channel's last post was stored (unix time).",
        ["channel"],
        [([n], c.delivery.last_post) for n, c in channels.items() if c.delivery.last_post],
    )
    latency = HistogramMetricFamily(
        "astra_delivery_latency_seconds",
        "From an event's timestamp to its post being stored.",
        labels=["channel"],
    )
    for name, channel in channels.items():
        histogram = LogHistogram.since(channel.delivery.latency_ms)
        buckets = [
            (f"{bound:g}", float(histogram.count_at_most(bound * 1000)))
            for bound in LATENCY_BUCKETS_S
        ]
        buckets.append(("+Inf", float(histogram.count)))
        latency.add_metric([name], buckets, histogram.sum / 1000)
    yield latency


def _discord(s: SidecarStatistics) -> Iterator[Metric]:
    transport, limiter = s.transport, s.limiter
    yield _counter(
        "astra_discord_requests",
        "Requests to Discord's API by outcome.",
        ["outcome"],
        [([outcome], n) for outcome, n in sorted(transport.outcomes.items())],
    )
    yield _counter(
        "astra_discord_network_errors",
        "Connection failures, resets and timeouts talking to Discord.",
        [],
        [([], transport.network_errors)],
    )
    yield _counter(
        "astra_discord_rate_limited",
        "429 answers by scope (bucket, shared, global) and Cloudflare bans.",
        ["scope"],
        [([scope], n) for scope, n in sorted(limiter.limited.items())],
    )
    yield _counter(
        "astra_discord_rate_limit_wait_seconds",
        "Seconds spent waiting for rate-limit budgets before sending.",
        [],
        [([], transport.waited_s)],
    )


def _fleet(s: SidecarStatistics) -> Iterator[Metric]:
    """Fleet mode's figures (nothing without ``[fleet]``)."""
    f = s.fleet
    if f is None:
        return
    roles = ("poster", "member", "fallback")
    yield _gauge(
        "astra_fleet_role",
        "1 for this member's fleet role now (poster, member, fallback).",
        ["role"],
        [([role], float(f.role == role)) for role in roles],
    )
    yield _gauge("astra_fleet_redis_up", "1 when Redis answers.", [], [([], f.redis == "ok")])
    for name, doc, value in (
        (
            "published_events",
            "Events this member appended to the fleet's stream.",
            f.published_events,
        ),
        ("read_events", "Events this member read from the stream as poster.", f.read_events),
        ("acked_entries", "Stream entries acknowledged after their posts were stored.", f.acked),
        (
            "malformed_events",
            "Invalid events (or entries) read from the stream and skipped.",
            f.malformed,
        ),
        (
            "trimmed_events",
            "Events the stream bound dropped before the poster read them.",
            f.trimmed,
        ),
        (
            "republished_events",
            "Events appended again after Redis restarted without them.",
            f.republished,
        ),
        ("leases", "Times this member became the poster.", f.leases),
    ):
        yield _counter(f"astra_fleet_{name}", doc, [], [([], value)])
    for name, doc, value in (
        ("awaiting_redis", "Events held in memory waiting for Redis.", f.awaiting_redis),
        ("unconfirmed", "Appended events kept until the poster acknowledges them.", f.unconfirmed),
        ("silent_members", "Members alerting as silent.", len(f.silent)),
    ):
        yield _gauge(f"astra_fleet_{name}", doc, [], [([], value)])


def _collectors(s: SidecarStatistics) -> Iterator[Metric]:
    rows = s.collectors
    yield _counter(
        "astra_collector_runs",
        "Collector runs that completed.",
        ["collector"],
        [([c.name], c.runs - c.failures) for c in rows],
    )
    yield _counter(
        "astra_collector_failures",
        "Collector runs that raised.",
        ["collector"],
        [([c.name], c.failures) for c in rows],
    )
    yield _gauge(
        "astra_collector_last_success_timestamp_seconds",
        "When each collector's last run completed (unix time).",
        ["collector"],
        [([c.name], c.last_ok) for c in rows if c.last_ok is not None],
    )


class MetricsEndpoint:
    """Renders the exposition for one scrape, in the format the scraper asks for."""

    def __init__(self, snapshot: Callable[[], SidecarStatistics]) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(SidecarCollector(snapshot))
        # CPU seconds, resident memory, open fds and start time of this process, from /proc.
        ProcessCollector(namespace="astra", registry=self._registry)

    def render(self, accept: str) -> tuple[bytes, str]:
        """The body and its content type for a request's ``Accept`` header."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self._registry), content_type
