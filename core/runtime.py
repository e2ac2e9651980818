"""Process-wide clients (Redis, the ARQ pool), set once at start-up by each process."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import Redis

from core.settings import Settings


@dataclass
class Runtime:
    redis: Redis | None = None
    arq: ArqRedis | None = None
    http: httpx.AsyncClient | None = None  # platform APIs (connectors)
    queue_name: str = "trendscope:arq"

    async def connect(self, settings: Settings) -> None:
        url = settings.require_redis_url()
        self.redis = Redis.from_url(url)
        self.arq = await create_pool(
            RedisSettings.from_dsn(url), default_queue_name=settings.arq_queue_name
        )
        self.queue_name = settings.arq_queue_name
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, connect=10.0),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
            headers={"User-Agent": "Trendscope/0.1 (+collection)"},
        )

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()
            self.http = None
        if self.arq is not None:
            await self.arq.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        self.redis = self.arq = None


runtime = Runtime()
