"""The poster's lease against a real Redis: one holder, renewals, the fencing check."""

from __future__ import annotations

import time

import anyio

from astra.fleet.connection import Keys, connect
from astra.fleet.lease import Lease
from tests.fleet.conftest import RedisServer


def test_one_holder_at_a_time_and_a_former_holder_fails_the_fencing_check(
    redis_server: RedisServer,
) -> None:
    """B waits while A holds the lease; after A's TTL passes unrenewed, B holds it with a
    higher token and A can neither renew nor pass the check before a post."""

    async def main() -> None:
        client = connect(redis_server.url)
        keys = Keys("t")
        a, b = Lease(client, keys, "a", 0.3), Lease(client, keys, "b", 0.3)
        assert await a.try_acquire() and a.token == 1
        assert not await b.try_acquire() and b.holder == "a"
        assert await a.renew() and await a.holds()
        await anyio.sleep(0.5)  # A is "paused" past its TTL
        assert await b.try_acquire() and b.token == 2
        assert not await a.holds()
        assert not await a.renew() and a.token == 0
        await b.release()
        assert await a.try_acquire() and a.token == 3
        await client.aclose()

    anyio.run(main)


def test_a_holder_trusts_its_lease_without_redis_only_within_half_a_ttl(
    redis_server: RedisServer,
) -> None:
    """Redis gone: the fencing check passes right after a renewal, fails half a TTL on."""

    async def main() -> None:
        client = connect(redis_server.url)
        lease = Lease(client, Keys("t"), "a", 1.0)
        assert await lease.try_acquire()
        redis_server.kill()
        assert await lease.holds()
        time.sleep(0.6)
        assert not await lease.holds()
        await client.aclose()

    anyio.run(main)
