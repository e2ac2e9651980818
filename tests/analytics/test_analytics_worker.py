"""The Dramatiq path end to end: a finished import sends `analytics.recount_totals` and
`analytics.analyze_posts` after commit, a real `trendscope analytics-worker` process consumes
them from Redis and writes the tenant's totals and influencer figures, in that tenant's schema
only."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.collection.test_import import add_accounts, jsonl, rows_for
from tests.conftest import (
    GQL,
    Tenant,
    _free_port,
    import_file,
    run_jobs,
    start_analytics_worker,
    stop_analytics_worker,
)

pytestmark = pytest.mark.slow  # process-level: `pytest -m "not slow"` leaves it out

TOTALS = "{ tenantTotals { influencers accounts posts comments } }"


async def test_import_triggers_a_recount_in_the_analytics_worker(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    await add_accounts(gql, tenant.token, ["una", "vic"])
    await import_file(gql, tenant.token, "p.jsonl", jsonl(rows_for(["una", "vic"], 12)))
    await run_jobs()  # the import finishes and, after its commit, sends the Dramatiq message

    worker = await start_analytics_worker(
        "--metrics-port", str(metrics_port := _free_port()), tenants=[tenant, other_tenant]
    )
    try:
        totals = None
        for _ in range(600):  # up to 60 s for the worker to boot and consume the message
            totals = (await gql.ok(TOTALS, token=tenant.token))["tenantTotals"]
            if totals is not None:
                break
            await asyncio.sleep(0.1)
        assert totals == {"influencers": 2, "accounts": 2, "posts": 12, "comments": 0}
        assert (await gql.ok(TOTALS, token=other_tenant.token))["tenantTotals"] is None
        # Dramatiq's Prometheus exporter counted the message (`--metrics-port`)
        text = ""
        async with httpx.AsyncClient(timeout=5) as http:
            for _ in range(100):
                try:
                    text = (await http.get(f"http://127.0.0.1:{metrics_port}/")).text
                except httpx.HTTPError:
                    text = ""
                if 'actor_name="analytics.recount_totals"' in text:
                    break
                await asyncio.sleep(0.1)
        assert "dramatiq_messages_total" in text, text[:500]
        assert 'actor_name="analytics.recount_totals"' in text
        # the same import sent analytics.analyze_posts: the worker analysed the posts and
        # stored both influencers' figures
        query = "{ influencers { edges { node { metrics { posts } } } } }"
        metrics: list[object] = []
        for _ in range(600):
            edges = (await gql.ok(query, token=tenant.token))["influencers"]["edges"]
            metrics = [e["node"]["metrics"] for e in edges]
            if all(m is not None for m in metrics):
                break
            await asyncio.sleep(0.1)
        assert metrics == [{"posts": 6}, {"posts": 6}]
    finally:
        await stop_analytics_worker(worker)
