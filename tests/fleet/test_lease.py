"""The poster's lease against a real Redis: one holder, renewals, the fencing check."""

from __future__ import annotations

import time

import anyio

from astra.config import parse
from astra.fleet.connection import Keys, connect
from astra.fleet.lease import Lease
from astra.fleet.node import Fleet
from astra.redaction import Redactor
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


def test_a_days_report_is_made_by_the_first_member_to_claim_it(
    redis_server: RedisServer,
) -> None:
    """Two members of one fleet ask to make the same day's report: the first may, the
    second is told it was made; another day, or another fleet's prefix, is free again."""

    def member(name: str, prefix: str = "astra") -> Fleet:
        text = f'[fleet]\nredis = "{redis_server.url}"\nname = "{name}"\nkey_prefix = "{prefix}"\n'
        config = parse(text, "test.toml", {})
        return Fleet(config, Redactor(config.secrets()), streams={}, emit=lambda _: None)

    async def main() -> None:
        a, b, other = member("a"), member("b"), member("c", prefix="other")
        assert await a.first_to_report("2026-12-01")
        assert not await b.first_to_report("2026-12-01")
        assert not await a.first_to_report("2026-12-01")
        assert await b.first_to_report("2026-12-02")
        assert await other.first_to_report("2026-12-01")
        assert redis_server.client().get("astra:report:2026-12-01") == b"a"

    anyio.run(main)
