"""The analytics-worker end-to-end tests wait for their own tenants' work: before the worker
starts, the run's Dramatiq queues keep only those tenants' messages (tests/conftest.py
`drop_other_tenants_messages`), so the wait does not grow with every tenant an earlier test
of the run created (their imports and the crons queued work that no worker consumed)."""

from __future__ import annotations

import asyncio
import json

from core.broker import get_broker
from tests.conftest import Tenant, drop_other_tenants_messages


async def queued() -> list[tuple[str, list[object]]]:
    """(actor, args) of every message in this run's analytics queues, ready or delayed."""
    broker = get_broker()
    client, found = broker.client, []
    for queue in ("analytics", "analytics.DQ"):
        key = f"{broker.namespace}:{queue}"
        ids = await asyncio.to_thread(client.lrange, key, 0, -1)
        messages = await asyncio.to_thread(client.hgetall, f"{key}.msgs")
        assert set(ids) == set(messages), "a queue and its messages disagree"
        for raw in messages.values():
            message = json.loads(raw)
            found.append((message["actor_name"], message["args"]))
    return found


async def test_only_the_tests_tenants_work_is_left_for_the_worker(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    from jobs import actors  # here: its actors bind to the broker of this run's settings

    stranger = "t_someone_else"  # an earlier test's tenant
    for schema in (tenant.schema, other_tenant.schema, stranger):
        await asyncio.to_thread(actors.recount_totals.send, schema)
    await asyncio.to_thread(actors.compute_scores.send_with_options, args=(stranger,), delay=60_000)
    await asyncio.to_thread(actors.daily_digest.send, tenant.schema)
    assert {args[0] for _, args in await queued()} >= {tenant.schema, stranger}

    assert await drop_other_tenants_messages([tenant]) >= 3  # other_tenant's, stranger's two
    assert sorted(await queued()) == [
        ("analytics.daily_digest", [tenant.schema]),
        ("analytics.recount_totals", [tenant.schema]),
    ]
    assert await drop_other_tenants_messages([]) == 2  # leave the queue empty behind us
    assert await queued() == []
