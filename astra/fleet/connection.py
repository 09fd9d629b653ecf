"""The Redis connection: one client per member, deadlines on every call, errors in one line."""

from __future__ import annotations

from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError, ResponseError

# Seconds for a connect and for a reply: a hung Redis must not stall a member for minutes.
TIMEOUT_S = 3.0
# Blocking reads wait this long at most, well inside the reply deadline.
BLOCK_MS = 1000

__all__ = [
    "BLOCK_MS",
    "AuthenticationError",
    "Keys",
    "RedisError",
    "ResponseError",
    "connect",
    "describe",
    "is_auth_error",
    "text",
]


class Keys:
    """Every key a fleet uses, under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.stream = f"{prefix}:events"
        self.group = f"{prefix}-posters"
        self.lease = f"{prefix}:lease"
        self.token = f"{prefix}:lease:token"
        self.members = f"{prefix}:members"
        self._prefix = prefix

    def report(self, day: str) -> str:
        """The key saying which member made the fleet's daily report of ``day``."""
        return f"{self._prefix}:report:{day}"


def connect(url: str) -> aioredis.Redis:
    """A client for ``url`` that fails fast: one immediate retry only, which a pooled
    connection that went stale (Redis restarted) needs; the callers retry the rest."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=TIMEOUT_S,
        socket_connect_timeout=TIMEOUT_S,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=0,
    )


def is_auth_error(exc: BaseException) -> bool:
    """True when Redis refused the credentials (a user's error, not an outage)."""
    if isinstance(exc, AuthenticationError):
        return True
    text = str(exc)
    return isinstance(exc, ResponseError) and text.startswith(("WRONGPASS", "NOAUTH", "NOPERM"))


def text(raw: bytes | str) -> str:
    """A Redis reply as text (replies are bytes: the client does not decode them)."""
    return raw if isinstance(raw, str) else raw.decode(errors="replace")


def describe(exc: BaseException, redact: Callable[[str], str]) -> str:
    """One redacted line for a Redis error (redis-py's text may quote the URL)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return redact(f"{type(exc).__name__}: {text}"[:300])
