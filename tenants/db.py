"""Process-wide database setup: one shared pool for every tenant."""

from __future__ import annotations

from tortoise import Tortoise

from api.settings import Settings
from tenants.config import tortoise_config

_users = 0


def statement_cache_size(settings: Settings) -> int:
    """asyncpg's prepared-statement cache, off behind PgBouncer in transaction mode: a named
    statement prepared on one server connection is unknown on the next (design.md)."""
    return 0 if settings.database_pgbouncer else settings.db_statement_cache_size


async def init_db(settings: Settings) -> None:
    """Initialise Tortoise once per process. Nested users (e.g. an in-process worker beside
    the API in tests) share it; the last `close_db()` closes the pool."""
    global _users
    _users += 1
    if _users > 1 and Tortoise.is_inited():
        return
    # (Tortoise stays "inited" after close_connections(): a process that closed its last use
    # and starts again must initialise again.)
    await Tortoise.init(
        config=tortoise_config(
            settings.require_database_url(),
            pool_min=settings.db_pool_min,
            pool_max=settings.db_pool_max,
            statement_cache_size=statement_cache_size(settings),
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
