"""The Starlette application: /graphql (HTTP + graphql-transport-ws), /graphiql, health."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import structlog
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from tortoise import connections

from api.auth import AuthMiddleware
from api.logging import configure_logging
from api.realtime import EventHub
from api.settings import Settings, get_settings
from api.ws import SubscriptionServer
from jobs.runtime import runtime
from schema.context import Context
from schema.dataloaders import Loaders
from schema.schema import schema
from tenants.db import close_db, init_db

log = structlog.get_logger(__name__)


class GraphQLApp(GraphQL[Context, None]):
    def __init__(self, settings: Settings, state: dict[str, Any]) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if not settings.is_production else None,
            subscription_protocols=(),  # websockets: api/ws.py
            multipart_uploads_enabled=True,
        )
        self.settings = settings
        self.state = state

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        principal = request.scope.get("state", {}).get("principal")
        return Context(
            request=request,
            response=response,
            settings=self.settings,
            hub=self.state.get("hub"),
            request_id=request_id,
            principal=principal,
            loaders=Loaders(principal.tenant_schema if principal else None),
        )


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    checks: dict[str, str] = {}
    try:
        await connections.get("default").execute_query("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        redis: Redis = request.app.state.redis
        await redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(checks, status_code=200 if ok else 503)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    state: dict[str, Any] = {}
    graphql = GraphQLApp(settings, state)
    subscriptions = SubscriptionServer(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        configure_logging(settings)
        await init_db(settings)
        await runtime.connect(settings)
        assert runtime.redis is not None
        hub = EventHub(runtime.redis, queue_size=settings.subscription_queue_size)
        await hub.start()
        app.state.redis = runtime.redis
        state["hub"] = hub
        subscriptions.start(hub)
        app.state.subscriptions = subscriptions
        log.info("api_started")
        try:
            yield
        finally:
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
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(AuthMiddleware, settings=settings)],
        lifespan=lifespan,
    )
