"""Instagram Graph API business discovery connector against recorded responses."""

from __future__ import annotations

from datetime import UTC, datetime

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

BASE = "https://graph.test/v25.0"
PATH = "/v25.0/17841405309211844"
CALLS = DEFAULT_BUCKETS["instagram"]["calls"]


def ig(kit: Kit) -> Connector:
    return kit.connector(
        "instagram",
        {"access_token": "EAAGtoken", "ig_user_id": "17841405309211844"},
        base_url=BASE,
    )


def media_pages(request: httpx.Request) -> httpx.Response:
    fields = request.url.params["fields"]
    name = "media_page2" if ".after(" in fields else "media_page1"
    return httpx.Response(200, json=load("instagram", name))


async def test_profile_fields_and_mapping(kit: Kit) -> None:
    kit.api.on("GET", PATH, reply(load("instagram", "profile")))
    account = await ig(kit).fetch_profile("@BlueBottle")
    assert (account.external_id, account.handle, account.display_name) == (
        "17841401441775531",
        "bluebottle",
        "Blue Bottle Coffee",
    )
    assert account.followers == 267_793 and account.posts_count == 1205
    assert account.profile_url == "https://www.instagram.com/bluebottle/"
    params = kit.api.requests[0].url.params
    assert params["fields"] == (
        "business_discovery.username(BlueBottle)"
        "{id,username,name,followers_count,media_count,profile_picture_url}"
    )
    assert params["access_token"] == "EAAGtoken"
    left = await kit.limiter.remaining("instagram", "cred1", "calls", CALLS)
    assert left == CALLS.capacity - 1


async def test_media_pages_to_the_end_with_after_cursor(kit: Kit) -> None:
    kit.api.on("GET", PATH, media_pages)
    connector = ig(kit)
    account = AccountRef("instagram", "bluebottle", "17841401441775531")
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
        "17895695668004550",
        "17899305754011120",
        "17912345678901234",
    ]
    assert len(errors) == 1 and "id is missing" in errors[0].message  # the item without id
    fields = [r.url.params["fields"] for r in kit.api.requests]
    assert fields[0] == (
        "business_discovery.username(bluebottle){id,media.limit(50)"
        "{id,caption,like_count,comments_count,timestamp,permalink,media_type}}"
    )
    assert ".after(QVFIUmtpd1JjVmZAOcEVHZAXZAnVmdZAOWJkbzFfQTVpdkxR)" in fields[1]
    first = posts[0]
    assert first.published_at == datetime(2026, 11, 21, 15, 30, 1, tzinfo=UTC)
    assert (first.likes, first.comments, first.views) == (1803, 42, 0)
    assert first.hashtags == ("coffee", "holiday")
    assert first.mentions == ("bluebottlejapan",)
    assert first.url == "https://www.instagram.com/p/DCa1bC2dE3f/"
    assert first.account_external_id == "17841401441775531"
    assert first.raw["media_type"] == "IMAGE"
    assert posts[1].likes == 0  # like_count hidden
    left = await kit.limiter.remaining("instagram", "cred1", "calls", CALLS)
    assert left == CALLS.capacity - 2


async def test_not_professional_or_missing_account_is_unavailable(kit: Kit) -> None:
    kit.api.on("GET", PATH, reply(load("instagram", "error_not_found"), 400))
    with pytest.raises(AccountUnavailable) as err:
        await ig(kit).fetch_profile("nosuchaccount")
    assert err.value.reason == "not_found_or_not_professional"
    assert kit.sleeps == []


async def test_expired_token_400_code_190_is_credential_broken(kit: Kit) -> None:
    kit.api.on("GET", PATH, reply(load("instagram", "error_token"), 400))
    with pytest.raises(CredentialBroken):
        await ig(kit).fetch_profile("bluebottle")
    assert len(kit.api.requests) == 1


async def test_graph_rate_limit_uses_usage_header_and_reschedules(kit: Kit) -> None:
    usage = '{"17841405309211844": [{"type": "instagram", "call_count": 100, "total_cputime": 30, "total_time": 40, "estimated_time_to_regain_access": 12}]}'
    kit.api.on(
        "GET",
        PATH,
        reply(load("instagram", "error_rate_limit"), 400, {"X-Business-Use-Case-Usage": usage}),
    )
    with pytest.raises(QuotaExhausted) as err:
        await ig(kit).fetch_profile("bluebottle")
    assert err.value.retry_after == 12 * 60
    assert kit.sleeps == []


async def test_handle_that_is_not_a_username_never_reaches_the_api(kit: Kit) -> None:
    with pytest.raises(AccountUnavailable):
        await ig(kit).fetch_profile("evil){id}")
    assert kit.api.requests == []


async def test_comments_are_not_available_through_business_discovery(kit: Kit) -> None:
    post = PostData("instagram", "1", "bluebottle", datetime(2026, 11, 1, tzinfo=UTC))
    page = await ig(kit).fetch_comments(post)
    assert page.items == [] and page.done and kit.api.requests == []
