"""Plan limits where they bite: tracked influencers (PlanLimitReached naming the limit), live
subscriptions per tenant, the query cost ceiling, the collection interval, data retention
(the nightly job, in batches), and `viewer.tenant { plan limits usage }`. Each across two
tenants: one tenant's plan or usage never limits another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import websockets

from domain import entitlements
from domain.collection.models import CollectionTask, FollowerSnapshot, PlatformConnection
from domain.errors import PlanLimitReached
from domain.influencers.models import InfluencerAccount
from domain.posts.models import Comment, Post
from jobs.billing import apply_retention
from jobs.collection import collect_interval
from tenants.plans import PLANS
from tenants.tx import tenant_tx
from tests.conftest import GQL, Server, Tenant, set_plan
from tests.wsclient import PROTO, connected, recv, send, subscribe

ADD = """mutation($i: AddInfluencerInput!) { addInfluencer(input: $i) { __typename
    ... on AddInfluencerSuccess { influencer { id } }
    ... on PlanLimitReached { code message limit plan allowed } } }"""
VIEWER = """{ viewer { tenant { slug plan { name title } limits { trackedInfluencers seats
    retentionDays apiRequestsPerHour liveSubscriptions collectIntervalHours reportsPerMonth
    partnerApi maxQueryCost } usage { influencers seats liveSubscriptions } }
  memberships { tenant { slug plan { name } usage { influencers } } } } }"""
POST_ADDED = "subscription { postAdded { externalId } }"


async def add(gql: GQL, t: Tenant, n: int) -> dict[str, Any]:
    data = await gql.ok(
        ADD,
        {
            "i": {
                "displayName": f"I{n}",
                "accounts": [{"platform": "YOUTUBE", "handle": f"h{n}", "followers": 1}],
            }
        },
        token=t.token,
    )
    return data["addInfluencer"]  # type: ignore[no-any-return]


async def test_add_influencer_beyond_the_plan_is_refused_naming_the_limit(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    for n in range(5):  # Free: 5 tracked influencers
        assert (await add(gql, tenant, n))["__typename"] == "AddInfluencerSuccess"
    refused = await add(gql, tenant, 5)
    assert refused == {
        "__typename": "PlanLimitReached",
        "code": "PLAN_LIMIT_REACHED",
        "message": "the free plan's limit tracked_influencers is reached (5)",
        "limit": "tracked_influencers",
        "plan": "free",
        "allowed": 5,
    }
    usage = (await gql.ok(VIEWER, token=tenant.token))["viewer"]["tenant"]["usage"]
    assert usage["influencers"] == 5  # nothing was written
    # the other tenant's count is its own
    assert (await add(gql, other_tenant, 0))["__typename"] == "AddInfluencerSuccess"
    # an upgrade lifts the limit at once
    await set_plan(tenant.slug, "starter")
    assert (await add(gql, tenant, 5))["__typename"] == "AddInfluencerSuccess"


async def test_ensure_within_is_the_shared_check() -> None:
    await entitlements.ensure_within("free", "seats", 1)
    try:
        await entitlements.ensure_within("free", "seats", 2)
        raise AssertionError("the third seat of Free was allowed")
    except PlanLimitReached as exc:
        assert (exc.limit, exc.allowed, exc.plan) == ("seats", 2, "free")
    await entitlements.ensure_within("enterprise", "seats", 10_000)  # unlimited
    try:
        await entitlements.ensure_feature("starter", "partner_api")
        raise AssertionError("Starter has no partner API")
    except PlanLimitReached as exc:
        assert exc.limit == "partner_api"
    await entitlements.ensure_feature(PLANS["pro"], "partner_api")


async def test_viewer_tenant_shows_plan_limits_and_usage(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    await add(gql, tenant, 1)
    await set_plan(other_tenant.slug, "pro")
    mine = (await gql.ok(VIEWER, token=tenant.token))["viewer"]
    assert mine["tenant"]["plan"] == {"name": "free", "title": "Free"}
    assert mine["tenant"]["limits"] == {
        "trackedInfluencers": 5,
        "seats": 2,
        "retentionDays": 30,
        "apiRequestsPerHour": 1000,
        "liveSubscriptions": 5,
        "collectIntervalHours": 24,
        "reportsPerMonth": 0,
        "partnerApi": False,
        "maxQueryCost": 5000,
    }
    assert mine["tenant"]["usage"] == {"influencers": 1, "seats": 1, "liveSubscriptions": 0}
    assert mine["memberships"] == [
        {"tenant": {"slug": tenant.slug, "plan": {"name": "free"}, "usage": None}}
    ]
    theirs = (await gql.ok(VIEWER, token=other_tenant.token))["viewer"]["tenant"]
    assert theirs["plan"]["name"] == "pro" and theirs["limits"]["trackedInfluencers"] == 250
    assert theirs["usage"]["influencers"] == 0


async def test_query_cost_ceiling_follows_the_plan(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    await set_plan(tenant.slug, "pro")
    query = "{ influencers(first: 10) { edges { node { id } } } }"
    pro = await gql(query, token=tenant.token)
    assert pro["extensions"]["cost"]["limit"] == PLANS["pro"].max_query_cost == 20_000
    free = await gql(query, token=other_tenant.token)
    assert free["extensions"]["cost"]["limit"] == 5_000


async def test_live_subscriptions_per_tenant_follow_the_plan(
    server: Server, tenant: Tenant, other_tenant: Tenant
) -> None:
    ws = await connected(server.ws_url, tenant.token)
    other = await connected(server.ws_url, other_tenant.token)
    try:
        for n in range(5):  # Free: 5 live subscriptions
            await subscribe(ws, f"s{n}", POST_ADDED)
        await send(ws, {"id": "s5", "type": "subscribe", "payload": {"query": POST_ADDED}})
        refused = await recv(ws)
        assert refused["id"] == "s5" and refused["type"] == "error"
        assert refused["payload"][0]["extensions"] == {
            "code": "PLAN_LIMIT_REACHED",
            "limit": "live_subscriptions",
            "plan": "free",
            "allowed": 5,
        }
        # the socket stays open; another tenant is not limited by this one's count
        await subscribe(other, "o1", POST_ADDED)
        # closing one frees a place
        await send(ws, {"id": "s0", "type": "complete"})
        await subscribe(ws, "s6", POST_ADDED)
        await send(ws, {"id": "s7", "type": "subscribe", "payload": {"query": POST_ADDED}})
        assert (await recv(ws))["type"] == "error"
    finally:
        await ws.close()
        await other.close()
    # and the plan decides: Pro allows more
    await set_plan(tenant.slug, "pro")
    async with websockets.connect(server.ws_url, subprotocols=PROTO) as pro:
        await send(
            pro, {"type": "connection_init", "payload": {"Authorization": f"Bearer {tenant.token}"}}
        )
        assert (await recv(pro))["type"] == "connection_ack"
        for n in range(8):
            await subscribe(pro, f"p{n}", POST_ADDED)


async def test_collection_interval_follows_the_plan(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    assert collect_interval(PLANS["free"]) == timedelta(hours=24)
    assert collect_interval(PLANS["pro"]) == timedelta(hours=1)
    assert collect_interval(PLANS["pro"], override_hours=6) == timedelta(hours=6)
    from domain.collection.platform_runs import platform_runs

    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    for t in (tenant, other_tenant):
        async with tenant_tx(t.schema):
            await PlatformConnection.create(platform="youtube", secret="unused")
            task = await CollectionTask.create(
                kind="collect", platform="youtube", status="succeeded"
            )
            await CollectionTask.filter(id=task.id).update(created_at=two_hours_ago)
    await set_plan(tenant.slug, "pro")
    async with tenant_tx(tenant.schema):  # Pro: hourly, so due again
        assert await platform_runs.due_platforms(collect_interval(PLANS["pro"])) == ["youtube"]
    async with tenant_tx(other_tenant.schema):  # Free: daily, not yet
        assert await platform_runs.due_platforms(collect_interval(PLANS["free"])) == []


async def _seed(t: Tenant, gql: GQL, now: datetime, ages_days: list[int]) -> None:
    await add(gql, t, 99)
    async with tenant_tx(t.schema):
        account = await InfluencerAccount.filter(handle="h99").get()
        for n, age in enumerate(ages_days):
            when = now - timedelta(days=age)
            post = await Post.create(
                account=account,
                influencer_id=account.influencer_id,  # type: ignore[attr-defined]
                platform="youtube",
                external_id=f"p{n}",
                published_at=when,
            )
            await Comment.create(
                post=post, platform="youtube", external_id=f"c{n}", published_at=when
            )
            await FollowerSnapshot.create(account=account, followers=n, taken_at=when, task_id=n)


async def _counts(t: Tenant) -> tuple[int, int, int]:
    async with tenant_tx(t.schema):
        return (
            await Post.all().count(),
            await Comment.all().count(),
            await FollowerSnapshot.all().count(),
        )


async def test_retention_job_deletes_what_the_plan_no_longer_keeps(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    now = datetime.now(UTC)
    ages = [1, 10, 29, 31, 40, 60, 200, 365, 800]  # days
    await _seed(tenant, gql, now, ages)  # Free: 30 days
    await _seed(other_tenant, gql, now, ages)
    await set_plan(other_tenant.slug, "pro")  # Pro: 730 days
    # a comment of a kept post that is itself old goes too
    async with tenant_tx(tenant.schema):
        kept = await Post.filter(external_id="p0").get()
        await Comment.create(
            post=kept, platform="youtube", external_id="old", published_at=now - timedelta(days=90)
        )
    totals = await apply_retention({}, now=now, batch_size=2)  # batches smaller than the work
    assert totals["posts"] >= 6 + 1
    assert await _counts(tenant) == (3, 3, 3)  # ages 1, 10, 29
    assert await _counts(other_tenant) == (8, 8, 8)  # all but 800 days
    async with tenant_tx(tenant.schema):
        assert sorted(await Post.all().values_list("external_id", flat=True)) == ["p0", "p1", "p2"]
    # running it again finds nothing more
    assert (await apply_retention({}, now=now))["posts"] == 0
    assert await _counts(tenant) == (3, 3, 3)
