"""GET /oauth/platforms/{platform}/callback: where the provider sends the user back.

No bearer token: the single-use state (domain/collection/oauth.py) names the tenant.
"""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse

from core.settings import get_settings
from domain.collection import oauth

log = structlog.get_logger(__name__)


def callback_url(request: Request, platform: str) -> str:
    """The redirect URI registered with the provider for `platform`."""
    return str(request.url_for("oauth_callback", platform=platform))


async def oauth_callback(request: Request) -> JSONResponse:
    platform = request.path_params["platform"]
    params = request.query_params
    settings = get_settings()
    if params.get("error"):
        # The user said no (access_denied) or the provider failed: forget the state, store
        # nothing.
        if params.get("state"):
            await request.app.state.redis.delete(
                f"{settings.quota_key_prefix}:oauth-state:{params['state']}"
            )
        reason = params.get("error_description") or params["error"]
        return JSONResponse(
            {"error": params["error"], "message": f"{platform} connection not made: {reason}"},
            status_code=400,
        )
    try:
        await oauth.finish(
            request.app.state.redis,
            key_prefix=settings.quota_key_prefix,
            config=settings.oauth_platforms,
            platform=platform,
            state=params.get("state", ""),
            code=params.get("code", ""),
            redirect_uri=callback_url(request, platform),
        )
    except oauth.OAuthFlowError as exc:
        log.info("oauth.callback_refused", platform=platform, reason=str(exc))
        return JSONResponse({"error": "invalid_request", "message": str(exc)}, status_code=400)
    return JSONResponse({"connected": platform, "message": f"{platform} is connected"})
