"""The per-request rate limit (GCRA buckets in Redis, core/ratelimit.py): every
authenticated request against its tenant (the plan's `api_requests_per_hour`) and its
credential, every request without one against its client IP."""

from __future__ import annotations

import math

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.graphql.http_input import send_error
from core.ratelimit import HOUR, Bucket, Decision, client_ip, hit
from core.settings import Settings
from domain.accounts.service import Principal
from tenants.plans import plan_for
from tenants.policy import policies


def requests_per_hour(settings: Settings, plan_name: str | None) -> int | None:
    plan = plan_for(plan_name)
    return settings.rate_limits.plan_requests_per_hour.get(plan.name, plan.api_requests_per_hour)


async def request_limit(settings: Settings, principal: Principal) -> Decision | None:
    """Count one API request of `principal`; None when unlimited (or Redis is down)."""
    policy = await policies.get(principal.tenant_id, settings.limits.tenant_policy_ttl_seconds)
    per_hour = requests_per_hour(settings, policy.plan)
    if per_hour is None:
        return None
    share = max(1, math.floor(per_hour * settings.rate_limits.credential_share))
    prefix = f"{settings.rate_limit_key_prefix}:req:{principal.tenant_id}"
    return await hit(
        [
            Bucket(prefix, per_hour, HOUR),
            Bucket(f"{prefix}:{principal.credential}", share, HOUR),
        ]
    )


# Not counted as anonymous traffic: probes and scrapes (health, readiness, /metrics with its
# own token), Stripe's signed webhooks, and the token endpoint (limited by `auth_attempt`).
ANONYMOUS_EXEMPT_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/webhooks/stripe", "/oauth/token"}
)


def _counted_anonymous(path: str) -> bool:
    # the development IDE's static files (api/graphiql.py) are not requests to the API
    return path not in ANONYMOUS_EXEMPT_PATHS and not path.startswith("/graphiql/static/")


async def anonymous_limit(settings: Settings, ip: str) -> Decision | None:
    """Count one request without a credential from `ip` (`rate_limits.anonymous_per_ip` per
    `anonymous_period_seconds`): sign-ups, log-ins and public fields cannot be flooded from
    one address. None when Redis is down (served without limits, as above)."""
    rl = settings.rate_limits
    bucket = Bucket(
        f"{settings.rate_limit_key_prefix}:anon:ip:{ip}",
        rl.anonymous_per_ip,
        rl.anonymous_period_seconds,
    )
    return await hit([bucket])


class RateLimitMiddleware:
    """Counts every HTTP request (pure ASGI, inside AuthMiddleware): an authenticated one
    against its tenant and credential, one without a credential against its client IP."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.settings.rate_limits.enabled:
            await self.app(scope, receive, send)
            return
        principal = scope.get("state", {}).get("principal")
        ip = client_ip(scope)
        decision: Decision | None = None
        if principal is not None:
            decision = await request_limit(self.settings, principal)
            message = "rate limit exceeded: this credential or tenant made too many requests"
        elif ip is not None and _counted_anonymous(scope.get("path", "")):
            decision = await anonymous_limit(self.settings, ip)
            message = "rate limit exceeded: too many requests without a credential from here"
        if decision is None:
            await self.app(scope, receive, send)
            return
        if not decision.allowed:
            extensions = {"code": "RATE_LIMITED", "retryAfter": round(decision.retry_after, 3)}
            await send_error(send, 429, message, extensions, decision.headers())
            return
        extra = decision.headers()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
