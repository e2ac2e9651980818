"""Authentication at the edge: the credential decides the tenant, never a bare header.

`AuthMiddleware` (pure ASGI) reads `Authorization: Bearer <credential>` on HTTP requests and
puts a `Principal` in `scope["state"]`. The credential is a user's access token (JWT), an API
key (`tsk_...`) or a partner app's access token (JWT with `client_id`, from /oauth/token).
A bad or expired credential is answered 401 (403 when the plan lacks the partner API) with a
GraphQL-shaped error and the request goes no further. `X-Tenant: <slug>` picks another of the
user's tenants; the membership is checked. Websockets authenticate in `connection_init`
(api/graphql/ws.py).

A user's access token issued before their last revocation (log-out everywhere, password
reset, role change, removal) is refused: domain/accounts/sessions.py, at most one Redis GET
per user per `session_check_seconds` per process.
"""

from __future__ import annotations

import dataclasses

from starlette.types import ASGIApp, Receive, Scope, Send

from api.graphql.http_input import send_error
from core.settings import Settings
from domain.accounts import rules, tokens
from domain.accounts.service import Principal
from domain.accounts.sessions import sessions
from domain.accounts.users import users
from domain.apikeys.rules import looks_like_api_key
from domain.apikeys.service import apikeys
from domain.errors import AuthenticationFailed, DomainError, PermissionDenied, PlanLimitReached

# Paths that authenticate their callers themselves (the token endpoint: HTTP Basic client auth).
# /metrics: its own bearer token (METRICS_TOKEN, core/metrics.py), not a user's.
UNAUTHENTICATED_PATHS = frozenset({"/oauth/token", "/metrics"})


async def principal_from_credentials(
    settings: Settings, authorization: str | None, x_tenant: str | None
) -> Principal | None:
    if not authorization:
        if x_tenant:
            raise AuthenticationFailed("X-Tenant needs an authenticated request")
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed("expected 'Authorization: Bearer <token>'")
    if looks_like_api_key(token):
        principal = await apikeys.principal_for_key(settings, token)
        _no_other_tenant(principal, x_tenant)
        return principal
    try:
        claims = tokens.decode_bearer_token(
            token,
            secret=settings.secret_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
    except tokens.InvalidToken as exc:
        raise AuthenticationFailed(str(exc)) from exc
    if isinstance(claims, tokens.ClientClaims):
        principal = await apikeys.principal_for_client(claims)
        _no_other_tenant(principal, x_tenant)
        return dataclasses.replace(principal, expires_at=claims.expires_at)
    await sessions.check(settings, claims.user_id, claims.session_version)
    if x_tenant and f"t_{x_tenant}" != claims.tenant_schema:
        if rules.check_slug(x_tenant) is not None:
            raise PermissionDenied(f"no membership in tenant {x_tenant!r}")
        other = await users.principal_for(claims.user_id, x_tenant)
        return dataclasses.replace(
            other, expires_at=claims.expires_at, session_version=claims.session_version
        )
    return Principal(
        user_id=claims.user_id,
        tenant_id=claims.tenant_id,
        tenant_schema=claims.tenant_schema,
        role=claims.role,
        scopes=rules.scopes_for_role(claims.role),
        expires_at=claims.expires_at,
        session_version=claims.session_version,
    )


def _no_other_tenant(principal: Principal, x_tenant: str | None) -> None:
    """An API key or a partner app belongs to one tenant: `X-Tenant` may only repeat it."""
    if x_tenant and f"t_{x_tenant}" != principal.tenant_schema:
        raise PermissionDenied(f"this credential has no access to tenant {x_tenant!r}")


class AuthMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNAUTHENTICATED_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            principal = await principal_from_credentials(
                self.settings, headers.get("authorization"), headers.get("x-tenant")
            )
        except DomainError as exc:
            status = 403 if isinstance(exc, PermissionDenied | PlanLimitReached) else 401
            extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
            await send_error(send, status, exc.message, {"code": exc.code}, extra)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
