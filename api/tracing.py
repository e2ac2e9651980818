"""OpenTelemetry tracing, only when configured.

Enabled when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the standard variable; the OTLP/HTTP
exporter also reads `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`, etc.). It then needs the
optional extra: `pip install 'trendscope[otel]'`. Without the variable nothing of OpenTelemetry
is imported and no middleware is added.

What is traced: every HTTP/websocket request (the ASGI middleware: one server span, health and
metrics routes excluded) and every asyncpg query (a child span each). Nothing per GraphQL
field: Strawberry's tracing extension has a per-field hook, which design.md measured at 20-80%.

A GET request carries its GraphQL `variables` in the query string, which the ASGI middleware
records (`http.url`, `http.target`): its request hook redacts secret-named variables and
query parameters there before the span ends, as the logs do (core/logging.py).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog
from starlette.middleware import Middleware

from core.logging import REDACTED, is_secret_name, redact

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

log = structlog.get_logger(__name__)

EXCLUDED_URLS = "healthz,readyz,metrics"

_provider: TracerProvider | None = None


def tracing_configured() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def setup_tracing(exporter: SpanExporter | None = None, service_name: str = "trendscope") -> Any:
    """Create the process's tracer provider (once) and instrument asyncpg. `exporter` defaults
    to OTLP over HTTP; tests pass an in-memory one. Returns the provider."""
    global _provider
    if _provider is not None:
        return _provider
    from opentelemetry import trace
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processor: Any = BatchSpanProcessor(OTLPSpanExporter())
    else:
        processor = SimpleSpanProcessor(exporter)
    name = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    AsyncPGInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    log.info("tracing_enabled", service=name)
    return provider


# Span attributes that hold a request's URL or query string (old and new semantic conventions).
URL_ATTRIBUTES = ("http.url", "http.target", "url.full", "url.query")


def redact_url(value: str) -> str:
    """`value` (a URL, a path with a query or a bare query) with secret-named parameters and
    secret-named GraphQL variables (inside `variables` / `extensions` JSON) redacted."""
    bare = "?" not in value and "/" not in value
    parts = urlsplit("?" + value if bare else value)
    if not parts.query:
        return value
    params = []
    for name, raw in parse_qsl(parts.query, keep_blank_values=True):
        if is_secret_name(name):
            raw = REDACTED
        elif name in ("variables", "extensions"):
            try:
                raw = json.dumps(redact(json.loads(raw)), separators=(",", ":"))
            except ValueError:
                raw = REDACTED  # not JSON: cannot tell what is in it
        params.append((name, raw))
    redacted = urlunsplit(parts._replace(query=urlencode(params)))
    return redacted[1:] if bare else redacted


def redact_span_urls(span: Any, scope: Any = None) -> None:
    """The ASGI middleware's `server_request_hook`: it runs after the middleware has set the
    request's attributes (a span processor's `on_start` would run before they are all set)."""
    attributes = getattr(span, "attributes", None) or {}
    for key in URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            span.set_attribute(key, redact_url(value))


def shutdown_tracing() -> None:
    """Flush spans, stop instrumenting asyncpg (process exit, or the end of a test)."""
    global _provider
    if _provider is None:
        return
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    AsyncPGInstrumentor().uninstrument()
    _provider.shutdown()
    _provider = None


def tracing_middleware() -> list[Middleware]:
    """The ASGI tracing middleware when tracing is configured (or set up), else nothing."""
    if _provider is None and not tracing_configured():
        return []
    provider = setup_tracing()
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return [
        Middleware(
            OpenTelemetryMiddleware,
            excluded_urls=EXCLUDED_URLS,
            tracer_provider=provider,
            server_request_hook=redact_span_urls,
        )
    ]
