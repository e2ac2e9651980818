"""Insights work: the daily digest, anomaly detection and alert evaluation for one tenant
(run by the Dramatiq actors in jobs/actors.py), and the ARQ crons that send them for every
tenant (`insight_crons()`, added to jobs/worker.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from arq import cron
from arq.cron import CronJob

from core.settings import get_settings
from domain.analytics.service import DAILY_DIGEST, DETECT_ANOMALIES, EVALUATE_ALERTS
from domain.insights.prose import ProseRewriter
from domain.insights.service import insights
from tenants import outbox
from tenants.registry import list_tenant_schemas
from tenants.tx import tenant_tx, validate_schema_name

log = structlog.get_logger(__name__)


async def run_daily_digest(
    tenant_schema: str, now: datetime | None = None, rewriter: ProseRewriter | None = None
) -> int | None:
    """Write yesterday's digest (UTC) once; returns its id, None when it already exists.

    With a rewriter (default: from settings, none unless INSIGHTS_LLM_URL is set) the prose is
    rewritten between the read and the write, outside any transaction."""
    schema = validate_schema_name(tenant_schema)
    rewriter = rewriter or ProseRewriter.from_settings(get_settings())
    async with tenant_tx(schema):
        digest = await insights.build_daily_digest(now or datetime.now(UTC))
    if digest is None:
        return None
    prose = await rewriter.rewrite(digest.as_json()) if rewriter else None
    async with tenant_tx(schema):
        row = await insights.store_daily_digest(digest, prose)
    log.info("daily_digest", schema=tenant_schema, insight_id=row.id if row else None)
    return row.id if row else None


async def run_detect_anomalies(tenant_schema: str, now: datetime | None = None) -> int:
    """Store the anomalies found now that are not stored yet; returns how many."""
    async with tenant_tx(validate_schema_name(tenant_schema)):
        fresh = await insights.detect_anomalies(now or datetime.now(UTC))
    log.info("anomalies_detected", schema=tenant_schema, new=len(fresh))
    return len(fresh)


async def run_evaluate_alerts(tenant_schema: str, now: datetime | None = None) -> int:
    """Judge every enabled alert rule; returns how many fired."""
    async with tenant_tx(validate_schema_name(tenant_schema)):
        fired = await insights.evaluate_alerts(now or datetime.now(UTC))
    log.info("alerts_evaluated", schema=tenant_schema, fired=len(fired))
    return len(fired)


async def _send_for_every_tenant(actors: tuple[outbox.ActorRef, ...]) -> int:
    count = 0
    for schema in await list_tenant_schemas():
        for actor in actors:
            await outbox.send_now(actor, schema)
            count += 1
    return count


async def schedule_daily_digests(ctx: dict[str, Any]) -> int:
    """`insights.schedule_daily` (cron, 00:15 UTC): every tenant's digest of the day before."""
    return await _send_for_every_tenant((DAILY_DIGEST,))


async def schedule_hourly_checks(ctx: dict[str, Any]) -> int:
    """`insights.schedule_hourly` (cron, every hour at :20): anomalies and alert rules."""
    return await _send_for_every_tenant((DETECT_ANOMALIES, EVALUATE_ALERTS))


def insight_crons(wrap: Any) -> list[CronJob]:
    """The crons of this module; `wrap(name, fn)` is the worker's instrumentation."""
    return [
        cron(
            wrap("insights.schedule_daily", schedule_daily_digests),
            name="insights.schedule_daily",
            hour=0,
            minute=15,
            second=0,
        ),
        cron(
            wrap("insights.schedule_hourly", schedule_hourly_checks),
            name="insights.schedule_hourly",
            minute=20,
            second=0,
        ),
    ]
