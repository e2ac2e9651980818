"""Abuse limits: each refuses a crafted query with its typed error and the server answers the
next request; the cost is in `extensions.cost`; per-plan ceilings; production hides
introspection, suggestions and GraphiQL (a second app instance, the shared server untouched)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import GQL, Tenant

PAGE = "{ influencers(first: 50) { edges { node { id } } } }"  # 1 + 50 x (edges 1 x (1 + node 1))


def codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


async def still_up(gql: GQL, tenant: Tenant) -> None:
    data = await gql.ok("{ viewer { tenant { slug } } }", token=tenant.token)
    assert data["viewer"]["tenant"]["slug"] == tenant.slug


# Object levels as Strawberry's QueryDepthLimiter counts them (fields with a selection set).
DEPTH_10 = (
    "{ posts(first: 1) { edges { node { account { influencer { accounts { influencer"
    " { accounts { influencer { accounts { id } } } } } } } } } } }"
)
DEPTH_11 = DEPTH_10.replace("accounts { id }", "accounts { influencer { id } }")


CRAFTED = {
    "QUERY_TOO_DEEP": DEPTH_11,
    "TOO_MANY_ALIASES": "{ " + " ".join(f"a{i}: __typename" for i in range(16)) + " }",
    "TOO_MANY_TOKENS": "{ " + " ".join(["__typename"] * 2500) + " }",
    "TOO_MANY_DIRECTIVES": "{ " + " ".join(["__typename @include(if: true)"] * 26) + " }",
    "QUERY_TOO_COSTLY": "{ influencers(first: 100) { edges { node { accounts {"
    " recentPosts(limit: 50) { id } } } } } }",
}


@pytest.mark.parametrize("code", sorted(CRAFTED))
async def test_each_limit_refuses_with_its_code_and_the_server_stays_up(
    gql: GQL, tenant: Tenant, code: str
) -> None:
    response = await gql.raw(
        CRAFTED[code], token=tenant.token, headers={"accept": "application/graphql-response+json"}
    )
    body = response.json()
    assert codes(body) == [code], body
    assert "data" not in body  # refused before execution
    assert response.status_code == 400  # a request error, with application/graphql-response+json
    await still_up(gql, tenant)


async def test_limits_hold_with_fragments_spread_in_fragments(gql: GQL, tenant: Tenant) -> None:
    # 10 spreads of F1, each 10 spreads of F2, each 2 aliases: 200 aliases once expanded.
    query = (
        "{ " + "...F1 " * 10 + "} fragment F1 on Query { " + "...F2 " * 10 + "}"
        " fragment F2 on Query { a: __typename b: __typename }"
    )
    body = await gql(query, token=tenant.token)
    assert codes(body) == ["TOO_MANY_ALIASES"], body
    assert "200 aliases" in body["errors"][0]["message"]


async def test_a_query_at_the_depth_limit_runs(gql: GQL, tenant: Tenant) -> None:
    body = await gql(DEPTH_10, token=tenant.token)
    assert "errors" not in body, body


async def test_cost_is_in_the_extensions(gql: GQL, tenant: Tenant) -> None:
    body = await gql(PAGE, token=tenant.token)
    assert "errors" not in body, body
    assert body["extensions"]["cost"] == {"requested": 101, "limit": 5000}
    # variables count: first: $n
    body = await gql(
        "query($n: Int) { influencers(first: $n) { edges { node { id } } } }",
        {"n": 3},
        token=tenant.token,
    )
    assert body["extensions"]["cost"]["requested"] == 7
    # lists with `limit`, nested: 1 + 2 x (1 + 1 + accounts 4 x (1 + recentPosts 4 x 1)),
    # `accounts` priced at its typical length (LIST_SIZE_HINTS), not default_list_size

    body = await gql(
        "{ influencers(first: 2) { edges { node { accounts { recentPosts(limit: 4) { id } } } } } }",
        token=tenant.token,
    )
    assert body["extensions"]["cost"]["requested"] == 1 + 2 * (1 + 1 + 4 * (1 + 4))


async def test_too_costly_reports_the_cost(gql: GQL, tenant: Tenant) -> None:
    body = await gql(
        "query($n: Int) { influencers(first: $n) { edges { node { id } } } }",
        {"n": 5000},
        token=tenant.token,
    )
    assert codes(body) == ["QUERY_TOO_COSTLY"]
    assert body["extensions"]["cost"] == {"requested": 10001, "limit": 5000}
    assert body["errors"][0]["extensions"]["cost"] == body["extensions"]["cost"]


# --- a second app instance with other settings ------------------------------------------------


async def client_for(**changes: Any) -> httpx.AsyncClient:
    from api.app import create_app
    from core.settings import get_settings

    settings = get_settings().model_copy(update=changes)
    # No lifespan: the shared server already opened the database and Redis in this process.
    transport = httpx.ASGITransport(app=create_app(settings))
    return httpx.AsyncClient(transport=transport, base_url="http://app")


@pytest.fixture
async def production(server: Any) -> AsyncIterator[GQL]:
    async with await client_for(env="production") as http:
        yield GQL(http)


async def test_cost_ceiling_per_plan(gql: GQL, tenant: Tenant, other_tenant: Tenant) -> None:
    from core.settings import Limits
    from tenants.models import Tenant as TenantRow
    from tenants.policy import policies

    await TenantRow.filter(slug=tenant.slug).update(plan="tiny")
    policies.invalidate()
    async with await client_for(limits=Limits(plan_max_cost={"tiny": 50})) as http:
        app = GQL(http)
        body = await app(PAGE, token=tenant.token)
        assert codes(body) == ["QUERY_TOO_COSTLY"]
        assert body["extensions"]["cost"] == {"requested": 101, "limit": 50}
        # the other tenant has no such plan: the default ceiling
        body = await app(PAGE, token=other_tenant.token)
        assert "errors" not in body, body
        assert body["extensions"]["cost"] == {"requested": 101, "limit": 5000}


async def test_production_hides_introspection_suggestions_and_graphiql(
    production: GQL, gql: GQL, tenant: Tenant
) -> None:
    body = await production("{ __schema { queryType { name } } }", token=tenant.token)
    assert codes(body)[0] == "INTROSPECTION_DISABLED", body
    body = await production("{ influencrs { edges { node { id } } } }", token=tenant.token)
    assert body["errors"][0]["message"] == "Cannot query field 'influencrs' on type 'Query'."
    body = await production(
        "query($s: InfluencerSort!) { influencers(sort: $s) { edges { node { id } } } }",
        {"s": "NAME_AC"},
        token=tenant.token,
    )
    assert body["errors"] and all("Did you mean" not in e["message"] for e in body["errors"])
    page = await production.http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 404
    # __typename is not introspection
    assert (await production.ok("{ __typename }"))["__typename"] == "Query"

    # the development server (the shared one) shows all three
    data = await gql.ok("{ __schema { queryType { name } } }", token=tenant.token)
    assert data["__schema"]["queryType"]["name"] == "Query"
    body = await gql("{ influencrs { edges { node { id } } } }", token=tenant.token)
    assert "Did you mean 'influencers'" in body["errors"][0]["message"]
    page = await gql.http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "<html" in page.text.lower()


async def test_batches_run_up_to_the_cap(gql: GQL, tenant: Tenant) -> None:
    auth = {"Authorization": f"Bearer {tenant.token}"}
    ops = [{"query": "{ viewer { role } }"}, {"query": "{ __typename }"}]
    response = await gql.http.post("/graphql", json=ops, headers=auth)
    assert response.status_code == 200
    assert [r["data"] for r in response.json()] == [
        {"viewer": {"role": "owner"}},
        {"__typename": "Query"},
    ]
    response = await gql.http.post("/graphql", json=[{"query": "{ __typename }"}] * 11)
    assert response.status_code == 400
    assert codes(response.json()) == ["BATCH_TOO_LARGE"]
    await still_up(gql, tenant)


async def test_mutations_are_refused_over_get(gql: GQL, tenant: Tenant) -> None:
    response = await gql.http.get(
        "/graphql",
        params={"query": 'mutation { removeInfluencer(id: "x") { __typename } }'},
        headers={"Authorization": f"Bearer {tenant.token}"},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert codes(response.json()) == ["METHOD_NOT_ALLOWED"]
    await still_up(gql, tenant)


async def test_a_batch_shares_the_cost_ceiling(gql: GQL, tenant: Tenant) -> None:
    from core.settings import Limits

    auth = {"Authorization": f"Bearer {tenant.token}"}
    async with await client_for(limits=Limits(max_cost=150)) as http:
        one = await http.post("/graphql", json=[{"query": PAGE}], headers=auth)
        assert one.json()[0]["extensions"]["cost"] == {
            "requested": 101,
            "limit": 150,
            "batchTotal": 101,
        }
        two = (await http.post("/graphql", json=[{"query": PAGE}] * 2, headers=auth)).json()
        refused = [r for r in two if "errors" in r]
        assert len(refused) == 1, two  # 101 + 101 > 150: the second one to validate
        assert codes(refused[0]) == ["QUERY_TOO_COSTLY"]
        assert refused[0]["extensions"]["cost"]["batchTotal"] == 202
        # a single request is not affected by earlier batches
        single = (await http.post("/graphql", json={"query": PAGE}, headers=auth)).json()
        assert single["extensions"]["cost"] == {"requested": 101, "limit": 150}
