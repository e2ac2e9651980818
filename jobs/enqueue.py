"""Enqueue ARQ jobs after commit, with deterministic job ids (ARQ drops duplicates).

If Redis is down at that moment nothing is lost: the task row stays `pending` in Postgres and
the worker's `collection.requeue_stale` cron enqueues it again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from core.runtime import runtime
from tenants.tx import current_tx

log = structlog.get_logger(__name__)


def job_id(name: str, tenant_schema: str, *ids: object) -> str:
    return ":".join([name, tenant_schema, *map(str, ids)])


def scoped_job_id(jid: str) -> str:
    """`jid` within this process's queue. ARQ keeps a job's id (and its result, for an hour)
    under keys that do not name the queue, and a deduplicated enqueue of a known id does
    nothing: ids made from a database sequence (public rows) would collide between two
    databases sharing one Redis, e.g. two test runs, and the second job would never run."""
    return f"{runtime.queue_name}:{jid}"


# ARQ's queue is a sorted set scored by the time a job may run: a job scored an hour in the past
# runs before every job that is merely due now. That is how on-demand work jumps the queue.
PRIORITY_HEAD_START = timedelta(hours=1)


def enqueue_after_commit(
    name: str,
    tenant_schema: str,
    *ids: int,
    suffix: str = "",
    high_priority: bool = False,
    defer_by: timedelta | None = None,
) -> None:
    jid = job_id(name, tenant_schema, *ids) + (f":{suffix}" if suffix else "")
    when: dict[str, object] = {}
    if defer_by is not None:
        when["_defer_by"] = defer_by
    elif high_priority:
        when["_defer_until"] = datetime.now(UTC) - PRIORITY_HEAD_START

    async def enqueue() -> None:
        if runtime.arq is None:
            log.warning("job_not_enqueued_no_pool", job=name, job_id=jid)
            return
        await runtime.arq.enqueue_job(
            name,
            tenant_schema,
            *ids,
            _job_id=scoped_job_id(jid),
            _queue_name=runtime.queue_name,
            **when,  # type: ignore[arg-type]
        )

    current_tx().on_commit(enqueue)
