"""End to end: posts into a thread, into a forum's thread of the day, and a forum misconfigured."""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from tests.conftest import Launch, provisioned_channels, webhook_channels
from tests.fake_discord import GUILD_FORUM, FakeDiscord

FAST = """
[flush]
interval = 0.3
[collectors.health]
interval = 0.5
"""


def log_event(text: str) -> dict[str, str]:
    """A warning log event for the logs channel."""
    return {"kind": "log", "level": "warning", "message": text}


def today(pattern: str = "{date} logs") -> str:
    """Today's thread name, the date in the default report time zone."""
    day = datetime.now(zoneinfo.ZoneInfo("Europe/Berlin")).date().isoformat()
    return pattern.format(date=day)


def test_thread_id_posts_into_that_thread(discord: FakeDiscord, launch: Launch) -> None:
    """With thread_id, every post of the channel lands in that thread."""
    body, ids = webhook_channels(discord)
    thread = discord.add_thread(ids["logs"], "astra logs")
    body = body.replace("[channels.logs]\n", f"[channels.logs]\nthread_id = {thread}\n")
    sidecar = launch(body + FAST)
    assert sidecar.post(log_event("into the thread")).status == 200
    sidecar.wait_for(lambda: discord.thread_messages(ids["logs"]))
    assert sidecar.stop() == 0
    discord.assert_no_violations()
    assert discord.messages(ids["logs"]) == []
    events = [e for m in discord.thread_messages(ids["logs"]) for e in m.jsonl_events()]
    assert {m.channel_id for m in discord.thread_messages(ids["logs"])} == {thread}
    assert any(e.get("message") == "into the thread" for e in events)


def test_forum_gets_the_day_s_thread_and_finds_it_after_a_restart(
    discord: FakeDiscord, launch: Launch
) -> None:
    """forum = true creates today's thread with the first post; a restart posts into it again."""
    body, ids = provisioned_channels(discord)
    forum = ids["logs"]
    discord.add_channel(forum, channel_type=GUILD_FORUM)
    body = body.replace(
        "[channels.logs]\n", '[channels.logs]\nforum = true\nthread_name = "{date} logs"\n'
    )
    for run in ("first run", "second run"):
        sidecar = launch(body + FAST)
        assert sidecar.post(log_event(run)).status == 200

        def arrived(text: str = run) -> bool:
            return any(
                e.get("message") == text
                for m in discord.thread_messages(forum)
                for e in m.jsonl_events()
            )

        sidecar.wait_for(arrived)
        assert sidecar.stop() == 0
    discord.assert_no_violations()
    threads = discord.threads(forum)
    assert list(threads) == [today()]
    assert {m.channel_id for m in discord.thread_messages(forum)} == {threads[today()]}
    assert discord.messages(forum) == []
    creating = [r for r in discord.requests if b'"thread_name"' in r.body]
    assert len(creating) == 1


def test_forum_thread_found_again_when_archived(discord: FakeDiscord, launch: Launch) -> None:
    """An archived thread of today is found among the archived ones, and unarchived by a post."""
    body, ids = provisioned_channels(discord)
    forum = ids["logs"]
    discord.add_channel(forum, channel_type=GUILD_FORUM)
    thread = discord.add_thread(forum, today("{date} logs"), archived=True)
    body = body.replace("[channels.logs]\n", "[channels.logs]\nforum = true\n")
    sidecar = launch(
        body.replace("forum = true\n", 'forum = true\nthread_name = "{date} logs"\n') + FAST
    )
    assert sidecar.post(log_event("archived")).status == 200
    sidecar.wait_for(lambda: discord.thread_messages(forum))
    assert sidecar.stop() == 0
    discord.assert_no_violations()
    assert discord.threads(forum) == {today(): thread}


def test_webhook_in_a_forum_without_forum_true_is_reported_once(
    discord: FakeDiscord, launch: Launch
) -> None:
    """A forum refusal (220001) is reported once, on stderr and the board, not per post."""
    body, ids = webhook_channels(discord)
    discord.add_channel(ids["logs"], channel_type=GUILD_FORUM)
    sidecar = launch(body + FAST)
    for n in range(3):
        assert sidecar.post(log_event(f"post {n}")).status == 200

    def on_board() -> bool:
        return any(
            "forum channel: set forum = true" in str(e.get("fields"))
            for m in discord.messages(ids["diagnostics"])
            for e in m.embeds
        )

    sidecar.wait_for(on_board)
    for n in range(3, 6):
        assert sidecar.post(log_event(f"post {n}")).status == 200
    sidecar.wait_for(lambda: sidecar.health()["channels"]["logs"] == "preview")
    assert sidecar.health()["undeliverable"] == 0  # shown in the terminal, not given up
    assert sidecar.stop() == 0
    discord.assert_no_violations()
    assert sidecar.stderr.count("set forum = true") == 1
    assert "#logs (preview" in sidecar.stdout
    (noted,) = [
        e
        for e in discord.all_events(ids["diagnostics"])
        if e["kind"] == "lifecycle" and e["action"] == "channel_misconfigured"
    ]
    assert (noted["channel"], noted["detail"]) == ("logs", "forum channel: set forum = true")
    assert [r for r in discord.refusals if "forum" in r] == [
        "400 Webhooks posted to forum channels must have a thread_name or thread_id "
        f"(forum {discord.webhooks(ids['logs'])[0].id})"
    ]


def test_deleted_forum_thread_is_started_again(discord: FakeDiscord, launch: Launch) -> None:
    """When today's thread is deleted, the next post starts a new one instead of failing."""
    body, ids = webhook_channels(discord)
    forum = ids["logs"]
    discord.add_channel(forum, channel_type=GUILD_FORUM)
    body = body.replace("[channels.logs]\n", "[channels.logs]\nforum = true\n")
    sidecar = launch(body + FAST)
    assert sidecar.post(log_event("before")).status == 200
    sidecar.wait_for(lambda: discord.thread_messages(forum))
    (first,) = discord.threads(forum).values()
    discord.delete_thread(first)
    assert sidecar.post(log_event("after")).status == 200

    def restarted() -> bool:
        return any(
            e.get("message") == "after"
            for m in discord.thread_messages(forum)
            for e in m.jsonl_events()
        )

    sidecar.wait_for(restarted)
    assert sidecar.stop() == 0
    discord.assert_no_violations()
    assert list(discord.threads(forum)) == [today("{date} logs")]
    assert discord.threads(forum)[today("{date} logs")] != first
    assert "today's thread is gone; starting a new one" in sidecar.stderr


def test_deleted_configured_thread_is_reported_and_posts_go_to_the_channel(
    discord: FakeDiscord, launch: Launch
) -> None:
    """A thread_id Discord no longer knows is reported on the board; posts go to the channel."""
    body, ids = webhook_channels(discord)
    thread = discord.add_thread(ids["logs"], "gone soon")
    discord.delete_thread(thread)
    body = body.replace("[channels.logs]\n", f"[channels.logs]\nthread_id = {thread}\n")
    sidecar = launch(body + FAST)
    assert sidecar.post(log_event("lost thread")).status == 200
    sidecar.wait_for(lambda: discord.messages(ids["logs"]))

    def on_board() -> bool:
        return any(
            f"thread {thread} not found: check thread\\\\_id" in str(e.get("fields"))
            for m in discord.messages(ids["diagnostics"])
            for e in m.embeds
        )

    sidecar.wait_for(on_board)
    assert sidecar.stop() == 0
    discord.assert_no_violations()
    assert sidecar.stderr.count(f"thread {thread} not found: check thread_id") == 1
