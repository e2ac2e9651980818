"""The analytics work the Dramatiq actors run (jobs/actors.py), as plain coroutines so that
tests and benchmarks can run it in-process; and the ARQ crons that send it for every tenant.

- `analyze_tenant(schema)`: the analysis pass. Posts and comments with `analyzed_at IS NULL`
  get language, sentiment (and keywords, posts) in batches of `ANALYSIS_BATCH`, each batch read
  with `FOR UPDATE SKIP LOCKED`, analysed and written with one UPDATE in its own transaction:
  a pass killed midway loses at most its open batch, which the next pass redoes; a second pass
  finds nothing to do. The influencers whose posts were analysed then get their figures
  recomputed (`compute_scores`).
- `compute_scores(schema, influencer_ids=None)`: metrics, influence and authenticity scores,
  one history row per influencer, written with one COPY, `score_updated` events after commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog

from domain.analytics.service import (
    ANALYSIS_BATCH,
    ANALYZE_POSTS,
    COMPUTE_SCORES,
    AnalysisResult,
    analytics,
)
from tenants import outbox
from tenants.registry import list_tenant_schemas
from tenants.tx import tenant_tx

log = structlog.get_logger(__name__)


async def analyze_tenant(
    tenant_schema: str, *, batch: int = ANALYSIS_BATCH, scores: bool = True
) -> AnalysisResult:
    """The analysis pass over one tenant's new posts and comments (see the module doc)."""
    total = AnalysisResult()
    for table in ("post", "comment"):
        while True:
            async with tenant_tx(tenant_schema):
                done = await analytics.analyze_batch(table, batch)  # type: ignore[arg-type]
            if not (done.posts or done.comments):
                break
            total.posts += done.posts
            total.comments += done.comments
            total.influencer_ids |= done.influencer_ids
            log.info("analysis_progress", schema=tenant_schema, table=table, **_counts(total))
    if scores and total.influencer_ids:
        await compute_scores(tenant_schema, sorted(total.influencer_ids))
    log.info("analysis_done", schema=tenant_schema, **_counts(total))
    return total


def _counts(r: AnalysisResult) -> dict[str, int]:
    return {"posts": r.posts, "comments": r.comments, "influencers": len(r.influencer_ids)}


async def compute_scores(
    tenant_schema: str,
    influencer_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> int:
    """Recompute and store the figures of the given influencers (all when None)."""
    async with tenant_tx(tenant_schema):
        figures = await analytics.compute_scores(influencer_ids, now)
    log.info("scores_computed", schema=tenant_schema, influencers=len(figures))
    return len(figures)


# --- ARQ crons: send the Dramatiq messages for every tenant ---------------------------------


async def _send_all(actor: outbox.ActorRef) -> int:
    schemas = await list_tenant_schemas()
    for schema in schemas:
        await outbox.send_now(actor, schema)
    return len(schemas)


async def schedule_analysis(ctx: dict[str, Any]) -> int:
    """`analytics.schedule_hourly` (cron): every tenant's analysis pass, which also refreshes
    the metrics of the influencers with new posts. Returns the tenants sent."""
    return await _send_all(ANALYZE_POSTS)


async def schedule_scores(ctx: dict[str, Any]) -> int:
    """`analytics.schedule_daily` (cron): every influencer's figures in every tenant (growth
    and consistency move with time even without new posts)."""
    return await _send_all(COMPUTE_SCORES)
