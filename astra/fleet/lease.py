"""The poster's lease: one holder at a time, a TTL it renews, a fencing token it proves.

The lease key holds ``<token>|<member>``; the token comes from a counter that only grows,
so every holder has a token no former holder had. Acquiring, renewing and releasing are
Lua scripts: each is one atomic step in Redis, so a holder can only renew or release the
lease it still holds.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from astra.fleet.connection import Keys, text

_ACQUIRE = """
if redis.call('set', KEYS[1], 'acquiring', 'NX', 'PX', ARGV[2]) then
  local token = redis.call('incr', KEYS[2])
  redis.call('set', KEYS[1], token .. '|' .. ARGV[1], 'PX', ARGV[2])
  return token
end
return 0
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Lease:
    """This member's view of the fleet's lease."""

    def __init__(self, client: aioredis.Redis, keys: Keys, member: str, ttl_s: float) -> None:
        self._client = client
        self._keys = keys
        self.member = member
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.token = 0
        self.holder = ""
        # Monotonic time a renewal that succeeded was *sent*: the lease lives at least a
        # TTL from then, whatever Redis answers later.
        self._confirmed_at = 0.0
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @property
    def value(self) -> str:
        """What the lease key holds while this member holds it."""
        return f"{self.token}|{self.member}"

    async def try_acquire(self) -> bool:
        """Take the lease when nobody holds it; True when this member holds it now."""
        sent = time.monotonic()
        token = int(
            await self._acquire(
                keys=[self._keys.lease, self._keys.token], args=[self.member, self.ttl_ms]
            )
        )
        if token:
            self.token = token
            self.holder = self.member
            self._confirmed_at = sent
            return True
        raw = await self._client.get(self._keys.lease)
        self.holder = text(raw).partition("|")[2] if raw else ""
        return False

    async def renew(self) -> bool:
        """Extend the lease by a TTL; False when it is no longer this member's."""
        sent = time.monotonic()
        renewed = bool(await self._renew(keys=[self._keys.lease], args=[self.value, self.ttl_ms]))
        if renewed:
            self._confirmed_at = sent
        else:
            self.lost()
        return renewed

    async def holds(self) -> bool:
        """The fencing check before a post: is the lease still this member's, with this token?

        Asks Redis; only if Redis cannot answer, trusts a renewal sent less than half a TTL
        ago (the lease cannot have expired since).
        """
        if not self.token:
            return False
        try:
            raw = await self._client.get(self._keys.lease)
        except Exception:
            return time.monotonic() - self._confirmed_at < self.ttl_ms / 2000
        return raw is not None and text(raw) == self.value

    def valid_for(self) -> float:
        """Seconds the lease surely lives on from the last confirmed renewal (≤ 0: expired)."""
        if not self.token:
            return 0.0
        return self._confirmed_at + self.ttl_ms / 1000 - time.monotonic()

    def lost(self) -> None:
        """Forget the lease: this member is no longer the poster."""
        self.token = 0
        if self.holder == self.member:
            self.holder = ""

    async def release(self) -> None:
        """Give the lease up (a clean stop), so another member need not wait out the TTL."""
        if self.token:
            value = self.value
            self.lost()
            await self._release(keys=[self._keys.lease], args=[value])
