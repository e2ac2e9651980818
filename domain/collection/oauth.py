"""OAuth 2.0 connection flows: the platform's consent screen instead of pasted tokens.

`start()` makes a random single-use state (kept in Redis for 10 minutes with the tenant schema,
the platform and the PKCE verifier) and the provider's authorization URL; `finish()` takes the
state back (GETDEL: a replay finds nothing), exchanges the code with Authlib and stores the
token through `ConnectionService.connect` in that tenant's transaction. See docs/connectors.md.

Tokens expire: X's user token after 2 hours (it comes with a rotating refresh token, kept with
it), Facebook's user token after about an hour (exchanged at once for a 60-day one).
`ensure_fresh()` renews an X token before a collection uses it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from redis.asyncio import Redis

from domain.collection.connections import connections
from domain.collection.connectors import CredentialBroken
from domain.collection.models import PlatformConnection
from tenants.models import Tenant
from tenants.tx import tenant_tx

STATE_TTL_SECONDS = 600
# Renew a token this long before it expires (a collection run must not start with a token
# that dies halfway).
REFRESH_MARGIN_SECONDS = 300


@dataclass(frozen=True)
class Provider:
    authorize_url: str
    token_url: str
    scope: str
    pkce: bool
    token_auth: str  # how the client authenticates at the token endpoint
    api_base_url: str = ""


PROVIDERS: Mapping[str, Provider] = {
    # X: OAuth 2.0 Authorization Code with PKCE; a confidential client uses HTTP Basic.
    "x": Provider(
        authorize_url="https://twitter.com/i/oauth2/authorize",
        token_url="https://api.x.com/2/oauth2/token",
        scope="tweet.read users.read offline.access",
        pkce=True,
        token_auth="client_secret_basic",
    ),
    # Instagram Graph API through Facebook Login; the Instagram business account id is read
    # from the pages the user granted.
    "instagram": Provider(
        authorize_url="https://www.facebook.com/v21.0/dialog/oauth",
        token_url="https://graph.facebook.com/v21.0/oauth/access_token",
        scope="instagram_basic,pages_show_list,pages_read_engagement",
        pkce=False,
        token_auth="client_secret_post",
        api_base_url="https://graph.facebook.com/v21.0",
    ),
}


class OAuthFlowError(Exception):
    """The flow cannot go on; the message is safe to show to the user."""


def _provider(
    platform: str, config: Mapping[str, Mapping[str, str]]
) -> tuple[Provider, dict[str, str]]:
    if platform not in PROVIDERS:
        raise OAuthFlowError(f"{platform} has no OAuth connection flow: use connectPlatform")
    conf = dict(config.get(platform) or {})
    if not conf.get("client_id") or not conf.get("client_secret"):
        raise OAuthFlowError(f"OAuth for {platform} is not configured on this server")
    base = PROVIDERS[platform]
    provider = Provider(
        authorize_url=conf.get("authorize_url", base.authorize_url),
        token_url=conf.get("token_url", base.token_url),
        scope=base.scope,
        pkce=base.pkce,
        token_auth=base.token_auth,
        api_base_url=conf.get("api_base_url", base.api_base_url),
    )
    return provider, conf


def _client(provider: Provider, conf: Mapping[str, str], redirect_uri: str) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=conf["client_id"],
        client_secret=conf["client_secret"],
        token_endpoint_auth_method=provider.token_auth,
        scope=provider.scope,
        redirect_uri=conf.get("redirect_uri", redirect_uri),
        code_challenge_method="S256" if provider.pkce else None,
        timeout=15,
    )


def _key(prefix: str, state: str) -> str:
    return f"{prefix}:oauth-state:{state}"


async def start(
    redis: Redis,
    *,
    key_prefix: str,
    config: Mapping[str, Mapping[str, str]],
    tenant_schema: str,
    platform: str,
    redirect_uri: str,
) -> str:
    """The authorization URL to send the user to; the state is remembered for 10 minutes."""
    provider, conf = _provider(platform, config)
    verifier = generate_token(64) if provider.pkce else None
    async with _client(provider, conf, redirect_uri) as client:
        url, state = client.create_authorization_url(
            provider.authorize_url, state=generate_token(32), code_verifier=verifier
        )
    record = {"schema": tenant_schema, "platform": platform, "verifier": verifier}
    await redis.set(_key(key_prefix, state), json.dumps(record), ex=STATE_TTL_SECONDS)
    return str(url)


async def _instagram_user_id(provider: Provider, access_token: str) -> str:
    async with httpx.AsyncClient(timeout=15) as http:
        response = await http.get(
            f"{provider.api_base_url}/me/accounts",
            params={"fields": "instagram_business_account", "access_token": access_token},
        )
    if response.status_code != 200:
        raise OAuthFlowError("Facebook refused to list the granted pages")
    for page in response.json().get("data", []):
        account = page.get("instagram_business_account") or {}
        if account.get("id"):
            return str(account["id"])
    raise OAuthFlowError("none of the granted Facebook pages has an Instagram business account")


def _expires_at(token: Mapping[str, Any]) -> dict[str, str]:
    expires_in = token.get("expires_in")
    if isinstance(expires_in, int | float) and expires_in > 0:
        return {"expires_at": str(int(time.time() + expires_in))}
    return {}


def _x_secrets(token: Mapping[str, Any]) -> dict[str, str]:
    # The X connector reads with a bearer token; a user-context OAuth 2.0 token works as one.
    secrets = {"bearer_token": str(token.get("access_token") or "")}
    if token.get("refresh_token"):
        secrets["refresh_token"] = str(token["refresh_token"])
    return secrets | _expires_at(token)


async def _long_lived_facebook_token(
    provider: Provider, conf: Mapping[str, str], short_lived: str
) -> dict[str, str]:
    """Facebook Login's token lasts about an hour; the documented exchange
    (`grant_type=fb_exchange_token`) gives a 60-day one, which the Instagram Graph API uses."""
    async with httpx.AsyncClient(timeout=15) as http:
        response = await http.get(
            provider.token_url,
            params={
                "grant_type": "fb_exchange_token",
                "client_id": conf["client_id"],
                "client_secret": conf["client_secret"],
                "fb_exchange_token": short_lived,
            },
        )
    body = (
        response.json()
        if response.headers.get("content-type", "").startswith("application/json")
        else {}
    )
    if response.status_code != 200 or not body.get("access_token"):
        raise OAuthFlowError("Facebook refused to exchange the token for a long-lived one")
    return {"access_token": str(body["access_token"])} | _expires_at(body)


def needs_refresh(secrets: Mapping[str, str], now: float | None = None) -> bool:
    """A renewable token (one with a refresh token) that expires within the margin."""
    expires_at = secrets.get("expires_at")
    if not secrets.get("refresh_token") or not expires_at:
        return False
    now = time.time() if now is None else now
    return float(expires_at) - now < REFRESH_MARGIN_SECONDS


async def ensure_fresh(
    tenant_schema: str,
    connection_id: int,
    secrets: dict[str, str],
    *,
    config: Mapping[str, Mapping[str, str]],
) -> dict[str, str]:
    """The credential's secrets, renewed first when its token is about to expire.

    The renewal runs under the connection's row lock: X rotates refresh tokens, so two jobs
    renewing at once would leave one holding a dead token. The second job finds the renewed
    secrets once the lock is free. A refused renewal marks the connection broken (the tenant is
    told, as for any refused credential) and raises CredentialBroken.
    """
    if not needs_refresh(secrets):
        return secrets
    refused: str | None = None
    async with tenant_tx(tenant_schema):
        conn = await PlatformConnection.filter(id=connection_id).select_for_update().get()
        current = connections.cipher.decrypt_json(conn.secret)
        if conn.status != "active":
            refused = f"the connection is {conn.status}"
        elif not needs_refresh(current):
            return current  # another job renewed it while we waited for the lock
        else:
            try:
                provider, conf = _provider(conn.platform, config)
                async with _client(provider, conf, redirect_uri="") as client:
                    token = await client.refresh_token(
                        provider.token_url, refresh_token=current["refresh_token"]
                    )
            except Exception as exc:  # invalid_grant, an HTTP failure, OAuth not configured
                refused = f"the token could not be renewed: {exc}"
                await connections.mark_broken(conn.platform, refused)
            else:
                renewed = _x_secrets(token)
                if not renewed["bearer_token"]:
                    refused = "the token endpoint returned no access token"
                    await connections.mark_broken(conn.platform, refused)
                else:
                    # A provider that does not rotate keeps the old refresh token valid.
                    renewed.setdefault("refresh_token", current["refresh_token"])
                    await connections.replace_secrets(conn, renewed)
                    return renewed
    raise CredentialBroken(conn.platform, refused or "the token could not be renewed")


async def finish(
    redis: Redis,
    *,
    key_prefix: str,
    config: Mapping[str, Mapping[str, str]],
    platform: str,
    state: str,
    code: str,
    redirect_uri: str,
) -> str:
    """Exchange the code and store the credential; returns the tenant schema it went to."""
    raw = await redis.getdel(_key(key_prefix, state)) if state else None
    if raw is None:
        raise OAuthFlowError("unknown, expired or already used state: start the connection again")
    record: dict[str, Any] = json.loads(raw)
    if record["platform"] != platform:
        raise OAuthFlowError("the state was issued for another platform")
    if not code:
        raise OAuthFlowError("the provider sent no authorization code")
    provider, conf = _provider(platform, config)
    async with _client(provider, conf, redirect_uri) as client:
        extra = {"code_verifier": record["verifier"]} if record.get("verifier") else {}
        try:
            token = await client.fetch_token(provider.token_url, code=code, **extra)
        except Exception as exc:  # Authlib OAuthError or HTTP failure: show, store nothing
            raise OAuthFlowError(f"the provider refused the code: {exc}") from exc
    access_token = str(token.get("access_token") or "")
    if not access_token:
        raise OAuthFlowError("the provider returned no access token")
    if platform == "x":
        secrets = _x_secrets(token)
    else:
        long_lived = await _long_lived_facebook_token(provider, conf, access_token)
        secrets = long_lived | {
            "ig_user_id": await _instagram_user_id(provider, long_lived["access_token"])
        }
    async with tenant_tx(record["schema"]):
        tenant = await Tenant.get(schema_name=record["schema"])
        await connections.connect(
            platform, secrets, label="oauth", tenant_id=tenant.id, via="oauth"
        )
    return str(record["schema"])
