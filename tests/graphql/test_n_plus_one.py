"""No N+1: a nested query costs the same number of SQL statements whatever the page size."""

from __future__ import annotations

from typing import Any

import pytest

from api.graphql.compiled import CompiledQueries
from tenants.tx import tenant_tx
from tests.conftest import GQL, Tenant
from tests.sqlcount import app_statements, count_statements

NESTED = """query($first: Int!) { influencers(first: $first) { edges { node {
    displayName accounts { handle recentPosts(limit: 10) { externalId commentsCount } } } } } }"""

INFLUENCERS, ACCOUNTS, POSTS = 50, 3, 10


async def seed(schema: str, tag: str) -> None:
    """50 influencers x 3 accounts x 10 posts, post n having n % 4 comments (0-3)."""
    async with tenant_tx(schema) as tx:
        await tx.conn.execute_script(
            f"""
            INSERT INTO influencer (display_name, notes, total_followers, created_at, updated_at)
            SELECT '{tag} ' || lpad(i::text, 2, '0'), '', 0, now(), now()
            FROM generate_series(1, {INFLUENCERS}) i;
            INSERT INTO influencer_account
                (influencer_id, platform, handle, followers, verified, created_at, updated_at)
            SELECT inf.id, p.platform, '{tag}_' || inf.id || '_' || p.platform, 10, false,
                   now(), now()
            FROM influencer inf
            CROSS JOIN unnest(ARRAY['instagram', 'youtube', 'tiktok']) AS p(platform);
            INSERT INTO post (account_id, influencer_id, platform, external_id, url, text,
                              hashtags, mentions, published_at, likes, comments, shares, views,
                              raw_json, collected_at)
            SELECT a.id, a.influencer_id, a.platform, '{tag}-' || a.id || '-' || n, '', '',
                   '{{}}', '{{}}', now() - n * interval '1 hour', 0, 0, 0, 0, '{{}}', now()
            FROM influencer_account a CROSS JOIN generate_series(1, {POSTS}) n;
            INSERT INTO comment (post_id, platform, external_id, author, text, likes)
            SELECT p.id, p.platform, p.external_id || '-c' || k, 'someone', 'nice', k
            FROM post p CROSS JOIN generate_series(1, 3) k
            WHERE k <= split_part(p.external_id, '-', 3)::int % 4;
            """
        )


@pytest.fixture
def resolvers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run queries through the resolvers and dataloaders, not the compiled SQL path."""
    monkeypatch.setattr(CompiledQueries, "compiled", False)


async def nested(gql: GQL, token: str, first: int) -> tuple[list[dict[str, Any]], list[str]]:
    # The tenant's plan and allow-list switch are read once per process per 10 s (limits'
    # policy cache): warm it, so that only the query's own statements are counted.
    await gql.ok("{ __typename }", token=token)
    async with count_statements() as sent:
        data = await gql.ok(NESTED, {"first": first}, token=token)
    return data["influencers"]["edges"], app_statements(sent)


async def test_nested_query_runs_a_constant_number_of_statements(
    gql: GQL, tenant: Tenant, other_tenant: Tenant, resolvers: None
) -> None:
    await seed(tenant.schema, "a")
    await seed(other_tenant.schema, "b")
    small, small_sql = await nested(gql, tenant.token, 5)
    large, large_sql = await nested(gql, tenant.token, 50)

    assert len(small) == 5 and len(large) == INFLUENCERS
    posts = [p for e in large for a in e["node"]["accounts"] for p in a["recentPosts"]]
    assert len(posts) == INFLUENCERS * ACCOUNTS * POSTS
    for p in posts:  # post n of an account has n % 4 stored comments
        assert p["commentsCount"] == int(p["externalId"].rsplit("-", 1)[1]) % 4, p
    # One statement per level (influencers, accounts, posts, comment counts), whatever the
    # page size; each in a short transaction of its own (a query holds no transaction while
    # GraphQL completes the result): BEGIN, SET LOCAL search_path, SELECT, COMMIT.
    selects = [q for q in large_sql if q.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(selects) == 4, large_sql
    assert len(small_sql) == len(large_sql), (small_sql, large_sql)
    assert len(large_sql) <= 16, large_sql
    kinds = [q.split()[0].upper().rstrip(";") for q in large_sql]
    assert kinds == ["BEGIN", "SET", "SELECT", "COMMIT"] * 4, kinds


@pytest.mark.parametrize("compiled", [False, True], ids=["resolvers", "compiled"])
async def test_nested_query_sees_only_the_callers_tenant(
    gql: GQL,
    tenant: Tenant,
    other_tenant: Tenant,
    compiled: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(CompiledQueries, "compiled", compiled)
    await seed(tenant.schema, "a")
    await seed(other_tenant.schema, "b")
    for t, tag in ((tenant, "a"), (other_tenant, "b")):
        edges, sql = await nested(gql, t.token, 50)
        assert len(sql) == (4 if compiled else 16), sql
        assert {e["node"]["displayName"].split()[0] for e in edges} == {tag}
        handles = {a["handle"] for e in edges for a in e["node"]["accounts"]}
        assert handles and all(h.startswith(f"{tag}_") for h in handles)
        ids = {
            p["externalId"] for e in edges for a in e["node"]["accounts"] for p in a["recentPosts"]
        }
        assert ids and all(i.startswith(f"{tag}-") for i in ids)


async def test_compiled_query_is_one_statement_with_the_resolvers_answer(
    gql: GQL, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(tenant.schema, "a")
    for first in (0, 5, 50):
        monkeypatch.setattr(CompiledQueries, "compiled", False)
        expected, _ = await nested(gql, tenant.token, first)
        monkeypatch.setattr(CompiledQueries, "compiled", True)
        got, sql = await nested(gql, tenant.token, first)
        assert got == expected
        kinds = [q.split()[0].upper().rstrip(";") for q in sql]
        assert kinds == ["BEGIN", "SET", "SELECT", "COMMIT"], sql


COMPILABLE = [
    # every supported field, aliases, __typename, cursors, literal and defaulted arguments
    """{ list: influencers(first: 7) { __typename edges { __typename cursor node { __typename
        id displayName category country notes totalFollowers
        accounts { __typename id platform handle externalId followers verified profileUrl
          recentPosts(limit: 2) { __typename id platform externalId url text likes comments
            shares views commentsCount }
          latest: recentPosts { id } } } } } }""",
    """query($n: Int = 3, $l: Int!) { influencers(first: $n) { edges { node {
        accounts { recentPosts(limit: $l) { commentsCount } } } } } }""",
    "{ influencers { edges { cursor } } }",
    """{ influencers(first: 4) { __typename pageInfo { __typename hasNextPage hasPreviousPage
        startCursor endCursor } edges { cursor } } }""",
    "{ influencers(first: 0) { pageInfo { hasNextPage startCursor endCursor } edges { cursor } } }",
    "{ influencers(first: 100) { p: pageInfo { hasNextPage endCursor } } }",
]
NOT_COMPILABLE = [
    '{ influencers(first: 3, after: "x") { edges { node { id } } } }',
    "{ influencers(first: 3, sort: NAME_ASC) { edges { node { id } } } }",
    "{ influencers(first: 3) { edges { node { id createdAt } } } }",
    "{ influencers(first: 3) { edges { node { ...F } } } } fragment F on Influencer { id }",
    "{ influencers(first: 3) { edges { node { id @include(if: true) } } } }",
    "{ influencers(first: 101) { edges { node { id } } } }",  # the resolver's error
]


@pytest.mark.parametrize("query", COMPILABLE + NOT_COMPILABLE)
async def test_compiled_and_resolved_answers_are_the_same(
    gql: GQL, tenant: Tenant, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(tenant.schema, "a")
    variables = {"l": 4}
    monkeypatch.setattr(CompiledQueries, "compiled", False)
    expected = await gql(query, variables, token=tenant.token)
    monkeypatch.setattr(CompiledQueries, "compiled", True)
    async with count_statements() as sent:
        got = await gql(query, variables, token=tenant.token)
    assert got == expected
    statements = app_statements(sent)
    compiled = len(statements) == 4 and "json_build_object" in statements[2]
    assert compiled == (query in COMPILABLE), statements


async def test_compiled_page_of_an_empty_tenant(
    gql: GQL, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = """{ influencers(first: 10) { pageInfo { hasNextPage hasPreviousPage startCursor
        endCursor } edges { cursor node { id accounts { id } } } } }"""
    monkeypatch.setattr(CompiledQueries, "compiled", False)
    expected = await gql.ok(query, token=tenant.token)
    monkeypatch.setattr(CompiledQueries, "compiled", True)
    assert await gql.ok(query, token=tenant.token) == expected
    assert expected["influencers"]["edges"] == []
    assert expected["influencers"]["pageInfo"]["endCursor"] is None


ANALYTICS = """query($first: Int!) { influencers(first: $first) { edges { node {
    displayName metrics { influenceScore breakdown { name } }
    scoreHistory { influenceScore } authenticity { score reasons { code } } } } } }"""


async def test_analytics_fields_are_batched(gql: GQL, tenant: Tenant, resolvers: None) -> None:
    from jobs.analytics import compute_scores

    await seed(tenant.schema, "s")
    await compute_scores(tenant.schema)
    await gql.ok("{ __typename }", token=tenant.token)
    async with count_statements() as sent:
        data = await gql.ok(ANALYTICS, {"first": 50}, token=tenant.token)
    edges = data["influencers"]["edges"]
    assert len(edges) == INFLUENCERS
    assert all(len(e["node"]["scoreHistory"]) == 1 for e in edges)
    assert all(e["node"]["metrics"]["influenceScore"] >= 0 for e in edges)
    # influencers, latest scores (metrics and authenticity share one loader), score history
    selects = [q for q in app_statements(sent) if q.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(selects) == 3, selects
