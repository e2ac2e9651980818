"""Insights and alerts through GraphQL: posts imported for two tenants, the insight jobs run
in-process (the code the Dramatiq actors call), results read back per tenant."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from domain.collection.models import FollowerSnapshot
from domain.events import ALERT_TRIGGERED, INSIGHT_CREATED
from domain.influencers.models import InfluencerAccount
from domain.insights.models import AlertRule
from domain.insights.prose import ProseRewriter
from jobs.insights import run_daily_digest, run_detect_anomalies, run_evaluate_alerts
from tenants.tx import tenant_tx
from tests.collection.test_import import jsonl
from tests.conftest import GQL, Server, Tenant, import_file, run_jobs
from tests.graphql.test_subscriptions import connect
from tests.wsclient import listening

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)

ADD = """mutation($i: AddInfluencerInput!) { addInfluencer(input: $i) {
    __typename ... on AddInfluencerSuccess { influencer { id } } } }"""
CREATE = """mutation($i: CreateAlertRuleInput!) { createAlertRule(input: $i) { __typename
    ... on CreateAlertRuleSuccess { rule { id name metric condition threshold windowHours
        channels state enabled influencer { displayName } } }
    ... on ValidationFailed { code fields { field message } } } }"""
UPDATE = """mutation($i: UpdateAlertRuleInput!) { updateAlertRule(input: $i) { __typename
    ... on UpdateAlertRuleSuccess { rule { id name threshold state } }
    ... on ValidationFailed { fields { field } } ... on NotFound { code } } }"""
DELETE = """mutation($id: ID!) { deleteAlertRule(id: $id) { __typename
    ... on DeleteAlertRuleSuccess { deletedId } ... on NotFound { code } } }"""
RULES = "{ alertRules { id name threshold state lastValue } }"
EVENTS = """{ alertEvents(first: 10) { edges { node { id value threshold message metric
    deliveries { channel status } rule { name } } } } }"""
INSIGHTS = """query($r: InsightRange) { insights(range: $r, first: 10) { edges { node {
    id kind periodStart summary metrics { name value previous changePct }
    highlights concerns recommendations } } } }"""
ANOMALIES = """query($inf: ID) { anomalies(influencerId: $inf, first: 20) { edges { node {
    id kind value baseline score severity influencer { displayName } post { externalId } } } } }"""
BEST = """query($tz: String! = "UTC") { bestPostingTimes(platform: INSTAGRAM, timezone: $tz) {
    platform timezone posts enoughData slots { weekday hour posts lift } byHour { hour posts } } }"""


async def add(gql: GQL, token: str, handle: str, followers: int = 1000) -> str:
    data = await gql.ok(
        ADD,
        {
            "i": {
                "displayName": handle.capitalize(),
                "accounts": [{"platform": "INSTAGRAM", "handle": handle, "followers": followers}],
            }
        },
        token=token,
    )
    return str(data["addInfluencer"]["influencer"]["id"])


def row(handle: str, ext: str, at: datetime, likes: int, comments: int = 0) -> dict[str, Any]:
    return {
        "platform": "instagram",
        "handle": handle,
        "external_id": ext,
        "text": f"post {ext}",
        "published_at": at.isoformat(),
        "likes": likes,
        "comments": comments,
        "views": 0,
    }


def history_rows(handle: str, prefix: str) -> list[dict[str, Any]]:
    """A post a day at 18:00 for 30 days before NOW's day, 95-104 interactions each."""
    day0 = datetime(2026, 10, 30, 18, tzinfo=UTC)
    return [
        row(handle, f"{prefix}{i}", day0 + timedelta(days=i), 90 + i % 10, 5) for i in range(30)
    ]


async def seed(gql: GQL, tenant: Tenant) -> dict[str, str]:
    ids = {"ana": await add(gql, tenant.token, "ana"), "bia": await add(gql, tenant.token, "bia")}
    rows = history_rows("ana", "a") + history_rows("bia", "b")
    # 2026-11-29 (the digest's day): ana's post goes viral; 10:00 today: more posts
    rows.append(row("ana", "viral", datetime(2026, 11, 29, 20, tzinfo=UTC), 2400, 100))
    rows.append(row("bia", "today", NOW - timedelta(hours=2), 300, 20))
    await import_file(gql, tenant.token, "posts.jsonl", jsonl(rows))
    await run_jobs()
    return ids


async def test_digest_anomalies_and_best_times_per_tenant(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    ids = await seed(gql, tenant)
    await add(gql, other_tenant.token, "zed")
    await import_file(
        gql,
        other_tenant.token,
        "p.jsonl",
        jsonl([row("zed", "z1", datetime(2026, 11, 29, 9, tzinfo=UTC), 7)]),
    )
    await run_jobs()

    # the digest of 2026-11-29 is written once, however often the job runs
    first_id = await run_daily_digest(tenant.schema, NOW)
    assert first_id is not None
    assert await run_daily_digest(tenant.schema, NOW + timedelta(hours=3)) is None
    assert await run_daily_digest(other_tenant.schema, NOW) is not None

    edges = (await gql.ok(INSIGHTS, token=tenant.token))["insights"]["edges"]
    assert len(edges) == 1
    digest = edges[0]["node"]
    assert digest["kind"] == "DAILY_DIGEST"
    assert digest["periodStart"].startswith("2026-11-29T00:00:00")
    # that day: ana's 18:00 post (90 + 29 % 10 = 99, + 5 comments) is not in it (day0 + 29 =
    # 11-28); ana 11-29: none of the history, the viral post (2500); bia: none
    metrics = {m["name"]: m for m in digest["metrics"]}
    assert metrics["posts"]["value"] == 1 and metrics["posts"]["previous"] == 2
    assert metrics["interactions"]["value"] == 2500
    assert metrics["interactions"]["previous"] == (99 + 5) * 2
    assert metrics["sentiment"]["value"] is None  # not analysed yet: no figure, no failure
    assert digest["summary"].startswith("2026-11-29: 1 post from 1 influencer earned 2500")
    assert "Top post: Ana on instagram with 2500 interactions." in digest["highlights"]
    assert any(h.startswith("Ana: viral post") for h in digest["highlights"])
    assert any(r.startswith("Best time to post on instagram") for r in digest["recommendations"])
    # a range that excludes it
    none = await gql.ok(INSIGHTS, {"r": {"since": "2026-11-30T00:00:00Z"}}, token=tenant.token)
    assert none["insights"]["edges"] == []

    # anomalies: the viral post, stored once across two runs
    assert await run_detect_anomalies(tenant.schema, NOW) >= 1
    assert await run_detect_anomalies(tenant.schema, NOW) == 0
    found = (await gql.ok(ANOMALIES, {"inf": ids["ana"]}, token=tenant.token))["anomalies"]
    kinds = [e["node"]["kind"] for e in found["edges"]]
    assert "VIRAL_POST" in kinds
    viral = next(e["node"] for e in found["edges"] if e["node"]["kind"] == "VIRAL_POST")
    assert viral["post"] == {"externalId": "viral"} and viral["value"] == 2500
    assert viral["influencer"] == {"displayName": "Ana"} and viral["severity"] == "high"
    node = "query($id: ID!) { node(id: $id) { ... on Anomaly { kind } } }"
    assert (await gql.ok(node, {"id": viral["id"]}, token=tenant.token))["node"] == {
        "kind": "VIRAL_POST"
    }
    bia = (await gql.ok(ANOMALIES, {"inf": ids["bia"]}, token=tenant.token))["anomalies"]
    assert all(e["node"]["kind"] != "VIRAL_POST" for e in bia["edges"])

    best = (await gql.ok(BEST, token=tenant.token))["bestPostingTimes"]
    assert best["enoughData"] and best["posts"] == 62
    assert best["slots"][0]["posts"] >= 3
    assert {h["hour"] for h in best["byHour"]} == {18}  # 20:00 and 10:00 hold 1 post each
    local = await gql.ok(BEST, {"tz": "America/Sao_Paulo"}, token=tenant.token)
    assert local["bestPostingTimes"]["timezone"] == "America/Sao_Paulo"
    assert {h["hour"] for h in local["bestPostingTimes"]["byHour"]} == {15}
    bad = await gql(BEST, {"tz": "Mars/Olympus"}, token=tenant.token)
    assert bad["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"

    # B sees its own digest only, none of A's anomalies, and no ranking from one post
    b_edges = (await gql.ok(INSIGHTS, token=other_tenant.token))["insights"]["edges"]
    assert len(b_edges) == 1 and b_edges[0]["node"]["summary"].startswith(
        "2026-11-29: 1 post from 1 influencer earned 7 "
    )
    await run_detect_anomalies(other_tenant.schema, NOW)
    assert (await gql.ok(ANOMALIES, token=other_tenant.token))["anomalies"]["edges"] == []
    b_best = (await gql.ok(BEST, token=other_tenant.token))["bestPostingTimes"]
    assert (b_best["posts"], b_best["enoughData"], b_best["slots"]) == (1, False, [])


async def test_alert_rule_fires_once_per_crossing_and_rearms(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    ids = await seed(gql, tenant)
    created = (
        await gql.ok(
            CREATE,
            {
                "i": {
                    "name": "Bia is hot",
                    "metric": "INTERACTIONS",
                    "condition": "ABOVE",
                    "threshold": 250,
                    "windowHours": 24,
                    "channels": ["IN_APP", "EMAIL"],
                    "influencerId": ids["bia"],
                }
            },
            token=tenant.token,
        )
    )["createAlertRule"]
    assert created["__typename"] == "CreateAlertRuleSuccess", created
    rule = created["rule"]
    assert rule["state"] == "ARMED" and rule["influencer"] == {"displayName": "Bia"}

    # bia's 320 interactions 2 h before NOW: the condition holds -> fires once
    assert await run_evaluate_alerts(tenant.schema, NOW) == 1
    assert await run_evaluate_alerts(tenant.schema, NOW + timedelta(hours=1)) == 0
    events = (await gql.ok(EVENTS, token=tenant.token))["alertEvents"]["edges"]
    assert len(events) == 1
    event = events[0]["node"]
    assert (event["value"], event["threshold"], event["metric"]) == (320, 250, "INTERACTIONS")
    assert event["rule"] == {"name": "Bia is hot"}
    assert event["deliveries"] == [
        {"channel": "EMAIL", "status": "pending"},
        {"channel": "IN_APP", "status": "pending"},
    ]
    assert (await gql.ok(RULES, token=tenant.token))["alertRules"][0]["state"] == "FIRED"
    # a day later the window holds nothing: re-armed, nothing fired
    assert await run_evaluate_alerts(tenant.schema, NOW + timedelta(days=1)) == 0
    [after] = (await gql.ok(RULES, token=tenant.token))["alertRules"]
    assert (after["state"], after["lastValue"]) == ("ARMED", 0)
    # a new crossing fires again
    later = NOW + timedelta(days=2)
    await import_file(
        gql,
        tenant.token,
        "more.jsonl",
        jsonl([row("bia", "later", later - timedelta(hours=1), 400)]),
    )
    await run_jobs()
    assert await run_evaluate_alerts(tenant.schema, later) == 1
    assert len((await gql.ok(EVENTS, token=tenant.token))["alertEvents"]["edges"]) == 2

    # B: none of A's rules or events, and cannot read, change or delete A's rule
    node = "query($id: ID!) { node(id: $id) { ... on AlertRule { name } } }"
    assert (await gql.ok(node, {"id": rule["id"]}, token=tenant.token))["node"] == {
        "name": "Bia is hot"
    }
    assert (await gql.ok(node, {"id": rule["id"]}, token=other_tenant.token))["node"] is None
    assert (await gql.ok(RULES, token=other_tenant.token))["alertRules"] == []
    assert (await gql.ok(EVENTS, token=other_tenant.token))["alertEvents"]["edges"] == []
    upd = await gql.ok(UPDATE, {"i": {"id": rule["id"], "threshold": 1}}, token=other_tenant.token)
    assert upd["updateAlertRule"] == {"__typename": "NotFound", "code": "NOT_FOUND"}
    gone = await gql.ok(DELETE, {"id": rule["id"]}, token=other_tenant.token)
    assert gone["deleteAlertRule"]["__typename"] == "NotFound"
    assert await run_evaluate_alerts(other_tenant.schema, later) == 0
    assert (await gql.ok(RULES, token=tenant.token))["alertRules"][0]["threshold"] == 250

    # A updates (a new threshold re-arms) and deletes its own rule
    upd = await gql.ok(UPDATE, {"i": {"id": rule["id"], "threshold": 1000}}, token=tenant.token)
    assert upd["updateAlertRule"]["rule"] == {
        "id": rule["id"],
        "name": "Bia is hot",
        "threshold": 1000,
        "state": "ARMED",
    }
    gone = await gql.ok(DELETE, {"id": rule["id"]}, token=tenant.token)
    assert gone["deleteAlertRule"] == {
        "__typename": "DeleteAlertRuleSuccess",
        "deletedId": rule["id"],
    }
    assert (await gql.ok(RULES, token=tenant.token))["alertRules"] == []


async def test_bad_rule_input_changes_nothing(gql: GQL, tenant: Tenant) -> None:
    await add(gql, tenant.token, "cy")
    bad = (
        await gql.ok(
            CREATE,
            {
                "i": {
                    "name": "",
                    "metric": "SENTIMENT",
                    "condition": "BELOW",
                    "threshold": -3,
                    "windowHours": 0,
                    "channels": [],
                }
            },
            token=tenant.token,
        )
    )["createAlertRule"]
    assert bad["__typename"] == "ValidationFailed" and bad["code"] == "VALIDATION_FAILED"
    assert [f["field"] for f in bad["fields"]] == ["name", "threshold", "windowHours", "channels"]
    wrong_id = await gql.ok(
        CREATE,
        {"i": {"name": "x", "metric": "POSTS", "condition": "ABOVE", "threshold": 1,
               "influencerId": "SW5mbHVlbmNlcjo5OTk5"}},  # Influencer:9999
        token=tenant.token,
    )  # fmt: skip
    assert [f["field"] for f in wrong_id["createAlertRule"]["fields"]] == ["influencerId"]
    assert (await gql.ok(RULES, token=tenant.token))["alertRules"] == []

    ok = (
        await gql.ok(
            CREATE,
            {"i": {"name": "Posts", "metric": "POSTS", "condition": "ABOVE", "threshold": 3}},
            token=tenant.token,
        )
    )["createAlertRule"]["rule"]
    assert ok["channels"] == ["IN_APP"] and ok["windowHours"] == 24
    bad_update = await gql.ok(
        UPDATE,
        {"i": {"id": ok["id"], "name": "Renamed", "condition": "CHANGE_PCT", "threshold": 0}},
        token=tenant.token,
    )
    assert bad_update["updateAlertRule"] == {
        "__typename": "ValidationFailed",
        "fields": [{"field": "threshold"}],
    }
    [unchanged] = (await gql.ok(RULES, token=tenant.token))["alertRules"]
    assert (unchanged["name"], unchanged["threshold"]) == ("Posts", 3)

    # at most 100 rules per tenant
    async with tenant_tx(tenant.schema):
        await AlertRule.bulk_create(
            [
                AlertRule(name=f"r{i}", metric="posts", condition="above", threshold=1,
                          window_hours=24, channels=["in_app"])
                for i in range(99)
            ]
        )  # fmt: skip
    full = await gql.ok(
        CREATE,
        {"i": {"name": "One more", "metric": "POSTS", "condition": "ABOVE", "threshold": 3}},
        token=tenant.token,
    )
    assert full["createAlertRule"]["fields"] == [
        {"field": "input", "message": "a tenant has at most 100 alert rules"}
    ]
    assert len((await gql.ok(RULES, token=tenant.token))["alertRules"]) == 100


async def test_alert_and_insight_subscribers_receive_their_events(
    server: Server, gql: GQL, tenant: Tenant, other_tenant: Tenant, redis: Redis
) -> None:
    await seed(gql, tenant)
    await gql.ok(
        CREATE,
        {"i": {"name": "Busy", "metric": "POSTS", "condition": "ABOVE", "threshold": 0}},
        token=tenant.token,
    )
    sockets = []
    for t in (tenant, other_tenant):
        ws = await connect(server, t.token)
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
        for sid, query in (
            ("a", "subscription { alertTriggered { message value rule { name } } }"),
            ("i", "subscription { insightCreated { kind periodStart summary } }"),
        ):
            await ws.send(json.dumps({"id": sid, "type": "subscribe", "payload": {"query": query}}))
        sockets.append(ws)
    for t in (tenant, other_tenant):
        for event in (ALERT_TRIGGERED, INSIGHT_CREATED):
            await listening(server, redis, t, event)
    assert await run_evaluate_alerts(tenant.schema, NOW) == 1
    assert await run_daily_digest(tenant.schema, NOW) is not None
    got: dict[str, Any] = {}
    for _ in range(2):
        msg = json.loads(await asyncio.wait_for(sockets[0].recv(), 10))
        assert msg["type"] == "next", msg
        got[msg["id"]] = msg["payload"]["data"]
    assert got["a"]["alertTriggered"]["rule"] == {"name": "Busy"}
    assert got["a"]["alertTriggered"]["value"] == 2  # the viral post and "today"
    assert got["i"]["insightCreated"]["kind"] == "DAILY_DIGEST"
    assert got["i"]["insightCreated"]["periodStart"].startswith("2026-11-29")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(sockets[1].recv(), 1.0)  # B hears nothing of A's
    for ws in sockets:
        await ws.close()


async def test_follower_snapshots_feed_rules_and_the_digest(gql: GQL, tenant: Tenant) -> None:
    ids = await seed(gql, tenant)
    async with tenant_tx(tenant.schema):
        accounts = dict(await InfluencerAccount.all().values_list("handle", "id"))
        for handle, hours_ago, followers in (
            ("ana", 60, 900),  # older than both windows: only the latest before counts
            ("ana", 30, 1000),
            ("ana", 1, 1200),
            ("bia", 50, 500),
        ):
            await FollowerSnapshot.create(
                account_id=accounts[handle],
                followers=followers,
                taken_at=NOW - timedelta(hours=hours_ago),
            )
    rule = {"name": "Ana grows", "metric": "FOLLOWERS", "condition": "CHANGE_PCT"}
    created = await gql.ok(
        CREATE,
        {"i": {**rule, "threshold": 10, "windowHours": 24, "influencerId": ids["ana"]}},
        token=tenant.token,
    )
    assert created["createAlertRule"]["__typename"] == "CreateAlertRuleSuccess"
    # ana: 1000 at NOW - 24 h, 1200 at NOW: +20 % (bia's 500 is out of the rule's scope)
    assert await run_evaluate_alerts(tenant.schema, NOW) == 1
    [event] = (await gql.ok(EVENTS, token=tenant.token))["alertEvents"]["edges"]
    assert "+20.0%" in event["node"]["message"] and event["node"]["value"] == 1200

    await run_daily_digest(tenant.schema, NOW)
    [digest] = (await gql.ok(INSIGHTS, token=tenant.token))["insights"]["edges"]
    followers = next(m for m in digest["node"]["metrics"] if m["name"] == "followers")
    # end of 11-29: ana 1000 (taken 11-29 06:00) + bia 500; start: ana 900 + bia 500
    assert (followers["value"], followers["previous"]) == (1500, 1400)


def fake_chat_completions(seen: list[httpx.Request], status: int = 200) -> httpx.MockTransport:
    """An OpenAI-compatible `POST /v1/chat/completions` with the documented response shape."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if status != 200:
            return httpx.Response(status, json={"error": {"message": "overloaded"}})
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1764547200,
                "model": "tiny-model",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": " Ana's post took off. "},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 300, "completion_tokens": 6, "total_tokens": 306},
            },
        )

    return httpx.MockTransport(handle)


async def test_digest_prose_rewritten_by_a_configured_endpoint(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    await seed(gql, tenant)
    seen: list[httpx.Request] = []
    rewriter = ProseRewriter(
        "http://llm.test/v1", "tiny-model", "sk-test", transport=fake_chat_completions(seen)
    )
    assert await run_daily_digest(tenant.schema, NOW, rewriter) is not None
    [request] = seen
    assert (request.method, str(request.url)) == ("POST", "http://llm.test/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer sk-test"
    sent = json.loads(request.content)
    assert sent["model"] == "tiny-model" and [m["role"] for m in sent["messages"]] == [
        "system",
        "user",
    ]
    assert json.loads(sent["messages"][1]["content"])["summary"].startswith("2026-11-29: 1 post ")
    query = "{ insights { edges { node { summary prose } } } }"
    [edge] = (await gql.ok(query, token=tenant.token))["insights"]["edges"]
    assert edge["node"]["prose"] == "Ana's post took off."
    assert edge["node"]["summary"].startswith("2026-11-29: 1 post ")  # the data-built one stays

    # a failing endpoint: the digest is still written, without prose
    failing = ProseRewriter("http://llm.test/v1", "m", transport=fake_chat_completions([], 503))
    assert await run_daily_digest(other_tenant.schema, NOW, failing) is not None
    [edge] = (await gql.ok(query, token=other_tenant.token))["insights"]["edges"]
    assert edge["node"]["prose"] is None
