"""X API v2 connector against recorded responses."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from domain.collection.connectors import (
    DEFAULT_BUCKETS,
    AccountRef,
    AccountUnavailable,
    Connector,
    PostData,
    QuotaExhausted,
)
from tests.collection.conftest import Kit, load, reply

BASE = "https://x.test"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def xc(kit: Kit) -> Connector:
    return kit.connector("x", {"bearer_token": "AAAAbearer"}, base_url=BASE, clock=lambda: NOW)


def tweet_pages(request: httpx.Request) -> httpx.Response:
    name = "tweets_page2" if request.url.params.get("pagination_token") else "tweets_page1"
    return httpx.Response(200, json=load("x", name))


async def test_user_lookup_mapping(kit: Kit) -> None:
    kit.api.on("GET", "/2/users/by/username/XDevelopers", reply(load("x", "user")))
    account = await xc(kit).fetch_profile("@XDevelopers")
    assert (account.external_id, account.handle, account.display_name) == (
        "2244994945",
        "xdevelopers",
        "Developers",
    )
    assert account.followers == 583_429 and account.verified and not account.is_private
    assert account.posts_count == 4139
    request = kit.api.requests[0]
    assert request.headers["Authorization"] == "Bearer AAAAbearer"
    assert "public_metrics" in request.url.params["user.fields"]
    spec = DEFAULT_BUCKETS["x"]["users_by_username"]
    left = await kit.limiter.remaining("x", "cred1", "users_by_username", spec)
    assert left == spec.capacity - 1


async def test_user_tweets_page_to_the_end(kit: Kit) -> None:
    kit.api.on("GET", "/2/users/2244994945/tweets", tweet_pages)
    connector = xc(kit)
    account = AccountRef("x", "xdevelopers", "2244994945")
    posts: list[PostData] = []
    errors = []
    cursor = None
    while True:
        page = await connector.fetch_posts(account, cursor)
        posts += page.items
        errors += page.errors
        if page.done:
            break
        cursor = page.next_cursor

    assert [p.external_id for p in posts] == [
        "1860000000000000001",
        "1860000000000000002",
        "1860000000000000003",
    ]
    assert [e.external_id for e in errors] == ["1860000000000000004"]  # no public_metrics
    params = [r.url.params for r in kit.api.requests]
    assert params[0].get("pagination_token") is None
    assert params[1]["pagination_token"] == "7140dibdnow9c7btw481sb9uefjxjy0hd4y1nb4cghfze"
    assert params[0]["tweet.fields"] == "public_metrics,created_at,entities,author_id"
    assert params[0]["max_results"] == "100"
    first = posts[0]
    assert (first.likes, first.comments, first.shares, first.views) == (900, 33, 132, 250_000)
    assert first.hashtags == ("developers",) and first.mentions == ("xeng",)
    assert first.url == "https://x.com/xdevelopers/status/1860000000000000001"
    assert first.published_at == datetime(2026, 11, 21, 16, tzinfo=UTC)
    spec = DEFAULT_BUCKETS["x"]["user_tweets"]
    assert await kit.limiter.remaining("x", "cred1", "user_tweets", spec) == spec.capacity - 2


async def test_since_is_sent_as_start_time(kit: Kit) -> None:
    kit.api.on("GET", "/2/users/2244994945/tweets", reply(load("x", "tweets_page2")))
    await xc(kit).fetch_posts(
        AccountRef("x", "xdevelopers", "2244994945"), since=datetime(2026, 11, 1, tzinfo=UTC)
    )
    assert kit.api.requests[0].url.params["start_time"] == "2026-11-01T00:00:00Z"


async def test_unknown_user_is_unavailable(kit: Kit) -> None:
    kit.api.on("GET", "/2/users/by/username/nosuchuser42", reply(load("x", "user_not_found")))
    with pytest.raises(AccountUnavailable) as err:
        await xc(kit).fetch_profile("nosuchuser42")
    assert err.value.reason == "not_found"


async def test_protected_account_tweets_are_unavailable_as_private(kit: Kit) -> None:
    kit.api.on("GET", "/2/users/1234567/tweets", reply(load("x", "tweets_protected")))
    with pytest.raises(AccountUnavailable) as err:
        await xc(kit).fetch_posts(AccountRef("x", "someone", "1234567"))
    assert err.value.reason == "private"


async def test_429_waits_until_x_rate_limit_reset(kit: Kit) -> None:
    reset = str(int(NOW.timestamp()) + 30)
    kit.api.on(
        "GET",
        "/2/users/by/username/XDevelopers",
        reply(load("x", "error_rate_limit"), 429, {"x-rate-limit-reset": reset}),
        reply(load("x", "user")),
    )
    account = await xc(kit).fetch_profile("XDevelopers")
    assert account.external_id == "2244994945"
    assert kit.sleeps == [30.0]


async def test_429_with_a_far_reset_reschedules(kit: Kit) -> None:
    reset = str(int(NOW.timestamp()) + 600)
    kit.api.on(
        "GET",
        "/2/users/by/username/XDevelopers",
        reply(load("x", "error_rate_limit"), 429, {"x-rate-limit-reset": reset}),
    )
    with pytest.raises(QuotaExhausted) as err:
        await xc(kit).fetch_profile("XDevelopers")
    assert err.value.retry_after == 600 and kit.sleeps == []
