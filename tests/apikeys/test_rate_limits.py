"""Rate limits: the plan's hourly budget per tenant and per credential, the IETF draft
headers, 429 + Retry-After + RATE_LIMITED, refills; sign-in and token brute force per IP and
per account. Time is driven through the limiter's injected clock (nothing sleeps)."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from core.ratelimit import limiter
from core.settings import RateLimits
from tests.apikeys.test_api_keys import NAMES, create_key
from tests.apikeys.test_partner_apps import basic, create_app, token
from tests.conftest import GQL, Server, Tenant, set_plan
from tests.wsclient import connected, recv, send

LOG_IN = """mutation($i: LogInInput!) { logIn(input: $i) { __typename
    ... on AuthPayload { accessToken } ... on UserError { code } } }"""
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) { __typename } }"""


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    fake = Clock(now=2_000_000_000.0 + secrets.randbelow(10**6))
    real = limiter.clock
    limiter.clock = fake
    try:
        yield fake
    finally:
        limiter.clock = real


@pytest.fixture
def limits(server: Server) -> Iterator[RateLimits]:
    """The running app's rate-limit settings, restored after the test."""
    settings = server.settings
    saved = settings.rate_limits
    settings.rate_limits = saved.model_copy(deep=True)
    try:
        yield settings.rate_limits
    finally:
        settings.rate_limits = saved


_addresses = itertools.count(secrets.randbelow(1 << 20))


def an_ip() -> dict[str, str]:
    """A client address of its own (uvicorn trusts X-Forwarded-For from 127.0.0.1)."""
    n = next(_addresses)
    return {"X-Forwarded-For": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}


def rl(response: httpx.Response) -> tuple[str, str, str]:
    h = response.headers
    return h["ratelimit-limit"], h["ratelimit-remaining"], h["ratelimit-reset"]


async def test_the_plans_hourly_limit_holds_per_credential_and_resets(
    gql: GQL, tenant: Tenant, other_tenant: Tenant, clock: Clock, limits: RateLimits
) -> None:
    limits.plan_requests_per_hour = {"free": 4}  # a credential gets half: 2 an hour
    first = await gql.raw(NAMES, token=tenant.token)
    assert first.status_code == 200
    assert rl(first) == ("2", "1", "1800")
    assert first.headers["ratelimit-policy"] == "2;w=3600"
    clock.now += 10
    second = await gql.raw(NAMES, token=tenant.token)
    assert rl(second) == ("2", "0", "3590")

    refused = await gql.raw(NAMES, token=tenant.token)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1790"
    assert rl(refused) == ("2", "0", "3590")
    error = refused.json()["errors"][0]
    assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 1790.0}
    # Refused requests are not counted, and other tenants are untouched.
    assert (await gql.raw(NAMES, token=other_tenant.token)).status_code == 200

    clock.now += 1790  # one request's worth has dripped back
    again = await gql.raw(NAMES, token=tenant.token)
    assert again.status_code == 200 and rl(again)[1] == "0"
    assert (await gql.raw(NAMES, token=tenant.token)).status_code == 429
    clock.now += 3600  # a full hour: the whole budget is back
    reset = await gql.raw(NAMES, token=tenant.token)
    assert rl(reset) == ("2", "1", "1800")


async def test_the_tenant_budget_is_shared_by_its_credentials(
    gql: GQL, tenant: Tenant, clock: Clock, limits: RateLimits
) -> None:
    await set_plan(tenant.slug, "pro")
    first_key = (await create_key(gql, tenant.token, ["influencers:read"]))["key"]
    second_key = (await create_key(gql, tenant.token, ["influencers:read"]))["key"]
    app = await create_app(gql, tenant.token, ["influencers:read"])
    issued = await token(
        gql.http,
        {"grant_type": "client_credentials"},
        basic(app["partnerApp"]["clientId"], app["clientSecret"]),
    )
    app_token = issued.json()["access_token"]
    clock.now += 7200  # the mutations above counted under the default limit: start afresh
    limits.plan_requests_per_hour = {"pro": 4}
    for _ in range(2):
        assert (await gql.raw(NAMES, token=first_key)).status_code == 200
    for _ in range(3):  # its own share is used; refusals charge neither bucket
        assert (await gql.raw(NAMES, token=first_key)).status_code == 429
    for credential in (app_token, tenant.token):
        assert (await gql.raw(NAMES, token=credential)).status_code == 200
    # The second key's own bucket is full, but the tenant's hour is spent.
    refused = await gql.raw(NAMES, token=second_key)
    assert refused.status_code == 429
    assert rl(refused)[0] == "4"
    assert refused.headers["retry-after"] == "900"


async def test_anonymous_requests_are_metered_per_ip_not_per_tenant(
    gql: GQL, limits: RateLimits
) -> None:
    # no tenant's budget: the client address's own (tests/ops/test_logs_headers.py refuses one)
    limits.anonymous_per_ip = 50
    response = await gql.raw("{ __typename }", headers=an_ip())
    assert response.status_code == 200
    assert rl(response)[:2] == ("50", "49")


async def test_log_in_brute_force_is_blocked_per_ip(
    gql: GQL, tenant: Tenant, clock: Clock, limits: RateLimits
) -> None:
    limits.auth_per_ip = 3
    ip, other_ip = an_ip(), an_ip()
    for n in range(3):
        bad = await gql(
            LOG_IN, {"i": {"email": f"u{n}@x.example", "password": "guess-guess"}}, headers=ip
        )
        assert bad["data"]["logIn"]["__typename"] == "AuthenticationFailed"
    blocked = await gql.raw(
        LOG_IN, {"i": {"email": tenant.email, "password": tenant.password}}, headers=ip
    )
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == "300"  # 900 s / 3 attempts
    error = blocked.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] == 300.0
    # The refresh and sign-up mutations share the IP's budget.
    refresh = await gql.raw(REFRESH, {"t": tenant.refresh_token}, headers=ip)
    assert refresh.status_code == 429
    # Another address is not affected; after the wait the first one may try again.
    ok = await gql(
        LOG_IN, {"i": {"email": tenant.email, "password": tenant.password}}, headers=other_ip
    )
    assert ok["data"]["logIn"]["__typename"] == "AuthPayload"
    clock.now += 300
    ok = await gql(LOG_IN, {"i": {"email": tenant.email, "password": tenant.password}}, headers=ip)
    assert ok["data"]["logIn"]["__typename"] == "AuthPayload"


async def test_log_in_brute_force_is_blocked_per_account(
    gql: GQL, tenant: Tenant, other_tenant: Tenant, clock: Clock, limits: RateLimits
) -> None:
    limits.auth_per_account = 2
    for _ in range(2):  # from two addresses: the account's budget follows the account
        bad = await gql(
            LOG_IN, {"i": {"email": tenant.email, "password": "wrong-guess"}}, headers=an_ip()
        )
        assert bad["data"]["logIn"]["__typename"] == "AuthenticationFailed"
    blocked = await gql.raw(
        LOG_IN, {"i": {"email": tenant.email.upper(), "password": tenant.password}}, headers=an_ip()
    )
    assert blocked.status_code == 429  # even the right password waits: no oracle
    assert blocked.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    other = await gql(
        LOG_IN,
        {"i": {"email": other_tenant.email, "password": other_tenant.password}},
        headers=an_ip(),
    )
    assert other["data"]["logIn"]["__typename"] == "AuthPayload"
    clock.now += 450
    ok = await gql(
        LOG_IN, {"i": {"email": tenant.email, "password": tenant.password}}, headers=an_ip()
    )
    assert ok["data"]["logIn"]["__typename"] == "AuthPayload"


async def test_token_endpoint_is_limited_per_client(
    gql: GQL, tenant: Tenant, clock: Clock, limits: RateLimits
) -> None:
    await set_plan(tenant.slug, "pro")
    app = await create_app(gql, tenant.token, ["influencers:read"])
    client_id = app["partnerApp"]["clientId"]
    limits.auth_per_account = 2
    grant = {"grant_type": "client_credentials"}
    for _ in range(2):
        wrong = await token(gql.http, grant, {**basic(client_id, "guess"), **an_ip()})
        assert wrong.status_code == 401
    blocked = await token(gql.http, grant, {**basic(client_id, app["clientSecret"]), **an_ip()})
    assert blocked.status_code == 429
    assert blocked.json()["error"] == "slow_down"
    assert blocked.headers["retry-after"] == "450"
    clock.now += 450
    ok = await token(gql.http, grant, {**basic(client_id, app["clientSecret"]), **an_ip()})
    assert ok.status_code == 200


async def test_queries_over_a_websocket_are_metered_too(
    server: Server, gql: GQL, tenant: Tenant, clock: Clock, limits: RateLimits
) -> None:
    limits.plan_requests_per_hour = {"free": 2}  # one for this credential
    ws = await connected(server.ws_url, tenant.token)
    try:
        await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": NAMES}})
        assert (await recv(ws))["type"] == "next"
        assert await recv(ws) == {"id": "1", "type": "complete"}
        await send(ws, {"id": "2", "type": "subscribe", "payload": {"query": NAMES}})
        refused = await recv(ws)
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 3600.0}
    finally:
        await ws.close()
    assert (await gql.raw(NAMES, token=tenant.token)).status_code == 429


async def test_password_reset_requests_are_limited_per_address(
    gql: GQL, tenant: Tenant, clock: Clock, limits: RateLimits
) -> None:
    limits.auth_per_account = 2
    reset = """mutation($e: String!) { requestPasswordReset(email: $e) { __typename } }"""
    for _ in range(2):
        assert (await gql.raw(reset, {"e": tenant.email}, headers=an_ip())).status_code == 200
    blocked = await gql.raw(reset, {"e": tenant.email}, headers=an_ip())
    assert blocked.status_code == 429  # no mail-bombing one address from many places
    assert blocked.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
