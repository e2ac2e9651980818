"""Sign-up, log-in, tokens, X-Tenant: every failure is a clear typed error."""

from __future__ import annotations

import time

import jwt

from core.settings import get_settings
from domain.accounts.tokens import issue_access_token
from tests.conftest import GQL, Tenant

LOG_IN = """mutation($i: LogInInput!) { logIn(input: $i) { __typename
    ... on AuthPayload { accessToken refreshToken tenantSlug role }
    ... on UserError { code message } } }"""
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) { __typename
    ... on AuthPayload { accessToken refreshToken } ... on UserError { code message } } }"""
VIEWER = (
    "{ viewer { user { email } tenant { slug } role scopes memberships { tenant { slug } role } } }"
)
INFLUENCERS = "{ influencers(first: 5) { edges { node { id } } } }"


async def test_sign_up_then_viewer(gql: GQL, tenant: Tenant) -> None:
    data = await gql.ok(VIEWER, token=tenant.token)
    assert data["viewer"]["tenant"]["slug"] == tenant.slug
    assert data["viewer"]["role"] == "owner"
    assert "influencers:write" in data["viewer"]["scopes"]


async def test_sign_up_validation_is_typed_and_stores_nothing(gql: GQL, tenant: Tenant) -> None:
    data = await gql.ok(
        """mutation($i: SignUpInput!) { signUp(input: $i) { __typename
            ... on ValidationFailed { code fields { field message } } } }""",
        {
            "i": {
                "email": "not-an-email",
                "password": "short",
                "tenantName": "x",
                "tenantSlug": "A!",
            }
        },
    )
    payload = data["signUp"]
    assert payload["__typename"] == "ValidationFailed"
    assert {f["field"] for f in payload["fields"]} == {"email", "password", "tenantSlug"}
    # the same slug as an existing tenant, or the same e-mail: refused, nothing created
    dup = await gql.ok(
        """mutation($i: SignUpInput!) { signUp(input: $i) { __typename
            ... on ValidationFailed { fields { field } } } }""",
        {
            "i": {
                "email": tenant.email,
                "password": "long enough pw",
                "tenantName": "dup",
                "tenantSlug": f"{tenant.slug}x",
            }
        },
    )
    assert dup["signUp"]["__typename"] == "ValidationFailed"
    from tenants.registry import get_tenant_by_slug

    assert await get_tenant_by_slug(f"{tenant.slug}x") is None


async def test_log_in_and_wrong_password(gql: GQL, tenant: Tenant) -> None:
    good = await gql.ok(LOG_IN, {"i": {"email": tenant.email.upper(), "password": tenant.password}})
    assert good["logIn"]["__typename"] == "AuthPayload"
    assert good["logIn"]["tenantSlug"] == tenant.slug
    bad = await gql.ok(LOG_IN, {"i": {"email": tenant.email, "password": "wrong password!"}})
    assert bad["logIn"] == {
        "__typename": "AuthenticationFailed",
        "code": "UNAUTHENTICATED",
        "message": "invalid e-mail or password",
    }
    unknown = await gql.ok(LOG_IN, {"i": {"email": "nobody@x.example", "password": "whatever12"}})
    assert unknown["logIn"]["__typename"] == "AuthenticationFailed"


async def test_refresh_rotates_and_reuse_revokes_the_family(gql: GQL, tenant: Tenant) -> None:
    first = (await gql.ok(REFRESH, {"t": tenant.refresh_token}))["refreshToken"]
    assert first["__typename"] == "AuthPayload"
    second = (await gql.ok(REFRESH, {"t": first["refreshToken"]}))["refreshToken"]
    assert second["__typename"] == "AuthPayload"
    # replaying a rotated token: refused, and the newest token of the family dies with it
    replay = (await gql.ok(REFRESH, {"t": tenant.refresh_token}))["refreshToken"]
    assert replay["__typename"] == "AuthenticationFailed"
    assert "reused" in replay["message"]
    after = (await gql.ok(REFRESH, {"t": second["refreshToken"]}))["refreshToken"]
    assert after["__typename"] == "AuthenticationFailed"
    garbage = (await gql.ok(REFRESH, {"t": "nonsense"}))["refreshToken"]
    assert garbage["__typename"] == "AuthenticationFailed"


async def test_expired_and_forged_tokens_get_401(gql: GQL, tenant: Tenant) -> None:
    s = get_settings()
    claims = jwt.decode(tenant.token, options={"verify_signature": False})
    common = {
        "issuer": s.jwt_issuer,
        "audience": s.jwt_audience,
        "user_id": int(claims["sub"]),
        "tenant_id": claims["tid"],
        "tenant_schema": claims["tsc"],
        "role": "owner",
    }
    expired, _ = issue_access_token(
        secret=s.secret_key, ttl_seconds=60, now=time.time() - 3600, **common
    )
    forged, _ = issue_access_token(
        secret="another-secret-0123456789abcdef0123", ttl_seconds=60, **common
    )
    none_alg = jwt.encode({**claims, "role": "owner"}, key="", algorithm="none")
    for token, message in [
        (expired, "access token expired"),
        (forged, "invalid access token"),
        (none_alg, "invalid access token"),
        ("not.a.jwt", "invalid access token"),
    ]:
        response = await gql.raw(INFLUENCERS, token=token)
        assert response.status_code == 401
        assert response.json()["errors"][0] == {
            "message": message,
            "extensions": {"code": "UNAUTHENTICATED"},
        }


async def test_anonymous_tenant_query_is_refused(gql: GQL) -> None:
    body = await gql(INFLUENCERS)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_x_tenant_picks_a_checked_membership(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    # the owner of A has no membership in B: naming B is refused, naming nothing or A works
    response = await gql.raw(
        INFLUENCERS, token=tenant.token, headers={"X-Tenant": other_tenant.slug}
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    unknown = await gql.raw(INFLUENCERS, token=tenant.token, headers={"X-Tenant": "no_such_tenant"})
    assert unknown.status_code == 403
    same = await gql.raw(INFLUENCERS, token=tenant.token, headers={"X-Tenant": tenant.slug})
    assert same.status_code == 200 and "errors" not in same.json()
    # give A's owner a viewer membership in B: X-Tenant now switches, with B's role
    from domain.accounts.models import Membership, User
    from tenants.models import Tenant as TenantRow
    from tenants.tx import public_tx

    async with public_tx():
        user = await User.get(email=tenant.email)
        await Membership.create(
            user=user, tenant=await TenantRow.get(slug=other_tenant.slug), role="viewer"
        )
    h = {"X-Tenant": other_tenant.slug}
    viewer = await gql.ok(VIEWER, token=tenant.token, headers=h)
    assert viewer["viewer"]["tenant"]["slug"] == other_tenant.slug
    assert viewer["viewer"]["role"] == "viewer"
    denied = await gql(
        'mutation { addInfluencer(input: {displayName: "x"}) { __typename } }',
        token=tenant.token,
        headers=h,
    )
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    login = await gql.ok(
        LOG_IN,
        {
            "i": {
                "email": tenant.email,
                "password": tenant.password,
                "tenantSlug": other_tenant.slug,
            }
        },
    )
    assert login["logIn"]["role"] == "viewer"
