"""Issue 12, item 8: revocation within seconds. After `logOut(everywhere: true)`, a role change
or a member's removal, the access tokens issued before stop working at once over HTTP, and an
open websocket authenticated with one is closed with 4403, on this process and on another api
process (which hears the revocation over Redis pub/sub). Tokens issued afterwards work.
Mechanism: domain/accounts/sessions.py."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from domain.accounts import tokens
from domain.accounts.sessions import SessionVersions, revocation_channel, version_key
from tests.conftest import GQL, Server, Services, Tenant, api_process
from tests.members.test_members import ACCEPT, CHANGE, LOG_IN, MEMBERS, REMOVE, invite
from tests.wsclient import POST_ADDED, close_code, connected, subscribe

LOG_OUT = """mutation($t: String!, $e: Boolean!) { logOut(refreshToken: $t, everywhere: $e) {
    __typename ... on LogOutSuccess { revoked } } }"""
VIEWER = "{ viewer { role } }"


async def refused(gql: GQL, token: str) -> None:
    """The token is refused as revoked: 401, UNAUTHENTICATED, nothing executed."""
    response = await gql.raw(VIEWER, token=token)
    assert response.status_code == 401, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert "revoked" in error["message"]


async def works(gql: GQL, token: str) -> str:
    return str((await gql.ok(VIEWER, token=token))["viewer"]["role"])


async def member(gql: GQL, owner: Tenant, role: str) -> tuple[str, str, str]:
    """A new member with `role`, signed in: (access token, member id, e-mail)."""
    email = f"{role}-{owner.slug}@example.com"
    invited = await invite(gql, owner.token, email, role.upper())
    await gql.ok(
        ACCEPT, {"i": {"token": invited["token"], "email": email, "password": "a long password 1"}}
    )
    login = (await gql.ok(LOG_IN, {"i": {"email": email, "password": "a long password 1"}}))[
        "logIn"
    ]
    members = (await gql.ok(MEMBERS, token=owner.token))["members"]["edges"]
    member_id = next(e["node"]["id"] for e in members if e["node"]["email"] == email)
    return login["accessToken"], member_id, email


async def test_log_out_everywhere_revokes_access_tokens(
    server: Server, gql: GQL, tenant: Tenant
) -> None:
    ws = await connected(server.ws_url, tenant.token)
    await subscribe(ws, "1", POST_ADDED)
    assert await works(gql, tenant.token) == "owner"
    out = await gql.ok(LOG_OUT, {"t": tenant.refresh_token, "e": True})
    assert out["logOut"] == {"__typename": "LogOutSuccess", "revoked": True}
    await refused(gql, tenant.token)
    assert await close_code(ws) == 4403
    # a new sign-in is not affected
    login = await gql.ok(LOG_IN, {"i": {"email": tenant.email, "password": tenant.password}})
    assert await works(gql, login["logIn"]["accessToken"]) == "owner"


async def test_log_out_of_one_session_leaves_access_tokens(gql: GQL, tenant: Tenant) -> None:
    """Only `everywhere` revokes access tokens: a plain logOut ends its refresh family."""
    await gql.ok(LOG_OUT, {"t": tenant.refresh_token, "e": False})
    assert await works(gql, tenant.token) == "owner"


async def test_a_role_change_revokes_the_members_tokens(
    server: Server, gql: GQL, tenant: Tenant
) -> None:
    token, member_id, email = await member(gql, tenant, "analyst")
    ws = await connected(server.ws_url, token)
    await subscribe(ws, "1", POST_ADDED)
    assert await works(gql, token) == "analyst"
    changed = await gql.ok(
        CHANGE, {"i": {"memberId": member_id, "role": "VIEWER"}}, token=tenant.token
    )
    assert changed["changeMemberRole"]["__typename"] == "ChangeMemberRoleSuccess"
    await refused(gql, token)  # it named the old role
    assert await close_code(ws) == 4403
    assert await works(gql, tenant.token) == "owner"  # the owner's own token is untouched
    login = await gql.ok(LOG_IN, {"i": {"email": email, "password": "a long password 1"}})
    assert await works(gql, login["logIn"]["accessToken"]) == "viewer"


async def test_removal_revokes_the_members_tokens(server: Server, gql: GQL, tenant: Tenant) -> None:
    token, member_id, _ = await member(gql, tenant, "admin")
    ws = await connected(server.ws_url, token)
    await subscribe(ws, "1", POST_ADDED)
    assert await works(gql, token) == "admin"
    removed = await gql.ok(REMOVE, {"id": member_id}, token=tenant.token)
    assert removed["removeMember"]["__typename"] == "RemoveMemberSuccess"
    await refused(gql, token)
    assert await close_code(ws) == 4403


async def test_a_token_minted_before_revocation_is_refused_even_if_fresh(
    server: Server, gql: GQL, tenant: Tenant
) -> None:
    """The version is compared, not the clock: a long-lived token issued before the
    revocation (here 1 hour) is refused; tokens from before versions existed (no `sv`) too."""
    settings = server.settings
    claims = tokens.decode_access_token(
        tenant.token,
        secret=settings.secret_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    common = {
        "secret": settings.secret_key,
        "issuer": settings.jwt_issuer,
        "audience": settings.jwt_audience,
        "ttl_seconds": 3600,
        "user_id": claims.user_id,
        "tenant_id": claims.tenant_id,
        "tenant_schema": claims.tenant_schema,
        "role": claims.role,
    }
    long_lived, _ = tokens.issue_access_token(**common, session_version=claims.session_version)
    legacy, _ = tokens.issue_access_token(**common)  # sv 0
    assert await works(gql, long_lived) == "owner"
    await gql.ok(LOG_OUT, {"t": tenant.refresh_token, "e": True})
    await refused(gql, long_lived)
    await refused(gql, legacy)


async def test_versions_only_grow_and_are_announced(services: Services, server: Server) -> None:
    """The key may expire and start again from 0; a revocation is still above every version
    handed out before (it is at least the time in ms), and is published."""
    from redis.asyncio import Redis

    from core.runtime import runtime

    assert runtime.redis is not None
    settings = server.settings
    user_id = 987_654_321  # no such user: only the Redis key matters here
    listener = Redis.from_url(services.redis_url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(revocation_channel(settings))
        versions = SessionVersions()
        first = await versions.revoke(user_id, settings)
        second = await versions.revoke(user_id, settings)
        assert first is not None and second is not None and second > first
        await runtime.redis.delete(version_key(settings, user_id))  # as if it had expired
        third = await versions.revoke(user_id, settings)
        assert third is not None and third > 10**12  # ms since the epoch, not 1
        heard = []
        for _ in range(100):
            message = await pubsub.get_message(timeout=0.1)
            if message:
                heard.append(message["data"])
            if len(heard) == 3:
                break
        assert len(heard) == 3, heard
        assert await versions.current(settings, user_id, fresh=True) == third
    finally:
        await pubsub.aclose()
        await runtime.redis.delete(version_key(settings, user_id))
        await listener.aclose()


@pytest.mark.slow
async def test_another_api_process_closes_the_socket_and_refuses_the_token(
    services: Services, gql: GQL, tenant: Tenant
) -> None:
    async with api_process(services) as other:
        http_url, ws_url = other.http_url, other.ws_url
        ws = await connected(ws_url, tenant.token)
        await subscribe(ws, "1", POST_ADDED)
        async with httpx.AsyncClient(base_url=http_url, timeout=30) as http:
            other = GQL(http)
            assert await works(other, tenant.token) == "owner"  # now in that process's cache
            await gql.ok(LOG_OUT, {"t": tenant.refresh_token, "e": True})  # on this process
            assert await close_code(ws) == 4403  # told over pub/sub
            await refused(other, tenant.token)


async def test_a_lost_revocation_message_still_closes_the_socket(
    server: Server, gql: GQL, tenant: Tenant
) -> None:
    """The version raised in Redis without the pub/sub message (as when Redis restarts in
    between): the periodic check closes the socket, and HTTP refuses the token once the
    process's cached version is older than `session_check_seconds`."""
    from core.runtime import runtime

    assert runtime.redis is not None
    settings = server.settings
    claims = tokens.decode_access_token(
        tenant.token,
        secret=settings.secret_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    ws = await connected(server.ws_url, tenant.token)
    await subscribe(ws, "1", POST_ADDED)
    await runtime.redis.set(version_key(settings, claims.user_id), claims.session_version + 1)
    assert await close_code(ws, wait=30) == 4403
    for _ in range(300):
        if (await gql.raw(VIEWER, token=tenant.token)).status_code == 401:
            break
        await asyncio.sleep(0.1)
    await refused(gql, tenant.token)
