"""Rate-limit bookkeeping: obey Discord's limits before sending, not after being refused.

Pure logic on an injectable clock: the transport asks ``wait_before`` how long to sleep
and reports every response back. Three budgets apply to each webhook execute:

- the webhook's bucket, read from the ``X-RateLimit-*`` headers;
- the per-channel budget of 30 webhook messages a minute, which Discord does not
  announce in the headers, so astra keeps its own ledger;
- the global budget (requests per second across everything).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from astra.statistics import RateLimiterStatistics

# Discord counts 30 messages a minute per channel from when they arrive; astra counts from
# when they leave. A second of slack keeps a post that left at :59.9 out of the next minute.
CHANNEL_WINDOW_S = 61.0


@dataclass
class Bucket:
    """What the last response said about one webhook's bucket."""

    remaining: int = 1
    reset_at: float = 0.0
    name: str = ""


class SlidingBudget:
    """At most ``limit`` events in any ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._sent: deque[float] = deque()

    def wait(self, now: float) -> float:
        """Seconds to wait before one more is allowed."""
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()
        if len(self._sent) < self.limit:
            return 0.0
        return self._sent[0] + self.window - now

    def record(self, now: float) -> None:
        """Count one use at ``now``."""
        self._sent.append(now)

    def merge(self, other: SlidingBudget) -> None:
        """Take in the uses another ledger recorded (the same budget seen under two names)."""
        self._sent = deque(sorted([*self._sent, *other._sent]))

    def block_until(self, until: float, now: float) -> None:
        """Treat the budget as spent until ``until`` (after Discord said so with a 429)."""
        self._sent.clear()
        self._sent.extend([until - self.window] * self.limit)


class RateLimiter:
    """Budgets for every webhook, channel and the process as a whole."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        channel_per_minute: int = 30,
        global_per_second: int = 45,
    ) -> None:
        self._clock = clock
        self._channel_per_minute = channel_per_minute
        self._buckets: dict[str, Bucket] = {}
        self._channels: dict[str, SlidingBudget] = {}
        self._global = SlidingBudget(global_per_second, 1.0)
        # Reading history back may use at most half of the global budget: live delivery
        # always has the other half.
        self._reads = SlidingBudget(max(1, global_per_second // 2), 1.0)
        self._global_blocked_until = 0.0
        self._limited: Counter[str] = Counter()

    def statistics(self) -> RateLimiterStatistics:
        """The limiter's figures now: 429s by scope, and any block in force."""
        return RateLimiterStatistics(
            limited=dict(self._limited),
            blocked_for_s=max(0.0, self._global_blocked_until - self._clock()),
            buckets=len(self._buckets),
        )

    def _channel(self, channel_key: str) -> SlidingBudget:
        budget = self._channels.get(channel_key)
        if budget is None:
            budget = self._channels[channel_key] = SlidingBudget(
                self._channel_per_minute, CHANNEL_WINDOW_S
            )
        return budget

    def same_channel(self, known_as: str, real_key: str) -> None:
        """``known_as`` turned out to be the real channel ``real_key``: share one ledger."""
        old = self._channels.get(known_as)
        new = self._channels.get(real_key)
        if old is None or old is new:
            self._channels.setdefault(known_as, self._channel(real_key))
            return
        if new is not None:
            old.merge(new)
        self._channels[real_key] = self._channels[known_as] = old

    def wait_before(self, webhook_key: str, channel_key: str) -> float:
        """Seconds to sleep before the next execute on this webhook and channel."""
        now = self._clock()
        waits = [
            self._channel(channel_key).wait(now),
            self._global.wait(now),
            self._global_blocked_until - now,
        ]
        bucket = self._buckets.get(webhook_key)
        if bucket is not None and bucket.remaining <= 0:
            waits.append(bucket.reset_at - now)
        return max(0.0, *waits)

    def sent(self, webhook_key: str, channel_key: str) -> None:
        """Record that a request is about to go out."""
        now = self._clock()
        self._channel(channel_key).record(now)
        self._global.record(now)
        bucket = self._buckets.get(webhook_key)
        if bucket is not None and bucket.remaining > 0:
            # Until the response says otherwise, assume this request used one.
            bucket.remaining -= 1

    def update(self, webhook_key: str, headers: Mapping[str, str]) -> None:
        """Read ``X-RateLimit-*`` headers from any response."""
        remaining = headers.get("X-RateLimit-Remaining")
        reset_after = headers.get("X-RateLimit-Reset-After")
        if remaining is None or reset_after is None:
            return
        try:
            bucket = Bucket(
                remaining=int(remaining),
                reset_at=self._clock() + float(reset_after),
                name=headers.get("X-RateLimit-Bucket", ""),
            )
        except ValueError:
            return
        self._buckets[webhook_key] = bucket

    def limited(
        self, webhook_key: str, channel_key: str, retry_after: float, scope: str, is_global: bool
    ) -> None:
        """Record a 429 so every later request waits ``retry_after`` where it applies."""
        now = self._clock()
        until = now + retry_after
        self._limited["global" if is_global else scope or "bucket"] += 1
        if is_global or scope == "global":
            self._global_blocked_until = max(self._global_blocked_until, until)
        elif scope == "shared":
            # The per-channel limit: Discord does not show it in the headers.
            self._channel(channel_key).block_until(until, now)
        else:
            bucket = self._buckets.setdefault(webhook_key, Bucket())
            bucket.remaining = 0
            bucket.reset_at = max(bucket.reset_at, until)

    def block_everything(self, seconds: float) -> None:
        """Stop all requests for a while (a Cloudflare ban is not a rate limit)."""
        self._limited["ban"] += 1
        self._global_blocked_until = max(self._global_blocked_until, self._clock() + seconds)

    def wait_before_read(self, bucket_key: str) -> float:
        """Seconds to sleep before the next read on ``bucket_key`` (a route's bucket)."""
        now = self._clock()
        waits = [self._reads.wait(now), self._global.wait(now), self._global_blocked_until - now]
        shared = self._channels.get(bucket_key)
        if shared is not None:
            # A 429 of scope "shared" on this route, recorded under the route's key.
            waits.append(shared.wait(now))
        bucket = self._buckets.get(bucket_key)
        if bucket is not None and bucket.remaining <= 0:
            waits.append(bucket.reset_at - now)
        return max(0.0, *waits)

    def read_sent(self, bucket_key: str) -> None:
        """Record that a read is about to go out (it counts against the global budget too)."""
        now = self._clock()
        self._reads.record(now)
        self._global.record(now)
        bucket = self._buckets.get(bucket_key)
        if bucket is not None and bucket.remaining > 0:
            bucket.remaining -= 1
