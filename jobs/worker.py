"""ARQ worker settings: `trendscope worker` runs these."""

from __future__ import annotations

from typing import Any

import structlog
from arq import cron, func
from arq.connections import RedisSettings

from api.logging import configure_logging
from api.settings import get_settings
from jobs.collection import collect, import_file, requeue_stale, schedule_collections
from jobs.runtime import runtime
from tenants.db import close_db, init_db

log = structlog.get_logger(__name__)


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


def worker_settings() -> dict[str, Any]:
    settings = get_settings()
    return {
        "functions": [
            func(import_file, name="collection.import", max_tries=10, timeout=600),
            func(collect, name="collection.collect", max_tries=10, timeout=1800),
        ],
        "cron_jobs": [
            cron(requeue_stale, name="collection.requeue_stale", second=0, run_at_startup=True),
            cron(schedule_collections, name="collection.schedule", minute=5, second=30),
        ],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": RedisSettings.from_dsn(settings.require_redis_url()),
        "queue_name": settings.arq_queue_name,
        "max_jobs": 10,
        "keep_result": 3600,
        "job_timeout": 600,
    }
