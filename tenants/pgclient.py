"""Our Tortoise engine: Tortoise's asyncpg client with the guarantees a shared pool needs.

Every tenant shares one pool per process, so one stuck connection is everyone's problem.
Tortoise's own pooled transaction takes a connection and then sends BEGIN; a task cancelled
between the two (graphql-core cancels the sibling resolvers of a failed non-null field) never
reached `__aexit__`, and the connection stayed checked out, `idle in transaction`, for good:
ten such requests and every later one waited on the pool for ever. Here:

- a transaction that fails or is cancelled anywhere in its entry gives its connection back
  (asyncpg's release rolls back an open transaction and is itself shielded);
- every acquire waits at most `db_acquire_timeout_seconds`, then raises `DatabaseBusy`, which
  the API answers with 503 SERVICE_UNAVAILABLE and `Retry-After` instead of a hang;
- the pool counts who waits for a connection, for /readyz and /metrics.

Configured by `tenants.config.tortoise_config` (`engine: tenants.pgclient`).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionContext, TransactionContextPooled
from tortoise.connection import connections as tortoise_connections


class DatabaseUnavailable(Exception):
    """PostgreSQL cannot serve this request now (down, restarting, or no free connection)."""

    retry_after = 5


class DatabaseBusy(DatabaseUnavailable):
    """Every pooled connection stayed busy for the whole acquire timeout."""

    retry_after = 2


class BoundedPool(asyncpg.Pool):
    """An asyncpg pool whose acquire has a default timeout and which counts its waiters."""

    def __init__(self, *args: Any, acquire_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout
        self.waiting = 0
        self.timeouts = 0

    async def _acquire(self, timeout: float | None) -> Any:  # noqa: ASYNC109 (asyncpg's)
        self.waiting += 1
        try:
            return await super()._acquire(self.acquire_timeout if timeout is None else timeout)
        except TimeoutError as exc:
            self.timeouts += 1
            raise DatabaseBusy(
                f"no database connection was free within {self.acquire_timeout:g} s"
            ) from exc
        finally:
            self.waiting -= 1


class SafeTransactionContext(TransactionContextPooled):
    """Tortoise's pooled transaction, but a failure or cancellation at BEGIN releases the
    connection, and the release at the end cannot be skipped by a second cancellation."""

    async def __aenter__(self) -> Any:
        await self.ensure_connection()
        pool = self.client._parent._pool
        connection = await pool.acquire()  # asyncpg releases it itself if cancelled here
        try:
            self.client._connection = connection
            self.token = tortoise_connections.set(self.connection_name, self.client)
            await self.client.begin()
        except BaseException:
            await self._release(pool, connection)
            raise
        return self.client

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        pool = self.client._parent._pool
        try:
            if not self.client._finalized:
                if exc_type:
                    await self.client.rollback()
                else:
                    await self.client.commit()
        finally:
            await self._release(pool, self.client._connection)

    async def _release(self, pool: asyncpg.Pool | None, connection: Any) -> None:
        token = getattr(self, "token", None)
        if token is not None:
            tortoise_connections.reset(token)
            del self.token
        if pool is not None and connection is not None:
            # Shielded inside asyncpg; it rolls back whatever transaction is still open.
            await pool.release(connection)


class TrendscopePostgresClient(AsyncpgDBClient):
    def __init__(self, *args: Any, acquire_timeout: float = 5.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        # What asyncpg.create_pool() does, with our subclass (and its defaults where Tortoise
        # passes None).
        options: dict[str, Any] = {
            "max_queries": 50_000,
            "max_inactive_connection_lifetime": 300.0,
            "loop": None,
            "connection_class": asyncpg.Connection,
            "record_class": asyncpg.Record,
        }
        options.update({k: v for k, v in kwargs.items() if v is not None})
        pool = BoundedPool(None, acquire_timeout=self.acquire_timeout, **options)
        await pool
        return pool

    def _in_transaction(self) -> TransactionContext:
        return SafeTransactionContext(TransactionWrapper(self), self._pool_init_lock)


client_class = TrendscopePostgresClient


# asyncpg's errors that mean "the server is not there or not serving", as opposed to "this
# statement is wrong": connection failures (08xxx), shutdown and recovery (57P01-57P03), and
# the client-side ones when a connection dies under a query.
_UNAVAILABLE = (
    DatabaseUnavailable,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.QueryCanceledError,  # statement_timeout: overloaded, not the client's fault
)


def is_database_unavailable(exc: BaseException | None) -> bool:
    """Whether `exc` says PostgreSQL is unreachable. asyncpg's own errors count anywhere in
    the chain (Tortoise wraps some); a bare socket error only at the top, where the pool's
    connect raises it ("Multiple exceptions: [Errno 111] Connect call failed"): an HTTP
    client's connection errors arrive wrapped in its own types and are not ours."""
    if isinstance(exc, ConnectionError) or (
        isinstance(exc, OSError) and "connect" in str(exc).lower()
    ):
        return True
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, _UNAVAILABLE):
            return True
        if isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc):
            return True  # "connection is closed": the server dropped it under us
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def retry_after(exc: BaseException | None) -> int:
    """Seconds a client should wait before trying again after `exc`."""
    if isinstance(exc, DatabaseUnavailable):
        return exc.retry_after
    return DatabaseUnavailable.retry_after
