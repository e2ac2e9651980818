"""ARQ jobs of billing: Stripe events, dunning and data retention (docs/billing.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from arq import Retry

from billing.retention import Purged, purge_older_than
from billing.service import HANDLE_EVENT_JOB, billing
from core.settings import get_settings
from domain.analytics.service import RECOUNT_TOTALS
from jobs.registry import job
from tenants import outbox
from tenants.entitlements import plans_by_schema
from tenants.tx import public_tx, tenant_tx

log = structlog.get_logger(__name__)

STALE_EVENT_AFTER = timedelta(seconds=60)
RETENTION_BATCH = 1000


@job(HANDLE_EVENT_JOB, max_tries=12, timeout=120)
async def handle_event(ctx: dict[str, Any], event_id: str) -> str:
    """`billing.handle_event`: apply one stored Stripe event (re-reading from Stripe).
    A Stripe or network failure is retried with back-off (ARQ `Retry`)."""
    try:
        return await billing.handle_event(get_settings(), event_id)
    except Exception as exc:
        tries = int(ctx.get("job_try") or 1)
        log.warning("stripe_event_failed", event=event_id, error=str(exc), job_try=tries)
        raise Retry(defer=min(5 * 2**tries, 600)) from exc


async def requeue_events(ctx: dict[str, Any], stale_after: timedelta = STALE_EVENT_AFTER) -> int:
    """`billing.requeue_events` (cron): enqueue again the stored events that no job has
    processed (Redis lost the job, or every try failed)."""
    pending = await billing.pending_events(datetime.now(UTC) - stale_after)
    for event_id, attempts in pending:
        async with public_tx():
            outbox.enqueue(HANDLE_EVENT_JOB, event_id, suffix=f"retry{attempts + 1}")
    return len(pending)


async def enforce_dunning(ctx: dict[str, Any], now: datetime | None = None) -> int:
    """`billing.enforce_dunning` (cron): tenants past their grace period become read-only."""
    return await billing.enforce_dunning(now)


async def apply_retention(
    ctx: dict[str, Any], now: datetime | None = None, batch_size: int = RETENTION_BATCH
) -> dict[str, int]:
    """`billing.apply_retention` (nightly cron): every tenant's posts, comments and follower
    snapshots older than its plan's `retention_days` are deleted, in batches."""
    now = now or datetime.now(UTC)
    totals = {"tenants": 0, "posts": 0, "comments": 0, "snapshots": 0}
    for schema, plan in await plans_by_schema():
        if plan.retention_days is None:
            continue
        purged = await purge_older_than(schema, plan.retention_days, now, batch_size)
        totals["tenants"] += 1
        totals["posts"] += purged.posts
        totals["comments"] += purged.comments
        totals["snapshots"] += purged.snapshots
        if purged.posts or purged.comments:
            async with tenant_tx(schema):
                outbox.send(RECOUNT_TOTALS, schema)
        if purged.total:
            log.info(
                "retention_applied", schema=schema, days=plan.retention_days, **_counts(purged)
            )
    return totals


def _counts(purged: Purged) -> dict[str, int]:
    return {"posts": purged.posts, "comments": purged.comments, "snapshots": purged.snapshots}
