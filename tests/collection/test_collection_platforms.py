"""Instagram Graph and TikTok Research through the whole collection job, each against a fake
API on a loopback port answering with the recorded documented bodies
(tests/collection/fixtures): token and auth checked, paging to the end, a malformed item
skipped with an error row, comments for recent posts, and a second run adding nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from domain.posts.models import Comment, Post
from tenants.tx import tenant_tx
from tests.collection.test_collection import ADD, CONNECT, HISTORY, START, TASK, fake_platform
from tests.conftest import GQL, Tenant, run_jobs

FIXTURES = Path(__file__).parents[1] / "collection" / "fixtures"


def load(platform: str, name: str) -> Any:
    return json.loads((FIXTURES / platform / f"{name}.json").read_text())


async def collect_twice(
    gql: GQL, tenant: Tenant, platform: str, handle: str, secrets: dict[str, str]
) -> tuple[str, list[dict[str, Any]]]:
    """Connect, add an influencer with one account, collect it twice; the two task results."""
    data = await gql.ok(
        CONNECT,
        {
            "i": {
                "platform": platform,
                "secrets": [{"name": k, "value": v} for k, v in secrets.items()],
            }
        },
        token=tenant.token,
    )
    assert data["connectPlatform"]["__typename"] == "ConnectPlatformSuccess", data
    accounts = [{"platform": platform, "handle": handle}]
    added = await gql.ok(
        ADD, {"i": {"displayName": handle, "accounts": accounts}}, token=tenant.token
    )
    influencer_id = added["addInfluencer"]["influencer"]["id"]
    tasks = []
    for _ in range(2):
        started = await gql.ok(
            START,
            {"i": {"influencerId": influencer_id, "platforms": [platform]}},
            token=tenant.token,
        )
        task_id = started["startCollection"]["tasks"][0]["id"]
        await run_jobs()
        tasks.append((await gql.ok(TASK, {"id": task_id}, token=tenant.token))["collectionTask"])
    return influencer_id, tasks


async def stored(schema: str) -> tuple[set[str], set[str]]:
    async with tenant_tx(schema):
        posts = set(await Post.all().values_list("external_id", flat=True))
        comments = set(await Comment.all().values_list("external_id", flat=True))
    return posts, comments


async def test_collect_tiktok_research_through_the_job(gql: GQL, tenant: Tenant) -> None:
    token = load("tiktok", "token")
    pages = [load("tiktok", "videos_page1"), load("tiktok", "videos_page2")]
    now = int(time.time())
    for page in pages:  # recent, so comments are fetched for them
        for i, video in enumerate(page["data"]["videos"]):
            video["create_time"] = now - 3600 * (i + 1)
    empty = load("tiktok", "videos_empty")
    comments = load("tiktok", "comments")
    requests: list[tuple[str, dict[str, Any]]] = []

    async def oauth_token(request: Request) -> Response:
        form = dict((await request.form()).items())
        requests.append(("token", form))
        ok = form == {
            "client_key": "ck",
            "client_secret": "cs",
            "grant_type": "client_credentials",
        }
        return JSONResponse(
            token if ok else load("tiktok", "error_token"), status_code=200 if ok else 401
        )

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {token['access_token']}"

    async def user_info(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse(load("tiktok", "error_token"), status_code=401)
        body = await request.json()
        requests.append(("user", body))
        return JSONResponse(load("tiktok", "user_info"))

    async def video_query(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse(load("tiktok", "error_token"), status_code=401)
        body = await request.json()
        requests.append(("videos", body))
        today = time.strftime("%Y%m%d", time.gmtime())
        if body.get("search_id") is None and body["cursor"] == 0 and body["end_date"] == today:
            return JSONResponse(pages[0])
        if (
            body.get("search_id") == pages[0]["data"]["search_id"]
            and body["cursor"] == pages[0]["data"]["cursor"]
        ):
            return JSONResponse(pages[1])
        return JSONResponse(empty)

    async def comment_list(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse(load("tiktok", "error_token"), status_code=401)
        body = await request.json()
        requests.append(("comments", body))
        if body["video_id"] == comments["data"]["comments"][0]["video_id"]:
            return JSONResponse(comments)
        return JSONResponse(
            {
                "data": {"comments": [], "cursor": 0, "has_more": False},
                "error": {"code": "ok", "message": "", "log_id": "x"},
            }
        )

    app = Starlette(
        routes=[
            Route("/v2/oauth/token/", oauth_token, methods=["POST"]),
            Route("/v2/research/user/info/", user_info, methods=["POST"]),
            Route("/v2/research/video/query/", video_query, methods=["POST"]),
            Route("/v2/research/video/comment/list/", comment_list, methods=["POST"]),
        ]
    )
    async with fake_platform(app, "tiktok"):
        influencer_id, (first, second) = await collect_twice(
            gql, tenant, "TIKTOK", "mrbeast", {"client_key": "ck", "client_secret": "cs"}
        )

    videos = pages[0]["data"]["videos"] + pages[1]["data"]["videos"]
    good = {str(v["id"]) for v in videos if "id" in v}
    assert first["status"] == "SUCCEEDED", first
    good_comments = {str(c["id"]) for c in comments["data"]["comments"] if "id" in c}
    # created counts posts and comments; the malformed video is skipped with an error row
    assert first["created"] == len(good) + len(good_comments) and first["skipped"] == 1, first
    assert len(first["errors"]) == 1 and first["unitsSpent"] > 0
    posts, comment_ids = await stored(tenant.schema)
    assert posts == good and comment_ids == good_comments
    # the second run is incremental and adds nothing
    assert second["status"] == "SUCCEEDED" and second["created"] == 0, second
    assert await stored(tenant.schema) == (posts, comment_ids)
    assert requests[0] == (
        "token",
        {"client_key": "ck", "client_secret": "cs", "grant_type": "client_credentials"},
    )
    assert ("user", {"username": "mrbeast"}) in requests
    history = (await gql.ok(HISTORY, {"id": influencer_id}, token=tenant.token))["influencer"]
    followers = load("tiktok", "user_info")["data"]["follower_count"]
    assert history["accounts"][0]["followerHistory"] == [{"followers": followers}] * 2


async def test_collect_instagram_graph_through_the_job(gql: GQL, tenant: Tenant) -> None:
    profile, page1, page2 = (
        load("instagram", "profile"),
        load("instagram", "media_page1"),
        load("instagram", "media_page2"),
    )
    after = page1["business_discovery"]["media"]["paging"]["cursors"]["after"]
    seen: list[str] = []

    async def discovery(request: Request) -> Response:
        if request.query_params.get("access_token") != "ig-token":
            return JSONResponse(load("instagram", "error_token"), status_code=400)
        if request.path_params["ig_user_id"] != "1784":
            return JSONResponse(load("instagram", "error_not_found"), status_code=400)
        fields = request.query_params["fields"]
        seen.append(fields)
        assert fields.startswith("business_discovery.username(bluebottle)")
        if "media.limit(" not in fields:
            return JSONResponse(profile)
        return JSONResponse(page2 if f".after({after})" in fields else page1)

    app = Starlette(routes=[Route("/{ig_user_id}", discovery)])
    async with fake_platform(app, "instagram"):
        influencer_id, (first, second) = await collect_twice(
            gql,
            tenant,
            "INSTAGRAM",
            "bluebottle",
            {"access_token": "ig-token", "ig_user_id": "1784"},
        )

    media = (
        page1["business_discovery"]["media"]["data"] + page2["business_discovery"]["media"]["data"]
    )
    good = {m["id"] for m in media if "id" in m}
    assert first["status"] == "SUCCEEDED", first
    assert first["created"] == len(good) and first["skipped"] == 1, first
    assert any(f".after({after})" in f for f in seen)  # paged to the end
    posts, _ = await stored(tenant.schema)
    assert posts == good
    assert second["status"] == "SUCCEEDED" and second["created"] == 0, second
    history = (await gql.ok(HISTORY, {"id": influencer_id}, token=tenant.token))["influencer"]
    assert (
        history["accounts"][0]["followers"] == profile["business_discovery"]["followers_count"]
    ), history
