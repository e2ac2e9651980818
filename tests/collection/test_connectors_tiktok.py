"""TikTok Research API connector against recorded responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from domain.collection.connectors import (
    DEFAULT_BUCKETS,
    AccountRef,
    AccountUnavailable,
    Connector,
    CredentialBroken,
    PostData,
    QuotaExhausted,
)
from tests.collection.conftest import Kit, load, reply

BASE = "https://tiktok.test"
REQUESTS = DEFAULT_BUCKETS["tiktok"]["requests"]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def tt(kit: Kit, secrets: dict[str, str] | None = None, **options: Any) -> Connector:
    return kit.connector(
        "tiktok",
        secrets or {"access_token": "clt.example"},
        base_url=BASE,
        clock=lambda: NOW,
        **options,
    )


def video_query(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    if body["start_date"] == "20261025":
        name = "videos_page2" if body["cursor"] == 2 else "videos_page1"
        return httpx.Response(200, json=load("tiktok", name))
    return httpx.Response(200, json=load("tiktok", "videos_empty"))


async def test_user_info_mapping_and_request(kit: Kit) -> None:
    kit.api.on("POST", "/v2/research/user/info/", reply(load("tiktok", "user_info")))
    account = await tt(kit).fetch_profile("@MrBeast")
    assert (account.external_id, account.handle, account.display_name) == (
        "mrbeast",
        "mrbeast",
        "MrBeast",
    )
    assert account.followers == 113_000_000 and account.verified and account.posts_count == 412
    request = kit.api.requests[0]
    assert json.loads(request.content) == {"username": "mrbeast"}
    assert request.headers["Authorization"] == "Bearer clt.example"
    assert request.url.params["fields"].startswith("display_name,bio_description")
    left = await kit.limiter.remaining("tiktok", "cred1", "requests", REQUESTS)
    assert left == REQUESTS.capacity - 1


async def test_video_query_pages_through_cursor_and_30_day_windows(kit: Kit) -> None:
    kit.api.on("POST", "/v2/research/video/query/", video_query)
    connector = tt(kit, lookback_days=40)
    account = AccountRef("tiktok", "mrbeast", "mrbeast")
    posts: list[PostData] = []
    errors = []
    cursor = None
    pages = 0
    while True:
        page = await connector.fetch_posts(account, cursor)
        posts += page.items
        errors += page.errors
        pages += 1
        if page.done:
            break
        cursor = page.next_cursor

    bodies = [json.loads(r.content) for r in kit.api.requests]
    assert [(b["start_date"], b["end_date"], b["cursor"]) for b in bodies] == [
        ("20261025", "20261123", 0),
        ("20261025", "20261123", 2),
        ("20261014", "20261024", 0),  # the next window back, down to 40 days ago
    ]
    assert "search_id" not in bodies[0] and bodies[1]["search_id"] == "7440123456789012345"
    assert bodies[0]["query"] == {
        "and": [{"operation": "EQ", "field_name": "username", "field_values": ["mrbeast"]}]
    }
    assert pages == 3
    assert [p.external_id for p in posts] == [
        "7440000000000000001",
        "7440000000000000002",
        "7440000000000000003",
    ]
    assert len(errors) == 1 and "id is missing" in errors[0].message
    first = posts[0]
    assert first.published_at == datetime.fromtimestamp(1763830800, UTC)
    assert (first.likes, first.comments, first.shares, first.views) == (
        5_200_000,
        31_000,
        41_000,
        61_000_000,
    )
    assert first.hashtags == ("challenge", "money")
    assert first.url == "https://www.tiktok.com/@mrbeast/video/7440000000000000001"
    assert posts[2].mentions == ("karlrock",)
    left = await kit.limiter.remaining("tiktok", "cred1", "requests", REQUESTS)
    assert left == REQUESTS.capacity - 3


async def test_comments(kit: Kit) -> None:
    kit.api.on("POST", "/v2/research/video/comment/list/", reply(load("tiktok", "comments")))
    post = PostData("tiktok", "7440000000000000001", "mrbeast", NOW)
    page = await tt(kit).fetch_comments(post)
    assert [c.text for c in page.items] == ["deal!!", "no deal"]
    assert page.items[0].post_external_id == "7440000000000000001"
    assert page.items[0].likes == 820
    assert page.done
    body = json.loads(kit.api.requests[0].content)
    assert body == {"video_id": 7440000000000000001, "max_count": 100, "cursor": 0}


async def test_unknown_or_private_user_is_unavailable(kit: Kit) -> None:
    kit.api.on(
        "POST", "/v2/research/user/info/", reply(load("tiktok", "error_user_not_found"), 400)
    )
    with pytest.raises(AccountUnavailable) as err:
        await tt(kit).fetch_profile("nosuchuser")
    assert err.value.reason == "not_found_or_private"


async def test_daily_quota_429_reschedules_to_utc_midnight(kit: Kit) -> None:
    body = {
        "error": {
            "code": "rate_limit_exceeded",
            "message": "daily quota limit exceeded",
            "log_id": "1",
        }
    }
    kit.api.on("POST", "/v2/research/user/info/", reply(body, 429))
    with pytest.raises(QuotaExhausted) as err:
        await tt(kit).fetch_profile("mrbeast")
    assert err.value.retry_after == 12 * 3600
    assert kit.sleeps == []


async def test_client_credentials_token_is_fetched_and_renewed_once(kit: Kit) -> None:
    tokens = iter(["clt.first", "clt.second"])

    def token(request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        assert form["grant_type"] == ["client_credentials"] and form["client_key"] == ["ck"]
        return httpx.Response(200, json={**load("tiktok", "token"), "access_token": next(tokens)})

    def user_info(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer clt.first":
            return httpx.Response(401, json=load("tiktok", "error_token"))
        return httpx.Response(200, json=load("tiktok", "user_info"))

    kit.api.on("POST", "/v2/oauth/token/", token)
    kit.api.on("POST", "/v2/research/user/info/", user_info)
    account = await tt(kit, {"client_key": "ck", "client_secret": "cs"}).fetch_profile("mrbeast")
    assert account.followers == 113_000_000
    assert len(kit.api.calls("/v2/oauth/token/")) == 2
    # The token endpoint is not a Research API request: only the 2 user info calls count.
    left = await kit.limiter.remaining("tiktok", "cred1", "requests", REQUESTS)
    assert left == REQUESTS.capacity - 2


async def test_refused_client_secret_is_credential_broken(kit: Kit) -> None:
    kit.api.on(
        "POST",
        "/v2/oauth/token/",
        reply(
            {"error": "invalid_client", "error_description": "Client key or secret is incorrect."},
            401,
        ),
    )
    with pytest.raises(CredentialBroken):
        await tt(kit, {"client_key": "ck", "client_secret": "bad"}).fetch_profile("mrbeast")
