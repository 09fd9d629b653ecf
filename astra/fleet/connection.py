"""The Redis connection: one client per member, deadlines on every call, errors in one line."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

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
    "certificate_advice",
    "connect",
    "describe",
    "is_auth_error",
    "text",
    "untrusted_certificate",
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


def connect(url: str, tls_ca: str = "") -> aioredis.Redis:
    """A client for ``url`` that fails fast: one immediate retry only, which a pooled
    connection that went stale (Redis restarted) needs; the callers retry the rest.

    ``tls_ca`` (a rediss:// URL only) is the CA file trusted for Redis's certificate."""
    # Only an SSL connection takes the option: a redis:// client would refuse it.
    tls: dict[str, Any] = {"ssl_ca_certs": tls_ca} if tls_ca else {}
    return aioredis.Redis.from_url(
        url,
        socket_timeout=TIMEOUT_S,
        socket_connect_timeout=TIMEOUT_S,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=0,
        **tls,
    )


def is_auth_error(exc: BaseException) -> bool:
    """True when Redis refused the credentials (a user's error, not an outage)."""
    if isinstance(exc, AuthenticationError):
        return True
    text = str(exc)
    return isinstance(exc, ResponseError) and text.startswith(("WRONGPASS", "NOAUTH", "NOPERM"))


def untrusted_certificate(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The ``ssl`` error behind ``exc`` when Redis's TLS certificate failed verification,
    else None. redis-py raises its own ConnectionError while handling the ``ssl`` error,
    which stays in the chain."""
    seen: BaseException | None = exc
    for _ in range(10):  # a chain is short; never loop on a cycle
        if seen is None or isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


# OpenSSL's verify codes for a certificate that does not name the host (or IP) connected to.
NAME_MISMATCH = (62, 64)


def certificate_advice(error: ssl.SSLCertVerificationError, tls_ca: str) -> str:
    """Why the certificate failed (OpenSSL's words) and what to change, in one line."""
    why = str(error.verify_message or error.reason or "certificate verify failed")
    why = why[:200].rstrip(".")
    if error.verify_code in NAME_MISMATCH:
        advice = "use a host name the certificate names in fleet.redis"
    elif tls_ca:
        advice = "neither the CA in fleet.tls_ca nor a system CA signed it"
    else:
        advice = "to trust a private CA, set fleet.tls_ca to its certificate file"
    return f"{why}; {advice}"


def text(raw: bytes | str) -> str:
    """A Redis reply as text (replies are bytes: the client does not decode them)."""
    return raw if isinstance(raw, str) else raw.decode(errors="replace")


def describe(exc: BaseException, redact: Callable[[str], str]) -> str:
    """One redacted line for a Redis error (redis-py's text may quote the URL)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return redact(f"{type(exc).__name__}: {text}"[:300])
