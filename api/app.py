"""The Starlette application: its routes, middleware and lifespan. The GraphQL endpoint itself
(HTTP view, websockets, execution pipeline) is `api/graphql/`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from tortoise import connections

from api.auth import AuthMiddleware
from api.graphiql import graphiql_assets
from api.graphql.view import GraphQLApp
from api.graphql.ws import SubscriptionServer
from api.lifecycle import Lifecycle
from api.oauth import oauth_callback
from api.ratelimit import RateLimitMiddleware
from api.security_headers import SecurityHeadersMiddleware
from api.signin import sign_in_callback, sign_in_login
from api.token_endpoint import token_endpoint
from api.tracing import tracing_middleware
from api.unavailable import DatabaseUnavailableMiddleware
from billing.webhooks import stripe_webhook
from core.hub import EventHub
from core.logging import RequestContextMiddleware, configure_logging
from core.metrics import guarded_metrics_endpoint, pool_stats
from core.runtime import runtime
from core.settings import Settings, get_settings
from tenants.db import close_db, init_db

log = structlog.get_logger(__name__)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    """503 while shutting down (see api/lifecycle.py), when PostgreSQL or Redis is down, or
    when no pooled connection frees up within a second (saturated: the figures say so)."""
    lifecycle: Lifecycle | None = getattr(request.app.state, "lifecycle", None)
    if lifecycle is not None and lifecycle.shutting_down:
        return JSONResponse({"status": "shutting down"}, status_code=503)
    checks: dict[str, Any] = {}
    try:
        await asyncio.wait_for(
            connections.get("default").execute_query("SELECT 1"), READY_DB_TIMEOUT
        )
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        redis: Redis = request.app.state.redis
        await redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    ok = checks["database"] == "ok" and checks["redis"] == "ok"
    pool = pool_stats()  # after the check: the pool opens on first use
    if pool is not None:
        checks["pool"] = pool
    return JSONResponse(checks, status_code=200 if ok else 503)


READY_DB_TIMEOUT = 1.0


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    configure_logging(settings)  # before uvicorn's first line (a worker process of --workers)
    state: dict[str, Any] = {}
    graphql = GraphQLApp(settings, state)
    lifecycle = Lifecycle(shutdown_delay=settings.shutdown_delay_seconds)
    subscriptions = SubscriptionServer(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        configure_logging(settings)
        app.state.lifecycle = lifecycle
        lifecycle.install_signal_handlers(asyncio.get_running_loop())
        await init_db(settings)
        await runtime.connect(settings)
        assert runtime.redis is not None
        hub = EventHub(runtime.redis, queue_size=settings.subscription_queue_size)
        await hub.start()
        app.state.redis = runtime.redis
        state["hub"] = app.state.hub = hub
        subscriptions.start(hub)
        app.state.subscriptions = subscriptions
        log.info("api_started")
        try:
            yield
        finally:
            # uvicorn has drained in-flight HTTP requests by now; close from the edge inwards.
            lifecycle.begin_shutdown()
            lifecycle.restore_signal_handlers()
            await subscriptions.stop()  # close frames 1001 (uvicorn sends 1012 first on its own)
            await hub.stop()
            await runtime.close()
            await close_db()

    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", subscriptions),  # graphql-transport-ws, multiplexed
        Route("/graphiql", lambda r: RedirectResponse("/graphql"), methods=["GET"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", guarded_metrics_endpoint(settings)),
        Route("/oauth/platforms/{platform}/callback", oauth_callback, methods=["GET"]),
        Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
        Route("/auth/{provider}/login", sign_in_login, methods=["GET"], name="sign_in_login"),
        Route(
            "/auth/{provider}/callback",
            sign_in_callback,
            methods=["GET"],
            name="sign_in_callback",
        ),
        Route("/oauth/token", token_endpoint(settings), methods=["POST"]),  # partner apps
    ]
    if not settings.is_production:  # the IDE's scripts and styles (api/graphiql.py)
        routes.append(graphiql_assets())
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeadersMiddleware),  # nosniff, no-store: on every answer
            *tracing_middleware(),  # only when OTEL_EXPORTER_OTLP_ENDPOINT is set
            Middleware(RequestContextMiddleware),  # outermost: sees what auth answers itself
            Middleware(DatabaseUnavailableMiddleware),  # 503, not 500, when PostgreSQL is down
            Middleware(AuthMiddleware, settings=settings),
            Middleware(RateLimitMiddleware, settings=settings),  # needs the principal
        ],
        lifespan=lifespan,
    )
