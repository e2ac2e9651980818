"""Platform connectors: one `Connector` per source, one HTTP layer, Redis quota buckets.

Wiring (what a collection job does)::

    connector = build_connector(
        "youtube", credential_id=str(conn.id), secrets=decrypt_json(conn.secret),
        client=runtime.http, limiter=QuotaLimiter(runtime.redis),
    )
    page = await connector.fetch_posts(account_ref, task.cursor, since=last_run)
    # upsert [p.to_import_row(i) for i, p in enumerate(page.items)], record page.errors and
    # page.units, store page.next_cursor: all in one commit; stop when page.done.

Errors to handle: CredentialBroken (mark the connection broken, tell the tenant),
AccountUnavailable (record on the account), QuotaExhausted (reschedule in `retry_after`),
PlatformUnavailable (retry the task later from its cursor), PlatformRequestFailed (fail the task).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from domain.collection.connectors.apify import ApifyConnector
from domain.collection.connectors.base import (
    AccountData,
    AccountRef,
    AccountUnavailable,
    CommentData,
    Connector,
    ConnectorError,
    CredentialBroken,
    ItemError,
    Page,
    PlatformRequestFailed,
    PlatformUnavailable,
    PostData,
    QuotaExhausted,
)
from domain.collection.connectors.http import PlatformHttp, RetryPolicy, Sleep
from domain.collection.connectors.instagram import InstagramConnector
from domain.collection.connectors.quota import DEFAULT_BUCKETS, BucketSpec, QuotaLimiter
from domain.collection.connectors.tiktok import TikTokConnector
from domain.collection.connectors.x import XConnector
from domain.collection.connectors.youtube import YouTubeConnector

# Which secret fields each platform's credential holds (stored encrypted, see secrets.py).
SECRET_FIELDS: Mapping[str, tuple[str, ...]] = {
    "youtube": ("api_key",),
    "instagram": ("access_token", "ig_user_id"),
    "tiktok": ("client_key", "client_secret"),  # or "access_token" alone
    "x": ("bearer_token",),
    "apify": ("token",),
}
# Fields a credential may also hold: kept by the OAuth flows (domain/collection/oauth.py) to
# renew it; `expires_at` is a Unix time in seconds.
OPTIONAL_SECRET_FIELDS: Mapping[str, tuple[str, ...]] = {
    "x": ("refresh_token", "expires_at"),
    "instagram": ("expires_at",),
}
PLATFORMS = tuple(SECRET_FIELDS)


def build_connector(
    platform: str,
    *,
    credential_id: str,
    secrets: Mapping[str, str],
    client: httpx.AsyncClient,
    limiter: QuotaLimiter | None,
    buckets: Mapping[str, BucketSpec] | None = None,
    base_url: str | None = None,
    policy: RetryPolicy | None = None,
    sleep: Sleep = asyncio.sleep,
    **options: Any,
) -> Connector:
    """The connector for `platform` using one tenant credential (its decrypted `secrets`)."""
    if platform not in SECRET_FIELDS:
        raise ValueError(f"unknown platform {platform!r}")
    http = PlatformHttp(
        platform,
        credential_id,
        client,
        limiter=limiter,
        buckets=buckets or DEFAULT_BUCKETS[platform],
        policy=policy,
        sleep=sleep,
    )
    extra: dict[str, Any] = dict(options)
    if base_url:
        extra["base_url"] = base_url
    if platform == "youtube":
        return YouTubeConnector(http, api_key=secrets["api_key"], **extra)
    if platform == "instagram":
        return InstagramConnector(
            http, access_token=secrets["access_token"], ig_user_id=secrets["ig_user_id"], **extra
        )
    if platform == "tiktok":
        return TikTokConnector(
            http,
            access_token=secrets.get("access_token"),
            client_key=secrets.get("client_key"),
            client_secret=secrets.get("client_secret"),
            **extra,
        )
    if platform == "x":
        return XConnector(http, bearer_token=secrets["bearer_token"], **extra)
    return ApifyConnector(http, token=secrets["token"], **extra)


__all__ = [
    "DEFAULT_BUCKETS",
    "OPTIONAL_SECRET_FIELDS",
    "PLATFORMS",
    "SECRET_FIELDS",
    "AccountData",
    "AccountRef",
    "AccountUnavailable",
    "ApifyConnector",
    "BucketSpec",
    "CommentData",
    "Connector",
    "ConnectorError",
    "CredentialBroken",
    "InstagramConnector",
    "ItemError",
    "Page",
    "PlatformHttp",
    "PlatformRequestFailed",
    "PlatformUnavailable",
    "PostData",
    "QuotaExhausted",
    "QuotaLimiter",
    "RetryPolicy",
    "TikTokConnector",
    "XConnector",
    "YouTubeConnector",
    "build_connector",
]
