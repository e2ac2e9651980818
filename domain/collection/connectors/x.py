"""X API v2 (app-only bearer token).

- `GET /2/users/by/username/:username?user.fields=...` (300 requests / 15 min per app);
- `GET /2/users/:id/tweets?tweet.fields=public_metrics,created_at,entities&max_results=100`,
  paged with `pagination_token` = the previous `meta.next_token` (per-app 15-minute window).
On a 429 X sends `x-rate-limit-reset` (Unix time the window reopens) rather than Retry-After;
we wait until then when it is near, else raise QuotaExhausted. X API v2 has no replies listing
per post outside search (`conversation_id`), which we do not use: `fetch_comments` returns an
empty, finished page.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from domain.collection.connectors.base import (
    AccountData,
    AccountRef,
    AccountUnavailable,
    CommentData,
    Page,
    PlatformRequestFailed,
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
from domain.collection.connectors.http import PlatformHttp, Retryable, parse_retry_after

PLATFORM = "x"
BASE_URL = "https://api.x.com"
USER_FIELDS = "public_metrics,verified,protected,name,username,created_at,description"
TWEET_FIELDS = "public_metrics,created_at,entities,author_id"


def _classify(clock: Callable[[], datetime]) -> Callable[[httpx.Response], Exception | None]:
    def classify(response: httpx.Response) -> Exception | None:
        if response.status_code != 429:
            return None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        reset = response.headers.get("x-rate-limit-reset")
        if retry_after is None and reset and reset.strip().isdigit():
            retry_after = max(0.0, int(reset) - clock().timestamp())
        return Retryable(429, "rate limit exceeded", retry_after)

    return classify


def _unavailable(errors: Any) -> AccountUnavailable | None:
    """An X `errors` array (HTTP 200, no data) as AccountUnavailable, when it says so."""
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None
    first = errors[0]
    kind = str(first.get("type") or "")
    detail = str(first.get("detail") or first.get("title") or kind)
    if "suspend" in detail.lower():
        return AccountUnavailable(PLATFORM, "suspended", detail)
    if kind.endswith("/not-authorized-for-resource"):
        return AccountUnavailable(PLATFORM, "private", detail)
    if kind.endswith("/resource-not-found"):
        return AccountUnavailable(PLATFORM, "not_found", detail)
    return None


def _map_account(item: dict[str, Any]) -> AccountData:
    user_id = required_id(item)
    metrics = item.get("public_metrics") or {}
    username = text_of(item.get("username"))
    if not username:
        raise ValueError("username is missing")
    return AccountData(
        platform=PLATFORM,
        external_id=user_id,
        handle=username.lower(),
        display_name=text_of(item.get("name")),
        followers=count(metrics.get("followers_count"), "followers_count"),
        verified=item.get("verified") is True,
        profile_url=f"https://x.com/{username}",
        posts_count=count(metrics.get("tweet_count"), "tweet_count"),
        is_private=item.get("protected") is True,
        raw=item,
    )


def _map_post(item: dict[str, Any], handle: str, user_id: str | None) -> PostData:
    tweet_id = required_id(item)
    text = text_of(item.get("text"))
    metrics = item.get("public_metrics")
    if not isinstance(metrics, dict):
        raise ValueError("public_metrics is missing")
    entities = item.get("entities") or {}
    hashtags = [h.get("tag") for h in entities.get("hashtags") or [] if isinstance(h, dict)]
    mentions = [m.get("username") for m in entities.get("mentions") or [] if isinstance(m, dict)]
    return PostData(
        platform=PLATFORM,
        external_id=tweet_id,
        handle=handle,
        published_at=iso_datetime(item.get("created_at"), "created_at"),
        url=f"https://x.com/{handle}/status/{tweet_id}",
        text=text,
        likes=count(metrics.get("like_count"), "like_count"),
        comments=count(metrics.get("reply_count"), "reply_count"),
        shares=count(metrics.get("retweet_count"), "retweet_count")
        + count(metrics.get("quote_count"), "quote_count"),
        views=count(metrics.get("impression_count"), "impression_count"),
        hashtags=tags_from(text, [h for h in hashtags if h]),
        mentions=tags_from(text, [m for m in mentions if m], mentions=True),
        account_external_id=text_of(item.get("author_id")) or user_id,
        raw=item,
    )


class XConnector:
    platform = PLATFORM

    def __init__(
        self,
        http: PlatformHttp,
        *,
        bearer_token: str,
        base_url: str = BASE_URL,
        page_size: int = 100,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.http = http
        self.bearer_token = bearer_token
        self.base_url = base_url.rstrip("/")
        self.page_size = min(100, max(5, page_size))
        self._classify = _classify(clock)

    async def _get(self, path: str, bucket: str, params: dict[str, Any]) -> dict[str, Any]:
        body = await self.http.request_json(
            "GET",
            f"{self.base_url}{path}",
            bucket=bucket,
            params=params,
            headers={"Authorization": f"Bearer {self.bearer_token}"},
            classify=self._classify,
        )
        return body if isinstance(body, dict) else {}

    async def fetch_profile(self, handle: str) -> AccountData:
        name = handle.strip().lstrip("@")
        if not name.replace("_", "").isalnum() or len(name) > 15:
            raise AccountUnavailable(PLATFORM, "invalid_handle", f"not a username: {handle!r}")
        body = await self._get(
            f"/2/users/by/username/{name}", "users_by_username", {"user.fields": USER_FIELDS}
        )
        data = body.get("data")
        if not isinstance(data, dict):
            raise _unavailable(body.get("errors")) or AccountUnavailable(PLATFORM, "not_found")
        return _map_account(data)

    async def fetch_posts(
        self, account: AccountRef, cursor: str | None = None, *, since: datetime | None = None
    ) -> Page[PostData]:
        start = self.http.units_spent
        user_id = account.external_id
        handle = account.handle.lstrip("@").lower()
        if not user_id:
            user_id = (await self.fetch_profile(account.handle)).external_id
        params: dict[str, Any] = {"tweet.fields": TWEET_FIELDS, "max_results": self.page_size}
        token = decode_cursor(cursor).get("next")
        if token:
            params["pagination_token"] = token
        if since is not None:
            params["start_time"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = await self._get(f"/2/users/{user_id}/tweets", "user_tweets", params)
        data = body.get("data")
        if data is None and body.get("errors"):
            raise _unavailable(body.get("errors")) or PlatformRequestFailed(
                PLATFORM, str(body.get("errors"))[:300]
            )
        posts, errors = map_items(data or [], lambda i: _map_post(i, handle, user_id))
        meta = body.get("meta") or {}
        next_token = meta.get("next_token") if isinstance(meta, dict) else None
        next_cursor = encode_cursor({"next": next_token}) if next_token else None
        return Page(posts, next_cursor, errors, units=self.http.units_spent - start)

    async def fetch_comments(self, post: PostData, cursor: str | None = None) -> Page[CommentData]:
        return Page([], None)
