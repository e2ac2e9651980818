"""Operations: request ids and access logs, Prometheus metrics, readiness, graceful shutdown,
the PgBouncer setting."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from core.metrics import _NAME_RE, OTHER, _BoundedLabels
from core.settings import Settings
from tenants.config import tortoise_config
from tenants.db import statement_cache_size
from tests.collection.test_import import add_accounts, jsonl, rows_for
from tests.conftest import GQL, Server, Services, Tenant, _free_port, import_file, run_jobs

LIST = "query ListInfluencers { influencers(first: 5) { edges { node { id displayName } } } }"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, keyed by (name, sorted labels)."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def request_lines(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("event") == "request"]


async def metrics(gql: GQL) -> str:
    response = await gql.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


# --- request id and the access log ------------------------------------------------------------


async def test_request_id_is_echoed_and_in_the_access_log(gql: GQL, tenant: Tenant) -> None:
    with capture_logs(processors=[merge_contextvars]) as logs:
        response = await gql.raw(LIST, token=tenant.token, headers={"X-Request-Id": "req-abc.123"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-abc.123"
    [line] = [e for e in request_lines(logs) if e.get("request_id") == "req-abc.123"]
    assert line["path"] == "/graphql"
    assert line["method"] == "POST"
    assert line["status"] == 200
    assert line["tenant"] == tenant.schema
    assert line["operation"] == "ListInfluencers"
    assert line["operation_type"] == "query"
    assert line["duration_ms"] >= 0


async def test_request_id_is_generated_when_missing_or_unsafe(gql: GQL) -> None:
    response = await gql.http.get("/healthz")
    generated = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    response = await gql.http.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    response = await gql.http.get("/healthz", headers={"X-Request-Id": "x" * 200})
    assert response.headers["x-request-id"] != "x" * 200


async def test_anonymous_operations_are_labelled_by_root_field(gql: GQL, tenant: Tenant) -> None:
    with capture_logs(processors=[merge_contextvars]) as logs:
        await gql.ok("{ __typename }", token=tenant.token, headers={"X-Request-Id": "anon-1"})
    [line] = [e for e in request_lines(logs) if e.get("request_id") == "anon-1"]
    assert line["operation"] == "anonymous___typename"


async def test_graphql_context_uses_the_middlewares_request_id(server: Server) -> None:
    """The id masked errors quote (the GraphQL context's) is the one in the logs and header."""
    from starlette.requests import Request

    from api.graphql.view import GraphQLApp
    from core.settings import get_settings

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "headers": [(b"x-request-id", b"from-header")],
        "state": {"request_id": "from-middleware", "principal": None},
    }
    view = GraphQLApp(get_settings(), {})
    context = await view.get_context(Request(scope), None)
    assert context.request_id == "from-middleware"


async def test_access_log_lines_carry_each_tenants_own_schema(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    with capture_logs(processors=[merge_contextvars]) as logs:
        await gql.raw(LIST, token=tenant.token, headers={"X-Request-Id": "iso-a"})
        await gql.raw(LIST, token=other_tenant.token, headers={"X-Request-Id": "iso-b"})
    by_id = {e["request_id"]: e for e in request_lines(logs)}
    assert by_id["iso-a"]["tenant"] == tenant.schema
    assert by_id["iso-b"]["tenant"] == other_tenant.schema


async def test_websocket_gets_a_request_id_and_one_line_when_closed(
    server: Server, tenant: Tenant
) -> None:
    import asyncio
    import json

    import websockets

    with capture_logs(processors=[merge_contextvars]) as logs:
        async with websockets.connect(
            server.ws_url,
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            additional_headers={"X-Request-Id": "ws-req-1"},
        ) as ws:
            payload = {"Authorization": f"Bearer {tenant.token}"}
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            sub = {"query": "subscription { postAdded { id } }"}
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": sub}))
            await ws.send(json.dumps({"id": "1", "type": "complete"}))
        for _ in range(100):  # the server logs after its side of the close
            if any(e.get("event") == "websocket_closed" for e in logs):
                break
            await asyncio.sleep(0.02)
    [line] = [e for e in logs if e.get("event") == "websocket_closed"]
    assert line["request_id"] == "ws-req-1" and line["path"] == "/graphql"
    assert line["operation"] is None  # operations over a socket are not accumulated
    assert not request_lines([e for e in logs if e.get("request_id") == "ws-req-1"])


async def test_refused_request_is_logged_and_counted(gql: GQL) -> None:
    before = value(await metrics(gql), "trendscope_errors_total", code="HTTP_401")
    with capture_logs(processors=[merge_contextvars]) as logs:
        response = await gql.raw(LIST, token="not-a-jwt", headers={"X-Request-Id": "refused-1"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "refused-1"
    [line] = [e for e in request_lines(logs) if e.get("request_id") == "refused-1"]
    assert line["status"] == 401 and line["tenant"] is None
    assert value(await metrics(gql), "trendscope_errors_total", code="HTTP_401") == before + 1


# --- metrics ----------------------------------------------------------------------------------


async def test_metrics_count_operations_by_name_and_type(gql: GQL, tenant: Tenant) -> None:
    labels = {"operation": "ListInfluencers", "type": "query"}
    text = await metrics(gql)
    before = value(text, "trendscope_requests_total", status="200", **labels)
    before_hist = value(text, "trendscope_request_duration_seconds_count", **labels)
    await gql.ok(LIST, token=tenant.token)
    await gql.ok(LIST, token=tenant.token)
    text = await metrics(gql)
    assert value(text, "trendscope_requests_total", status="200", **labels) == before + 2
    assert value(text, "trendscope_request_duration_seconds_count", **labels) == before_hist + 2
    # non-GraphQL routes are labelled by route, from a fixed set
    assert value(text, "trendscope_requests_total", operation="/metrics", type="http", status="200")
    # the scrape-time gauges are there
    assert value(text, "trendscope_db_pool_connections", state="max") >= 1
    assert value(text, "trendscope_db_pool_connections", state="size") >= 1
    assert ("trendscope_active_subscriptions", ()) in samples(text)
    assert any(name == "trendscope_job_queue_depth" for name, _ in samples(text))


async def test_metrics_count_error_codes(gql: GQL, tenant: Tenant) -> None:
    text = await metrics(gql)
    invalid = value(text, "trendscope_errors_total", code="GRAPHQL_VALIDATION_FAILED")
    # a validation error is a request error: 200 with application/json (httpx's Accept: */*)
    requests = value(
        text, "trendscope_requests_total", operation="invalid", type="invalid", status="200"
    )
    body = await gql("{ noSuchField }", token=tenant.token)
    assert body["errors"]
    text = await metrics(gql)
    assert value(text, "trendscope_errors_total", code="GRAPHQL_VALIDATION_FAILED") == invalid + 1
    assert (
        value(text, "trendscope_requests_total", operation="invalid", type="invalid", status="200")
        == requests + 1
    )


async def test_metrics_have_no_tenant_names(gql: GQL, tenant: Tenant, other_tenant: Tenant) -> None:
    for t in (tenant, other_tenant):
        await gql.ok(LIST, token=t.token)
    text = await metrics(gql)
    for t in (tenant, other_tenant):
        assert t.slug not in text and t.schema not in text
    assert "tenant" not in {k for _, labels in samples(text) for k, _ in labels}


async def test_job_queue_depth_and_job_latency(gql: GQL, tenant: Tenant) -> None:
    await add_accounts(gql, tenant.token, ["ops1"])
    job = {"job": "collection.import"}
    await run_jobs()  # jobs other tests left queued must not count below
    before = value(await metrics(gql), "trendscope_job_duration_seconds_count", outcome="ok", **job)
    await import_file(gql, tenant.token, "posts.jsonl", jsonl(rows_for(["ops1"], 3, "ops")))
    text = await metrics(gql)
    depth = [v for (name, _), v in samples(text).items() if name == "trendscope_job_queue_depth"]
    assert depth and depth[0] >= 1
    await run_jobs()  # in this process, so its metrics are this registry's
    text = await metrics(gql)
    assert value(text, "trendscope_job_duration_seconds_count", outcome="ok", **job) == before + 1
    assert value(text, "trendscope_job_wait_seconds_count", **job) >= 1
    depth = [v for (name, _), v in samples(text).items() if name == "trendscope_job_queue_depth"]
    assert depth == [0]


async def test_log_lines_during_an_operation_carry_tenant_and_operation() -> None:
    """Whatever logs while an operation runs (e.g. the masked-error line) gets the tenant and
    operation; they are gone again afterwards."""
    import copy
    from types import SimpleNamespace

    import structlog
    from strawberry.extensions import SchemaExtension

    from api.graphql.executable import schema
    from api.graphql.metrics import OperationMetrics

    class Probe(SchemaExtension):  # a test probe, listed after the extension under test
        def on_execute(self) -> Iterator[None]:
            structlog.get_logger("probe").info("probe")
            yield

    probed = copy.copy(schema)
    probed.extensions = (OperationMetrics, Probe)
    principal = SimpleNamespace(tenant_schema="t_probe")
    context = SimpleNamespace(tenant_schema=None, principal=principal, request_id="p")
    with capture_logs(processors=[merge_contextvars]) as logs:
        result = await probed.execute("query Probe { __typename }", context_value=context)
        structlog.get_logger("probe").info("after")
    assert not result.errors
    probe, after = logs
    assert (probe["tenant"], probe["operation"], probe["operation_type"]) == (
        "t_probe",
        "Probe",
        "query",
    )
    assert "tenant" not in after and "operation" not in after


def test_operation_labels_are_bounded() -> None:
    labels = _BoundedLabels(3, _NAME_RE)
    assert [labels(n) for n in ("A", "B", "C", "D", "A")] == ["A", "B", "C", OTHER, "A"]
    assert labels("has space") == OTHER
    assert labels("x" * 65) == OTHER


# --- readiness and shutdown -------------------------------------------------------------------


async def test_readyz_reports_database_and_redis(gql: GQL) -> None:
    response = await gql.http.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok" and body["redis"] == "ok"
    assert set(body["pool"]) == {"size", "idle", "max", "waiting", "acquireTimeouts"}


@pytest.fixture
def api_process(server: Server, services: Services, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """`trendscope api` in a subprocess (the real CLI, signals and all), on this run's database
    (already migrated by the `server` fixture)."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url}
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "api", "--port", str(port), "--shutdown-delay", "60"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "api.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "api.log").read_text()
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()


@pytest.mark.slow
def test_sigterm_makes_readyz_503_and_keeps_serving_then_exits(
    api_process: tuple[str, subprocess.Popen[bytes]], tenant: Tenant
) -> None:
    url, proc = api_process
    with httpx.Client(base_url=url, timeout=10) as http:
        proc.send_signal(signal.SIGTERM)
        for _ in range(200):  # bounded by tries, not by time
            response = http.get("/readyz")
            if response.status_code == 503:
                break
            time.sleep(0.05)
        assert response.status_code == 503
        assert response.json() == {"status": "shutting down"}
        # still serving during the shutdown delay: in-flight and new requests are answered
        assert http.get("/healthz").status_code == 200
        body = http.post(
            "/graphql", json={"query": LIST}, headers={"Authorization": f"Bearer {tenant.token}"}
        ).json()
        assert "errors" not in body
    proc.send_signal(signal.SIGTERM)  # a second signal ends the delay: drain and exit
    proc.wait(timeout=60)
    assert proc.returncode in (0, -signal.SIGTERM)


# --- PgBouncer --------------------------------------------------------------------------------


def test_pgbouncer_turns_the_statement_cache_off() -> None:
    assert statement_cache_size(Settings(database_pgbouncer=True)) == 0
    assert statement_cache_size(Settings(database_pgbouncer=False)) == 100
    config = tortoise_config(
        "postgresql://u@pgbouncer:6432/db",
        statement_cache_size=statement_cache_size(Settings(database_pgbouncer=True)),
    )
    assert config["connections"]["default"]["credentials"]["statement_cache_size"] == 0


# --- tracing ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_without_otel_endpoint_nothing_of_opentelemetry_is_loaded(services: Services) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    code = (
        "import sys; from api.app import create_app; app = create_app(); "
        "loaded = [m for m in sys.modules if m.startswith('opentelemetry')]; "
        "assert not loaded, loaded; "
        "assert 'OpenTelemetryMiddleware' not in repr(app.user_middleware)"
    )
    subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, cwd=Path(__file__).resolve().parents[2]
    )


async def test_with_otel_endpoint_requests_and_queries_are_traced(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app starts with tracing on; spans go to an in-memory exporter (no network)."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from api.app import create_app
    from api.tracing import setup_tracing, shutdown_tracing
    from core.settings import get_settings

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # never contacted
    exporter = InMemorySpanExporter()
    setup_tracing(exporter)
    try:
        app = create_app(get_settings())
        assert any("OpenTelemetryMiddleware" in repr(m) for m in app.user_middleware)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            # no lifespan here: /readyz's database check runs on the session's pool, Redis
            # is not attached to this app (so 503), which is enough to produce both spans
            await http.get("/readyz")
            await http.get("/graphql?query=%7B__typename%7D")
            # a GET's variables are in the URL the span records: secrets are redacted
            await http.get(
                "/graphql",
                params={
                    "query": "query($i: LogInInput!) { __typename }",
                    "variables": '{"i": {"email": "e@x", "password": "hunter2-span"}}',
                    "token": "hunter2-param",
                },
            )
        spans = exporter.get_finished_spans()
        recorded = repr([dict(span.attributes or {}) for span in spans])
        assert "hunter2" not in recorded and "REDACTED" in recorded, recorded
        assert "e%40x" in recorded or "e@x" in recorded, recorded
        names = [span.name for span in spans]
        assert any(n.startswith("GET /graphql") for n in names), names
        assert any("SELECT" in n or n == "postgresql" for n in names), names
        assert not any("readyz" in n for n in names if n.startswith("GET")), names
    finally:
        shutdown_tracing()
