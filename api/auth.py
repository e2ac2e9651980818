"""Authentication at the edge: the credential decides the tenant, never a bare header.

`AuthMiddleware` (pure ASGI) reads `Authorization: Bearer <jwt>` on HTTP requests and puts a
`Principal` in `scope["state"]`. A bad or expired token is answered 401 with a GraphQL-shaped
error and the request goes no further. `X-Tenant: <slug>` picks another of the user's tenants;
the membership is checked. Websockets authenticate in `connection_init` (schema view).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from api.settings import Settings
from domain.accounts import rules, tokens
from domain.accounts.service import Principal, accounts
from domain.errors import AuthenticationFailed, DomainError, PermissionDenied


async def principal_from_credentials(
    settings: Settings, authorization: str | None, x_tenant: str | None
) -> Principal | None:
    if not authorization:
        if x_tenant:
            raise AuthenticationFailed("X-Tenant needs an authenticated request")
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("expected 'Authorization: Bearer <token>'")
    try:
        claims = tokens.decode_access_token(
            token.strip(),
            secret=settings.secret_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
    except tokens.InvalidToken as exc:
        raise AuthenticationFailed(str(exc)) from exc
    if x_tenant and f"t_{x_tenant}" != claims.tenant_schema:
        if rules.check_slug(x_tenant) is not None:
            raise PermissionDenied(f"no membership in tenant {x_tenant!r}")
        return await accounts.principal_for(claims.user_id, x_tenant)
    return Principal(
        user_id=claims.user_id,
        tenant_id=claims.tenant_id,
        tenant_schema=claims.tenant_schema,
        role=claims.role,
        scopes=rules.scopes_for_role(claims.role),
    )


class AuthMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            principal = await principal_from_credentials(
                self.settings, headers.get("authorization"), headers.get("x-tenant")
            )
        except DomainError as exc:
            status = 403 if isinstance(exc, PermissionDenied) else 401
            body = json.dumps(
                {"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]}
            ).encode()
            extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        *extra,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
