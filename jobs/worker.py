"""ARQ worker settings: `trendscope worker` runs these."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from arq import cron, func
from arq.connections import RedisSettings
from arq.typing import WorkerCoroutine
from arq.worker import Retry, RetryJob

from core.logging import configure_logging
from core.metrics import observe_job, observe_job_wait
from core.runtime import runtime
from core.settings import get_settings
from jobs import accounts  # noqa: F401  (declares its @job functions)
from jobs.analytics import schedule_analysis, schedule_scores
from jobs.billing import apply_retention, enforce_dunning, requeue_events
from jobs.collection import requeue_stale, schedule_collections
from jobs.insights import insight_crons
from jobs.registry import JOBS
from jobs.retry import retry_transient_db_errors
from jobs.trends import schedule_trend_detection
from jobs.webhooks import requeue_due
from tenants.db import close_db, init_db

log = structlog.get_logger(__name__)


JobFn = Callable[..., Awaitable[Any]]


def instrumented(name: str, fn: JobFn) -> WorkerCoroutine:
    """Wrap an ARQ job so that its queue wait and run time reach Prometheus
    (`trendscope_job_wait_seconds`, `trendscope_job_duration_seconds{job,outcome}`) and its
    log lines carry the job's name and id. Per job, not per hook, because ARQ's
    `on_job_start`/`on_job_end` hooks are not told the function's name."""

    @functools.wraps(fn)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        enqueued = ctx.get("enqueue_time")
        if isinstance(enqueued, datetime):
            observe_job_wait(name, (datetime.now(UTC) - enqueued).total_seconds())
        outcome = "error"
        start = time.perf_counter()
        with structlog.contextvars.bound_contextvars(job=name, job_id=ctx.get("job_id")):
            try:
                result = await fn(ctx, *args, **kwargs)
                outcome = "ok"
                return result
            except (Retry, RetryJob):
                outcome = "retry"
                raise
            except asyncio.CancelledError:  # timed out, aborted or the worker is stopping
                outcome = "cancelled"
                raise
            finally:
                observe_job(name, outcome, time.perf_counter() - start)

    return run  # type: ignore[return-value]  # ARQ's protocol is stricter than Callable


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    configure_logging(settings)
    await init_db(settings)
    if runtime.redis is None:  # (an in-process worker in tests shares the app's clients)
        await runtime.connect(settings)
        ctx["owns_runtime"] = True


async def shutdown(ctx: dict[str, Any]) -> None:
    if ctx.get("owns_runtime"):
        await runtime.close()
    await close_db()


def trends_cron() -> Any:
    """Hourly: send `analytics.detect_trends` for every tenant (jobs/trends.py)."""
    return cron(
        instrumented("analytics.schedule_trends", schedule_trend_detection),
        name="analytics.schedule_trends",
        minute=15,
        second=0,
    )


def on_demand(name: str, fn: JobFn) -> WorkerCoroutine:
    """An on-demand job: instrumented, and a brief database fault retried (jobs/retry.py)."""
    return instrumented(name, retry_transient_db_errors(name, fn))


def worker_settings() -> dict[str, Any]:
    settings = get_settings()
    configure_logging(settings)  # before ARQ's own start-up lines
    return {
        # Every `@job` of the modules imported above (jobs/registry.py), under its one name.
        "functions": [
            func(
                on_demand(spec.name, spec.fn),
                name=spec.name,
                max_tries=spec.tries(settings),
                timeout=spec.timeout,
            )
            for spec in JOBS.values()
        ],
        "cron_jobs": [
            cron(
                instrumented("billing.requeue_events", requeue_events),
                name="billing.requeue_events",
                second=15,
            ),
            cron(
                instrumented("billing.enforce_dunning", enforce_dunning),
                name="billing.enforce_dunning",
                minute={0, 15, 30, 45},
                second=45,
            ),
            cron(
                instrumented("billing.apply_retention", apply_retention),
                name="billing.apply_retention",
                hour=3,
                minute=20,
                second=0,
                timeout=3600,
            ),
            cron(
                instrumented("collection.requeue_stale", requeue_stale),
                name="collection.requeue_stale",
                second=0,
                run_at_startup=True,
            ),
            cron(
                instrumented("collection.schedule", schedule_collections),
                name="collection.schedule",
                minute=5,
                second=30,
            ),
            *insight_crons(instrumented),
            # Dramatiq messages for every tenant: the analysis pass (which refreshes the
            # metrics of influencers with new posts) hourly, every influencer's scores daily.
            cron(
                instrumented("analytics.schedule_hourly", schedule_analysis),
                name="analytics.schedule_hourly",
                minute=20,
                second=0,
            ),
            cron(
                instrumented("analytics.schedule_daily", schedule_scores),
                name="analytics.schedule_daily",
                hour=3,
                minute=40,
                second=0,
            ),
            trends_cron(),
            cron(
                instrumented("webhooks.requeue_due", requeue_due),
                name="webhooks.requeue_due",
                second=15,
                run_at_startup=True,
            ),
        ],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": RedisSettings.from_dsn(settings.require_redis_url()),
        "queue_name": settings.arq_queue_name,
        "max_jobs": 10,
        # No results kept: nothing reads them, and ARQ refuses to enqueue a job id while its
        # result lives, so a failed run of a task (deterministic job id) would block the
        # task's own re-queue for as long. ARQ still drops a duplicate while the job is
        # queued or running (its job key), which is the dedup we want.
        "keep_result": 0,
        "job_timeout": 600,
    }
