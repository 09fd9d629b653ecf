"""Ingest authentication: the bearer token (HTTP) and signed datagrams (UDP).

With ``[ingest] token`` set, ``POST /v1/events`` needs ``Authorization: Bearer <token>``
and every datagram starts with an auth line::

    astra-hmac <64 hex digits: HMAC-SHA256(token, payload)>\\n<payload>

where the payload is what an unsigned datagram holds (one JSON event or NDJSON lines).
The client (``astra.client``) and the sidecar share this module, so both sides sign and
check the same bytes. Comparisons are constant-time (``hmac.compare_digest``).

A signature proves the sender knows the token; it does not stop a datagram captured on
the network from being sent again (no nonce, no clock): see the README's Security section.
"""

from __future__ import annotations

import hashlib
import hmac

AUTH_PREFIX = b"astra-hmac "
_HEX_DIGITS = 2 * hashlib.sha256().digest_size
# Bytes the auth line adds in front of a datagram's payload.
SIGNATURE_BYTES = len(AUTH_PREFIX) + _HEX_DIGITS + 1


def token_key(token: str) -> bytes:
    """The HMAC key (and the bearer token's bytes) for ``token``."""
    return token.encode("utf-8")


def sign(key: bytes, payload: bytes) -> bytes:
    """``payload`` with its auth line in front."""
    digest = hmac.digest(key, payload, "sha256").hex().encode("ascii")
    return AUTH_PREFIX + digest + b"\n" + payload


def split_signed(datagram: bytes) -> tuple[bytes | None, bytes]:
    """``(signature, payload)`` of a datagram; ``(None, datagram)`` when it has no auth line."""
    if not datagram.startswith(AUTH_PREFIX):
        return None, datagram
    end = len(AUTH_PREFIX) + _HEX_DIGITS
    if datagram[end : end + 1] != b"\n":
        # Starts like an auth line but is not one: a signature that cannot be right.
        return b"", datagram
    return datagram[len(AUTH_PREFIX) : end], datagram[end + 1 :]


def signature_ok(key: bytes, signature: bytes, payload: bytes) -> bool:
    """True when ``signature`` (hex, as sent) is HMAC-SHA256(key, payload)."""
    expected = hmac.digest(key, payload, "sha256").hex().encode("ascii")
    return hmac.compare_digest(expected, signature.lower())


def bearer_ok(header: str | None, key: bytes) -> bool:
    """True when an ``Authorization`` header value carries the bearer token ``key``."""
    if not header:
        return False
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    given = credentials.strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, key)
