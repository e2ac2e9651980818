"""Process-wide database setup: one shared pool for every tenant."""

from __future__ import annotations

from tortoise import Tortoise

from core.settings import Settings
from tenants.config import tortoise_config
from tenants.tx import set_local_settings

_users = 0


def statement_cache_size(settings: Settings) -> int:
    """asyncpg's prepared-statement cache, off behind PgBouncer in transaction mode: a named
    statement prepared on one server connection is unknown on the next (design.md)."""
    return 0 if settings.database_pgbouncer else settings.db_statement_cache_size


def session_timeouts(settings: Settings) -> dict[str, str]:
    """The server-side limits every connection runs under: a statement that runs too long is
    cancelled, and a connection left idle inside a transaction is closed by PostgreSQL, so a
    bug above us cannot hold locks and a pool slot for good (milliseconds, 0 = off)."""
    return {
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "idle_in_transaction_session_timeout": str(settings.db_idle_in_transaction_timeout_ms),
    }


async def init_db(settings: Settings) -> None:
    """Initialise Tortoise once per process. Nested users (e.g. an in-process worker beside
    the API in tests) share it; the last `close_db()` closes the pool."""
    global _users
    _users += 1
    if _users > 1 and Tortoise.is_inited():
        return
    set_local_settings(session_timeouts(settings) if settings.database_pgbouncer else {})
    # (Tortoise stays "inited" after close_connections(): a process that closed its last use
    # and starts again must initialise again.)
    await Tortoise.init(
        config=tortoise_config(
            settings.require_database_url(),
            pool_min=settings.db_pool_min,
            pool_max=settings.db_pool_max,
            statement_cache_size=statement_cache_size(settings),
            acquire_timeout=settings.db_acquire_timeout_seconds,
            # PgBouncer refuses unknown startup parameters: there `tenant_tx` sets them per
            # transaction instead (SET LOCAL, tenants/tx.py), and docs/operations.md says to
            # set them on the role as well.
            server_settings=None if settings.database_pgbouncer else session_timeouts(settings),
        ),
        # One Tortoise per process, visible from every task and thread-loop (ARQ jobs,
        # Dramatiq's event-loop thread, uvicorn's request tasks).
        _enable_global_fallback=True,
    )


async def close_db() -> None:
    global _users
    _users = max(0, _users - 1)
    if _users == 0 and Tortoise.is_inited():
        await Tortoise.close_connections()
