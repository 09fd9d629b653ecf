"""Redaction through the real sidecar: hostile sizes stay cheap, glued and escaped secrets stay out.

The sidecar runs as a subprocess and posts to the strict fake Discord; what is checked is
what Discord received: embeds (what a reader sees) and the gzipped JSONL attachments.
"""

from __future__ import annotations

import json
import random
import threading
from typing import Any

from tests.conftest import Launch, webhook_channels
from tests.fake_discord import FakeDiscord
from tests.sidecar import Response, Sidecar

FAST = "[flush]\ninterval = 0.5\ncritical_delay = 0.2\n"

# Made-up secrets of the real shapes.
TOKEN_ID = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ"
TOKEN_HMAC = "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBaQ"
TOKEN = f"{TOKEN_ID}.Gq1w2E.{TOKEN_HMAC}"
HOOK_TOKEN = "Hk7pQ2rS9tUvWxYz0aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789abcdefGHIJxyKL"
HOOK = f"https://discord.com/api/webhooks/1419858425424253999/{HOOK_TOKEN}"
SECRETS = (TOKEN_HMAC, HOOK_TOKEN)


def embed_text(discord: FakeDiscord, channel_id: int) -> str:
    """Every embed string posted to a channel, with Discord markdown escapes undone."""
    parts: list[str] = []
    for message in discord.messages(channel_id):
        for embed in message.embeds:
            parts += [embed.get("title", ""), embed.get("description", "")]
            for item in embed.get("fields", []):
                parts += [item["name"], item["value"]]
    # Escapes would split a leaked secret ("a\_b"): undo them before looking for one.
    return "\n".join(parts).replace("\u200b", "").replace("\\", "")


def posted_events(discord: FakeDiscord, channel_id: int) -> dict[str, dict[str, Any]]:
    """Events in a channel's attachments, by id."""
    return {str(e["id"]): e for e in discord.all_events(channel_id)}


def post_in_background(sidecar: Sidecar, body: bytes) -> tuple[threading.Thread, list[Response]]:
    """POST ``body`` from another thread, so the caller can probe the sidecar meanwhile."""
    answers: list[Response] = []
    thread = threading.Thread(target=lambda: answers.append(sidecar.post_raw(body)))
    thread.start()
    return thread, answers


def test_huge_unbroken_runs_neither_stall_the_sidecar_nor_get_lost(
    discord: FakeDiscord, launch: Launch
) -> None:
    """64 KB events built to make redaction retry from every offset are cheap and delivered."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST)
    rng = random.Random(5)
    run = "".join(rng.choices("abcXYZ019/._-=%:", k=65_000))
    hooks_word = ("webhooks/" * 7282)[:65_536]
    events: list[dict[str, Any]] = [
        {"kind": "log", "level": "warning", "message": "token=" + run, "id": "run"},
        {"kind": "log", "level": "info", "message": hooks_word, "id": "w"},
        {
            "kind": "error",
            "type": "RuntimeError",
            "message": ("https://" * 8192)[:65_536],
            "traceback": (("a" * 23 + ".abcdef.") * 2100)[:65_536],
            "id": "e",
        },
        {
            "kind": "command",
            "name": "play",
            "ok": False,
            "error": "bearer " * 500,
            "traceback": ('token="' * 9400)[:65_536],
            "id": "c",
        },
        {
            "kind": "metric",
            "name": "tags",
            "value": 1,
            "tags": {f"{i}_token": ("%2F\\/" * 200)[:1000] for i in range(64)},
            "id": "m",
        },
    ]
    thread, answers = post_in_background(sidecar, json.dumps(events).encode())
    # The event loop answers while (and right after) the batch is redacted; health()
    # gives up after 5 s, the bound this test holds the sidecar to.
    for _ in range(3):
        assert sidecar.health()["status"] == "ok"
    thread.join(timeout=30)
    assert answers and answers[0].status == 200 and answers[0].body["accepted"] == 5, answers
    assert sidecar.health()["status"] == "ok"
    sidecar.wait_for(
        lambda: (
            {"run", "w", "e", "c"} <= posted_events(discord, ids["logs"]).keys()
            and "m" in posted_events(discord, ids["performance"])
        ),
        timeout=60,
    )
    assert sidecar.stop() == 0
    logs = posted_events(discord, ids["logs"])
    assert logs["run"]["message"] == "token=[redacted]"
    assert logs["w"]["message"] == hooks_word, "no webhook there: kept as it was"
    assert logs["c"]["error"] == "bearer " * 500, "no token after any bearer: kept"
    tags = posted_events(discord, ids["performance"])["m"]["tags"]
    assert set(tags.values()) == {"[redacted]"}, "a value under a tag named *token is hidden"
    discord.assert_no_violations()


def test_glued_tokens_and_escaped_webhook_urls_never_reach_discord(
    discord: FakeDiscord, launch: Launch
) -> None:
    """Tokens glued to words and escaped webhook URLs are absent from embeds and attachments."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST)
    percent = HOOK.replace("://", "%3A%2F%2F").replace("/", "%2F")
    json_escaped = HOOK.replace("/", "\\/")
    double_escaped = HOOK.replace("/", "\\\\/")
    messages = {
        "glued-id": f"login ASTRA_TOKEN_VALUE_{TOKEN} refused",
        "glued-tail": f"retry {TOKEN}_and_more later",
        "glued-both": f"cached x{TOKEN}y expired",
        "percent": f"posting to {percent} timed out",
        "json": f'config {{"url": "{json_escaped}"}} rejected',
        "split": f"see {double_escaped} twice",
    }
    events: list[dict[str, Any]] = [
        {"kind": "log", "level": "warning", "message": text, "logger": "bot", "id": key}
        for key, text in messages.items()
    ]
    events.append(
        {
            "kind": "metric",
            "name": "cache",
            "value": 1,
            "tags": {f"k:{TOKEN}": "v", "hook": percent, "note": f"raw {json_escaped} end"},
            "id": "tags",
        }
    )
    # Escaped on the wire too: every "/" as "\/" and every non-ASCII character as \uXXXX.
    raw = json.dumps(events).replace("/", "\\/").encode()
    answer = sidecar.post_raw(raw)
    assert answer.status == 200 and answer.body["accepted"] == len(events), answer
    sidecar.wait_for(
        lambda: (
            set(messages) <= posted_events(discord, ids["logs"]).keys()
            and "tags" in posted_events(discord, ids["performance"])
        ),
        timeout=60,
    )
    assert sidecar.stop() == 0

    logs = posted_events(discord, ids["logs"])
    attachments = json.dumps([m.jsonl_events() for m in discord.all_messages()])
    embeds = embed_text(discord, ids["logs"]) + embed_text(discord, ids["performance"])
    requests = " ".join(r.body.decode("utf-8", "replace") for r in discord.requests)
    for secret in SECRETS:
        assert secret not in attachments and secret not in embeds and secret not in requests
        assert secret not in sidecar.stderr and secret not in sidecar.stdout
    # The text around each secret is still there, in the attachment and the embeds.
    for key, kept in {
        "glued-id": ("login ASTRA_TOKEN_VAL", "refused"),
        "glued-tail": ("retry ", "more later"),
        "glued-both": ("cached ", "expired"),
        "percent": ("posting to ", "timed out"),
        "json": ('config {"url": "', '"} rejected'),
        "split": ("see ", "twice"),
    }.items():
        message = logs[key]["message"]
        assert "[redacted]" in message and all(k in message for k in kept), message
        assert all(k in embeds for k in kept), key
    tags = posted_events(discord, ids["performance"])["tags"]["tags"]
    assert set(tags) == {"k:[redacted]", "hook", "note"}
    assert tags["hook"] == "[redacted]" and tags["note"] == "raw [redacted] end"
    discord.assert_no_violations()
