"""Job failures heal or end, and the tenant hears of it (issue 12, item 4).

- A brief database fault (the job's own backend terminated with pg_terminate_backend, on the
  test's database only) is retried by the job machinery: the task still SUCCEEDS, and its job
  id can be queued again at once (ARQ keeps no result that would refuse it for an hour).
- A collection against an unreachable platform (a connector base URL on a closed local port)
  is retried with back-off, showing `lastError` and `nextAttemptAt` while it waits, and ends
  FAILED with the reason once JOB_MAX_ATTEMPTS runs failed, or once failures lasted
  JOB_MAX_AGE_SECONDS; the `collection_task_updated` event carries the reason (Redis pub/sub
  and the graphql-transport-ws subscription).
- A task whose job keeps being lost is requeued by the cron only while within the bound.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from strawberry.relay import GlobalID

from core.runtime import runtime
from domain.collection.models import CollectionTask
from domain.collection.service import IMPORT_JOB
from tenants import outbox
from tenants.tx import tenant_tx
from tests.collection.test_collection import connect, influencer, start
from tests.collection.test_import import jsonl, rows_for
from tests.conftest import GQL, Server, Services, Tenant, import_file, run_jobs

TASK = """query($id: ID!) { collectionTask(id: $id) { status attempts error lastError
    nextAttemptAt processed total created } }"""
WATCH = """subscription($id: ID!) { collectionTaskUpdated(id: $id) { status attempts error
    lastError nextAttemptAt } }"""


@pytest.fixture
def job_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set job settings (env) for one test; the worker reads them through get_settings()."""
    from core.settings import get_settings

    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def configure(monkeypatch: pytest.MonkeyPatch, **values: Any) -> None:
    from core.settings import get_settings

    for name, value in values.items():
        monkeypatch.setenv(name.upper(), str(value))
    get_settings.cache_clear()


def pk(global_id: str) -> int:
    return int(GlobalID.from_id(global_id).node_id)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _terminate_blocked_backend(holder: asyncpg.Connection) -> int:
    """Wait for the backend that queues behind `holder`'s row lock (the job's), kill it."""
    holder_pid = await holder.fetchval("SELECT pg_backend_pid()")
    for _ in range(1500):
        pid = await holder.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND $1 = ANY(pg_blocking_pids(pid))",
            holder_pid,
        )
        if pid is not None:
            assert await holder.fetchval("SELECT pg_terminate_backend($1)", pid)
            return int(pid)
        await asyncio.sleep(0.02)
    raise AssertionError("the job never reached the locked task row")


async def test_brief_database_error_is_retried_and_the_task_can_be_queued_again(
    services: Services, gql: GQL, tenant: Tenant, job_settings: pytest.MonkeyPatch
) -> None:
    configure(job_settings, job_retry_base_seconds=0.2, job_retry_max_seconds=0.2)
    handles = ["dbblip_a", "dbblip_b"]
    for h in handles:
        await gql.ok(
            """mutation($i: AddInfluencerInput!) { addInfluencer(input: $i) { __typename } }""",
            {"i": {"displayName": h, "accounts": [{"platform": "INSTAGRAM", "handle": h}]}},
            token=tenant.token,
        )
    created = await import_file(gql, tenant.token, "posts.jsonl", jsonl(rows_for(handles, 8)))
    task_id = created["task"]["id"]

    # The job's first database step (locking its task row) waits behind this transaction;
    # its backend is then terminated, as a failover or an admin would, and the lock released.
    holder = await asyncpg.connect(services.database_url)
    try:
        await holder.execute("BEGIN")
        await holder.execute(
            f'SELECT 1 FROM "{tenant.schema}".collection_task WHERE id = $1 FOR UPDATE',
            pk(task_id),
        )
        worker = asyncio.create_task(run_jobs())
        await _terminate_blocked_backend(holder)
        await holder.execute("ROLLBACK")
        await asyncio.wait_for(worker, 60)
    finally:
        await holder.close()

    task = (await gql.ok(TASK, {"id": task_id}, token=tenant.token))["collectionTask"]
    assert task["status"] == "SUCCEEDED", task
    assert (task["processed"], task["created"]) == (8, 8)
    assert task["lastError"] and task["lastError"].startswith("database unavailable"), task
    assert task["nextAttemptAt"] is None and task["error"] is None

    # Its deterministic job id is free again: no result refuses it, a new job is taken and
    # finds nothing left to do.
    assert runtime.arq is not None and runtime.redis is not None
    jid = outbox.job_id(IMPORT_JOB, tenant.schema, pk(task_id))
    assert not await runtime.redis.exists(f"arq:result:{jid}")
    again = await runtime.arq.enqueue_job(
        IMPORT_JOB, tenant.schema, pk(task_id), _job_id=jid, _queue_name=runtime.queue_name
    )
    assert again is not None
    await run_jobs()
    task = (await gql.ok(TASK, {"id": task_id}, token=tenant.token))["collectionTask"]
    assert (task["status"], task["created"]) == ("SUCCEEDED", 8)


async def _watch(server: Server, token: str, task_id: str) -> tuple[Any, list[dict[str, Any]]]:
    from tests.graphql.test_subscriptions import connect as ws_connect

    ws = await ws_connect(server, token)
    assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
    payload = {"query": WATCH, "variables": {"id": task_id}}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    first = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert first["type"] == "next", first
    return ws, [first["payload"]["data"]["collectionTaskUpdated"]]


async def _until_finished(ws: Any, seen: list[dict[str, Any]]) -> None:
    while seen[-1]["status"] not in ("SUCCEEDED", "FAILED"):
        msg = json.loads(await asyncio.wait_for(ws.recv(), 60))
        assert msg["type"] == "next", msg
        seen.append(msg["payload"]["data"]["collectionTaskUpdated"])


@pytest.fixture
async def task_events(tenant: Tenant) -> AsyncIterator[list[dict[str, Any]]]:
    """Every `collection_task_updated` event of the tenant, as published on Redis."""
    from core import hub
    from domain import events

    assert runtime.redis is not None
    pubsub = runtime.redis.pubsub()
    await pubsub.subscribe(hub.channel(tenant.schema, events.COLLECTION_TASK_UPDATED))
    received: list[dict[str, Any]] = []

    async def listen() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                received.append(json.loads(message["data"]))

    listener = asyncio.create_task(listen())
    try:
        yield received
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _unreachable_youtube(job_settings: pytest.MonkeyPatch, **bounds: Any) -> None:
    base = f"http://127.0.0.1:{closed_port()}/youtube/v3"
    configure(
        job_settings,
        connector_base_urls=json.dumps({"youtube": base}),
        connector_retry_base_seconds=0.01,
        **bounds,
    )


async def test_unreachable_platform_fails_after_the_attempts_bound_and_alerts(
    server: Server,
    gql: GQL,
    tenant: Tenant,
    job_settings: pytest.MonkeyPatch,
    task_events: list[dict[str, Any]],
) -> None:
    await _unreachable_youtube(
        job_settings, job_max_attempts=3, job_retry_base_seconds=0.5, job_retry_max_seconds=0.5
    )
    await connect(gql, tenant)
    task_id = await start(gql, tenant, await influencer(gql, tenant, "alpha"))
    ws, seen = await _watch(server, tenant.token, task_id)
    try:
        await asyncio.gather(run_jobs(), _until_finished(ws, seen))
    finally:
        await ws.close()

    task = (await gql.ok(TASK, {"id": task_id}, token=tenant.token))["collectionTask"]
    assert task["status"] == "FAILED", task
    assert task["attempts"] == 3
    assert task["error"].startswith("gave up after 3 failed attempts in a row: youtube:"), task
    assert "ConnectError" in task["lastError"] and task["nextAttemptAt"] is None

    # While it waited, subscribers saw why and when the next run was due.
    waiting = [s for s in seen if s["status"] == "PENDING" and s["nextAttemptAt"]]
    assert waiting and all("ConnectError" in s["lastError"] for s in waiting), seen
    assert seen[-1]["status"] == "FAILED" and seen[-1]["error"] == task["error"]

    # The tenant's event (webhooks and any subscriber) carries the reason.
    for _ in range(100):
        if any(e["status"] == "failed" for e in task_events):
            break
        await asyncio.sleep(0.05)
    mine = [e for e in task_events if e["id"] == pk(task_id)]
    assert any(e["status"] == "pending" and e["next_attempt_at"] for e in mine), mine
    assert mine[-1]["status"] == "failed" and mine[-1]["error"] == task["error"]
    assert "ConnectError" in mine[-1]["last_error"]


async def test_unreachable_platform_fails_after_the_age_bound(
    gql: GQL, tenant: Tenant, job_settings: pytest.MonkeyPatch
) -> None:
    await _unreachable_youtube(
        job_settings,
        job_max_attempts=100,
        job_max_age_seconds=1,
        job_retry_base_seconds=0.3,
        job_retry_max_seconds=0.3,
    )
    await connect(gql, tenant)
    task_id = await start(gql, tenant, await influencer(gql, tenant, "alpha"))
    await run_jobs()
    task = (await gql.ok(TASK, {"id": task_id}, token=tenant.token))["collectionTask"]
    assert task["status"] == "FAILED", task
    assert task["error"].startswith("gave up after failing for"), task
    assert 1 < task["attempts"] < 100


async def test_a_task_whose_job_keeps_getting_lost_ends_failed(
    gql: GQL, tenant: Tenant, job_settings: pytest.MonkeyPatch
) -> None:
    """The requeue cron counts each lost job as a failed run: a queued job is left alone, a
    lost one is queued again, and the third loss (JOB_MAX_ATTEMPTS=3) ends the task."""
    from jobs.collection import requeue_stale

    configure(job_settings, job_max_attempts=3)
    await gql.ok(
        """mutation($i: AddInfluencerInput!) { addInfluencer(input: $i) { __typename } }""",
        {"i": {"displayName": "lost", "accounts": [{"platform": "INSTAGRAM", "handle": "lost"}]}},
        token=tenant.token,
    )
    created = await import_file(gql, tenant.token, "posts.jsonl", jsonl(rows_for(["lost"], 2)))
    task_pk = pk(created["task"]["id"])
    jid = outbox.job_id(IMPORT_JOB, tenant.schema, task_pk)
    assert runtime.arq is not None

    async def task_row() -> CollectionTask:
        async with tenant_tx(tenant.schema):
            return await CollectionTask.get(id=task_pk)

    await requeue_stale({}, stale_after=timedelta(0))  # queued, so not lost: untouched
    row = await task_row()
    assert (row.status, row.retries, row.last_error) == ("pending", 0, None)

    for loss in (1, 2, 3):
        # Redis loses the job (a restart without persistence).
        await runtime.arq.zrem(runtime.queue_name, jid)
        await runtime.arq.delete(f"arq:job:{jid}")
        await requeue_stale({}, stale_after=timedelta(0))
        row = await task_row()
        requeued = await runtime.arq.zscore(runtime.queue_name, jid)
        if loss < 3:
            assert (row.status, row.retries) == ("pending", loss)
            assert row.last_error == "its job was lost before it ran" and requeued is not None
        else:
            assert row.status == "failed" and requeued is None
            assert row.error == "gave up after 3 failed attempts in a row: its job was lost " + (
                "before it ran"
            )


def test_which_failures_count_as_a_database_blip() -> None:
    """Real exception chains as asyncpg and httpx raise them: a terminated backend seen through
    a failed rollback is transient; a platform's refused connection is not a database fault,
    nor is a bad query."""
    import httpx

    from jobs.retry import is_transient_db_error

    def chained(outer: BaseException, inner: BaseException) -> BaseException:
        try:
            try:
                raise inner
            except BaseException:
                raise outer  # noqa: B904 (the implicit context is what is tested)
        except BaseException as exc:
            return exc

    shutdown = asyncpg.exceptions.AdminShutdownError("terminating connection")
    rollback = asyncpg.InterfaceError("cannot call Transaction.rollback(): connection is closed")
    assert is_transient_db_error(chained(rollback, shutdown))
    assert is_transient_db_error(asyncpg.exceptions.DeadlockDetectedError("deadlock"))
    assert is_transient_db_error(ConnectionRefusedError(111, "Connection refused"))
    refused = chained(
        httpx.ConnectError("All connection attempts failed"), ConnectionRefusedError()
    )
    assert not is_transient_db_error(refused)
    assert not is_transient_db_error(asyncpg.exceptions.UndefinedColumnError("no such column"))
    assert not is_transient_db_error(ValueError("bad input"))
