"""Introspection through the real sidecar: ``/metrics``, ``/healthz``'s snapshot, ``astra top``."""

from __future__ import annotations

import json
import urllib.request

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Launch, webhook_channels
from tests.fake_discord import FakeDiscord
from tests.sidecar import Sidecar, free_port, run_cli

FAST = "[flush]\ninterval = 0.5\ncritical_delay = 0.2\n"


def scrape(sidecar: Sidecar, accept: str = "") -> tuple[str, str]:
    """GET /metrics; the body and its content type."""
    request = urllib.request.Request(f"{sidecar.base_url}/metrics", headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode(), response.headers["Content-Type"]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, parsed by prometheus_client itself."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_parse_and_agree_with_healthz_after_a_known_burst(
    discord: FakeDiscord, launch: Launch
) -> None:
    """After 500 events over HTTP and 200 over UDP, /metrics and /healthz tell the same."""
    body, _ = webhook_channels(discord)
    sidecar = launch(body + FAST)
    for start in range(0, 500, 100):
        answer = sidecar.post(
            [{"kind": "metric", "name": "q", "value": i} for i in range(start, start + 100)]
        )
        assert answer.status == 200
    sidecar.send_udp(
        [
            json.dumps({"kind": "log", "level": "info", "message": f"u{i}"}).encode()
            for i in range(200)
        ]
    )
    sidecar.wait_for(lambda: sidecar.health()["received"] == 700, timeout=30)
    sidecar.wait_for(lambda: sidecar.health()["pending"] == 0, timeout=30)
    health = sidecar.health()
    text, content_type = scrape(sidecar)
    assert content_type.startswith("text/plain")
    found = samples(text)
    assert found[("astra_events_received_total", (("transport", "http"),))] == 500
    assert found[("astra_events_received_total", (("transport", "udp"),))] == 200
    assert found[("astra_events_published_total", ())] == health["published"]
    posted = sum(value for (name, _), value in found.items() if name == "astra_posted_events_total")
    assert posted == health["posted_events"]
    stored = sum(
        value
        for (name, labels), value in found.items()
        if name == "astra_posts_total" and ("outcome", "stored") in labels
    )
    assert stored == health["posts"] > 0
    assert found[("astra_events_pending", (("channel", "performance"),))] == 0
    assert found[("astra_build_info", (("version", health["version"]),))] == 1
    assert ("astra_process_resident_memory_bytes", ()) in found
    latency_count = found[("astra_delivery_latency_seconds_count", (("channel", "performance"),))]
    assert latency_count >= 500
    assert found[("astra_last_post_timestamp_seconds", (("channel", "performance"),))] > 0
    runs = {labels for (name, labels) in found if name == "astra_collector_runs_total"}
    assert (("collector", "health"),) in runs
    assert sidecar.stop() == 0
    discord.assert_no_violations()


def test_metrics_speak_openmetrics_when_the_scraper_asks(launch: Launch) -> None:
    """An OpenMetrics Accept header gets OpenMetrics, which its own parser reads to the end."""
    sidecar = launch()
    text, content_type = scrape(sidecar, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n")
    # prometheus_client's OpenMetrics parser is not annotated (its Prometheus one is).
    names = {family.name for family in openmetrics_families(text)}  # type: ignore[no-untyped-call]
    assert {"astra_events_received", "astra_posts", "astra_build"} <= names
    assert sidecar.stop() == 0


def test_healthz_carries_the_typed_snapshot_beside_its_documented_keys(launch: Launch) -> None:
    """/healthz keeps its keys and adds every stage's statistics under ``statistics``."""
    sidecar = launch()
    sidecar.post({"kind": "metric", "name": "q", "value": 1})
    health = sidecar.health()
    for key in ("status", "version", "uptime_s", "pending", "published", "channels", "received"):
        assert key in health
    stats = health["statistics"]
    assert set(stats["channels"]) == {"analytics", "diagnostics", "logs", "performance"}
    assert stats["http"]["received"] == health["received"] == 1
    assert stats["bus"]["max_events"] == 200_000
    assert {c["name"] for c in stats["collectors"]} >= {"system", "health", "report"}
    assert sidecar.stop() == 0


def test_top_once_shows_the_four_channels_with_real_figures(
    discord: FakeDiscord, launch: Launch
) -> None:
    """``astra top --once`` prints one frame: ingest, each channel's posted events, collectors."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST)
    answer = sidecar.post(
        [{"kind": "log", "level": "error", "message": f"e{i}"} for i in range(42)]
    )
    assert answer.status == 200
    sidecar.wait_for(lambda: len(discord.all_events(ids["logs"])) >= 42, timeout=30)
    result = run_cli("top", "--once", "--url", sidecar.base_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("astra ")
    cells = [line.split() for line in lines if line.strip()]
    ingest = {row[0]: row for row in cells if row[0] in ("http", "udp")}
    channels = {row[0]: row for row in cells if len(row) > 1 and row[1] in ("discord", "preview")}
    collectors = {row[0] for row in cells if len(row) > 1 and row[1].endswith("s")}
    assert ingest["http"][1] == "42"
    assert set(channels) == {"analytics", "diagnostics", "logs", "performance"}
    assert all(row[1] == "discord" for row in channels.values())
    assert channels["logs"][3] == "42", "the logs row shows its 42 posted events"
    assert {"health", "report", "system"} <= collectors
    assert sidecar.stop() == 0


def test_top_against_nothing_is_a_one_line_error() -> None:
    """With no sidecar listening, ``astra top`` says so in one line and exits 2."""
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli("top", "--once", "--url", url)
    assert result.returncode == 2
    assert result.stderr == f"astra: no sidecar at {url}: connection refused\n"
    assert result.stdout == ""
