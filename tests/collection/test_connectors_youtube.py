"""YouTube Data API v3 connector against recorded responses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

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

BASE = "https://yt.test/youtube/v3"
P = "/youtube/v3"
UNITS = DEFAULT_BUCKETS["youtube"]["units"]


def yt(kit: Kit, **options: Any) -> Connector:
    return kit.connector("youtube", {"api_key": "AIzaTestKey"}, base_url=BASE, **options)


def by_page_token(first: str, second: str) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("pageToken")
        return httpx.Response(200, json=load("youtube", second if token else first))

    return handle


async def test_profile_maps_channel_and_costs_one_unit(kit: Kit) -> None:
    kit.api.on("GET", f"{P}/channels", reply(load("youtube", "channels_handle")))
    account = await yt(kit).fetch_profile("MrBeast")

    assert account.external_id == "UCX6OQ3DkcsbYNE6H8uQQuVA"
    assert account.handle == "mrbeast"
    assert account.display_name == "MrBeast"
    assert account.followers == 236_000_000
    assert account.posts_count == 781
    assert account.profile_url == "https://www.youtube.com/channel/UCX6OQ3DkcsbYNE6H8uQQuVA"
    assert account.raw["statistics"]["videoCount"] == "781"
    request = kit.api.requests[0]
    assert request.url.params["forHandle"] == "@MrBeast"
    assert request.url.params["part"] == "snippet,statistics,contentDetails"
    assert request.url.params["key"] == "AIzaTestKey"
    left = await kit.limiter.remaining("youtube", "cred1", "units", UNITS)
    assert left == UNITS.capacity - 1


async def test_posts_page_to_the_end_with_mapping_skipped_items_and_units(kit: Kit) -> None:
    kit.api.on("GET", f"{P}/channels", reply(load("youtube", "channels_handle")))
    kit.api.on(
        "GET",
        f"{P}/playlistItems",
        by_page_token("playlist_items_page1", "playlist_items_page2"),
    )
    kit.api.on("GET", f"{P}/videos", reply(load("youtube", "videos_page1")))
    kit.api.on("GET", f"{P}/videos", reply(load("youtube", "videos_page2")))
    connector = yt(kit)
    account = AccountRef("youtube", "mrbeast", "UCX6OQ3DkcsbYNE6H8uQQuVA")

    posts: list[PostData] = []
    errors = []
    units = 0
    cursor = None
    pages = 0
    while True:
        page = await connector.fetch_posts(account, cursor)
        posts += page.items
        errors += page.errors
        units += page.units
        pages += 1
        if page.done:
            break
        cursor = page.next_cursor

    assert pages == 2
    assert [p.external_id for p in posts] == [
        "vid00000001",
        "vid00000002",
        "vid00000004",
        "vid00000005",
    ]
    assert [e.external_id for e in errors] == ["vid00000003"]  # viewCount is an object
    assert "viewCount" in errors[0].message
    # channels (1) + 2 x (playlistItems 1 + videos 1)
    assert units == 5
    left = await kit.limiter.remaining("youtube", "cred1", "units", UNITS)
    assert left == UNITS.capacity - 5
    first = posts[0]
    assert first.platform == "youtube" and first.handle == "mrbeast"
    assert first.url == "https://www.youtube.com/watch?v=vid00000001"
    assert first.text.startswith("I Built 100 Houses And Gave Them Away!\n\nThanks @Feastables")
    assert first.views == 151_234_567 and first.likes == 4_100_000 and first.comments == 98_765
    assert first.hashtags == ("giveaway", "houses")
    assert first.mentions == ("feastables",)
    assert first.published_at == datetime(2026, 11, 20, 17, tzinfo=UTC)
    assert first.account_external_id == "UCX6OQ3DkcsbYNE6H8uQQuVA"
    assert first.raw["etag"] == "e1"
    assert posts[1].likes == 0  # likes hidden by the owner
    # The second page resumed from the cursor: the uploads playlist and the page token.
    playlist_calls = kit.api.calls(f"{P}/playlistItems")
    assert [c.url.params.get("pageToken") for c in playlist_calls] == [None, "EAAaBlBUOkNBTQ"]
    assert {c.url.params["playlistId"] for c in playlist_calls} == {"UUX6OQ3DkcsbYNE6H8uQQuVA"}
    assert len(kit.api.calls(f"{P}/channels")) == 1
    # Same row shape as the file import.
    row = first.to_import_row(0)
    assert (row.platform, row.handle, row.external_id, row.views) == (
        "youtube",
        "mrbeast",
        "vid00000001",
        151_234_567,
    )


async def test_since_stops_paging_at_older_uploads(kit: Kit) -> None:
    kit.api.on("GET", f"{P}/channels", reply(load("youtube", "channels_handle")))
    kit.api.on("GET", f"{P}/playlistItems", reply(load("youtube", "playlist_items_page1")))
    kit.api.on("GET", f"{P}/videos", reply(load("youtube", "videos_page1")))
    page = await yt(kit).fetch_posts(
        AccountRef("youtube", "mrbeast", "UCX6OQ3DkcsbYNE6H8uQQuVA"),
        since=datetime(2026, 11, 10, tzinfo=UTC),
    )
    assert [p.external_id for p in page.items] == ["vid00000001", "vid00000002"]
    assert page.done
    assert kit.api.calls(f"{P}/videos")[0].url.params["id"] == "vid00000001,vid00000002"


async def test_comments_map_and_skip_malformed(kit: Kit) -> None:
    kit.api.on("GET", f"{P}/commentThreads", reply(load("youtube", "comment_threads")))
    post = PostData("youtube", "vid00000001", "mrbeast", datetime(2026, 11, 20, tzinfo=UTC))
    page = await yt(kit).fetch_comments(post)
    assert [c.external_id for c in page.items] == ["UgzThread0001"]
    comment = page.items[0]
    assert (comment.author, comment.text, comment.likes) == ("@fan1", "This is amazing!", 1200)
    assert comment.post_external_id == "vid00000001"
    assert len(page.errors) == 1 and "id is missing" in page.errors[0].message
    assert page.done and page.units == 1


async def test_comments_disabled_is_an_empty_page(kit: Kit) -> None:
    kit.api.on("GET", f"{P}/commentThreads", reply(load("youtube", "error_comments_disabled"), 403))
    post = PostData("youtube", "vid00000002", "mrbeast", datetime(2026, 11, 20, tzinfo=UTC))
    page = await yt(kit).fetch_comments(post)
    assert page.items == [] and page.done


async def test_unknown_handle_is_account_unavailable(kit: Kit) -> None:
    kit.api.on("GET", f"{P}/channels", reply(load("youtube", "channels_empty")))
    with pytest.raises(AccountUnavailable) as err:
        await yt(kit).fetch_profile("nosuchchannel")
    assert err.value.reason == "not_found"


async def test_invalid_key_is_credential_broken(kit: Kit) -> None:
    kit.api.on("GET", f"{P}/channels", reply(load("youtube", "error_key_invalid"), 400))
    with pytest.raises(CredentialBroken):
        await yt(kit).fetch_profile("mrbeast")
    assert len(kit.api.requests) == 1 and kit.sleeps == []


async def test_platform_quota_exceeded_waits_for_pacific_midnight(kit: Kit) -> None:
    kit.api.on("GET", f"{P}/channels", reply(load("youtube", "error_quota"), 403))
    clock = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # 12:00 PST
    with pytest.raises(QuotaExhausted) as err:
        await yt(kit, clock=lambda: clock).fetch_profile("mrbeast")
    assert err.value.retry_after == 12 * 3600
    assert len(kit.api.requests) == 1


async def test_bucket_exhaustion_raises_before_calling(kit: Kit) -> None:
    from domain.collection.connectors import BucketSpec

    kit.api.on("GET", f"{P}/channels", reply(load("youtube", "channels_handle")))
    small = {"units": BucketSpec(2, 86_400)}
    connector = yt(kit, buckets=small)
    await connector.fetch_profile("mrbeast")
    await connector.fetch_profile("mrbeast")
    with pytest.raises(QuotaExhausted) as err:
        await connector.fetch_profile("mrbeast")
    assert err.value.retry_after == pytest.approx(86_400 / 2)  # one unit refills in 12 h
    assert len(kit.api.requests) == 2
