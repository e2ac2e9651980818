"""Cancellation never strands a pooled connection inside a transaction.

graphql-core cancels the sibling resolvers of a non-null field that failed. A resolver that was
inside `tenant_tx` at that moment (taking a connection, sending BEGIN, committing) must give
its connection back, rolled back. On the old code ten such requests left ten connections
`idle in transaction` for good and every later request waited on the pool for ever.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import asyncpg
from tortoise import connections

from tenants.tx import public_tx, tenant_tx
from tests.apikeys.test_api_keys import create_key
from tests.conftest import GQL, Server, Services, Tenant, set_plan
from tests.members.test_members import join

# A refused root field beside allowed ones: the refusal cancels its siblings mid-flight.
MIXED = [
    "{ platformConnections { id } apiKeys { id } }",
    "{ apiKeys { id } influencers(first: 5) { edges { node { id } } } }",
    "{ alertRules { id } members(first: 3) { edges { node { id } } } insights(first: 2) { edges { node { id } } } }",
    "{ auditLog(first: 3) { edges { node { id } } } platformConnections { id } }",
    "{ influencers(first: 2) { edges { node { id } } } }",
]


async def in_transaction(services: Services) -> list[dict[str, Any]]:
    """Backends of this run's database that sit inside a transaction doing nothing."""
    conn = await asyncpg.connect(services.admin_url)
    try:
        rows = await conn.fetch(
            "SELECT pid, state, query FROM pg_stat_activity"
            " WHERE datname = $1 AND state LIKE 'idle in transaction%'",
            services.database_url.rsplit("/", 1)[1],
        )
        return [dict(r) for r in rows]
    finally:
        await conn.close()


def pool() -> Any:
    return connections.get("default")._pool


async def settled(services: Services) -> list[dict[str, Any]]:
    """Wait (bounded) for in-flight work to end, then report stranded transactions."""
    for _ in range(100):
        stranded = await in_transaction(services)
        if not stranded and pool().get_idle_size() == pool().get_size():
            return []
        await asyncio.sleep(0.05)
    return await in_transaction(services)


async def test_mixed_refusals_leave_no_connection_in_a_transaction(
    gql: GQL, server: Server, services: Services, tenant: Tenant
) -> None:
    await set_plan(tenant.slug, "pro")
    viewer, _ = await join(gql, tenant, "viewer")
    analyst, _ = await join(gql, tenant, "analyst")
    read_key = (await create_key(gql, tenant.token, ["influencers:read"]))["key"]
    headers = [
        {"Authorization": f"Bearer {viewer}"},
        {"Authorization": f"Bearer {analyst}"},
        {"Authorization": f"Bearer {read_key}"},
        {"Authorization": f"Bearer {tenant.token}"},
    ]
    calls = list(itertools.product(MIXED, headers))
    refused = 0
    for _ in range(12):  # 12 x 20 = 240 requests, 20 at a time
        batch = await asyncio.gather(
            *(gql.raw(q, headers=h) for q, h in calls),
        )
        for response in batch:
            assert response.status_code == 200, response.text
            refused += any(
                (e.get("extensions") or {}).get("code") == "FORBIDDEN"
                for e in response.json().get("errors") or ()
            )
    assert refused > 50  # the mix really refused fields
    assert await settled(services) == []
    ready = await gql.http.get("/readyz")
    assert ready.status_code == 200, ready.text


async def test_cancelled_at_every_step_of_a_transaction_gives_the_connection_back(
    server: Server, services: Services, tenant: Tenant
) -> None:
    """Cancel a transaction after a delay growing from 0 in steps of 0.2 ms, until runs get
    through whole: some run is cancelled at every await point of acquire, BEGIN, SET LOCAL,
    the body, COMMIT and release."""
    completed = 0
    for step in range(2_000):
        if completed >= 5:
            break

        async def work() -> None:
            async with tenant_tx(tenant.schema) as tx:
                await tx.conn.execute_query("SELECT 1")

        task = asyncio.create_task(work())
        await asyncio.sleep(step * 0.0002)
        task.cancel()
        try:
            await task
            completed += 1
        except asyncio.CancelledError:
            pass
        assert await settled(services) == [], f"stranded when cancelled after step {step}"
    assert completed >= 5  # the later runs got through whole, so every step was covered
    async with public_tx() as tx:  # and the pool still works
        assert (await tx.conn.execute_query("SELECT 1"))[0] == 1


async def test_every_connection_runs_under_the_server_side_timeouts(server: Server) -> None:
    """Statement and idle-in-transaction timeouts as startup parameters of pooled
    connections; behind PgBouncer (which refuses them) set per transaction instead."""
    from tenants import tx as txmod

    conn = connections.get("default")
    rows = await conn.execute_query_dict(
        "SELECT current_setting('statement_timeout') AS s,"
        " current_setting('idle_in_transaction_session_timeout') AS i"
    )
    assert rows == [{"s": "1min", "i": "1min"}]  # the 60,000 ms defaults
    txmod.set_local_settings({"statement_timeout": "1234"})
    try:
        async with public_tx() as tx:
            _, rows = await tx.conn.execute_query("SELECT current_setting('statement_timeout')")
        assert list(rows[0].values()) == ["1234ms"]
    finally:
        txmod.set_local_settings({})
