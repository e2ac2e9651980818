"""Post and comment I/O. Runs inside the caller's tenant transaction; never commits."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from domain.collection.rules import ImportRow
from domain.influencers.models import InfluencerAccount
from domain.pagination import Page, check_first, decode_cursor, encode_cursor
from domain.posts.models import Comment, Post
from tenants.tx import current_tx

_UPSERT = """
WITH upserted AS (
INSERT INTO post (account_id, influencer_id, platform, external_id, url, text, hashtags,
                  mentions, published_at, likes, comments, shares, views, raw_json, collected_at)
SELECT r.account_id, r.influencer_id, r.platform, r.external_id, r.url, r.text, r.hashtags,
       r.mentions, r.published_at, r.likes, r.comments, r.shares, r.views, r.raw_json, now()
FROM jsonb_to_recordset($1::jsonb) AS r(
    account_id bigint, influencer_id bigint, platform text, external_id text, url text,
    text text, hashtags text[], mentions text[], published_at timestamptz, likes bigint,
    comments bigint, shares bigint, views bigint, raw_json jsonb)
ON CONFLICT (platform, external_id) DO UPDATE SET
    url = EXCLUDED.url, text = EXCLUDED.text, hashtags = EXCLUDED.hashtags,
    mentions = EXCLUDED.mentions, published_at = EXCLUDED.published_at,
    likes = EXCLUDED.likes, comments = EXCLUDED.comments, shares = EXCLUDED.shares,
    views = EXCLUDED.views, raw_json = EXCLUDED.raw_json, collected_at = now()
RETURNING id, influencer_id, (xmax = 0) AS inserted
)
SELECT * FROM upserted
"""
# (A CTE, because Tortoise returns no rows for statements that start with INSERT.)

_RECENT_BY_ACCOUNT = """
SELECT * FROM (
    SELECT p.*, row_number() OVER (PARTITION BY account_id ORDER BY published_at DESC, id DESC)
        AS rn
    FROM post p WHERE account_id = ANY($1::bigint[])
) ranked WHERE rn <= $2 ORDER BY account_id, rn
"""

_COMMENT_COUNTS = """
SELECT post_id, count(*) AS n FROM comment WHERE post_id = ANY($1::bigint[]) GROUP BY post_id
"""


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    created_posts: list[tuple[int, int]] = field(default_factory=list)  # (post id, influencer id)


@dataclass(frozen=True)
class PostFilter:
    influencer_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    hashtag: str | None = None


class PostService:
    async def by_ids(self, ids: Sequence[int]) -> dict[int, Post]:
        return {p.id: p for p in await Post.filter(id__in=list(ids))}

    async def list(
        self, *, filters: PostFilter, first: int | None = None, after: str | None = None
    ) -> Page[Post]:
        limit = check_first(first)
        query = Post.all()
        if filters.influencer_id is not None:
            query = query.filter(influencer_id=filters.influencer_id)
        if filters.since is not None:
            query = query.filter(published_at__gte=filters.since)
        if filters.until is not None:
            query = query.filter(published_at__lt=filters.until)
        if filters.hashtag:
            query = query.filter(hashtags__contains=[filters.hashtag.lstrip("#").lower()])
        if after:
            value, ident = decode_cursor(after, "published")
            ts = datetime.fromisoformat(str(value))
            query = query.filter(published_at__lte=ts).exclude(published_at=ts, id__gte=ident)
        rows = await query.order_by("-published_at", "-id").limit(limit + 1)
        items = rows[:limit]
        cursors = [encode_cursor("published", p.published_at.isoformat(), p.id) for p in items]
        return Page(items, cursors, has_next_page=len(rows) > limit, has_previous_page=bool(after))

    async def recent_by_account(
        self, account_ids: Sequence[int], limit: int
    ) -> dict[int, list[Post]]:
        """The `limit` newest posts of each account, in one statement."""
        out: dict[int, list[Post]] = {a: [] for a in account_ids}
        conn = current_tx().conn
        _, rows = await conn.execute_query(_RECENT_BY_ACCOUNT, [list(account_ids), limit])
        for row in rows:
            data = dict(row)
            data.pop("rn", None)
            post = Post._init_from_db(**data)
            out[data["account_id"]].append(post)
        return out

    async def comments_by_post(
        self, post_ids: Sequence[int], limit: int
    ) -> dict[int, list[Comment]]:
        out: dict[int, list[Comment]] = {p: [] for p in post_ids}
        rows = await Comment.filter(post_id__in=list(post_ids)).order_by("post_id", "-likes", "id")
        for c in rows:
            bucket = out[c.post_id]  # type: ignore[attr-defined]
            if len(bucket) < limit:
                bucket.append(c)
        return out

    async def comment_counts(self, post_ids: Sequence[int]) -> dict[int, int]:
        """How many comments are stored for each post (0 for none), in one GROUP BY."""
        out = dict.fromkeys(post_ids, 0)
        # `= ANY($1)`: one prepared statement for every batch size (an IN list is one per size).
        _, rows = await current_tx().conn.execute_query(_COMMENT_COUNTS, [list(post_ids)])
        for row in rows:
            out[row["post_id"]] = row["n"]
        return out

    async def upsert_rows(self, rows: Sequence[ImportRow]) -> UpsertResult:
        """Insert or update posts by (platform, external_id); rows of unknown accounts are
        skipped with an error. Idempotent: the same rows again create nothing."""
        result = UpsertResult()
        if not rows:
            return result
        keys = {(r.platform, r.handle) for r in rows}
        accounts = await InfluencerAccount.filter(
            platform__in=list({k[0] for k in keys}), handle__in=list({k[1] for k in keys})
        ).values_list("platform", "handle", "id", "influencer_id")
        by_key = {(p, h): (i, inf) for p, h, i, inf in accounts}
        latest: dict[tuple[str, str], dict[str, object]] = {}
        for r in rows:
            acc = by_key.get((r.platform, r.handle))
            if acc is None:
                result.skipped += 1
                result.errors.append((r.index, f"no tracked {r.platform} account @{r.handle}"))
                continue
            key = (r.platform, r.external_id)
            if key in latest:  # the same post twice in one batch: the later row wins
                result.updated += 1
            latest[key] = {
                "account_id": acc[0],
                "influencer_id": acc[1],
                "platform": r.platform,
                "external_id": r.external_id,
                "url": r.url,
                "text": r.text,
                "hashtags": list(r.hashtags),
                "mentions": list(r.mentions),
                "published_at": r.published_at.isoformat(),
                "likes": r.likes,
                "comments": r.comments,
                "shares": r.shares,
                "views": r.views,
                "raw_json": r.raw,
            }
        if not latest:
            return result
        payload = json.dumps(list(latest.values()), default=str)
        _, returned = await current_tx().conn.execute_query(_UPSERT, [payload])
        for row in returned:
            if row["inserted"]:
                result.created += 1
                result.created_posts.append((row["id"], row["influencer_id"]))
            else:
                result.updated += 1
        return result


posts = PostService()
