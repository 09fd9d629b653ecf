"""What astra posts matches Discord's OpenAPI schema for execute_webhook.

The fake Discord checks every execute body against the rules it encodes from
discord/discord-api-spec (IncomingWebhookRequestPartial and the schemas it references);
these tests drive the real sender at it and look at what was recorded.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from astra.config import WebhookRef
from astra.sinks.discord_http import Delivered, DiscordHttp
from astra.sinks.messages import Attachment, Embed, OutgoingMessage
from astra.sinks.ratelimit import RateLimiter
from tests.conftest import Launch, webhook_channels
from tests.fake_discord import FakeDiscord, PostedMessage

FAST = "[flush]\ninterval = 0.5\ncritical_delay = 0.2\n"
ROUNDS = 3


def round_events(round_: int) -> dict[str, dict[str, object]]:
    """One event per channel, keyed by the channel it is routed to."""
    return {
        "analytics": {"kind": "command", "name": "ping", "duration_ms": 3, "id": f"a{round_}"},
        "logs": {"kind": "log", "level": "warning", "message": "slow", "id": f"l{round_}"},
        "performance": {"kind": "metric", "name": "queue", "value": round_, "id": f"p{round_}"},
        "diagnostics": {
            "kind": "lifecycle",
            "action": "gateway.ready",
            "detail": "shard 0",
            "id": f"d{round_}",
        },
    }


def assert_attachment_ids_name_the_files(message: PostedMessage) -> None:
    """Every file is described, in order, by an attachment whose id is the string "n"."""
    attachments = message.payload.get("attachments") or []
    ids = [a["id"] for a in attachments]
    assert all(isinstance(i, str) for i in ids), ids
    assert ids == [str(n) for n in range(len(message.files))], ids
    assert [a["filename"] for a in attachments] == [name for name, _ in message.files]


def test_sidecar_windows_on_every_channel_match_the_spec_schema(
    discord: FakeDiscord, launch: Launch
) -> None:
    """Windows with attachments on all four channels pass the spec checks, ids as strings."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST)
    for round_ in range(ROUNDS):
        events = round_events(round_)
        answer = sidecar.post(list(events.values()))
        assert answer.status == 200 and not answer.body["rejected"], answer

        def arrived(events: dict[str, dict[str, object]] = events) -> bool:
            return all(
                event["id"] in {e.get("id") for e in discord.all_events(ids[name])}
                for name, event in events.items()
            )

        # Waiting for each round keeps the rounds in separate windows.
        sidecar.wait_for(arrived, timeout=30)
    assert sidecar.stop() == 0

    discord.assert_no_violations()
    assert not [r for r in discord.requests if r.status == 400]
    for name, channel_id in ids.items():
        with_files = [m for m in discord.messages(channel_id) if m.files]
        assert len(with_files) >= ROUNDS, f"{name}: {len(with_files)} messages with files"
    posted = discord.all_messages()
    assert posted
    for message in posted:
        assert_attachment_ids_name_the_files(message)


def test_a_message_with_several_files_names_each_by_its_part_index(discord: FakeDiscord) -> None:
    """A three-file message goes out with attachment ids "0", "1", "2" and passes the checks."""
    hook = discord.create_webhook(1419858425424259000)
    message = OutgoingMessage(
        embeds=[Embed(title="three files", description="one window, split")],
        files=[
            Attachment(f"events-logs-{n}-{n}.jsonl.gz", b"\x1f\x8b" + bytes([n])) for n in range(3)
        ],
    )

    async def send() -> object:
        async with aiohttp.ClientSession() as session:
            http = DiscordHttp(
                session, discord.api_base, RateLimiter(time.monotonic), username="astra"
            )
            return await http.execute(WebhookRef(hook.id, hook.token), message, "logs")

    outcome = asyncio.run(send())
    assert isinstance(outcome, Delivered), outcome
    discord.assert_no_violations()
    (posted,) = discord.messages(hook.channel_id)
    assert [a["id"] for a in posted.payload["attachments"]] == ["0", "1", "2"]
    assert_attachment_ids_name_the_files(posted)
