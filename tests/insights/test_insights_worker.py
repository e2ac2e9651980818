"""The insight actors end to end: the ARQ cron functions send them for every tenant, a real
`trendscope analytics-worker` process runs them, and its events reach a websocket subscriber
of the right tenant only."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.events import ALERT_TRIGGERED, INSIGHT_CREATED
from jobs.insights import schedule_daily_digests, schedule_hourly_checks
from tests.conftest import GQL, Server, Tenant, start_analytics_worker, stop_analytics_worker
from tests.graphql.test_subscriptions import connect
from tests.insights.test_insights_api import CREATE, EVENTS, INSIGHTS
from tests.wsclient import listening

pytestmark = pytest.mark.slow  # process-level: `pytest -m "not slow"` leaves it out


async def subscribe(server: Server, token: str) -> Any:
    ws = await connect(server, token)
    assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
    for sid, query in (
        ("a", "subscription { alertTriggered { message rule { name } } }"),
        ("i", "subscription { insightCreated { kind } }"),
    ):
        await ws.send(json.dumps({"id": sid, "type": "subscribe", "payload": {"query": query}}))
    return ws


async def test_crons_send_the_actors_and_the_worker_runs_them(
    server: Server, gql: GQL, tenant: Tenant, other_tenant: Tenant, redis: Redis
) -> None:
    # no posts at all: "posts below 1 in the last 24 h" holds whatever the date
    created = await gql.ok(
        CREATE,
        {"i": {"name": "Quiet", "metric": "POSTS", "condition": "BELOW", "threshold": 1}},
        token=tenant.token,
    )
    assert created["createAlertRule"]["__typename"] == "CreateAlertRuleSuccess"
    ws_a, ws_b = await subscribe(server, tenant.token), await subscribe(server, other_tenant.token)
    for t in (tenant, other_tenant):
        for event in (ALERT_TRIGGERED, INSIGHT_CREATED):
            await listening(server, redis, t, event)
    sent = await schedule_hourly_checks({}) + await schedule_daily_digests({})
    assert sent >= 6  # 3 actors x (at least) two tenants

    # the crons sent work for every tenant of this test run: the worker gets only ours
    worker = await start_analytics_worker(threads=2, tenants=[tenant, other_tenant])
    try:
        got: dict[str, Any] = {}
        for _ in range(2):
            msg = json.loads(await asyncio.wait_for(ws_a.recv(), 180))
            assert msg["type"] == "next", msg
            got[msg["id"]] = msg["payload"]["data"]
        assert got["a"]["alertTriggered"]["rule"] == {"name": "Quiet"}
        assert got["i"]["insightCreated"] == {"kind": "DAILY_DIGEST"}
        # B has no rule: only its own digest arrives
        msg = json.loads(await asyncio.wait_for(ws_b.recv(), 180))
        assert (msg["id"], msg["payload"]["data"]) == (
            "i",
            {"insightCreated": {"kind": "DAILY_DIGEST"}},
        )
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws_b.recv(), 1.0)
        events = (await gql.ok(EVENTS, token=tenant.token))["alertEvents"]["edges"]
        assert [e["node"]["rule"] for e in events] == [{"name": "Quiet"}]
        assert len((await gql.ok(INSIGHTS, token=tenant.token))["insights"]["edges"]) == 1
        assert (await gql.ok(EVENTS, token=other_tenant.token))["alertEvents"]["edges"] == []
    finally:
        for ws in (ws_a, ws_b):
            await ws.close()
        await stop_analytics_worker(worker)
