"""Collection end to end: a tenant connects YouTube, starts a collection, a worker pages
through the (fake, documented-shape) YouTube Data API and stores accounts, posts, comments and a
follower snapshot. Also: incremental re-runs, a broken credential, an unavailable account,
tenant isolation, and a worker SIGKILLed mid-collection that resumes to exactly one clean run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from redis.asyncio import Redis

from domain import events
from domain.collection.models import CollectionTask
from domain.posts.models import Comment, Post
from tenants.tx import tenant_tx
from tests.conftest import GQL, Server, Tenant, _free_port, expire_dead_worker_jobs, run_jobs
from tests.fakes.youtube import API_KEY, FakeYouTube
from tests.wsclient import listening

CONNECT = """mutation($i: ConnectPlatformInput!) { connectPlatform(input: $i) { __typename
    ... on ConnectPlatformSuccess { connection { id platform status } }
    ... on ValidationFailed { fields { field message } } } }"""
START = """mutation($i: StartCollectionInput!) { startCollection(input: $i) { __typename
    ... on StartCollectionSuccess { tasks { id status platform } }
    ... on ValidationFailed { fields { field message } } ... on NotFound { code } } }"""
TASK = """query($id: ID!) { collectionTask(id: $id) { status total processed created updated
    skipped unitsSpent error errors { item message } } }"""
ADD = """mutation($i: AddInfluencerInput!) { addInfluencer(input: $i) { __typename
    ... on AddInfluencerSuccess { influencer { id accounts { id } } } } }"""
HISTORY = """query($id: ID!) { influencer(id: $id) { totalFollowers
    accounts { handle followers status followerHistory { followers } } } }"""


@contextlib.asynccontextmanager
async def fake_platform(app: Any, platform: str, path: str = "") -> AsyncIterator[str]:
    """Serve a fake platform API on a loopback port and point `platform`'s connector at it
    (CONNECTOR_BASE_URLS) for the duration; yields the base URL."""
    from core.settings import get_settings

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    base = f"http://127.0.0.1:{port}{path}"
    old = os.environ.get("CONNECTOR_BASE_URLS")
    os.environ["CONNECTOR_BASE_URLS"] = json.dumps({platform: base})
    get_settings.cache_clear()
    try:
        yield base
    finally:
        if old is None:
            os.environ.pop("CONNECTOR_BASE_URLS", None)
        else:
            os.environ["CONNECTOR_BASE_URLS"] = old
        get_settings.cache_clear()
        server.should_exit = True
        await serving


@pytest.fixture
async def youtube() -> AsyncIterator[FakeYouTube]:
    """The fake YouTube API on a loopback port; collection jobs are pointed at it."""
    fake = FakeYouTube(channels={"alpha": 12, "beta": 7})
    async with fake_platform(fake.app(), "youtube", "/youtube/v3"):
        yield fake


async def connect(gql: GQL, t: Tenant, key: str = API_KEY) -> dict[str, Any]:
    data = await gql.ok(
        CONNECT,
        {"i": {"platform": "YOUTUBE", "secrets": [{"name": "api_key", "value": key}]}},
        token=t.token,
    )
    assert data["connectPlatform"]["__typename"] == "ConnectPlatformSuccess", data
    return data["connectPlatform"]["connection"]  # type: ignore[no-any-return]


async def influencer(gql: GQL, t: Tenant, *handles: str) -> str:
    accounts = [{"platform": "YOUTUBE", "handle": h} for h in handles]
    data = await gql.ok(ADD, {"i": {"displayName": "Creator", "accounts": accounts}}, token=t.token)
    return data["addInfluencer"]["influencer"]["id"]  # type: ignore[no-any-return]


async def start(gql: GQL, t: Tenant, influencer_id: str) -> str:
    data = await gql.ok(
        START, {"i": {"influencerId": influencer_id, "platforms": ["YOUTUBE"]}}, token=t.token
    )
    payload = data["startCollection"]
    assert payload["__typename"] == "StartCollectionSuccess", payload
    return payload["tasks"][0]["id"]  # type: ignore[no-any-return]


async def stored(schema: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with tenant_tx(schema):
        p = sorted(await Post.all().values_list("external_id", "likes", "views", "hashtags"))
        c = sorted(await Comment.all().values_list("external_id", "post__external_id", "likes"))
    return p, c


async def test_collect_youtube_end_to_end_then_incremental(
    gql: GQL, tenant: Tenant, youtube: FakeYouTube
) -> None:
    conn = await connect(gql, tenant)
    assert conn["status"] == "ACTIVE"
    listed = await gql.ok("{ platformConnections { platform status } }", token=tenant.token)
    assert listed["platformConnections"] == [{"platform": "YOUTUBE", "status": "ACTIVE"}]
    inf = await influencer(gql, tenant, "alpha", "gone")
    task_id = await start(gql, tenant, inf)
    await run_jobs()

    task = (await gql.ok(TASK, {"id": task_id}, token=tenant.token))["collectionTask"]
    assert task["status"] == "SUCCEEDED", task
    # 12 videos, comments of the 10 newest (3 each); the unknown channel is not an error
    assert (task["created"], task["updated"], task["skipped"]) == (12 + 30, 0, 0)
    assert task["unitsSpent"] > 0
    posts, comments = await stored(tenant.schema)
    assert len(posts) == 12 and len(comments) == 30
    assert posts[0][3] == ["vlog", "alpha"]
    data = (await gql.ok(HISTORY, {"id": inf}, token=tenant.token))["influencer"]
    by_handle = {a["handle"]: a for a in data["accounts"]}
    assert by_handle["alpha"]["followers"] == 50_012
    assert by_handle["alpha"]["followerHistory"] == [{"followers": 50_012}]
    assert by_handle["gone"]["status"] == "removed"
    assert data["totalFollowers"] == 50_012

    # a second run fetches only what is new: nothing, and it writes no duplicate
    calls_before = len(youtube.calls)
    again = await start(gql, tenant, inf)
    await run_jobs()
    task2 = (await gql.ok(TASK, {"id": again}, token=tenant.token))["collectionTask"]
    assert task2["status"] == "SUCCEEDED" and task2["created"] == 0
    assert await stored(tenant.schema) == (posts, comments)
    assert youtube.calls[calls_before:].count("videos") <= 1  # stopped at the first old page
    data = (await gql.ok(HISTORY, {"id": inf}, token=tenant.token))["influencer"]
    assert len({a["handle"]: a for a in data["accounts"]}["alpha"]["followerHistory"]) == 2


async def test_bad_input_and_broken_credentials(
    gql: GQL, tenant: Tenant, youtube: FakeYouTube
) -> None:
    inf = await influencer(gql, tenant, "beta")
    # no connection yet: a typed error, no task
    refused = await gql.ok(
        START, {"i": {"influencerId": inf, "platforms": ["YOUTUBE"]}}, token=tenant.token
    )
    assert refused["startCollection"]["__typename"] == "ValidationFailed"
    missing = await gql.ok(
        CONNECT,
        {"i": {"platform": "YOUTUBE", "secrets": [{"name": "token", "value": "x"}]}},
        token=tenant.token,
    )
    fields = {f["field"] for f in missing["connectPlatform"]["fields"]}
    assert fields == {"secrets.token", "secrets.api_key"}
    tasks = await gql.ok("{ collectionTasks { edges { node { id } } } }", token=tenant.token)
    assert tasks["collectionTasks"]["edges"] == []

    await connect(gql, tenant, key="revoked-key")
    task_id = await start(gql, tenant, inf)
    await run_jobs()
    task = (await gql.ok(TASK, {"id": task_id}, token=tenant.token))["collectionTask"]
    assert task["status"] == "FAILED" and "refused the credential" in task["error"]
    conns = await gql.ok("{ platformConnections { status brokenReason } }", token=tenant.token)
    assert conns["platformConnections"][0]["status"] == "BROKEN"
    assert "secret" not in json.dumps(conns).lower()


async def test_connections_and_tasks_are_per_tenant(
    gql: GQL, tenant: Tenant, other_tenant: Tenant, youtube: FakeYouTube
) -> None:
    conn = await connect(gql, tenant)
    inf = await influencer(gql, tenant, "beta")
    task_id = await start(gql, tenant, inf)
    b = other_tenant.token
    assert (await gql.ok("{ platformConnections { id } }", token=b))["platformConnections"] == []
    assert (await gql.ok("query($id: ID!) { node(id: $id) { id } }", {"id": conn["id"]}, token=b))[
        "node"
    ] is None
    assert (await gql.ok(TASK, {"id": task_id}, token=b))["collectionTask"] is None
    listed = await gql.ok("{ collectionTasks { edges { node { id } } } }", token=b)
    assert listed["collectionTasks"]["edges"] == []
    gone = await gql.ok(
        "mutation { disconnectPlatform(platform: YOUTUBE) { __typename } }", token=b
    )
    assert gone["disconnectPlatform"]["__typename"] == "NotFound"
    await run_jobs()
    assert (await stored(other_tenant.schema)) == ([], [])
    assert len((await stored(tenant.schema))[0]) == 7


@pytest.mark.slow
async def test_worker_killed_mid_collection_resumes_to_one_clean_run(
    gql: GQL, tenant: Tenant, other_tenant: Tenant, youtube: FakeYouTube
) -> None:
    youtube.channels["long"] = 60  # 12 pages of 5
    # The clean run, in the other tenant, in-process.
    await connect(gql, other_tenant)
    clean_inf = await influencer(gql, other_tenant, "long")
    clean_id = await start(gql, other_tenant, clean_inf)
    await run_jobs()

    await connect(gql, tenant)
    inf = await influencer(gql, tenant, "long")
    task_id = await start(gql, tenant, inf)
    from strawberry.relay import GlobalID

    pk = int(GlobalID.from_id(task_id).node_id)
    youtube.delay = 0.05
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api.cli", "worker", env=dict(os.environ)
    )
    try:
        for _ in range(3000):
            await asyncio.sleep(0.01)
            async with tenant_tx(tenant.schema):
                row = await CollectionTask.get(id=pk)
            if row.created >= 15 and row.cursor.get("phase") == "posts":
                break
        assert row.cursor.get("phase") == "posts" and 0 < row.created < 60, row.cursor
    finally:
        worker.send_signal(signal.SIGKILL)
        await asyncio.wait_for(worker.wait(), timeout=30)
    youtube.delay = 0.0

    from jobs.collection import requeue_stale

    await expire_dead_worker_jobs()  # as if the dead worker's keys had expired
    assert await requeue_stale({}, stale_after=timedelta(0)) >= 1
    await run_jobs()

    done = (await gql.ok(TASK, {"id": task_id}, token=tenant.token))["collectionTask"]
    clean = (await gql.ok(TASK, {"id": clean_id}, token=other_tenant.token))["collectionTask"]
    assert done["status"] == clean["status"] == "SUCCEEDED"
    assert (done["created"], done["updated"]) == (clean["created"], clean["updated"]) == (90, 0)
    assert await stored(tenant.schema) == await stored(other_tenant.schema)


async def test_broken_credential_is_announced_to_subscribers_of_that_tenant_only(
    server: Server,
    gql: GQL,
    tenant: Tenant,
    other_tenant: Tenant,
    youtube: FakeYouTube,
    redis: Redis,
) -> None:
    """platformConnectionBroken over graphql-transport-ws: A's subscriber hears of A's refused
    key; B's subscriber, with the same document, hears nothing."""
    from tests.graphql.test_subscriptions import connect as ws_connect

    sockets = []
    for t in (tenant, other_tenant):
        ws = await ws_connect(server, t.token)
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
        query = "subscription { platformConnectionBroken { platform status brokenReason } }"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        sockets.append(ws)
    try:
        for t in (tenant, other_tenant):
            await listening(server, redis, t, events.PLATFORM_CONNECTION_BROKEN)
        await connect(gql, tenant, key="revoked-key")
        await start(gql, tenant, await influencer(gql, tenant, "beta"))
        await run_jobs()
        msg = json.loads(await asyncio.wait_for(sockets[0].recv(), 10))
        assert msg["type"] == "next", msg
        event = msg["payload"]["data"]["platformConnectionBroken"]
        assert (event["platform"], event["status"]) == ("YOUTUBE", "BROKEN")
        assert event["brokenReason"]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sockets[1].recv(), 1.0)
    finally:
        for ws in sockets:
            await ws.close()


async def test_collect_x_through_the_job_with_documented_responses(
    gql: GQL, tenant: Tenant
) -> None:
    """The X connector through the whole job: a fake X API v2 answering with the recorded
    documented bodies (user lookup, two pages of user tweets), bearer token checked."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    fixtures = Path(__file__).parents[1] / "collection" / "fixtures" / "x"
    page1 = json.loads((fixtures / "tweets_page1.json").read_text())
    page2 = json.loads((fixtures / "tweets_page2.json").read_text())

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == "Bearer x-test-token"

    async def user(request: Request) -> Response:
        if not authorized(request):
            return Response(status_code=401)
        return JSONResponse(json.loads((fixtures / "user.json").read_text()))

    async def tweets(request: Request) -> Response:
        if not authorized(request):
            return Response(status_code=401)
        token = request.query_params.get("pagination_token")
        return JSONResponse(page2 if token == page1["meta"]["next_token"] else page1)

    app = Starlette(
        routes=[
            Route("/2/users/by/username/{name}", user),
            Route("/2/users/{uid}/tweets", tweets),
        ]
    )
    async with fake_platform(app, "x"):
        data = await gql.ok(
            CONNECT,
            {
                "i": {
                    "platform": "X",
                    "secrets": [{"name": "bearer_token", "value": "x-test-token"}],
                }
            },
            token=tenant.token,
        )
        assert data["connectPlatform"]["__typename"] == "ConnectPlatformSuccess"
        accounts = [{"platform": "X", "handle": "XDevelopers"}]
        added = await gql.ok(
            ADD, {"i": {"displayName": "X Devs", "accounts": accounts}}, token=tenant.token
        )
        inf = added["addInfluencer"]["influencer"]["id"]
        started = await gql.ok(
            START, {"i": {"influencerId": inf, "platforms": ["X"]}}, token=tenant.token
        )
        task_id = started["startCollection"]["tasks"][0]["id"]
        await run_jobs()
        task = (await gql.ok(TASK, {"id": task_id}, token=tenant.token))["collectionTask"]
        assert task["status"] == "SUCCEEDED", task
        # the recorded page 2 holds one malformed tweet (no public_metrics): skipped, logged
        good = [t for t in page1["data"] + page2["data"] if "public_metrics" in t]
        bad = [t["id"] for t in page2["data"] if "public_metrics" not in t]
        async with tenant_tx(tenant.schema):
            stored = set(await Post.all().values_list("external_id", flat=True))
        assert stored == {t["id"] for t in good} and task["created"] == len(good)
        assert [e["item"] for e in task["errors"]] == bad and task["skipped"] == len(bad)
        history = (await gql.ok(HISTORY, {"id": inf}, token=tenant.token))["influencer"]
        assert history["accounts"][0]["followerHistory"] == [{"followers": 583429}]


async def test_instagram_through_the_apify_route(gql: GQL, tenant: Tenant) -> None:
    """A tenant with an Apify token and no Instagram Graph connection collects Instagram
    through Apify's scraper actors (recorded documented bodies: profile, one actor run per
    listing, its dataset); the malformed item of the recording is skipped and logged."""
    from pathlib import Path

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    fixtures = Path(__file__).parents[1] / "collection" / "fixtures" / "apify"

    def load(name: str) -> Any:
        return json.loads((fixtures / name).read_text())

    runs: dict[str, dict[str, Any]] = {}  # run id -> the input it was started with

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == "Bearer apify-test-token"

    async def profile(request: Request) -> Response:
        return (
            JSONResponse(load("profile.json")) if authorized(request) else Response(status_code=401)
        )

    async def start_run(request: Request) -> Response:
        if not authorized(request):
            return Response(status_code=401)
        run = load("run_started.json")
        run_id = f"run{len(runs)}"
        runs[run_id] = await request.json()
        run["data"].update(id=run_id, defaultDatasetId=f"ds-{run_id}")
        return JSONResponse(run, status_code=201)

    async def get_run(request: Request) -> Response:
        run = load("run_succeeded.json")
        run_id = request.path_params["run"]
        run["data"].update(id=run_id, defaultDatasetId=f"ds-{run_id}")
        return JSONResponse(run)

    async def items(request: Request) -> Response:
        run_input = runs[request.path_params["ds"].removeprefix("ds-")]
        if int(request.query_params.get("offset", "0")) > 0:
            return JSONResponse([])
        if run_input.get("resultsType") == "comments":
            url = run_input["directUrls"][0]
            return JSONResponse([c for c in load("dataset_comments.json") if c["postUrl"] == url])
        return JSONResponse(recent(load("dataset_page1.json") + load("dataset_page2.json")))

    def recent(listing: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The recording, moved to the last days (same order and spacing), so its newest post
        stays within the comment window (COLLECT_COMMENT_DAYS) whatever today is."""
        newest = max(datetime.fromisoformat(i["timestamp"]) for i in listing)
        shift = datetime.now(UTC) - timedelta(hours=1) - newest
        for item in listing:
            moved = datetime.fromisoformat(item["timestamp"]) + shift
            item["timestamp"] = moved.isoformat().replace("+00:00", "Z")
        return listing

    app = Starlette(
        routes=[
            Route("/v2/acts/{actor}/run-sync-get-dataset-items", profile, methods=["POST"]),
            Route("/v2/acts/{actor}/runs", start_run, methods=["POST"]),
            Route("/v2/actor-runs/{run}", get_run),
            Route("/v2/datasets/{ds}/items", items),
        ]
    )
    async with fake_platform(app, "apify"):
        secrets = [{"name": "token", "value": "apify-test-token"}]
        data = await gql.ok(
            CONNECT, {"i": {"platform": "APIFY", "secrets": secrets}}, token=tenant.token
        )
        assert data["connectPlatform"]["__typename"] == "ConnectPlatformSuccess"
        accounts = [{"platform": "INSTAGRAM", "handle": "leomessi"}]
        added = await gql.ok(
            ADD, {"i": {"displayName": "Messi", "accounts": accounts}}, token=tenant.token
        )
        inf = added["addInfluencer"]["influencer"]["id"]
        started = await gql.ok(
            START, {"i": {"influencerId": inf, "platforms": ["INSTAGRAM"]}}, token=tenant.token
        )
        assert started["startCollection"]["__typename"] == "StartCollectionSuccess", started
        task_id = started["startCollection"]["tasks"][0]["id"]
        await run_jobs()
        task = (await gql.ok(TASK, {"id": task_id}, token=tenant.token))["collectionTask"]
        assert task["status"] == "SUCCEEDED", task
        recorded = load("dataset_page1.json") + load("dataset_page2.json")
        good = {i["id"] for i in recorded if i.get("id")}
        async with tenant_tx(tenant.schema):
            stored = set(await Post.all().values_list("external_id", flat=True))
            comments = sorted(await Comment.all().values_list("external_id", "post__external_id"))
        assert stored == good
        assert comments == [
            ("18050000000000001", "3480000000000000001"),
            ("18050000000000002", "3480000000000000001"),
        ]
        assert task["skipped"] == 1 and len(task["errors"]) == 1
        history = (await gql.ok(HISTORY, {"id": inf}, token=tenant.token))["influencer"]
        assert history["accounts"][0]["followerHistory"] == [{"followers": 505000000}]


async def test_collect_x_renews_an_expiring_oauth_token_first(
    gql: GQL, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An X connection made by the OAuth flow carries a refresh token; a collection that finds
    the access token about to expire renews it at X's token endpoint (refresh_token grant,
    client authenticated with HTTP Basic), stores the rotated pair, then collects with it."""
    import base64
    import time

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from domain.collection.connections import connections
    from domain.collection.models import PlatformConnection

    fixtures = Path(__file__).parents[1] / "collection" / "fixtures" / "x"
    token_requests: list[dict[str, Any]] = []

    async def token(request: Request) -> Response:
        form = dict((await request.form()).items())
        token_requests.append({"form": form, "auth": request.headers.get("authorization")})
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != "rt-1":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        return JSONResponse(
            {
                "token_type": "bearer",
                "expires_in": 7200,
                "access_token": "x-new",
                "scope": "tweet.read users.read offline.access",
                "refresh_token": "rt-2",
            }
        )

    async def user(request: Request) -> Response:
        if request.headers.get("authorization") != "Bearer x-new":
            return Response(status_code=401)
        return JSONResponse(json.loads((fixtures / "user.json").read_text()))

    async def tweets(request: Request) -> Response:
        if request.headers.get("authorization") != "Bearer x-new":
            return Response(status_code=401)
        return JSONResponse({"meta": {"result_count": 0}})

    app = Starlette(
        routes=[
            Route("/2/oauth2/token", token, methods=["POST"]),
            Route("/2/users/by/username/{name}", user),
            Route("/2/users/{uid}/tweets", tweets),
        ]
    )
    async with fake_platform(app, "x") as base:
        monkeypatch.setenv(
            "OAUTH_PLATFORMS",
            json.dumps(
                {
                    "x": {
                        "client_id": "cid",
                        "client_secret": "cs",
                        "token_url": f"{base}/2/oauth2/token",
                    }
                }
            ),
        )
        from core.settings import get_settings

        get_settings.cache_clear()
        secrets = [
            {"name": "bearer_token", "value": "x-old"},
            {"name": "refresh_token", "value": "rt-1"},
            {"name": "expires_at", "value": str(int(time.time()) + 60)},
        ]
        data = await gql.ok(
            CONNECT, {"i": {"platform": "X", "secrets": secrets}}, token=tenant.token
        )
        assert data["connectPlatform"]["__typename"] == "ConnectPlatformSuccess", data
        accounts = [{"platform": "X", "handle": "XDevelopers"}]
        added = await gql.ok(
            ADD, {"i": {"displayName": "X Devs", "accounts": accounts}}, token=tenant.token
        )
        inf = added["addInfluencer"]["influencer"]["id"]
        started = await gql.ok(
            START, {"i": {"influencerId": inf, "platforms": ["X"]}}, token=tenant.token
        )
        task_id = started["startCollection"]["tasks"][0]["id"]
        await run_jobs()
        task = (await gql.ok(TASK, {"id": task_id}, token=tenant.token))["collectionTask"]
        assert task["status"] == "SUCCEEDED", task

    [sent] = token_requests
    assert sent["form"]["grant_type"] == "refresh_token"
    assert sent["auth"] == "Basic " + base64.b64encode(b"cid:cs").decode()
    async with tenant_tx(tenant.schema):
        conn = await PlatformConnection.get(platform="x")
        stored_secrets = connections.cipher.decrypt_json(conn.secret)
    assert stored_secrets["bearer_token"] == "x-new" and stored_secrets["refresh_token"] == "rt-2"
    assert int(stored_secrets["expires_at"]) > time.time() + 7000
    monkeypatch.delenv("OAUTH_PLATFORMS")
    get_settings.cache_clear()
