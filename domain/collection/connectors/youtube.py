"""YouTube Data API v3 (API key).

Calls, each a `list` method costing 1 quota unit (never `search.list`, 100 units):
- `channels.list` (`forHandle` or `id`, part=snippet,statistics,contentDetails): the profile and
  its uploads playlist (`contentDetails.relatedPlaylists.uploads`);
- `playlistItems.list` on the uploads playlist (part=contentDetails, maxResults=50,
  `pageToken` / `nextPageToken`): the video ids, newest first;
- `videos.list` (part=snippet,statistics, up to 50 ids): titles, descriptions, counts;
- `commentThreads.list` (part=snippet, videoId, maxResults=100, textFormat=plainText).
A page of posts costs 2 units (playlistItems + videos); the first also resolves the uploads
playlist when the account's channel id is known (1 unit), else looks the handle up (1 unit).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from domain.collection.connectors.base import (
    AccountData,
    AccountRef,
    AccountUnavailable,
    CommentData,
    CredentialBroken,
    ItemError,
    Page,
    PlatformRequestFailed,
    PostData,
    QuotaExhausted,
    count,
    decode_cursor,
    encode_cursor,
    error_object,
    iso_datetime,
    map_items,
    required_id,
    tags_from,
    text_of,
)
from domain.collection.connectors.http import PlatformHttp, Retryable

PLATFORM = "youtube"
BASE_URL = "https://www.googleapis.com/youtube/v3"
BUCKET = "units"
QUOTA_REASONS = {
    "quotaExceeded",
    "dailyLimitExceeded",
    "rateLimitExceeded",
    "userRateLimitExceeded",
}
CREDENTIAL_REASONS = {
    "keyInvalid",
    "keyExpired",
    "accessNotConfigured",
    "forbidden",
    "ipRefererBlocked",
}
NOT_FOUND_REASONS = {"channelNotFound", "playlistNotFound", "videoNotFound"}


class CommentsDisabled(PlatformRequestFailed):
    """The video has comments turned off: an empty listing, not a failure."""


def _seconds_to_pacific_midnight(now: datetime) -> float:
    """YouTube's daily quota resets at midnight Pacific Time."""
    try:
        tz: Any = ZoneInfo("America/Los_Angeles")
    except ZoneInfoNotFoundError:  # no tz database: assume PST
        from datetime import timezone

        tz = timezone(timedelta(hours=-8))
    local = now.astimezone(tz)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (midnight - local).total_seconds())


def _classify(clock: Callable[[], datetime]) -> Callable[[httpx.Response], Exception | None]:
    def classify(response: httpx.Response) -> Exception | None:
        if response.status_code < 400:
            return None
        error = error_object(response)
        if not error:
            return None
        details = error.get("errors")
        first = details[0] if isinstance(details, list) and details else {}
        reason = str(first.get("reason") or "") if isinstance(first, dict) else ""
        message = str(error.get("message") or reason)
        if reason in QUOTA_REASONS:
            if reason in ("rateLimitExceeded", "userRateLimitExceeded"):
                return Retryable(429, message)
            return QuotaExhausted(PLATFORM, _seconds_to_pacific_midnight(clock()), message)
        if reason == "commentsDisabled":
            return CommentsDisabled(PLATFORM, message, status=response.status_code)
        if reason in CREDENTIAL_REASONS or "API key" in message:
            return CredentialBroken(PLATFORM, message, status=response.status_code)
        if reason in NOT_FOUND_REASONS or response.status_code == 404:
            return AccountUnavailable(PLATFORM, "not_found", message)
        return None

    return classify


def _map_account(item: dict[str, Any]) -> AccountData:
    channel_id = required_id(item)
    snippet = item.get("snippet") or {}
    stats = item.get("statistics") or {}
    handle = text_of(snippet.get("customUrl")).lstrip("@") or channel_id
    return AccountData(
        platform=PLATFORM,
        external_id=channel_id,
        handle=handle.lower(),
        display_name=text_of(snippet.get("title")),
        followers=count(stats.get("subscriberCount"), "subscriberCount"),
        verified=False,  # the Data API does not say
        profile_url=f"https://www.youtube.com/channel/{channel_id}",
        posts_count=count(stats.get("videoCount"), "videoCount"),
        raw=item,
    )


def _map_post(item: dict[str, Any], handle: str) -> PostData:
    video_id = required_id(item)
    snippet = item.get("snippet")
    if not isinstance(snippet, dict):
        raise ValueError("snippet is missing")
    stats = item.get("statistics") or {}
    title, description = text_of(snippet.get("title")), text_of(snippet.get("description"))
    text = f"{title}\n\n{description}".strip() if description else title
    return PostData(
        platform=PLATFORM,
        external_id=video_id,
        handle=handle,
        published_at=iso_datetime(snippet.get("publishedAt"), "publishedAt"),
        url=f"https://www.youtube.com/watch?v={video_id}",
        text=text,
        likes=count(stats.get("likeCount"), "likeCount"),
        comments=count(stats.get("commentCount"), "commentCount"),
        shares=0,  # not exposed by the Data API
        views=count(stats.get("viewCount"), "viewCount"),
        hashtags=tags_from(text),
        mentions=tags_from(text, mentions=True),
        account_external_id=text_of(snippet.get("channelId")) or None,
        raw=item,
    )


def _map_comment(item: dict[str, Any], video_id: str) -> CommentData:
    thread_id = required_id(item)
    top = ((item.get("snippet") or {}).get("topLevelComment") or {}).get("snippet")
    if not isinstance(top, dict):
        raise ValueError("snippet.topLevelComment is missing")
    return CommentData(
        platform=PLATFORM,
        external_id=thread_id,
        post_external_id=video_id,
        author=text_of(top.get("authorDisplayName"))[:200],
        text=text_of(top.get("textOriginal")) or text_of(top.get("textDisplay")),
        likes=count(top.get("likeCount"), "likeCount"),
        published_at=iso_datetime(top.get("publishedAt"), "publishedAt"),
        raw=item,
    )


class YouTubeConnector:
    platform = PLATFORM

    def __init__(
        self,
        http: PlatformHttp,
        *,
        api_key: str,
        base_url: str = BASE_URL,
        page_size: int = 50,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.http = http
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.page_size = min(50, max(1, page_size))
        self.clock = clock
        self._classify = _classify(clock)

    async def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        body = await self.http.request_json(
            "GET",
            f"{self.base_url}/{path}",
            bucket=BUCKET,
            cost=1,  # every list method costs 1 unit
            params={**params, "key": self.api_key},
            classify=self._classify,
        )
        return body if isinstance(body, dict) else {}

    async def _channel(self, **selector: str) -> dict[str, Any]:
        body = await self._get(
            "channels", {"part": "snippet,statistics,contentDetails", **selector}
        )
        items = body.get("items") or []
        if not items:
            raise AccountUnavailable(PLATFORM, "not_found", f"no channel for {selector}")
        channel: dict[str, Any] = items[0]
        return channel

    async def fetch_profile(self, handle: str) -> AccountData:
        handle = handle.strip()
        if handle.startswith("UC") and len(handle) == 24:
            item = await self._channel(id=handle)
        else:
            item = await self._channel(forHandle=f"@{handle.lstrip('@')}")
        return _map_account(item)

    async def fetch_posts(
        self, account: AccountRef, cursor: str | None = None, *, since: datetime | None = None
    ) -> Page[PostData]:
        start = self.http.units_spent
        state = decode_cursor(cursor)
        playlist = state.get("pl")
        if not playlist:
            if account.external_id:
                channel = await self._channel(id=account.external_id)
            else:
                channel = await self._channel(forHandle=f"@{account.handle.lstrip('@')}")
            uploads = (channel.get("contentDetails") or {}).get("relatedPlaylists") or {}
            playlist = uploads.get("uploads")
            if not playlist:
                raise AccountUnavailable(PLATFORM, "no_uploads", "the channel has no uploads")
        params: dict[str, Any] = {
            "part": "contentDetails",
            "playlistId": playlist,
            "maxResults": self.page_size,
        }
        if state.get("pt"):
            params["pageToken"] = state["pt"]
        listing = await self._get("playlistItems", params)
        video_ids: list[str] = []
        errors: list[ItemError] = []
        reached_since = False
        for entry in listing.get("items") or []:
            details = entry.get("contentDetails") if isinstance(entry, dict) else None
            vid = details.get("videoId") if isinstance(details, dict) else None
            if not isinstance(vid, str) or not vid:
                errors.append(ItemError(None, "contentDetails.videoId is missing", entry))
                continue
            published = details.get("videoPublishedAt") if isinstance(details, dict) else None
            if since is not None and isinstance(published, str):
                try:
                    if iso_datetime(published, "videoPublishedAt") < since:
                        reached_since = True
                        continue
                except ValueError:
                    pass
            video_ids.append(vid)
        posts: list[PostData] = []
        if video_ids:
            videos = await self._get(
                "videos", {"part": "snippet,statistics", "id": ",".join(video_ids)}
            )
            handle = account.handle.lstrip("@").lower()
            posts, bad = map_items(videos.get("items"), lambda i: _map_post(i, handle))
            errors += bad
            if since is not None:
                posts = [p for p in posts if p.published_at >= since]
        next_token = listing.get("nextPageToken")
        next_cursor = (
            encode_cursor({"pl": playlist, "pt": next_token})
            if next_token and not reached_since
            else None
        )
        return Page(posts, next_cursor, errors, units=self.http.units_spent - start)

    async def fetch_comments(self, post: PostData, cursor: str | None = None) -> Page[CommentData]:
        start = self.http.units_spent
        state = decode_cursor(cursor)
        params: dict[str, Any] = {
            "part": "snippet",
            "videoId": post.external_id,
            "maxResults": 100,
            "textFormat": "plainText",
        }
        if state.get("pt"):
            params["pageToken"] = state["pt"]
        try:
            body = await self._get("commentThreads", params)
        except CommentsDisabled:
            return Page([], None, units=self.http.units_spent - start)
        comments, errors = map_items(body.get("items"), lambda i: _map_comment(i, post.external_id))
        token = body.get("nextPageToken")
        return Page(
            comments,
            encode_cursor({"pt": token}) if token else None,
            errors,
            units=self.http.units_spent - start,
        )
