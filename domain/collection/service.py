"""Collection tasks (`collection_tasks`): listing and finishing tasks of both kinds, the stale
task sweep, and file imports (created here, run in resumable batches). Platform fetches step
through platform_runs.py."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import Q

from domain import events
from domain.collection import rules
from domain.collection.models import CollectionTask, ImportFile
from domain.errors import FieldError, NotFound, ValidationFailed
from domain.pagination import Page, newest_first
from domain.posts.service import posts
from tenants import outbox
from tenants.tx import current_tx

IMPORT_JOB = "collection.import"


def task_event(task: CollectionTask) -> dict[str, Any]:
    """The `collection_task_updated` payload (Redis, webhooks): enough to alert on a failure
    or a retry without loading the task."""
    return {
        "id": task.id,
        "status": task.status,
        "processed": task.processed,
        "total": task.total,
        "attempts": task.attempts,
        "error": task.error,
        "last_error": task.last_error,
        "next_attempt_at": task.next_attempt_at.isoformat() if task.next_attempt_at else None,
    }


def progressed(task: CollectionTask) -> None:
    """A step committed: a streak of failed runs is over (domain/collection/retries.py).
    Call before `task.save()`."""
    task.retries = 0
    task.retrying_since = None  # type: ignore[assignment]
    task.next_attempt_at = None  # type: ignore[assignment]


class CollectionTaskService:
    async def get(self, task_id: int) -> CollectionTask:
        task = await CollectionTask.get_or_none(id=task_id)
        if task is None:
            raise NotFound("CollectionTask", task_id)
        return task

    async def list(
        self,
        *,
        status: str | None = None,
        platform: str | None = None,
        influencer_id: int | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Page[CollectionTask]:
        """Tasks, newest first, filtered by status, platform and influencer."""
        query = CollectionTask.all()
        if status:
            query = query.filter(status=status)
        if platform:
            query = query.filter(platform=platform)
        if influencer_id is not None:
            query = query.filter(influencer_id=influencer_id)
        return await newest_first(query, first, after, "task")

    async def by_ids(self, ids: Sequence[int]) -> dict[int, CollectionTask]:
        return {t.id: t for t in await CollectionTask.filter(id__in=list(ids))}

    async def create_import(
        self, *, filename: str, content: bytes, max_bytes: int
    ) -> CollectionTask:
        """Check the file, store it with a pending task, and enqueue the ingest after commit.

        A file that cannot be read at all is refused here and nothing is stored; bad rows in
        a readable file are reported per row by the job.
        """
        if len(content) > max_bytes:
            raise ValidationFailed(FieldError("file", f"larger than {max_bytes} bytes"))
        fmt, parsed = rules.parse_import(filename, content)
        task = await CollectionTask.create(kind="import", status="pending", total=len(parsed))
        await ImportFile.create(task=task, filename=filename[:255], format=fmt, content=content)
        schema = current_tx().schema
        assert schema is not None
        outbox.enqueue(IMPORT_JOB, schema, task.id)
        outbox.publish(events.COLLECTION_TASK_UPDATED, task_event(task))
        return task

    async def begin_import(self, task_id: int) -> tuple[CollectionTask, ImportFile] | None:
        """Lock the task and mark it running; None when there is nothing left to do."""
        task = await CollectionTask.filter(id=task_id).select_for_update().first()
        if task is None or task.status in ("succeeded", "failed"):
            return None
        file = await ImportFile.get(task_id=task.id)
        task.status = "running"
        task.attempts += 1
        task.next_attempt_at = None  # type: ignore[assignment]
        task.started_at = task.started_at or datetime.now(UTC)
        await task.save()
        outbox.publish(events.COLLECTION_TASK_UPDATED, task_event(task))
        return task, file

    async def import_batch(
        self, task_id: int, rows: Sequence[rules.ImportRow | rules.RowError], start: int
    ) -> CollectionTask:
        """Upsert rows[start:] of this batch and advance the cursor, in the caller's tx."""
        task = await CollectionTask.filter(id=task_id).select_for_update().first()
        if task is None:
            raise NotFound("CollectionTask", task_id)
        if task.processed != start:  # another run got here first: do nothing twice
            return task
        good = [r for r in rows if isinstance(r, rules.ImportRow)]
        result = await posts.upsert_rows(good)
        errors = [(r.index, r.message) for r in rows if isinstance(r, rules.RowError)]
        errors += result.errors
        task.processed = start + len(rows)
        progressed(task)
        task.created += result.created
        task.updated += result.updated
        task.skipped += result.skipped + sum(isinstance(r, rules.RowError) for r in rows)
        room = rules.MAX_ROW_ERRORS - len(task.errors)
        if room > 0 and errors:
            task.errors = [
                *task.errors,
                *({"row": i, "message": m} for i, m in sorted(errors)[:room]),
            ]
        await task.save()
        for post_id, influencer_id in result.created_posts:
            outbox.publish(events.POST_ADDED, {"id": post_id, "influencer_id": influencer_id})
        outbox.publish(events.COLLECTION_TASK_UPDATED, task_event(task))
        return task

    async def finish(self, task_id: int, *, error: str | None = None) -> CollectionTask:
        task = await CollectionTask.filter(id=task_id).select_for_update().first()
        if task is None:
            raise NotFound("CollectionTask", task_id)
        task.status = "failed" if error else "succeeded"
        task.error = error  # type: ignore[assignment]
        task.finished_at = datetime.now(UTC)
        task.next_attempt_at = None  # type: ignore[assignment]
        await task.save()
        outbox.publish(events.COLLECTION_TASK_UPDATED, task_event(task))
        return task

    async def stale_tasks(
        self, older_than: datetime
    ) -> builtins.list[tuple[int, str, str, int]]:  # (`list` is also a method here)
        """(id, kind, status, attempts) of unfinished tasks not touched since `older_than` and
        not waiting for a retry due later than that."""
        rows = (
            await CollectionTask.filter(
                status__in=["pending", "running"], updated_at__lt=older_than
            )
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=older_than))
            .values_list("id", "kind", "status", "attempts")
        )
        return [(int(i), str(k), str(s), int(a)) for i, k, s, a in rows]


collection_tasks = CollectionTaskService()
