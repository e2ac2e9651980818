"""The GraphQL HTTP endpoint: Strawberry's ASGI view, made GraphQL-over-HTTP compliant, with
typed refusals (api/graphql/http_input.py), persisted queries (api/graphql/persisted.py) and a
cost budget shared by the operations of a batch (api/graphql/limits.py)."""

from __future__ import annotations

from typing import Any

import orjson
from cross_web import HTTPException
from graphql import GraphQLError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
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

from api.graphiql import graphiql_page
from api.graphql.cost import CostBudget, batch_budget
from api.graphql.executable import schema
from api.graphql.http_input import (
    GRAPHQL_RESPONSE_JSON,
    HTTP_CODES,
    JSON,
    PREFLIGHT_HEADERS,
    RequestRefused,
    limited_receive,
    negotiate,
    too_large,
)
from api.graphql.persisted import PERSISTED_QUERY_NOT_FOUND, PersistedQueryError, persisted_queries
from core.logging import request_id_from
from core.request_info import current_request
from core.settings import Settings
from domain.audit.service import Origin, bind_origin
from schema.context import Context
from schema.dataloaders import Loaders
from schema.errors import UNAVAILABLE, as_unavailable


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
    """Strawberry's ASGI view with our answers to what the spec and the abuse limits leave
    to the server. Every override but `_validate_batch_request` is public: a documented hook
    (`get_context`, `process_result`, `encode_json`/`decode_json`, `render_graphql_ide`), a
    public method of Strawberry's base view, or the ASGI entry point (docs/decisions.md)."""

    def __init__(self, settings: Settings, state: dict[str, Any]) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if not settings.is_production else None,
            subscription_protocols=(),  # websockets: api/graphql/ws.py
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

    # The one private override (docs/decisions.md, "The GraphQL engine room"): Strawberry
    # calls it between decoding a batch's JSON and turning each item into request data (which
    # fails on a non-object item), and its own version answers an untyped "Too many
    # operations" at a fixed figure. `decode_json` is too early (it also decodes `variables`
    # and a multipart `map`), `execute_operation` too late. Pinned by test_limits.py and
    # test_http_spec.py, which fail if Strawberry renames it.
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
