"""API keys: created with a subset of the creator's scopes, shown once, stored hashed, usable
as a bearer credential for their tenant only, revocable, plan-gated (partner_api)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from domain.apikeys.models import ApiKey
from tests.conftest import GQL, Server, Tenant, set_plan
from tests.influencers.test_influencers_api import ADD, add
from tests.members.test_members import AUDIT

CREATE = """mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { __typename
    ... on CreateApiKeySuccess { key apiKey { id name prefix scopes lastUsedAt revoked } }
    ... on ValidationFailed { code fields { field message } }
    ... on PlanLimitReached { code limit plan }
    ... on PermissionDenied { code message } } }"""
LIST = "{ apiKeys { id name prefix scopes createdAt expiresAt lastUsedAt revoked } }"
REVOKE = """mutation($id: ID!) { revokeApiKey(id: $id) { __typename
    ... on RevokeApiKeySuccess { apiKey { id revoked revokedAt } } ... on NotFound { code } } }"""
NAMES = "{ influencers(first: 100) { edges { node { displayName } } } }"
READ_WRITE = ["influencers:read", "influencers:write"]


async def create_key(gql: GQL, token: str, scopes: list[str], **extra: Any) -> dict[str, Any]:
    data = await gql.ok(CREATE, {"i": {"name": "ci", "scopes": scopes, **extra}}, token=token)
    return data["createApiKey"]  # type: ignore[no-any-return]


async def names(gql: GQL, token: str) -> list[str]:
    data = await gql.ok(NAMES, token=token)
    return sorted(e["node"]["displayName"] for e in data["influencers"]["edges"])


async def test_key_is_shown_once_stored_hashed_and_works(
    server: Server, gql: GQL, tenant: Tenant
) -> None:
    await set_plan(tenant.slug, "pro")
    created = await create_key(gql, tenant.token, READ_WRITE)
    assert created["__typename"] == "CreateApiKeySuccess", created
    key, meta = created["key"], created["apiKey"]
    assert key.startswith(f"tsk_{meta['prefix']}_") and len(key) > 50
    assert meta["scopes"] == READ_WRITE and meta["lastUsedAt"] is None

    # Only the hash is stored; the list never shows the secret again.
    row = await ApiKey.get(id=int(meta["id"]))
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    listed = await gql.ok(LIST, token=tenant.token)
    assert [k["prefix"] for k in listed["apiKeys"]] == [meta["prefix"]]
    assert key not in str(listed)

    # The key works as a bearer credential for its tenant, within its scopes.
    await add(gql, key, "Added by a key")
    assert await names(gql, tenant.token) == ["Added by a key"]
    viewer = await gql("{ viewer { role } }", token=key)
    assert viewer["errors"][0]["extensions"]["code"] == "FORBIDDEN"  # no person behind a key

    # last_used_at moved with the first use, and is written at most once a minute.
    first_use = (await ApiKey.get(id=row.id)).last_used_at
    assert first_use is not None
    await names(gql, key)
    assert (await ApiKey.get(id=row.id)).last_used_at == first_use
    settings = server.settings
    saved, settings.api_key_touch_seconds = settings.api_key_touch_seconds, 0  # "a minute later"
    try:
        await names(gql, key)
    finally:
        settings.api_key_touch_seconds = saved
    later = (await ApiKey.get(id=row.id)).last_used_at
    assert later is not None and later > first_use

    # A wrong secret with a real prefix, or garbage, is refused.
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert (await gql.raw(NAMES, token=forged)).status_code == 401
    assert (await gql.raw(NAMES, token="tsk_nothing")).status_code == 401


async def test_key_scopes_are_enforced_and_a_subset_of_the_creator(
    gql: GQL, tenant: Tenant
) -> None:
    await set_plan(tenant.slug, "pro")
    read_only = (await create_key(gql, tenant.token, ["influencers:read"]))["key"]
    assert await names(gql, read_only) == []
    body = await gql(ADD, {"i": {"displayName": "nope"}}, token=read_only)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await names(gql, tenant.token) == []
    # A key cannot manage keys, nor mint another one.
    body = await gql(CREATE, {"i": {"name": "x", "scopes": ["influencers:read"]}}, token=read_only)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    unknown = await create_key(gql, tenant.token, ["influencers:read", "root:everything"])
    assert unknown["__typename"] == "ValidationFailed"
    assert unknown["fields"][0]["field"] == "scopes"
    empty = await create_key(gql, tenant.token, [])
    assert empty["__typename"] == "ValidationFailed"
    past = await create_key(gql, tenant.token, READ_WRITE, expiresAt="2020-01-01T00:00:00Z")
    assert past["__typename"] == "ValidationFailed"
    assert past["fields"][0]["field"] == "expiresAt"
    assert len((await gql.ok(LIST, token=tenant.token))["apiKeys"]) == 1  # bad input: nothing


async def test_revoked_or_expired_key_is_refused(gql: GQL, tenant: Tenant) -> None:
    await set_plan(tenant.slug, "pro")
    created = await create_key(gql, tenant.token, READ_WRITE)
    key, key_id = created["key"], created["apiKey"]["id"]
    assert (await gql.raw(NAMES, token=key)).status_code == 200
    revoked = await gql.ok(REVOKE, {"id": key_id}, token=tenant.token)
    assert revoked["revokeApiKey"]["apiKey"]["revoked"] is True
    response = await gql.raw(NAMES, token=key)
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == "API key revoked"
    # both ends of the key's life are in the audit log, with who did it and no secret
    log = (await gql.ok(AUDIT, token=tenant.token))["auditLog"]["edges"]
    entries = {e["node"]["action"]: e["node"] for e in log}
    assert {"api_key.created", "api_key.revoked"} <= set(entries)
    assert entries["api_key.revoked"]["targetId"] == str(key_id)
    assert entries["api_key.created"]["actorUserId"] is not None
    assert key not in json.dumps(log)

    expired = await create_key(gql, tenant.token, READ_WRITE, expiresAt="2999-01-01T00:00:00")
    assert expired["__typename"] == "CreateApiKeySuccess"  # no offset: taken as UTC
    assert (await gql.raw(NAMES, token=expired["key"])).status_code == 200
    await ApiKey.filter(id=int(expired["apiKey"]["id"])).update(
        expires_at=datetime(2020, 1, 1, tzinfo=UTC)
    )
    response = await gql.raw(NAMES, token=expired["key"])
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == "API key expired"


async def test_keys_need_the_partner_api_plan(gql: GQL, tenant: Tenant) -> None:
    refused = await create_key(gql, tenant.token, READ_WRITE)  # sign-up gives the free plan
    assert refused == {
        "__typename": "PlanLimitReached",
        "code": "PLAN_LIMIT_REACHED",
        "limit": "partner_api",
        "plan": "free",
    }
    await set_plan(tenant.slug, "pro")
    key = (await create_key(gql, tenant.token, READ_WRITE))["key"]
    await set_plan(tenant.slug, "starter")  # a downgrade switches the keys off
    response = await gql.raw(NAMES, token=key)
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "PLAN_LIMIT_REACHED"


async def test_a_tenants_keys_reach_nothing_of_another(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    await set_plan(tenant.slug, "pro")
    await set_plan(other_tenant.slug, "pro")
    await add(gql, other_tenant.token, "B secret")
    b_key = await create_key(gql, other_tenant.token, READ_WRITE)
    a_created = await create_key(gql, tenant.token, READ_WRITE)
    a_key = a_created["key"]

    assert await names(gql, a_key) == []
    await add(gql, a_key, "A row")
    assert await names(gql, other_tenant.token) == ["B secret"]
    # X-Tenant cannot move a key to another tenant.
    moved = await gql.raw(NAMES, token=a_key, headers={"X-Tenant": other_tenant.slug})
    assert moved.status_code == 403
    # A cannot list, nor revoke, B's keys: each tenant lists exactly its own.
    a_listed = (await gql.ok(LIST, token=tenant.token))["apiKeys"]
    b_listed = (await gql.ok(LIST, token=other_tenant.token))["apiKeys"]
    assert {(k["id"], k["prefix"]) for k in a_listed} == {
        (a_created["apiKey"]["id"], a_created["apiKey"]["prefix"])
    }
    assert {(k["id"], k["prefix"]) for k in b_listed} == {
        (b_key["apiKey"]["id"], b_key["apiKey"]["prefix"])
    }
    not_found = await gql.ok(REVOKE, {"id": b_key["apiKey"]["id"]}, token=tenant.token)
    assert not_found["revokeApiKey"] == {"__typename": "NotFound", "code": "NOT_FOUND"}
    assert await names(gql, b_key["key"]) == ["B secret"]


async def test_a_key_works_over_the_websocket_in_its_own_tenant(
    server: Server, gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    from tests.wsclient import connected, recv, send

    await set_plan(tenant.slug, "pro")
    await add(gql, tenant.token, "A row")
    await add(gql, other_tenant.token, "B row")
    key = (await create_key(gql, tenant.token, ["influencers:read"]))["key"]
    ws = await connected(server.ws_url, key)
    try:
        await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": NAMES}})
        result = await recv(ws)
        edges = result["payload"]["data"]["influencers"]["edges"]
        assert [e["node"]["displayName"] for e in edges] == ["A row"]
    finally:
        await ws.close()


async def test_a_credentials_scopes_are_a_subset_of_its_creators(gql: GQL, tenant: Tenant) -> None:
    """docs/api-keys.md: a key's (and a partner app's) scopes must be held by whoever creates
    it. Expected scopes from the hand-written role table, not from the code under test."""
    from tests.apikeys.test_partner_apps import CREATE as CREATE_APP
    from tests.graphql.permission_tables import ROLE_SCOPES
    from tests.members.test_members import join

    await set_plan(tenant.slug, "pro")
    admin, _ = await join(gql, tenant, "admin")
    every_scope = frozenset().union(*ROLE_SCOPES.values())
    for role, token in (("owner", tenant.token), ("admin", admin)):
        held = ROLE_SCOPES[role]
        created = await create_key(gql, token, sorted(held))
        assert created["__typename"] == "CreateApiKeySuccess", (role, created)
        assert set(created["apiKey"]["scopes"]) == held
        for scope in sorted(every_scope - held):  # the admin lacks billing:manage
            refused = await create_key(gql, token, ["influencers:read", scope])
            assert refused["__typename"] == "ValidationFailed", (role, scope, refused)
            assert refused["fields"] == [
                {"field": "scopes", "message": f"you do not hold: {scope}"}
            ]
            app = await gql.ok(CREATE_APP, {"i": {"name": "x", "scopes": [scope]}}, token=token)
            assert app["createPartnerApp"]["__typename"] == "ValidationFailed", (role, scope)
    assert ROLE_SCOPES["owner"] - ROLE_SCOPES["admin"] == {"billing:manage"}  # tried above
    # Nothing refused was stored: one key per creator.
    listed = (await gql.ok(LIST, token=tenant.token))["apiKeys"]
    assert sorted(frozenset(k["scopes"]) == ROLE_SCOPES["owner"] for k in listed) == [
        False,
        True,
    ]
    assert (await gql.ok("{ partnerApps { id } }", token=tenant.token))["partnerApps"] == []
