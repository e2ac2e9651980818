"""TikTok Research API (client access token from /v2/oauth/token/, scope research.data.basic).

- `POST /v2/research/user/info/?fields=...` body `{"username"}`: the profile (the Research API
  returns no user id: the username is the account's external id);
- `POST /v2/research/video/query/?fields=...` body `{"query": {"and": [{"operation": "EQ",
  "field_name": "username", "field_values": [H]}]}, "start_date", "end_date", "max_count",
  "cursor", "search_id"}`, paged with `data.cursor` / `data.search_id` / `data.has_more`.
  `start_date`..`end_date` may span at most 30 days, so the cursor also walks 30-day windows
  back from today to `since` (or `lookback_days` ago);
- `POST /v2/research/video/comment/list/?fields=...` body `{"video_id", "max_count", "cursor"}`.
Every request counts against the daily limit of 1,000 requests (reset at 00:00 UTC).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from domain.collection.connectors.base import (
    AccountData,
    AccountRef,
    AccountUnavailable,
    CommentData,
    CredentialBroken,
    Page,
    PlatformRequestFailed,
    PostData,
    QuotaExhausted,
    count,
    decode_cursor,
    encode_cursor,
    epoch_datetime,
    error_object,
    map_items,
    required_id,
    tags_from,
    text_of,
)
from domain.collection.connectors.http import PlatformHttp

PLATFORM = "tiktok"
BASE_URL = "https://open.tiktokapis.com"
BUCKET = "requests"
USER_FIELDS = (
    "display_name,bio_description,avatar_url,is_verified,follower_count,following_count,"
    "likes_count,video_count"
)
VIDEO_FIELDS = (
    "id,create_time,username,region_code,video_description,like_count,comment_count,"
    "share_count,view_count,hashtag_names"
)
COMMENT_FIELDS = "id,video_id,text,like_count,reply_count,parent_comment_id,create_time"
WINDOW_DAYS = 30


def _classify(clock: Callable[[], datetime], *, user_lookup: bool = False) -> Any:
    def classify(response: httpx.Response) -> Exception | None:
        error = error_object(response)
        code = str(error.get("code") or "")
        message = str(error.get("message") or code or f"HTTP {response.status_code}")
        if response.status_code == 429 and "quota" in message.lower():
            now = clock()
            midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            return QuotaExhausted(PLATFORM, (midnight - now).total_seconds(), message)
        if code in ("access_token_invalid", "scope_not_authorized", "scope_permission_missed"):
            return CredentialBroken(PLATFORM, message, status=response.status_code)
        if user_lookup and response.status_code in (400, 404) and code == "invalid_params":
            # The user info endpoint answers an unknown, private or banned username this way.
            return AccountUnavailable(PLATFORM, "not_found_or_private", message)
        if response.status_code < 400 and code not in ("", "ok"):
            return PlatformRequestFailed(PLATFORM, message, status=response.status_code)
        return None

    return classify


def _classify_token(response: httpx.Response) -> Exception | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]:
        message = str(body.get("error_description") or body["error"])
        if body["error"] in ("invalid_client", "unauthorized_client", "access_denied"):
            return CredentialBroken(PLATFORM, message, status=response.status_code)
        if response.status_code < 500 and response.status_code != 429:
            return PlatformRequestFailed(PLATFORM, message, status=response.status_code)
    return None


def _map_account(data: dict[str, Any], handle: str) -> AccountData:
    if not isinstance(data, dict) or not data:
        raise AccountUnavailable(PLATFORM, "not_found_or_private", "no user data")
    return AccountData(
        platform=PLATFORM,
        external_id=handle,
        handle=handle,
        display_name=text_of(data.get("display_name")),
        followers=count(data.get("follower_count"), "follower_count"),
        verified=data.get("is_verified") is True,
        profile_url=f"https://www.tiktok.com/@{handle}",
        posts_count=count(data.get("video_count"), "video_count"),
        raw=data,
    )


def _map_post(item: dict[str, Any], handle: str) -> PostData:
    video_id = required_id(item)
    author = text_of(item.get("username")) or handle
    text = text_of(item.get("video_description"))
    return PostData(
        platform=PLATFORM,
        external_id=video_id,
        handle=author.lower(),
        published_at=epoch_datetime(item.get("create_time"), "create_time"),
        url=f"https://www.tiktok.com/@{author}/video/{video_id}",
        text=text,
        likes=count(item.get("like_count"), "like_count"),
        comments=count(item.get("comment_count"), "comment_count"),
        shares=count(item.get("share_count"), "share_count"),
        views=count(item.get("view_count"), "view_count"),
        hashtags=tags_from(text, item.get("hashtag_names")),
        mentions=tags_from(text, mentions=True),
        account_external_id=author.lower(),
        raw=item,
    )


def _map_comment(item: dict[str, Any], video_id: str) -> CommentData:
    created = item.get("create_time")
    return CommentData(
        platform=PLATFORM,
        external_id=required_id(item),
        post_external_id=str(item.get("video_id") or video_id),
        author="",  # the Research API does not name comment authors
        text=text_of(item.get("text")),
        likes=count(item.get("like_count"), "like_count"),
        published_at=epoch_datetime(created, "create_time") if created is not None else None,
        raw=item,
    )


def _day(value: date) -> str:
    return value.strftime("%Y%m%d")


def _parse_day(value: str) -> date:
    return datetime.strptime(value, "%Y%m%d").replace(tzinfo=UTC).date()


class TikTokConnector:
    platform = PLATFORM

    def __init__(
        self,
        http: PlatformHttp,
        *,
        access_token: str | None = None,
        client_key: str | None = None,
        client_secret: str | None = None,
        base_url: str = BASE_URL,
        page_size: int = 100,
        lookback_days: int = 90,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not access_token and not (client_key and client_secret):
            raise ValueError("TikTok needs a client access token or client key + secret")
        self.http = http
        self.access_token = access_token
        self.client_key = client_key
        self.client_secret = client_secret
        self.base_url = base_url.rstrip("/")
        self.page_size = min(100, max(1, page_size))
        self.lookback_days = lookback_days
        self.clock = clock

    async def _token(self, *, renew: bool = False) -> str:
        """The client access token; with a client key + secret it is fetched (and renewed when
        TikTok says it is invalid: client tokens live 2 hours) by client credentials."""
        if self.access_token and not (renew and self.client_key):
            return self.access_token
        if not (self.client_key and self.client_secret):
            raise CredentialBroken(PLATFORM, "the client access token was refused")
        body = await self.http.request_json(
            "POST",
            f"{self.base_url}/v2/oauth/token/",
            bucket=BUCKET,
            cost=0,  # the token endpoint is not a Research API request
            data={
                "client_key": self.client_key,
                "client_secret": self.client_secret,
                "grant_type": "client_credentials",
            },
            classify=_classify_token,
        )
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise CredentialBroken(PLATFORM, "no access token in the token response")
        self.access_token = token
        return token

    async def _post(
        self, path: str, fields: str, body: dict[str, Any], *, user_lookup: bool = False
    ) -> dict[str, Any]:
        token = await self._token()
        for renewed in (False, True):
            try:
                result = await self.http.request_json(
                    "POST",
                    f"{self.base_url}{path}",
                    bucket=BUCKET,
                    params={"fields": fields},
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                    classify=_classify(self.clock, user_lookup=user_lookup),
                )
                break
            except CredentialBroken:
                if renewed or not self.client_key:
                    raise
                token = await self._token(renew=True)
        data = result.get("data") if isinstance(result, dict) else None
        return data if isinstance(data, dict) else {}

    async def fetch_profile(self, handle: str) -> AccountData:
        name = handle.strip().lstrip("@").lower()
        data = await self._post(
            "/v2/research/user/info/", USER_FIELDS, {"username": name}, user_lookup=True
        )
        return _map_account(data, name)

    async def fetch_posts(
        self, account: AccountRef, cursor: str | None = None, *, since: datetime | None = None
    ) -> Page[PostData]:
        start_units = self.http.units_spent
        name = account.handle.strip().lstrip("@").lower()
        state = decode_cursor(cursor)
        if not state:
            today = self.clock().astimezone(UTC).date()
            floor = since.astimezone(UTC).date() if since else today - timedelta(self.lookback_days)
            state = {
                "end": _day(today),
                "start": _day(max(floor, today - timedelta(WINDOW_DAYS - 1))),
                "floor": _day(floor),
                "c": 0,
            }
        body: dict[str, Any] = {
            "query": {
                "and": [{"operation": "EQ", "field_name": "username", "field_values": [name]}]
            },
            "start_date": state["start"],
            "end_date": state["end"],
            "max_count": self.page_size,
            "cursor": int(state.get("c") or 0),
        }
        if state.get("sid"):
            body["search_id"] = state["sid"]
        data = await self._post("/v2/research/video/query/", VIDEO_FIELDS, body)
        posts, errors = map_items(data.get("videos"), lambda i: _map_post(i, name))
        if since is not None:
            posts = [p for p in posts if p.published_at >= since]
        next_state: dict[str, Any] | None
        if data.get("has_more") is True:
            next_state = {
                **state,
                "c": count(data.get("cursor"), "cursor"),
                "sid": text_of(data.get("search_id")) or state.get("sid"),
            }
        else:  # this window is done: step back one window, down to the floor
            window_start, floor = _parse_day(state["start"]), _parse_day(state["floor"])
            if window_start > floor:
                end = window_start - timedelta(days=1)
                next_state = {
                    "end": _day(end),
                    "start": _day(max(floor, end - timedelta(WINDOW_DAYS - 1))),
                    "floor": state["floor"],
                    "c": 0,
                }
            else:
                next_state = None
        return Page(
            posts,
            encode_cursor(next_state) if next_state else None,
            errors,
            units=self.http.units_spent - start_units,
        )

    async def fetch_comments(self, post: PostData, cursor: str | None = None) -> Page[CommentData]:
        start_units = self.http.units_spent
        state = decode_cursor(cursor)
        video_id: int | str = (
            int(post.external_id) if post.external_id.isdigit() else post.external_id
        )
        data = await self._post(
            "/v2/research/video/comment/list/",
            COMMENT_FIELDS,
            {"video_id": video_id, "max_count": 100, "cursor": int(state.get("c") or 0)},
        )
        comments, errors = map_items(
            data.get("comments"), lambda i: _map_comment(i, post.external_id)
        )
        more = data.get("has_more") is True
        next_cursor = encode_cursor({"c": count(data.get("cursor"), "cursor")}) if more else None
        return Page(comments, next_cursor, errors, units=self.http.units_spent - start_units)
