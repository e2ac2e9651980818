"""Instagram Graph API, business discovery (a Facebook user access token of the tenant's own
Instagram professional account, whose IG user id makes the calls).

- profile: `GET /{ig-user-id}?fields=business_discovery.username(H){id,username,name,
  followers_count,media_count,profile_picture_url}`;
- posts: `GET /{ig-user-id}?fields=business_discovery.username(H){media.limit(N).after(C){id,
  caption,like_count,comments_count,timestamp,permalink,media_type}}`, paged with the media
  edge's `paging.cursors.after`.
Only public data of professional (business/creator) accounts is returned; other accounts fail
with Graph error 110 / subcode 2207013, which we report as `AccountUnavailable`. Comments of
media the token's user does not own are not available through business discovery, so
`fetch_comments` returns an empty, finished page.
Every call counts against the Graph API's 200 calls per hour per user.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import httpx

from domain.collection.connectors.base import (
    AccountData,
    AccountRef,
    AccountUnavailable,
    CommentData,
    CredentialBroken,
    Page,
    PostData,
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

PLATFORM = "instagram"
BASE_URL = "https://graph.facebook.com/v25.0"
BUCKET = "calls"
PROFILE_FIELDS = "id,username,name,followers_count,media_count,profile_picture_url"
MEDIA_FIELDS = "id,caption,like_count,comments_count,timestamp,permalink,media_type"
RATE_LIMIT_CODES = {4, 17, 32, 613, 80002}
TRANSIENT_CODES = {1, 2}
USERNAME_RE = re.compile(r"^[A-Za-z0-9._]{1,30}$")


def _regain_seconds(response: httpx.Response) -> float:
    """Seconds until the Graph API lets this app/user call again, from the usage headers
    (`estimated_time_to_regain_access` is in minutes); an hour when they do not say."""
    for header in ("X-Business-Use-Case-Usage", "X-App-Usage"):
        raw = response.headers.get(header)
        if not raw:
            continue
        try:
            usage = json.loads(raw)
        except ValueError:
            continue
        values = [u for v in usage.values() for u in v] if isinstance(usage, dict) else []
        minutes = [
            int(u["estimated_time_to_regain_access"])
            for u in values
            if isinstance(u, dict) and isinstance(u.get("estimated_time_to_regain_access"), int)
        ]
        if minutes and max(minutes) > 0:
            return float(max(minutes) * 60)
    return 3600.0


def _classify(response: httpx.Response) -> Exception | None:
    if response.status_code < 400:
        return None
    error = error_object(response)
    if not error:
        return None
    code = error.get("code")
    subcode = error.get("error_subcode")
    message = str(error.get("message") or f"Graph API error {code}")
    if code == 190 or code == 10 or (isinstance(code, int) and 200 <= code <= 299):
        return CredentialBroken(PLATFORM, message, status=response.status_code)
    if code in RATE_LIMIT_CODES:
        return Retryable(429, message, _regain_seconds(response))
    if code in TRANSIENT_CODES:
        return Retryable(response.status_code, message)
    if code == 110 or subcode == 2207013:
        return AccountUnavailable(PLATFORM, "not_found_or_not_professional", message)
    return None


def _map_account(item: dict[str, Any], handle: str) -> AccountData:
    username = text_of(item.get("username")) or handle
    return AccountData(
        platform=PLATFORM,
        external_id=required_id(item),
        handle=username.lower(),
        display_name=text_of(item.get("name")),
        followers=count(item.get("followers_count"), "followers_count"),
        verified=False,  # not exposed by business discovery
        profile_url=f"https://www.instagram.com/{username}/",
        posts_count=count(item.get("media_count"), "media_count"),
        raw=item,
    )


def _map_post(item: dict[str, Any], handle: str, owner_id: str | None) -> PostData:
    media_id = required_id(item)
    caption = text_of(item.get("caption"))
    return PostData(
        platform=PLATFORM,
        external_id=media_id,
        handle=handle,
        published_at=iso_datetime(item.get("timestamp"), "timestamp"),
        url=text_of(item.get("permalink")),
        text=caption,
        likes=count(item.get("like_count"), "like_count"),  # absent when the owner hides it
        comments=count(item.get("comments_count"), "comments_count"),
        shares=0,
        views=0,
        hashtags=tags_from(caption),
        mentions=tags_from(caption, mentions=True),
        account_external_id=owner_id,
        raw=item,
    )


class InstagramConnector:
    platform = PLATFORM

    def __init__(
        self,
        http: PlatformHttp,
        *,
        access_token: str,
        ig_user_id: str,
        base_url: str = BASE_URL,
        page_size: int = 50,
    ) -> None:
        self.http = http
        self.access_token = access_token
        self.ig_user_id = ig_user_id
        self.base_url = base_url.rstrip("/")
        self.page_size = min(100, max(1, page_size))

    @staticmethod
    def _username(handle: str) -> str:
        name = handle.strip().lstrip("@")
        if not USERNAME_RE.match(name):  # it goes inside a field expansion: keep it literal
            raise AccountUnavailable(PLATFORM, "invalid_handle", f"not a username: {handle!r}")
        return name

    async def _discover(self, fields: str) -> dict[str, Any]:
        body = await self.http.request_json(
            "GET",
            f"{self.base_url}/{self.ig_user_id}",
            bucket=BUCKET,
            params={"fields": fields, "access_token": self.access_token},
            classify=_classify,
        )
        found = body.get("business_discovery") if isinstance(body, dict) else None
        if not isinstance(found, dict):
            raise AccountUnavailable(PLATFORM, "not_found_or_not_professional")
        return found

    async def fetch_profile(self, handle: str) -> AccountData:
        name = self._username(handle)
        found = await self._discover(f"business_discovery.username({name}){{{PROFILE_FIELDS}}}")
        return _map_account(found, name)

    async def fetch_posts(
        self, account: AccountRef, cursor: str | None = None, *, since: datetime | None = None
    ) -> Page[PostData]:
        start = self.http.units_spent
        name = self._username(account.handle)
        after = decode_cursor(cursor).get("after")
        edge = f"media.limit({self.page_size})"
        if after:
            edge += f".after({after})"
        found = await self._discover(
            f"business_discovery.username({name}){{id,{edge}{{{MEDIA_FIELDS}}}}}"
        )
        media = found.get("media") or {}
        data = media.get("data") if isinstance(media, dict) else None
        owner = text_of(found.get("id")) or account.external_id
        posts, errors = map_items(data, lambda i: _map_post(i, name.lower(), owner))
        reached_since = False
        if since is not None:
            kept = [p for p in posts if p.published_at >= since]
            reached_since = len(kept) < len(posts)
            posts = kept
        cursors = ((media.get("paging") or {}).get("cursors") or {}) if media else {}
        next_after = cursors.get("after") if isinstance(cursors, dict) else None
        more = bool(data) and isinstance(next_after, str) and bool(next_after)
        next_cursor = encode_cursor({"after": next_after}) if more and not reached_since else None
        return Page(posts, next_cursor, errors, units=self.http.units_spent - start)

    async def fetch_comments(self, post: PostData, cursor: str | None = None) -> Page[CommentData]:
        return Page([], None)
