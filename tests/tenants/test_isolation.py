"""Two tenants never see, change or receive each other's data: queries, node lookups,
mutations and jobs. (Subscriptions: tests/graphql/test_subscriptions.py.)

Row ids come from per-schema sequences, so tenant A's influencer #1 and tenant B's influencer #1
share a global id; every lookup must resolve it in the caller's schema only."""

from __future__ import annotations

from typing import Any

from tests.collection.test_import import TASK, add_accounts, jsonl, rows_for, snapshot
from tests.conftest import GQL, Tenant, import_file, run_jobs
from tests.influencers.test_influencers_api import add

INFLUENCER = """query($id: ID!) { influencer(id: $id) { id displayName notes } }"""
NODE = """query($id: ID!) { node(id: $id) { id ... on Influencer { displayName } } }"""
UPDATE = """mutation($i: UpdateInfluencerInput!) { updateInfluencer(input: $i) { __typename
    ... on NotFound { code } } }"""
REMOVE = (
    """mutation($id: ID!) { removeInfluencer(id: $id) { __typename ... on NotFound { code } } }"""
)
NAMES = "{ influencers(first: 100) { edges { node { displayName } } } }"
POSTS = "{ posts(first: 100) { edges { node { externalId } } } }"


async def names(gql: GQL, token: str) -> list[str]:
    data = await gql.ok(NAMES, token=token)
    return sorted(e["node"]["displayName"] for e in data["influencers"]["edges"])


async def test_other_tenants_rows_are_invisible_and_unchangeable(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    a1 = await add(gql, tenant.token, "A one", notes="secret of A")
    await add(gql, tenant.token, "A two")
    a3 = await add(gql, tenant.token, "A three")
    await add(gql, other_tenant.token, "B one")  # B's row #1 shares A's first global id
    before = await names(gql, tenant.token)

    # Reads: A's third row does not exist in B; A's first id resolves to B's own row.
    assert (await gql.ok(INFLUENCER, {"id": a3["id"]}, token=other_tenant.token)) == {
        "influencer": None
    }
    assert (await gql.ok(NODE, {"id": a3["id"]}, token=other_tenant.token)) == {"node": None}
    same_id = await gql.ok(INFLUENCER, {"id": a1["id"]}, token=other_tenant.token)
    assert same_id["influencer"]["displayName"] == "B one"
    assert same_id["influencer"]["notes"] != "secret of A"
    assert await names(gql, other_tenant.token) == ["B one"]

    # Writes: B cannot update or remove A's rows; A's data is untouched.
    upd = await gql.ok(
        UPDATE, {"i": {"id": a3["id"], "displayName": "hijacked"}}, token=other_tenant.token
    )
    assert upd["updateInfluencer"] == {"__typename": "NotFound", "code": "NOT_FOUND"}
    rem = await gql.ok(REMOVE, {"id": a3["id"]}, token=other_tenant.token)
    assert rem["removeInfluencer"] == {"__typename": "NotFound", "code": "NOT_FOUND"}
    assert await names(gql, tenant.token) == before
    mine = await gql.ok(INFLUENCER, {"id": a1["id"]}, token=tenant.token)
    assert mine["influencer"]["notes"] == "secret of A"


async def test_jobs_write_only_their_own_tenant(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    handles = ["ivy", "joe"]
    await add_accounts(gql, tenant.token, handles)
    await add_accounts(gql, other_tenant.token, handles)
    a_rows: list[dict[str, Any]] = rows_for(handles, 25, prefix="a")
    b_rows: list[dict[str, Any]] = rows_for(handles, 7, prefix="b")
    # Both tasks are #1 in their schemas, so their jobs differ only by tenant.
    a_task = (await import_file(gql, tenant.token, "a.jsonl", jsonl(a_rows)))["task"]
    b_task = (await import_file(gql, other_tenant.token, "b.jsonl", jsonl(b_rows)))["task"]
    await run_jobs()

    a_posts = await gql.ok(POSTS, token=tenant.token)
    b_posts = await gql.ok(POSTS, token=other_tenant.token)
    assert {e["node"]["externalId"] for e in a_posts["posts"]["edges"]} == {
        r["external_id"] for r in a_rows
    }
    assert {e["node"]["externalId"] for e in b_posts["posts"]["edges"]} == {
        r["external_id"] for r in b_rows
    }
    assert len(await snapshot(tenant.schema)) == 25
    assert len(await snapshot(other_tenant.schema)) == 7

    # Each tenant sees its own task under the id, with its own counts.
    a_seen = (await gql.ok(TASK, {"id": a_task["id"]}, token=tenant.token))["collectionTask"]
    b_seen = (await gql.ok(TASK, {"id": b_task["id"]}, token=other_tenant.token))["collectionTask"]
    assert (a_seen["created"], b_seen["created"]) == (25, 7)
