"""Sign-in through OAuth 2.0 / OpenID Connect providers (Authlib), docs/authentication.md.

`start()` makes a single-use state record (state, PKCE S256 verifier, nonce, the exact
redirect URI, the intent: sign in, or link to a signed-in user, and the hash of the starting
browser's binding secret) kept in Redis for `sign_in_state_ttl_seconds`, and returns the
provider's authorization URL. `finish()` takes the record back with GETDEL (a replay finds
nothing), checks the binding, exchanges the code with Authlib's client (PKCE verifier, the
same redirect URI) and returns who the provider says the user is:

- OpenID Connect (Google, any issuer by discovery URL): the ID token is verified with the
  issuer's JWKS (asymmetric algorithms the issuer announces only), then `iss`, `aud`
  (our client id), `exp`, `iat`, `sub` are required and checked, `nonce` must equal ours,
  `at_hash` is checked when present (Authlib's `CodeIDToken`).
- GitHub (OAuth 2.0, no ID token): `GET /user` for the numeric id, `GET /user/emails` for a
  verified address.

What happens next (sign in, create, link) is identities.py's business; the browser
carries back only a one-time handoff code (`issue_handoff_code` / `take_handoff_code`).
"""

from __future__ import annotations

import hmac
import json
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from redis.asyncio import Redis

from core.settings import Settings
from domain.accounts.tokens import hash_refresh_token

Intent = Literal["login", "link"]

# Presets: only client_id and client_secret need configuring for these names.
PRESETS: dict[str, dict[str, str]] = {
    "google": {
        "kind": "oidc",
        "discovery_url": "https://accounts.google.com/.well-known/openid-configuration",
        "scope": "openid email profile",
        "display_name": "Google",
    },
    "github": {
        "kind": "github",
        "authorize_url": "https://github.com/login/oauth/authorize",
        "token_url": "https://github.com/login/oauth/access_token",
        "api_base_url": "https://api.github.com",
        "scope": "read:user user:email",
        "display_name": "GitHub",
    },
}
OIDC_SCOPE = "openid email profile"
WELL_KNOWN = "/.well-known/openid-configuration"
# Never a symmetric algorithm for an ID token: the key would be our client secret.
ASYMMETRIC_ALGS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
METADATA_TTL_SECONDS = 3600.0
ID_TOKEN_LEEWAY_SECONDS = 60


class SignInError(Exception):
    """The flow cannot go on; the message is safe to show to the user."""

    def __init__(self, message: str, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Provider:
    name: str
    kind: Literal["oidc", "github"]
    display_name: str
    client_id: str
    client_secret: str
    scope: str
    authorize_url: str
    token_url: str
    token_auth: str  # client_secret_basic | client_secret_post
    issuer: str | None = None
    jwks_uri: str | None = None
    id_token_algs: tuple[str, ...] = ("RS256",)
    userinfo_url: str | None = None
    api_base_url: str | None = None
    redirect_uri: str | None = None


@dataclass(frozen=True)
class ExternalIdentity:
    """Who the provider says signed in."""

    provider: str
    subject: str
    email: str | None
    email_verified: bool
    name: str


@dataclass(frozen=True)
class FlowResult:
    intent: Intent
    user_id: int | None  # the signed-in user who asked to link (intent "link")
    identity: ExternalIdentity


_metadata_cache: dict[str, tuple[float, dict[str, Any]]] = {}


async def _get_json(url: str, *, force: bool = False) -> dict[str, Any]:
    """GET a JSON document (discovery, JWKS), cached for an hour per process."""
    cached = _metadata_cache.get(url)
    if cached and not force and time.monotonic() - cached[0] < METADATA_TTL_SECONDS:
        return cached[1]
    try:
        async with httpx.AsyncClient(timeout=15) as http:
            response = await http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SignInError(f"the provider's {url} could not be read", "server_error") from exc
    if not isinstance(document, dict):
        raise SignInError(f"the provider's {url} is not a JSON object", "server_error")
    _metadata_cache[url] = (time.monotonic(), document)
    return document


async def provider_for(settings: Settings, name: str) -> Provider:
    """The provider `name` from settings, preset and discovery document merged."""
    conf = settings.sign_in_providers.get(name)
    if conf is None:
        raise SignInError(f"sign-in with {name!r} is not configured on this server", "not_found")
    preset = PRESETS.get(name, {})
    kind = conf.kind or ("github" if preset.get("kind") == "github" else "oidc")
    display = conf.display_name or preset.get("display_name") or name
    if kind == "github":
        return Provider(
            name=name,
            kind="github",
            display_name=display,
            client_id=conf.client_id,
            client_secret=conf.client_secret,
            scope=conf.scope or PRESETS["github"]["scope"],
            authorize_url=conf.authorize_url or PRESETS["github"]["authorize_url"],
            token_url=conf.token_url or PRESETS["github"]["token_url"],
            token_auth="client_secret_post",
            api_base_url=(conf.api_base_url or PRESETS["github"]["api_base_url"]).rstrip("/"),
            redirect_uri=conf.redirect_uri,
        )
    discovery_url = conf.discovery_url or preset.get("discovery_url")
    if not discovery_url:
        raise SignInError(f"sign-in provider {name!r} needs a discovery_url", "server_error")
    meta = await _get_json(discovery_url)
    for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not meta.get(key):
            raise SignInError(f"{name}'s discovery document has no {key}", "server_error")
    # OIDC Discovery 4.3: the issuer must be the URL the document was fetched under.
    if f"{str(meta['issuer']).rstrip('/')}{WELL_KNOWN}" != discovery_url:
        raise SignInError(f"{name}'s discovery document names another issuer", "server_error")
    methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    announced = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
    algs = tuple(a for a in announced if a in ASYMMETRIC_ALGS) or ("RS256",)
    return Provider(
        name=name,
        kind="oidc",
        display_name=display,
        client_id=conf.client_id,
        client_secret=conf.client_secret,
        scope=conf.scope or preset.get("scope") or OIDC_SCOPE,
        authorize_url=conf.authorize_url or str(meta["authorization_endpoint"]),
        token_url=conf.token_url or str(meta["token_endpoint"]),
        token_auth=(
            "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"
        ),
        issuer=str(meta["issuer"]),
        jwks_uri=str(meta["jwks_uri"]),
        id_token_algs=algs,
        userinfo_url=str(meta["userinfo_endpoint"]) if meta.get("userinfo_endpoint") else None,
        redirect_uri=conf.redirect_uri,
    )


def redirect_uri_for(settings: Settings, name: str, request_default: str) -> str:
    """The exact redirect URI for `name`: configured, or derived from `public_url`."""
    conf = settings.sign_in_providers.get(name)
    if conf is not None and conf.redirect_uri:
        return conf.redirect_uri
    if settings.public_url:
        return f"{settings.public_url.rstrip('/')}/auth/{name}/callback"
    if settings.is_production:
        raise SignInError("PUBLIC_URL is not set: no redirect URI to offer", "server_error")
    return request_default


def _client(provider: Provider, redirect_uri: str) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        token_endpoint_auth_method=provider.token_auth,
        scope=provider.scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=15,
    )


def _state_key(settings: Settings, state: str) -> str:
    return f"{settings.quota_key_prefix}:signin-state:{state}"


async def start(
    redis: Redis,
    settings: Settings,
    *,
    provider_name: str,
    redirect_uri: str,
    intent: Intent = "login",
    user_id: int | None = None,
    binding: str | None = None,
) -> tuple[str, str]:
    """(authorization URL to send the browser to, state); the state lives in Redis until used.

    `binding` is a secret the starting browser keeps (a cookie): `finish` refuses a callback
    that does not present it, so a victim cannot be made to complete an attacker's sign-in
    (login CSRF)."""
    provider = await provider_for(settings, provider_name)
    verifier = generate_token(64)
    state = generate_token(32)
    extra: dict[str, str] = {}
    nonce = None
    if provider.kind == "oidc":
        nonce = generate_token(32)
        extra["nonce"] = nonce
    async with _client(provider, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            provider.authorize_url, state=state, code_verifier=verifier, **extra
        )
    record = {
        "provider": provider_name,
        "verifier": verifier,
        "nonce": nonce,
        "redirect_uri": redirect_uri,
        "intent": intent,
        "user_id": user_id,
        "binding": hash_refresh_token(binding) if binding else None,
    }
    await redis.set(
        _state_key(settings, state), json.dumps(record), ex=settings.sign_in_state_ttl_seconds
    )
    return str(url), state


async def discard_state(redis: Redis, settings: Settings, state: str) -> None:
    """Forget a state the provider answered with an error (consent refused)."""
    if state:
        await redis.delete(_state_key(settings, state))


async def finish(
    redis: Redis,
    settings: Settings,
    *,
    provider_name: str,
    state: str,
    code: str,
    binding: str | None = None,
) -> FlowResult:
    raw = await redis.getdel(_state_key(settings, state)) if state else None
    if raw is None:
        raise SignInError("unknown, expired or already used state: sign in again")
    record: dict[str, Any] = json.loads(raw)
    if record["provider"] != provider_name:
        raise SignInError("the state was issued for another provider")
    expected = record.get("binding")
    if expected is not None and not (
        binding and hmac.compare_digest(expected, hash_refresh_token(binding))
    ):
        raise SignInError("this sign-in was started in another browser: sign in again")
    if not code:
        raise SignInError("the provider sent no authorization code")
    provider = await provider_for(settings, provider_name)
    async with _client(provider, record["redirect_uri"]) as client:
        try:
            token = await client.fetch_token(
                provider.token_url, code=code, code_verifier=record["verifier"]
            )
        except Exception as exc:  # Authlib OAuthError or HTTP failure
            raise SignInError(f"the provider refused the code: {exc}", "access_denied") from exc
        access_token = str(token.get("access_token") or "")
        if not access_token:
            raise SignInError("the provider returned no access token", "access_denied")
        if provider.kind == "github":
            identity = await _github_identity(provider, client)
        else:
            identity = await _oidc_identity(provider, dict(token), record.get("nonce"))
            if identity.email is None and provider.userinfo_url:
                identity = await _with_userinfo(provider, client, identity)
    return FlowResult(
        intent="link" if record.get("intent") == "link" else "login",
        user_id=record.get("user_id"),
        identity=identity,
    )


async def _oidc_identity(
    provider: Provider, token: dict[str, Any], nonce: str | None
) -> ExternalIdentity:
    id_token = token.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise SignInError("the provider returned no ID token", "access_denied")
    if not nonce or provider.issuer is None or provider.jwks_uri is None:
        raise SignInError("the sign-in was not started as OpenID Connect")
    registry = JWSRegistry(algorithms=list(provider.id_token_algs))
    try:
        try:
            keys = KeySet.import_key_set(await _get_json(provider.jwks_uri))  # type: ignore[arg-type]
            decoded = jwt.decode(id_token, keys, registry=registry)
        except InvalidKeyIdError:  # the issuer rotated its keys since we cached them
            keys = KeySet.import_key_set(await _get_json(provider.jwks_uri, force=True))  # type: ignore[arg-type]
            decoded = jwt.decode(id_token, keys, registry=registry)
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {
                "iss": {"essential": True, "value": provider.issuer},
                "aud": {"essential": True, "value": provider.client_id},
                "sub": {"essential": True},
                "exp": {"essential": True},
                "iat": {"essential": True},
            },
            {
                "nonce": nonce,
                "client_id": provider.client_id,
                "access_token": token.get("access_token"),
            },
        )
        claims.validate(leeway=ID_TOKEN_LEEWAY_SECONDS)
    except (JoseError, ValueError) as exc:
        raise SignInError(f"the ID token is not valid: {exc}", "access_denied") from exc
    email = claims.get("email")
    return ExternalIdentity(
        provider=provider.name,
        subject=str(claims["sub"]),
        email=str(email) if isinstance(email, str) and email else None,
        email_verified=claims.get("email_verified") is True,
        name=str(claims.get("name") or ""),
    )


async def _with_userinfo(
    provider: Provider, client: AsyncOAuth2Client, identity: ExternalIdentity
) -> ExternalIdentity:
    """Issuers that keep ID tokens thin (no `email`) answer at the UserInfo endpoint; its
    claims count only if its `sub` is the ID token's (OIDC Core 5.3.2)."""
    response = await client.get(provider.userinfo_url, headers={"Accept": "application/json"})
    info = response.json() if response.status_code == 200 else {}
    if not isinstance(info, dict) or str(info.get("sub")) != identity.subject:
        return identity
    email = info.get("email")
    return ExternalIdentity(
        provider=identity.provider,
        subject=identity.subject,
        email=str(email) if isinstance(email, str) and email else None,
        email_verified=info.get("email_verified") is True,
        name=identity.name or str(info.get("name") or ""),
    )


async def _github_identity(provider: Provider, client: AsyncOAuth2Client) -> ExternalIdentity:
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    user = await client.get(f"{provider.api_base_url}/user", headers=headers)
    if user.status_code != 200:
        raise SignInError("GitHub refused to read the user", "access_denied")
    profile = user.json()
    if not isinstance(profile, dict) or not profile.get("id"):
        raise SignInError("GitHub returned no user id", "access_denied")
    emails = await client.get(f"{provider.api_base_url}/user/emails", headers=headers)
    listed = emails.json() if emails.status_code == 200 else []
    verified = [e for e in listed if isinstance(e, dict) and e.get("verified") and e.get("email")]
    verified.sort(key=lambda e: not e.get("primary"))  # the primary address first
    return ExternalIdentity(
        provider=provider.name,
        subject=str(profile["id"]),
        email=str(verified[0]["email"]) if verified else None,
        email_verified=bool(verified),
        name=str(profile.get("name") or profile.get("login") or ""),
    )


HandoffKind = Literal["login", "link"]


def _code_key(settings: Settings, kind: HandoffKind, code_hash: str) -> str:
    return f"{settings.quota_key_prefix}:signin-{kind}-code:{code_hash}"


async def issue_handoff_code(
    redis: Redis, settings: Settings, kind: HandoffKind, payload: dict[str, Any]
) -> str:
    """A one-time code the web app trades with a mutation (`completeSignIn` for "login",
    `completeIdentityLink` for "link"); only its hash is a Redis key, and it lives
    `sign_in_code_ttl_seconds`."""
    code = generate_token(43)
    await redis.set(
        _code_key(settings, kind, hash_refresh_token(code)),
        json.dumps(payload),
        ex=settings.sign_in_code_ttl_seconds,
    )
    return code


async def take_handoff_code(
    redis: Redis, settings: Settings, kind: HandoffKind, code: str
) -> dict[str, Any] | None:
    """The payload the code was issued with (once), or None."""
    if not code or len(code) > 200:
        return None
    raw = await redis.getdel(_code_key(settings, kind, hash_refresh_token(code)))
    if raw is None:
        return None
    payload: dict[str, Any] = json.loads(raw)
    return payload


def identity_to_dict(identity: ExternalIdentity) -> dict[str, Any]:
    return asdict(identity)


def identity_from_dict(data: dict[str, Any]) -> ExternalIdentity:
    return ExternalIdentity(
        provider=str(data["provider"]),
        subject=str(data["subject"]),
        email=data.get("email"),
        email_verified=bool(data.get("email_verified")),
        name=str(data.get("name") or ""),
    )
