"""OpenTelemetry tracing, only when configured.

Enabled when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the standard variable; the OTLP/HTTP
exporter also reads `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`, etc.). It then needs the
optional extra: `pip install 'trendscope[otel]'`. Without the variable nothing of OpenTelemetry
is imported and no middleware is added.

What is traced: every HTTP/websocket request (the ASGI middleware: one server span, health and
metrics routes excluded) and every asyncpg query (a child span each). Nothing per GraphQL
field: Strawberry's tracing extension has a per-field hook, which design.md measured at 20-80%.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import structlog
from starlette.middleware import Middleware

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
        Middleware(OpenTelemetryMiddleware, excluded_urls=EXCLUDED_URLS, tracer_provider=provider)
    ]
