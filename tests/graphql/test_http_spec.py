"""GraphQL-over-HTTP (https://graphql.github.io/graphql-over-http/draft/): media types, status
codes per media type, Content-Type, Accept, GET."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from tests.conftest import GQL, Tenant

GRJ = "application/graphql-response+json"


async def post(
    gql: GQL,
    body: object,
    *,
    accept: str | None = GRJ,
    content_type: str | None = "application/json",
    token: str | None = None,
) -> httpx.Response:
    headers: dict[str, str] = {}
    if content_type is not None:
        headers["content-type"] = content_type
    if token:
        headers["authorization"] = f"Bearer {token}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = gql.http.build_request("POST", "/graphql", content=raw, headers=headers)
    if accept is None:
        del request.headers["accept"]
    else:
        request.headers["accept"] = accept
    return await gql.http.send(request)


def media(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def code(response: httpx.Response) -> Any:
    return response.json()["errors"][0]["extensions"]["code"]


async def test_graphql_response_json_when_accepted_and_json_by_default(
    gql: GQL, tenant: Tenant
) -> None:
    for accept in (GRJ, f"{GRJ}, application/json", f"*/*, {GRJ}", f"{GRJ};q=0.9, */*;q=0.8"):
        response = await post(gql, {"query": "{ __typename }"}, accept=accept)
        assert response.status_code == 200, accept
        assert media(response) == GRJ, accept
        assert response.json() == {
            "data": {"__typename": "Query"},
            "extensions": response.json()["extensions"],
        }
    # No Accept, or a wildcard: application/json (graphql-http audit, SHOULDs 47DE and 80D8)
    for accept in (
        None,
        "*/*",
        "application/*",
        "application/json",
        f"application/json, {GRJ};q=0.5",
    ):
        response = await post(gql, {"query": "{ __typename }"}, accept=accept)
        assert response.status_code == 200, accept
        assert media(response) == "application/json", accept
        assert response.json()["data"] == {"__typename": "Query"}


async def test_without_accept_request_errors_are_200_json(gql: GQL, tenant: Tenant) -> None:
    # application/json semantics: a GraphQL request error is a 200, with its code
    for accept in (None, "*/*"):
        response = await post(gql, {"query": "{ nope }"}, accept=accept, token=tenant.token)
        assert response.status_code == 200, (accept, response.text)
        assert media(response) == "application/json"
        assert code(response) == "GRAPHQL_VALIDATION_FAILED"
        assert "data" not in response.json()


async def test_request_errors_are_400_with_graphql_response_json_and_200_with_json(
    gql: GQL, tenant: Tenant
) -> None:
    cases = {
        "parse": {"query": "{"},
        "validation": {"query": "{ nope }"},
        "unknown operation": {"query": "query A { __typename }", "operationName": "B"},
        "variables": {
            "query": "query($n: Int!) { influencers(first: $n) { edges { cursor } } }",
            "variables": {"n": "many"},
        },
    }
    codes = {
        "parse": "GRAPHQL_PARSE_FAILED",
        "validation": "GRAPHQL_VALIDATION_FAILED",
        "unknown operation": "OPERATION_RESOLUTION_FAILURE",
        "variables": "BAD_USER_INPUT",
    }
    for name, body in cases.items():
        strict = await post(gql, body, token=tenant.token)
        assert strict.status_code == 400, (name, strict.text)
        assert media(strict) == GRJ
        assert "data" not in strict.json() and strict.json()["errors"], name
        assert code(strict) == codes[name], strict.text
        legacy = await post(gql, body, accept="application/json", token=tenant.token)
        assert legacy.status_code == 200, (name, legacy.text)
        assert media(legacy) == "application/json"
        assert "data" not in legacy.json() and legacy.json()["errors"], name


async def test_field_errors_are_200_with_data(gql: GQL, tenant: Tenant) -> None:
    # a Relay id of another type: the resolver fails, the response still has data
    # (a value that is no global id at all is refused before execution: test_hostile_input)
    influencer_id = base64.b64encode(b"Influencer:1").decode()
    response = await post(
        gql,
        {"query": f'{{ collectionTask(id: "{influencer_id}") {{ id }} }}'},
        token=tenant.token,
    )
    body = response.json()
    assert response.status_code == 200, body
    assert "data" in body and body.get("errors"), body


async def test_unsupported_content_type_is_415(gql: GQL) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        response = await post(gql, {"query": "{ __typename }"}, content_type=content_type)
        assert response.status_code == 415, content_type
        assert code(response) == "UNSUPPORTED_MEDIA_TYPE"
    # case does not matter, and a charset is fine
    response = await post(gql, {"query": "{ __typename }"}, content_type="Application/JSON")
    assert response.status_code == 200, response.text
    response = await post(
        gql, {"query": "{ __typename }"}, content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 200


async def test_not_well_formed_requests_are_400(gql: GQL) -> None:
    for accept in (GRJ, "application/json"):
        for body in (
            {},
            {"query": None},
            {"qeury": "{ __typename }"},
            {"query": 7},
            {"query": "{ __typename }", "variables": [7]},
            b"NONSENSE",
            b'{"query":',
        ):
            response = await post(gql, body, accept=accept)
            assert response.status_code == 400, (accept, body, response.text)
            assert code(response) == "BAD_REQUEST"


async def test_unacceptable_accept_is_406(gql: GQL) -> None:
    response = await post(gql, {"query": "{ __typename }"}, accept="text/plain")
    assert response.status_code == 406
    assert code(response) == "NOT_ACCEPTABLE"


async def test_get_runs_queries(gql: GQL, tenant: Tenant) -> None:
    response = await gql.http.get(
        "/graphql",
        params={
            "query": "query($n: Int) { influencers(first: $n) { edges { cursor } } }",
            "variables": json.dumps({"n": 2}),
        },
        headers={"authorization": f"Bearer {tenant.token}", "accept": GRJ},
    )
    assert response.status_code == 200, response.text
    assert media(response) == GRJ
    assert response.json()["data"] == {"influencers": {"edges": []}}
