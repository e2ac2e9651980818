"""Issue 12, the websocket side of items 7, 9, 11 and 13 (api/graphql/ws.py, api/graphql/ws_guard.py):

- 7: a socket closes with 4403 when its connection_init token expires, and every `subscribe`
  checks the credential again (a key revoked while the socket is open);
- 9: a lone surrogate is answered (an `error` frame for a subscribe, 4400 otherwise), never a
  silent death, and the socket's other subscriptions go on;
- 11: no "Did you mean" where suggestions are off, and coded request errors;
- 13: a browser `Origin` outside ALLOWED_ORIGINS is refused (403) before the handshake.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
import websockets
from redis.asyncio import Redis

from domain.accounts import tokens
from tests.apikeys.test_api_keys import READ_WRITE, REVOKE, create_key
from tests.conftest import GQL, Server, Tenant, set_plan
from tests.graphql.test_ws_protocol import a_post, publish
from tests.wsclient import (
    POST_ADDED,
    close_code,
    connected,
    open_ws,
    recv,
    send,
    subscribe,
    wait_subscribed,
)


def short_token(server: Server, tenant: Tenant, ttl: int) -> str:
    """The tenant owner's token again, living `ttl` seconds."""
    s = server.settings
    claims = tokens.decode_access_token(
        tenant.token, secret=s.secret_key, issuer=s.jwt_issuer, audience=s.jwt_audience
    )
    token, _ = tokens.issue_access_token(
        secret=s.secret_key,
        issuer=s.jwt_issuer,
        audience=s.jwt_audience,
        ttl_seconds=ttl,
        user_id=claims.user_id,
        tenant_id=claims.tenant_id,
        tenant_schema=claims.tenant_schema,
        role=claims.role,
        session_version=claims.session_version,
    )
    return token


# --- 7: expiry and the credential on every subscribe ------------------------------------


async def test_a_socket_closes_4403_when_its_token_expires(server: Server, tenant: Tenant) -> None:
    ws = await connected(server.ws_url, short_token(server, tenant, ttl=2))
    await subscribe(ws, "1", POST_ADDED)
    with pytest.raises(websockets.ConnectionClosed) as info:
        while True:  # a subscription's events or nothing; then the close
            await asyncio.wait_for(ws.recv(), 20)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 4403 and "expired" in info.value.rcvd.reason


async def test_an_expired_token_cannot_run_queries_on_its_socket(
    server: Server, tenant: Tenant
) -> None:
    """The review's finding: 5 s after expiry the socket still ran `{ viewer { role } }`."""
    ws = await connected(server.ws_url, short_token(server, tenant, ttl=1))
    await asyncio.sleep(2)  # past the expiry (the close may already be on its way)
    try:
        await send(
            ws, {"id": "q", "type": "subscribe", "payload": {"query": "{ viewer { role } }"}}
        )
    except websockets.ConnectionClosed:
        pass
    assert await close_code(ws) == 4403


async def test_every_subscribe_checks_the_credential_again(
    server: Server, gql: GQL, tenant: Tenant
) -> None:
    await set_plan(tenant.slug, "pro")
    created = await create_key(gql, tenant.token, READ_WRITE)
    ws = await connected(server.ws_url, created["key"])
    query = {"query": "{ influencers(first: 1) { edges { node { id } } } }"}
    await send(ws, {"id": "a", "type": "subscribe", "payload": query})
    assert (await recv(ws))["type"] == "next"
    assert await recv(ws) == {"id": "a", "type": "complete"}
    revoked = await gql.ok(REVOKE, {"id": created["apiKey"]["id"]}, token=tenant.token)
    assert revoked["revokeApiKey"]["apiKey"]["revoked"] is True
    await send(ws, {"id": "b", "type": "subscribe", "payload": query})
    assert await close_code(ws) == 4403


# --- 9: lone surrogates -------------------------------------------------------------------

BAD_VARIABLE = (
    '{"id":"%s","type":"subscribe","payload":{"query":"query($x: String) { __typename }",'
    '"variables":{"x":"\\ud800"}}}'
)


async def test_a_lone_surrogate_is_answered_and_the_socket_serves_on(
    server: Server, gql: GQL, tenant: Tenant, redis: Redis
) -> None:
    post_id, influencer_id = await a_post(gql, tenant)
    ws = await connected(server.ws_url, tenant.token)
    await subscribe(ws, "live", POST_ADDED)
    for id_ in ("bad", "bad2"):
        await ws.send(BAD_VARIABLE % id_)
        message = await recv(ws)
        assert message["type"] == "error" and message["id"] == id_, message
        assert message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # in the query text too
    await ws.send(
        '{"id":"q","type":"subscribe","payload":{"query":"{ __type(name: \\"\\udc00\\") { name } }"}}'
    )
    message = await recv(ws)
    assert message["type"] == "error" and message["id"] == "q", message
    # the other subscription still gets its events, and valid pairs are fine
    await wait_subscribed(redis, tenant)
    await publish(redis, tenant, post_id, influencer_id)
    message = await recv(ws)
    assert message["id"] == "live" and message["type"] == "next", message
    await send(ws, {"type": "ping", "payload": {"emoji": "\U0001f600"}})
    assert await recv(ws) == {"type": "pong", "payload": {"emoji": "\U0001f600"}}
    await ws.close()


@pytest.mark.parametrize(
    "frame",
    [
        '{"id":"\\ud800","type":"subscribe","payload":{"query":"{ __typename }"}}',
        '{"type":"ping","payload":{"x":"\\ud800"}}',
        '{"type":"\\ud800"}',
    ],
)
async def test_a_lone_surrogate_that_cannot_be_answered_closes_4400(
    server: Server, tenant: Tenant, frame: str
) -> None:
    ws = await connected(server.ws_url, tenant.token)
    await ws.send(frame)
    assert await close_code(ws) == 4400  # a close frame, never a silent death


# --- 11: suggestions and codes --------------------------------------------------------------


@pytest.fixture
def no_suggestions(server: Server) -> Iterator[None]:
    limits = server.settings.limits
    before = limits.suggestions
    limits.suggestions = False  # as in production
    try:
        yield
    finally:
        limits.suggestions = before


async def test_no_suggestions_on_the_socket_where_they_are_off(
    server: Server, tenant: Tenant, no_suggestions: None
) -> None:
    ws = await connected(server.ws_url, tenant.token)
    for id_, query in (("s", "subscription { postAdde { id } }"), ("q", "{ viewr { role } }")):
        await send(ws, {"id": id_, "type": "subscribe", "payload": {"query": query}})
        message = await recv(ws)
        assert message["type"] == "error" and message["id"] == id_, message
        error = message["payload"][0]
        assert "Did you mean" not in json.dumps(message), message
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    await ws.close()


async def test_request_errors_on_the_socket_carry_a_code(server: Server, tenant: Tenant) -> None:
    ws = await connected(server.ws_url, tenant.token)
    await send(ws, {"id": "p", "type": "subscribe", "payload": {"query": "{ viewer { "}})
    message = await recv(ws)
    assert message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    bad_variable = {"query": "query($n: Int!) { __typename }", "variables": {"n": "x"}}
    await send(ws, {"id": "v", "type": "subscribe", "payload": bad_variable})
    message = await recv(ws)
    assert message["type"] == "error", message
    assert message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    await ws.close()


# --- 13: Origin -------------------------------------------------------------------------------


@pytest.fixture
def allowed_origins(server: Server) -> Iterator[None]:
    before = server.settings.allowed_origins
    server.settings.allowed_origins = ["https://app.trendscope.example"]
    try:
        yield
    finally:
        server.settings.allowed_origins = before


async def test_a_foreign_origin_is_refused_before_the_handshake(
    server: Server, tenant: Tenant, allowed_origins: None
) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        await open_ws(server.ws_url, origin="https://evil.example")
    assert info.value.response.status_code == 403
    ws = await open_ws(server.ws_url, origin="https://app.trendscope.example")  # listed
    await send(ws, {"type": "ping"})
    assert await recv(ws) == {"type": "pong"}
    await ws.close()
    await (await connected(server.ws_url, tenant.token)).close()  # no Origin: not a browser


def test_origins_in_production_and_development(server: Server) -> None:
    dev = server.settings.model_copy(update={"env": "development", "allowed_origins": []})
    assert dev.websocket_origin_allowed("https://anything.example")
    prod = server.settings.model_copy(
        update={"env": "production", "allowed_origins": [], "app_url": "https://app.example.com"}
    )
    assert prod.websocket_origin_allowed(None)  # not a browser
    assert prod.websocket_origin_allowed("https://APP.example.com:443")  # APP_URL's origin
    assert not prod.websocket_origin_allowed("https://evil.example")
    assert not prod.websocket_origin_allowed("null")
    listed = prod.model_copy(update={"allowed_origins": ["https://a.example", "http://b:8080"]})
    assert listed.websocket_origin_allowed("http://b:8080")
    assert not listed.websocket_origin_allowed("http://b")
    assert not listed.websocket_origin_allowed("https://app.example.com")  # the list rules


def test_allowed_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import Settings

    monkeypatch.setenv("ALLOWED_ORIGINS", "https://a.example, https://b.example")
    assert Settings().allowed_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("ALLOWED_ORIGINS", '["https://c.example"]')
    assert Settings().allowed_origins == ["https://c.example"]
