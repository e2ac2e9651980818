"""Dramatiq actors: CPU-heavy analytics. `trendscope analytics-worker` runs this module."""

from __future__ import annotations

import asyncio

import dramatiq
import structlog

from api.settings import get_settings
from domain.analytics.service import analytics
from jobs.broker import broker  # noqa: F401  (sets the broker before the actors below)
from jobs.runtime import runtime
from tenants.db import init_db
from tenants.tx import tenant_tx, validate_schema_name

log = structlog.get_logger(__name__)

_db_ready: asyncio.Lock | None = None
_initialised = False


async def _ensure_db() -> None:
    global _db_ready, _initialised
    if _initialised:
        return
    if _db_ready is None:
        _db_ready = asyncio.Lock()
    async with _db_ready:
        if not _initialised:
            await init_db(get_settings())
            _initialised = True


@dramatiq.actor(actor_name="analytics.recount_totals", queue_name="analytics", max_retries=5)
async def recount_totals(tenant_schema: str) -> None:
    """Recount a tenant's influencers, accounts, posts and comments into `tenant_totals`."""
    validate_schema_name(tenant_schema)
    await _ensure_db()
    async with tenant_tx(tenant_schema):
        totals = await analytics.recount_totals()
    log.info("totals_recounted", schema=tenant_schema, posts=totals.posts)


async def _ensure_events() -> None:
    """Redis for `domain.events.emit` (published after commit) in this worker process."""
    await _ensure_db()
    if runtime.redis is None:
        from redis.asyncio import Redis

        runtime.redis = Redis.from_url(get_settings().require_redis_url())


@dramatiq.actor(
    actor_name="analytics.detect_trends",
    queue_name="analytics",
    max_retries=3,
    time_limit=30 * 60 * 1000,
)
async def detect_trends(tenant_schema: str) -> None:
    """Detect a tenant's trends over the last 14 days and store them (jobs/trends.py);
    idempotent: a re-run upserts the same rows."""
    from jobs.trends import detect_tenant_trends

    validate_schema_name(tenant_schema)
    await _ensure_events()
    await detect_tenant_trends(tenant_schema)
