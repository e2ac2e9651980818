"""Dramatiq actors: CPU-heavy analytics. `trendscope analytics-worker` runs this module."""

from __future__ import annotations

import asyncio

import dramatiq
import structlog

from core.broker import get_broker
from core.logging import configure_logging
from core.runtime import runtime
from core.settings import get_settings
from domain.analytics.service import (
    ANALYZE_POSTS,
    COMPUTE_SCORES,
    DAILY_DIGEST,
    DETECT_ANOMALIES,
    DETECT_TRENDS,
    EVALUATE_ALERTS,
    RECOUNT_TOTALS,
    analytics,
)
from jobs import analytics as analytics_jobs
from jobs import insights as insight_jobs
from jobs.trends import detect_tenant_trends
from tenants.db import init_db
from tenants.tx import tenant_tx, validate_schema_name

log = structlog.get_logger(__name__)

configure_logging(get_settings())  # a Dramatiq worker process started without `trendscope`
get_broker()  # Dramatiq's global broker, before the actors below are declared on it

TRENDS_AFTER_ANALYSIS_SECONDS = 300

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
            settings = get_settings()
            await init_db(settings)
            if runtime.redis is None:  # domain events are published after commit
                await runtime.connect(settings)
            _initialised = True


@dramatiq.actor(actor_name=RECOUNT_TOTALS.name, queue_name=RECOUNT_TOTALS.queue, max_retries=5)
async def recount_totals(tenant_schema: str) -> None:
    """Recount a tenant's influencers, accounts, posts and comments into `tenant_totals`."""
    validate_schema_name(tenant_schema)
    await _ensure_db()
    async with tenant_tx(tenant_schema):
        totals = await analytics.recount_totals()
    log.info("totals_recounted", schema=tenant_schema, posts=totals.posts)


@dramatiq.actor(actor_name=DAILY_DIGEST.name, queue_name=DAILY_DIGEST.queue, max_retries=5)
async def daily_digest(tenant_schema: str) -> None:
    """Yesterday's digest (UTC) for the tenant; written once per day (idempotent)."""
    validate_schema_name(tenant_schema)
    await _ensure_db()
    await insight_jobs.run_daily_digest(tenant_schema)


@dramatiq.actor(actor_name=DETECT_ANOMALIES.name, queue_name=DETECT_ANOMALIES.queue, max_retries=5)
async def detect_anomalies(tenant_schema: str) -> None:
    """Engagement spikes/drops, viral posts, sentiment turning negative; each stored once."""
    validate_schema_name(tenant_schema)
    await _ensure_db()
    await insight_jobs.run_detect_anomalies(tenant_schema)


@dramatiq.actor(actor_name=EVALUATE_ALERTS.name, queue_name=EVALUATE_ALERTS.queue, max_retries=5)
async def evaluate_alerts(tenant_schema: str) -> None:
    """The tenant's alert rules; each fires once per crossing."""
    validate_schema_name(tenant_schema)
    await _ensure_db()
    await insight_jobs.run_evaluate_alerts(tenant_schema)


# A pass over a large backlog outlives Dramatiq's default 10-minute limit (100k posts take
# about 4 minutes on a loaded 2-core machine, bench/analytics.py); killed or not, every batch
# it committed stays done and a retry resumes with the rest.
@dramatiq.actor(
    actor_name=ANALYZE_POSTS.name,
    queue_name=ANALYZE_POSTS.queue,
    max_retries=5,
    time_limit=3_600_000,
)
async def analyze_posts(tenant_schema: str) -> None:
    """The analysis pass over the tenant's new posts and comments, then the figures of the
    influencers concerned (jobs/analytics.py), then trend detection when there were new
    posts. Incremental, resumable, idempotent."""
    validate_schema_name(tenant_schema)
    await _ensure_db()
    done = await analytics_jobs.analyze_tenant(tenant_schema)
    # New posts: their trends now rather than at the next hourly run, but at most once per
    # TRENDS_AFTER_ANALYSIS_SECONDS per tenant (a detection reads 14 days of posts; frequent
    # small imports would otherwise run it back to back). Skipped passes' posts are picked up
    # by the next detection either way.
    if done.posts and runtime.redis is not None:
        key = f"{get_settings().dramatiq_namespace}:trends-soon:{tenant_schema}"
        if await runtime.redis.set(key, 1, nx=True, ex=TRENDS_AFTER_ANALYSIS_SECONDS):
            await asyncio.to_thread(detect_trends.send, tenant_schema)


@dramatiq.actor(
    actor_name=COMPUTE_SCORES.name,
    queue_name=COMPUTE_SCORES.queue,
    max_retries=5,
    time_limit=1_800_000,
)
async def compute_scores(tenant_schema: str, influencer_ids: list[int] | None = None) -> None:
    """Metrics, influence and authenticity scores of the tenant's influencers (all by
    default), one history row each."""
    validate_schema_name(tenant_schema)
    await _ensure_db()
    await analytics_jobs.compute_scores(tenant_schema, influencer_ids)


@dramatiq.actor(
    actor_name=DETECT_TRENDS.name,
    queue_name=DETECT_TRENDS.queue,
    max_retries=3,
    time_limit=30 * 60 * 1000,
)
async def detect_trends(tenant_schema: str) -> None:
    """Detect a tenant's trends over the last 14 days and store them (jobs/trends.py);
    idempotent: a re-run upserts the same rows."""
    validate_schema_name(tenant_schema)
    await _ensure_db()  # also connects Redis for events
    await detect_tenant_trends(tenant_schema)
