"""Rate-limit bookkeeping with a fake clock: waits come from headers and our own ledgers."""

from __future__ import annotations

from astra.sinks.ratelimit import RateLimiter


class Clock:
    """A hand-driven clock."""

    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_bucket_headers_make_the_next_request_wait_for_the_reset() -> None:
    """After ``Remaining: 0`` that webhook's next request waits for ``Reset-After``, no other."""
    clock = Clock()
    limiter = RateLimiter(clock)
    assert limiter.wait_before("hook", "chan") == 0
    limiter.sent("hook", "chan")
    limiter.update("hook", {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "1.5"})
    assert limiter.wait_before("hook", "chan") == 1.5
    clock.now += 1.5
    assert limiter.wait_before("hook", "chan") == 0
    assert limiter.wait_before("other-hook", "chan") == 0


def test_per_channel_budget_of_30_a_minute_is_kept_without_headers() -> None:
    """Without any header, a channel's 31st post within a minute waits for the first to age out."""
    clock = Clock()
    limiter = RateLimiter(clock, channel_per_minute=30)
    for _ in range(30):
        assert limiter.wait_before("hook", "logs") == 0
        limiter.sent("hook", "logs")
        clock.now += 0.5
    assert limiter.wait_before("hook", "logs") == 61 - 15
    assert limiter.wait_before("hook2", "analytics") == 0
    clock.now += 46
    assert limiter.wait_before("hook", "logs") == 0


def test_429_scopes() -> None:
    """A 429 blocks its webhook (user), its channel (shared) or everything (global), by scope."""
    clock = Clock()
    limiter = RateLimiter(clock)
    limiter.limited("hook", "logs", 2.0, "user", False)
    assert limiter.wait_before("hook", "logs") == 2.0
    assert limiter.wait_before("hook2", "analytics") == 0
    limiter.limited("hook2", "analytics", 42.0, "shared", False)
    assert limiter.wait_before("hook3", "analytics") == 42.0, "shared scope blocks the channel"
    limiter.limited("hook", "logs", 3.0, "global", True)
    assert limiter.wait_before("hook4", "performance") == 3.0


def test_global_budget() -> None:
    """Over the global budget per second, the next request waits out the second."""
    clock = Clock()
    limiter = RateLimiter(clock, global_per_second=3)
    for i in range(3):
        limiter.sent(f"h{i}", f"c{i}")
    assert limiter.wait_before("h9", "c9") == 1.0


def test_cloudflare_ban_blocks_everything() -> None:
    """A Cloudflare ban blocks every webhook and channel."""
    clock = Clock()
    limiter = RateLimiter(clock)
    limiter.block_everything(60)
    assert limiter.wait_before("any", "thing") == 60


def test_two_names_for_one_channel_share_one_budget() -> None:
    """Channel names found to be one Discord channel share that channel's budget."""
    clock = Clock()
    limiter = RateLimiter(clock, channel_per_minute=3)
    limiter.sent("hook-a", "analytics")
    limiter.sent("hook-b", "logs")
    limiter.same_channel("analytics", "channel:1")
    limiter.same_channel("logs", "channel:1")
    limiter.sent("hook-a", "channel:1")
    assert limiter.wait_before("hook-a", "channel:1") > 0
    assert limiter.wait_before("hook-b", "logs") > 0
