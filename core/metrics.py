"""Prometheus metrics (prometheus-client), exposed at `GET /metrics` on every api process.

What is measured, and where:

- `trendscope_requests_total{operation,type,status}` and
  `trendscope_request_duration_seconds{operation,type}`: every HTTP request, observed once in
  `core.logging.RequestContextMiddleware` (no per-field hook). For GraphQL requests `operation`
  is the operation name and `type` query/mutation/subscription, reported by the
  `OperationMetrics` schema extension (api/graphql/metrics.py); for other routes `operation`
  is the route path and `type` is `http`.
- `trendscope_errors_total{code}`: GraphQL error codes (`extensions.code`, after masking) and
  `HTTP_<status>` for requests refused before GraphQL (401/403 at the auth middleware, 5xx).
- Read at scrape time: `trendscope_active_subscriptions` (the process's EventHub subscribers),
  `trendscope_job_queue_depth{queue}` (ZCARD of the ARQ queue key) and
  `trendscope_db_pool_connections{state}` (size, idle, max, waiting, acquire_timeouts of the
  shared asyncpg pool).
- `trendscope_job_duration_seconds{job,outcome}` and `trendscope_job_wait_seconds{job}`:
  observed by the ARQ worker around each job (`jobs.worker`); the worker process serves them on
  its own port (`trendscope worker --metrics-port`). One registry per process, no
  multiprocess mode: run one uvicorn worker per container and scrape every replica.

Label cardinality is bounded: no tenant label at all, operation names must look like GraphQL
names and at most `MAX_OPERATION_LABELS` distinct ones are kept (the rest are `other`),
anonymous operations are labelled by their first root field (bounded by the schema), route
labels come from a fixed set and error codes are capped the same way as operation names.
"""

from __future__ import annotations

import hmac
import re
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from core.request_info import RequestInfo

MAX_OPERATION_LABELS = 200
MAX_ERROR_CODES = 50
OTHER = "other"

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_CODE_RE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")

# Latency buckets for API requests (seconds): 5 ms .. 10 s.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Jobs run from milliseconds (a small import) to minutes (a large one).
_JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0)

REQUESTS = Counter(
    "trendscope_requests",
    "HTTP requests by GraphQL operation (or route) and status.",
    ["operation", "type", "status"],
)
REQUEST_DURATION = Histogram(
    "trendscope_request_duration_seconds",
    "Request latency from the first byte in to the last byte out.",
    ["operation", "type"],
    buckets=_REQUEST_BUCKETS,
)
ERRORS = Counter("trendscope_errors", "Errors answered, by code.", ["code"])
ACTIVE_SUBSCRIPTIONS = Gauge(
    "trendscope_active_subscriptions", "Live GraphQL subscriptions in this process."
)
JOB_QUEUE_DEPTH = Gauge("trendscope_job_queue_depth", "Jobs waiting in the ARQ queue.", ["queue"])
DB_POOL = Gauge(
    "trendscope_db_pool_connections",
    "Database pool connections of this process (size, idle, max).",
    ["state"],
)
JOB_DURATION = Histogram(
    "trendscope_job_duration_seconds",
    "ARQ job run time by job name and outcome (ok, error, retry).",
    ["job", "outcome"],
    buckets=_JOB_BUCKETS,
)
JOB_WAIT = Histogram(
    "trendscope_job_wait_seconds",
    "Time an ARQ job waited in the queue (enqueue to start).",
    ["job"],
    buckets=_JOB_BUCKETS,
)


class _BoundedLabels:
    """Admit at most `limit` distinct label values; later newcomers become `other`."""

    def __init__(self, limit: int, pattern: re.Pattern[str]) -> None:
        self._limit = limit
        self._pattern = pattern
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if not self._pattern.fullmatch(value):
            return OTHER
        with self._lock:
            if len(self._seen) >= self._limit:
                return OTHER
            self._seen.add(value)
        return value


operation_label = _BoundedLabels(MAX_OPERATION_LABELS, _NAME_RE)
error_code_label = _BoundedLabels(MAX_ERROR_CODES, _CODE_RE)


_ROUTES = frozenset({"/graphql", "/graphiql", "/healthz", "/readyz", "/metrics"})


def route_label(path: str) -> str:
    return path if path in _ROUTES else OTHER


def observe_request(info: RequestInfo, path: str, status: int, seconds: float) -> None:
    if info.operation is not None:
        operation, op_type = info.operation, info.operation_type or "unknown"
    else:
        operation, op_type = route_label(path), "http"
    REQUESTS.labels(operation, op_type, str(status)).inc()
    REQUEST_DURATION.labels(operation, op_type).observe(seconds)
    for code in info.error_codes:
        ERRORS.labels(error_code_label(code)).inc()
    if not info.error_codes and (status in (401, 403) or status >= 500):
        ERRORS.labels(f"HTTP_{status}").inc()


def observe_job(job: str, outcome: str, seconds: float) -> None:
    JOB_DURATION.labels(job, outcome).observe(seconds)


def observe_job_wait(job: str, seconds: float) -> None:
    JOB_WAIT.labels(job).observe(max(0.0, seconds))


async def refresh_scrape_gauges(subscriptions: object | None) -> None:
    """Read the values that need I/O or the app at scrape time (cheap: one ZCARD, no SQL).
    `subscriptions` is the websocket endpoint (api/graphql/ws.py SubscriptionServer)."""
    from core.runtime import runtime

    count = getattr(subscriptions, "active_subscriptions", None)
    ACTIVE_SUBSCRIPTIONS.set(count if isinstance(count, int) else 0)
    if runtime.redis is not None:
        try:
            depth = await runtime.redis.zcard(runtime.queue_name)
        except Exception:  # an unreachable Redis shows in /readyz; keep /metrics answering
            depth = None
        if depth is not None:
            JOB_QUEUE_DEPTH.labels(runtime.queue_name).set(depth)


def pool_stats() -> dict[str, int] | None:
    """The shared database pool's figures (for /readyz and the gauges below), or None before
    it exists. Read from Tortoise's `default` connection (tenants/pgclient.py adds `waiting`
    and `timeouts` to asyncpg's pool)."""
    from tortoise import Tortoise, connections

    if not Tortoise.is_inited():
        return None
    try:
        pool = getattr(connections.get("default"), "_pool", None)
    except Exception:  # no connection configured (yet)
        return None
    if pool is None:
        return None
    return {
        "size": pool.get_size(),
        "idle": pool.get_idle_size(),
        "max": pool.get_max_size(),
        "waiting": getattr(pool, "waiting", 0),
        "acquireTimeouts": getattr(pool, "timeouts", 0),
    }


def _pool_stat(key: str) -> Callable[[], float]:
    def read() -> float:
        return float((pool_stats() or {}).get(key, 0))

    return read


# Read synchronously at every scrape, in any process that has a pool (api, ARQ worker).
# `waiting` above 0 for long means the pool is saturated (requests then get 503 after
# DB_ACQUIRE_TIMEOUT_SECONDS, counted in `acquire_timeouts`).
for _state, _key in (
    ("size", "size"),
    ("idle", "idle"),
    ("max", "max"),
    ("waiting", "waiting"),
    ("acquire_timeouts", "acquireTimeouts"),
):
    DB_POOL.labels(_state).set_function(_pool_stat(_key))


async def metrics_endpoint(request: Request) -> Response:
    await refresh_scrape_gauges(getattr(request.app.state, "subscriptions", None))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def guarded_metrics_endpoint(settings: Any) -> Callable[[Request], Awaitable[Response]]:
    """`/metrics` on the API port is not public: with `METRICS_TOKEN` set it answers only
    `Authorization: Bearer <METRICS_TOKEN>` (401 otherwise); without one it is open outside
    production (development, tests) and 404 in production, where nothing may scrape it."""
    token: str | None = settings.metrics_token or None

    async def endpoint(request: Request) -> Response:
        if token is None:
            if settings.is_production:
                return Response("Not Found", status_code=404, media_type="text/plain")
            return await metrics_endpoint(request)
        scheme, _, sent = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            sent.strip().encode(), token.encode()
        ):
            return Response(
                "Unauthorized",
                status_code=401,
                media_type="text/plain",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return await metrics_endpoint(request)

    return endpoint
