"""The analytics pass end to end: posts imported for two tenants, the Dramatiq messages the
import and the crons send, the pass run in-process from those messages, then metrics, score
history, authenticity and sentiment through GraphQL; incremental re-runs; `scoreUpdated` over
the real websocket."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from core.broker import get_broker
from domain import events
from domain.analytics.models import InfluencerScore
from domain.collection.models import FollowerSnapshot
from domain.influencers.models import InfluencerAccount
from domain.posts.models import Comment, Post
from jobs.analytics import analyze_tenant, compute_scores, schedule_analysis, schedule_scores
from tenants.tx import tenant_tx
from tests.collection.test_import import add_accounts, jsonl
from tests.conftest import GQL, Server, Tenant, import_file, run_jobs
from tests.graphql.test_subscriptions import connect
from tests.wsclient import listening

START = datetime(2026, 11, 1, tzinfo=UTC)
POSITIVE_EN = [
    "I love this beach, what a wonderful sunny day",
    "Amazing concert tonight, the band was great and I love them",
    "Best coffee in town, wonderful people and great music",
]
NEGATIVE_EN = [
    "Terrible service, the coffee was awful and cold",
    "I hate waiting, the worst traffic ever, awful day",
]
POSITIVE_PT = [
    "Que dia maravilhoso na praia, amei demais",
    "Adorei o show de hoje, a banda foi incrível",
]
NEGATIVE_PT = ["Que péssimo atendimento, o café estava horrível e frio"]
TEXTS = POSITIVE_EN + NEGATIVE_EN + POSITIVE_PT + NEGATIVE_PT

INFLUENCERS = """{ influencers(first: 10, sort: NAME_ASC) { edges { node { id displayName
    metrics { computedAt formula followers posts engagementRateByFollowers
              engagementRateByViews meanSentiment influenceScore authenticityScore inputs
              breakdown { name value weight contribution raw }
              growth7d { absolute relative } growth30d { absolute } growth90d { absolute } }
    scoreHistory(since: "2020-01-01T00:00:00Z") { computedAt influenceScore }
    authenticity { score reasons { code penalty detail } sizeBand } } } } }"""

SENTIMENT = """query($id: ID, $g: SentimentGranularity!) {
  sentiment(influencerId: $id, since: "2026-10-25T00:00:00Z", until: "2026-11-25T00:00:00Z",
            granularity: $g) {
    posts positive neutral negative meanScore shares { positive neutral negative }
    timeline { start posts positive neutral negative shares { positive } }
    topPositiveKeywords { term meanScore posts } topNegativeKeywords { term meanScore posts }
    languages { language posts share }
    topKeywords { term posts } topHashtags { term posts } } }"""
POSTS = """{ posts(first: 50) { edges { node { externalId language sentiment sentimentScore
    sentimentConfidence keywords analyzedAt topComments { text language sentiment analyzedAt }
    } } } }"""


def rows(handles: list[str], texts: list[str], prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "platform": "instagram",
            "handle": handles[i % len(handles)],
            "external_id": f"{prefix}{i}",
            "text": text,
            "published_at": (START + timedelta(days=i % 5, hours=i)).isoformat(),
            "likes": 100 + 10 * i,
            "comments": 5 + i,
            "views": 2000,
        }
        for i, text in enumerate(texts)
    ]


async def set_followers(schema: str, followers: int) -> None:
    """Followers on the accounts and 100 days of daily snapshots growing by 10 a day."""
    now = datetime.now(UTC)
    async with tenant_tx(schema):
        for acc in await InfluencerAccount.all():
            acc.followers = followers
            await acc.save()
            await FollowerSnapshot.bulk_create(
                [
                    FollowerSnapshot(
                        account_id=acc.id,
                        followers=followers - 10 * d,
                        taken_at=now - timedelta(days=d),
                    )
                    for d in range(100)
                ]
            )


async def sent_messages(actor_name: str) -> list[list[Any]]:
    """The args of every `actor_name` message waiting in this run's Dramatiq queue, which is
    then emptied of them: what a worker would consume."""
    broker = get_broker()
    client = broker.client
    key = f"{broker.namespace}:analytics.msgs"
    found = []
    for message_id, raw in (await asyncio.to_thread(client.hgetall, key)).items():
        message = json.loads(raw)
        if message["actor_name"] == actor_name:
            found.append(message["args"])
            await asyncio.to_thread(client.hdel, key, message_id)
            await asyncio.to_thread(client.lrem, f"{broker.namespace}:analytics", 0, message_id)
    return found


async def analysed(schema: str) -> tuple[int, int, int]:
    async with tenant_tx(schema):
        return (
            await Post.filter(analyzed_at__isnull=False).count(),
            await Post.filter(analyzed_at__isnull=True).count(),
            await InfluencerScore.all().count(),
        )


async def test_pass_from_import_to_graphql_for_one_tenant_only(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    await add_accounts(gql, tenant.token, ["ana", "bia"])
    await add_accounts(gql, other_tenant.token, ["ana"])
    await set_followers(tenant.schema, 10_000)
    await sent_messages("analytics.analyze_posts")  # nothing left over from other tests
    await import_file(gql, tenant.token, "a.jsonl", jsonl(rows(["ana", "bia"], TEXTS, "a")))
    await import_file(gql, other_tenant.token, "b.jsonl", jsonl(rows(["ana"], POSITIVE_EN, "b")))
    await run_jobs()  # the imports finish and each sends analytics.analyze_posts after commit
    async with tenant_tx(tenant.schema):
        post = await Post.get(external_id="a3")
        await Comment.bulk_create(
            [
                Comment(post_id=post.id, platform="instagram", external_id=f"c{i}", text=t)
                for i, t in enumerate(["awful, I hate it", "Que lindo!"])
            ]
        )

    sent = await sent_messages("analytics.analyze_posts")
    assert sorted(sent) == sorted([[tenant.schema], [other_tenant.schema]])
    result = await analyze_tenant(tenant.schema)  # what the actor runs for the first message
    assert (result.posts, result.comments, len(result.influencer_ids)) == (len(TEXTS), 2, 2)
    assert await analysed(tenant.schema) == (len(TEXTS), 0, 2)
    assert await analysed(other_tenant.schema) == (0, len(POSITIVE_EN), 0)  # untouched

    async with tenant_tx(tenant.schema):
        by_id = {p.external_id: p for p in await Post.all()}
        comments = {c.external_id: c for c in await Comment.all()}
    assert [by_id[f"a{i}"].language for i in range(len(TEXTS))] == ["en"] * 5 + ["pt"] * 3
    assert by_id["a0"].sentiment == "positive" and by_id["a3"].sentiment == "negative"
    assert by_id["a5"].sentiment == "positive" and by_id["a7"].sentiment == "negative"
    assert by_id["a0"].keywords and "beach" in by_id["a0"].keywords
    assert by_id["a5"].keywords and "praia" in by_id["a5"].keywords
    assert comments["c0"].sentiment == "negative" and comments["c1"].language == "pt"

    edges = (await gql.ok(INFLUENCERS, token=tenant.token))["influencers"]["edges"]
    assert [e["node"]["displayName"] for e in edges] == ["ana", "bia"]
    ana = edges[0]["node"]
    m = ana["metrics"]
    assert m["formula"] == "influence-v1" and m["followers"] == 10_000 and m["posts"] == 4
    ana_rows = rows(["ana", "bia"], TEXTS, "a")[::2]
    expected = sum(r["likes"] + r["comments"] for r in ana_rows) / 4 / 10_000
    assert m["engagementRateByFollowers"] == pytest.approx(expected)
    assert m["engagementRateByViews"] == pytest.approx(expected * 10_000 / 2000)
    assert m["growth7d"]["absolute"] == 70 and m["growth30d"]["absolute"] == 300
    assert m["growth90d"]["absolute"] == 900
    assert sum(c["contribution"] for c in m["breakdown"]) == pytest.approx(m["influenceScore"])
    assert [c["name"] for c in m["breakdown"]] == [
        "reach",
        "engagement",
        "growth",
        "sentiment",
        "consistency",
    ]
    assert m["inputs"]["posts"] == 4 and m["inputs"]["growth"]["30"]["absolute"] == 300
    assert len(ana["scoreHistory"]) == 1
    assert ana["authenticity"]["score"] == m["authenticityScore"]

    daily = await sentiment(gql, tenant.token, None, "DAY")
    assert daily["posts"] == len(TEXTS)
    assert (daily["positive"], daily["negative"]) == (5, 3)
    assert daily["shares"]["positive"] == pytest.approx(5 / 8)
    assert sum(b["posts"] for b in daily["timeline"]) == len(TEXTS)
    assert [b["start"][:10] for b in daily["timeline"]] == [f"2026-11-0{d}" for d in range(1, 6)]
    assert {lang["language"]: lang["posts"] for lang in daily["languages"]} == {"en": 5, "pt": 3}
    assert daily["topHashtags"] == []  # these texts carry none
    top = daily["topKeywords"]
    assert all(k["posts"] >= 3 for k in top)
    assert [k["posts"] for k in top] == sorted((k["posts"] for k in top), reverse=True)
    # each post shows what the pass stored on it
    posts = [e["node"] for e in (await gql.ok(POSTS, token=tenant.token))["posts"]["edges"]]
    assert len(posts) == len(TEXTS) and all(p["analyzedAt"] for p in posts)
    assert {p["language"] for p in posts} == {"en", "pt"}
    assert all(p["sentiment"] in ("negative", "neutral", "positive") for p in posts)
    assert all(-1 <= p["sentimentScore"] <= 1 and p["keywords"] for p in posts)
    shown = [c for p in posts for c in p["topComments"]]  # comments show theirs too
    assert len(shown) == 2 and all(c["analyzedAt"] for c in shown)
    assert "negative" in {c["sentiment"] for c in shown} and "pt" in {c["language"] for c in shown}
    weekly = await sentiment(gql, tenant.token, ana["id"], "WEEK")
    assert weekly["posts"] == 4  # ana's: a0, a2, a4, a6; weeks start on Monday (ISO)
    assert [b["start"][:10] for b in weekly["timeline"]] == ["2026-10-26", "2026-11-02"]

    # the other tenant: nothing computed, nothing of A's visible
    b_edges = (await gql.ok(INFLUENCERS, token=other_tenant.token))["influencers"]["edges"]
    assert b_edges[0]["node"]["metrics"] is None and b_edges[0]["node"]["scoreHistory"] == []
    assert (await sentiment(gql, other_tenant.token, None, "DAY"))["posts"] == 0
    # ids are per schema: B's own influencer 1 has nothing analysed, and 2 (A's bia) is unknown
    own = await sentiment(gql, other_tenant.token, ana["id"], "DAY")
    assert own["posts"] == 0
    foreign = await gql(
        SENTIMENT, {"id": edges[1]["node"]["id"], "g": "DAY"}, token=other_tenant.token
    )
    assert foreign["data"]["sentiment"] is None

    # incremental: a second pass touches nothing and writes no history
    again = await analyze_tenant(tenant.schema)
    assert (again.posts, again.comments) == (0, 0)
    assert await analysed(tenant.schema) == (len(TEXTS), 0, 2)
    # a new post is analysed alone, and only its influencer's figures are recomputed
    new = rows(["ana"], ["Horrible weather and a terrible awful day"], "n")
    await import_file(gql, tenant.token, "n.jsonl", jsonl(new))
    await run_jobs()
    assert await sent_messages("analytics.analyze_posts") == [[tenant.schema]]
    third = await analyze_tenant(tenant.schema)
    assert (third.posts, len(third.influencer_ids)) == (1, 1)
    assert await analysed(tenant.schema) == (len(TEXTS) + 1, 0, 3)
    edges = (await gql.ok(INFLUENCERS, token=tenant.token))["influencers"]["edges"]
    assert [len(e["node"]["scoreHistory"]) for e in edges] == [2, 1]
    assert edges[0]["node"]["metrics"]["posts"] == 5


async def sentiment(gql: GQL, token: str, influencer: str | None, g: str) -> dict[str, Any]:
    return (await gql.ok(SENTIMENT, {"id": influencer, "g": g}, token=token))["sentiment"]  # type: ignore[no-any-return]


async def test_crons_send_the_pass_and_the_scores_for_every_tenant(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    await add_accounts(gql, tenant.token, ["cron"])
    await sent_messages("analytics.analyze_posts")
    await sent_messages("analytics.compute_scores")
    assert await schedule_analysis({}) >= 2
    assert await schedule_scores({}) >= 2
    passes = await sent_messages("analytics.analyze_posts")
    scores = await sent_messages("analytics.compute_scores")
    assert [tenant.schema] in passes and [other_tenant.schema] in passes
    assert [tenant.schema] in scores and [other_tenant.schema] in scores
    for (schema,) in scores:  # what the worker would run: every influencer, even without posts
        if schema in (tenant.schema, other_tenant.schema):
            await compute_scores(schema)
    edges = (await gql.ok(INFLUENCERS, token=tenant.token))["influencers"]["edges"]
    m = edges[0]["node"]["metrics"]
    assert m["posts"] == 0 and m["engagementRateByFollowers"] is None
    assert edges[0]["node"]["authenticity"] == {"score": 100.0, "reasons": [], "sizeBand": "nano"}


async def test_analytics_needs_the_analytics_scope(gql: GQL, tenant: Tenant) -> None:
    body = await gql("{ sentiment { posts } }", token=tenant.token)
    assert body["data"]["sentiment"]["posts"] == 0  # owner: allowed
    body = await gql("{ sentiment { posts } }")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    bad = await gql(
        '{ sentiment(since: "2026-02-01T00:00:00Z", until: "2026-01-01T00:00:00Z") { posts } }',
        token=tenant.token,
    )
    assert bad["errors"]


async def test_score_updated_reaches_subscribers_of_the_tenant_only(
    server: Server, gql: GQL, tenant: Tenant, other_tenant: Tenant, redis: Redis
) -> None:
    await add_accounts(gql, tenant.token, ["sub1", "sub2"])
    await add_accounts(gql, other_tenant.token, ["sub1"])
    ids = [
        e["node"]["id"]
        for e in (await gql.ok(INFLUENCERS, token=tenant.token))["influencers"]["edges"]
    ]
    query = """subscription($id: ID) { scoreUpdated(influencerId: $id) {
        influenceScore computedAt breakdown { name } influencer { displayName } } }"""
    subs = []
    for token, variables in (
        (tenant.token, {}),
        (tenant.token, {"id": ids[1]}),
        (other_tenant.token, {}),
    ):
        ws = await connect(server, token)
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables},
                }
            )
        )
        subs.append(ws)
    # two subscriptions of A (two groups, one channel: Redis sees one), one of B
    await listening(server, redis, tenant, events.SCORE_UPDATED, count=2)
    await listening(server, redis, other_tenant, events.SCORE_UPDATED)
    assert await compute_scores(tenant.schema) == 2
    got = []
    for _ in range(2):
        msg = json.loads(await asyncio.wait_for(subs[0].recv(), 10))
        assert msg["type"] == "next", msg
        got.append(msg["payload"]["data"]["scoreUpdated"]["influencer"]["displayName"])
    assert sorted(got) == ["sub1", "sub2"]
    one = json.loads(await asyncio.wait_for(subs[1].recv(), 10))
    assert one["payload"]["data"]["scoreUpdated"]["influencer"]["displayName"] == "sub2"
    assert len(one["payload"]["data"]["scoreUpdated"]["breakdown"]) == 5
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(subs[2].recv(), 1.0)  # B hears nothing of A's scores
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(subs[1].recv(), 0.5)  # the filter let only sub2 through
    for ws in subs:
        await ws.close()


async def test_a_killed_pass_loses_only_its_open_batch_and_passes_share_the_work(
    gql: GQL, tenant: Tenant
) -> None:
    from domain.analytics.service import analytics

    await add_accounts(gql, tenant.token, ["kill"])
    texts = [f"{t} ({i})" for i, t in enumerate(TEXTS + POSITIVE_EN + NEGATIVE_EN)]
    await import_file(gql, tenant.token, "k.jsonl", jsonl(rows(["kill"], texts, "k")))
    await run_jobs()
    await sent_messages("analytics.analyze_posts")
    n = len(texts)
    with pytest.raises(RuntimeError):  # the worker dies after analysing, before COMMIT
        async with tenant_tx(tenant.schema):
            assert (await analytics.analyze_batch("post", 5)).posts == 5
            raise RuntimeError("killed")
    assert await analysed(tenant.schema) == (0, n, 0)
    async with tenant_tx(tenant.schema):  # one batch commits, then the pass stops
        await analytics.analyze_batch("post", 4)
    assert await analysed(tenant.schema) == (4, n - 4, 0)
    # two passes at once take disjoint rows (FOR UPDATE SKIP LOCKED) and finish the rest
    one, two = await asyncio.gather(
        analyze_tenant(tenant.schema, batch=2, scores=False),
        analyze_tenant(tenant.schema, batch=2, scores=False),
    )
    assert one.posts + two.posts == n - 4
    assert await analysed(tenant.schema) == (n, 0, 0)
    async with tenant_tx(tenant.schema) as tx:  # the pass's read is served by partial indexes
        _, found = await tx.conn.execute_query(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1"
            " AND indexname LIKE '%unanalyzed_idx' ORDER BY indexname",
            [tenant.schema],
        )
    assert [r["indexname"] for r in found] == ["comment_unanalyzed_idx", "post_unanalyzed_idx"]
    assert all("WHERE (analyzed_at IS NULL)" in r["indexdef"] for r in found)
