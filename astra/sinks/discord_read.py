"""Reading Discord back: channel history with the bot token, webhook message fetches, CDN files.

The same rate-limit handling as posting (buckets from the headers, 429s, the global limit,
a Cloudflare ban), on a share of the global budget that leaves live delivery the rest.
Transient failures (5xx, timeouts, resets) are retried with backoff; anything else is a
``DiscordApiError`` whose one line names the route, never a token or a CDN link.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from astra.config import WebhookRef
from astra.errors import DiscordApiError
from astra.sinks.delivery import backoff
from astra.sinks.discord_http import USER_AGENT, error_summary, obey_429
from astra.sinks.ratelimit import RateLimiter
from astra.statistics import ReadStatistics

# Discord's page size for GET /channels/{id}/messages.
PAGE_LIMIT = 100
# Transient failures of one read before giving up on it.
MAX_ATTEMPTS = 8
# 429s in a row on one read before giving up on it (each waited out as Discord said).
MAX_RATE_LIMITED = 20
# astra's attachments are at most 10 MiB; room for servers with larger uploads.
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
CHUNK_BYTES = 256 * 1024
_ANCHORS = ("before", "after")


class DiscordReader:
    """Reads channel history, single webhook messages and attachment files."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_base: str,
        limiter: RateLimiter,
        *,
        bot_token: str,
    ) -> None:
        self._session = session
        self._api_base = api_base.rstrip("/")
        self._limiter = limiter
        self._bot_token = bot_token
        self._requests = 0
        self._retries = 0
        self._rate_limited = 0
        self._bytes = 0

    def statistics(self) -> ReadStatistics:
        """Reads sent, retried and rate limited so far, and the bytes downloaded."""
        return ReadStatistics(
            requests=self._requests,
            retries=self._retries,
            rate_limited=self._rate_limited,
            downloaded_bytes=self._bytes,
        )

    async def messages(
        self,
        channel_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = PAGE_LIMIT,
    ) -> list[dict[str, Any]]:
        """One page of ``channel_id``'s history, newest first, as Discord returns it.

        At most one of ``before`` and ``after``; needs View Channel and Read Message History.
        """
        params = {"limit": str(limit)}
        for name, value in zip(_ANCHORS, (before, after), strict=True):
            if value is not None:
                params[name] = str(value)
        route = f"/channels/{channel_id}/messages"
        answer = await self._api("GET", route, params, f"GET:{route}", bot=True)
        if not isinstance(answer, list):
            raise DiscordApiError(f"GET {route}: unexpected answer")
        return [m for m in answer if isinstance(m, dict)]

    async def webhook_message(
        self, webhook: WebhookRef, message_id: int, *, thread_id: int | None = None
    ) -> dict[str, Any] | None:
        """One message posted through ``webhook`` (into ``thread_id``, if one), whole;
        ``None`` if Discord no longer has it."""
        route = f"/webhooks/{webhook.id}/{webhook.token}/messages/{message_id}"
        shown = f"/webhooks/{webhook.id}/…/messages/{message_id}"
        params = {"thread_id": str(thread_id)} if thread_id else {}
        answer = await self._api(
            "GET", route, params, f"GET:webhook-message:{webhook.id}", shown=shown, missing_ok=True
        )
        return answer if isinstance(answer, dict) else None

    async def own_webhooks(self, channel_id: int) -> dict[int, WebhookRef]:
        """The channel's webhooks whose token the bot sees (the ones it created); empty when
        the bot may not manage webhooks there."""
        route = f"/channels/{channel_id}/webhooks"
        try:
            listed = await self._api("GET", route, {}, f"GET:{route}", bot=True)
        except DiscordApiError:
            return {}
        found: dict[int, WebhookRef] = {}
        for hook in listed if isinstance(listed, list) else []:
            if isinstance(hook, dict) and hook.get("token"):
                try:
                    found[int(hook["id"])] = WebhookRef(int(hook["id"]), str(hook["token"]))
                except (KeyError, TypeError, ValueError):
                    continue
        return found

    async def download(self, url: str, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes | None:
        """An attachment's bytes from its CDN link; ``None`` when the CDN no longer has it.

        The link is signed and names the channel: it never appears in an error.
        """
        for attempt in range(MAX_ATTEMPTS):
            self._requests += 1
            try:
                async with self._session.get(url, headers={"User-Agent": USER_AGENT}) as response:
                    if response.status == 404:
                        return None
                    if response.status >= 500 or response.status == 429:
                        self._retries += 1
                        await asyncio.sleep(backoff(attempt))
                        continue
                    if response.status >= 400:
                        raise DiscordApiError(f"attachment download: HTTP {response.status}")
                    data = bytearray()
                    # ``read(n)`` returns what is buffered so far: read to the end, capped.
                    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                        data += chunk
                        if len(data) > max_bytes:
                            raise DiscordApiError(f"attachment download: over {max_bytes:,} bytes")
                    self._bytes += len(data)
                    return bytes(data)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                self._retries += 1
                if attempt + 1 == MAX_ATTEMPTS:
                    raise DiscordApiError(
                        f"attachment download: CDN unreachable ({type(exc).__name__})"
                    ) from None
                await asyncio.sleep(backoff(attempt))
        raise DiscordApiError(f"attachment download: still failing after {MAX_ATTEMPTS} tries")

    async def _api(
        self,
        method: str,
        route: str,
        params: Mapping[str, str],
        bucket: str,
        *,
        bot: bool = False,
        shown: str = "",
        missing_ok: bool = False,
    ) -> Any:
        """One API read within every known limit, retried while the failure is transient."""
        shown = shown or route
        headers = {"User-Agent": USER_AGENT}
        if bot:
            headers["Authorization"] = f"Bot {self._bot_token}"
        failures = limited = 0
        while True:
            while (wait := self._limiter.wait_before_read(bucket)) > 0:
                await asyncio.sleep(wait)
            self._limiter.read_sent(bucket)
            self._requests += 1
            try:
                async with self._session.request(
                    method, f"{self._api_base}{route}", params=params, headers=headers
                ) as response:
                    raw = await response.read()
                    status, answer_headers = response.status, response.headers
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                failures += 1
                if failures >= MAX_ATTEMPTS:
                    raise DiscordApiError(
                        f"{method} {shown}: Discord unreachable ({type(exc).__name__})"
                    ) from None
                self._retries += 1
                await asyncio.sleep(backoff(failures))
                continue
            self._limiter.update(bucket, answer_headers)
            if status == 429:
                self._rate_limited += 1
                limited += 1
                if limited > MAX_RATE_LIMITED:
                    raise DiscordApiError(
                        f"{method} {shown}: still rate limited after {limited} tries"
                    )
                obey_429(self._limiter, bucket, bucket, answer_headers, raw)
                continue
            if status >= 500:
                failures += 1
                if failures >= MAX_ATTEMPTS:
                    raise DiscordApiError(f"{method} {shown}: Discord answers HTTP {status}")
                self._retries += 1
                await asyncio.sleep(backoff(failures))
                continue
            if status == 404 and missing_ok:
                return None
            if status >= 400:
                _, reason = error_summary(status, raw)
                raise DiscordApiError(f"{method} {shown}: {reason}{_hint(status)}")
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise DiscordApiError(f"{method} {shown}: answer is not JSON") from None


def _hint(status: int) -> str:
    """What the operator can do about a refused read."""
    if status == 401:
        return " (check discord.token)"
    if status == 403:
        return " (the bot needs View Channel and Read Message History on this channel)"
    return ""
