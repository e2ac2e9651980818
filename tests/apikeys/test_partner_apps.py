"""Partner apps: OAuth 2.0 client credentials (RFC 6749 §4.4) at POST /oauth/token; the token
resolves to the app's tenant and granted scopes only, and dies with the app."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from tests.apikeys.test_api_keys import NAMES, names
from tests.conftest import GQL, Tenant, set_plan
from tests.influencers.test_influencers_api import ADD, add

CREATE = """mutation($i: CreatePartnerAppInput!) { createPartnerApp(input: $i) { __typename
    ... on CreatePartnerAppSuccess { clientSecret partnerApp { id clientId name scopes revoked } }
    ... on ValidationFailed { fields { field message } }
    ... on PlanLimitReached { limit } } }"""
LIST = "{ partnerApps { id clientId name scopes lastUsedAt revoked } }"
REVOKE = """mutation($id: ID!) { revokePartnerApp(id: $id) { __typename
    ... on RevokePartnerAppSuccess { partnerApp { revoked } } ... on NotFound { code } } }"""
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def create_app(gql: GQL, token: str, scopes: list[str]) -> dict[str, Any]:
    data = await gql.ok(CREATE, {"i": {"name": "crm", "scopes": scopes}}, token=token)
    payload = data["createPartnerApp"]
    assert payload["__typename"] == "CreatePartnerAppSuccess", payload
    return payload  # type: ignore[no-any-return]


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def token(
    http: httpx.AsyncClient, data: dict[str, str], headers: dict[str, str] | None = None
) -> httpx.Response:
    return await http.post("/oauth/token", data=data, headers={**FORM, **(headers or {})})


async def test_client_credentials_flow(gql: GQL, tenant: Tenant) -> None:
    await set_plan(tenant.slug, "pro")
    app = await create_app(
        gql, tenant.token, ["influencers:read", "influencers:write", "posts:read"]
    )
    client_id, secret = app["partnerApp"]["clientId"], app["clientSecret"]
    assert secret not in str(await gql.ok(LIST, token=tenant.token))

    # HTTP Basic, narrower scope
    good = await token(
        gql.http,
        {"grant_type": "client_credentials", "scope": "influencers:read"},
        basic(client_id, secret),
    )
    assert good.status_code == 200, good.text
    assert good.headers["cache-control"] == "no-store"
    body = good.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "influencers:read"
    assert body["expires_in"] == 3600
    read_only = body["access_token"]
    assert await names(gql, read_only) == []
    refused = await gql(ADD, {"i": {"displayName": "x"}}, token=read_only)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    viewer = await gql("{ viewer { role } }", token=read_only)
    assert viewer["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    # credentials in the body, no scope: every scope of the app
    full = await token(
        gql.http,
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert full.status_code == 200
    assert full.json()["scope"] == "influencers:read influencers:write posts:read"
    await add(gql, full.json()["access_token"], "From the CRM")
    assert await names(gql, tenant.token) == ["From the CRM"]
    listed = (await gql.ok(LIST, token=tenant.token))["partnerApps"]
    assert listed[0]["lastUsedAt"] is not None


async def test_token_endpoint_errors_follow_rfc6749(gql: GQL, tenant: Tenant) -> None:
    await set_plan(tenant.slug, "pro")
    app = await create_app(gql, tenant.token, ["influencers:read"])
    client_id, secret = app["partnerApp"]["clientId"], app["clientSecret"]
    grant = {"grant_type": "client_credentials"}

    wrong = await token(gql.http, grant, basic(client_id, secret + "x"))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert wrong.headers["www-authenticate"].startswith("Basic")
    unknown = await token(gql.http, grant, basic("tsp_nobody", secret))
    assert unknown.json()["error"] == "invalid_client"
    anonymous = await token(gql.http, grant)
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "invalid_client")

    too_wide = await token(
        gql.http, {**grant, "scope": "influencers:read influencers:write"}, basic(client_id, secret)
    )
    assert (too_wide.status_code, too_wide.json()["error"]) == (400, "invalid_scope")
    other_grant = await token(gql.http, {"grant_type": "password"}, basic(client_id, secret))
    assert other_grant.json()["error"] == "unsupported_grant_type"
    no_grant = await token(gql.http, {}, basic(client_id, secret))
    assert no_grant.json()["error"] == "invalid_request"
    both = await token(
        gql.http,
        {**grant, "client_id": client_id, "client_secret": secret},
        basic(client_id, secret),
    )
    assert both.json()["error"] == "invalid_request"
    as_json = await gql.http.post("/oauth/token", json=grant, headers=basic(client_id, secret))
    assert as_json.json()["error"] == "invalid_request"


async def test_revoked_app_gets_no_token_and_its_tokens_stop(gql: GQL, tenant: Tenant) -> None:
    await set_plan(tenant.slug, "pro")
    app = await create_app(gql, tenant.token, ["influencers:read"])
    creds = basic(app["partnerApp"]["clientId"], app["clientSecret"])
    issued = (await token(gql.http, {"grant_type": "client_credentials"}, creds)).json()
    assert (await gql.raw(NAMES, token=issued["access_token"])).status_code == 200

    revoked = await gql.ok(REVOKE, {"id": app["partnerApp"]["id"]}, token=tenant.token)
    assert revoked["revokePartnerApp"]["partnerApp"]["revoked"] is True
    again = await token(gql.http, {"grant_type": "client_credentials"}, creds)
    assert (again.status_code, again.json()["error"]) == (401, "invalid_client")
    assert (await gql.raw(NAMES, token=issued["access_token"])).status_code == 401


async def test_partner_apps_need_the_plan_and_stay_in_their_tenant(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    refused = await gql.ok(
        CREATE, {"i": {"name": "crm", "scopes": ["influencers:read"]}}, token=tenant.token
    )
    assert refused["createPartnerApp"] == {"__typename": "PlanLimitReached", "limit": "partner_api"}

    await set_plan(tenant.slug, "pro")
    await set_plan(other_tenant.slug, "pro")
    await add(gql, other_tenant.token, "B secret")
    b_app = await create_app(gql, other_tenant.token, ["influencers:read"])
    a_app = await create_app(gql, tenant.token, ["influencers:read", "influencers:write"])
    a_token = (
        await token(
            gql.http,
            {"grant_type": "client_credentials"},
            basic(a_app["partnerApp"]["clientId"], a_app["clientSecret"]),
        )
    ).json()["access_token"]
    assert await names(gql, a_token) == []
    await add(gql, a_token, "A row")
    assert await names(gql, other_tenant.token) == ["B secret"]
    moved = await gql.raw(NAMES, token=a_token, headers={"X-Tenant": other_tenant.slug})
    assert moved.status_code == 403
    listed = (await gql.ok(LIST, token=tenant.token))["partnerApps"]
    assert [a["clientId"] for a in listed] == [a_app["partnerApp"]["clientId"]]
    cross = await gql.ok(REVOKE, {"id": b_app["partnerApp"]["id"]}, token=tenant.token)
    assert cross["revokePartnerApp"] == {"__typename": "NotFound", "code": "NOT_FOUND"}
    # A's client id with B's secret is no credential.
    mixed = await token(
        gql.http,
        {"grant_type": "client_credentials"},
        basic(a_app["partnerApp"]["clientId"], b_app["clientSecret"]),
    )
    assert mixed.json()["error"] == "invalid_client"
