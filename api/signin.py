"""Provider sign-in over the browser: GET /auth/{provider}/login and /auth/{provider}/callback.

`login` redirects to the provider (state, nonce and PKCE verifier kept server-side in Redis,
single use). `callback` finishes the flow (domain/accounts/oidc.py), signs the user in, creates
them, or links the identity (when the flow was started by `startIdentityLink`), then redirects
the browser to the web app at `<app_url>/auth/complete` with:

- `?code=<one-time code>` after a sign-in: the app trades it for tokens with the
  `completeSignIn` mutation (so tokens never sit in a URL, a history or a log);
- `?linked=<provider>` after a link;
- `?error=<code>&error_description=<text>` when anything was refused.
"""

from __future__ import annotations

from urllib.parse import urlencode

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from api.settings import Settings, get_settings
from domain.accounts import oidc
from domain.accounts.service import accounts
from domain.errors import DomainError

log = structlog.get_logger(__name__)

NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _complete(settings: Settings, **params: str) -> RedirectResponse:
    url = f"{settings.app_url.rstrip('/')}/auth/complete?{urlencode(params)}"
    return RedirectResponse(url, status_code=303, headers=NO_STORE)


async def sign_in_login(request: Request) -> Response:
    provider = request.path_params["provider"]
    settings = get_settings()
    try:
        redirect_uri = oidc.redirect_uri_for(
            settings, provider, str(request.url_for("sign_in_callback", provider=provider))
        )
        url = await oidc.start(
            request.app.state.redis,
            settings,
            provider_name=provider,
            redirect_uri=redirect_uri,
        )
    except oidc.SignInError as exc:
        status = 404 if exc.code == "not_found" else 503
        return JSONResponse({"error": exc.code, "message": str(exc)}, status_code=status)
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


async def sign_in_callback(request: Request) -> Response:
    provider = request.path_params["provider"]
    params = request.query_params
    settings = get_settings()
    redis = request.app.state.redis
    if params.get("error"):  # the user said no, or the provider failed: burn the state
        if params.get("state"):
            await redis.delete(f"{settings.quota_key_prefix}:signin-state:{params['state']}")
        return _complete(
            settings,
            error=params["error"],
            error_description=params.get("error_description") or "the provider refused",
        )
    try:
        result = await oidc.finish(
            redis,
            settings,
            provider_name=provider,
            state=params.get("state", ""),
            code=params.get("code", ""),
        )
        if result.intent == "link" and result.user_id is not None:
            await accounts.link_identity(result.user_id, result.identity)
            log.info("signin.linked", provider=provider, user_id=result.user_id)
            return _complete(settings, linked=provider)
        user_id = await accounts.sign_in_with_identity(settings, result.identity)
    except oidc.SignInError as exc:
        log.info("signin.refused", provider=provider, reason=str(exc))
        return _complete(settings, error=exc.code, error_description=str(exc))
    except DomainError as exc:
        log.info("signin.refused", provider=provider, reason=exc.message)
        return _complete(settings, error="access_denied", error_description=exc.message)
    code = await oidc.issue_handoff_code(redis, settings, user_id)
    log.info("signin.ok", provider=provider, user_id=user_id)
    return _complete(settings, code=code)
