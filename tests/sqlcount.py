"""Count the SQL statements actually sent to PostgreSQL, at the asyncpg connection level.

    async with count_statements() as sent:
        await gql(...)
    assert len(sent) == 6

Every connection the Tortoise pool hands out while the block runs gets an asyncpg query logger
(`Connection.add_query_logger`, added in the pool's per-acquire `setup` hook), which asyncpg calls once per statement it sends: queries,
`BEGIN` / `COMMIT`, `SET LOCAL`, scripts. The server fixture runs the app in the test process,
so this sees the statements of requests made through `gql` too. Nothing else may use the
database meanwhile (tests run one at a time; the app has no background database work).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from asyncpg import Pool
from asyncpg.connection import LoggedQuery
from tortoise import connections

# asyncpg's own queries: the pool's reset of a released connection, and the one-off type
# introspection the first time a connection meets a type. They are not the app's statements.
_DRIVER_MARKERS = ("pg_advisory_unlock_all", "typeinfo_tree", "'jit'")


def app_statements(sent: list[str]) -> list[str]:
    """`sent` without asyncpg's own housekeeping queries."""
    return [q for q in sent if not any(m in q for m in _DRIVER_MARKERS)]


@contextlib.asynccontextmanager
async def count_statements(connection_name: str = "default") -> AsyncIterator[list[str]]:
    """Yield a list that collects the text of every statement sent inside the block."""
    pool: Pool = connections.get(connection_name)._pool  # type: ignore[attr-defined]
    sent: list[str] = []

    def logger(record: LoggedQuery) -> None:
        sent.append(record.query)

    touched: list[Any] = []
    holders = list(pool._holders)  # one per pool slot, made when the pool is created
    previous = {id(h): h._setup for h in holders}

    def wrap(holder: Any) -> Any:
        inner = previous[id(holder)]

        async def setup(proxy: Any) -> None:  # asyncpg calls this on every acquire
            con = proxy._con
            con.add_query_logger(logger)
            touched.append(con)
            if inner is not None:
                await inner(proxy)

        return setup

    for holder in holders:
        if holder._con is not None and not holder.is_idle():  # checked out already
            holder._con.add_query_logger(logger)
            touched.append(holder._con)
        holder._setup = wrap(holder)
    try:
        yield sent
        await asyncio.sleep(0)  # asyncpg reports each statement with loop.call_soon
        await asyncio.sleep(0)
    finally:
        for holder in holders:
            holder._setup = previous[id(holder)]
        for con in touched:
            con.remove_query_logger(logger)
