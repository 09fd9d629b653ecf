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
    """An HTTP answer from the fake."""

    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
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
    """Execute ``hook`` with ``payload`` (``?wait=true`` unless told otherwise)."""
    return call(hook.url + ("?wait=true" if wait else ""), payload=payload, **kwargs)


def ok(**extra: Any) -> dict[str, Any]:
    """A valid execute payload, plus ``extra``."""
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
    """``events`` as a gzipped JSON Lines file: the same bytes every time (the gzip header's
    time is 0, not the second it was made in)."""
    return gzip.compress("".join(json.dumps(e) + "\n" for e in events).encode(), mtime=0)


def error_at(tree: dict[str, Any], path: str) -> list[dict[str, str]]:
    """The ``_errors`` list at a dotted ``path`` of an Invalid Form Body tree."""
    node: Any = tree
    for part in path.split(".") if path else []:
        node = node[part]
    errors: list[dict[str, str]] = node["_errors"]
    return errors


# ------------------------------------------------------------------ happy path


def test_json_post_with_wait_returns_message_object() -> None:
    """A JSON execute with wait=true answers 200 with the stored message, readable by GET."""
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
    """An execute without wait answers 204 with an empty body and still stores the message."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        resp = execute(hook, ok(), wait=False)
        assert resp.status == 204 and resp.body == b""
        assert len(discord.messages(1)) == 1
        discord.assert_no_violations()


def test_multipart_jsonl_gz_is_stored_and_readable() -> None:
    """Multipart files (files[n] and legacy file parts) are stored, their events readable."""
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
    """aiohttp FormData bodies are parsed; a percent-escaped filename is kept verbatim."""
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
    """Multipart parts with unknown names are dropped and recorded as violations."""
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
    """Texts, fields, embeds and the 6000 total exactly at Discord's limits are accepted."""
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
    """Each documented limit, exceeded by one, is refused as 400/50035 at the right errors path."""
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
    """An Invalid Form Body answer has exactly Discord's nested errors/_errors shape."""
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
    """A file over 10 MiB is refused with 413/40005 while exactly 10 MiB is accepted."""
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
    """More than ten files in one execute are refused as 50035 on attachments."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        files = [(f"files[{n}]", f"f{n}.txt", b"x") for n in range(11)]
        body, content_type = multipart(ok(), files)
        resp = call(hook.url, body=body, headers={"Content-Type": content_type})
        assert resp.status == 400 and resp.json()["code"] == 50035
        assert "attachments" in resp.json()["errors"]


@pytest.mark.parametrize("payload", [{}, {"content": ""}, {"content": "   ", "embeds": []}])
def test_empty_message_50006(payload: dict[str, Any]) -> None:
    """A message with nothing to show is refused with 400/50006."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        resp = execute(hook, {**payload, "allowed_mentions": NO_MENTIONS})
        assert resp.status == 400
        assert resp.json() == {"message": "Cannot send an empty message", "code": 50006}
        assert discord.violations[0].startswith("Cannot send an empty message")


# ------------------------------------------ spec schema (discord-api-spec execute_webhook)


def post_with_file(hook: Webhook, payload: dict[str, Any], parts: int = 1) -> Resp:
    """A multipart execute with ``parts`` one-byte files[n] parts."""
    files = [(f"files[{n}]", f"f{n}.txt", b"x") for n in range(parts)]
    body, content_type = multipart(payload, files)
    return call(hook.url + "?wait=true", body=body, headers={"Content-Type": content_type})


def refused(discord: FakeDiscord, resp: Resp, path: str, code: str) -> None:
    """Assert a 50035 answer with ``code`` at ``path``, nothing stored, one violation."""
    assert resp.status == 400, resp.body
    body = resp.json()
    assert body["code"] == 50035 and body["message"] == "Invalid Form Body"
    assert code in [e["code"] for e in error_at(body["errors"], path)], body
    assert discord.all_messages() == []
    (violation,) = discord.violations
    assert violation.startswith("Invalid Form Body") and f"{path} ({code})" in violation


def test_integer_attachment_id_is_refused() -> None:
    """An integer attachments[].id is refused: the spec's SnowflakeType is a string only."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        attachments = [{"id": 0, "filename": "f0.txt"}]
        resp = post_with_file(hook, ok(attachments=attachments))
        refused(discord, resp, "attachments.0.id", "BASE_TYPE_STRING")


def test_string_attachment_ids_naming_files_parts_are_accepted() -> None:
    """Attachment ids "0" and "1" naming files[0] and files[1] are accepted without violation."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        attachments = [{"id": "0", "filename": "f0.txt"}, {"id": "1", "description": None}]
        resp = post_with_file(hook, ok(attachments=attachments), parts=2)
        assert resp.status == 200, resp.body
        assert [a["filename"] for a in resp.json()["attachments"]] == ["f0.txt", "f1.txt"]
        discord.assert_no_violations()


@pytest.mark.parametrize(
    ("parts", "ref"),
    [(1, "1"), (2, "7"), (0, "0")],
    ids=["past the last part", "far off", "json body without files"],
)
def test_attachment_id_must_name_a_files_part(parts: int, ref: str) -> None:
    """An attachments[].id with no files[n] part of that n in the request is refused."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        payload = ok(attachments=[{"id": ref}])
        resp = post_with_file(hook, payload, parts) if parts else execute(hook, payload)
        refused(discord, resp, "attachments.0.id", "UNKNOWN_ATTACHMENT")


def test_legacy_file_part_cannot_be_named_by_an_attachment_id() -> None:
    """A legacy ``file`` part has no n, so attachments[].id "0" does not name it."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        body, content_type = multipart(ok(attachments=[{"id": "0"}]), [("file", "a.txt", b"x")])
        resp = call(hook.url, body=body, headers={"Content-Type": content_type})
        refused(discord, resp, "attachments.0.id", "UNKNOWN_ATTACHMENT")


UNKNOWN_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("top-level typo", {"embed": [{"description": "x"}]}, "embed"),
    (
        "top-level not a webhook field",
        {"message_reference": {"message_id": "1"}},
        "message_reference",
    ),
    ("top-level sticker_ids", {"sticker_ids": ["1"]}, "sticker_ids"),
    ("embed colour", {"embeds": [{"description": "x", "colour": 1}]}, "embeds.0.colour"),
    (
        "field key",
        {"embeds": [{"fields": [{"name": "n", "value": "v", "short": True}]}]},
        "embeds.0.fields.0.short",
    ),
    ("footer key", {"embeds": [{"footer": {"text": "t", "icon": "x"}}]}, "embeds.0.footer.icon"),
    (
        "allowed_mentions key",
        {"allowed_mentions": {"parse": [], "everyone": False}},
        "allowed_mentions.everyone",
    ),
]


@pytest.mark.parametrize(
    ("case", "extra", "path"), UNKNOWN_CASES, ids=[c[0] for c in UNKNOWN_CASES]
)
def test_unknown_properties_are_refused(case: str, extra: dict[str, Any], path: str) -> None:
    """A key that is no property of its spec schema is refused (Discord would drop it)."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        resp = execute(hook, ok(**extra))
        refused(discord, resp, path, "UNKNOWN_PROPERTY")


def test_unknown_attachment_property_is_refused() -> None:
    """A key that is no property of MessageAttachmentRequest is refused."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        resp = post_with_file(hook, ok(attachments=[{"id": "0", "spoiler": True}]))
        refused(discord, resp, "attachments.0.spoiler", "UNKNOWN_PROPERTY")


def embed(**extra: Any) -> dict[str, Any]:
    """A payload of one embed, plus ``extra`` on the embed."""
    return {"embeds": [{"description": "x", **extra}]}


TYPE_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    # IncomingWebhookRequestPartial
    ("content number", {"content": 5}, "content", "BASE_TYPE_STRING"),
    ("tts string", {"tts": "yes"}, "tts", "BASE_TYPE_BOOLEAN"),
    ("flags string", {"flags": "4"}, "flags", "NUMBER_TYPE_COERCE"),
    ("flags bool", {"flags": True}, "flags", "NUMBER_TYPE_COERCE"),
    ("flags float", {"flags": 4.5}, "flags", "NUMBER_TYPE_COERCE"),
    ("username number", {"username": 7}, "username", "BASE_TYPE_STRING"),
    ("avatar_url not a URL", {"avatar_url": "not a url"}, "avatar_url", "URL_TYPE_INVALID_URL"),
    (
        "avatar_url 2049",
        {"avatar_url": "https://x/" + "a" * 2039},
        "avatar_url",
        "BASE_TYPE_MAX_LENGTH",
    ),
    ("thread_name 101", {"thread_name": "t" * 101}, "thread_name", "BASE_TYPE_MAX_LENGTH"),
    ("applied_tags integer", {"applied_tags": [1]}, "applied_tags.0", "BASE_TYPE_STRING"),
    (
        "applied_tags 6",
        {"applied_tags": [str(n) for n in range(6)]},
        "applied_tags",
        "BASE_TYPE_MAX_LENGTH",
    ),
    ("components object", {"components": {"type": 1}}, "components", "BASE_TYPE_ARRAY"),
    ("components item", {"components": ["row"]}, "components.0", "MODEL_TYPE_CONVERT"),
    ("poll string", {"poll": "yes?"}, "poll", "MODEL_TYPE_CONVERT"),
    # RichEmbed and the schemas it references
    ("embeds object", {"embeds": {"description": "x"}}, "embeds", "BASE_TYPE_ARRAY"),
    ("embed null", {"embeds": [None]}, "embeds.0", "MODEL_TYPE_CONVERT"),
    ("embed string", {"embeds": ["x"]}, "embeds.0", "MODEL_TYPE_CONVERT"),
    ("title number", embed(title=5), "embeds.0.title", "BASE_TYPE_STRING"),
    (
        "description list",
        {"embeds": [{"description": ["x"]}]},
        "embeds.0.description",
        "BASE_TYPE_STRING",
    ),
    ("color string", embed(color="#ff0000"), "embeds.0.color", "NUMBER_TYPE_COERCE"),
    ("color bool", embed(color=True), "embeds.0.color", "NUMBER_TYPE_COERCE"),
    ("timestamp number", embed(timestamp=1700000000), "embeds.0.timestamp", "BASE_TYPE_STRING"),
    ("url not a URL", embed(url="example.com/x"), "embeds.0.url", "URL_TYPE_INVALID_URL"),
    ("type number", embed(type=1), "embeds.0.type", "BASE_TYPE_STRING"),
    ("fields object", embed(fields={"name": "n"}), "embeds.0.fields", "BASE_TYPE_ARRAY"),
    ("field string", embed(fields=["n: v"]), "embeds.0.fields.0", "MODEL_TYPE_CONVERT"),
    (
        "field name number",
        embed(fields=[{"name": 1, "value": "v"}]),
        "embeds.0.fields.0.name",
        "BASE_TYPE_STRING",
    ),
    (
        "field value missing",
        embed(fields=[{"name": "n"}]),
        "embeds.0.fields.0.value",
        "BASE_TYPE_REQUIRED",
    ),
    (
        "field value null",
        embed(fields=[{"name": "n", "value": None}]),
        "embeds.0.fields.0.value",
        "BASE_TYPE_REQUIRED",
    ),
    (
        "field inline string",
        embed(fields=[{"name": "n", "value": "v", "inline": "yes"}]),
        "embeds.0.fields.0.inline",
        "BASE_TYPE_BOOLEAN",
    ),
    ("footer string", embed(footer="f"), "embeds.0.footer", "MODEL_TYPE_CONVERT"),
    ("footer text number", embed(footer={"text": 5}), "embeds.0.footer.text", "BASE_TYPE_STRING"),
    (
        "footer icon_url",
        embed(footer={"text": "f", "icon_url": "icon.png"}),
        "embeds.0.footer.icon_url",
        "URL_TYPE_INVALID_URL",
    ),
    (
        "author url number",
        embed(author={"name": "a", "url": 5}),
        "embeds.0.author.url",
        "BASE_TYPE_STRING",
    ),
    (
        "image width string",
        embed(image={"url": "https://x/i.png", "width": "10"}),
        "embeds.0.image.width",
        "NUMBER_TYPE_COERCE",
    ),
    ("image url", embed(image={"url": "no scheme"}), "embeds.0.image.url", "URL_TYPE_INVALID_URL"),
    (
        "thumbnail placeholder 65",
        embed(thumbnail={"url": "https://x/t.png", "placeholder": "p" * 65}),
        "embeds.0.thumbnail.placeholder",
        "BASE_TYPE_MAX_LENGTH",
    ),
    (
        "provider name 257",
        embed(provider={"name": "p" * 257}),
        "embeds.0.provider.name",
        "BASE_TYPE_MAX_LENGTH",
    ),
    (
        "video is_animated",
        embed(video={"url": "https://x/v.mp4", "is_animated": "no"}),
        "embeds.0.video.is_animated",
        "BASE_TYPE_BOOLEAN",
    ),
    # MessageAllowedMentionsRequest
    (
        "allowed_mentions string",
        {"allowed_mentions": "none"},
        "allowed_mentions",
        "MODEL_TYPE_CONVERT",
    ),
    (
        "parse string",
        {"allowed_mentions": {"parse": "users"}},
        "allowed_mentions.parse",
        "BASE_TYPE_ARRAY",
    ),
    (
        "parse choice",
        {"allowed_mentions": {"parse": ["here"]}},
        "allowed_mentions.parse.0",
        "BASE_TYPE_CHOICES",
    ),
    (
        "parse repeated",
        {"allowed_mentions": {"parse": ["roles", "roles"]}},
        "allowed_mentions.parse.1",
        "SET_TYPE_ALREADY_CONTAINS_VALUE",
    ),
    (
        "users integer",
        {"allowed_mentions": {"parse": [], "users": [80351110224678912]}},
        "allowed_mentions.users.0",
        "BASE_TYPE_STRING",
    ),
    (
        "roles not snowflake",
        {"allowed_mentions": {"parse": [], "roles": ["@admins"]}},
        "allowed_mentions.roles.0",
        "NUMBER_TYPE_COERCE",
    ),
    (
        "replied_user string",
        {"allowed_mentions": {"parse": [], "replied_user": "no"}},
        "allowed_mentions.replied_user",
        "BASE_TYPE_BOOLEAN",
    ),
]

ATTACHMENT_CASES: list[tuple[str, Any, str, str]] = [
    # IncomingWebhookRequestPartial.attachments and MessageAttachmentRequest
    ("attachments object", {"id": "0"}, "attachments", "BASE_TYPE_ARRAY"),
    ("attachment string", ["0"], "attachments.0", "MODEL_TYPE_CONVERT"),
    ("id missing", [{"filename": "f0.txt"}], "attachments.0.id", "BASE_TYPE_REQUIRED"),
    ("id null", [{"id": None}], "attachments.0.id", "BASE_TYPE_REQUIRED"),
    ("id float", [{"id": 0.0}], "attachments.0.id", "BASE_TYPE_STRING"),
    ("id leading zero", [{"id": "00"}], "attachments.0.id", "NUMBER_TYPE_COERCE"),
    ("id negative", [{"id": "-1"}], "attachments.0.id", "NUMBER_TYPE_COERCE"),
    (
        "filename empty",
        [{"id": "0", "filename": ""}],
        "attachments.0.filename",
        "BASE_TYPE_BAD_LENGTH",
    ),
    ("filename number", [{"id": "0", "filename": 0}], "attachments.0.filename", "BASE_TYPE_STRING"),
    (
        "description 1025",
        [{"id": "0", "description": "d" * 1025}],
        "attachments.0.description",
        "BASE_TYPE_MAX_LENGTH",
    ),
    (
        "duration negative",
        [{"id": "0", "duration_secs": -1}],
        "attachments.0.duration_secs",
        "NUMBER_TYPE_MIN",
    ),
    (
        "duration string",
        [{"id": "0", "duration_secs": "1"}],
        "attachments.0.duration_secs",
        "NUMBER_TYPE_COERCE",
    ),
    (
        "is_spoiler string",
        [{"id": "0", "is_spoiler": "yes"}],
        "attachments.0.is_spoiler",
        "BASE_TYPE_BOOLEAN",
    ),
    ("11 attachments", [{"id": "0"}] * 11, "attachments", "BASE_TYPE_MAX_LENGTH"),
]


@pytest.mark.parametrize("transport", ["json", "multipart"])
@pytest.mark.parametrize(
    ("case", "extra", "path", "code"), TYPE_CASES, ids=[c[0] for c in TYPE_CASES]
)
def test_wrong_types_are_refused(
    transport: str, case: str, extra: dict[str, Any], path: str, code: str
) -> None:
    """A value of the wrong type per the spec's schema is refused at its errors path."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        payload = ok(**extra)
        resp = execute(hook, payload) if transport == "json" else post_with_file(hook, payload)
        refused(discord, resp, path, code)


@pytest.mark.parametrize(
    ("case", "attachments", "path", "code"), ATTACHMENT_CASES, ids=[c[0] for c in ATTACHMENT_CASES]
)
def test_wrong_attachment_types_are_refused(
    case: str, attachments: Any, path: str, code: str
) -> None:
    """A MessageAttachmentRequest breaking the spec's types or limits is refused."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        resp = post_with_file(hook, ok(attachments=attachments))
        refused(discord, resp, path, code)


def test_every_spec_property_used_correctly_is_accepted() -> None:
    """A body using most spec properties, nulls included, is accepted without violation."""
    full_embed: dict[str, Any] = {
        "type": "rich",
        "url": "https://example.com/run/1",
        "title": "t",
        "color": None,
        "timestamp": None,
        "description": "d",
        "author": {"name": "a", "url": None, "icon_url": "https://example.com/a.png"},
        "image": {"url": "attachment://f0.txt", "width": 10, "height": None},
        "thumbnail": {"url": "https://example.com/t.png", "placeholder": "p" * 64},
        "footer": {"text": "f", "icon_url": None},
        "fields": [{"name": "n", "value": "v", "inline": None}],
        "provider": {"name": "p", "url": "https://example.com"},
        "video": {"url": "https://example.com/v.mp4", "is_animated": False},
    }
    payload: dict[str, Any] = {
        "content": None,
        "embeds": [full_embed, {"description": "second", "fields": None, "author": None}],
        "allowed_mentions": {"parse": [], "users": [], "roles": [], "replied_user": None},
        "components": None,
        "attachments": [
            {
                "id": "0",
                "filename": "renamed.txt",
                "description": "alt text",
                "title": None,
                "is_spoiler": False,
                "duration_secs": 1.5,
            }
        ],
        "poll": None,
        "tts": False,
        "flags": 4,
        "username": "astra",
        "avatar_url": "https://example.com/avatar.png",
        "thread_name": None,
        "applied_tags": None,
    }
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        resp = post_with_file(hook, payload)
        assert resp.status == 200, resp.body
        assert execute(hook, ok(flags=None, tts=None, username=None)).status == 200
        discord.assert_no_violations()


def test_schema_errors_share_one_discord_error_tree() -> None:
    """Several schema errors come back together in one Invalid Form Body tree."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        payload = ok(attachments=[{"id": 0}], embeds=[{"title": 1, "colour": 2}], extra=True)
        body = post_with_file(hook, payload).json()
        unknown = "UNKNOWN_PROPERTY", "Not a property of {} (Discord would silently drop it)."
        assert body == {
            "message": "Invalid Form Body",
            "code": 50035,
            "errors": {
                "extra": {
                    "_errors": [
                        {
                            "code": unknown[0],
                            "message": unknown[1].format("IncomingWebhookRequestPartial"),
                        }
                    ]
                },
                "embeds": {
                    "0": {
                        "colour": {
                            "_errors": [
                                {"code": unknown[0], "message": unknown[1].format("RichEmbed")}
                            ]
                        },
                        "title": {
                            "_errors": [
                                {"code": "BASE_TYPE_STRING", "message": "Must be a string."}
                            ]
                        },
                    }
                },
                "attachments": {
                    "0": {
                        "id": {
                            "_errors": [
                                {
                                    "code": "BASE_TYPE_STRING",
                                    "message": "Must be a string (a snowflake).",
                                }
                            ]
                        }
                    }
                },
            },
        }
        assert discord.all_messages() == []


# ----------------------------------------------------------- protocol hygiene


@pytest.mark.parametrize("user_agent", [None, "Python-urllib/3.11", "aiohttp/3.14"])
def test_user_agent_required(user_agent: str | None) -> None:
    """A missing or non-DiscordBot User-Agent is refused and recorded as a violation."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        resp = execute(hook, ok(), user_agent=user_agent)
        assert resp.status == 400
        assert discord.messages(1) == []
        assert discord.violations[0].startswith("missing or invalid User-Agent")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_content_type_required(content_type: str | None) -> None:
    """A missing or unsupported Content-Type is refused and recorded as a violation."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        headers = {"Content-Type": content_type} if content_type else {}
        resp = call(hook.url, body=json.dumps(ok()).encode(), headers=headers)
        assert resp.status == 400
        assert discord.violations[0].startswith("missing or unsupported Content-Type")


def test_invalid_json_50109() -> None:
    """A body that is not valid JSON is refused with 400/50109."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        resp = call(hook.url, body=b"{nope", headers={"Content-Type": "application/json"})
        assert resp.status == 400 and resp.json()["code"] == 50109


@pytest.mark.parametrize("prefix", ["/api", "/api/v9", "/api/v6"])
def test_unversioned_or_wrong_api_version(prefix: str) -> None:
    """Unversioned or non-v10 API paths are refused, with the token redacted from the violation."""
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
    """Unknown routes answer 404 and wrong methods 405, each recorded as a violation."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        assert call(f"{discord.api_base}/gateway/bot", "GET").status == 404
        assert call(hook.url, "PUT", payload=ok()).status == 405
        assert [v.split(":")[0] for v in discord.violations] == [
            "unknown route",
            "method not allowed",
        ]


def test_allowed_mentions_policy() -> None:
    """Posts without allowed_mentions parse [] are accepted but recorded as policy violations."""
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
    """Every request is recorded with its method, path, query, headers, body and status."""
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
    """Every answer carries per-webhook rate limit headers whose Remaining counts down."""
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
    """Sending past an exhausted bucket earns a 429 and a violation."""
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
    """A client that sleeps Reset-After when Remaining hits 0 earns no violation."""
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
    """The per-channel limit answers a shared-scope 429 that the headers never announce."""
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
    """Exceeding the global request budget answers a global 429."""
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
    """fail_next answers the given status that many times without storing anything."""
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
    """reset_next drops the connection, stores nothing and uses no bucket slot."""
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
    """outage answers 503 to every execute until it ends."""
    with FakeDiscord(bucket_limit=100) as discord:
        hook = discord.create_webhook(1)
        # Long enough for three requests on a loaded machine too.
        discord.outage(2.0)
        assert [execute(hook, ok()).status for _ in range(3)] == [503] * 3
        time.sleep(2.0)
        assert execute(hook, ok()).status == 200
        assert len(discord.messages(1)) == 1


def test_ratelimit_next_then_retrying_early_is_a_violation() -> None:
    """An injected 429 is not a violation but retrying before retry_after is."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        # Long enough for the next request to come early on a loaded machine too.
        discord.ratelimit_next(1, retry_after=2.0)
        resp = execute(hook, ok())
        assert resp.status == 429
        assert resp.json() == {
            "message": "You are being rate limited.",
            "retry_after": 2.0,
            "global": False,
        }
        assert resp.headers["retry-after"] == "2"
        assert resp.headers["x-ratelimit-remaining"] == "0"
        assert resp.headers["x-ratelimit-reset-after"] == "2.000"
        assert resp.headers["x-ratelimit-scope"] == "user"
        assert discord.violations == []  # the injected 429 itself is not the client's fault
        assert execute(hook, ok()).status == 429  # ... but ignoring it is
        assert discord.violations[0].startswith("ignored rate limit headers")
        time.sleep(2.0)
        assert execute(hook, ok()).status == 200
        assert len(discord.messages(1)) == 1


def test_ban_next_is_cloudflare_1015() -> None:
    """ban_next answers Cloudflare's text 429 (error code 1015) without a Via header."""
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
    """A deleted webhook answers 404/10015, a bad token 401/50027; only repeats are violations."""
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
    """delay_next stores the message even when the client has timed out meanwhile."""

    async def post(url: str) -> None:
        timeout = aiohttp.ClientTimeout(total=0.1)
        async with (
            aiohttp.ClientSession(headers={"User-Agent": UA}, timeout=timeout) as session,
            session.post(url, json=ok()),
        ):
            pass

    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        # Stored 2 s after it came in: time enough, on a loaded machine too, to see it is not
        # there yet once the client gave up (after 0.1 s).
        discord.delay_next(1, 2.0)
        with pytest.raises(asyncio.TimeoutError):
            asyncio.run(post(hook.url))
        assert discord.messages(1) == []
        deadline = time.monotonic() + 30
        while not discord.messages(1) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(discord.messages(1)) == 1  # Discord posted it; the client never knew


# --------------------------------------------------------- bot-token webhooks


def bot(discord: FakeDiscord) -> dict[str, str]:
    """The Authorization header of the fake's bot."""
    return {"Authorization": f"Bot {discord.bot_token}"}


def test_bot_token_looks_real() -> None:
    """The fake's bot token has the shape of a real one."""
    discord = FakeDiscord()
    head, mid, tail = discord.bot_token.split(".")
    assert head.startswith("MT") and len(mid) == 6 and len(tail) == 38


def test_list_and_create_webhooks_with_bot_token() -> None:
    """The bot token lists and creates channel webhooks, with tokens only for its own."""
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
    """Channel webhook routes refuse a missing or wrong bot token with 401."""
    with FakeDiscord() as discord:
        discord.add_channel(42)
        headers = {"Authorization": auth} if auth else {}
        resp = call(f"{discord.api_base}/channels/42/webhooks", "GET", headers=headers)
        assert resp.status == 401
        assert resp.json() == {"message": "401: Unauthorized", "code": 0}


def test_bot_routes_403_and_404() -> None:
    """Channel webhook routes answer 403 without Manage Webhooks and 404 for an unknown channel."""
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
    """A sixteenth webhook in one channel is refused with 30007."""
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
    """Webhook names breaking Discord's name rules are refused as 50035 on name."""
    with FakeDiscord() as discord:
        discord.add_channel(42)
        resp = call(
            f"{discord.api_base}/channels/42/webhooks", payload={"name": name}, headers=bot(discord)
        )
        assert resp.status == 400 and resp.json()["code"] == 50035
        assert "name" in resp.json()["errors"]
        assert discord.webhooks_created == 0


# ------------------------------------------------------------ embed images, interactions


def test_an_embed_image_shows_the_uploaded_file_it_names() -> None:
    """``image.url = attachment://name`` shows that file; naming a file not sent is recorded."""
    png = b"\x89PNG\r\n\x1a\nfake"
    with FakeDiscord() as discord:
        hook = discord.create_webhook(5)
        shown = {"title": "t", "image": {"url": "attachment://chart-host.png"}}
        body, content_type = multipart(
            ok(embeds=[shown], attachments=[{"id": "0", "filename": "chart-host.png"}]),
            [("files[0]", "chart-host.png", png)],
        )
        resp = call(hook.url + "?wait=true", body=body, headers={"Content-Type": content_type})
        assert resp.status == 200, resp.body
        discord.assert_no_violations()
        assert discord.messages(5)[0].embed_images() == [("chart-host.png", png)]

        missing = {"title": "t", "image": {"url": "attachment://chart-gone.png"}}
        assert execute(hook, ok(embeds=[missing])).status == 200
        assert discord.messages(5)[1].embed_images() == []
        assert discord.violations == [
            "embed image names no uploaded file: embeds[0].image: attachment://chart-gone.png"
            f" [POST /api/v10/webhooks/{hook.id}/<token>]"
        ]


def test_an_interaction_is_answered_once_with_a_valid_message() -> None:
    """Unknown interaction 404/10062; a bad message or flag 50035 (EPHEMERAL is allowed); a
    second answer 400/40060."""
    with FakeDiscord() as discord:
        url = f"{discord.api_base}/interactions/55/tok-55/callback?with_response=true"
        answer = {"type": 4, "data": {"content": "hi", "flags": 64, "allowed_mentions": {}}}
        unknown = call(url, payload=answer, user_agent=None)
        assert (unknown.status, unknown.json()["code"]) == (404, 10062)
        discord.expect_interaction(55, "tok-55")
        bad = call(url, payload={"type": 4, "data": {"embeds": [{}]}}, user_agent=None)
        assert (bad.status, bad.json()["code"]) == (400, 50035)
        assert error_at(bad.json()["errors"], "data.embeds.0.description")
        crossposted = {"type": 4, "data": {"content": "hi", "flags": 1 << 1}}
        flagged = call(url, payload=crossposted, user_agent=None)
        assert error_at(flagged.json()["errors"], "data.flags")
        first = call(url, payload=answer, user_agent=None)
        assert first.status == 200, first.body
        assert first.json()["interaction"]["response_message_ephemeral"] is True
        assert first.json()["resource"]["message"]["content"] == "hi"
        again = call(url, payload=answer, user_agent=None)
        assert (again.status, again.json()["code"]) == (400, 40060)
        assert discord.interaction_response(55) == answer
        discord.expect_interaction(56, "tok-56")
        suggest = f"{discord.api_base}/interactions/56/tok-56/callback"
        many = {"type": 8, "data": {"choices": [{"name": "x", "value": "x"}] * 26}}
        refused = call(suggest, payload=many, user_agent=None)
        assert (refused.status, refused.json()["code"]) == (400, 50035)
        assert error_at(refused.json()["errors"], "data.choices")
        ok_choices = {"type": 8, "data": {"choices": [{"name": "cpu", "value": "cpu"}]}}
        assert call(suggest, payload=ok_choices, user_agent=None).status == 200


# ------------------------------------------------- flags, pings, edits, threads


@pytest.mark.parametrize("flags", [4, 4096, 4100])
def test_execute_flags_documented_ones_are_stored(flags: int) -> None:
    """SUPPRESS_EMBEDS and SUPPRESS_NOTIFICATIONS may be set on an execute and come back."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        resp = execute(hook, ok(flags=flags))
        assert resp.status == 200 and resp.json()["flags"] == flags
        assert discord.messages(1)[0].flags == flags
        discord.assert_no_violations()


@pytest.mark.parametrize("flags", [1, 2, 64, 4096 | 8])
def test_execute_flags_others_are_refused(flags: int) -> None:
    """Any other message flag on an execute is refused as 50035 on flags."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        resp = execute(hook, ok(flags=flags))
        assert resp.status == 400 and resp.json()["code"] == 50035
        assert "flags" in resp.json()["errors"]
        assert discord.messages(1) == []


def test_role_ping_named_in_content_is_a_mention_and_no_violation() -> None:
    """A role listed in allowed_mentions.roles and mentioned in content is pinged, lawfully."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        payload = {
            "content": "<@&123456789012345678> down",
            "allowed_mentions": {"parse": [], "roles": ["123456789012345678"]},
        }
        resp = execute(hook, payload)
        assert resp.status == 200 and resp.json()["mention_roles"] == ["123456789012345678"]
        assert discord.messages(1)[0].mention_roles == ["123456789012345678"]
        discord.assert_no_violations()


def test_mentions_not_allowed_are_not_pings() -> None:
    """Mentions in content that allowed_mentions does not name ping no one."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        payload = ok(content="<@&1234567890123456> <@2234567890123456> @everyone")
        assert execute(hook, payload).status == 200
        message = discord.messages(1)[0]
        assert message.mention_roles == [] and message.mentions == []


def test_phantom_ping_list_is_a_policy_violation() -> None:
    """Listing a role the content does not mention is recorded as a policy violation."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        payload = ok(allowed_mentions={"parse": [], "roles": ["1234567890123456"]})
        assert execute(hook, payload).status == 200
        assert discord.violations[0].startswith("allowed_mentions missing: roles lists")


def test_parse_roles_with_role_list_is_refused() -> None:
    """parse containing "roles" together with a roles list is refused, as Discord does."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        payload = {
            "content": "<@&1234567890123456>",
            "allowed_mentions": {"parse": ["roles"], "roles": ["1234567890123456"]},
        }
        resp = execute(hook, payload)
        assert resp.status == 400 and "allowed_mentions" in resp.json()["errors"]


def test_more_than_100_roles_are_refused() -> None:
    """allowed_mentions.roles holds at most 100 ids."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        roles = [str(10**17 + n) for n in range(101)]
        content = " ".join(f"<@&{r}>" for r in roles)
        resp = execute(
            hook, {"content": content, "allowed_mentions": {"parse": [], "roles": roles}}
        )
        assert resp.status == 400 and "roles" in resp.json()["errors"]["allowed_mentions"]


def message_url(hook: Webhook, message_id: int | str, thread_id: int | None = None) -> str:
    """The Edit/Delete Webhook Message URL of a message (with ``thread_id`` if given)."""
    query = f"?thread_id={thread_id}" if thread_id else ""
    return f"{hook.url}/messages/{message_id}{query}"


def test_edit_webhook_message_replaces_embeds_and_sets_edited_timestamp() -> None:
    """PATCH replaces the given fields, keeps the others and the flags, and marks the edit."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        first = execute(hook, ok(embeds=[{"title": "v1"}], flags=4096)).json()
        assert first["edited_timestamp"] is None
        resp = call(
            message_url(hook, first["id"]),
            "PATCH",
            payload={"embeds": [{"title": "v2"}], "allowed_mentions": NO_MENTIONS},
        )
        assert resp.status == 200
        edited = resp.json()
        assert edited["id"] == first["id"] and edited["embeds"][0]["title"] == "v2"
        assert edited["content"] == "hello" and edited["flags"] == 4096
        assert edited["edited_timestamp"] is not None
        (stored,) = discord.messages(1)
        assert stored.edits == 1 and stored.embeds == [{"title": "v2"}]
        discord.assert_no_violations()


def test_edit_refuses_notification_flag_and_execute_only_fields() -> None:
    """An edit may not set SUPPRESS_NOTIFICATIONS, nor send execute-only fields like username."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        message_id = execute(hook, ok()).json()["id"]
        for body in ({"flags": 4096}, {"username": "x"}):
            resp = call(message_url(hook, message_id), "PATCH", payload=body)
            assert resp.status == 400 and resp.json()["code"] == 50035


def test_edit_or_delete_unknown_message_is_404_10008() -> None:
    """Editing a deleted message answers 404 Unknown Message; repeating that is a violation."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        message_id = int(execute(hook, ok()).json()["id"])
        discord.delete_message(message_id)
        body = {"content": "x", "allowed_mentions": NO_MENTIONS}
        resp = call(message_url(hook, message_id), "PATCH", payload=body)
        assert resp.status == 404 and resp.json() == {"message": "Unknown Message", "code": 10008}
        assert discord.violations == []
        call(message_url(hook, message_id), "PATCH", payload=body)
        assert discord.violations[0].startswith("repeated request after: 404 Unknown Message")


def test_delete_webhook_message() -> None:
    """DELETE removes the webhook's message and answers 204."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(1)
        message_id = execute(hook, ok()).json()["id"]
        assert call(message_url(hook, message_id), "DELETE").status == 204
        assert discord.messages(1) == []


def test_forum_execute_without_thread_is_220001() -> None:
    """A forum webhook needs thread_name or thread_id; the first refusal is no violation."""
    with FakeDiscord() as discord:
        discord.add_channel(7, channel_type=15)
        hook = discord.create_webhook(7)
        resp = execute(hook, ok())
        assert resp.status == 400
        assert resp.json() == {
            "message": "Webhooks posted to forum channels must have a thread_name or thread_id",
            "code": 220001,
        }
        assert discord.violations == []
        execute(hook, ok())
        assert discord.violations[0].startswith("repeated request after: 400 Webhooks posted")


def test_forum_thread_name_creates_a_thread_and_thread_id_posts_into_it() -> None:
    """thread_name creates a forum thread (the answer's channel_id); thread_id posts into it."""
    with FakeDiscord() as discord:
        discord.add_channel(7, channel_type=15)
        hook = discord.create_webhook(7)
        created = execute(hook, ok(thread_name="2026-12-01 logs")).json()
        thread_id = int(created["channel_id"])
        assert discord.threads(7) == {"2026-12-01 logs": thread_id}
        second = execute(hook, ok(), wait=False)
        assert second.status == 400  # still needs a thread
        assert call(f"{hook.url}?wait=true&thread_id={thread_id}", payload=ok()).status == 200
        assert [m.channel_id for m in discord.thread_messages(7)] == [thread_id] * 2
        assert discord.messages(7) == []


def test_forum_refuses_both_thread_name_and_id_and_thread_name_elsewhere() -> None:
    """Both thread_name and thread_id is 220002; thread_name outside a forum is 220003."""
    with FakeDiscord() as discord:
        discord.add_channel(7, channel_type=15)
        forum_hook = discord.create_webhook(7)
        thread = discord.add_thread(7, "t")
        resp = call(f"{forum_hook.url}?thread_id={thread}", payload=ok(thread_name="x"))
        assert resp.status == 400 and resp.json()["code"] == 220002
        text_hook = discord.create_webhook(8)
        resp = execute(text_hook, ok(thread_name="x"))
        assert resp.status == 400 and resp.json()["code"] == 220003


def test_thread_id_of_another_channel_is_unknown_channel() -> None:
    """thread_id must name a thread of the webhook's own channel (404 / 10003 otherwise)."""
    with FakeDiscord() as discord:
        discord.add_channel(7)
        discord.add_channel(8)
        hook = discord.create_webhook(7)
        foreign = discord.add_thread(8, "elsewhere")
        resp = call(f"{hook.url}?thread_id={foreign}", payload=ok())
        assert resp.status == 404 and resp.json()["code"] == 10003
        own = discord.add_thread(7, "here")
        assert call(f"{hook.url}?thread_id={own}", payload=ok()).status == 204


def test_posting_unarchives_a_thread_and_edits_need_thread_id() -> None:
    """A post with thread_id unarchives the thread; its message is edited with thread_id."""
    with FakeDiscord() as discord:
        discord.add_channel(7)
        hook = discord.create_webhook(7)
        thread = discord.add_thread(7, "ops", archived=True)
        message = call(f"{hook.url}?wait=true&thread_id={thread}", payload=ok()).json()
        active = call(
            f"{discord.api_base}/guilds/{discord.guild_id}/threads/active",
            "GET",
            headers=bot(discord),
        ).json()
        assert [t["id"] for t in active["threads"]] == [str(thread)]
        body = {"content": "edited", "allowed_mentions": NO_MENTIONS}
        assert call(message_url(hook, message["id"]), "PATCH", payload=body).status == 404
        resp = call(message_url(hook, message["id"], thread), "PATCH", payload=body)
        assert resp.status == 200 and resp.json()["content"] == "edited"


def test_thread_listings_active_and_archived() -> None:
    """Active threads list by guild, archived public threads by parent channel (bot token)."""
    with FakeDiscord() as discord:
        discord.add_channel(7, channel_type=15)
        live = discord.add_thread(7, "today")
        old = discord.add_thread(7, "yesterday")
        discord.archive_thread(old)
        active = call(
            f"{discord.api_base}/guilds/{discord.guild_id}/threads/active",
            "GET",
            headers=bot(discord),
        ).json()
        assert [(t["id"], t["parent_id"], t["type"]) for t in active["threads"]] == [
            (str(live), "7", 11)
        ]
        archived = call(
            f"{discord.api_base}/channels/7/threads/archived/public", "GET", headers=bot(discord)
        ).json()
        assert [t["name"] for t in archived["threads"]] == ["yesterday"]
        assert archived["has_more"] is False
        assert archived["threads"][0]["thread_metadata"]["archived"] is True
        resp = call(f"{discord.api_base}/guilds/{discord.guild_id}/threads/active", "GET")
        assert resp.status == 401
        discord.assert_no_violations()


def test_get_channel_tells_forum_from_text_with_bot_token() -> None:
    """GET /channels/{id} (bot token) answers the channel's type and guild."""
    with FakeDiscord() as discord:
        discord.add_channel(7, channel_type=15)
        discord.add_channel(8)
        thread = discord.add_thread(8, "ops")
        forum = call(f"{discord.api_base}/channels/7", "GET", headers=bot(discord)).json()
        assert (forum["type"], forum["guild_id"]) == (15, str(discord.guild_id))
        text = call(f"{discord.api_base}/channels/8", "GET", headers=bot(discord)).json()
        assert text["type"] == 0
        info = call(f"{discord.api_base}/channels/{thread}", "GET", headers=bot(discord)).json()
        assert (info["type"], info["parent_id"]) == (11, "8")
        assert call(f"{discord.api_base}/channels/7", "GET").status == 401
        missing = call(f"{discord.api_base}/channels/9", "GET", headers=bot(discord))
        assert missing.status == 404 and missing.json()["code"] == 10003


def test_deleted_thread_is_unknown_channel_and_a_forum_makes_a_new_one() -> None:
    """Posting into a deleted thread is 404 / 10003; thread_name creates a fresh one."""
    with FakeDiscord() as discord:
        discord.add_channel(7, channel_type=15)
        hook = discord.create_webhook(7)
        first = int(execute(hook, ok(thread_name="day")).json()["channel_id"])
        discord.delete_thread(first)
        resp = call(f"{hook.url}?thread_id={first}", payload=ok())
        assert resp.status == 404 and resp.json() == {"message": "Unknown Channel", "code": 10003}
        second = int(execute(hook, ok(thread_name="day")).json()["channel_id"])
        assert second != first and discord.threads(7) == {"day": second}
        discord.assert_no_violations()


def test_thread_id_must_be_a_snowflake() -> None:
    """A thread_id that is not a snowflake is refused as 50035 on thread_id."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(7)
        resp = call(f"{hook.url}?thread_id=abc", payload=ok())
        assert resp.status == 400 and "thread_id" in resp.json()["errors"]
        assert discord.messages(7) == []
