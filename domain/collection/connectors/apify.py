"""Apify (API token): the scraper route, with Instagram-scraper style actors.

- profile: `POST /v2/acts/{profileActor}/run-sync-get-dataset-items` with `{"usernames": [H]}`
  (apify~instagram-profile-scraper items: id, username, fullName, followersCount, postsCount,
  verified, private, url);
- posts and comments, resumable: `POST /v2/acts/{actor}/runs` starts ONE run (its id goes into
  the cursor at once, so a restarted job never starts a second, billed run), then
  `GET /v2/actor-runs/{runId}?waitForFinish=60` until the run SUCCEEDED, then
  `GET /v2/datasets/{datasetId}/items?offset=&limit=&clean=true&format=json` page by page
  (apify~instagram-scraper with `resultsType` posts / comments; items: id, shortCode, caption,
  hashtags, mentions, url, likesCount, commentsCount, videoViewCount, timestamp, ownerUsername).
A page may be empty with a cursor while the run is still going: call again with that cursor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.collection.connectors.base import (
    AccountData,
    AccountRef,
    AccountUnavailable,
    CommentData,
    ItemError,
    Page,
    PlatformUnavailable,
    PostData,
    count,
    decode_cursor,
    encode_cursor,
    iso_datetime,
    map_items,
    required_id,
    tags_from,
    text_of,
)
from domain.collection.connectors.http import PlatformHttp

PLATFORM = "apify"
TARGET_PLATFORM = "instagram"  # what the default actors scrape
BASE_URL = "https://api.apify.com"
BUCKET = "requests"
POSTS_ACTOR = "apify~instagram-scraper"
PROFILE_ACTOR = "apify~instagram-profile-scraper"
FAILED = {"FAILED", "ABORTED", "TIMED-OUT", "TIMING-OUT", "ABORTING"}
PRIVATE_ERRORS = {"private", "restricted_page", "private_profile"}


def _likes(value: Any, name: str) -> int:
    """Scrapers write -1 where the owner hides the count."""
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return 0
    return count(value, name)


def _map_account(item: dict[str, Any]) -> AccountData:
    username = text_of(item.get("username"))
    if not username:
        raise ValueError("username is missing")
    return AccountData(
        platform=TARGET_PLATFORM,
        external_id=required_id(item),
        handle=username.lower(),
        display_name=text_of(item.get("fullName")),
        followers=count(item.get("followersCount"), "followersCount"),
        verified=item.get("verified") is True,
        profile_url=text_of(item.get("url")) or f"https://www.instagram.com/{username}/",
        posts_count=count(item.get("postsCount"), "postsCount"),
        is_private=item.get("private") is True,
        raw=item,
    )


def _map_post(item: dict[str, Any], handle: str) -> PostData:
    if "error" in item:
        raise ValueError(f"scraper error: {item.get('errorDescription') or item['error']}")
    post_id = required_id(item)
    caption = text_of(item.get("caption"))
    views = item.get("videoViewCount", item.get("videoPlayCount"))
    owner = text_of(item.get("ownerUsername")) or handle
    return PostData(
        platform=TARGET_PLATFORM,
        external_id=post_id,
        handle=owner.lower(),
        published_at=iso_datetime(item.get("timestamp"), "timestamp"),
        url=text_of(item.get("url"))
        or f"https://www.instagram.com/p/{text_of(item.get('shortCode'))}/",
        text=caption,
        likes=_likes(item.get("likesCount"), "likesCount"),
        comments=_likes(item.get("commentsCount"), "commentsCount"),
        shares=0,
        views=_likes(views, "videoViewCount"),
        hashtags=tags_from(caption, item.get("hashtags")),
        mentions=tags_from(caption, item.get("mentions"), mentions=True),
        account_external_id=text_of(item.get("ownerId")) or None,
        raw=item,
    )


def _map_comment(item: dict[str, Any], post_id: str) -> CommentData:
    if "error" in item:
        raise ValueError(f"scraper error: {item.get('errorDescription') or item['error']}")
    stamp = item.get("timestamp")
    return CommentData(
        platform=TARGET_PLATFORM,
        external_id=required_id(item),
        post_external_id=post_id,
        author=text_of(item.get("ownerUsername"))[:200],
        text=text_of(item.get("text")),
        likes=_likes(item.get("likesCount"), "likesCount"),
        published_at=iso_datetime(stamp, "timestamp") if stamp is not None else None,
        raw=item,
    )


class ApifyConnector:
    platform = PLATFORM

    def __init__(
        self,
        http: PlatformHttp,
        *,
        token: str,
        base_url: str = BASE_URL,
        posts_actor: str = POSTS_ACTOR,
        profile_actor: str = PROFILE_ACTOR,
        page_size: int = 100,
        results_limit: int = 200,
        wait_seconds: int = 60,
    ) -> None:
        self.http = http
        self.token = token
        self.base_url = base_url.rstrip("/")
        self.posts_actor = posts_actor
        self.profile_actor = profile_actor
        self.page_size = max(1, page_size)
        self.results_limit = results_limit
        self.wait_seconds = min(60, max(0, wait_seconds))

    async def _call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> Any:
        return await self.http.request_json(
            method,
            f"{self.base_url}{path}",
            bucket=BUCKET,
            params=params,
            json=json,
            headers={"Authorization": f"Bearer {self.token}"},
        )

    async def fetch_profile(self, handle: str) -> AccountData:
        name = handle.strip().lstrip("@")
        items = await self._call(
            "POST",
            f"/v2/acts/{self.profile_actor}/run-sync-get-dataset-items",
            json={"usernames": [name]},
        )
        if not isinstance(items, list) or not items or not isinstance(items[0], dict):
            raise AccountUnavailable(TARGET_PLATFORM, "not_found", f"no profile for {name}")
        item = items[0]
        if "error" in item:
            raise AccountUnavailable(
                TARGET_PLATFORM,
                "private" if item["error"] in PRIVATE_ERRORS else str(item["error"]),
                text_of(item.get("errorDescription")),
            )
        return _map_account(item)

    async def _run_page(
        self, cursor: str | None, run_input: dict[str, Any]
    ) -> tuple[list[Any], str | None]:
        """Advance the run behind the cursor by one step: start it, wait for it, or read the
        next page of its dataset. Returns (raw items, next cursor)."""
        state = decode_cursor(cursor)
        if not state.get("run"):
            started = await self._call("POST", f"/v2/acts/{self.posts_actor}/runs", json=run_input)
            run = (started or {}).get("data") or {}
            state = {"run": required_id(run), "ds": run.get("defaultDatasetId"), "off": 0}
        if not state.get("ok"):
            polled = await self._call(
                "GET",
                f"/v2/actor-runs/{state['run']}",
                params={"waitForFinish": self.wait_seconds},
            )
            run = (polled or {}).get("data") or {}
            status = str(run.get("status") or "")
            if status in FAILED:
                raise PlatformUnavailable(PLATFORM, f"actor run {state['run']} ended {status}")
            if status != "SUCCEEDED":
                return [], encode_cursor(state)  # still running: come back with this cursor
            state = {**state, "ok": True, "ds": run.get("defaultDatasetId") or state.get("ds")}
        items = await self._call(
            "GET",
            f"/v2/datasets/{state['ds']}/items",
            params={
                "offset": state["off"],
                "limit": self.page_size,
                "clean": "true",
                "format": "json",
            },
        )
        if not isinstance(items, list):
            raise PlatformUnavailable(PLATFORM, "dataset items are not a list")
        done = len(items) < self.page_size
        next_state = {**state, "off": int(state["off"]) + len(items)}
        return items, None if done else encode_cursor(next_state)

    async def fetch_posts(
        self, account: AccountRef, cursor: str | None = None, *, since: datetime | None = None
    ) -> Page[PostData]:
        start = self.http.units_spent
        name = account.handle.strip().lstrip("@")
        run_input: dict[str, Any] = {
            "directUrls": [f"https://www.instagram.com/{name}/"],
            "resultsType": "posts",
            "resultsLimit": self.results_limit,
        }
        if since is not None:
            run_input["onlyPostsNewerThan"] = since.date().isoformat()
        items, next_cursor = await self._run_page(cursor, run_input)
        errors_only = items and all(isinstance(i, dict) and "error" in i for i in items)
        if errors_only and not decode_cursor(cursor).get("off"):
            error = str(items[0]["error"])
            raise AccountUnavailable(
                TARGET_PLATFORM,
                "private" if error in PRIVATE_ERRORS else error,
                text_of(items[0].get("errorDescription")),
            )
        posts, errors = map_items(items, lambda i: _map_post(i, name.lower()))
        if since is not None:
            posts = [p for p in posts if p.published_at >= since]
        return Page(posts, next_cursor, errors, units=self.http.units_spent - start)

    async def fetch_comments(self, post: PostData, cursor: str | None = None) -> Page[CommentData]:
        start = self.http.units_spent
        if not post.url:
            return Page([], None, [ItemError(post.external_id, "the post has no URL")])
        run_input = {
            "directUrls": [post.url],
            "resultsType": "comments",
            "resultsLimit": self.results_limit,
        }
        items, next_cursor = await self._run_page(cursor, run_input)
        comments, errors = map_items(items, lambda i: _map_comment(i, post.external_id))
        return Page(comments, next_cursor, errors, units=self.http.units_spent - start)
