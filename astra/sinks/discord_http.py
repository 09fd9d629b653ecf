"""Discord REST transport: webhook executes and channel webhook provisioning.

One request, one classified outcome; retry policy lives in ``delivery``. Errors never
carry a URL: webhook URLs hold their token, so only the webhook id is ever named.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from typing import Any

import aiohttp
import msgspec
import orjson

from astra import __version__
from astra.config import WebhookRef
from astra.errors import DiscordApiError as DiscordApiError  # re-exported
from astra.sinks.messages import OutgoingMessage
from astra.sinks.ratelimit import RateLimiter
from astra.statistics import TransportStatistics

USER_AGENT = f"DiscordBot (https://github.com/astra-telemetry/astra, {__version__})"
# A ban by Cloudflare is not a rate limit: stay away long enough for it to lift.
BAN_BACKOFF_S = 60.0


class Delivered(msgspec.Struct, frozen=True):
    """Discord stored the message (in ``channel_id``: a new forum thread's id, for one)."""

    message_id: str
    channel_id: str = ""


class RetryLater(msgspec.Struct, frozen=True):
    """A transient failure (429, 5xx, network, timeout): send the same request again."""

    reason: str
    after: float = 0.0
    rate_limited: bool = False


class Rejected(msgspec.Struct, frozen=True):
    """Discord refused the payload itself (400, 413): never resend it unchanged."""

    status: int
    code: int
    reason: str


class WebhookGone(msgspec.Struct, frozen=True):
    """The webhook was deleted or its token revoked (401, 403, 404)."""

    status: int
    reason: str


class MessageGone(msgspec.Struct, frozen=True):
    """The message to edit is gone (404 / 10008 Unknown Message): someone deleted it."""

    reason: str


Outcome = Delivered | RetryLater | Rejected | WebhookGone | MessageGone
_OUTCOME_NAMES: dict[type, str] = {
    Delivered: "delivered",
    RetryLater: "retry",
    Rejected: "rejected",
    WebhookGone: "webhook_gone",
    MessageGone: "message_gone",
}
# Discord's codes for a 404 that is not about the webhook itself.
UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008


def _payload(message: OutgoingMessage, username: str) -> dict[str, Any]:
    # Nothing is parsed: only the ids astra put in the content on purpose may ping.
    mentions: dict[str, Any] = {"parse": []}
    if message.ping_roles:
        mentions["roles"] = message.ping_roles
    if message.ping_users:
        mentions["users"] = message.ping_users
    payload: dict[str, Any] = {"allowed_mentions": mentions}
    if message.content:
        payload["content"] = message.content
    if message.embeds:
        payload["embeds"] = msgspec.to_builtins(message.embeds)
    if message.flags:
        payload["flags"] = message.flags
    if username:
        payload["username"] = username
    if message.files:
        # Each id is the n of the files[n] part, as a snowflake: a string, which is how
        # Discord's OpenAPI description types it (SnowflakeType), not a JSON number.
        payload["attachments"] = [
            {"id": str(i), "filename": f.filename} for i, f in enumerate(message.files)
        ]
    return payload


def error_summary(status: int, body: bytes) -> tuple[int, str]:
    """Discord's error code and a one-line reason from an error answer's body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return 0, f"HTTP {status}"
    if not isinstance(data, dict):
        return 0, f"HTTP {status}"
    code = int(data.get("code", 0) or 0)
    message = str(data.get("message", f"HTTP {status}"))
    errors = data.get("errors")
    if errors:
        message += f": {_first_error_path(errors)}"
    return code, f"{message} ({status}/{code})"


def obey_429(
    limiter: RateLimiter, key: str, channel: str, headers: Mapping[str, str], body: bytes
) -> RetryLater:
    """Record a 429 with ``limiter`` so later requests wait as Discord said; the wait."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if "Via" not in headers or not isinstance(data, dict):
        # Cloudflare's ban answers 429 without Via and with a text body.
        limiter.block_everything(BAN_BACKOFF_S)
        return RetryLater("blocked by Cloudflare (429 without Via)", BAN_BACKOFF_S, True)
    try:
        retry_after = float(data.get("retry_after", 1.0))
    except (TypeError, ValueError):
        retry_after = 1.0
    scope = headers.get("X-RateLimit-Scope", "")
    is_global = bool(data.get("global")) or headers.get("X-RateLimit-Global") == "true"
    limiter.limited(key, channel, retry_after, scope, is_global)
    return RetryLater(f"rate limited ({scope or 'bucket'})", retry_after, True)


def _first_error_path(tree: Any, path: str = "") -> str:
    if isinstance(tree, dict):
        if tree.get("_errors"):
            first = tree["_errors"][0]
            return f"{path or 'body'}: {first.get('message', '')}"
        for key, sub in tree.items():
            found = _first_error_path(sub, f"{path}.{key}" if path else str(key))
            if found:
                return found
    return ""


class DiscordHttp:
    """Sends webhook executes and bot-token REST calls to ``api_base``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_base: str,
        limiter: RateLimiter,
        *,
        bot_token: str = "",
        username: str = "",
    ) -> None:
        self._session = session
        self._api_base = api_base.rstrip("/")
        self.limiter = limiter
        self._bot_token = bot_token
        self._username = username
        # Discord's per-channel limit is per real channel: two configured channels (or
        # webhooks) may post into the same one. Learned from each stored message.
        self._channel_of: dict[int, str] = {}
        self._requests = 0
        self._waits = 0
        self._waited_s = 0.0
        self._outcomes: Counter[str] = Counter()
        self._network_errors = 0

    def statistics(self) -> TransportStatistics:
        """Requests sent so far, the waits before them and what came back."""
        return TransportStatistics(
            requests=self._requests,
            waits=self._waits,
            waited_s=round(self._waited_s, 3),
            outcomes=dict(self._outcomes),
            network_errors=self._network_errors,
        )

    @property
    def has_bot_token(self) -> bool:
        """Whether bot-token calls (provisioning, thread lookups) are possible."""
        return bool(self._bot_token)

    def webhook_url(self, webhook: WebhookRef) -> str:
        """The versioned execute URL; pasted URLs only contribute their id and token."""
        return f"{self._api_base}/webhooks/{webhook.id}/{webhook.token}"

    async def execute(
        self,
        webhook: WebhookRef,
        message: OutgoingMessage,
        channel: str,
        *,
        thread_id: int | None = None,
        thread_name: str = "",
    ) -> Outcome:
        """POST one message through the webhook, after waiting out every known limit.

        ``thread_id`` posts into that thread of the webhook's channel; ``thread_name``
        creates a forum thread with this message (``Delivered.channel_id`` is its id).
        """
        key = str(webhook.id)
        channel = self._channel_of.get(webhook.id, channel)
        await self._wait_for_budget(key, channel)
        payload = _payload(message, self._username)
        if thread_name:
            payload["thread_name"] = thread_name
        params = {"wait": "true"}
        if thread_id is not None:
            params["thread_id"] = str(thread_id)
        return await self._send_message(
            "POST", self.webhook_url(webhook), params, payload, message, key, channel
        )

    async def edit_message(
        self,
        webhook: WebhookRef,
        message_id: str,
        message: OutgoingMessage,
        channel: str,
        *,
        thread_id: int | None = None,
    ) -> Outcome:
        """PATCH a message this webhook posted: its content, embeds and allowed mentions.

        ``MessageGone`` when the message was deleted (404 / 10008).
        """
        key = f"{webhook.id}:edit"
        await self._wait_for_budget(key, channel)
        payload = _payload(message, "")
        payload.pop("flags", None)  # an edit may not change the notification flag
        params = {} if thread_id is None else {"thread_id": str(thread_id)}
        url = f"{self.webhook_url(webhook)}/messages/{message_id}"
        return await self._send_message("PATCH", url, params, payload, message, key, channel)

    async def _wait_for_budget(self, key: str, channel: str) -> None:
        # Check again after every sleep: another channel may have taken the slot meanwhile.
        waited = False
        while (wait := self.limiter.wait_before(key, channel)) > 0:
            waited = True
            self._waited_s += wait
            await asyncio.sleep(wait)
        self._waits += waited

    async def _send_message(
        self,
        method: str,
        url: str,
        params: dict[str, str],
        payload: dict[str, Any],
        message: OutgoingMessage,
        key: str,
        channel: str,
    ) -> Outcome:
        headers = {"User-Agent": USER_AGENT}
        data: aiohttp.FormData | bytes
        if message.files:
            form = aiohttp.FormData(quote_fields=False)
            form.add_field(
                "payload_json", orjson.dumps(payload).decode(), content_type="application/json"
            )
            for index, attachment in enumerate(message.files):
                form.add_field(
                    f"files[{index}]",
                    attachment.data,
                    filename=attachment.filename,
                    content_type="application/gzip",
                )
            data = form
        else:
            data = orjson.dumps(payload)
            headers["Content-Type"] = "application/json"
        self.limiter.sent(key, channel)
        self._requests += 1
        try:
            async with self._session.request(
                method, url, params=params, data=data, headers=headers
            ) as response:
                body = await response.read()
                outcome = self._classify(key, channel, response.status, response.headers, body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # A timeout may still have posted: event ids in the attachment let readers dedupe.
            # Only the type: aiohttp's messages carry the URL, and with it the webhook token.
            self._network_errors += 1
            outcome = RetryLater(f"network error: {type(exc).__name__}")
        self._outcomes[_OUTCOME_NAMES[type(outcome)]] += 1
        return outcome

    def _classify(
        self, key: str, channel: str, status: int, headers: Mapping[str, str], body: bytes
    ) -> Outcome:
        self.limiter.update(key, headers)
        if status in (200, 204):
            message_id = ""
            if body:
                try:
                    stored = orjson.loads(body)
                    message_id = str(stored.get("id", ""))
                    stored_in = str(stored.get("channel_id") or "")
                    if stored_in and key.isdigit() and int(key) not in self._channel_of:
                        real = f"channel:{stored['channel_id']}"
                        self.limiter.same_channel(channel, real)
                        self._channel_of[int(key)] = real
                except (orjson.JSONDecodeError, AttributeError, ValueError):
                    message_id = stored_in = ""
            return Delivered(message_id, stored_in)
        if status == 429:
            return self._rate_limited(key, channel, headers, body)
        code, reason = error_summary(status, body)
        if status == 404 and code == UNKNOWN_MESSAGE:
            return MessageGone(reason)
        if status == 404 and code == UNKNOWN_CHANNEL:
            # The thread named by thread_id is gone, not the webhook.
            return Rejected(status, code, reason)
        if status in (401, 403, 404):
            return WebhookGone(status, reason)
        if 400 <= status < 500 and status not in (408, 409):
            # A client error is about this request: sending it unchanged would fail again.
            return Rejected(status, code, reason)
        return RetryLater(reason)

    def _rate_limited(
        self, key: str, channel: str, headers: Mapping[str, str], body: bytes
    ) -> RetryLater:
        return obey_429(self.limiter, key, channel, headers, body)

    # --- bot-token calls ------------------------------------------------------------------

    async def _bot_call(self, method: str, path: str, json_body: Any = None) -> Any:
        headers = {"User-Agent": USER_AGENT, "Authorization": f"Bot {self._bot_token}"}
        body: bytes | None = None
        if json_body is not None:
            body = orjson.dumps(json_body)
            headers["Content-Type"] = "application/json"
        for _ in range(5):
            self._requests += 1
            try:
                async with self._session.request(
                    method, f"{self._api_base}{path}", data=body, headers=headers
                ) as response:
                    raw = await response.read()
                    if response.status == 429:
                        retry = self._rate_limited("bot" + path, "bot", response.headers, raw)
                        await asyncio.sleep(min(retry.after, 60.0))
                        continue
                    if response.status >= 400:
                        _, reason = error_summary(response.status, raw)
                        raise DiscordApiError(f"{method} {path.split('?')[0]}: {reason}")
                    return orjson.loads(raw) if raw else None
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                self._network_errors += 1
                raise DiscordApiError(
                    f"{method} {path}: Discord unreachable ({type(exc).__name__})"
                ) from None
            except orjson.JSONDecodeError:
                raise DiscordApiError(f"{method} {path}: answer is not JSON") from None
        raise DiscordApiError(f"{method} {path}: still rate limited after 5 tries")

    async def find_or_create_webhook(self, channel_id: int, name: str) -> tuple[WebhookRef, bool]:
        """Reuse the webhook astra created in this channel earlier, or create one.

        Returns the webhook and whether it was created now. A bot only sees the token of
        webhooks it created itself, so a same-named webhook without a token is not ours.

        Raises ``DiscordApiError`` when Discord refuses a call (missing permission, unknown
        channel), cannot be reached, keeps rate limiting, or answers something unexpected.
        """
        listed = await self._bot_call("GET", f"/channels/{channel_id}/webhooks")
        for hook in listed if isinstance(listed, list) else []:
            if isinstance(hook, dict) and hook.get("name") == name and hook.get("token"):
                ref = _webhook_ref(hook)
                if ref is not None:
                    return ref, False
        created = await self._bot_call("POST", f"/channels/{channel_id}/webhooks", {"name": name})
        ref = _webhook_ref(created)
        if ref is None:
            raise DiscordApiError(f"POST /channels/{channel_id}/webhooks: unexpected answer")
        return ref, True

    async def channel_info(self, channel_id: int) -> dict[str, Any]:
        """The channel object (``type``, ``guild_id``, ``parent_id``), with the bot token.

        Raises ``DiscordApiError`` as ``find_or_create_webhook`` does.
        """
        found = await self._bot_call("GET", f"/channels/{channel_id}")
        if not isinstance(found, dict):
            raise DiscordApiError(f"GET /channels/{channel_id}: unexpected answer")
        return found

    async def find_thread(self, guild_id: int, parent_id: int, name: str) -> int | None:
        """The newest thread of ``parent_id`` named ``name``: active ones, then archived ones.

        Raises ``DiscordApiError`` as ``find_or_create_webhook`` does.
        """
        for path in (
            f"/guilds/{guild_id}/threads/active",
            f"/channels/{parent_id}/threads/archived/public",
        ):
            listed = await self._bot_call("GET", path)
            threads = listed.get("threads") if isinstance(listed, dict) else None
            for thread in threads if isinstance(threads, list) else []:
                if (
                    isinstance(thread, dict)
                    and str(thread.get("parent_id")) == str(parent_id)
                    and thread.get("name") == name
                    and str(thread.get("id", "")).isdigit()
                ):
                    return int(thread["id"])
        return None


def _webhook_ref(hook: Any) -> WebhookRef | None:
    if not isinstance(hook, dict):
        return None
    try:
        return WebhookRef(int(hook["id"]), str(hook["token"]))
    except (KeyError, TypeError, ValueError):
        return None
