"""A channel's history as astra's posts: which messages are astra's, and where their files are.

Messages from people, other bots and other webhooks are skipped (and counted). A post from
astra's own webhook whose listing shows no files was listed without the Message Content
intent; it is fetched whole through the webhook, one request per message, and the channel
says so once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from astra.config import WebhookRef
from astra.readback.when import snowflake_time
from astra.sinks.attachments import BatchName, parse_attachment_name
from astra.sinks.discord_read import PAGE_LIMIT, DiscordReader


class StoredFile(msgspec.Struct, frozen=True):
    """One of astra's attachments as Discord holds it (the link is signed: never shown)."""

    name: BatchName
    filename: str
    url: str
    size: int


class Post(msgspec.Struct, frozen=True):
    """A message of astra's, with its batch files in posting order."""

    channel: str  # the configured channel name
    message_id: int
    files: list[StoredFile]

    @property
    def posted(self) -> float:
        """When Discord stored it (unix seconds, from the message id)."""
        return snowflake_time(self.message_id)


class Pending(msgspec.Struct, frozen=True):
    """A post of astra's webhook listed without its content: to be fetched through it."""

    channel: str
    message_id: int
    webhook: WebhookRef

    @property
    def posted(self) -> float:
        """When Discord stored it (unix seconds, from the message id)."""
        return snowflake_time(self.message_id)


class ChannelHistory:
    """Lists one configured channel (or its thread) and picks astra's posts out of it."""

    def __init__(
        self,
        reader: DiscordReader,
        name: str,
        channel_id: int,
        webhooks: dict[int, WebhookRef],
        *,
        notice: Callable[[str], None],
        thread_id: int | None = None,
    ) -> None:
        self.name = name
        self.channel_id = channel_id
        self.thread_id = thread_id
        self._reader = reader
        self._webhooks = webhooks
        self._notice = notice
        self._said_webhook_path = False
        self.messages = 0  # messages listed
        self.foreign = 0  # of them, not astra's (people, bots, other webhooks, other files)
        self.fetched = 0  # fetched one by one through the webhook (no Message Content intent)
        self.last_listed = 0  # the id of the message classified last

    @property
    def listed_id(self) -> int:
        """The channel whose history holds the posts: the thread, when posts go to one."""
        return self.thread_id or self.channel_id

    async def forward(self, after: int, until: int | None = None) -> AsyncIterator[Post]:
        """astra's posts after snowflake ``after`` (and before ``until``), oldest first."""
        while True:
            page = await self._reader.messages(self.listed_id, after=after, limit=PAGE_LIMIT)
            if not page:
                return
            # Discord lists newest first, also when paging forward with ``after``.
            ordered = sorted(page, key=_message_id)
            for message in ordered:
                if until is not None and _message_id(message) >= until:
                    return
                post = await self.post(message)
                if post is not None:
                    yield post
            after = _message_id(ordered[-1])
            if len(page) < PAGE_LIMIT:
                return

    async def backward(self, before: int, stop_at: int) -> AsyncIterator[Post | Pending | None]:
        """Every message before snowflake ``before`` down to ``stop_at``, newest first, as
        astra's post, a post still to fetch, or ``None`` for anything else (nothing fetched)."""
        while True:
            page = await self._reader.messages(self.listed_id, before=before, limit=PAGE_LIMIT)
            ordered = sorted(page, key=_message_id, reverse=True)
            for message in ordered:
                if _message_id(message) < stop_at:
                    return
                yield self.classify(message)
            if len(page) < PAGE_LIMIT:
                return
            before = _message_id(ordered[-1])

    async def post(self, message: dict[str, Any]) -> Post | None:
        """The message as one of astra's posts, or ``None`` (counted) when it is not one."""
        found = self.classify(message)
        return await self.fetch(found) if isinstance(found, Pending) else found

    def classify(self, message: dict[str, Any]) -> Post | Pending | None:
        """What a listed message is, without a request; ``None`` (counted) if not astra's.

        Only astra's own webhooks count: files named like astra's from any other webhook
        or author are someone else's.
        """
        self.messages += 1
        self.last_listed = _message_id(message)
        webhook = self._webhooks.get(_int(message.get("webhook_id")) or 0)
        if webhook is None:
            self.foreign += 1
            return None
        if not message.get("attachments") and not message.get("embeds"):
            return Pending(self.name, _message_id(message), webhook)
        files = _batch_files(message)
        if not files:
            self.foreign += 1
            return None
        return Post(channel=self.name, message_id=_message_id(message), files=files)

    async def fetch(self, pending: Pending) -> Post | None:
        """A post listed without content, fetched whole through astra's webhook."""
        if not self._said_webhook_path:
            self._said_webhook_path = True
            self._notice(
                f"#{self.name}: the listing shows no message content (the bot lacks the "
                "Message Content intent); fetching each post through astra's webhook"
            )
        self.fetched += 1
        whole = await self._reader.webhook_message(
            pending.webhook, pending.message_id, thread_id=self.thread_id
        )
        files = _batch_files(whole) if whole is not None else []
        if not files:
            self.foreign += 1
            return None
        return Post(channel=self.name, message_id=pending.message_id, files=files)


def _batch_files(message: dict[str, Any]) -> list[StoredFile]:
    """astra's batch attachments of a message, in order; other files are left out."""
    files = []
    for attachment in message.get("attachments") or []:
        if not isinstance(attachment, dict):
            continue
        filename = str(attachment.get("filename", ""))
        name = parse_attachment_name(filename)
        url = attachment.get("url")
        if name is None or not isinstance(url, str):
            continue
        files.append(StoredFile(name, filename, url, _int(attachment.get("size")) or 0))
    return files


def _message_id(message: dict[str, Any]) -> int:
    return _int(message.get("id")) or 0


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
