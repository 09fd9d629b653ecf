"""End to end: the real CLI posts to a strict fake Discord over real sockets."""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Launch, provisioned_channels, webhook_channels
from tests.fake_discord import FakeDiscord
from tests.sidecar import Sidecar

FAST = "[flush]\ninterval = 0.5\ncritical_delay = 0.2\n"


def posted_ids(discord: FakeDiscord, channel_id: int) -> list[str]:
    """The ids of the events posted to ``channel_id``, in posting order."""
    return [str(e["id"]) for e in discord.all_events(channel_id)]


def all_posted(discord: FakeDiscord, ids: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    """Every event posted so far, by channel name."""
    return {name: discord.all_events(cid) for name, cid in ids.items()}


def send_http_batches(sidecar: Sidecar, events: list[dict[str, Any]], size: int = 2000) -> None:
    """POST ``events`` in batches of ``size``; every batch must be accepted whole."""
    for start in range(0, len(events), size):
        answer = sidecar.post(events[start : start + size])
        assert answer.status == 200 and not answer.body["rejected"], answer


def mixed_events(prefix: str, count: int) -> list[dict[str, Any]]:
    """``count`` events cycling through five kinds (see EXPECTED_CHANNEL), ids ``prefix-i``."""
    kinds: list[Callable[[int], dict[str, Any]]] = [
        lambda i: {
            "kind": "command",
            "name": f"cmd{i % 7}",
            "duration_ms": i % 90,
            "guild_id": i % 5,
        },
        lambda i: {"kind": "message", "guild_id": i % 11, "author_id": i % 97, "length": i % 300},
        lambda i: {"kind": "log", "level": "info", "message": f"tick {i}", "logger": "bot"},
        lambda i: {"kind": "metric", "name": "queue", "value": i, "tags": {"shard": i % 2}},
        lambda i: {"kind": "command", "name": "vote", "ok": False, "error": f"KeyError {i}"},
    ]
    return [{**kinds[i % len(kinds)](i), "id": f"{prefix}-{i}"} for i in range(count)]


EXPECTED_CHANNEL = {0: "analytics", 1: "analytics", 2: "logs", 3: "performance", 4: "logs"}


def test_burst_over_http_and_udp_all_arrive_in_the_right_channels(
    discord: FakeDiscord, launch: Launch
) -> None:
    """30,000 events over HTTP and UDP each arrive once, in their channel, over 100 to a post."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST)
    http_events = mixed_events("h", 20_000)
    send_http_batches(sidecar, http_events)
    udp_events = mixed_events("u", 10_000)
    datagrams = []
    for start in range(0, len(udp_events), 40):
        chunk = udp_events[start : start + 40]
        datagrams.append(b"\n".join(json.dumps(e).encode() for e in chunk))
    sidecar.send_udp(datagrams)
    expected = {e["id"]: EXPECTED_CHANNEL[i % 5] for i, e in enumerate(http_events)}
    expected.update({e["id"]: EXPECTED_CHANNEL[i % 5] for i, e in enumerate(udp_events)})

    def arrived() -> int:
        return sum(len(v) for v in all_posted(discord, ids).values())

    sidecar.wait_for(lambda: arrived() >= len(expected), timeout=90)
    assert sidecar.stop() == 0
    seen: Counter[str] = Counter()
    for name, events in all_posted(discord, ids).items():
        for event in events:
            if event["id"] in expected:
                assert expected[event["id"]] == name, event
            seen[event["id"]] += 1
    assert all(seen[i] == 1 for i in expected), "an event was lost or posted twice"
    discord.assert_no_violations()
    assert discord.channel_429s == 0
    # Events per request: the burst is batched, not posted one by one.
    executes = [r for r in discord.requests if "/webhooks/" in r.path and r.method == "POST"]
    assert len(expected) / len(executes) > 100


def test_attachment_is_named_by_seq_and_holds_whole_events(
    discord: FakeDiscord, launch: Launch
) -> None:
    """A window's attachment is named by the run and the channel's event numbers, and holds
    each event whole."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST)
    sidecar.post([{"kind": "guild", "action": "join", "guild_id": 77, "name": "Cats", "id": "g1"}])
    sidecar.wait_for(lambda: "g1" in posted_ids(discord, ids["analytics"]), timeout=30)
    sidecar.stop()
    message = next(m for m in discord.messages(ids["analytics"]) if m.files)
    ((filename, _),) = message.files
    events = message.jsonl_events()
    assert re.fullmatch(rf"events-analytics-[0-9a-f]{{10}}-1-{len(events)}\.jsonl\.gz", filename)
    guild = next(e for e in events if e["id"] == "g1")
    assert guild["kind"] == "guild" and guild["name"] == "Cats" and guild["guild_id"] == 77
    assert isinstance(guild["ts"], float) and guild["seq"] > 0
    assert message.payload["allowed_mentions"] == {"parse": []}
    embed = message.embeds[0]
    assert "analytics" in embed["title"]
    assert "guild join" in json.dumps(embed)


@pytest.mark.slow
def test_faults_lose_nothing_and_reorder_nothing(discord: FakeDiscord, launch: Launch) -> None:
    """5xx answers, connection resets and an outage lose, duplicate and reorder no event."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST)
    sent: list[str] = []
    for round_ in range(6):
        if round_ == 1:
            discord.fail_next(3, status=500)
        if round_ == 2:
            discord.reset_next(2)
        if round_ == 3:
            discord.fail_next(2, status=502)
        if round_ == 4:
            discord.outage(3.0)
        batch: list[dict[str, Any]] = [
            {"kind": "metric", "name": "round", "value": round_, "id": f"r{round_}-{i}"}
            for i in range(500)
        ]
        send_http_batches(sidecar, batch)
        sent += [e["id"] for e in batch]
        expected = set(sent)
        sidecar.wait_for(
            lambda: expected <= set(posted_ids(discord, ids["performance"])),  # noqa: B023
            timeout=60,
        )
    assert sidecar.stop() == 0
    got = [i for i in posted_ids(discord, ids["performance"]) if i.startswith("r")]
    assert got == sent, "events lost, duplicated or reordered"
    seqs = [e["seq"] for e in discord.all_events(ids["performance"])]
    assert seqs == sorted(seqs)
    discord.assert_no_violations()
    assert "retrying" in sidecar.stderr


def test_sigterm_drains_every_window_and_exits_zero(discord: FakeDiscord, launch: Launch) -> None:
    """SIGTERM posts every open window, announces the stop, and exits 0."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + "[flush]\ninterval = 300\n")
    events = mixed_events("d", 3000)
    send_http_batches(sidecar, events, size=1000)
    assert all(not discord.messages(cid) for cid in ids.values())
    assert sidecar.stop(signal.SIGTERM) == 0
    got = {e["id"] for events_ in all_posted(discord, ids).values() for e in events_}
    assert {e["id"] for e in events} <= got
    stopping = [e for e in discord.all_events(ids["diagnostics"]) if e.get("action") == "stopping"]
    assert stopping, "the stop is itself an event on the diagnostics channel"
    assert "not delivered" not in sidecar.stderr
    discord.assert_no_violations()


def test_sigint_also_drains(discord: FakeDiscord, launch: Launch) -> None:
    """SIGINT drains the open windows as SIGTERM does."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + "[flush]\ninterval = 300\n")
    sidecar.post({"kind": "latency", "ms": 12.5, "id": "lat"})
    assert sidecar.stop(signal.SIGINT) == 0
    assert "lat" in posted_ids(discord, ids["performance"])


def test_shutdown_deadline_counts_what_could_not_be_delivered(
    discord: FakeDiscord, launch: Launch
) -> None:
    """With Discord down, the stop ends at its deadline and counts what was not delivered."""
    body, _ = webhook_channels(discord)
    sidecar = launch(body + "[flush]\ninterval = 300\n[shutdown]\ndeadline = 1.5\n")
    discord.outage(120.0)
    send_http_batches(sidecar, mixed_events("x", 500))
    assert sidecar.stop() == 0
    match = re.search(r"([\d,]+) events were not delivered", sidecar.stderr)
    assert match, sidecar.stderr
    assert int(match.group(1).replace(",", "")) >= 500


def test_critical_error_is_posted_without_waiting_for_the_interval(
    discord: FakeDiscord, launch: Launch
) -> None:
    """Critical events go out at once, in one post with the open window, not after the interval."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + "[flush]\ninterval = 600\n")
    sidecar.post({"kind": "log", "level": "warning", "message": "slow shard", "id": "w1"})
    sidecar.post({"kind": "error", "severity": "critical", "message": "db down", "id": "c1"})
    sidecar.post({"kind": "log", "level": "critical", "message": "db still down", "id": "c2"})
    # The interval is ten minutes; these arrive while the sidecar runs.
    sidecar.wait_for(lambda: {"c1", "c2"} <= set(posted_ids(discord, ids["logs"])), timeout=20)
    logs_messages = discord.messages(ids["logs"])
    assert len(logs_messages) == 1, "critical events coalesce into one post"
    assert "w1" in posted_ids(discord, ids["logs"]), "the open window goes out with them"
    assert not discord.messages(ids["analytics"])
    sidecar.stop()


def test_mentions_never_ping_and_secrets_never_show(discord: FakeDiscord, launch: Launch) -> None:
    """Posts ping no one; tokens, passwords and webhook URLs show neither there nor in output."""
    body, ids = webhook_channels(discord)
    body = body.replace(
        f'api_base = "{discord.api_base}"',
        f'api_base = "{discord.api_base}"\ntoken = "{discord.bot_token}"',
    )
    hooks = [discord.webhooks(cid)[0] for cid in ids.values()]
    sidecar = launch(body + FAST)
    foreign = (
        "https://canary.discord.com/api/webhooks/123456789012345678/abcdefABCDEF-_0123456789xyz"
    )
    nasty = [
        {
            "kind": "error",
            "type": "RuntimeError",
            "message": "@everyone @here <@1234> <@&5678> hi",
            "id": "m1",
        },
        {
            "kind": "log",
            "level": "error",
            "message": f"token leaked: {discord.bot_token}",
            "id": "s1",
        },
        {"kind": "log", "level": "error", "message": f"posting to {hooks[0].url}", "id": "s2"},
        {"kind": "log", "level": "warning", "message": f"other hook {foreign}", "id": "s3"},
        {
            "kind": "log",
            "level": "warning",
            "message": "Authorization: Bearer abcdefghijklmnop1234",
            "id": "s4",
        },
        {
            "kind": "log",
            "level": "warning",
            "message": "connect password=hunter2 user=bob",
            "id": "s5",
        },
        {
            "kind": "metric",
            "name": "x",
            "value": 1,
            "tags": {"api_key": "zzzz-secret-zzzz"},
            "id": "s6",
        },
        {
            "kind": "command",
            "name": "@everyone",
            "ok": False,
            "error": "**bold** `code`",
            "id": "m2",
        },
    ]
    sidecar.post(nasty)
    sidecar.wait_for(
        lambda: {"m1", "s5", "m2"} <= set(posted_ids(discord, ids["logs"])), timeout=30
    )
    sidecar.stop()
    secrets = [
        discord.bot_token,
        "hunter2",
        "abcdefghijklmnop1234",
        "zzzz-secret-zzzz",
        "abcdefABCDEF-_0123456789xyz",
        *(h.token for h in hooks),
    ]
    # Everything posted: request bodies (query and headers too) and the gunzipped attachments.
    # The bot token belongs in one place only: the Authorization header of bot API calls.
    assert all("/channels/" in r.path for r in discord.requests if "Authorization" in r.headers)
    posted = [
        f"{r.query} { ({k: v for k, v in r.headers.items() if k != 'Authorization'}) } "
        f"{r.body.decode('utf-8', 'replace')}"
        for r in discord.requests
    ]
    posted += [json.dumps(m.jsonl_events()) for m in discord.all_messages()]
    for text in posted:
        for secret in secrets:
            assert secret not in text, f"secret {secret[:6]}… posted"
    for secret in secrets:
        assert secret not in sidecar.stderr and secret not in sidecar.stdout
    embeds_text = json.dumps([m.embeds for m in discord.messages(ids["logs"])], ensure_ascii=False)
    assert "@everyone" not in embeds_text and "@here" not in embeds_text
    assert "<@1234>" not in embeds_text and "<@&5678>" not in embeds_text
    assert "[redacted]" in embeds_text
    discord.assert_no_violations()


def test_pasted_webhook_urls_are_rewritten_to_the_versioned_api(
    discord: FakeDiscord, launch: Launch
) -> None:
    """Webhook URLs pasted from Discord are used through /api/v10, with a DiscordBot user agent."""
    body, ids = webhook_channels(discord, pasted=True)
    sidecar = launch(body + FAST)
    sidecar.post({"kind": "voice", "action": "join", "guild_id": 1, "user_id": 2, "id": "v1"})
    sidecar.wait_for(lambda: "v1" in posted_ids(discord, ids["analytics"]), timeout=30)
    sidecar.stop()
    for request in discord.requests:
        assert request.path.startswith("/api/v10/"), request.path
        assert request.headers["User-Agent"].startswith("DiscordBot (")
    discord.assert_no_violations()


def test_webhooks_are_provisioned_once_and_reused_after_restart(
    discord: FakeDiscord, launch: Launch
) -> None:
    """With a bot token, webhooks are created on first use, reported, and reused after a restart."""
    body, ids = provisioned_channels(discord)
    first = launch(body + FAST)
    first.post(
        [
            {"kind": "message", "id": "a1"},
            {"kind": "log", "level": "error", "message": "x", "id": "l1"},
        ]
    )
    first.wait_for(lambda: "a1" in posted_ids(discord, ids["analytics"]), timeout=30)
    first.wait_for(lambda: "l1" in posted_ids(discord, ids["logs"]), timeout=30)
    assert first.stop() == 0
    created = discord.webhooks_created
    assert created == 3  # analytics, logs and diagnostics posted; performance had nothing
    second = launch(body + FAST)
    second.post(
        [
            {"kind": "message", "id": "a2"},
            {"kind": "log", "level": "error", "message": "y", "id": "l2"},
        ]
    )
    second.wait_for(lambda: "a2" in posted_ids(discord, ids["analytics"]), timeout=30)
    assert second.stop() == 0
    assert discord.webhooks_created == created, "a restart must not create new webhooks"
    assert "webhook reused" in second.stderr
    provisioned = [
        e
        for e in discord.all_events(ids["diagnostics"])
        if e.get("action", "").startswith("webhook_")
    ]
    assert provisioned, "provisioning is reported on the diagnostics channel"
    discord.assert_no_violations()


def test_deleted_webhook_is_reported_and_provisioned_again(
    discord: FakeDiscord, launch: Launch
) -> None:
    """A deleted webhook is reported without its token and replaced by a new one."""
    body, ids = provisioned_channels(discord)
    sidecar = launch(body + FAST)
    sidecar.post({"kind": "message", "id": "before"})
    sidecar.wait_for(lambda: "before" in posted_ids(discord, ids["analytics"]), timeout=30)
    (hook,) = discord.webhooks(ids["analytics"])
    discord.delete_webhook(hook.id)
    sidecar.post({"kind": "message", "id": "after"})
    sidecar.wait_for(lambda: "after" in posted_ids(discord, ids["analytics"]), timeout=30)
    sidecar.stop()
    assert "is gone" in sidecar.stderr
    assert hook.token not in sidecar.stderr
    discord.assert_no_violations()


def test_deleted_webhook_without_token_falls_back_to_the_terminal(
    discord: FakeDiscord, launch: Launch
) -> None:
    """Without a bot token, a deleted webhook's channel falls back to the terminal preview."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST)
    sidecar.post({"kind": "message", "id": "before"})
    sidecar.wait_for(lambda: "before" in posted_ids(discord, ids["analytics"]), timeout=30)
    (hook,) = discord.webhooks(ids["analytics"])
    discord.delete_webhook(hook.id)
    sidecar.post({"kind": "command", "name": "after_delete", "id": "after"})
    sidecar.wait_for(lambda: sidecar.health()["channels"]["analytics"] == "preview", timeout=30)
    sidecar.stop()
    assert "is gone" in sidecar.stderr and "previewing" in sidecar.stderr
    assert "#analytics" in sidecar.stdout and "after_delete" in sidecar.stdout
    assert hook.token not in sidecar.stderr
    discord.assert_no_violations()


def test_rate_limit_headers_and_429s_are_obeyed(launch: Launch) -> None:
    """Bucket headers and injected 429s are waited out: no 429 beyond the two injected ones."""
    with FakeDiscord(bucket_limit=2, bucket_window=1.0) as discord:
        body, ids = webhook_channels(discord)
        sidecar = launch(body + "[flush]\ninterval = 0.1\n")
        sent: list[str] = []
        discord.ratelimit_next(2, retry_after=0.7)
        for round_ in range(12):
            batch: list[dict[str, Any]] = [
                {"kind": "latency", "ms": round_, "id": f"t{round_}-{i}"} for i in range(20)
            ]
            send_http_batches(sidecar, batch)
            sent += [e["id"] for e in batch]
        expected = set(sent)
        sidecar.wait_for(
            lambda: expected <= set(posted_ids(discord, ids["performance"])),
            timeout=60,
        )
        sidecar.stop()
        discord.assert_no_violations()
        assert sum(1 for r in discord.requests if r.status == 429) == 2  # only the injected ones


def test_cloudflare_ban_backs_off_instead_of_hammering(
    discord: FakeDiscord, launch: Launch
) -> None:
    """After a Cloudflare ban nothing more is posted, and what was left undelivered is counted."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST + "[shutdown]\ndeadline = 1\n")
    sidecar.post({"kind": "metric", "name": "m", "value": 1, "id": "b1"})
    sidecar.wait_for(lambda: "b1" in posted_ids(discord, ids["performance"]), timeout=20)
    sidecar.wait_for(lambda: len(discord.messages(ids["diagnostics"])) == 1, timeout=20)
    discord.ban_next(1)
    sidecar.post({"kind": "metric", "name": "m", "value": 2, "id": "b2"})
    sidecar.wait_for(lambda: any(r.status == 429 for r in discord.requests), timeout=20)
    sidecar.stop()
    statuses = [r.status for r in discord.requests if r.method == "POST"]
    assert statuses[-1] == 429, "after a ban nothing more is sent for a while"
    match = re.search(r"([\d,]+) events were not delivered", sidecar.stderr)
    assert match and int(match.group(1)) >= 1, sidecar.stderr


def test_oversized_text_is_cut_to_discord_limits(discord: FakeDiscord, launch: Launch) -> None:
    """Huge names, messages and tracebacks are cut so that every post is within Discord's limits."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST)
    huge = "x" * 60_000
    events: list[dict[str, Any]] = []
    for i in range(300):
        events.append(
            {
                "kind": "error",
                "type": f"E{i}" + "T" * 150,
                "message": f"{i} {huge}",
                "traceback": "t" * 60_000,
                "severity": "critical" if i == 3 else "error",
            }
        )
        events.append({"kind": "command", "name": f"c{i}" + "n" * 180, "duration_ms": i})
        events.append({"kind": "metric", "name": f"m{i}" + "m" * 180, "value": i, "unit": "ms"})
        events.append({"kind": "lifecycle", "action": "gateway." + "x" * 52, "detail": huge[:3000]})
    send_http_batches(sidecar, events, size=20)
    sidecar.wait_for(
        lambda: all(
            len(discord.all_events(ids[n])) >= 300 for n in ("logs", "analytics", "performance")
        ),
        timeout=60,
    )
    sidecar.stop()
    discord.assert_no_violations()
    assert not [r for r in discord.requests if r.status == 400]


@pytest.mark.slow
def test_memory_is_bounded_during_an_outage_and_drops_are_reported(
    discord: FakeDiscord, launch: Launch
) -> None:
    """In an outage the buffer stays bounded, the oldest events go, and the drops are reported."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST + "[buffer]\nmax_events = 1000\n")
    sidecar.wait_for(lambda: len(discord.messages(ids["diagnostics"])) >= 1, timeout=20)
    discord.outage(6.0)
    events = [{"kind": "metric", "name": "load", "value": i, "id": f"o{i}"} for i in range(3000)]
    # In one request, so the whole flood is in before a window closes, however slow the
    # machine. Sent in parts, a window closing between two of them would go out with the
    # older events; events being delivered are never dropped, so the newer ones would go.
    send_http_batches(sidecar, events, size=len(events))
    assert sidecar.health()["pending"] <= 1000
    sidecar.wait_for(lambda: "o2999" in posted_ids(discord, ids["performance"]), timeout=60)
    assert sidecar.stop() == 0
    arrived = {i for i in posted_ids(discord, ids["performance"]) if i.startswith("o")}
    descriptions = " ".join(
        e.get("description", "") for m in discord.messages(ids["performance"]) for e in m.embeds
    )
    match = re.search(r"\*\*([\d,]+) events dropped\*\*", descriptions)
    assert match, descriptions
    dropped = int(match.group(1).replace(",", ""))
    assert dropped > 0 and len(arrived) + dropped == 3000
    newest = {f"o{i}" for i in range(2000, 3000)}
    assert newest <= arrived, "the oldest are dropped, never the newest"
    reports = [e for e in discord.all_events(ids["diagnostics"]) if e["kind"] == "pipeline"]
    assert sum(r["dropped_buffer"] for r in reports) == dropped
    discord.assert_no_violations()


def test_a_timed_out_post_is_retried_and_ids_allow_deduplication(
    discord: FakeDiscord, launch: Launch
) -> None:
    """A post that times out is retried, and a duplicate it causes carries the same event id."""
    body, ids = webhook_channels(discord)
    body = body.replace("[discord]\n", "[discord]\ntimeout = 1\n")
    sidecar = launch(body + FAST)
    sidecar.wait_for(lambda: len(discord.messages(ids["diagnostics"])) >= 1, timeout=20)
    discord.delay_next(1, 2.5)
    sidecar.post([{"kind": "latency", "ms": 5, "id": "slow-1"}])
    sidecar.wait_for(lambda: posted_ids(discord, ids["performance"]).count("slow-1") >= 1, 30)
    sidecar.post([{"kind": "latency", "ms": 6, "id": "after-1"}])
    sidecar.wait_for(lambda: "after-1" in posted_ids(discord, ids["performance"]), timeout=30)
    assert sidecar.stop() == 0
    got = posted_ids(discord, ids["performance"])
    # Discord stored the slow post although astra gave up waiting: the retry duplicates it,
    # and the event id is what tells a reader the two are one event.
    assert 1 <= got.count("slow-1") <= 2
    assert "retrying" in sidecar.stderr
    discord.assert_no_violations()


def test_a_second_signal_cuts_the_drain_short_and_says_what_was_left(
    discord: FakeDiscord, launch: Launch
) -> None:
    """A second SIGINT during the drain stops at once and says how many events were left."""
    body, _ = webhook_channels(discord)
    sidecar = launch(body + "[flush]\ninterval = 300\n[shutdown]\ndeadline = 120\n")
    discord.outage(300.0)
    send_http_batches(sidecar, mixed_events("s", 200))
    sidecar.send_signal(signal.SIGINT)
    sidecar.wait_for(lambda: any(r.status == 503 for r in discord.requests), timeout=20)
    time.sleep(1.2)  # a signal within a second of the first counts as the same stop
    assert sidecar.stop(signal.SIGINT, timeout=20) == 0
    assert "second SIGINT" in sidecar.stderr and "events were not delivered" in sidecar.stderr
    assert "Traceback" not in sidecar.stderr


def test_events_emitted_while_stopping_are_delivered_too(
    discord: FakeDiscord, launch: Launch
) -> None:
    """Events astra emits while stopping (webhook creation) are delivered too."""
    body, ids = provisioned_channels(discord)
    sidecar = launch(body + "[flush]\ninterval = 300\n")
    sidecar.post({"kind": "log", "level": "error", "message": "late", "id": "late"})
    assert sidecar.stop() == 0
    assert "late" in posted_ids(discord, ids["logs"])
    created = [e for e in discord.all_events(ids["diagnostics"]) if e["kind"] == "lifecycle"]
    assert {"webhook_created"} <= {e["action"] for e in created}
    assert "not delivered" not in sidecar.stderr
    discord.assert_no_violations()


def test_the_per_channel_budget_is_kept_without_any_header_saying_so(launch: Launch) -> None:
    """Discord's per-channel webhook limit is in no header: astra keeps it with its own ledger."""
    with FakeDiscord(channel_limit=4, channel_window=60.0) as discord:
        body, ids = webhook_channels(discord)
        body = body.replace("[discord]\n", "[discord]\nchannel_posts_per_minute = 4\n")
        sidecar = launch(body + "[flush]\ninterval = 0.1\n[shutdown]\ndeadline = 1\n")
        for i in range(8):
            sidecar.post({"kind": "metric", "name": "tick", "value": i, "id": f"k{i}"})
            time.sleep(0.15)  # let each event have its own window if the budget allowed it
        sidecar.wait_for(lambda: len(discord.messages(ids["performance"])) >= 4, timeout=20)
        assert sidecar.stop() == 0
        assert len(discord.messages(ids["performance"])) == 4
        assert discord.channel_429s == 0
        assert "events were not delivered" in sidecar.stderr
        discord.assert_no_violations()


def test_a_stop_delivered_twice_at_once_still_drains(discord: FakeDiscord, launch: Launch) -> None:
    """SIGINT twice at once, as ``timeout`` sends it to a process and its group, still drains."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + "[flush]\ninterval = 300\n")
    sidecar.post({"kind": "latency", "ms": 1, "id": "twice"})
    sidecar.send_signal(signal.SIGINT)
    sidecar.send_signal(signal.SIGINT)
    assert sidecar.stop(signal.SIGINT, timeout=30) == 0
    assert "twice" in posted_ids(discord, ids["performance"])
    assert "not delivered" not in sidecar.stderr
