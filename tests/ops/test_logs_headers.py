"""Logs, headers and the development IDE (issue 12, items 12, 13, 14, 16, 17).

- A client's bad query is one JSON line (no traceback, no source excerpt), and variables
  named like secrets never reach the log, nested or quoted inside an error message.
- Every process (`trendscope api`, `worker`, `analytics-worker`, `migrate`) writes only JSON
  lines on a non-TTY stderr: uvicorn, ARQ, Dramatiq and Tortoise included; no deprecation
  warning, no "Tortoise-ORM shutdown".
- `X-Content-Type-Options: nosniff` everywhere, `Cache-Control: no-store` on credentialed
  answers, `/metrics` guarded, anonymous requests limited per client IP.
- GraphiQL from local assets only, with a Content-Security-Policy.
"""

from __future__ import annotations

import io
import json
import logging
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
import structlog

from core.logging import formatter, redact_secrets
from core.settings import RateLimits
from tests.apikeys.test_rate_limits import Clock, an_ip, clock, limits  # noqa: F401  (fixtures)
from tests.conftest import GQL, Server, Services, Tenant, _free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "hunter2-do-not-log"
SIGN_UP = """mutation($i: SignUpInput!) { signUp(input: $i) { __typename } }"""
NAMES = "{ influencers(first: 1) { edges { node { id } } } }"


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of `text` parsed as JSON (fails on the first line that is not)."""
    parsed = []
    for line in text.splitlines():
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON log line: {line!r}\n--- whole output:\n{text}")
    return parsed


def _wait_for(path: Path, pattern: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not re.search(pattern, path.read_text(errors="replace")):
        assert proc.poll() is None, path.read_text(errors="replace")
        assert time.monotonic() < deadline, path.read_text(errors="replace")
        time.sleep(0.1)


def _spawn(args: list[str], services: Services, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url}
    env.pop("PYTHONWARNINGS", None)
    with log.open("wb") as out:  # stderr is a file, not a TTY: JSON lines
        return subprocess.Popen(
            [sys.executable, "-m", "api.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def api_process(
    server: Server, services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """`trendscope api` in a subprocess on this run's (migrated) database: (url, stderr file)."""
    log = tmp_path_factory.mktemp("api") / "stderr.log"
    port = _free_port()
    proc = _spawn(["api", "--port", str(port)], services, log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url, log
    finally:
        _stop(proc)


# --- item 12: one line per bad request, secrets redacted --------------------------------------


@pytest.mark.slow
def test_a_bad_query_is_one_json_line_and_secrets_are_redacted(
    api_process: tuple[str, Path],
) -> None:
    url, log = api_process
    # graphql-core quotes the rejected variables in its message: password, token and all
    bad_variables = {
        "i": {
            "email": "a@example.com",
            "password": SECRET,
            "nested": {"refreshToken": SECRET, "apiKey": SECRET},
        }
    }
    # 400 unknown fields: Strawberry used to log each error with its source excerpt
    many_errors = "{ " + " ".join(f"f{i}" for i in range(400)) + " }"
    ids = []
    for i, body in enumerate(
        ({"query": SIGN_UP, "variables": bad_variables}, {"query": many_errors})
    ):
        rid = f"bad-query-{i}-{time.monotonic_ns()}"
        ids.append(rid)
        headers = {"X-Request-Id": rid, "Accept": "application/graphql-response+json"}
        response = httpx.post(url + "/graphql", json=body, headers=headers)
        assert response.status_code == 400
        assert response.json()["errors"]
    time.sleep(0.5)  # the access line is written after the response
    text = log.read_text()
    assert SECRET not in text
    assert "Traceback" not in text and "GraphQL request:" not in text
    lines = json_lines(text)
    for rid in ids:
        mine = [line for line in lines if line.get("request_id") == rid]
        assert len(mine) == 1, mine
        (line,) = mine
        assert line["event"] == "request" and line["status"] == 400
        assert "\n" not in line["error"] and len(line["error"]) <= 300
    first = next(line for line in lines if line.get("request_id") == ids[0])
    assert "[REDACTED]" in first["error"] and "a@example.com" in first["error"]
    second = next(line for line in lines if line.get("request_id") == ids[1])
    assert second["error_count"] > 100  # graphql-core stops validating after 100


def test_secret_named_variables_are_redacted_at_any_depth() -> None:
    event = {
        "event": "something",
        "variables": {
            "input": {"password": "p", "newPassword": "p", "email": "e@x"},
            "list": [{"token": "t", "code": "c", "apiKeyId": 7}],
            "refreshToken": "r",
            "API_KEY": "k",
            "clientSecret": "s",
            "first": 10,
        },
        "message": "found: {'password': 'p', 'Code': \"c\"} and token=abc&state=ok",
    }
    out = redact_secrets(None, "info", event)
    v = out["variables"]
    assert v["input"] == {"password": "[REDACTED]", "newPassword": "[REDACTED]", "email": "e@x"}
    assert v["list"] == [{"token": "[REDACTED]", "code": "[REDACTED]", "apiKeyId": 7}]
    assert v["refreshToken"] == v["API_KEY"] == v["clientSecret"] == "[REDACTED]"
    assert v["first"] == 10
    assert out["message"] == (
        "found: {'password': [REDACTED], 'Code': [REDACTED]} and token=[REDACTED]&state=ok"
    )


def test_stdlib_and_structlog_lines_share_the_format_and_redaction() -> None:
    """The process's one formatter: a stdlib line (uvicorn, ARQ...) and a structlog line both
    come out as one JSON object; a terminal gets readable text instead."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(tty=False))
    logger = logging.getLogger("tests.logs_probe")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.info("job %s(password='%s') started", "send", SECRET)
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = json_lines(stream.getvalue())
    assert first["logger"] == "tests.logs_probe" and first["level"] == "info"
    assert SECRET not in first["event"]
    assert second["level"] == "error" and "ValueError: boom" in second["exception"]
    console = formatter(tty=True).format(
        logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    )
    assert "hello" in console and not console.lstrip().startswith("{")
    assert structlog.is_configured()


# --- item 16: one console -------------------------------------------------------------------


def _assert_clean(text: str) -> list[dict[str, Any]]:
    lines = json_lines(text)
    assert "DeprecationWarning" not in text and "Tortoise-ORM shutdown" not in text
    return lines


@pytest.mark.slow
def test_api_stderr_is_json_lines_only(api_process: tuple[str, Path]) -> None:
    _, log = api_process
    lines = _assert_clean(log.read_text())
    assert any(line["event"] == "api_started" for line in lines)


@pytest.mark.slow
def test_worker_and_analytics_worker_and_migrate_write_json_lines(
    server: Server, services: Services, tmp_path: Path
) -> None:
    worker_log = tmp_path / "worker.log"
    worker = _spawn(["worker"], services, worker_log)
    analytics_log = tmp_path / "analytics.log"
    analytics = _spawn(
        ["analytics-worker", "--processes", "1", "--threads", "1"], services, analytics_log
    )
    try:
        _wait_for(worker_log, "Starting worker", worker, timeout=60)  # ARQ's own line
        _wait_for(analytics_log, "ready for action", analytics, timeout=120)  # Dramatiq's
    finally:
        _stop(worker)
        _stop(analytics)
    worker_lines = _assert_clean(worker_log.read_text())
    assert any(line.get("logger", "").startswith("arq") for line in worker_lines)
    analytics_lines = _assert_clean(analytics_log.read_text())
    assert any(line.get("logger", "").startswith("dramatiq") for line in analytics_lines)
    migrate_log = tmp_path / "migrate.log"
    migrate = _spawn(["migrate"], services, migrate_log)
    assert migrate.wait(timeout=120) == 0, migrate_log.read_text()
    _assert_clean(migrate_log.read_text())


# --- item 14: headers, /metrics ---------------------------------------------------------------


async def test_every_answer_has_nosniff_and_credentialed_ones_no_store(
    gql: GQL, tenant: Tenant
) -> None:
    anonymous = await gql.raw("{ __typename }")
    assert anonymous.headers["x-content-type-options"] == "nosniff"
    assert "no-store" not in anonymous.headers.get("cache-control", "")
    for response in (
        await gql.raw(NAMES, token=tenant.token),  # an answer with tenant data
        await gql.raw(NAMES, token="not-a-valid-token"),  # the auth middleware's 401
        await gql.http.get("/healthz", headers={"Authorization": f"Bearer {tenant.token}"}),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"].startswith("no-store"), response.headers
    assert (await gql.http.get("/healthz")).headers["x-content-type-options"] == "nosniff"


async def test_metrics_need_the_token_when_set_and_are_closed_in_production(
    server: Server, services: Services
) -> None:
    from api.app import create_app

    token = "metrics-token-0123456789abcdef"
    guarded = server.settings.model_copy(update={"metrics_token": token})
    production = server.settings.model_copy(update={"env": "production"})
    for settings, headers, status in (
        (guarded, {}, 401),
        (guarded, {"Authorization": "Bearer wrong-token-0123456789abcdef"}, 401),
        (guarded, {"Authorization": f"Bearer {token}"}, 200),
        (production, {}, 404),
        (production, {"Authorization": f"Bearer {token}"}, 404),
        (
            production.model_copy(update={"metrics_token": token}),
            {"Authorization": f"Bearer {token}"},
            200,
        ),
    ):
        # No lifespan (the app's own pools are this process's already): in this loop.
        transport = httpx.ASGITransport(app=create_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            response = await client.get("/metrics", headers=headers)
        assert response.status_code == status, (settings.env, headers)
        assert response.headers["x-content-type-options"] == "nosniff"
        if status == 200:
            assert "trendscope_requests_total" in response.text


# --- item 13: anonymous requests per client IP ------------------------------------------------


async def test_anonymous_requests_are_limited_per_ip(
    gql: GQL,
    tenant: Tenant,
    clock: Clock,  # noqa: F811
    limits: RateLimits,  # noqa: F811
) -> None:
    limits.anonymous_per_ip = 3
    ip, other = an_ip(), an_ip()
    for _ in range(3):
        assert (await gql.raw("{ __typename }", headers=ip)).status_code == 200
    refused = await gql.raw("{ __typename }", headers=ip)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["content-type"].startswith("application/json")
    (error,) = refused.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    # another address, a credentialed request from the same one, and probes are unaffected
    assert (await gql.raw("{ __typename }", headers=other)).status_code == 200
    assert (await gql.raw(NAMES, token=tenant.token, headers=ip)).status_code == 200
    assert (await gql.http.get("/healthz", headers=ip)).status_code == 200
    assert (await gql.http.get("/graphiql/static/graphiql.min.css", headers=ip)).status_code == 200
    clock.now += 3600 / 3  # one request's worth drips back
    assert (await gql.raw("{ __typename }", headers=ip)).status_code == 200


# --- item 17: GraphiQL offline ------------------------------------------------------------------


async def test_graphiql_uses_only_local_assets_under_a_csp(gql: GQL) -> None:
    page = await gql.http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "GraphiQL" in page.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text), page.text
    assert "unpkg" not in page.text and "cdn" not in page.text.lower()
    csp = page.headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in csp and "frame-ancestors 'none'" in csp
    host = gql.http.base_url.netloc.decode()
    assert f"connect-src 'self' ws://{host} wss://{host}" in csp
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'nonce="{nonce.group(1)}"' in page.text
    assets = re.findall(r"""(?:src|href)="(/graphiql/static/[^"]+)\"""", page.text)
    assert len(assets) >= 5
    for path in assets:
        asset = await gql.http.get(path)
        assert asset.status_code == 200, path
        assert len(asset.content) > 1000
        assert asset.headers["x-content-type-options"] == "nosniff"
    # the globals the inline script uses are defined by those bundles
    bundles = {p.rsplit("/", 1)[1]: (await gql.http.get(p)).text for p in assets}
    assert "createFetcher" in bundles["graphiql.min.js"]
    assert "graphqlWs" in bundles["graphql-ws.min.js"]


async def test_an_unexpected_error_is_logged_once_with_its_traceback(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """Masked for the client, one `unexpected_error` line with the traceback in the log (by
    MaskUnexpectedErrors), and not a second time by Strawberry's own error logger."""
    from types import SimpleNamespace

    from structlog.testing import capture_logs

    from api.graphql.executable import schema

    # a principal without a user id attribute: the viewer resolver fails unexpectedly
    broken = SimpleNamespace(
        tenant_id=None, tenant_schema=None, scopes=frozenset(), role="owner", credential="x"
    )
    context = SimpleNamespace(tenant_schema=None, principal=broken, request_id="unexpected-1")
    with capture_logs() as logs, caplog.at_level(logging.DEBUG, logger="strawberry"):
        result = await schema.execute("{ viewer { role } }", context_value=context)
    (error,) = result.errors or []
    assert error.extensions == {"code": "INTERNAL_SERVER_ERROR", "requestId": "unexpected-1"}
    errors = [line for line in logs if line["log_level"] in ("error", "critical")]
    assert [line["event"] for line in errors] == ["unexpected_error"]
    assert isinstance(errors[0]["exc_info"], AttributeError)
    assert not [r for r in caplog.records if r.name.startswith("strawberry")]
