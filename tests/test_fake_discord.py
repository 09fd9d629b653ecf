"""Proves that tests/fake_discord.py enforces what it claims, over real sockets."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import math
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.fake_discord import FakeDiscord, MiB, Webhook

UA = "DiscordBot (https://github.com/astra/astra, 0.1.0)"
NO_MENTIONS: dict[str, list[str]] = {"parse": []}


@dataclass
class Resp:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    url: str,
    method: str = "POST",
    *,
    payload: Any = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    user_agent: str | None = UA,
    timeout: float = 10.0,
) -> Resp:
    """One request through http.client (which adds no User-Agent of its own)."""
    parts = urllib.parse.urlsplit(url)
    all_headers = dict(headers or {})
    if user_agent is not None:
        all_headers["User-Agent"] = user_agent
    if payload is not None:
        body = json.dumps(payload).encode()
        all_headers.setdefault("Content-Type", "application/json")
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        return Resp(
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            response.read(),
        )
    finally:
        conn.close()


def execute(hook: Webhook, payload: Any, *, wait: bool = True, **kwargs: Any) -> Resp:
    return call(hook.url + ("?wait=true" if wait else ""), payload=payload, **kwargs)


def ok(**extra: Any) -> dict[str, Any]:
    return {"content": "hello", "allowed_mentions": NO_MENTIONS, **extra}


def multipart(
    payload: dict[str, Any] | None, files: list[tuple[str, str, bytes]]
) -> tuple[bytes, str]:
    """Build multipart/form-data by hand: (part name, filename, data) per file."""
    boundary = "astra-test-boundary-7d1c"
    out = bytearray()
    if payload is not None:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="payload_json"\r\n'.encode()
        out += b"Content-Type: application/json\r\n\r\n" + json.dumps(payload).encode() + b"\r\n"
    for name, filename, data in files:
        out += (
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def jsonl_gz(events: list[dict[str, Any]]) -> bytes:
    return gzip.compress("".join(json.dumps(e) + "\n" for e in events).encode())


def error_at(tree: dict[str, Any], path: str) -> list[dict[str, str]]:
    node: Any = tree
    for part in path.split(".") if path else []:
        node = node[part]
    errors: list[dict[str, str]] = node["_errors"]
    return errors


# ------------------------------------------------------------------ happy path


def test_json_post_with_wait_returns_message_object() -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(111)
        assert hook.url == f"{discord.api_base}/webhooks/{hook.id}/{hook.token}"
        assert hook.discord_url == f"https://discord.com/api/webhooks/{hook.id}/{hook.token}"
        embed = {
            "title": "t",
            "description": "d",
            "color": 0x00FF00,
            "timestamp": "2026-11-22T10:00:00.000000+00:00",
        }
        resp = execute(hook, ok(embeds=[embed]))
        assert resp.status == 200
        assert resp.headers["via"] == "1.1 google"
        msg = resp.json()
        assert msg["channel_id"] == "111" and msg["webhook_id"] == str(hook.id)
        assert msg["content"] == "hello" and msg["embeds"][0]["title"] == "t"
        assert msg["attachments"] == [] and msg["timestamp"]
        stored = discord.messages(111)
        assert [m.message_id for m in stored] == [int(msg["id"])]
        assert stored[0].payload["embeds"] == [embed]
        assert stored[0].headers["User-Agent"] == UA
        got = call(hook.url, "GET").json()
        assert (got["id"], got["token"], got["type"]) == (str(hook.id), hook.token, 1)
        fetched = call(f"{hook.url}/messages/{msg['id']}", "GET")
        assert fetched.status == 200 and fetched.json()["id"] == msg["id"]
        discord.assert_no_violations()


def test_json_post_without_wait_answers_204() -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        resp = execute(hook, ok(), wait=False)
        assert resp.status == 204 and resp.body == b""
        assert len(discord.messages(1)) == 1
        discord.assert_no_violations()


def test_multipart_jsonl_gz_is_stored_and_readable() -> None:
    events = [{"id": "e1", "type": "on_ready"}, {"id": "e2", "type": "on_message"}]
    with FakeDiscord() as discord:
        hook = discord.create_webhook(5)
        body, content_type = multipart(
            {"content": "batch", "allowed_mentions": NO_MENTIONS},
            [("files[0]", "batch-1.jsonl.gz", jsonl_gz(events)), ("file", "notes.txt", b"x")],
        )
        resp = call(hook.url + "?wait=true", body=body, headers={"Content-Type": content_type})
        assert resp.status == 200, resp.body
        attachments = resp.json()["attachments"]
        assert [(a["filename"], a["size"]) for a in attachments] == [
            ("batch-1.jsonl.gz", len(jsonl_gz(events))),
            ("notes.txt", 1),
        ]
        assert all(a["id"] for a in attachments)
        (message,) = discord.messages(5)
        assert message.files[1] == ("notes.txt", b"x")
        assert message.jsonl_events() == events
        assert discord.all_events(5) == events
        discord.assert_no_violations()


def test_aiohttp_formdata_parts_are_understood() -> None:
    payload = json.dumps({"allowed_mentions": NO_MENTIONS})
    data = jsonl_gz([{"id": 1}])

    async def post(url: str, quote_fields: bool) -> int:
        form = aiohttp.FormData(quote_fields=quote_fields)
        form.add_field("payload_json", payload, content_type="application/json")
        form.add_field(
            "files[0]", data, filename="batch 1.jsonl.gz", content_type="application/gzip"
        )
        async with (
            aiohttp.ClientSession(headers={"User-Agent": UA}) as session,
            session.post(url, data=form) as resp,
        ):
            return resp.status

    with FakeDiscord() as discord:
        hook = discord.create_webhook(5)
        assert asyncio.run(post(hook.url, quote_fields=False)) == 204
        # aiohttp 3.14 leaves the part *name* alone but percent-escapes the
        # *filename* when quote_fields=True; Discord keeps it verbatim.
        assert asyncio.run(post(hook.url, quote_fields=True)) == 204
        names = [m.files[0][0] for m in discord.messages(5)]
        assert names == ["batch 1.jsonl.gz", "batch%201.jsonl.gz"]
        assert discord.all_events(5) == [{"id": 1}, {"id": 1}]
        discord.assert_no_violations()


def test_unrecognised_part_names_are_dropped_and_recorded() -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(5)
        body, content_type = multipart(ok(), [("files%5B0%5D", "a.jsonl.gz", jsonl_gz([]))])
        resp = call(hook.url + "?wait=true", body=body, headers={"Content-Type": content_type})
        assert resp.status == 200 and resp.json()["attachments"] == []
        (violation,) = discord.violations
        assert violation.startswith("unrecognised multipart part")
        body, content_type = multipart(
            {"allowed_mentions": NO_MENTIONS}, [("upload", "a.txt", b"x")]
        )
        resp = call(hook.url, body=body, headers={"Content-Type": content_type})
        assert resp.status == 400 and resp.json()["code"] == 50006  # nothing left to send


def test_exact_limits_are_accepted() -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        fields = [{"name": "n" * 256, "value": "v" * 4} for _ in range(5)]
        # 256 + 4096 + 5 * 260 + 52 + footer == 6000 exactly.
        footer = 6000 - 256 - 4096 - 5 * 260 - 52
        embeds: list[dict[str, Any]] = [
            {"title": "t" * 256, "description": "d" * 4096},
            {"fields": fields, "footer": {"text": "f" * footer}, "author": {"name": "a" * 52}},
        ]
        payload = ok(content="c" * 2000, username="u" * 80, embeds=embeds)
        assert execute(hook, payload).status == 200
        many_fields = [{"name": "n", "value": "v" * 200} for _ in range(5)]  # 25 * 201 <= 6000
        assert execute(hook, ok(embeds=[{"fields": many_fields * 5}])).status == 200  # 25 fields
        widest = {"fields": [{"name": "n" * 256, "value": "v" * 1024}]}
        assert execute(hook, ok(embeds=[widest])).status == 200
        ten = [{"description": str(n), "color": 0xFFFFFF} for n in range(10)]
        assert execute(hook, ok(embeds=ten)).status == 200
        discord.assert_no_violations()


# -------------------------------------------------------------- limit refusals

LIMIT_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("title 257", {"embeds": [{"title": "t" * 257}]}, "embeds.0.title", "BASE_TYPE_MAX_LENGTH"),
    (
        "description 4097",
        {"embeds": [{"description": "d" * 4097}]},
        "embeds.0.description",
        "BASE_TYPE_MAX_LENGTH",
    ),
    (
        "6001 total",
        {"embeds": [{"description": "d" * 4096}, {"description": "d" * 1905}]},
        "embeds",
        "MAX_EMBED_SIZE_EXCEEDED",
    ),
    ("11 embeds", {"embeds": [{"description": "x"}] * 11}, "embeds", "BASE_TYPE_MAX_LENGTH"),
    ("empty embed", {"embeds": [{}]}, "embeds.0.description", "BASE_TYPE_REQUIRED"),
    (
        "26 fields",
        {"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]},
        "embeds.0.fields",
        "BASE_TYPE_MAX_LENGTH",
    ),
    (
        "empty field value",
        {"embeds": [{"fields": [{"name": "n", "value": ""}]}]},
        "embeds.0.fields.0.value",
        "BASE_TYPE_REQUIRED",
    ),
    (
        "field name 257",
        {"embeds": [{"fields": [{"name": "n" * 257, "value": "v"}]}]},
        "embeds.0.fields.0.name",
        "BASE_TYPE_MAX_LENGTH",
    ),
    (
        "field value 1025",
        {"embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]},
        "embeds.0.fields.0.value",
        "BASE_TYPE_MAX_LENGTH",
    ),
    (
        "footer 2049",
        {"embeds": [{"footer": {"text": "f" * 2049}}]},
        "embeds.0.footer.text",
        "BASE_TYPE_MAX_LENGTH",
    ),
    (
        "author 257",
        {"embeds": [{"author": {"name": "a" * 257}}]},
        "embeds.0.author.name",
        "BASE_TYPE_MAX_LENGTH",
    ),
    (
        "color too big",
        {"embeds": [{"description": "x", "color": 16777216}]},
        "embeds.0.color",
        "NUMBER_TYPE_MAX",
    ),
    (
        "color negative",
        {"embeds": [{"description": "x", "color": -1}]},
        "embeds.0.color",
        "NUMBER_TYPE_MIN",
    ),
    (
        "bad timestamp",
        {"embeds": [{"description": "x", "timestamp": "yesterday"}]},
        "embeds.0.timestamp",
        "DATE_TYPE_PARSE",
    ),
    ("content 2001", {"content": "c" * 2001}, "content", "BASE_TYPE_MAX_LENGTH"),
    (
        "username discord",
        {"username": "Astra Discord Relay"},
        "username",
        "USERNAME_INVALID_CONTAINS",
    ),
    ("username clyde", {"username": "clyde"}, "username", "USERNAME_INVALID_CONTAINS"),
    ("username everyone", {"username": "everyone"}, "username", "USERNAME_INVALID"),
    ("username 81", {"username": "u" * 81}, "username", "BASE_TYPE_BAD_LENGTH"),
    ("username empty", {"username": ""}, "username", "BASE_TYPE_BAD_LENGTH"),
]


@pytest.mark.parametrize(
    ("case", "extra", "path", "code"), LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES]
)
def test_limit_refusals(case: str, extra: dict[str, Any], path: str, code: str) -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        resp = execute(hook, ok(**extra))
        assert resp.status == 400
        body = resp.json()
        assert body["code"] == 50035 and body["message"] == "Invalid Form Body"
        assert code in [e["code"] for e in error_at(body["errors"], path)]
        assert discord.messages(1) == []
        (violation,) = discord.violations
        assert violation.startswith("Invalid Form Body") and f"{path} ({code})" in violation


def test_error_tree_shape_matches_discord() -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        body = execute(hook, ok(embeds=[{"title": "t" * 257}])).json()
        assert body == {
            "message": "Invalid Form Body",
            "code": 50035,
            "errors": {
                "embeds": {
                    "0": {
                        "title": {
                            "_errors": [
                                {
                                    "code": "BASE_TYPE_MAX_LENGTH",
                                    "message": "Must be 256 or fewer in length.",
                                }
                            ]
                        }
                    }
                }
            },
        }


def test_file_over_10_mib_is_413() -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        body, content_type = multipart(ok(), [("files[0]", "big.bin", b"\0" * (10 * MiB + 1))])
        resp = call(hook.url, body=body, headers={"Content-Type": content_type})
        assert resp.status == 413
        assert resp.json() == {"message": "Request entity too large", "code": 40005}
        assert discord.messages(1) == []
        assert discord.violations[0].startswith("Request entity too large")
        body, content_type = multipart(ok(), [("files[0]", "max.bin", b"\0" * (10 * MiB))])
        assert call(hook.url, body=body, headers={"Content-Type": content_type}).status == 204


def test_eleven_files_refused() -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        files = [(f"files[{n}]", f"f{n}.txt", b"x") for n in range(11)]
        body, content_type = multipart(ok(), files)
        resp = call(hook.url, body=body, headers={"Content-Type": content_type})
        assert resp.status == 400 and resp.json()["code"] == 50035
        assert "attachments" in resp.json()["errors"]


@pytest.mark.parametrize("payload", [{}, {"content": ""}, {"content": "   ", "embeds": []}])
def test_empty_message_50006(payload: dict[str, Any]) -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        resp = execute(hook, {**payload, "allowed_mentions": NO_MENTIONS})
        assert resp.status == 400
        assert resp.json() == {"message": "Cannot send an empty message", "code": 50006}
        assert discord.violations[0].startswith("Cannot send an empty message")


# ----------------------------------------------------------- protocol hygiene


@pytest.mark.parametrize("user_agent", [None, "Python-urllib/3.11", "aiohttp/3.14"])
def test_user_agent_required(user_agent: str | None) -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        resp = execute(hook, ok(), user_agent=user_agent)
        assert resp.status == 400
        assert discord.messages(1) == []
        assert discord.violations[0].startswith("missing or invalid User-Agent")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_content_type_required(content_type: str | None) -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        headers = {"Content-Type": content_type} if content_type else {}
        resp = call(hook.url, body=json.dumps(ok()).encode(), headers=headers)
        assert resp.status == 400
        assert discord.violations[0].startswith("missing or unsupported Content-Type")


def test_invalid_json_50109() -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        resp = call(hook.url, body=b"{nope", headers={"Content-Type": "application/json"})
        assert resp.status == 400 and resp.json()["code"] == 50109


@pytest.mark.parametrize("prefix", ["/api", "/api/v9", "/api/v6"])
def test_unversioned_or_wrong_api_version(prefix: str) -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        url = f"http://127.0.0.1:{discord.port}{prefix}/webhooks/{hook.id}/{hook.token}"
        resp = call(url, payload=ok())
        assert resp.status == 400
        assert discord.messages(1) == []
        (violation,) = discord.violations
        assert violation.startswith("unversioned or wrong API version")
        assert hook.token not in violation  # tokens are redacted from violation text


def test_unknown_route_and_method() -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        assert call(f"{discord.api_base}/gateway/bot", "GET").status == 404
        assert call(hook.url, "PUT", payload=ok()).status == 405
        assert [v.split(":")[0] for v in discord.violations] == [
            "unknown route",
            "method not allowed",
        ]


def test_allowed_mentions_policy() -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        assert execute(hook, {"content": "a"}).status == 200
        assert (
            execute(hook, {"content": "b", "allowed_mentions": {"parse": ["users"]}}).status == 200
        )
        assert (
            execute(hook, {"content": "c", "allowed_mentions": {"parse": [], "users": []}}).status
            == 200
        )
        assert len(discord.messages(1)) == 3  # accepted, as Discord would
        assert [v.split(":")[0] for v in discord.violations] == ["allowed_mentions missing"] * 2


def test_requests_are_recorded_with_status() -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        execute(hook, ok())
        call(hook.url, payload={})
        first, second = discord.requests
        assert (first.method, first.status, first.query) == ("POST", 200, "wait=true")
        assert first.path == f"/api/v10/webhooks/{hook.id}/{hook.token}"
        assert json.loads(first.body) == ok() and first.headers["User-Agent"] == UA
        assert second.status == 400


# ------------------------------------------------------------------ rate limits


def test_rate_limit_headers_present_and_remaining_decrements() -> None:
    with FakeDiscord(bucket_limit=5, bucket_window=2.0) as discord:
        hook = discord.create_webhook(1)
        other = discord.create_webhook(1, "other")
        remaining = []
        buckets = set()
        for _ in range(5):
            resp = execute(hook, ok(), wait=False)
            assert resp.status == 204
            assert resp.headers["x-ratelimit-limit"] == "5"
            remaining.append(int(resp.headers["x-ratelimit-remaining"]))
            reset_after = float(resp.headers["x-ratelimit-reset-after"])
            assert 0 < reset_after <= 2.0
            assert abs(float(resp.headers["x-ratelimit-reset"]) - (time.time() + reset_after)) < 0.5
            buckets.add(resp.headers["x-ratelimit-bucket"])
        assert remaining == [4, 3, 2, 1, 0]
        (bucket,) = buckets
        int(bucket, 16)  # opaque hex id
        other_resp = execute(other, ok())
        assert other_resp.headers["x-ratelimit-bucket"] != bucket  # one bucket per webhook
        assert other_resp.headers["x-ratelimit-remaining"] == "4"
        discord.assert_no_violations()


def test_bucket_exhaustion_is_429_and_a_violation() -> None:
    with FakeDiscord(bucket_limit=2, bucket_window=1.0) as discord:
        hook = discord.create_webhook(1)
        assert execute(hook, ok()).status == 200
        assert execute(hook, ok()).headers["x-ratelimit-remaining"] == "0"
        resp = execute(hook, ok())
        assert resp.status == 429
        body = resp.json()
        assert body["message"] == "You are being rate limited." and body["global"] is False
        assert 0 < body["retry_after"] <= 1.0
        assert resp.headers["retry-after"] == str(math.ceil(body["retry_after"])) == "1"
        assert resp.headers["x-ratelimit-scope"] == "user"
        assert resp.headers["via"] == "1.1 google"
        assert "x-ratelimit-global" not in resp.headers
        (violation,) = discord.violations
        assert violation.startswith("ignored rate limit headers")
        assert discord.bucket_429s == 1
        time.sleep(float(resp.headers["x-ratelimit-reset-after"]))
        assert execute(hook, ok()).status == 200
        assert len(discord.violations) == 1 and len(discord.messages(1)) == 3


def test_client_honouring_headers_gets_no_violation() -> None:
    with FakeDiscord(bucket_limit=2, bucket_window=0.2) as discord:
        hook = discord.create_webhook(1)
        for _ in range(5):
            resp = execute(hook, ok(), wait=False)
            assert resp.status == 204
            if resp.headers["x-ratelimit-remaining"] == "0":
                time.sleep(float(resp.headers["x-ratelimit-reset-after"]))
        discord.assert_no_violations()
        assert discord.bucket_429s == 0


def test_channel_limit_is_shared_429_not_in_headers() -> None:
    with FakeDiscord(bucket_limit=100, channel_limit=3, channel_window=1.0) as discord:
        a = discord.create_webhook(7, "a")
        b = discord.create_webhook(7, "b")
        elsewhere = discord.create_webhook(8)
        assert [execute(h, ok()).status for h in (a, b, a)] == [200, 200, 200]
        resp = execute(b, ok())
        assert resp.status == 429
        assert resp.headers["x-ratelimit-scope"] == "shared"
        assert int(resp.headers["x-ratelimit-remaining"]) > 0  # headers look fine
        retry_after = resp.json()["retry_after"]
        assert 0 < retry_after <= 1.0 and resp.json()["global"] is False
        assert discord.channel_429s == 1
        assert execute(elsewhere, ok()).status == 200  # other channels unaffected
        assert discord.violations == []  # counted separately, not a violation
        time.sleep(retry_after)
        assert execute(b, ok()).status == 200
        assert len(discord.messages(7)) == 4


def test_global_limit() -> None:
    with FakeDiscord(global_limit=3, global_window=1.0) as discord:
        hooks = [discord.create_webhook(n) for n in range(4)]
        assert [execute(h, ok()).status for h in hooks[:3]] == [200] * 3
        resp = execute(hooks[3], ok())
        assert resp.status == 429
        assert resp.json()["global"] is True and 0 < resp.json()["retry_after"] <= 1.0
        assert resp.headers["x-ratelimit-global"] == "true"
        assert resp.headers["x-ratelimit-scope"] == "global"
        assert resp.headers["retry-after"] == "1"
        assert discord.global_429s == 1
        time.sleep(resp.json()["retry_after"])
        assert execute(hooks[3], ok()).status == 200


# ------------------------------------------------------------ failure injection


def test_fail_next() -> None:
    with FakeDiscord(bucket_limit=10) as discord:
        hook = discord.create_webhook(1)
        discord.fail_next(2, status=502)
        for _ in range(2):
            resp = execute(hook, ok())
            assert resp.status == 502
            assert resp.json() == {"message": "502: Bad Gateway", "code": 0}
            assert "x-ratelimit-remaining" in resp.headers
        assert discord.messages(1) == []
        assert execute(hook, ok()).status == 200
        discord.assert_no_violations()


def test_reset_next_drops_connection_without_storing() -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        discord.reset_next(1)
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            execute(hook, ok())
        assert discord.messages(1) == []
        assert execute(hook, ok()).status == 200
        dropped, answered = discord.requests
        assert dropped.reset and dropped.status is None
        assert answered.status == 200 and not answered.reset
        assert execute(hook, ok()).headers["x-ratelimit-remaining"] == "3"  # reset used no slot


def test_outage() -> None:
    with FakeDiscord(bucket_limit=100) as discord:
        hook = discord.create_webhook(1)
        discord.outage(0.6)
        assert [execute(hook, ok()).status for _ in range(3)] == [503] * 3
        time.sleep(0.6)
        assert execute(hook, ok()).status == 200
        assert len(discord.messages(1)) == 1


def test_ratelimit_next_then_retrying_early_is_a_violation() -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        discord.ratelimit_next(1, retry_after=0.5)
        resp = execute(hook, ok())
        assert resp.status == 429
        assert resp.json() == {
            "message": "You are being rate limited.",
            "retry_after": 0.5,
            "global": False,
        }
        assert resp.headers["retry-after"] == "1"
        assert resp.headers["x-ratelimit-remaining"] == "0"
        assert resp.headers["x-ratelimit-reset-after"] == "0.500"
        assert resp.headers["x-ratelimit-scope"] == "user"
        assert discord.violations == []  # the injected 429 itself is not the client's fault
        assert execute(hook, ok()).status == 429  # ... but ignoring it is
        assert discord.violations[0].startswith("ignored rate limit headers")
        time.sleep(0.5)
        assert execute(hook, ok()).status == 200
        assert len(discord.messages(1)) == 1


def test_ban_next_is_cloudflare_1015() -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        discord.ban_next(1)
        resp = execute(hook, ok())
        assert resp.status == 429
        assert resp.body == b"error code: 1015"
        assert resp.headers["content-type"].startswith("text/plain")
        assert "via" not in resp.headers and "retry-after" not in resp.headers
        assert discord.messages(1) == []
        assert execute(hook, ok()).status == 200


def test_delete_webhook_and_bad_token() -> None:
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        assert execute(hook, ok()).status == 200
        bad = call(f"{discord.api_base}/webhooks/{hook.id}/wrong-token", payload=ok())
        assert bad.status == 401 and bad.json() == {
            "message": "Invalid Webhook Token",
            "code": 50027,
        }
        discord.delete_webhook(hook.id)
        resp = execute(hook, ok())
        assert resp.status == 404
        assert resp.json() == {"message": "Unknown Webhook", "code": 10015}
        discord.assert_no_violations()  # a first 404 is not the client's fault
        assert len(discord.refusals) == 2
        assert execute(hook, ok()).status == 404
        (violation,) = discord.violations
        assert violation.startswith("repeated request after: 404 Unknown Webhook")


def test_delay_next_stores_message_after_client_timeout() -> None:
    async def post(url: str) -> None:
        timeout = aiohttp.ClientTimeout(total=0.1)
        async with (
            aiohttp.ClientSession(headers={"User-Agent": UA}, timeout=timeout) as session,
            session.post(url, json=ok()),
        ):
            pass

    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        discord.delay_next(1, 0.5)
        with pytest.raises(asyncio.TimeoutError):
            asyncio.run(post(hook.url))
        assert discord.messages(1) == []
        deadline = time.monotonic() + 2
        while not discord.messages(1) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(discord.messages(1)) == 1  # Discord posted it; the client never knew


# --------------------------------------------------------- bot-token webhooks


def bot(discord: FakeDiscord) -> dict[str, str]:
    return {"Authorization": f"Bot {discord.bot_token}"}


def test_bot_token_looks_real() -> None:
    discord = FakeDiscord()
    head, mid, tail = discord.bot_token.split(".")
    assert head.startswith("MT") and len(mid) == 6 and len(tail) == 38


def test_list_and_create_webhooks_with_bot_token() -> None:
    with FakeDiscord() as discord:
        discord.add_channel(42)
        manual = discord.create_webhook(42, "by-hand")
        url = f"{discord.api_base}/channels/42/webhooks"
        created = call(url, payload={"name": "astra"}, headers=bot(discord))
        assert created.status == 200
        hook = created.json()
        assert hook["token"] and hook["type"] == 1 and hook["channel_id"] == "42"
        assert hook["application_id"] == str(discord.application_id)
        assert discord.webhooks_created == 1
        listing = {w["name"]: w for w in call(url, "GET", headers=bot(discord)).json()}
        assert listing["astra"]["token"] == hook["token"]
        assert "token" not in listing["by-hand"]
        assert listing["by-hand"]["application_id"] != str(discord.application_id)
        assert listing["by-hand"]["id"] == str(manual.id)
        # The created webhook works.
        exec_url = f"{discord.api_base}/webhooks/{hook['id']}/{hook['token']}"
        assert call(exec_url, payload=ok()).status == 204
        assert len(discord.messages(42)) == 1
        discord.assert_no_violations()


@pytest.mark.parametrize("auth", [None, "Bot nope", "Bearer x"])
def test_bot_routes_need_the_token(auth: str | None) -> None:
    with FakeDiscord() as discord:
        discord.add_channel(42)
        headers = {"Authorization": auth} if auth else {}
        resp = call(f"{discord.api_base}/channels/42/webhooks", "GET", headers=headers)
        assert resp.status == 401
        assert resp.json() == {"message": "401: Unauthorized", "code": 0}


def test_bot_routes_403_and_404() -> None:
    with FakeDiscord() as discord:
        discord.add_channel(42, manage_webhooks=False)
        for method in ("GET", "POST"):
            resp = call(
                f"{discord.api_base}/channels/42/webhooks",
                method,
                payload={"name": "astra"},
                headers=bot(discord),
            )
            assert resp.status == 403
            assert resp.json() == {"message": "Missing Permissions", "code": 50013}
        resp = call(f"{discord.api_base}/channels/99/webhooks", "GET", headers=bot(discord))
        assert resp.json() == {"message": "Unknown Channel", "code": 10003} and resp.status == 404
        assert discord.webhooks_created == 0


def test_fifteen_webhooks_per_channel() -> None:
    with FakeDiscord(bucket_limit=100) as discord:
        discord.add_channel(42)
        url = f"{discord.api_base}/channels/42/webhooks"
        for n in range(15):
            assert call(url, payload={"name": f"hook{n}"}, headers=bot(discord)).status == 200
        resp = call(url, payload={"name": "one-too-many"}, headers=bot(discord))
        assert resp.status == 400
        assert resp.json() == {"message": "Maximum number of webhooks reached (15)", "code": 30007}
        assert discord.webhooks_created == 15
        assert len(discord.webhooks(42)) == 15


@pytest.mark.parametrize("name", ["", "x" * 81, "Discord relay"])
def test_create_webhook_name_rules(name: str) -> None:
    with FakeDiscord() as discord:
        discord.add_channel(42)
        resp = call(
            f"{discord.api_base}/channels/42/webhooks", payload={"name": name}, headers=bot(discord)
        )
        assert resp.status == 400 and resp.json()["code"] == 50035
        assert "name" in resp.json()["errors"]
        assert discord.webhooks_created == 0
