"""Provider sign-in (OpenID Connect and GitHub) against local fake providers over HTTP."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import asyncpg
import httpx
import pytest

from core.settings import SignInProvider, get_settings
from tests.conftest import GQL, Server, Services, Tenant
from tests.fakes.oidc import CLIENT_ID, CLIENT_SECRET, FakeProvider, GitHubUser, running_provider
from tests.members.test_members import AUDIT

APP = "https://app.trendscope.test"
COMPLETE = """mutation($c: String!, $t: String) { completeSignIn(code: $c, tenantSlug: $t) {
    __typename ... on AuthPayload { accessToken refreshToken tenantSlug role }
    ... on UserError { code message } } }"""
VIEWER = """{ viewer { user { id email emailVerifiedAt hasPassword } tenant { slug }
    identities { id provider email } } }"""
LINK_IDENTITY = """mutation($p: String!) { linkIdentity(provider: $p) { __typename
    ... on LinkIdentitySuccess { authorizationUrl } ... on UserError { code message } } }"""
COMPLETE_LINK = """mutation($c: String!) { completeIdentityLink(code: $c) { __typename
    ... on CompleteIdentityLinkSuccess { identity { id provider email } }
    ... on UserError { code message } } }"""
UNLINK = """mutation($id: ID!) { unlinkIdentity(id: $id) { __typename
    ... on UnlinkIdentitySuccess { id } ... on UserError { code message } } }"""


@pytest.fixture(scope="module")
async def provider() -> AsyncIterator[FakeProvider]:
    async with running_provider() as fake:
        yield fake


@pytest.fixture(autouse=True)
def configured(provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    monkeypatch.setattr(
        settings,
        "sign_in_providers",
        {
            "acme": SignInProvider(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                discovery_url=provider.discovery_url,
                display_name="Acme ID",
            ),
            "github": SignInProvider(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                authorize_url=f"{provider.url}/login/oauth/authorize",
                token_url=f"{provider.url}/login/oauth/access_token",
                api_base_url=provider.url,
            ),
        },
    )
    monkeypatch.setattr(settings, "app_url", APP)
    provider.token_requests.clear()
    provider.api_requests.clear()


class Browser:
    """One user agent: keeps its cookies (the sign-in binding) between requests."""

    def __init__(self, server: Server, http: httpx.AsyncClient) -> None:
        self.server = server
        self.http = http

    async def get(self, path: str, **params: str) -> httpx.Response:
        return await self.http.get(path, params=params, follow_redirects=False)

    async def login_url(self, provider: str = "acme") -> str:
        response = await self.get(f"/auth/{provider}/login")
        assert response.status_code == 302, response.text
        assert response.headers["cache-control"] == "no-store"
        return response.headers["location"]

    async def callback(self, redirect_uri: str, params: dict[str, str]) -> dict[str, str]:
        """Follow the provider's redirect to our callback; returns the app's query."""
        assert redirect_uri.startswith(self.server.url)
        response = await self.get(urlparse(redirect_uri).path, **params)
        assert response.status_code == 303, response.text
        target = urlparse(response.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == f"{APP}/auth/complete"
        return {k: v[0] for k, v in parse_qs(target.query).items()}


@pytest.fixture
async def browser(server: Server) -> AsyncIterator[Browser]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        yield Browser(server, http)


async def _sign_in(
    browser: Browser, provider: FakeProvider, *, subject: str, email: str | None, **kw: Any
) -> dict[str, str]:
    redirect_uri, params = provider.authorize(
        await browser.login_url(), subject=subject, email=email, **kw
    )
    return await browser.callback(redirect_uri, params)


async def _complete(gql: GQL, code: str, tenant_slug: str | None = None) -> dict[str, Any]:
    data = await gql.ok(COMPLETE, {"c": code, "t": tenant_slug})
    return data["completeSignIn"]  # type: ignore[no-any-return]


async def _user_count(services: Services, email: str) -> int:
    conn = await asyncpg.connect(services.database_url)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM public.user_account WHERE email = $1", email)
        )
    finally:
        await conn.close()


async def test_oidc_login_creates_an_account_then_signs_it_in_again(
    browser: Browser, gql: GQL, server: Server, provider: FakeProvider
) -> None:
    url = await browser.login_url()
    query = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
    assert query["redirect_uri"] == f"{server.url}/auth/acme/callback"
    assert query["scope"] == "openid email profile"
    assert query["code_challenge_method"] == "S256"
    redirect_uri, params = provider.authorize(
        url, subject="acme-100", email="Ana@Acme.test", name="Ana Lima"
    )
    done = await browser.callback(redirect_uri, params)
    assert set(done) == {"code"}  # no token in the URL, only the one-time code

    [sent] = provider.token_requests
    verifier = sent["form"]["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert query["code_challenge"] == challenge.decode()
    assert sent["form"]["redirect_uri"] == redirect_uri
    assert (
        sent["auth"]
        == "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    )

    pair = await _complete(gql, done["code"])
    assert pair["__typename"] == "AuthPayload" and pair["role"] == "owner"
    assert pair["tenantSlug"].startswith("ana_")
    viewer = (await gql.ok(VIEWER, token=pair["accessToken"]))["viewer"]
    assert viewer["user"]["email"] == "ana@acme.test"
    assert viewer["user"]["emailVerifiedAt"] is not None
    assert viewer["user"]["hasPassword"] is False
    assert [(i["provider"], i["email"]) for i in viewer["identities"]] == [
        ("acme", "Ana@Acme.test")
    ]
    replay = await _complete(gql, done["code"])
    assert replay["__typename"] == "AuthenticationFailed"

    again = await _sign_in(browser, provider, subject="acme-100", email="ana@acme.test")
    second = await _complete(gql, again["code"])
    assert second["tenantSlug"] == pair["tenantSlug"]
    second_viewer = (await gql.ok(VIEWER, token=second["accessToken"]))["viewer"]
    assert second_viewer["user"]["id"] == viewer["user"]["id"]
    # each provider sign-in is in the tenant's audit log
    log = await gql.ok(AUDIT, {"a": "auth.sign_in_succeeded"}, token=pair["accessToken"])
    methods = [e["node"]["metadata"] for e in log["auditLog"]["edges"]]
    assert methods == [{"method": "provider", "provider": "acme"}] * 2


async def test_wrong_and_replayed_state_are_refused(
    browser: Browser, server: Server, provider: FakeProvider, services: Services
) -> None:
    redirect_uri, params = provider.authorize(
        await browser.login_url(), subject="acme-200", email="state@acme.test"
    )
    wrong = await browser.callback(redirect_uri, {**params, "state": "not-the-state"})
    assert wrong["error"] == "invalid_request" and "state" in wrong["error_description"]
    assert provider.token_requests == []  # refused before the code was spent
    ok = await browser.callback(redirect_uri, params)
    assert "code" in ok
    replay = await browser.callback(redirect_uri, params)
    assert replay["error"] == "invalid_request"
    assert "already used" in replay["error_description"]
    assert len(provider.token_requests) == 1


async def test_replayed_code_is_refused(
    browser: Browser, server: Server, provider: FakeProvider
) -> None:
    redirect_uri, params = provider.authorize(
        await browser.login_url(), subject="acme-300", email="code@acme.test"
    )
    assert "code" in await browser.callback(redirect_uri, params)
    # the same code with a fresh, valid state: the provider refuses it (single use)
    _, fresh = provider.authorize(
        await browser.login_url(), subject="acme-300", email="code@acme.test"
    )
    replay = await browser.callback(redirect_uri, {"code": params["code"], "state": fresh["state"]})
    assert replay["error"] == "access_denied"
    assert "invalid_grant" in replay["error_description"]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"nonce": "another-nonce"}, "'nonce'"),
        ({"aud": "someone-else"}, "'aud'"),
        ({"iss": "https://evil.example"}, "'iss'"),
        ({"exp": 1_000_000_000}, "expired"),
        ({"foreign_key": True}, "bad_signature"),
        ({"hs256": True}, "HS256"),
    ],
    ids=["wrong-nonce", "wrong-aud", "wrong-iss", "expired", "bad-signature", "hs256"],
)
async def test_bad_id_tokens_are_refused(
    browser: Browser,
    gql: GQL,
    server: Server,
    provider: FakeProvider,
    services: Services,
    tamper: dict[str, Any],
    reason: str,
) -> None:
    email = f"tamper-{next(iter(tamper))}@acme.test"
    done = await _sign_in(browser, provider, subject=f"t-{email}", email=email, **tamper)
    assert done["error"] == "access_denied", done
    assert done["error_description"].startswith("the ID token is not valid")
    assert reason in done["error_description"]
    assert await _user_count(services, email) == 0


async def test_unverified_or_missing_provider_email_creates_nothing(
    browser: Browser, server: Server, provider: FakeProvider, services: Services
) -> None:
    done = await _sign_in(
        browser, provider, subject="acme-400", email="unverified@acme.test", email_verified=False
    )
    assert done["error"] == "access_denied"
    assert await _user_count(services, "unverified@acme.test") == 0
    none = await _sign_in(browser, provider, subject="acme-401", email=None)
    assert none["error"] == "access_denied"


async def test_thin_id_token_is_completed_from_userinfo_with_the_same_subject(
    browser: Browser, gql: GQL, provider: FakeProvider, services: Services
) -> None:
    done = await _sign_in(browser, provider, subject="acme-450", email="thin@acme.test", thin=True)
    pair = await _complete(gql, done["code"])
    viewer = (await gql.ok(VIEWER, token=pair["accessToken"]))["viewer"]
    assert viewer["user"]["email"] == "thin@acme.test"
    # UserInfo answering for another subject is ignored: no verified address, no account
    other = await _sign_in(
        browser,
        provider,
        subject="acme-451",
        email="mixup@acme.test",
        thin=True,
        userinfo_sub="someone-else",
    )
    assert other["error"] == "access_denied"
    assert await _user_count(services, "mixup@acme.test") == 0


async def test_existing_account_is_matched_by_verified_email_only(
    browser: Browser,
    gql: GQL,
    server: Server,
    provider: FakeProvider,
    services: Services,
    tenant: Tenant,
) -> None:
    refused = await _sign_in(browser, provider, subject="acme-500", email=tenant.email)
    assert refused["error"] == "access_denied"
    assert "not verified" in refused["error_description"]
    conn = await asyncpg.connect(services.database_url)
    try:
        await conn.execute(
            "UPDATE public.user_account SET email_verified_at = now() WHERE email = $1",
            tenant.email,
        )
    finally:
        await conn.close()
    done = await _sign_in(browser, provider, subject="acme-500", email=tenant.email)
    pair = await _complete(gql, done["code"])
    assert pair["tenantSlug"] == tenant.slug
    viewer = (await gql.ok(VIEWER, token=pair["accessToken"]))["viewer"]
    assert [i["provider"] for i in viewer["identities"]] == ["acme"]
    assert viewer["user"]["hasPassword"] is True


async def _start_link(gql: GQL, user: Tenant) -> str:
    start = (await gql.ok(LINK_IDENTITY, {"p": "acme"}, token=user.token))["linkIdentity"]
    assert start["__typename"] == "LinkIdentitySuccess", start
    return str(start["authorizationUrl"])


async def test_link_sign_in_and_unlink(
    browser: Browser,
    gql: GQL,
    server: Server,
    provider: FakeProvider,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    redirect_uri, params = provider.authorize(
        await _start_link(gql, tenant), subject="acme-600", email="elsewhere@acme.test"
    )
    ready = await browser.callback(redirect_uri, params)
    assert set(ready) == {"link_code", "provider"} and ready["provider"] == "acme"
    done = await gql.ok(COMPLETE_LINK, {"c": ready["link_code"]}, token=tenant.token)
    linked = done["completeIdentityLink"]
    assert linked["__typename"] == "CompleteIdentityLinkSuccess"
    assert linked["identity"]["provider"] == "acme"
    viewer = (await gql.ok(VIEWER, token=tenant.token))["viewer"]
    [identity] = viewer["identities"]
    assert identity == linked["identity"]
    assert identity["email"] == "elsewhere@acme.test"
    again = await gql.ok(COMPLETE_LINK, {"c": ready["link_code"]}, token=tenant.token)
    assert again["completeIdentityLink"]["__typename"] == "ValidationFailed"

    # the linked identity now signs this user in, into their tenant
    signed = await _sign_in(browser, provider, subject="acme-600", email="elsewhere@acme.test")
    pair = await _complete(gql, signed["code"])
    assert pair["tenantSlug"] == tenant.slug

    # another user cannot take the same provider account, reach A's tenant or unlink A's identity
    redirect_uri, params = provider.authorize(
        await _start_link(gql, other_tenant), subject="acme-600", email="elsewhere@acme.test"
    )
    ready = await browser.callback(redirect_uri, params)
    taken = await gql.ok(COMPLETE_LINK, {"c": ready["link_code"]}, token=other_tenant.token)
    assert taken["completeIdentityLink"]["__typename"] == "PermissionDenied"
    assert "another user" in taken["completeIdentityLink"]["message"]
    other_viewer = (await gql.ok(VIEWER, token=other_tenant.token))["viewer"]
    assert other_viewer["identities"] == []
    foreign = await gql.ok(UNLINK, {"id": identity["id"]}, token=other_tenant.token)
    assert foreign["unlinkIdentity"]["__typename"] == "NotFound"
    signed = await _sign_in(browser, provider, subject="acme-600", email="elsewhere@acme.test")
    cross = await _complete(gql, signed["code"], other_tenant.slug)
    assert cross["__typename"] == "PermissionDenied"

    unlinked = await gql.ok(UNLINK, {"id": identity["id"]}, token=tenant.token)
    assert unlinked["unlinkIdentity"] == {
        "__typename": "UnlinkIdentitySuccess",
        "id": identity["id"],
    }
    assert (await gql.ok(VIEWER, token=tenant.token))["viewer"]["identities"] == []


async def test_a_forwarded_link_or_login_does_not_work_for_someone_else(
    browser: Browser,
    gql: GQL,
    server: Server,
    provider: FakeProvider,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    """Login CSRF and its linking twin: an attacker starts a flow and gets a victim to finish
    it (the victim's browser follows the attacker's callback or link URL)."""
    # link: A starts it, B's browser finishes and B's app completes it -> refused
    redirect_uri, params = provider.authorize(
        await _start_link(gql, tenant), subject="acme-900", email="victim@acme.test"
    )
    ready = await browser.callback(redirect_uri, params)
    stolen = await gql.ok(COMPLETE_LINK, {"c": ready["link_code"]}, token=other_tenant.token)
    assert stolen["completeIdentityLink"]["__typename"] == "PermissionDenied"
    assert (await gql.ok(VIEWER, token=tenant.token))["viewer"]["identities"] == []
    # login: the attacker's browser starts, the victim's browser (no cookie) calls back
    redirect_uri, params = provider.authorize(
        await browser.login_url(), subject="acme-901", email="attacker@acme.test"
    )
    async with httpx.AsyncClient(base_url=server.url) as http:
        victim = Browser(server, http)
        refused = await victim.callback(redirect_uri, params)
    assert refused["error"] == "invalid_request"
    assert "another browser" in refused["error_description"]


async def test_only_sign_in_method_cannot_be_unlinked(
    browser: Browser, gql: GQL, server: Server, provider: FakeProvider
) -> None:
    done = await _sign_in(browser, provider, subject="acme-700", email="only@acme.test")
    pair = await _complete(gql, done["code"])
    viewer = (await gql.ok(VIEWER, token=pair["accessToken"]))["viewer"]
    refused = await gql.ok(UNLINK, {"id": viewer["identities"][0]["id"]}, token=pair["accessToken"])
    assert refused["unlinkIdentity"]["__typename"] == "ValidationFailed"
    after = (await gql.ok(VIEWER, token=pair["accessToken"]))["viewer"]
    assert len(after["identities"]) == 1


async def test_github_flow(
    browser: Browser, gql: GQL, server: Server, provider: FakeProvider
) -> None:
    url = await browser.login_url("github")
    query = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
    assert query["scope"] == "read:user user:email"
    assert query["redirect_uri"] == f"{server.url}/auth/github/callback"
    assert query["code_challenge_method"] == "S256" and "nonce" not in query
    user = GitHubUser(
        id=583231,
        login="octocat",
        name="The Octocat",
        emails=[
            {"email": "old@gh.test", "primary": False, "verified": False, "visibility": None},
            {"email": "octocat@gh.test", "primary": True, "verified": True, "visibility": "public"},
        ],
    )
    redirect_uri, params = provider.authorize_github(url, user)
    done = await browser.callback(redirect_uri, params)
    [sent] = provider.token_requests
    assert sent["form"]["client_secret"] == CLIENT_SECRET  # client_secret_post, as GitHub wants
    assert {r["path"] for r in provider.api_requests} == {"/user", "/user/emails"}
    assert all(r["auth"].startswith("Bearer gho_") for r in provider.api_requests)
    pair = await _complete(gql, done["code"])
    viewer = (await gql.ok(VIEWER, token=pair["accessToken"]))["viewer"]
    assert viewer["user"]["email"] == "octocat@gh.test"
    assert [i["provider"] for i in viewer["identities"]] == ["github"]

    # a bad code is refused (GitHub answers 200 with an error body)
    redirect_uri, params = provider.authorize_github(await browser.login_url("github"), user)
    bad = await browser.callback(redirect_uri, {**params, "code": "bogus"})
    assert bad["error"] == "access_denied"


async def test_denied_consent_and_unknown_provider(
    browser: Browser, gql: GQL, server: Server, provider: FakeProvider
) -> None:
    url = await browser.login_url()
    state = parse_qs(urlparse(url).query)["state"][0]
    denied = await browser.callback(
        f"{server.url}/auth/acme/callback",
        {"error": "access_denied", "error_description": "The user said no", "state": state},
    )
    assert denied == {"error": "access_denied", "error_description": "The user said no"}
    # the state is burned
    redirect_uri, params = provider.authorize(url, subject="acme-800", email="no@acme.test")
    assert (await browser.callback(redirect_uri, params))["error"] == "invalid_request"
    unknown = await browser.get("/auth/nowhere/login")
    assert unknown.status_code == 404
    providers = await gql.ok("{ signInProviders { name displayName loginUrl } }")
    assert providers["signInProviders"] == [
        {"name": "acme", "displayName": "Acme ID", "loginUrl": f"{server.url}/auth/acme/login"},
        {"name": "github", "displayName": "GitHub", "loginUrl": f"{server.url}/auth/github/login"},
    ]


async def test_a_discovery_document_naming_another_issuer_is_refused(
    browser: Browser, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    impostor = SignInProvider(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        discovery_url=f"{provider.url}/impostor/.well-known/openid-configuration",
    )
    monkeypatch.setitem(settings.sign_in_providers, "impostor", impostor)
    response = await browser.get("/auth/impostor/login")
    assert response.status_code == 503
    assert "another issuer" in response.json()["message"]


async def test_a_rotated_signing_key_is_fetched_again(
    browser: Browser, gql: GQL, provider: FakeProvider
) -> None:
    first = await _sign_in(browser, provider, subject="acme-1000", email="rotate@acme.test")
    assert "code" in first  # the JWKS with the current key is cached now
    provider.rotate_key("test-key-rotated")
    second = await _sign_in(browser, provider, subject="acme-1000", email="rotate@acme.test")
    assert "code" in second, second
    assert (await _complete(gql, second["code"]))["__typename"] == "AuthPayload"
