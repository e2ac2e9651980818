"""Apify connector (Instagram-scraper style actor) against recorded responses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.collection.connectors import (
    DEFAULT_BUCKETS,
    AccountRef,
    AccountUnavailable,
    Connector,
    PlatformUnavailable,
    PostData,
)
from tests.collection.conftest import Kit, load, reply

BASE = "https://apify.test"
RUNS = "/v2/acts/apify~instagram-scraper/runs"
RUN = "/v2/actor-runs/HG7ML7M8z78YcAPEB"
ITEMS = "/v2/datasets/wmKPijuyDnPZAPRMk/items"
REQUESTS = DEFAULT_BUCKETS["apify"]["requests"]


def ap(kit: Kit, **options: Any) -> Connector:
    return kit.connector("apify", {"token": "apify_api_token"}, base_url=BASE, **options)


async def test_profile_by_run_sync(kit: Kit) -> None:
    path = "/v2/acts/apify~instagram-profile-scraper/run-sync-get-dataset-items"
    kit.api.on("POST", path, reply(load("apify", "profile")))
    account = await ap(kit).fetch_profile("leomessi")
    assert account.platform == "instagram"
    assert (account.external_id, account.handle, account.followers) == (
        "427553890",
        "leomessi",
        505_000_000,
    )
    assert account.verified and not account.is_private
    request = kit.api.requests[0]
    assert request.headers["Authorization"] == "Bearer apify_api_token"
    assert request.read() == b'{"usernames":["leomessi"]}'


async def test_private_profile_is_unavailable(kit: Kit) -> None:
    path = "/v2/acts/apify~instagram-profile-scraper/run-sync-get-dataset-items"
    kit.api.on("POST", path, reply(load("apify", "profile_private")))
    with pytest.raises(AccountUnavailable) as err:
        await ap(kit).fetch_profile("someprivateone")
    assert err.value.reason == "private"


async def test_one_run_polled_then_dataset_paged_to_the_end(kit: Kit) -> None:
    kit.api.on("POST", RUNS, reply(load("apify", "run_started"), 201))
    kit.api.on(
        "GET", RUN, reply(load("apify", "run_running")), reply(load("apify", "run_succeeded"))
    )
    kit.api.on(
        "GET",
        ITEMS,
        reply(load("apify", "dataset_page1")),
        reply(load("apify", "dataset_page2")),
        reply([]),  # offset past the end: an empty list
    )
    connector = ap(kit, page_size=2)
    account = AccountRef("instagram", "leomessi", "427553890")
    posts: list[PostData] = []
    errors = []
    cursors = []
    cursor = None
    while True:
        page = await connector.fetch_posts(account, cursor)
        posts += page.items
        errors += page.errors
        if page.done:
            break
        cursor = page.next_cursor
        cursors.append(cursor)

    assert len(kit.api.calls(RUNS)) == 1  # resuming from a cursor never starts a second run
    started = kit.api.calls(RUNS)[0]
    assert b'"directUrls":["https://www.instagram.com/leomessi/"]' in started.read()
    assert b'"resultsType":"posts"' in started.read()
    assert kit.api.calls(RUN)[0].url.params["waitForFinish"] == "60"
    offsets = [r.url.params["offset"] for r in kit.api.calls(ITEMS)]
    assert offsets == ["0", "2", "4"]
    assert kit.api.calls(ITEMS)[0].url.params["clean"] == "true"
    assert [p.external_id for p in posts] == [
        "3480000000000000001",
        "3480000000000000002",
        "3480000000000000003",
    ]
    assert len(errors) == 1 and "id is missing" in errors[0].message
    first, video = posts[0], posts[1]
    assert first.platform == "instagram" and first.handle == "leomessi"
    assert first.hashtags == ("vamosargentina",) and first.mentions == ("afaseleccion",)
    assert (first.likes, first.comments) == (15_000_000, 120_000)
    assert first.published_at == datetime(2026, 11, 20, 21, tzinfo=UTC)
    assert video.likes == 0 and video.views == 9_000_000  # -1 = hidden likes
    # start + poll (running), poll (succeeded) + page 1, page 2, page 3 (empty)
    spent = REQUESTS.capacity - await kit.limiter.remaining("apify", "cred1", "requests", REQUESTS)
    assert spent == 6


async def test_private_account_posts_are_unavailable(kit: Kit) -> None:
    kit.api.on("POST", RUNS, reply(load("apify", "run_started"), 201))
    kit.api.on("GET", RUN, reply(load("apify", "run_succeeded")))
    kit.api.on("GET", ITEMS, reply(load("apify", "dataset_private")))
    with pytest.raises(AccountUnavailable) as err:
        await ap(kit).fetch_posts(AccountRef("instagram", "someprivateone"))
    assert err.value.reason == "no_items"


async def test_failed_run_is_platform_unavailable(kit: Kit) -> None:
    kit.api.on("POST", RUNS, reply(load("apify", "run_started"), 201))
    kit.api.on("GET", RUN, reply(load("apify", "run_failed")))
    with pytest.raises(PlatformUnavailable):
        await ap(kit).fetch_posts(AccountRef("instagram", "leomessi"))


async def test_comments_from_the_same_actor(kit: Kit) -> None:
    kit.api.on("POST", RUNS, reply(load("apify", "run_started"), 201))
    kit.api.on("GET", RUN, reply(load("apify", "run_succeeded")))
    kit.api.on("GET", ITEMS, reply(load("apify", "dataset_comments")))
    post = PostData(
        "instagram",
        "3480000000000000001",
        "leomessi",
        datetime(2026, 11, 20, tzinfo=UTC),
        url="https://www.instagram.com/p/DCa1bC2dE3f/",
    )
    page = await ap(kit).fetch_comments(post)
    assert [(c.author, c.text, c.likes) for c in page.items] == [
        ("fan_one", "GOAT 🐐", 5400),
        ("fan_two", "Vamos!", 800),
    ]
    assert page.done and page.items[0].post_external_id == "3480000000000000001"
    assert b'"resultsType":"comments"' in kit.api.calls(RUNS)[0].read()
