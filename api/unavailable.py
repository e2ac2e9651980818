"""503 instead of a plain-text 500 when PostgreSQL is down or its pool is saturated.

Resolvers' database errors become `SERVICE_UNAVAILABLE` GraphQL errors (schema/errors.py) and
the HTTP answer a 503 (api/app.py). This middleware catches the same failure where it happens
outside GraphQL execution: the API-key and plan look-ups of the auth and rate-limit
middlewares, a mutation's transaction opening. The client gets a GraphQL-shaped body with
`Retry-After`; nothing needs restarting, since the pool reconnects by itself once the server
is back (docs/operations.md, failure modes).
"""

from __future__ import annotations

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.graphql.http_input import send_error
from schema.errors import UNAVAILABLE
from tenants.pgclient import is_database_unavailable, retry_after

log = structlog.get_logger(__name__)


class DatabaseUnavailableMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started or not is_database_unavailable(exc):
                raise
            seconds = retry_after(exc)
            log.warning("database_unavailable", error=f"{type(exc).__name__}: {exc}")
            await send_error(
                send,
                503,
                "The database is unavailable; retry shortly.",
                {"code": UNAVAILABLE, "retryAfter": seconds},
                [(b"retry-after", str(seconds).encode())],
            )
