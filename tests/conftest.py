"""Test services: the machine's PostgreSQL/Redis when TEST_DATABASE_URL / TEST_REDIS_URL are
set, the embedded ones otherwise. Each run creates its own database (dropped at the end) and
its own ARQ queue / Dramatiq namespace, and starts the real app on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import asyncpg
import httpx
import pytest
import uvicorn

RUN_ID = secrets.token_hex(4)


@dataclass
class Services:
    database_url: str  # this run's own database
    redis_url: str
    admin_url: str  # the server's maintenance database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_db(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    db = os.environ.get("TEST_DATABASE_URL")
    redis = os.environ.get("TEST_REDIS_URL")
    embedded = None
    if not db or not redis:
        from api.embedded import start_embedded

        embedded = start_embedded(
            Path(tempfile.mkdtemp(prefix="trendscope-test-")), postgres=not db, redis=not redis
        )
        db = db or embedded.database_url
        redis = redis or embedded.redis_url
    assert db and redis
    name = f"trendscope_test_{RUN_ID}"

    async def create() -> None:
        conn = await asyncpg.connect(db)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    settings_env = {
        "DATABASE_URL": _with_db(db, name),
        "REDIS_URL": redis,
        "ENV": "test",
        "ARQ_QUEUE_NAME": f"trendscope-test-{RUN_ID}:arq",
        "DRAMATIQ_NAMESPACE": f"trendscope-test-{RUN_ID}",
        "APQ_KEY_PREFIX": f"trendscope-test-{RUN_ID}:apq",
        "QUOTA_KEY_PREFIX": f"trendscope-test-{RUN_ID}",
        "RATE_LIMIT_KEY_PREFIX": f"trendscope-test-{RUN_ID}:rl",
        # Every test signs up from 127.0.0.1: the per-IP sign-in limit would bite the suite.
        # tests/apikeys/test_rate_limits.py lowers it where it tests it.
        "RATE_LIMITS__AUTH_PER_IP": "1000000",
        "RATE_LIMITS__ANONYMOUS_PER_IP": "1000000",  # the same for anonymous requests
        "SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
    }
    old = {k: os.environ.get(k) for k in settings_env}
    os.environ.update(settings_env)
    from core.settings import get_settings

    get_settings.cache_clear()
    try:
        yield Services(database_url=settings_env["DATABASE_URL"], redis_url=redis, admin_url=db)
    finally:

        async def drop() -> None:
            conn = await asyncpg.connect(db)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(drop())

        async def forget_redis_keys() -> None:  # this run's queue, buckets, APQ entries
            from redis.asyncio import Redis

            client = Redis.from_url(redis)
            try:
                async for key in client.scan_iter(match=f"trendscope-test-{RUN_ID}*", count=500):
                    await client.delete(key)
            finally:
                await client.aclose()

        asyncio.run(forget_redis_keys())
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if embedded is not None:
            embedded.stop()


# Settings that production accepts (core/settings.py `insecure_settings`), for tests that
# build production Settings objects.
SECURE_PRODUCTION = {
    "env": "production",
    "secret_key": "p" * 48,
    "credential_keys": "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=",
    "public_url": "https://api.example.com",
    "app_url": "https://app.example.com",
    "database_url": "postgresql://app@db.example/app",
    "redis_url": "redis://cache.example:6379/0",
}


def production_settings(**changes: Any) -> Any:
    from core.settings import Settings

    return Settings(**{**SECURE_PRODUCTION, **changes})


@dataclass
class Server:
    url: str
    ws_url: str
    # The running app's own settings: get_settings() may be another object once a test has
    # cleared its cache; tests that adjust the app's behaviour change these.
    settings: Any = None
    app: Any = None  # the Starlette app: tests read its event hub (tests/wsclient.py)


@pytest.fixture(scope="session")
async def server(services: Services) -> AsyncIterator[Server]:
    """The real app (lifespan included) served by uvicorn on a loopback port, in this loop."""
    from api.app import create_app
    from core.settings import get_settings
    from tenants.migrate import migrate_all

    app_settings = get_settings()
    app = create_app(app_settings)
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", ws_per_message_deflate=False
    )
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    await migrate_all()
    try:
        yield Server(
            url=f"http://127.0.0.1:{port}",
            ws_url=f"ws://127.0.0.1:{port}/graphql",
            settings=app_settings,
            app=app,
        )
    finally:
        srv.should_exit = True
        await task


@pytest.fixture
async def redis(services: Services) -> AsyncIterator[Any]:
    """A Redis client of the test's own, on this run's Redis."""
    from redis.asyncio import Redis

    client = Redis.from_url(services.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@dataclass
class Tenant:
    slug: str
    schema: str
    token: str
    refresh_token: str
    email: str
    password: str


class GQL:
    """A tiny GraphQL-over-HTTP client for tests."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def raw(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=h
        )

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        response = await self.raw(query, variables, token=token, headers=headers)
        body: dict[str, Any] = response.json()
        return body

    async def ok(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        body = await self(query, variables, **kw)
        assert not body.get("errors"), body
        return body["data"]

    async def sign_up(self, slug: str | None = None) -> Tenant:
        slug = slug or f"t{secrets.token_hex(4)}"
        email, password = f"owner@{slug}.example", "correct horse battery"
        data = await self.ok(
            """mutation($i: SignUpInput!) { signUp(input: $i) {
                __typename ... on AuthPayload { accessToken refreshToken tenantSlug }
                ... on ValidationFailed { message } } }""",
            {"i": {"email": email, "password": password, "tenantName": slug, "tenantSlug": slug}},
        )
        payload = data["signUp"]
        assert payload["__typename"] == "AuthPayload", payload
        return Tenant(
            slug=slug,
            schema=f"t_{slug}",
            token=payload["accessToken"],
            refresh_token=payload["refreshToken"],
            email=email,
            password=password,
        )


@pytest.fixture
async def gql(server: Server) -> AsyncIterator[GQL]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield GQL(http)


@pytest.fixture
async def tenant(gql: GQL) -> Tenant:
    return await gql.sign_up()


@pytest.fixture
async def other_tenant(gql: GQL) -> Tenant:
    return await gql.sign_up()


async def set_plan(slug: str, plan: str) -> None:
    """Put a test tenant on another plan (tenants/plans.py), as a Stripe webhook would."""
    from tenants.models import Tenant as TenantRow
    from tenants.policy import policies

    await TenantRow.filter(slug=slug).update(plan=plan)
    policies.invalidate()


async def run_jobs() -> None:
    """Run every queued ARQ job in-process (a burst worker), then return."""
    from arq.worker import Worker

    from jobs.worker import worker_settings

    settings = worker_settings()
    settings["cron_jobs"] = []
    worker = Worker(**settings, burst=True, poll_delay=0.05, handle_signals=False)
    try:
        # A job that can never run (say, held by a dead worker's in-progress key) would keep
        # a burst worker polling for ever: fail instead.
        await asyncio.wait_for(worker.main(), timeout=120)
    finally:
        await worker.close()


async def expire_dead_worker_jobs() -> int:
    """Delete the in-progress keys of every job in this run's queue: what happens by itself
    once a SIGKILLed worker's keys expire (after the job timeout). Returns how many."""
    from core.runtime import runtime

    assert runtime.redis is not None
    deleted = 0
    for job_id in await runtime.redis.zrange(runtime.queue_name, 0, -1):
        jid = job_id.decode() if isinstance(job_id, bytes) else str(job_id)
        deleted += int(await runtime.redis.delete(f"arq:in-progress:{jid}"))
    return deleted


def upload_request(
    query: str,
    file_var: str,
    filename: str,
    content: bytes,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """httpx kwargs for a GraphQL multipart request (the spec's operations/map/file parts),
    with the header a browser form cannot send (the server's CSRF check; api/graphql/http_input.py)."""
    import json

    ops = {"query": query, "variables": {**(variables or {}), file_var: None}}
    return {
        "data": {
            "operations": json.dumps(ops),
            "map": json.dumps({"0": [f"variables.{file_var}"]}),
        },
        "files": {"0": (filename, content, "application/octet-stream")},
        "headers": {**(headers or {}), "GraphQL-Require-Preflight": "1"},
    }


IMPORT_POSTS = """mutation($file: Upload!) { importPosts(file: $file) { __typename
    ... on ImportPostsSuccess { task { id status total } }
    ... on ValidationFailed { code fields { field message } } } }"""


async def import_file(gql: GQL, token: str, filename: str, content: bytes) -> dict[str, Any]:
    response = await gql.http.post(
        "/graphql",
        **upload_request(
            IMPORT_POSTS, "file", filename, content, headers={"Authorization": f"Bearer {token}"}
        ),
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["importPosts"]  # type: ignore[no-any-return]


async def drop_other_tenants_messages(tenants: Sequence[Tenant]) -> int:
    """Remove from this run's Dramatiq queues every message that is not for one of `tenants`;
    returns how many. Earlier tests' imports and crons queued analytics work for their own
    tenants, which no worker consumed: a worker end-to-end test waits for its tenants' work,
    not for every tenant of the run."""
    import json

    from core.broker import get_broker

    broker = get_broker()
    ours = {t.schema for t in tenants}
    client = broker.client
    dropped = 0
    for queue in ("analytics", "analytics.DQ"):  # ready, and delayed (retries, eta)
        key = f"{broker.namespace}:{queue}"
        for message_id, raw in (await asyncio.to_thread(client.hgetall, f"{key}.msgs")).items():
            args = json.loads(raw).get("args") or [None]
            if args[0] not in ours:  # every actor's first argument is the tenant's schema
                await asyncio.to_thread(client.hdel, f"{key}.msgs", message_id)
                await asyncio.to_thread(client.lrem, key, 0, message_id)
                dropped += 1
    return dropped


async def start_analytics_worker(
    *args: str, tenants: Sequence[Tenant], threads: int = 1
) -> asyncio.subprocess.Process:
    """A real `trendscope analytics-worker` process (one Dramatiq process) on this run's
    namespace, after the queue was cleared of other tenants' messages (see
    `drop_other_tenants_messages`); stop it with `stop_analytics_worker`."""
    import sys

    await drop_other_tenants_messages(tenants)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api.cli",
        "analytics-worker",
        "--processes",
        "1",
        "--threads",
        str(threads),
        *args,
        env=dict(os.environ),
        start_new_session=True,  # dramatiq forks a worker process: signal the whole group
    )


async def stop_analytics_worker(worker: asyncio.subprocess.Process) -> None:
    import contextlib
    import signal

    worker.terminate()  # the main process forwards TERM to its worker process
    try:
        await asyncio.wait_for(worker.wait(), timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)


@dataclass
class ApiProcess:
    """A `trendscope api` subprocess: its URLs and the process (to signal or kill it)."""

    http_url: str
    ws_url: str
    proc: asyncio.subprocess.Process


@contextlib.asynccontextmanager
async def api_process(services: Services, **env: str) -> AsyncIterator[ApiProcess]:
    """`trendscope api` (the real CLI, signals and all) on a free port, on this run's
    database and Redis unless `env` says otherwise (e.g. REDIS_URL of a throwaway server)."""
    port = _free_port()
    environ = {
        **os.environ,
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        **env,
    }
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "api.cli", "api", "--port", str(port)),
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{url}/healthz")).status_code == 200:
                        break
                assert proc.returncode is None, "trendscope api exited"
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("trendscope api did not start")
        yield ApiProcess(url, f"ws://127.0.0.1:{port}/graphql", proc)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
