"""Which job failures are worth another try, and how long to wait before it.

A brief database fault (a terminated or dropped connection, a restarting server, a lock or
statement timeout, a serialization failure or deadlock) says nothing about the job: the same
run a few seconds later succeeds. Such a failure is handed back to ARQ as `Retry` with
exponential back-off instead of failing the job, and ARQ's `max_tries` bounds it. Any other
exception still fails the job, as before.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import structlog
from arq import Retry

from core.backoff import retry_delay
from core.settings import Settings, get_settings
from tenants.pgclient import is_database_unavailable

log = structlog.get_logger(__name__)

# Beyond an unreachable server (tenants.pgclient.is_database_unavailable): SQLSTATE classes 57
# (operator intervention), 53 (insufficient resources: too many connections), 40 (transaction
# rollback: serialization failure, deadlock), 55P03 (lock_timeout) and 25P03
# (idle_in_transaction_session_timeout).
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.IdleInTransactionSessionTimeoutError,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what caused it (Tortoise wraps some asyncpg errors; a failed rollback on a
    dead connection carries the original fault as its context)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_transient_db_error(exc: BaseException) -> bool:
    if is_database_unavailable(exc):
        return True
    return any(isinstance(err, TRANSIENT_DB_ERRORS) for err in _chain(exc))


def job_retry_delay(job_try: int, settings: Settings | None = None) -> float:
    s = settings or get_settings()
    return retry_delay(job_try, s.job_retry_base_seconds, s.job_retry_max_seconds)


JobFn = Callable[..., Awaitable[Any]]


def retry_transient_db_errors(name: str, fn: JobFn) -> JobFn:
    """Wrap an ARQ job so that a transient database fault becomes ARQ's `Retry` (with back-off)
    instead of a failed job."""

    @functools.wraps(fn)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(ctx, *args, **kwargs)
        except Exception as exc:
            if isinstance(exc, Retry) or not is_transient_db_error(exc):
                raise
            job_try = int(ctx.get("job_try") or 1)
            delay = job_retry_delay(job_try)
            log.warning(
                "job_retry_database",
                job=name,
                job_try=job_try,
                retry_in=delay,
                error=f"{type(exc).__name__}: {exc}",
            )
            raise Retry(defer=delay) from exc

    return run
