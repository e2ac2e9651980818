"""Trend detection runs: the Dramatiq actor's unit of work and the hourly ARQ cron that sends
it for every tenant (`analytics.detect_trends`, jobs/actors.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog

from domain.analytics.service import DETECT_TRENDS
from domain.trends.rules import TrendConfig, detect_trends
from domain.trends.service import TrendChange, trends
from tenants import outbox
from tenants.registry import list_tenant_schemas
from tenants.tx import current_tx, tenant_tx

log = structlog.get_logger(__name__)

# One detection run per tenant at a time writes (another waits for the lock, then overwrites
# with its own, equally valid, results).
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('trendscope.detect_trends'), hashtext($1))"


async def detect_tenant_trends(
    schema: str, now: datetime | None = None, config: TrendConfig = TrendConfig()
) -> list[TrendChange]:
    """Read the lookback window's posts (a short transaction), detect outside any transaction
    (in a thread: it is CPU work), write the results in one transaction. Events after commit."""
    now = now or datetime.now(UTC)
    async with tenant_tx(schema):
        posts = await trends.posts_for_detection(now, config)
        tracked = await trends.tracked_keys()
    results = await asyncio.to_thread(detect_trends, posts, now, config, tracked)
    async with tenant_tx(schema):
        await current_tx().conn.execute_query(_LOCK, [schema])
        changes = await trends.save(results, now)
    log.info(
        "trends_detected",
        schema=schema,
        posts=len(posts),
        topics=len(results),
        trending=sum(1 for r in results if r.status != "stable"),
        changes=len(changes),
    )
    return changes


async def schedule_trend_detection(ctx: dict[str, Any]) -> int:
    """`analytics.schedule_trends` (ARQ cron, hourly): send `analytics.detect_trends` for
    every tenant to the analytics worker."""
    schemas = await list_tenant_schemas()
    for schema in schemas:
        await outbox.send_now(DETECT_TRENDS, schema)
    return len(schemas)
