"""ARQ jobs of the collection context."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from api.settings import get_settings
from domain.collection import rules
from domain.collection.service import IMPORT_JOB, collection
from jobs.analytics_dispatch import send_recount_after_commit
from jobs.enqueue import enqueue_after_commit
from tenants.registry import list_tenant_schemas
from tenants.tx import tenant_tx

log = structlog.get_logger(__name__)

STALE_AFTER = timedelta(seconds=60)


async def import_file(ctx: dict[str, Any], tenant_schema: str, task_id: int) -> str:
    """`collection.import`: ingest an uploaded file in batches, resuming from the task's cursor.

    Each batch commits its rows together with the cursor, so a worker killed at any point
    leaves a task that the next run (ARQ's retry, or the requeue cron) finishes exactly.
    """
    batch_size = get_settings().import_batch_size
    async with tenant_tx(tenant_schema):
        begun = await collection.begin_import(task_id)
        if begun is None:
            return "nothing to do"
        task, file = begun
        content = bytes(file.content)
        filename = file.filename
    try:
        _, parsed = rules.parse_import(filename, content)
    except Exception as exc:  # the file was checked on upload; this is a real surprise
        async with tenant_tx(tenant_schema):
            await collection.finish(task_id, error=f"cannot parse file: {exc}")
        raise
    start = task.processed
    while start < len(parsed):
        batch = parsed[start : start + batch_size]
        async with tenant_tx(tenant_schema):
            task = await collection.import_batch(task_id, batch, start)
        start = task.processed
        log.info("import_progress", schema=tenant_schema, task=task_id, processed=start)
    async with tenant_tx(tenant_schema):
        task = await collection.finish(task_id)
        send_recount_after_commit(tenant_schema)
    return f"created={task.created} updated={task.updated} skipped={task.skipped}"


async def requeue_stale(ctx: dict[str, Any], stale_after: timedelta = STALE_AFTER) -> int:
    """`collection.requeue_stale` (cron): enqueue again the tasks whose job was lost with Redis
    (still `pending`) or whose worker died (`running`, no batch committed for a while).

    A pending task keeps its job id, so a job still queued is not duplicated. A stale running
    task gets a job id with its attempt number: ARQ would keep refusing the original id until
    the dead job's in-progress key expires. Two runs of one task cannot double-count: each
    batch checks the task's cursor under a row lock.
    """
    count = 0
    cutoff = datetime.now(UTC) - stale_after
    for schema in await list_tenant_schemas():
        async with tenant_tx(schema):
            for task_id, status, attempts in await collection.stale_tasks(cutoff):
                if status == "pending":
                    enqueue_after_commit(IMPORT_JOB, schema, task_id)
                else:
                    enqueue_after_commit(IMPORT_JOB, schema, task_id, suffix=f"retry{attempts}")
                count += 1
    return count
