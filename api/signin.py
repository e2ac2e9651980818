"""Provider sign-in over the browser: GET /auth/{provider}/login and /auth/{provider}/callback.

`login` redirects to the provider (state, nonce and PKCE verifier kept server-side in Redis,
single use) and gives the browser a cookie bound to that state; `callback` refuses a browser
without it (login CSRF). The callback finishes the flow (domain/accounts/oidc.py) and redirects
the browser to the web app at `<app_url>/auth/complete` with:

- `?code=<one-time code>` after a sign-in (the user found or created): the app trades it for
  tokens with the `completeSignIn` mutation (so tokens never sit in a URL, a history or a log);
- `?link_code=<one-time code>&provider=<name>` when the flow was started by
  `linkIdentity`: the signed-in app finishes with `completeIdentityLink`, which checks it
  is the same user who started it;
- `?error=<code>&error_description=<text>` when anything was refused.
"""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import urlencode

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from core.settings import Settings, get_settings
from domain.accounts import oidc
from domain.accounts.identities import identities
from domain.errors import DomainError

log = structlog.get_logger(__name__)

NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
COOKIE_PATH = "/auth/"


def binding_cookie(state: str) -> str:
    """The cookie that ties a state to the browser that started it (one per flow, so two
    tabs signing in at once do not clash)."""
    return "ts_signin_" + hashlib.sha256(state.encode()).hexdigest()[:16]


def _complete(settings: Settings, state: str | None, **params: str) -> RedirectResponse:
    url = f"{settings.app_url.rstrip('/')}/auth/complete?{urlencode(params)}"
    response = RedirectResponse(url, status_code=303, headers=NO_STORE)
    if state:  # the flow is over either way
        response.delete_cookie(binding_cookie(state), path=COOKIE_PATH)
    return response


async def sign_in_login(request: Request) -> Response:
    provider = request.path_params["provider"]
    settings = get_settings()
    try:
        redirect_uri = oidc.redirect_uri_for(
            settings, provider, str(request.url_for("sign_in_callback", provider=provider))
        )
        binding = secrets.token_urlsafe(32)
        url, state = await oidc.start(
            request.app.state.redis,
            settings,
            provider_name=provider,
            redirect_uri=redirect_uri,
            binding=binding,
        )
    except oidc.SignInError as exc:
        status = 404 if exc.code == "not_found" else 503
        return JSONResponse({"error": exc.code, "message": str(exc)}, status_code=status)
    response = RedirectResponse(url, status_code=302, headers=NO_STORE)
    response.set_cookie(
        binding_cookie(state),
        binding,
        max_age=settings.sign_in_state_ttl_seconds,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https" or settings.is_production,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us
    )
    return response


async def sign_in_callback(request: Request) -> Response:
    provider = request.path_params["provider"]
    params = request.query_params
    settings = get_settings()
    redis = request.app.state.redis
    if params.get("error"):  # the user said no, or the provider failed: burn the state
        await oidc.discard_state(redis, settings, params.get("state", ""))
        return _complete(
            settings,
            params.get("state"),
            error=params["error"],
            error_description=params.get("error_description") or "the provider refused",
        )
    state = params.get("state", "")
    try:
        result = await oidc.finish(
            redis,
            settings,
            provider_name=provider,
            state=state,
            code=params.get("code", ""),
            binding=request.cookies.get(binding_cookie(state)) if state else None,
        )
        if result.intent == "link" and result.user_id is not None:
            link_code = await oidc.issue_handoff_code(
                redis,
                settings,
                "link",
                {"user_id": result.user_id, "identity": oidc.identity_to_dict(result.identity)},
            )
            log.info("signin.link_ready", provider=provider, user_id=result.user_id)
            return _complete(settings, state, link_code=link_code, provider=provider)
        user_id = await identities.sign_in_with_identity(settings, result.identity)
    except oidc.SignInError as exc:
        log.info("signin.refused", provider=provider, reason=str(exc))
        return _complete(settings, state, error=exc.code, error_description=str(exc))
    except DomainError as exc:
        log.info("signin.refused", provider=provider, reason=exc.message)
        return _complete(settings, state, error="access_denied", error_description=exc.message)
    code = await oidc.issue_handoff_code(
        redis, settings, "login", {"user_id": user_id, "provider": provider}
    )
    log.info("signin.ok", provider=provider, user_id=user_id)
    return _complete(settings, state, code=code)
