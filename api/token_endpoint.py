"""POST /oauth/token: the OAuth 2.0 client credentials grant for partner apps.

RFC 6749 §4.4: `grant_type=client_credentials` and an optional `scope` (space-delimited, a
subset of the app's scopes; absent means all of them), form-encoded. The client authenticates
with HTTP Basic (§2.3.1: id and secret form-urlencoded, then base64) or with `client_id` and
`client_secret` in the body, never both. The answer (§5.1) is JSON `access_token`,
`token_type` ("Bearer"), `expires_in` and `scope`, with `Cache-Control: no-store`; errors
(§5.2) are JSON `error` + `error_description`: 400, or 401 with `WWW-Authenticate` for a
failed client authentication. The token is our JWT (HS256, `iss`/`aud`/`exp`) carrying
`client_id`, `scope` and the tenant; each API request re-checks that the app is not revoked.

Written by hand rather than with Authlib's AuthorizationServer: Authlib ships server
integrations for Flask and Django only, and this grant is one small, fully specified exchange.
Attempts are rate-limited per client IP and per client id (core/ratelimit.py): a refusal is a
429 with `Retry-After` and `error` "slow_down" (the registered OAuth error for "too fast").
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from urllib.parse import unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.ratelimit import auth_attempt, client_ip
from core.settings import Settings
from domain.apikeys.service import OAuthError, apikeys

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error(error: str, description: str, *, status: int = 400, basic: bool = False) -> Response:
    headers = dict(_NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="trendscope"' if basic else "Basic"
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


def token_endpoint(settings: Settings) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await _token(settings, request)

    return endpoint


async def _token(settings: Settings, request: Request) -> Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        return _error("invalid_request", "send application/x-www-form-urlencoded parameters")
    form = await request.form()
    params: dict[str, str] = {}
    for name in set(form.keys()):
        values = form.getlist(name)
        if len(values) > 1:  # §3.2: parameters must not be repeated
            return _error("invalid_request", f"parameter {name!r} is repeated")
        if isinstance(values[0], str):
            params[name] = values[0]

    authorization = request.headers.get("authorization")
    basic = authorization is not None
    if authorization is not None:
        creds = _basic_credentials(authorization)
        if creds is None:
            return _error("invalid_client", "malformed HTTP Basic credentials", status=401)
        if "client_secret" in params:
            return _error("invalid_request", "use one client authentication method, not two")
        client_id, secret = creds
    elif "client_id" in params and "client_secret" in params:
        client_id, secret = params["client_id"], params["client_secret"]
    else:
        return _error("invalid_client", "client authentication required", status=401)

    decision = await auth_attempt(settings, "token", client_ip(request.scope), client_id)
    if decision is not None and not decision.allowed:
        response = _error("slow_down", "too many token requests; retry later", status=429)
        for field, value in decision.headers():
            response.headers[field.decode()] = value.decode()
        return response

    grant = params.get("grant_type")
    if grant is None:
        return _error("invalid_request", "grant_type is required")
    if grant != "client_credentials":
        return _error("unsupported_grant_type", "only client_credentials is supported")
    try:
        token = await apikeys.client_credentials_token(
            settings, client_id, secret, params.get("scope")
        )
    except OAuthError as exc:
        status = 401 if exc.error == "invalid_client" else 400
        return _error(exc.error, exc.description, status=status, basic=basic)
    return JSONResponse(
        {
            "access_token": token.access_token,
            "token_type": "Bearer",
            "expires_in": token.expires_in,
            "scope": " ".join(sorted(token.scopes)),
        },
        headers=_NO_STORE,
    )
