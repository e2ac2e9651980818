"""Bounded retries of collection tasks (imports and collects).

A run that fails for a reason that may pass (the platform is unreachable, the database
blinked, the job was lost with its worker) is recorded on the task: `last_error`, and while it
waits `next_attempt_at` with status `pending`. The task is retried with exponential back-off
until `max_attempts` runs in a row have failed without committing a step, or the failures have
gone on for `max_age`; then it ends `failed` with the reason. Any committed step resets the
streak (`service.progressed`), so a long collection paced by quota waits is never cut short.

Every change emits `collection_task_updated` (GraphQL `collectionTaskUpdated`, the webhook
`collection_task.updated`): subscribers see the retry schedule and the final reason. Runs in
the caller's tenant transaction; never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.backoff import retry_delay
from domain import events
from domain.collection.models import CollectionTask
from domain.collection.service import task_event
from tenants import outbox

FINISHED = ("succeeded", "failed")
MAX_ERROR = 2000


@dataclass(frozen=True)
class RetryBounds:
    max_attempts: int  # failed runs in a row before the task fails
    max_age: timedelta  # how long failures may go on before the task fails
    base: float  # first back-off, seconds; doubles per failure
    cap: float  # longest back-off, seconds

    def delay(self, failures: int) -> float:
        return retry_delay(failures, self.base, self.cap)


@dataclass(frozen=True)
class Verdict:
    task: CollectionTask | None
    retry_in: float | None  # seconds until the next run; None: not retried
    failed_now: bool = False  # this failure ended the task


async def record_failure(
    task_id: int,
    error: str,
    bounds: RetryBounds,
    *,
    retry_after: float | None = None,
    now: datetime | None = None,
    wait: bool = True,
) -> Verdict:
    """Count a failed run of the task; schedule the next (pending, `next_attempt_at`) or, past
    the bounds, fail the task with the reason. `retry_after` (a platform's Retry-After, or 0
    to run again at once) overrides the back-off. `wait=False` counts the failure but leaves a
    running task running: the run may still be alive, only slow, and must not be cut off."""
    now = now or datetime.now(UTC)
    task = await CollectionTask.filter(id=task_id).select_for_update().first()
    if task is None or task.status in FINISHED:
        return Verdict(task, None)
    task.retries += 1
    task.retrying_since = task.retrying_since or now
    task.last_error = error[:MAX_ERROR]
    age = now - task.retrying_since
    if task.retries >= bounds.max_attempts or age >= bounds.max_age:
        why = (
            f"{task.retries} failed attempts in a row"
            if task.retries >= bounds.max_attempts
            else f"failing for {int(age.total_seconds())}s"
        )
        task.status, task.finished_at = "failed", now
        task.error = f"gave up after {why}: {error}"[:MAX_ERROR]
        task.next_attempt_at = None  # type: ignore[assignment]
        await task.save()
        outbox.publish(events.COLLECTION_TASK_UPDATED, task_event(task))
        return Verdict(task, None, failed_now=True)
    delay = bounds.delay(task.retries) if retry_after is None else max(0.0, retry_after)
    if wait:
        task.status = "pending"
        task.next_attempt_at = now + timedelta(seconds=delay)
    await task.save()
    outbox.publish(events.COLLECTION_TASK_UPDATED, task_event(task))
    return Verdict(task, delay)


async def defer(task_id: int, seconds: float) -> CollectionTask | None:
    """The task waits `seconds` for a reason that is not a failure (the quota bucket is
    empty): pending until `next_attempt_at`, the failure streak untouched."""
    task = await CollectionTask.filter(id=task_id).select_for_update().first()
    if task is None or task.status in FINISHED:
        return None
    task.status = "pending"
    task.next_attempt_at = datetime.now(UTC) + timedelta(seconds=seconds)
    await task.save()
    outbox.publish(events.COLLECTION_TASK_UPDATED, task_event(task))
    return task
