"""Issue 4 end to end: posts imported through the real import path -> the ARQ import job ->
the crons send the analytics messages -> a real `trendscope analytics-worker` process runs the
analysis pass, trend detection (sent by the pass), scores and the daily digest -> trends, scores, sentiment and a
digest appear in GraphQL for the importing tenant only, and its `trendUpdated` subscriber
hears the trend (the other tenant's hears nothing)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from domain import events
from jobs.analytics import schedule_scores
from jobs.insights import schedule_daily_digests
from tests.collection.test_import import add_accounts, jsonl
from tests.conftest import (
    GQL,
    Server,
    Tenant,
    import_file,
    run_jobs,
    start_analytics_worker,
    stop_analytics_worker,
)
from tests.trends.test_trends_e2e import subscribe, trend_rows
from tests.wsclient import listening

pytestmark = pytest.mark.slow  # process-level: `pytest -m "not slow"` leaves it out

TRENDS = """{ trends(first: 20) { edges { node { id kind key status sentiment } } } }"""
SCORES = """{ influencers(first: 10, sort: NAME_ASC) { edges { node { displayName
    metrics { influenceScore computedAt breakdown { contribution } }
    scoreHistory(since: "2020-01-01T00:00:00Z") { influenceScore } } } } }"""
INSIGHTS = """{ insights(first: 5) { edges { node { kind summary
    metrics { name value } } } } }"""
SENTIMENT = """query($t: ID!) { sentiment(trendId: $t, granularity: DAY) {
    posts positive neutral negative languages { language posts } } }"""


async def until(check: Any) -> Any:
    """Poll `check()` (async, truthy when done) every half second, for up to two minutes."""
    async with asyncio.timeout(120):
        while True:  # another process writes: poll through the API
            if result := await check():
                return result
            await asyncio.sleep(0.5)


async def test_posts_become_trends_scores_and_a_digest_for_that_tenant_only(
    server: Server, gql: GQL, tenant: Tenant, other_tenant: Tenant, redis: Redis
) -> None:
    await add_accounts(gql, tenant.token, ["ana", "bia", "cai"])
    await import_file(gql, tenant.token, "posts.jsonl", jsonl(trend_rows(datetime.now(UTC))))
    await run_jobs()  # stores the posts; its commit sends the analysis pass for this tenant

    subs = [await subscribe(server, t.token) for t in (tenant, other_tenant)]
    for t in (tenant, other_tenant):
        await listening(server, redis, t, events.TREND_UPDATED)
    # The import queued the analysis pass, which sends trend detection when it finds new
    # posts; the daily crons send the scores and the digest (one message per tenant each).
    assert await schedule_scores({}) >= 2
    assert await schedule_daily_digests({}) >= 2
    worker = await start_analytics_worker(tenants=[tenant, other_tenant])
    try:
        msg = json.loads(await asyncio.wait_for(subs[0].recv(), 120))
        assert msg["type"] == "next", msg
        assert msg["payload"]["data"]["trendUpdated"]["status"] in ("EMERGING", "RISING")

        async def scored() -> Any:
            data = await gql.ok(SCORES, token=tenant.token)
            nodes = [e["node"] for e in data["influencers"]["edges"]]
            return nodes if all(n["metrics"] for n in nodes) else None

        async def digest() -> Any:
            data = await gql.ok(INSIGHTS, token=tenant.token)
            return data["insights"]["edges"]

        influencers = await until(scored)
        insights = await until(digest)
    finally:
        await stop_analytics_worker(worker)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(subs[1].recv(), 1.0)  # B hears nothing of A's trends
    for ws in subs:
        await ws.close()

    # trends
    trends = [e["node"] for e in (await gql.ok(TRENDS, token=tenant.token))["trends"]["edges"]]
    launch = next(t for t in trends if (t["kind"], t["key"]) == ("HASHTAG", "launchday"))
    assert launch["status"] in ("EMERGING", "RISING")
    # scores: every influencer has a 0-100 score whose breakdown sums to it, and a history
    assert [n["displayName"] for n in influencers] == ["ana", "bia", "cai"]
    for n in influencers:
        m = n["metrics"]
        assert 0 <= m["influenceScore"] <= 100
        assert abs(sum(c["contribution"] for c in m["breakdown"]) - m["influenceScore"]) < 1e-6
        assert len(n["scoreHistory"]) >= 1
    # the digest, built from the data
    [digest_edge] = insights
    assert digest_edge["node"]["kind"] == "DAILY_DIGEST" and digest_edge["node"]["summary"]
    # sentiment of the trend's posts: every one analysed (English text)
    sentiment = (await gql.ok(SENTIMENT, {"t": launch["id"]}, token=tenant.token))["sentiment"]
    assert sentiment["posts"] == 24
    assert sentiment["positive"] + sentiment["neutral"] + sentiment["negative"] == 24
    assert sentiment["languages"] == [{"language": "en", "posts": 24}]

    # tenant B: none of it
    assert (await gql.ok(TRENDS, token=other_tenant.token))["trends"]["edges"] == []
    assert (await gql.ok(SCORES, token=other_tenant.token))["influencers"]["edges"] == []
    for edge in (await gql.ok(INSIGHTS, token=other_tenant.token))["insights"]["edges"]:
        assert not any(m["value"] for m in edge["node"]["metrics"])  # its own, empty day
    b_view = await gql.ok(SENTIMENT, {"t": launch["id"]}, token=other_tenant.token)
    assert b_view["sentiment"] is None
