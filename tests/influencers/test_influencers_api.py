"""Influencers over GraphQL: CRUD, pagination, filters, sorting and typed errors."""

from __future__ import annotations

from typing import Any

from tests.conftest import GQL, Tenant, set_plan

ADD = """mutation($i: AddInfluencerInput!) { addInfluencer(input: $i) { __typename
    ... on AddInfluencerSuccess { influencer { id displayName totalFollowers
        accounts { platform handle followers verified } } }
    ... on ValidationFailed { code fields { field message } } } }"""
LIST = """query($first: Int, $after: String, $filter: InfluencerFilter, $sort: InfluencerSort) {
    influencers(first: $first, after: $after, filter: $filter, sort: $sort) {
        edges { cursor node { id displayName totalFollowers } }
        pageInfo { hasNextPage endCursor } } }"""


async def add(gql: GQL, token: str, name: str, **extra: Any) -> dict[str, Any]:
    data = await gql.ok(ADD, {"i": {"displayName": name, **extra}}, token=token)
    payload = data["addInfluencer"]
    assert payload["__typename"] == "AddInfluencerSuccess", payload
    return payload["influencer"]  # type: ignore[no-any-return]


async def test_add_update_remove(gql: GQL, tenant: Tenant) -> None:
    inf = await add(
        gql,
        tenant.token,
        "Ana",
        category="Travel",
        country="Brazil",
        accounts=[
            {"platform": "INSTAGRAM", "handle": "@Ana.Trips", "followers": 1200, "verified": True},
            {"platform": "TIKTOK", "handle": "anatrips", "followers": 800},
        ],
    )
    assert inf["totalFollowers"] == 2000
    assert inf["accounts"][0]["handle"] == "ana.trips"
    upd = await gql.ok(
        """mutation($i: UpdateInfluencerInput!) { updateInfluencer(input: $i) { __typename
            ... on UpdateInfluencerSuccess { influencer { displayName notes country } } } }""",
        {"i": {"id": inf["id"], "displayName": "Ana B.", "notes": "met at a fair"}},
        token=tenant.token,
    )
    assert upd["updateInfluencer"]["influencer"] == {
        "displayName": "Ana B.",
        "notes": "met at a fair",
        "country": "Brazil",
    }
    node = await gql.ok(
        "query($id: ID!) { node(id: $id) { ... on Influencer { displayName } } }",
        {"id": inf["id"]},
        token=tenant.token,
    )
    assert node["node"]["displayName"] == "Ana B."
    removed = await gql.ok(
        "mutation($id: ID!) { removeInfluencer(id: $id) { __typename "
        "... on RemoveInfluencerSuccess { removedId } } }",
        {"id": inf["id"]},
        token=tenant.token,
    )
    assert removed["removeInfluencer"]["removedId"] == inf["id"]
    again = await gql.ok(
        "mutation($id: ID!) { removeInfluencer(id: $id) { __typename ... on NotFound { code id } } }",
        {"id": inf["id"]},
        token=tenant.token,
    )
    assert again["removeInfluencer"]["__typename"] == "NotFound"
    gone = await gql.ok(
        "query($id: ID!) { influencer(id: $id) { id } }", {"id": inf["id"]}, token=tenant.token
    )
    assert gone["influencer"] is None


async def test_bad_input_is_typed_and_changes_nothing(gql: GQL, tenant: Tenant) -> None:
    await add(gql, tenant.token, "Taken", accounts=[{"platform": "X", "handle": "taken"}])
    data = await gql.ok(
        ADD,
        {
            "i": {
                "displayName": "  ",
                "accounts": [
                    {"platform": "X", "handle": "bad handle!"},
                    {"platform": "X", "handle": "ok_one", "followers": -5},
                ],
            }
        },
        token=tenant.token,
    )
    payload = data["addInfluencer"]
    assert payload["__typename"] == "ValidationFailed"
    fields = {f["field"] for f in payload["fields"]}
    assert fields == {"displayName", "accounts[0].handle", "accounts[1].followers"}
    dup = await gql.ok(
        ADD,
        {"i": {"displayName": "Dup", "accounts": [{"platform": "X", "handle": "TAKEN"}]}},
        token=tenant.token,
    )
    assert dup["addInfluencer"]["__typename"] == "ValidationFailed"
    listing = await gql.ok(LIST, {"first": 100}, token=tenant.token)
    assert [e["node"]["displayName"] for e in listing["influencers"]["edges"]] == ["Taken"]
    wrong_type = await gql.ok(
        """mutation($i: UpdateInfluencerInput!) { updateInfluencer(input: $i) { __typename
            ... on ValidationFailed { fields { field message } } } }""",
        {"i": {"id": "UG9zdDox", "displayName": "x"}},  # a Post id
        token=tenant.token,
    )
    assert wrong_type["updateInfluencer"]["__typename"] == "ValidationFailed"


async def test_pagination_walks_every_row_once(gql: GQL, tenant: Tenant) -> None:
    await set_plan(tenant.slug, "starter")  # 7 influencers: more than Free's 5
    for i in range(7):
        await add(
            gql,
            tenant.token,
            f"P{i}",
            accounts=[{"platform": "YOUTUBE", "handle": f"p{i}", "followers": (i % 3) * 100}],
        )
    for sort in [
        "CREATED_DESC",
        "CREATED_ASC",
        "FOLLOWERS_DESC",
        "FOLLOWERS_ASC",
        "NAME_ASC",
        "NAME_DESC",
    ]:
        seen: list[str] = []
        after = None
        while True:
            data = await gql.ok(
                LIST, {"first": 3, "after": after, "sort": sort}, token=tenant.token
            )
            conn = data["influencers"]
            seen += [e["node"]["displayName"] for e in conn["edges"]]
            if not conn["pageInfo"]["hasNextPage"]:
                break
            after = conn["pageInfo"]["endCursor"]
        assert sorted(seen) == [f"P{i}" for i in range(7)], sort
        assert len(seen) == 7
    followers_desc = await gql.ok(LIST, {"first": 7, "sort": "FOLLOWERS_DESC"}, token=tenant.token)
    values = [e["node"]["totalFollowers"] for e in followers_desc["influencers"]["edges"]]
    assert values == sorted(values, reverse=True)


async def test_filters(gql: GQL, tenant: Tenant) -> None:
    await add(
        gql,
        tenant.token,
        "Big BR",
        country="Brazil",
        category="Music",
        accounts=[
            {"platform": "INSTAGRAM", "handle": "bigbr", "followers": 5_000_000, "verified": True}
        ],
    )
    await add(
        gql,
        tenant.token,
        "Small US",
        country="United States",
        category="Food",
        accounts=[{"platform": "TIKTOK", "handle": "smallus", "followers": 900}],
    )

    async def names(flt: dict[str, Any]) -> list[str]:
        data = await gql.ok(LIST, {"filter": flt}, token=tenant.token)
        return sorted(e["node"]["displayName"] for e in data["influencers"]["edges"])

    assert await names({"platform": "INSTAGRAM"}) == ["Big BR"]
    assert await names({"minFollowers": 1000}) == ["Big BR"]
    assert await names({"maxFollowers": 1000}) == ["Small US"]
    assert await names({"verified": True}) == ["Big BR"]
    assert await names({"country": "brazil"}) == ["Big BR"]
    assert await names({"category": "Food"}) == ["Small US"]
    assert await names({"search": "small"}) == ["Small US"]
    assert await names({"search": "bigb"}) == ["Big BR"]  # matches the handle


async def test_bad_cursor_and_oversized_page_are_typed_errors(gql: GQL, tenant: Tenant) -> None:
    for variables, field in [
        ({"first": 1000}, "first"),
        ({"first": -1}, "first"),
        ({"after": "garbage"}, "after"),
        ({"after": "WyJuYW1lIiwiQSIsMV0", "sort": "CREATED_DESC"}, "after"),  # a NAME cursor
    ]:
        body = await gql(LIST, variables, token=tenant.token)
        error = body["errors"][0]
        assert error["extensions"]["code"] == "VALIDATION_FAILED", body
        assert error["extensions"]["fields"][0]["field"] == field
        assert body["data"] is None
