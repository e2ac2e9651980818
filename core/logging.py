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
from collections.abc import MutableMapping
from typing import Any

import structlog
from graphql import GraphQLError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.request_info import RequestInfo, current_request
from core.settings import Settings

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

access_log = structlog.get_logger("api.access")
log = structlog.get_logger(__name__)


_configured = False

# Loggers of the libraries every process runs: their handlers are dropped so that they
# propagate to the root handler and come out in the same format as the app's own lines.
_LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "dramatiq", "tortoise")


def renderer(tty: bool | None = None) -> Any:
    """Readable lines on a terminal, JSON lines otherwise (files, containers, pipes)."""
    if tty is None:
        tty = sys.stderr.isatty()
    if tty:
        return structlog.dev.ConsoleRenderer()
    return structlog.processors.JSONRenderer()


def _shared_processors() -> list[Any]:
    """What every line gets, the app's structlog lines and stdlib ones alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]


def formatter(tty: bool | None = None) -> logging.Formatter:
    """The one formatter of the process: structlog's lines arrive pre-processed, stdlib
    logging's (uvicorn, ARQ, Dramatiq, Tortoise, warnings) get the shared chain first."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *_shared_processors()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer(tty),
        ],
    )


def configure_logging(settings: Settings) -> None:
    """Once per process: loggers cache their configuration on first use, so a second call (an
    in-process ARQ worker beside the app in tests) would leave them on the old one.

    Everything goes through stdlib logging's root handler on stderr with one structlog
    `ProcessorFormatter`, so uvicorn, ARQ, Dramatiq and Tortoise lines have the same shape as
    ours (`trendscope up` mixes all of them on one console)."""
    global _configured
    if _configured:
        return
    _configured = True
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter())
    root = logging.getLogger()
    for old in list(root.handlers):  # e.g. the Dramatiq CLI's own format
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        for old in list(library.handlers):
            library.removeHandler(old)
        library.propagate = True
    # Tortoise says "Tortoise-ORM shutdown" at INFO on every close (each CLI command): noise.
    logging.getLogger("tortoise").setLevel(max(level, logging.WARNING))
    # httpx logs every outbound request at INFO with its full URL (tokens in query strings,
    # URL-encoded where redaction cannot read them): only its warnings.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    # Warnings become log lines in the same format instead of bare multi-line text.
    logging.captureWarnings(True)
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )


# --- secrets in logs ------------------------------------------------------------------------

# A name is a secret's when it contains one of these ...
_SECRET_PARTS = ("password", "passwd", "secret", "token", "apikey", "authorization", "cookie")
# ... or ends with one of these (`code`, but not `codeChallengeMethod`; `apiKey`, not `keyId`).
_SECRET_ENDINGS = ("key", "keys", "code", "codes", "otp", "pin", "credential", "credentials")
# ... unless it names something about the secret that is not the secret (`apiKeyId`, `tokenType`).
_SAFE_ENDINGS = ("id", "ids", "count", "type", "prefix", "ttl", "method")
REDACTED = "[REDACTED]"
# `'password': 'p'` / `"refreshToken": "..."` / `code=abc` inside a message (graphql-core
# quotes the variables it rejects: "found: {'email': ..., 'password': 'p'}").
_PAIR_RE = re.compile(
    r"""(?P<q>['"]?)(?P<name>[A-Za-z_][A-Za-z0-9_\-]*)(?P=q)(?P<sep>\s*[:=]\s*)"""
    r"""(?P<value>\[REDACTED\]|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s,;&{}\[\]'"]+)"""
)
_MAX_DEPTH = 32


def is_secret_name(name: str) -> bool:
    """`password`, `newPassword`, `refreshToken`, `apiKey`, `client_secret`, `code` ... (any
    case, any separator)."""
    flat = re.sub(r"[^a-z0-9]", "", name.lower())
    if flat.endswith(_SAFE_ENDINGS) and not flat.endswith(_SECRET_ENDINGS):
        return False
    return any(p in flat for p in _SECRET_PARTS) or flat.endswith(_SECRET_ENDINGS)


def redact(value: Any, depth: int = 0) -> Any:
    """`value` with every entry named like a secret replaced, at any depth (variables)."""
    if depth > _MAX_DEPTH:
        return "..."
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_name(k) else redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, depth + 1) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str) -> str:
    """Secret-named `name: value` pairs inside a free text (an error message) redacted."""
    if ":" not in text and "=" not in text:
        return text

    def sub(m: re.Match[str]) -> str:
        if not is_secret_name(m["name"]):
            return m[0]
        return f"{m['q']}{m['name']}{m['q']}{m['sep']}{REDACTED}"

    return _PAIR_RE.sub(sub, text)


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: variables and messages never carry a password or a token."""
    for key, value in event_dict.items():
        if key == "exc_info":
            continue
        if is_secret_name(key):
            event_dict[key] = REDACTED
        elif isinstance(value, dict | list | tuple | str):
            event_dict[key] = redact(value)
    return event_dict


# --- GraphQL errors ------------------------------------------------------------------------

_MAX_MESSAGE = 300


def _one_line(message: str) -> str:
    text = " ".join(redact_text(message).split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def log_graphql_errors(errors: list[GraphQLError], execution_context: Any = None) -> None:
    """The schema's `process_errors` (api/graphql/executable.py): how GraphQL errors reach the log.

    A client's mistake (a parse or validation error, a bad variable: no original exception,
    or a GraphQL error raised on purpose) is an answer, not an incident: its first message
    goes on the request's one access line (`error`, redacted, one line), or for a websocket
    operation on one `graphql_client_error` line. Strawberry's default wrote every error with
    its source excerpt and traceback: one bad 1.9 KB request made 2,230 lines. Unexpected
    exceptions are logged with their traceback once, by `MaskUnexpectedErrors`
    (api/graphql/masking.py), with the request id the client is shown; that extension does not
    see the events of a subscription, so those are logged here."""
    client = [e for e in errors if e.original_error is None or _is_graphql(e.original_error)]
    if client:
        info = current_request.get()
        summary = _one_line(client[0].message)
        if info is not None and info.kind == "http":
            if info.error is None:
                info.error = summary
                info.error_count = len(client)
            else:
                info.error_count += len(client)
        else:
            log.info("graphql_client_error", error=summary, count=len(client))
    unexpected = [e for e in errors if e not in client]
    if unexpected and _is_subscription(execution_context):
        request_id = getattr(getattr(execution_context, "context", None), "request_id", None)
        for error in unexpected:
            log.error(
                "unexpected_error",
                request_id=request_id,
                path=error.path,
                exc_info=error.original_error,
            )


def _is_graphql(exc: BaseException) -> bool:
    return isinstance(exc, GraphQLError)


def _is_subscription(execution_context: Any) -> bool:
    try:
        operation = execution_context.operation_type
    except Exception:  # no document (a parse error): not an event of a subscription
        return False
    return getattr(operation, "value", None) == "subscription"


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
        # Imported here: prometheus-client must not load with this module (core/request_info.py).
        from core.metrics import observe_request

        self.app = app
        self.observe_request = observe_request

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
            if info.error is not None:  # a client's bad request: why, in one line
                fields["error"] = info.error
                fields["error_count"] = info.error_count
            if kind == "http":
                self.observe_request(info, path, status, seconds)
                access_log.info("request", **fields)
            else:
                access_log.info("websocket_closed", **fields)
            structlog.contextvars.reset_contextvars(**log_tokens)
            current_request.reset(info_token)
