"""The Starlette application: /graphql (HTTP + graphql-transport-ws), /graphiql, health."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import structlog
from cross_web import HTTPException
from graphql import GraphQLError
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from tortoise import connections

from api.auth import AuthMiddleware
from api.graphiql import graphiql_assets, graphiql_page
from api.http_input import (
    GRAPHQL_RESPONSE_JSON,
    HTTP_CODES,
    JSON,
    PREFLIGHT_HEADERS,
    RequestRefused,
    limited_receive,
    negotiate,
    too_large,
)
from api.lifecycle import Lifecycle
from api.oauth import oauth_callback
from api.persisted import PERSISTED_QUERY_NOT_FOUND, PersistedQueryError, persisted_queries
from api.ratelimit import RateLimitMiddleware
from api.security_headers import SecurityHeadersMiddleware
from api.signin import sign_in_callback, sign_in_login
from api.token_endpoint import token_endpoint
from api.tracing import tracing_middleware
from api.unavailable import DatabaseUnavailableMiddleware
from api.ws import SubscriptionServer
from billing.webhooks import stripe_webhook
from core.hub import EventHub
from core.logging import RequestContextMiddleware, configure_logging, request_id_from
from core.metrics import guarded_metrics_endpoint, pool_stats
from core.request_info import current_request
from core.runtime import runtime
from core.settings import Settings, get_settings
from domain.audit.service import Origin, bind_origin
from schema.context import Context
from schema.dataloaders import Loaders
from schema.errors import UNAVAILABLE, as_unavailable
from schema.limits import CostBudget, batch_budget
from schema.schema import schema
from tenants.db import close_db, init_db

log = structlog.get_logger(__name__)


class _WithContentType:
    """A request adapter whose Content-Type is replaced (everything else is the original's)."""

    def __init__(self, adapter: Any, content_type: str) -> None:
        self._adapter = adapter
        self.content_type = content_type

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)


class SubResponse(Response):
    """Strawberry's per-request sub-response, plus the media type negotiated for the reply."""

    media_type_chosen: str | None = GRAPHQL_RESPONSE_JSON


def is_request_error(result: ExecutionResult) -> bool:
    """Refused before execution (parse, validation, limits, variables, persisted queries):
    no data and no error with a path. Such a response carries no `data` entry."""
    return (
        result.data is None
        and bool(result.errors)
        and all(e.path is None for e in result.errors or ())
    )


def _retry_after_if_unavailable(
    response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
) -> int | None:
    """The largest `retryAfter` of the SERVICE_UNAVAILABLE errors in the answer, if any."""
    answers = response_data if isinstance(response_data, list) else [response_data]
    waits = [
        int((e.get("extensions") or {}).get("retryAfter") or 1)
        for answer in answers
        for e in answer.get("errors") or ()
        if isinstance(e, dict) and (e.get("extensions") or {}).get("code") == UNAVAILABLE
    ]
    return max(waits) if waits else None


def _safe_host(host: str | None) -> str | None:
    """The Host header when it is a plain host[:port] (it goes into a CSP header)."""
    if host and all(c.isalnum() or c in ".-:[]" for c in host) and len(host) <= 255:
        return host
    return None


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

    # --- HTTP: GraphQL-over-HTTP compliance, typed refusals, persisted queries ---------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            limit = self._body_limit(request)
            response = await self.run(Request(scope=scope, receive=limited_receive(receive, limit)))
        except HTTPException as exc:
            response = self._refusal(request, exc)
        except StarletteHTTPException as exc:  # Starlette's multipart parser (part too large)
            response = self._refusal(request, RequestRefused(400, exc.detail, "BAD_REQUEST"))
        await response(scope, receive, send)

    def _body_limit(self, request: Request) -> int:
        """The most bytes the request's body may have: `limits.max_json_body_bytes`, plus
        `import_max_bytes` for a multipart upload. A Content-Length above it is refused before
        a byte of the body is read."""
        limit = self.settings.limits.max_json_body_bytes
        media, _ = parse_content_type(request.headers.get("content-type") or "")
        if media.lower() == "multipart/form-data":
            limit += self.settings.import_max_bytes
        try:
            declared = int(request.headers.get("content-length") or 0)
        except ValueError:
            declared = 0  # uvicorn has refused a malformed Content-Length already
        if declared > limit:
            raise too_large(limit)
        return limit

    def _refusal(self, request: Request, exc: HTTPException) -> Response:
        """A request refused outside GraphQL execution, as a GraphQL-shaped error body."""
        code = getattr(exc, "code", None) or HTTP_CODES.get(exc.status_code, "BAD_REQUEST")
        headers = dict(getattr(exc, "headers", {}))
        media = negotiate(request.headers.get("accept")) or JSON
        extensions = {"code": code, **getattr(exc, "extensions", {})}
        body = {"errors": [{"message": exc.reason, "extensions": extensions}]}
        info = current_request.get()
        if info is not None:  # /metrics counts the refusal by its code, a client's mistake
            info.error_codes.append(code)
        return Response(
            self.encode_json(body),
            status_code=exc.status_code,
            media_type=media,
            headers=headers,
        )

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub = SubResponse()
        sub.status_code = None  # type: ignore[assignment]
        del sub.headers["content-length"]
        sub.media_type_chosen = negotiate(request.headers.get("accept"))
        return sub

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # Only for browsers (text/html), and never for a persisted query sent by GET.
        params = request.query_params
        return (
            request.method == "GET"
            and params.get("query") is None
            and params.get("extensions") is None
            and "text/html" in request.headers.get("accept", "")
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        # local assets and a CSP (api/graphiql.py), no CDN
        return graphiql_page(_safe_host(request.headers.get("host")))

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        if negotiate(request.headers.get("accept")) is None:
            raise RequestRefused(
                406,
                f"Not Acceptable: this endpoint answers {GRAPHQL_RESPONSE_JSON} or {JSON}.",
                "NOT_ACCEPTABLE",
            )
        if request.method == "POST":
            sent, _ = parse_content_type(request.content_type or "")
            media = sent.lower()  # media types are case-insensitive (RFC 9110)
            if media != JSON and not (
                self.multipart_uploads_enabled and media == "multipart/form-data"
            ):
                raise RequestRefused(
                    415,
                    f"Unsupported Content-Type {media or '(none)'!r}: send {JSON}.",
                    "UNSUPPORTED_MEDIA_TYPE",
                )
            if media == "multipart/form-data" and not any(
                request.headers.get(name, "").strip() for name in PREFLIGHT_HEADERS
            ):
                raise RequestRefused(
                    400,
                    "A multipart request must carry a `GraphQL-Require-Preflight: 1` (or"
                    " `Apollo-Require-Preflight`) header: this protects against cross-site"
                    " request forgery.",
                    "CSRF_PREVENTION",
                )
            if sent != media:  # Strawberry compares it case-sensitively
                request = _WithContentType(request, media)
            if media == "multipart/form-data":
                try:
                    return await super().parse_http_body(request)
                except (AttributeError, TypeError, KeyError, IndexError) as exc:
                    # Strawberry walks `operations` and `map` as the client sent them
                    raise RequestRefused(
                        400,
                        "The multipart request's operations or map are malformed.",
                        "BAD_REQUEST",
                    ) from exc
        return await super().parse_http_body(request)

    def decode_json(self, data: str | bytes) -> object:
        """orjson, stricter than `json.loads` where it matters: invalid UTF-8 and lone
        surrogates (`"\\ud800"`, which PostgreSQL and the response encoder would refuse later)
        are errors, and so is nesting deeper than 1024 levels (`json.loads` raised
        RecursionError: a 500). A request body (bytes; query-string parameters and multipart
        fields are str) must be an object, or an array of them for a batch."""
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise RequestRefused(
                400, f"The request is not valid JSON: {exc}", "BAD_REQUEST"
            ) from None
        if isinstance(data, bytes) and not isinstance(value, dict | list):
            raise RequestRefused(
                400,
                "The request body must be a JSON object (or an array of them, for a batch),"
                f" not {type(value).__name__ if value is not None else 'null'}.",
                "BAD_REQUEST",
            )
        return value

    def _validate_batch_request(self, request_data: list[Any], protocol: Any) -> None:
        limit = self.settings.limits.max_batch
        if not request_data:
            raise RequestRefused(400, "An empty batch has no operation to run.", "BAD_REQUEST")
        if len(request_data) > limit:
            raise RequestRefused(
                400,
                f"The batch has {len(request_data)} operations; the limit is {limit}.",
                "BATCH_TOO_LARGE",
            )
        if not all(isinstance(item, dict) for item in request_data):
            raise RequestRefused(400, "Each batched operation must be an object.", "BAD_REQUEST")

    async def execute_operation(
        self,
        request: Request,
        request_adapter: Any,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> Any:
        if not isinstance(request_data, list):
            return await super().execute_operation(
                request, request_adapter, request_data, context, root_value, sub_response
            )
        # The cost ceiling is per request: the operations of a batch share it.
        token = batch_budget.set(CostBudget())
        try:
            return await super().execute_operation(
                request, request_adapter, request_data, context, root_value, sub_response
            )
        finally:
            batch_budget.reset(token)

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        method = request_adapter.method
        allowed = OperationType.from_http(method)
        try:
            resolved = await persisted_queries.resolve(
                self.settings, context.principal, request_data.query, request_data.extensions
            )
        except PersistedQueryError as exc:
            if exc.code == PERSISTED_QUERY_NOT_FOUND:
                sub_response.headers["cache-control"] = "private, no-cache, must-revalidate"
            return ExecutionResult(data=None, errors=[exc.graphql_error()])
        if resolved.query is None:
            raise RequestRefused(400, "No GraphQL query found in the request.", "BAD_REQUEST")
        try:
            result = await self.schema.execute(
                resolved.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as exc:
            # GetOperation() failed: a GraphQL request error (200 with application/json)
            error = GraphQLError(
                exc.as_http_error_reason(), extensions={"code": "OPERATION_RESOLUTION_FAILURE"}
            )
            return ExecutionResult(data=None, errors=[error])
        except InvalidOperationTypeError as exc:
            if method == "GET":  # the spec: 405, and mutations go by POST
                raise RequestRefused(
                    405, exc.as_http_error_reason(method), "METHOD_NOT_ALLOWED", {"Allow": "POST"}
                ) from exc
            raise RequestRefused(400, exc.as_http_error_reason(method), "BAD_REQUEST") from exc
        except MissingQueryError as exc:
            raise RequestRefused(
                400, "No GraphQL query found in the request.", "BAD_REQUEST"
            ) from exc
        if resolved.store_as is not None and not is_request_error(result):
            await persisted_queries.store(
                self.settings, context.principal, resolved.store_as, resolved.query
            )
        return result

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        if result.errors:
            # A database failure before execution (an extension's transaction, the compiled
            # path) never reached the resolvers' masking: code it here the same way.
            result.errors = [as_unavailable(e) or e for e in result.errors]
        response = await super().process_result(request, result)
        if is_request_error(result):
            response.pop("data", None)
        return response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        media = getattr(sub_response, "media_type_chosen", None) or GRAPHQL_RESPONSE_JSON
        status = 200
        unavailable = _retry_after_if_unavailable(response_data)
        if unavailable is not None:
            # PostgreSQL down or saturated: an infrastructure answer whatever the media type,
            # so that clients and load balancers retry (docs/operations.md, failure modes).
            status = 503
            sub_response.headers["retry-after"] = str(unavailable)
        elif media == GRAPHQL_RESPONSE_JSON and isinstance(response_data, dict):
            if "data" not in response_data:  # a request error: 4xx, or 5xx if it was ours
                codes = {
                    (e.get("extensions") or {}).get("code")
                    for e in response_data.get("errors") or ()
                    if isinstance(e, dict)
                }
                status = 500 if "INTERNAL_SERVER_ERROR" in codes else 400
        response = Response(self.encode_json(response_data), status_code=status, media_type=media)
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response

    def encode_json(self, data: object) -> bytes:
        # orjson: ~10x faster than json.dumps on a 50-item page (issue #6, perf).
        return orjson.dumps(data)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        # The id RequestContextMiddleware gave this request (logs, X-Request-Id header).
        request_id = request.scope.get("state", {}).get("request_id") or request_id_from(
            request.headers.get("x-request-id")
        )
        principal = request.scope.get("state", {}).get("principal")
        # Audit entries written while this request runs carry its address and id.
        bind_origin(
            Origin(ip=request.client.host if request.client else None, request_id=request_id)
        )
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
