"""Trends end to end: posts imported through the real import path, the ARQ import job, the
hourly cron sending `analytics.detect_trends` to a real analytics worker process, then the
trends in GraphQL and `trendUpdated` on a real websocket, for the importing tenant only."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from strawberry.relay import GlobalID

from domain import events
from domain.trends.models import Trend, TrendInfluencer, TrendPoint
from domain.trends.service import trends as trend_service
from jobs.trends import detect_tenant_trends, schedule_trend_detection
from tenants.tx import tenant_tx
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
from tests.graphql.test_subscriptions import connect
from tests.wsclient import listening

TRENDS = """query($status: TrendStatus, $platform: Platform, $first: Int, $after: String) {
  trends(status: $status, platform: $platform, first: $first, after: $after) {
    edges { cursor node { id kind key label platform status score z velocity volume } }
    pageInfo { hasNextPage endCursor } } }"""

TREND = """query($id: ID!) { trend(id: $id) {
  key status score volume engagement sentiment firstSeen lastSeen computedAt
  scoreBreakdown { name value weight contribution }
  series { t count }
  daily: series(granularity: DAY) { t count }
  forecast { horizon stepHours model level points { t value low high } }
  week: forecast(horizon: DAYS_7) { horizon points { t value low high } }
  influencers { rank posts contribution influencer { displayName } } } }"""

SUBSCRIBE = {
    "id": "1",
    "type": "subscribe",
    "payload": {"query": "subscription { trendUpdated { id key kind status score } }"},
}


def trend_rows(now: datetime, prefix: str = "") -> list[dict[str, Any]]:
    """A flat background (one #dailycoffee post every 6 hours for 10 days) and a burst of
    #launchday in the last 4 hours (mostly by "bia", a few by "cai")."""
    rows = []

    def row(handle: str, i: int, text: str, at: datetime, likes: int) -> dict[str, Any]:
        return {
            "platform": "instagram",
            "handle": handle,
            "external_id": f"{prefix}{i}",
            "url": f"https://www.instagram.com/p/{prefix}{i}/",
            "text": text,
            "published_at": at.isoformat(),
            "likes": likes,
            "comments": 1,
            "views": 100,
        }

    for i in range(40):
        at = now - timedelta(days=10) + timedelta(hours=6 * i)
        rows.append(row("ana", i, "my morning #dailycoffee ritual", at, 10))
    for j in range(24):
        at = now - timedelta(minutes=10 * j + 5)
        handle = "cai" if j % 4 == 0 else "bia"
        rows.append(row(handle, 100 + j, f"the big #launchday is here, drop {j}", at, 40))
    return rows


async def subscribe(server: Server, token: str) -> Any:
    ws = await connect(server, token)
    assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
    await ws.send(json.dumps(SUBSCRIBE))
    return ws


@pytest.mark.slow
async def test_trend_detected_for_the_importing_tenant_only(
    server: Server, gql: GQL, tenant: Tenant, other_tenant: Tenant, redis: Redis
) -> None:
    await add_accounts(gql, tenant.token, ["ana", "bia", "cai"])
    now = datetime.now(UTC)
    await import_file(gql, tenant.token, "posts.jsonl", jsonl(trend_rows(now)))
    await run_jobs()  # the ARQ import job stores the posts

    subs = [await subscribe(server, t.token) for t in (tenant, other_tenant)]
    for t in (tenant, other_tenant):
        await listening(server, redis, t, events.TREND_UPDATED)
    assert await schedule_trend_detection({}) >= 2  # the cron: one message per tenant
    worker = await start_analytics_worker(tenants=[tenant, other_tenant])
    try:
        msg = json.loads(await asyncio.wait_for(subs[0].recv(), 90))
    finally:
        await stop_analytics_worker(worker)
    assert msg["type"] == "next", msg
    event = msg["payload"]["data"]["trendUpdated"]
    assert event["status"] in ("EMERGING", "RISING")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(subs[1].recv(), 1.0)  # B hears nothing of A's trends
    for ws in subs:
        await ws.close()

    data = await gql.ok(TRENDS, {"first": 50}, token=tenant.token)
    nodes = [e["node"] for e in data["trends"]["edges"]]
    by_key = {(n["kind"], n["key"]): n for n in nodes}
    launch = by_key[("HASHTAG", "launchday")]
    assert launch["status"] in ("EMERGING", "RISING")
    assert launch["platform"] is None and launch["volume"] == 24 and launch["z"] >= 3
    assert ("HASHTAG", "dailycoffee") not in by_key  # a flat background is no trend
    assert [n["score"] for n in nodes] == sorted((n["score"] for n in nodes), reverse=True)
    # keywords computed from the text (the analysis pass has not filled `keywords`; hashtags
    # are not keywords)
    assert by_key[("KEYWORD", "drop")]["status"] in ("EMERGING", "RISING")
    rising = await gql.ok(TRENDS, {"status": "STABLE"}, token=tenant.token)
    assert rising["trends"]["edges"] == []
    on_ig = await gql.ok(TRENDS, {"platform": "INSTAGRAM"}, token=tenant.token)
    assert "launchday" in {e["node"]["key"] for e in on_ig["trends"]["edges"]}
    assert all(e["node"]["platform"] == "INSTAGRAM" for e in on_ig["trends"]["edges"])

    detail = (await gql.ok(TREND, {"id": launch["id"]}, token=tenant.token))["trend"]
    assert sum(p["count"] for p in detail["series"]) == 24 and len(detail["series"]) == 168
    assert sum(p["count"] for p in detail["daily"]) == 24
    # the import also queued the analysis pass: the trend's sentiment is known if it ran
    # first, unknown (null, not neutral) otherwise
    assert detail["sentiment"] is None or -1 <= detail["sentiment"] <= 1
    assert abs(sum(c["contribution"] for c in detail["scoreBreakdown"]) - detail["score"]) < 1e-6
    fc = detail["forecast"]
    assert fc["horizon"] == "HOURS_24" and len(fc["points"]) == 24 and fc["level"] == 0.9
    assert all(0 <= p["low"] <= p["value"] <= p["high"] for p in fc["points"])
    assert detail["week"]["horizon"] == "DAYS_7" and len(detail["week"]["points"]) == 7
    drivers = detail["influencers"]
    assert [d["influencer"]["displayName"] for d in drivers] == ["bia", "cai"]
    assert drivers[0]["posts"] == 18 and drivers[1]["posts"] == 6
    assert abs(sum(d["contribution"] for d in drivers) - 1.0) < 1e-9

    # isolation: B lists nothing and cannot read A's trend by id, nor through `node`
    empty = await gql.ok(TRENDS, token=other_tenant.token)
    assert empty["trends"]["edges"] == []
    assert (await gql.ok(TREND, {"id": launch["id"]}, token=other_tenant.token))["trend"] is None
    node = await gql.ok(
        "query($id: ID!) { node(id: $id) { id } }", {"id": launch["id"]}, token=other_tenant.token
    )
    assert node["node"] is None

    # the scope is required
    anonymous = await gql(TRENDS)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    # pages by score follow each other without overlap
    page1 = await gql.ok(TRENDS, {"first": 2}, token=tenant.token)
    page2 = await gql.ok(
        TRENDS, {"first": 50, "after": page1["trends"]["pageInfo"]["endCursor"]}, token=tenant.token
    )
    keys = [e["node"]["id"] for e in page1["trends"]["edges"] + page2["trends"]["edges"]]
    assert keys == [n["id"] for n in nodes]


async def test_detection_is_idempotent_and_fades_what_is_gone(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    await add_accounts(gql, tenant.token, ["ana", "bia", "cai"])
    now = datetime.now(UTC)
    await import_file(gql, tenant.token, "posts.jsonl", jsonl(trend_rows(now, prefix="i")))
    await run_jobs()

    first = await detect_tenant_trends(tenant.schema, now=now)
    assert {(c.kind, c.key) for c in first if c.created} >= {("hashtag", "launchday")}

    async def snapshot() -> tuple[Any, ...]:
        async with tenant_tx(tenant.schema):
            rows = (
                await Trend.all()
                .order_by("id")
                .values_list("id", "kind", "key", "platform", "status", "score", "last_updated")
            )
            points = await TrendPoint.all().count()
            drivers = await TrendInfluencer.all().count()
        return rows, points, drivers

    before = await snapshot()
    again = await detect_tenant_trends(tenant.schema, now=now)
    assert again == []  # nothing changed materially: no event, same rows
    assert await snapshot() == before

    # the helper the sentiment query uses: the trend's posts
    async with tenant_tx(tenant.schema):
        launch = await Trend.get(kind="hashtag", key="launchday", platform="all")
        ids = await trend_service.post_ids(launch.id)
        recent = await trend_service.post_ids(launch.id, since=now - timedelta(minutes=60))
        assert await trend_service.post_ids(10**12) is None
    assert ids is not None and len(ids) == 24
    assert recent is not None and len(recent) == 6

    # three days later the burst is over: still declining within 48 h, then stable
    later = await detect_tenant_trends(tenant.schema, now=now + timedelta(hours=12))
    statuses = {(c.kind, c.key, c.platform): c.status for c in later}
    assert statuses[("hashtag", "launchday", "all")] == "declining"
    gone = await detect_tenant_trends(tenant.schema, now=now + timedelta(days=3))
    assert {(c.key, c.status) for c in gone if c.kind == "hashtag" and c.platform == "all"} == {
        ("launchday", "stable")
    }
    # out of the 14-day window: faded (score 0); after 30 days without posts: forgotten
    await detect_tenant_trends(tenant.schema, now=now + timedelta(days=15))
    async with tenant_tx(tenant.schema):
        faded = await Trend.get(kind="hashtag", key="launchday", platform="all")
        assert (faded.status, faded.score, faded.volume) == ("stable", 0.0, 0)
    await detect_tenant_trends(tenant.schema, now=now + timedelta(days=31))
    async with tenant_tx(tenant.schema):
        assert await Trend.all().count() == 0
        assert await TrendPoint.all().count() == 0
    # B's schema was never touched
    async with tenant_tx(other_tenant.schema):
        assert await Trend.all().count() == 0


async def test_a_viewer_without_analytics_scope_sees_no_trend(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    from domain.accounts.models import Membership, User
    from tenants.models import Tenant as TenantRow
    from tenants.tx import public_tx

    await add_accounts(gql, tenant.token, ["ana", "bia", "cai"])
    now = datetime.now(UTC)
    await import_file(gql, tenant.token, "posts.jsonl", jsonl(trend_rows(now, prefix="v")))
    await run_jobs()
    await detect_tenant_trends(tenant.schema, now=now)
    async with tenant_tx(tenant.schema):
        launch = await Trend.get(kind="hashtag", key="launchday", platform="all")
    gid = GlobalID("Trend", str(launch.id))
    owner = await gql.ok(TREND, {"id": str(gid)}, token=tenant.token)
    assert owner["trend"]["key"] == "launchday"

    # B's owner becomes a viewer of A: influencers:read, no analytics:read
    async with public_tx():
        user = await User.get(email=other_tenant.email)
        await Membership.create(
            user=user, tenant=await TenantRow.get(slug=tenant.slug), role="viewer"
        )
    as_viewer = {"X-Tenant": tenant.slug}
    denied = await gql(TRENDS, token=other_tenant.token, headers=as_viewer)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    node = await gql(
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": str(gid)},
        token=other_tenant.token,
        headers=as_viewer,
    )
    # `node` needs influencers:read, a Trend analytics:read as well (schema.permissions)
    assert node["data"]["node"] is None
    assert [e["extensions"]["code"] for e in node["errors"]] == ["FORBIDDEN"]


def test_the_worker_schedules_trend_detection_hourly() -> None:
    from jobs.worker import worker_settings

    crons = {c.name: c for c in worker_settings()["cron_jobs"]}
    assert crons["analytics.schedule_trends"].minute == 15
