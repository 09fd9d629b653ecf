"""Hostile and careless input through the real sidecar: floods, forgeries, long outages."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import Launch, webhook_channels
from tests.fake_discord import FakeDiscord
from tests.sidecar import Sidecar

FAST = "[flush]\ninterval = 0.5\ncritical_delay = 0.2\n"


def events_of(discord: FakeDiscord, channel_id: int, kind: str) -> list[dict[str, Any]]:
    """Every posted event of one kind in a channel, from the attachments."""
    return [e for e in discord.all_events(channel_id) if e["kind"] == kind]


def embed_text(discord: FakeDiscord, channel_id: int) -> str:
    """All embed text posted to a channel, for asserting what a reader sees."""
    parts: list[str] = []
    for message in discord.messages(channel_id):
        for embed in message.embeds:
            parts += [embed.get("title", ""), embed.get("description", "")]
            for item in embed.get("fields", []):
                parts += [item["name"], item["value"]]
    return "\n".join(parts)


def post_ok(sidecar: Sidecar, events: list[dict[str, Any]]) -> None:
    """POST a batch that must be accepted whole."""
    answer = sidecar.post(events)
    assert answer.status == 200 and not answer.body["rejected"], answer


@pytest.mark.slow
def test_a_flood_into_one_channel_does_not_evict_another_channels_events(
    discord: FakeDiscord, launch: Launch
) -> None:
    """Junk flooding #analytics during an outage leaves every real #logs event to arrive."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST + "[buffer]\nmax_events = 1000\n")
    sidecar.wait_for(lambda: len(discord.messages(ids["diagnostics"])) >= 1, timeout=20)
    discord.outage(8.0)
    real = [
        {"kind": "log", "level": "error", "message": f"real {i}", "id": f"r{i}"} for i in range(18)
    ]
    post_ok(sidecar, real)
    for start in range(0, 26_000, 2000):
        post_ok(sidecar, [{"kind": "message", "id": f"j{start + i}"} for i in range(2000)])
    assert sidecar.health()["pending"] <= 1000
    sidecar.wait_for(
        lambda: {f"r{i}" for i in range(18)} <= {e["id"] for e in discord.all_events(ids["logs"])},
        timeout=60,
    )
    assert sidecar.stop() == 0
    text = embed_text(discord, ids["analytics"])
    assert "events dropped" in text, "the flooded channel says it lost events"
    assert "events dropped" not in embed_text(discord, ids["logs"])
    discord.assert_no_violations()


@pytest.mark.slow
def test_drop_counts_survive_a_long_outage_in_cumulative_reports(
    discord: FakeDiscord, launch: Launch
) -> None:
    """Every drop of a long outage is in the pipeline totals, though the bound is tiny."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST + "[buffer]\nmax_events = 100\n")
    sidecar.wait_for(lambda: len(discord.messages(ids["diagnostics"])) >= 1, timeout=20)
    discord.outage(6.0)
    for start in range(0, 20_000, 1000):
        post_ok(sidecar, [{"kind": "metric", "name": "q", "value": start + i} for i in range(1000)])
    dropped = sidecar.health()["dropped_buffer"]
    assert dropped >= 19_000
    # Once Discord is back, everything still held goes out.
    sidecar.wait_for(lambda: sidecar.health()["pending"] == 0, timeout=60)
    assert sidecar.stop() == 0
    reports = events_of(discord, ids["diagnostics"], "pipeline")
    assert reports, "the pipeline's own report was not evicted"
    assert reports[-1]["dropped_buffer_total"] == dropped
    assert reports[-1]["dropped_by_channel"] == {"performance": dropped}
    assert sum(r["dropped_buffer"] for r in reports) == dropped
    assert "Lost since start" in embed_text(discord, ids["diagnostics"])
    discord.assert_no_violations()


def test_astras_own_lifecycle_lines_cannot_be_forged_over_ingest(
    discord: FakeDiscord, launch: Launch
) -> None:
    """A forged "stopped" line is refused; the bot's gateway lines still arrive as the bot's."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST)
    forged = sidecar.post(
        [
            {"kind": "lifecycle", "action": "stopped", "detail": "astra 0.1.0"},
            {"kind": "lifecycle", "action": "webhook_lost", "channel": "logs"},
        ]
    )
    assert forged.status == 400
    assert [r["error"] for r in forged.body["rejected"]] == [
        "kind: 'lifecycle' is reserved for astra itself (a bot may only send 'gateway.*' actions)"
    ] * 2
    ready = {"kind": "lifecycle", "action": "gateway.ready", "detail": "shard 0"}
    gateway = sidecar.post({**ready, "source": "shardhost1"})
    assert gateway.status == 200 and gateway.body["accepted"] == 1
    sidecar.wait_for(lambda: "gateway.ready" in embed_text(discord, ids["diagnostics"]), timeout=20)
    assert sidecar.stop() == 0
    actions = [e["action"] for e in events_of(discord, ids["diagnostics"], "lifecycle")]
    assert "gateway.ready" in actions and "webhook_lost" not in actions
    assert actions.count("stopped") == 0
    fields = [
        f
        for m in discord.messages(ids["diagnostics"])
        for e in m.embeds
        for f in e.get("fields", [])
    ]
    bot_lines = "\n".join(f["value"] for f in fields if f["name"] == "Bot gateway")
    own_lines = "\n".join(f["value"] for f in fields if f["name"] == "Lifecycle")
    assert "gateway.ready" in bot_lines and "(shardhost1)" in bot_lines
    assert "gateway" not in own_lines and "**started**" in own_lines
    discord.assert_no_violations()


@pytest.mark.slow
def test_a_critical_event_every_second_gets_a_bounded_number_of_posts(
    discord: FakeDiscord, launch: Launch
) -> None:
    """An outsider's stream of critical events closes at most the budgeted early windows."""
    body, ids = webhook_channels(discord)
    config = "[flush]\ninterval = 30\ncritical_delay = 0.1\ncritical_per_minute = 2\n"
    sidecar = launch(body + config)
    started = time.monotonic()
    for i in range(24):
        post_ok(sidecar, [{"kind": "error", "severity": "critical", "message": f"fake {i}"}])
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    posts = len(discord.messages(ids["logs"]))
    assert sidecar.stop() == 0
    # Two early windows, the regular ones that fell in the time taken, and none beyond.
    assert 1 <= posts <= 2 + int(elapsed // 30) + 1, posts
    assert len(events_of(discord, ids["logs"], "error")) == 24, "deferred, never lost"
    discord.assert_no_violations()
