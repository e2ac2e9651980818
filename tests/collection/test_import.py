"""Importing posts: the multipart upload, the ARQ job, idempotency and crash recovery."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from strawberry.relay import GlobalID

from domain.collection.models import CollectionTask
from domain.posts.models import Post
from jobs.collection import requeue_stale
from tenants.tx import tenant_tx
from tests.conftest import GQL, Tenant, expire_dead_worker_jobs, import_file, run_jobs

TASK = """query($id: ID!) { collectionTask(id: $id) { status total processed created updated
    skipped progress errors { row message } } }"""


async def add_accounts(gql: GQL, token: str, handles: list[str]) -> None:
    for h in handles:
        data = await gql.ok(
            """mutation($i: AddInfluencerInput!) { addInfluencer(input: $i) { __typename } }""",
            {"i": {"displayName": h, "accounts": [{"platform": "INSTAGRAM", "handle": h}]}},
            token=token,
        )
        assert data["addInfluencer"]["__typename"] == "AddInfluencerSuccess"


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def rows_for(handles: list[str], n: int, prefix: str = "p") -> list[dict[str, Any]]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    return [
        {
            "platform": "instagram",
            "handle": handles[i % len(handles)],
            "external_id": f"{prefix}{i}",
            "url": f"https://www.instagram.com/p/{prefix}{i}/",
            "text": f"post {i} #Travel #food @friend",
            "published_at": (start + timedelta(minutes=i)).isoformat(),
            "likes": i,
            "comments": i % 7,
            "views": 10 * i,
        }
        for i in range(n)
    ]


async def snapshot(schema: str) -> list[tuple[Any, ...]]:
    async with tenant_tx(schema):
        return sorted(
            await Post.all().values_list(
                "platform", "external_id", "text", "likes", "comments", "views", "hashtags"
            )
        )


async def test_import_jsonl_then_reimport_creates_no_duplicates(gql: GQL, tenant: Tenant) -> None:
    await add_accounts(gql, tenant.token, ["ana", "bia"])
    content = jsonl(rows_for(["ana", "bia"], 30))
    task = (await import_file(gql, tenant.token, "posts.jsonl", content))["task"]
    assert task["status"] == "PENDING" and task["total"] == 30
    await run_jobs()
    done = (await gql.ok(TASK, {"id": task["id"]}, token=tenant.token))["collectionTask"]
    assert done["status"] == "SUCCEEDED"
    assert (done["created"], done["updated"], done["skipped"], done["progress"]) == (30, 0, 0, 1.0)
    first = await snapshot(tenant.schema)
    assert len(first) == 30
    assert first[0][-1] == ["travel", "food"]

    again = (await import_file(gql, tenant.token, "posts.jsonl", content))["task"]
    await run_jobs()
    redo = (await gql.ok(TASK, {"id": again["id"]}, token=tenant.token))["collectionTask"]
    assert (redo["created"], redo["updated"]) == (0, 30)
    assert await snapshot(tenant.schema) == first


async def test_csv_with_bad_rows_records_errors(gql: GQL, tenant: Tenant) -> None:
    await add_accounts(gql, tenant.token, ["carla"])
    csv_text = (
        "platform,handle,external_id,text,published_at,likes,hashtags\n"
        "instagram,carla,c1,hello #Hi,2026-11-01T10:00:00Z,5,\n"
        "instagram,carla,c2,no date,,5,\n"
        "myspace,carla,c3,old,2026-11-01T10:00:00Z,5,\n"
        "instagram,nobody,c4,who,2026-11-01T10:00:00Z,5,\n"
        "instagram,carla,c5,tags given,2026-11-01T10:00:00,-3,a b\n"
        "instagram,carla,c6,fine,2026-11-01T11:00:00+02:00,7,x;y\n"
    )
    task = (await import_file(gql, tenant.token, "posts.csv", csv_text.encode()))["task"]
    await run_jobs()
    done = (await gql.ok(TASK, {"id": task["id"]}, token=tenant.token))["collectionTask"]
    assert done["status"] == "SUCCEEDED"
    assert (done["total"], done["created"], done["skipped"]) == (6, 2, 4)
    assert [e["row"] for e in done["errors"]] == [1, 2, 3, 4]
    assert "published_at" in done["errors"][0]["message"]
    assert "no tracked instagram account @nobody" in done["errors"][2]["message"]
    async with tenant_tx(tenant.schema):
        c6 = await Post.get(external_id="c6")
    assert c6.hashtags == ["x", "y"]
    assert c6.published_at == datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


async def test_unreadable_files_are_refused_and_store_nothing(gql: GQL, tenant: Tenant) -> None:
    cases = [
        ("posts.txt", b"hello"),
        ("posts.csv", b"a,b\n1,2\n"),
        ("posts.csv", "\ufeffplatform,handle\n".encode() + b"\xff\xfe"),
        ("posts.jsonl", b""),
    ]
    for filename, content in cases:
        payload = await import_file(gql, tenant.token, filename, content)
        assert payload["__typename"] == "ValidationFailed", (filename, payload)
        assert payload["fields"][0]["field"] == "file"
    async with tenant_tx(tenant.schema):
        assert await CollectionTask.all().count() == 0


@pytest.mark.slow
async def test_worker_killed_mid_import_then_rerun_matches_one_clean_run(
    gql: GQL, tenant: Tenant, other_tenant: Tenant, services: Any
) -> None:
    """A real `trendscope worker` process is SIGKILLed mid-import; recovery (ARQ's own retry
    once the dead job's in-progress key expires, plus the requeue cron's attempt job) must end
    with exactly the rows and counts of one clean run in another tenant."""
    handles = ["kim", "lou", "max"]
    content = jsonl(rows_for(handles, 3000, prefix="k"))
    for t in (tenant, other_tenant):
        await add_accounts(gql, t.token, handles)

    # The clean run: other tenant, in-process burst worker.
    clean_task = (await import_file(gql, other_tenant.token, "posts.jsonl", content))["task"]
    await run_jobs()

    killed_task = (await import_file(gql, tenant.token, "posts.jsonl", content))["task"]
    task_id = int(GlobalID.from_id(killed_task["id"]).node_id)
    env = {**os.environ, "IMPORT_BATCH_SIZE": "10"}
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api.cli",
        "worker",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        processed = 0
        for _ in range(6000):  # poll until some, not all, batches are committed
            await asyncio.sleep(0.01)
            async with tenant_tx(tenant.schema):
                row = await CollectionTask.get(id=task_id)
            processed = row.processed
            if processed >= 100:
                break
        assert 0 < processed < 3000, f"worker never got going (processed={processed})"
    finally:
        worker.send_signal(signal.SIGKILL)
        await asyncio.wait_for(worker.wait(), timeout=30)

    async with tenant_tx(tenant.schema):
        row = await CollectionTask.get(id=task_id)
    assert row.status == "running" and row.processed < 3000

    # Fast-forward time: the dead worker's in-progress keys would expire after the job timeout.
    await expire_dead_worker_jobs()
    assert await requeue_stale({}, stale_after=timedelta(0)) >= 1
    await run_jobs()

    done = (await gql.ok(TASK, {"id": killed_task["id"]}, token=tenant.token))["collectionTask"]
    clean = (await gql.ok(TASK, {"id": clean_task["id"]}, token=other_tenant.token))[
        "collectionTask"
    ]
    assert done["status"] == clean["status"] == "SUCCEEDED"
    counts = ("total", "processed", "created", "updated", "skipped")
    assert [done[k] for k in counts] == [clean[k] for k in counts] == [3000, 3000, 3000, 0, 0]
    assert await snapshot(tenant.schema) == await snapshot(other_tenant.schema)
