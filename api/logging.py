"""Structured JSON logs (structlog), shared by every process, and the request middleware that
gives each request an id, binds it into the log context and writes one access line.

Every log line written while a request is handled carries `request_id` (structlog
contextvars). The id is the caller's `X-Request-Id` when it is a sane token (nginx sets one),
otherwise a fresh uuid4 hex; it is echoed in the `X-Request-Id` response header and it is the
GraphQL context's `request_id` (the one masked errors quote). At the end of each HTTP request
one `request` line records method, path, status, duration_ms, the tenant schema and the
GraphQL operation name/type, and the same figures go to the Prometheus metrics.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import RequestInfo, current_request, observe_request
from api.settings import Settings

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

access_log = structlog.get_logger("api.access")


_configured = False


def configure_logging(settings: Settings) -> None:
    """Once per process: loggers cache their configuration on first use, so a second call (an
    in-process ARQ worker beside the app in tests) would leave them on the old one."""
    global _configured
    if _configured:
        return
    _configured = True
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    logging.basicConfig(stream=sys.stderr, level=level, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def request_id_from(value: str | None) -> str:
    """The caller's request id when it is a plain token of at most 128 characters (it ends
    up in logs and headers), else a new one."""
    if value and _REQUEST_ID_RE.fullmatch(value):
        return value
    return uuid.uuid4().hex


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class RequestContextMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware: it would buffer and add a task per request).
    Outermost, so it sees responses that inner middleware (auth) answers itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(_header(scope, b"x-request-id"))
        scope.setdefault("state", {})["request_id"] = request_id
        info = RequestInfo(request_id=request_id, kind=kind)
        info_token = current_request.set(info)
        log_tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        start = time.perf_counter()
        status = 500 if kind == "http" else 0
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper if kind == "http" else send)
        finally:
            seconds = time.perf_counter() - start
            path = scope.get("path", "")
            principal = scope.get("state", {}).get("principal")
            tenant = info.tenant or (principal.tenant_schema if principal else None)
            fields: dict[str, Any] = {
                "method": scope.get("method", "WS"),
                "path": path,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "tenant": tenant,
                "operation": info.operation,
                "operation_type": info.operation_type,
            }
            if info.error_codes:
                fields["errors"] = info.error_codes
            if kind == "http":
                observe_request(info, path, status, seconds)
                access_log.info("request", **fields)
            else:
                access_log.info("websocket_closed", **fields)
            structlog.contextvars.reset_contextvars(**log_tokens)
            current_request.reset(info_token)
