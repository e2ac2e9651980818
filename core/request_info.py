"""What one request learnt about itself, shared by the access log (core/logging.py) and the
metrics (core/metrics.py). Its own module, without prometheus-client: core/logging.py is
imported by Dramatiq worker processes, where prometheus-client must not be imported before
Dramatiq's Prometheus middleware has set its multiprocess directory."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestInfo:
    """What one request learnt about itself, filled in as it goes (one per request, held in a
    contextvar by the request middleware, so it works whatever the GraphQL view does)."""

    request_id: str
    kind: str = "http"  # or "websocket": one info for the connection's whole life
    operation: str | None = None
    operation_type: str | None = None
    tenant: str | None = None
    error_codes: list[str] = field(default_factory=list)
    # A client's bad request: its first GraphQL error message (one line, redacted) and how
    # many there were, for the access line (core/logging.py `log_graphql_errors`).
    error: str | None = None
    error_count: int = 0


current_request: ContextVar[RequestInfo | None] = ContextVar("trendscope_request", default=None)
