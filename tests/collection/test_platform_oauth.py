"""OAuth connection flows against a fake provider served over HTTP (the external party only)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import asyncpg
import httpx
import pytest
import uvicorn
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.settings import get_settings
from domain.collection import oauth
from domain.collection.connections import connections
from domain.collection.connectors import CredentialBroken
from domain.collection.models import PlatformConnection
from tenants.tx import tenant_tx
from tests.conftest import GQL, Server, Services, Tenant

START = """mutation($p: ConnectionPlatform!) { startPlatformConnection(platform: $p) {
  __typename ... on StartPlatformConnectionSuccess { authorizationUrl }
  ... on ValidationFailed { message } } }"""
LIST = "{ platformConnections { platform status label } }"


@dataclass
class FakeProvider:
    url: str
    token_requests: list[dict[str, Any]] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
async def provider() -> AsyncIterator[FakeProvider]:
    """Token endpoint speaking RFC 6749 JSON, and Graph's /me/accounts."""
    fake = FakeProvider(url="")

    async def token(request: Request) -> JSONResponse:
        if request.method == "GET":  # Facebook's long-lived token exchange
            params = dict(request.query_params)
            fake.token_requests.append({"query": params})
            if (
                params.get("grant_type") != "fb_exchange_token"
                or params.get("fb_exchange_token") != "AT-secret-123"
            ):
                return JSONResponse({"error": {"message": "bad exchange"}}, status_code=400)
            return JSONResponse(
                {"access_token": "LL-secret-789", "token_type": "bearer", "expires_in": 5183944}
            )
        form = dict((await request.form()).items())
        fake.token_requests.append({"form": form, "auth": request.headers.get("authorization")})
        if form.get("grant_type") == "refresh_token":
            await asyncio.sleep(0.2)  # slow enough for two renewals to overlap
            if form.get("refresh_token") != "RT-secret-456":
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return JSONResponse(
                {
                    "access_token": "AT-renewed",
                    "token_type": "bearer",
                    "expires_in": 7200,
                    "refresh_token": "RT-rotated",
                }
            )
        if form.get("code") != "good-code" or form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        return JSONResponse(
            {
                "access_token": "AT-secret-123",
                "token_type": "bearer",
                "expires_in": 7200,
                "refresh_token": "RT-secret-456",
                "scope": "tweet.read users.read offline.access",
            }
        )

    async def accounts(request: Request) -> JSONResponse:
        assert request.query_params["access_token"] == "LL-secret-789"
        return JSONResponse(
            {"data": [{"id": "p1"}, {"id": "p2", "instagram_business_account": {"id": "1784"}}]}
        )

    app = Starlette(
        routes=[
            Route("/token", token, methods=["GET", "POST"]),
            Route("/me/accounts", accounts),
        ]
    )
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        srv.should_exit = True
        await task


@pytest.fixture(autouse=True)
def configured(provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = {
        "client_id": "cid",
        "client_secret": "csecret",
        "authorize_url": f"{provider.url}/authorize",
        "token_url": f"{provider.url}/token",
        "api_base_url": provider.url,
    }
    monkeypatch.setattr(
        get_settings(), "oauth_platforms", {"x": dict(conf), "instagram": dict(conf)}
    )
    provider.token_requests.clear()


async def _start(gql: GQL, tenant: Tenant, platform: str = "X") -> dict[str, list[str]]:
    data = await gql.ok(START, {"p": platform}, token=tenant.token)
    payload = data["startPlatformConnection"]
    assert payload["__typename"] == "StartPlatformConnectionSuccess", payload
    return parse_qs(urlparse(payload["authorizationUrl"]).query)


async def _callback(server: Server, platform: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url) as http:
        return await http.get(f"/oauth/platforms/{platform}/callback", params=params)


async def test_x_flow_stores_encrypted_active_connection_with_pkce(
    gql: GQL, server: Server, services: Services, tenant: Tenant, provider: FakeProvider
) -> None:
    query = await _start(gql, tenant)
    assert query["response_type"] == ["code"] and query["client_id"] == ["cid"]
    assert query["scope"] == ["tweet.read users.read offline.access"]
    assert query["code_challenge_method"] == ["S256"]
    redirect = query["redirect_uri"][0]
    assert redirect == f"{server.url}/oauth/platforms/x/callback"

    response = await _callback(server, "x", code="good-code", state=query["state"][0])
    assert response.status_code == 200, response.text
    assert response.json()["connected"] == "x"

    [sent] = provider.token_requests
    verifier = sent["form"]["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert query["code_challenge"] == [challenge.decode()]
    assert sent["form"]["redirect_uri"] == redirect
    assert sent["auth"] == "Basic " + base64.b64encode(b"cid:csecret").decode()

    body = await gql(LIST, token=tenant.token)
    assert body["data"]["platformConnections"] == [
        {"platform": "X", "status": "ACTIVE", "label": "oauth"}
    ]
    assert "AT-secret" not in json.dumps(body)
    conn = await asyncpg.connect(services.database_url)
    try:
        secret = await conn.fetchval(f'SELECT secret FROM "{tenant.schema}".platform_connection')
    finally:
        await conn.close()
    assert secret and "AT-secret" not in secret


async def test_instagram_flow_reads_business_account(
    gql: GQL, server: Server, tenant: Tenant, provider: FakeProvider
) -> None:
    query = await _start(gql, tenant, "INSTAGRAM")
    assert "code_challenge" not in query
    response = await _callback(server, "instagram", code="good-code", state=query["state"][0])
    assert response.status_code == 200, response.text
    sent, exchange = provider.token_requests
    assert sent["form"]["client_secret"] == "csecret"
    assert exchange["query"] == {
        "grant_type": "fb_exchange_token",
        "client_id": "cid",
        "client_secret": "csecret",
        "fb_exchange_token": "AT-secret-123",
    }
    listed = await gql.ok(LIST, token=tenant.token)
    assert listed["platformConnections"][0]["status"] == "ACTIVE"
    secrets = await _stored_secrets(tenant, "instagram")
    assert secrets["access_token"] == "LL-secret-789" and secrets["ig_user_id"] == "1784"
    assert int(secrets["expires_at"]) > time.time() + 59 * 86400


async def test_replayed_state_is_refused(gql: GQL, server: Server, tenant: Tenant) -> None:
    state = (await _start(gql, tenant))["state"][0]
    assert (await _callback(server, "x", code="good-code", state=state)).status_code == 200
    await gql.ok("mutation { disconnectPlatform(platform: X) { __typename } }", token=tenant.token)
    again = await _callback(server, "x", code="good-code", state=state)
    assert again.status_code == 400
    assert "already used" in again.json()["message"]
    listed = await gql.ok(LIST, token=tenant.token)
    assert listed["platformConnections"][0]["status"] == "DISCONNECTED"


async def test_unknown_and_expired_state_are_refused(
    gql: GQL, server: Server, services: Services, tenant: Tenant, provider: FakeProvider
) -> None:
    unknown = await _callback(server, "x", code="good-code", state="made-up")
    assert unknown.status_code == 400 and "state" in unknown.json()["message"]
    state = (await _start(gql, tenant))["state"][0]
    redis = Redis.from_url(services.redis_url)
    try:  # what the 10-minute TTL does, without waiting for it
        key = f"{get_settings().quota_key_prefix}:oauth-state:{state}"
        assert 0 < await redis.ttl(key) <= 600
        await redis.delete(key)
    finally:
        await redis.aclose()
    expired = await _callback(server, "x", code="good-code", state=state)
    assert expired.status_code == 400
    assert provider.token_requests == []
    assert (await gql.ok(LIST, token=tenant.token))["platformConnections"] == []


async def test_access_denied_stores_nothing_and_burns_state(
    gql: GQL, server: Server, tenant: Tenant, provider: FakeProvider
) -> None:
    state = (await _start(gql, tenant))["state"][0]
    denied = await _callback(server, "x", error="access_denied", state=state)
    assert denied.status_code == 400
    assert denied.json()["error"] == "access_denied"
    assert "not made" in denied.json()["message"]
    later = await _callback(server, "x", code="good-code", state=state)
    assert later.status_code == 400
    assert provider.token_requests == []
    assert (await gql.ok(LIST, token=tenant.token))["platformConnections"] == []


async def test_state_is_bound_to_its_tenant_and_platform(
    gql: GQL, server: Server, tenant: Tenant, other_tenant: Tenant
) -> None:
    state = (await _start(gql, tenant))["state"][0]
    wrong = await _callback(server, "instagram", code="good-code", state=state)
    assert wrong.status_code == 400  # and the state is spent
    state = (await _start(gql, tenant))["state"][0]
    assert (await _callback(server, "x", code="good-code", state=state)).status_code == 200
    assert len((await gql.ok(LIST, token=tenant.token))["platformConnections"]) == 1
    assert (await gql.ok(LIST, token=other_tenant.token))["platformConnections"] == []


async def test_non_oauth_platform_and_scope(gql: GQL, tenant: Tenant) -> None:
    data = await gql.ok(START, {"p": "YOUTUBE"}, token=tenant.token)
    assert data["startPlatformConnection"]["__typename"] == "ValidationFailed"
    anonymous = await gql(START, {"p": "X"})
    assert anonymous.get("errors")


async def _stored_secrets(tenant: Tenant, platform: str) -> dict[str, str]:
    async with tenant_tx(tenant.schema):
        conn = await PlatformConnection.get(platform=platform)
        return connections.cipher.decrypt_json(conn.secret)


async def _connect_x(gql: GQL, server: Server, tenant: Tenant) -> int:
    state = (await _start(gql, tenant))["state"][0]
    assert (await _callback(server, "x", code="good-code", state=state)).status_code == 200
    async with tenant_tx(tenant.schema):
        return (await PlatformConnection.get(platform="x")).id


async def test_x_flow_keeps_the_refresh_token_and_expiry(
    gql: GQL, server: Server, tenant: Tenant
) -> None:
    await _connect_x(gql, server, tenant)
    secrets = await _stored_secrets(tenant, "x")
    assert secrets["bearer_token"] == "AT-secret-123"
    assert secrets["refresh_token"] == "RT-secret-456"
    assert 7000 < int(secrets["expires_at"]) - time.time() <= 7200


async def _expire_soon(tenant: Tenant, conn_id: int) -> dict[str, str]:
    secrets = await _stored_secrets(tenant, "x") | {"expires_at": str(int(time.time()) + 30)}
    async with tenant_tx(tenant.schema):
        conn = await PlatformConnection.filter(id=conn_id).select_for_update().get()
        await connections.replace_secrets(conn, secrets)
    return secrets


async def test_two_jobs_renewing_at_once_use_the_rotating_refresh_token_once(
    gql: GQL, server: Server, tenant: Tenant, provider: FakeProvider
) -> None:
    conn_id = await _connect_x(gql, server, tenant)
    stale = await _expire_soon(tenant, conn_id)
    assert oauth.needs_refresh(stale)
    provider.token_requests.clear()
    config = get_settings().oauth_platforms
    first, second = await asyncio.gather(
        oauth.ensure_fresh(tenant.schema, conn_id, stale, config=config),
        oauth.ensure_fresh(tenant.schema, conn_id, stale, config=config),
    )
    assert first["bearer_token"] == second["bearer_token"] == "AT-renewed"
    [refresh] = provider.token_requests  # the second waited for the lock and found it renewed
    assert refresh["form"]["grant_type"] == "refresh_token"
    assert refresh["form"]["refresh_token"] == "RT-secret-456"
    stored = await _stored_secrets(tenant, "x")
    assert stored["refresh_token"] == "RT-rotated" and not oauth.needs_refresh(stored)
    # a fresh token is used as it is: no call
    assert await oauth.ensure_fresh(tenant.schema, conn_id, stored, config=config) == stored
    assert len(provider.token_requests) == 1


async def test_refused_renewal_marks_the_connection_broken(
    gql: GQL, server: Server, tenant: Tenant
) -> None:
    conn_id = await _connect_x(gql, server, tenant)
    stale = await _expire_soon(tenant, conn_id) | {"refresh_token": "RT-revoked"}
    async with tenant_tx(tenant.schema):
        conn = await PlatformConnection.filter(id=conn_id).select_for_update().get()
        await connections.replace_secrets(conn, stale)
    with pytest.raises(CredentialBroken):
        await oauth.ensure_fresh(
            tenant.schema, conn_id, stale, config=get_settings().oauth_platforms
        )
    listed = await gql.ok(LIST, token=tenant.token)
    assert listed["platformConnections"][0]["status"] == "BROKEN"
