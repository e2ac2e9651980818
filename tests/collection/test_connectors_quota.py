"""Redis token buckets (real Redis, unique key prefix per test, injected clock)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from domain.collection.connectors import BucketSpec, QuotaExhausted, QuotaLimiter
from tests.collection.conftest import Kit, load, reply
from tests.conftest import Services


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis(services: Services) -> AsyncIterator[tuple[Redis, str]]:
    client = Redis.from_url(services.redis_url)
    prefix = f"test-quota-{secrets.token_hex(6)}"
    try:
        yield client, prefix
    finally:
        keys = [k async for k in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_bucket_takes_refills_and_reports_when_to_retry(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    clock = Clock()
    limiter = QuotaLimiter(client, prefix=prefix, clock=clock)
    spec = BucketSpec(10, 100)  # 0.1 token/s
    assert await limiter.take("youtube", "7", "units", spec, 4) == 6
    assert await limiter.take("youtube", "7", "units", spec, 6) == 0
    with pytest.raises(QuotaExhausted) as err:
        await limiter.take("youtube", "7", "units", spec, 3)
    assert err.value.retry_after == pytest.approx(30)  # 3 tokens at 0.1/s
    assert err.value.platform == "youtube"
    clock.now += 30
    assert await limiter.take("youtube", "7", "units", spec, 3) == pytest.approx(0)
    clock.now += 10_000  # refill is capped at capacity
    assert await limiter.remaining("youtube", "7", "units", spec) == 10
    key = limiter.key("youtube", "7", "units")
    assert key == f"{prefix}:quota:youtube:7:units"
    assert 0 < await client.ttl(key) <= 160  # an idle bucket expires once it would be full


async def test_concurrent_takes_never_overdraw(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    limiter = QuotaLimiter(client, prefix=prefix, clock=Clock())
    spec = BucketSpec(25, 3600)

    async def take() -> bool:
        try:
            await limiter.take("x", "1", "user_tweets", spec, 1)
        except QuotaExhausted:
            return False
        return True

    results = await asyncio.gather(*(take() for _ in range(60)))
    assert sum(results) == 25


async def test_cost_above_capacity_and_bad_key_parts_are_refused(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    limiter = QuotaLimiter(client, prefix=prefix, clock=Clock())
    with pytest.raises(ValueError):
        await limiter.take("youtube", "1", "units", BucketSpec(5, 60), 6)
    with pytest.raises(ValueError):
        limiter.key("youtube", "tenant:a", "units")


async def test_credentials_of_two_tenants_have_separate_buckets(kit: Kit) -> None:
    """Isolation: tenant A draining its YouTube quota leaves tenant B's credential untouched."""
    kit.api.on("GET", "/youtube/v3/channels", reply(load("youtube", "channels_handle")))
    small = {"units": BucketSpec(1, 86_400)}
    tenant_a = kit.connector(
        "youtube",
        {"api_key": "a"},
        base_url="https://yt.test/youtube/v3",
        credential_id="101",
        buckets=small,
    )
    tenant_b = kit.connector(
        "youtube",
        {"api_key": "b"},
        base_url="https://yt.test/youtube/v3",
        credential_id="202",
        buckets=small,
    )
    await tenant_a.fetch_profile("mrbeast")
    with pytest.raises(QuotaExhausted):
        await tenant_a.fetch_profile("mrbeast")
    account = await tenant_b.fetch_profile("mrbeast")  # B's bucket is full
    assert account.external_id == "UCX6OQ3DkcsbYNE6H8uQQuVA"
    keys = sorted([k.decode() async for k in kit.redis.scan_iter(f"{kit.limiter.prefix}:*")])
    assert keys == [
        f"{kit.limiter.prefix}:quota:youtube:101:units",
        f"{kit.limiter.prefix}:quota:youtube:202:units",
    ]
    assert [r.url.params["key"] for r in kit.api.requests] == ["a", "b"]
