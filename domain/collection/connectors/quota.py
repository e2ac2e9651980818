"""Redis token buckets: one per (platform, credential, bucket), sized to the documented quotas.

A bucket holds at most `capacity` tokens and refills continuously at `capacity / period`
tokens per second. A call takes `cost` tokens atomically (one Lua script) or fails with
`QuotaExhausted(retry_after)` telling when enough tokens will be back; nothing sleeps.
Keys hold ids only: `<prefix>:quota:<platform>:<credential id>:<bucket>`.

A daily platform quota (YouTube's 10,000 units, TikTok Research's 1,000 requests) is modelled as
a bucket of that capacity refilled over 24 h: it never lets more than the daily amount through
in any 24 h window, and spreads a drained quota's recovery over the day instead of a midnight
cliff. The platform's own 403/429 on exhaustion is handled too (see http.py), so a quota spent
elsewhere with the same key is caught as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

from domain.collection.connectors.base import QuotaExhausted

DAY = 24 * 3600.0


@dataclass(frozen=True)
class BucketSpec:
    capacity: float
    period_seconds: float  # time to refill an empty bucket

    @property
    def rate(self) -> float:
        return self.capacity / self.period_seconds


# Documented defaults (docs/connectors.md says where each figure comes from). A tenant or an
# operator with a raised quota passes its own specs to the connector.
DEFAULT_BUCKETS: Mapping[str, Mapping[str, BucketSpec]] = {
    # 10,000 units per day per Google Cloud project (list calls cost 1 unit).
    "youtube": {"units": BucketSpec(10_000, DAY)},
    # Graph API platform rate limit: 200 calls per hour per user (the app user whose token
    # makes the business discovery calls).
    "instagram": {"calls": BucketSpec(200, 3600)},
    # Research API: 1,000 requests per day per client (and 100,000 records a day).
    "tiktok": {"requests": BucketSpec(1_000, DAY)},
    # X API v2, app-only bearer token, per endpoint per 15 minutes (the rate-limit table's
    # per-app figures; lower access tiers pass smaller specs).
    "x": {
        "users_by_username": BucketSpec(300, 900),
        "user_tweets": BucketSpec(10_000, 900),
    },
    # Apify API: 60 requests per second per resource.
    "apify": {"requests": BucketSpec(60, 1)},
}

_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
  ts = now
end
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
           'ts', string.format('%.6f', ts))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return {allowed, string.format('%.6f', tokens), string.format('%.6f', wait)}
"""


class QuotaLimiter:
    """Token buckets in Redis (redis-py asyncio). `clock` is injectable for tests."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "trendscope",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.clock = clock
        self._script = redis.register_script(_TAKE)

    def key(self, platform: str, credential_id: str, bucket: str) -> str:
        for part in (platform, credential_id, bucket):
            if not part or ":" in part or len(part) > 100:
                raise ValueError(f"bad quota key part {part!r}")
        return f"{self.prefix}:quota:{platform}:{credential_id}:{bucket}"

    async def take(
        self, platform: str, credential_id: str, bucket: str, spec: BucketSpec, cost: float
    ) -> float:
        """Take `cost` tokens; returns the tokens left. Raises QuotaExhausted when short."""
        if cost <= 0:
            return await self.remaining(platform, credential_id, bucket, spec)
        if cost > spec.capacity:
            raise ValueError(f"cost {cost} exceeds the bucket's capacity {spec.capacity}")
        key = self.key(platform, credential_id, bucket)
        allowed, left, wait = await self._script(
            keys=[key], args=[spec.capacity, spec.rate, cost, f"{self.clock():.6f}"]
        )
        if int(allowed) != 1:
            raise QuotaExhausted(
                platform,
                float(wait),
                f"{bucket} quota for credential {credential_id} exhausted",
            )
        return float(left)

    async def remaining(
        self, platform: str, credential_id: str, bucket: str, spec: BucketSpec
    ) -> float:
        """Tokens available now (refill included), without taking any."""
        key = self.key(platform, credential_id, bucket)
        tokens, ts = await self.redis.hmget(key, ["tokens", "ts"])  # type: ignore[misc]
        if tokens is None or ts is None:
            return spec.capacity
        elapsed = max(0.0, self.clock() - float(ts))
        return min(spec.capacity, float(tokens) + elapsed * spec.rate)
