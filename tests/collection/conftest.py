"""Connector test kit: recorded platform responses served by httpx.MockTransport (the external
services are faked at the HTTP boundary), the real Redis for the quota buckets (a unique key
prefix per test), and a sleep recorder so retries never wait."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from domain.collection.connectors import Connector, QuotaLimiter, RetryPolicy, build_connector
from tests.conftest import Services

FIXTURES = Path(__file__).parent / "fixtures"
NOW = 1_800_000_000.0  # the limiter's fixed clock: bucket arithmetic is exact


def load(platform: str, name: str) -> Any:
    return json.loads((FIXTURES / platform / f"{name}.json").read_text())


Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


def reply(body: Any = None, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


class FakeApi:
    """Routes (method, path) to queued replies; the last reply of a route repeats."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *replies: Reply) -> FakeApi:
        self.routes.setdefault((method, path), []).extend(replies)
        return self

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.routes.get((request.method, request.url.path))
        if not queue:
            return httpx.Response(599, json={"unrouted": f"{request.method} {request.url.path}"})
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        return item(request) if callable(item) else item

    def calls(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]


@dataclass
class Kit:
    api: FakeApi
    client: httpx.AsyncClient
    limiter: QuotaLimiter
    redis: Redis
    sleeps: list[float] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def connector(
        self,
        platform: str,
        secrets_: dict[str, str],
        *,
        base_url: str,
        credential_id: str = "cred1",
        **options: Any,
    ) -> Connector:
        return build_connector(
            platform,
            credential_id=credential_id,
            secrets=secrets_,
            client=self.client,
            limiter=self.limiter,
            base_url=base_url,
            policy=RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=8.0),
            sleep=self.sleep,
            **options,
        )


@pytest.fixture
async def kit(services: Services) -> AsyncIterator[Kit]:
    redis = Redis.from_url(services.redis_url)
    prefix = f"test-connectors-{secrets.token_hex(6)}"
    api = FakeApi()
    client = httpx.AsyncClient(transport=httpx.MockTransport(api.handler))
    limiter = QuotaLimiter(redis, prefix=prefix, clock=lambda: NOW)
    try:
        yield Kit(api, client, limiter, redis)
    finally:
        await client.aclose()
        keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
