"""Proves that the fake serves channel history and CDN attachments the way Discord does."""

from __future__ import annotations

import time
from typing import Any

from tests.fake_discord import FakeDiscord, Webhook
from tests.test_fake_discord import Resp, call, jsonl_gz, multipart, ok

CHANNEL = 7001


def history(discord: FakeDiscord, channel: int = CHANNEL, query: str = "", **kwargs: Any) -> Resp:
    """GET /channels/{id}/messages with the bot token (unless ``headers`` says otherwise)."""
    headers = kwargs.pop("headers", {"Authorization": f"Bot {discord.bot_token}"})
    url = f"{discord.api_base}/channels/{channel}/messages" + (f"?{query}" if query else "")
    return call(url, "GET", headers=headers, **kwargs)


def post_batch(hook: Webhook, name: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Execute ``hook`` with one embed and a JSON Lines attachment; the stored message."""
    body, content_type = multipart(
        ok(content="", embeds=[{"title": "batch"}]), [("files[0]", name, jsonl_gz(events))]
    )
    resp = call(hook.url + "?wait=true", body=body, headers={"Content-Type": content_type})
    assert resp.status == 200, resp.body
    message: dict[str, Any] = resp.json()
    return message


def ids(resp: Resp) -> list[int]:
    """The message ids of a listing, as listed."""
    return [int(m["id"]) for m in resp.json()]


def test_history_pages_newest_first_with_before_and_after() -> None:
    """Listings come newest first; ``before`` pages back, ``after`` gives the oldest after it."""
    with FakeDiscord(bucket_limit=50) as discord:
        hook = discord.create_webhook(CHANNEL)
        posted = [int(call(hook.url + "?wait=true", payload=ok()).json()["id"]) for _ in range(7)]
        assert ids(history(discord)) == posted[::-1]
        assert ids(history(discord, query="limit=3")) == posted[:3:-1]
        assert ids(history(discord, query=f"before={posted[4]}&limit=3")) == posted[1:4][::-1]
        assert ids(history(discord, query=f"after={posted[1]}&limit=3")) == posted[2:5][::-1]
        assert ids(history(discord, query=f"after={posted[-1]}")) == []
        discord.assert_no_violations()


def test_history_refuses_limits_outside_one_to_a_hundred_and_two_anchors() -> None:
    """``limit`` outside 1..100 or two of before/after/around are Invalid Form Body."""
    with FakeDiscord() as discord:
        discord.add_channel(CHANNEL)
        for query in ("limit=0", "limit=101", "limit=x", "before=1&after=2"):
            resp = history(discord, query=query)
            assert resp.status == 400 and resp.json()["code"] == 50035, query
        assert len(discord.violations) == 4


def test_history_needs_the_bot_token_and_read_permissions() -> None:
    """No bot token is 401; a channel the bot cannot read is 403 Missing Access."""
    with FakeDiscord() as discord:
        discord.add_channel(CHANNEL, read_history=False)
        assert history(discord, headers={}).status == 401
        resp = history(discord)
        assert resp.status == 403 and resp.json()["code"] == 50001
        assert history(discord, channel=999).json()["code"] == 10003


def test_history_reads_have_their_own_bucket_with_real_headers() -> None:
    """Reads carry X-RateLimit headers; reading past Remaining 0 is a 429 and a violation."""
    with FakeDiscord(bucket_limit=2, bucket_window=5.0) as discord:
        discord.add_channel(CHANNEL)
        first = history(discord)
        assert first.headers["x-ratelimit-limit"] == "2"
        assert first.headers["x-ratelimit-remaining"] == "1"
        assert history(discord).headers["x-ratelimit-remaining"] == "0"
        limited = history(discord)
        assert limited.status == 429 and limited.json()["retry_after"] > 0
        assert any("ignored rate limit headers" in v for v in discord.violations)


def test_injected_read_failures_and_rate_limits() -> None:
    """``ratelimit_reads_next`` and ``fail_reads_next`` answer the next reads as told."""
    with FakeDiscord() as discord:
        discord.add_channel(CHANNEL)
        discord.fail_reads_next(1, 502)
        discord.ratelimit_reads_next(1, retry_after=0.2)
        limited = history(discord)
        assert limited.status == 429 and limited.headers["x-ratelimit-scope"] == "user"
        time.sleep(0.25)
        assert history(discord).status == 502
        assert history(discord).status == 200
        discord.assert_no_violations()


def test_without_the_message_content_intent_webhook_posts_list_empty() -> None:
    """Without the intent a listing has empty content, embeds and attachments; the webhook
    fetch of the same message has them."""
    with FakeDiscord(message_content_intent=False) as discord:
        hook = discord.create_webhook(CHANNEL)
        stored = post_batch(hook, "events-logs-r-1-1.jsonl.gz", [{"id": "a"}])
        (listed,) = history(discord).json()
        assert listed["id"] == stored["id"] and listed["webhook_id"] == str(hook.id)
        assert (listed["content"], listed["embeds"], listed["attachments"]) == ("", [], [])
        fetched = call(f"{hook.url}/messages/{stored['id']}", "GET").json()
        assert fetched["embeds"][0]["title"] == "batch"
        assert [a["filename"] for a in fetched["attachments"]] == ["events-logs-r-1-1.jsonl.gz"]
        discord.assert_no_violations()


def test_attachments_download_from_signed_cdn_links_only() -> None:
    """The listed CDN link serves the bytes; a tampered signature or deleted message is 404."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(CHANNEL)
        events = [{"id": "a"}, {"id": "b"}]
        post_batch(hook, "events-logs-r-1-2.jsonl.gz", events)
        (listed,) = history(discord).json()
        (attachment,) = listed["attachments"]
        url = attachment["url"]
        downloaded = call(url, "GET", user_agent=None)
        assert downloaded.status == 200 and downloaded.body == jsonl_gz(events)
        assert attachment["size"] == len(downloaded.body)
        tampered = url.replace("hm=", "hm=0")
        assert call(tampered, "GET", user_agent=None).status == 404
        assert call(url.split("?")[0], "GET", user_agent=None).status == 404
        discord.delete_message(int(listed["id"]))
        assert call(url, "GET", user_agent=None).status == 404
        discord.assert_no_violations()


def test_deleted_messages_and_foreign_authors_in_listings() -> None:
    """A deleted message is gone from listings and fetches; a person's post has no webhook_id."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(CHANNEL)
        kept = post_batch(hook, "events-logs-r-1-1.jsonl.gz", [{"id": "a"}])
        gone = post_batch(hook, "events-logs-r-2-2.jsonl.gz", [{"id": "b"}])
        person = discord.post_as_user(CHANNEL, "hi all")
        other_bot = discord.post_as_user(CHANNEL, "beep", bot=True)
        discord.delete_message(int(gone["id"]))
        listing = history(discord).json()
        assert [int(m["id"]) for m in listing] == [
            other_bot.message_id,
            person.message_id,
            int(kept["id"]),
        ]
        assert "webhook_id" not in listing[1] and listing[1]["author"]["bot"] is False
        assert listing[0]["author"]["bot"] is True and listing[1]["content"] == "hi all"
        assert call(f"{hook.url}/messages/{gone['id']}", "GET").status == 404
        assert [m.message_id for m in discord.messages(CHANNEL)] == [
            int(kept["id"]),
            person.message_id,
            other_bot.message_id,
        ]
