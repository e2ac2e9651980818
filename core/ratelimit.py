"""Rate limits in Redis: GCRA buckets checked atomically by one Lua script.

The buckets and the sign-in attempts' limit live here, at the bottom, because a sign-in
mutation (schema/) and POST /oauth/token (api/) both count attempts; the per-request
middleware and its plan-based budget are api/ratelimit.py.

Every authenticated request counts against two buckets at once: its tenant's (the plan's
`api_requests_per_hour`) and its credential's (a user's token, an API key or a partner app:
`rate_limits.credential_share` of the tenant's budget). The request passes only if both
have room, and only then is it counted in both. Responses carry the IETF draft's
`RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (of the tighter bucket, plus
`RateLimit-Policy`); a refusal is a 429 with `Retry-After` and a GraphQL error `RATE_LIMITED`
whose `extensions.retryAfter` says the same.

The sign-in mutations (logIn, signUp, refreshToken) and POST /oauth/token use the same buckets
per client IP and per account (e-mail) or client id, against brute force (`auth_attempt`).

GCRA (the generic cell rate algorithm) keeps one number per bucket, its theoretical arrival
time: O(1) memory however high the limit, a smooth hourly window with no reset cliff, and an
exact "retry after". Why not the collection quota buckets (domain/collection/connectors/
quota.py): they take one bucket at a time, and a request here must pass two atomically.
If Redis is unreachable the API keeps serving without limits (logged): a cache outage must
not take the API down.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError
from starlette.types import Scope

from core.runtime import runtime
from core.settings import Settings

log = structlog.get_logger(__name__)

HOUR = 3600.0
# KEYS: the buckets. ARGV[1]: now (unix seconds); then per bucket: limit, period (seconds).
# Returns {allowed, then per bucket: remaining, reset (s), retry after (s)}. 0.000001 s of
# slack absorbs float noise in the accumulated arrival times.
_GCRA = """
local now = tonumber(ARGV[1])
local allowed = 1
local state = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local period = tonumber(ARGV[2 * i + 1])
  local interval = period / limit
  local tat = tonumber(redis.call('GET', key))
  if tat == nil or tat < now then tat = now end
  local wait = tat + interval - period - now
  if wait > 0.000001 then allowed = 0 else wait = 0 end
  state[i] = {tat, interval, period, wait}
end
local out = {allowed}
for i, key in ipairs(KEYS) do
  local tat, interval, period, wait = unpack(state[i])
  if allowed == 1 then
    tat = tat + interval
    redis.call('SET', key, string.format('%.6f', tat), 'PX',
               math.ceil((tat - now) * 1000) + 1000)
  end
  local remaining = math.floor((period - (tat - now)) / interval + 0.000001)
  if remaining < 0 then remaining = 0 end
  out[#out + 1] = tostring(remaining)
  out[#out + 1] = string.format('%.6f', tat - now)
  out[#out + 1] = string.format('%.6f', wait)
end
return out
"""


@dataclass(frozen=True)
class Bucket:
    key: str
    limit: int  # requests ...
    period: float  # ... per this many seconds


@dataclass(frozen=True)
class Decision:
    """The answer for the tightest bucket: when refused, the one to wait longest for."""

    allowed: bool
    limit: int
    period: float
    remaining: int
    reset: float  # seconds until the bucket is full again
    retry_after: float  # seconds; 0 when allowed

    def headers(self) -> list[tuple[bytes, bytes]]:
        """draft-ietf-httpapi-ratelimit-headers fields (delta seconds), plus Retry-After."""
        fields = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(math.ceil(self.reset)).encode()),
            (b"ratelimit-policy", f"{self.limit};w={round(self.period)}".encode()),
        ]
        if not self.allowed:
            fields.append((b"retry-after", str(max(1, math.ceil(self.retry_after))).encode()))
        return fields


class RateLimiter:
    """Checks and counts a request against several buckets in one round trip. `clock`
    (unix seconds) is injectable: tests move time instead of sleeping."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._scripts: dict[int, AsyncScript] = {}

    def _script(self, redis: Redis) -> AsyncScript:
        script = self._scripts.get(id(redis))
        if script is None:
            script = self._scripts[id(redis)] = redis.register_script(_GCRA)
        return script

    async def hit(self, redis: Redis, buckets: Sequence[Bucket]) -> Decision:
        args: list[str | int | float] = [f"{self.clock():.6f}"]
        for b in buckets:
            args += [b.limit, b.period]
        keys = [b.key for b in buckets]
        raw = await self._script(redis)(keys=keys, args=args, client=redis)
        allowed = int(raw[0]) == 1
        decisions = [
            Decision(
                allowed=allowed,
                limit=b.limit,
                period=b.period,
                remaining=int(raw[1 + 3 * i]),
                reset=float(raw[2 + 3 * i]),
                retry_after=float(raw[3 + 3 * i]),
            )
            for i, b in enumerate(buckets)
        ]
        if allowed:
            return min(decisions, key=lambda d: (d.remaining, -d.reset))
        return max(decisions, key=lambda d: d.retry_after)


limiter = RateLimiter()


async def hit(buckets: Sequence[Bucket]) -> Decision | None:
    redis = runtime.redis
    if redis is None:
        return None
    try:
        return await limiter.hit(redis, buckets)
    except RedisError as exc:
        log.warning("rate_limit_unavailable", error=str(exc))
        return None


def _account_key(account: str) -> str:
    # Hashed: no e-mail addresses in Redis key names.
    return hashlib.sha256(account.strip().lower().encode()).hexdigest()[:32]


async def auth_attempt(
    settings: Settings, kind: str, ip: str | None, account: str | None
) -> Decision | None:
    """Count one sign-in (`kind` "login") or token (`kind` "token") attempt, per client IP
    and per account / client id."""
    rl = settings.rate_limits
    if not rl.enabled:
        return None
    prefix = f"{settings.rate_limit_key_prefix}:{kind}"
    buckets = []
    if ip:  # None: no peer address (an operation sent over an authenticated websocket)
        buckets.append(Bucket(f"{prefix}:ip:{ip}", rl.auth_per_ip, rl.auth_period_seconds))
    if account:
        buckets.append(
            Bucket(
                f"{prefix}:account:{_account_key(account)}",
                rl.auth_per_account,
                rl.auth_period_seconds,
            )
        )
    return await hit(buckets) if buckets else None


def client_ip(scope: Scope) -> str | None:
    """The peer address (uvicorn has applied X-Forwarded-For from trusted proxies)."""
    client = scope.get("client")
    return str(client[0]) if client else None
