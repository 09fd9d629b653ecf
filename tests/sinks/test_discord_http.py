"""The Discord HTTP sender: what it posts matches Discord's OpenAPI schema for execute_webhook.

The fake Discord checks every execute body against the rules it encodes from
discord/discord-api-spec (IncomingWebhookRequestPartial and the schemas it references).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from astra.config import WebhookRef
from astra.sinks.discord_http import Delivered, DiscordHttp
from astra.sinks.messages import Attachment, Embed, OutgoingMessage
from astra.sinks.ratelimit import RateLimiter
from tests.fake_discord import FakeDiscord, PostedMessage


def assert_attachment_ids_name_the_files(message: PostedMessage) -> None:
    """Every file is described, in order, by an attachment whose id is the string "n"."""
    attachments = message.payload.get("attachments") or []
    ids = [a["id"] for a in attachments]
    assert all(isinstance(i, str) for i in ids), ids
    assert ids == [str(n) for n in range(len(message.files))], ids
    assert [a["filename"] for a in attachments] == [name for name, _ in message.files]


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
