"""Trend I/O: reading posts for detection, writing its results in bulk, serving trends.

Runs inside the caller's tenant transaction; never commits. The detection itself is pure
(domain/trends/rules.py); `jobs/actors.py` `analytics.detect_trends` drives the three steps
(load posts, detect outside any transaction, save).
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from domain import events
from domain.errors import FieldError, ValidationFailed
from domain.pagination import Page, check_first, decode_cursor, encode_cursor
from domain.posts.models import Post
from domain.trends.forecast import Forecast
from domain.trends.models import TREND_STATUSES, Trend, TrendInfluencer, TrendPoint
from domain.trends.rules import ALL_PLATFORMS, HOUR, TrendConfig, TrendPost, TrendResult
from tenants import outbox
from tenants.tx import current_tx

MATERIAL_SCORE_CHANGE = 5.0  # score points; a status change or a new trend always counts
POINT_RETENTION = timedelta(days=30)

_LOAD_POSTS = """
SELECT id, influencer_id, platform, published_at, text, hashtags, keywords,
       likes + comments + shares AS engagement, sentiment_score
FROM post WHERE published_at >= $1 AND published_at < $2
"""

_TREND_COLUMNS = (
    "kind",
    "key",
    "label",
    "platform",
    "status",
    "score",
    "score_breakdown",
    "z",
    "velocity",
    "acceleration",
    "baseline_median",
    "baseline_mad",
    "volume",
    "engagement",
    "sentiment",
    "sentiment_posts",
    "forecast",
    "post_ids",
    "first_seen",
    "last_seen",
    "last_updated",
    "computed_at",
)
_CREATE_TREND_STAGE = """
CREATE TEMP TABLE _trend_stage (
    kind text, key text, label text, platform text, status text, score double precision,
    score_breakdown jsonb, z double precision, velocity double precision,
    acceleration double precision, baseline_median double precision,
    baseline_mad double precision, volume integer, engagement bigint,
    sentiment double precision, sentiment_posts integer, forecast jsonb, post_ids bigint[],
    first_seen timestamptz, last_seen timestamptz, last_updated timestamptz,
    computed_at timestamptz
) ON COMMIT DROP
"""
_UPSERT_TRENDS = f"""
INSERT INTO trend ({", ".join(_TREND_COLUMNS)}, created_at)
SELECT {", ".join(_TREND_COLUMNS)}, now() FROM _trend_stage
ON CONFLICT (kind, key, platform) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _TREND_COLUMNS if c != "first_seen")},
    first_seen = LEAST(trend.first_seen, EXCLUDED.first_seen)
RETURNING id, kind, key, platform
"""
_INFLUENCER_COLUMNS = ("trend_id", "influencer_id", "rank", "posts", "engagement", "contribution")
# Trends this run did not see any more (fewer posts than a topic needs in the lookback).
_FADE_UNSEEN = """
UPDATE trend SET status = 'stable', score = 0, z = 0, velocity = 0, acceleration = 0,
    volume = 0, engagement = 0, forecast = NULL, computed_at = $1,
    last_updated = CASE WHEN status <> 'stable' THEN $1 ELSE last_updated END
WHERE computed_at < $1
RETURNING id, kind, key, platform, status, score
"""


@dataclass(frozen=True)
class TrendChange:
    """A trend written by a detection run that subscribers hear about (`trend_updated`)."""

    id: int
    kind: str
    key: str
    platform: str
    status: str
    score: float
    created: bool
    previous_status: str | None


@dataclass(frozen=True)
class TrendFilter:
    status: str | None = None
    platform: str | None = None  # a platform or "all"; None: any
    since: datetime | None = None  # topics with a post at or after this time


@dataclass(frozen=True)
class TrendPostsFilter:
    """Which posts make a trend's topic: what `posts_of` queries (for sentiment(trendId))."""

    trend_id: int
    kind: str
    key: str
    platform: str | None  # None: every platform
    post_ids: tuple[int, ...] | None  # cluster members; None for hashtags and keywords


def _forecast_json(forecasts: Sequence[Forecast]) -> dict[str, Any] | None:
    if not forecasts:
        return None
    return {
        f.horizon: {
            "horizon": f.horizon,
            "step_hours": f.step_hours,
            "model": f.model,
            "level": f.level,
            "points": [
                {"t": p.t.isoformat(), "value": p.value, "low": p.low, "high": p.high}
                for p in f.points
            ],
        }
        for f in forecasts
    }


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


@dataclass(frozen=True)
class _Previous:
    status: str
    score: float
    last_updated: datetime


def _key(r: TrendResult) -> tuple[str, str, str]:
    return (r.kind, r.key, r.platform)


def _material(before: _Previous | None, status: str, score: float) -> bool:
    """A new non-stable trend, a status change, or a score move of MATERIAL_SCORE_CHANGE."""
    if before is None:
        return status != "stable"
    return before.status != status or abs(score - before.score) >= MATERIAL_SCORE_CHANGE


class TrendService:
    # -- detection I/O --------------------------------------------------------------------

    async def posts_for_detection(self, now: datetime, config: TrendConfig) -> list[TrendPost]:
        """The posts of the lookback window ending with the current hour."""
        end = now.replace(minute=0, second=0, microsecond=0) + HOUR
        start = end - HOUR * config.lookback_hours
        _, rows = await current_tx().conn.execute_query(_LOAD_POSTS, [start, end])
        return [
            TrendPost(
                id=r["id"],
                influencer_id=r["influencer_id"],
                platform=r["platform"],
                published_at=r["published_at"],
                text=r["text"] or "",
                hashtags=tuple(r["hashtags"] or ()),
                keywords=tuple(r["keywords"]) if r["keywords"] is not None else None,
                engagement=int(r["engagement"] or 0),
                sentiment_score=r["sentiment_score"],
            )
            for r in rows
        ]

    async def tracked_keys(self) -> set[tuple[str, str, str]]:
        """(kind, key, platform) of every stored trend: detection reports these even when
        they are stable again, so that their rows follow."""
        rows = await Trend.all().values_list("kind", "key", "platform")
        return {(str(k), str(key), str(p)) for k, key, p in rows}  # type: ignore[misc]

    async def save(self, results: Sequence[TrendResult], now: datetime) -> list[TrendChange]:
        """Upsert the results by (kind, key, platform), replace their recent points and their
        influencers, fade the trends not seen any more (and delete stable ones without a post
        in 30 days), then emit `trend_updated` after commit for every material change. Stable
        topics are stored only when they were trends before. Idempotent: writing the same
        results again changes nothing and emits nothing."""
        existing: dict[tuple[str, str, str], _Previous] = {
            (row["kind"], row["key"], row["platform"]): _Previous(
                row["status"], row["score"], row["last_updated"]
            )
            for row in await Trend.all().values(
                "kind", "key", "platform", "status", "score", "last_updated"
            )
        }
        chosen = [r for r in results if r.status != "stable" or _key(r) in existing]
        changes: list[TrendChange] = []
        async with current_tx().raw_connection() as conn:
            if chosen:
                ids = await self._upsert_trends(conn, chosen, existing, now)
                await self._replace_details(conn, chosen, ids)
                for r in chosen:
                    before = existing.get(_key(r))
                    if _material(before, r.status, r.score):
                        changes.append(
                            TrendChange(
                                id=ids[_key(r)],
                                kind=r.kind,
                                key=r.key,
                                platform=r.platform,
                                status=r.status,
                                score=r.score,
                                created=before is None,
                                previous_status=before.status if before else None,
                            )
                        )
            for row in await conn.fetch(_FADE_UNSEEN, now):
                before = existing.get((row["kind"], row["key"], row["platform"]))
                if before is not None and before.status != "stable":
                    changes.append(
                        TrendChange(
                            id=row["id"],
                            kind=row["kind"],
                            key=row["key"],
                            platform=row["platform"],
                            status="stable",
                            score=0.0,
                            created=False,
                            previous_status=before.status,
                        )
                    )
            await conn.execute(
                "DELETE FROM trend_point WHERE bucket_start < $1", now - POINT_RETENTION
            )
            await conn.execute(  # stable trends with nothing in the retention window
                "DELETE FROM trend WHERE status = 'stable' AND last_seen < $1",
                now - POINT_RETENTION,
            )
        for change in changes:
            outbox.publish(
                events.TREND_UPDATED,
                {
                    "id": change.id,
                    "kind": change.kind,
                    "key": change.key,
                    "platform": change.platform,
                    "status": change.status,
                    "score": round(change.score, 3),
                    "created": change.created,
                    "previous_status": change.previous_status,
                },
            )
        return changes

    async def _upsert_trends(
        self,
        conn: Any,
        chosen: Sequence[TrendResult],
        existing: dict[tuple[str, str, str], _Previous],
        now: datetime,
    ) -> dict[tuple[str, str, str], int]:
        """COPY into a staging table, one INSERT .. ON CONFLICT; the rows' ids by key."""
        records = []
        for r in chosen:
            before = existing.get(_key(r))
            if before is None or _material(before, r.status, r.score):
                last_updated = now
            else:
                last_updated = before.last_updated  # the figures moved too little to count
            records.append(
                (
                    r.kind,
                    r.key,
                    r.label[:200],
                    r.platform,
                    r.status,
                    r.score,
                    _json([asdict(c) for c in r.breakdown]),
                    _finite(r.stats.z),
                    r.stats.velocity,
                    r.stats.acceleration,
                    r.stats.baseline_median,
                    r.stats.baseline_mad,
                    r.volume,
                    r.engagement,
                    r.sentiment,
                    r.sentiment_posts,
                    _json(_forecast_json(r.forecasts)),
                    list(r.post_ids) if r.post_ids is not None else None,
                    r.first_seen,
                    r.last_seen,
                    last_updated,
                    now,
                )
            )
        await conn.execute(_CREATE_TREND_STAGE)
        await conn.copy_records_to_table("_trend_stage", records=records, columns=_TREND_COLUMNS)
        rows = await conn.fetch(_UPSERT_TRENDS)
        await conn.execute("DROP TABLE _trend_stage")
        return {(row["kind"], row["key"], row["platform"]): row["id"] for row in rows}

    async def _replace_details(
        self,
        conn: Any,
        chosen: Sequence[TrendResult],
        ids: dict[tuple[str, str, str], int],
    ) -> None:
        """The trends' hourly points from their series' start on, and their influencers."""
        trend_ids = [ids[_key(r)] for r in chosen]
        points = [
            (ids[_key(r)], r.series_start + HOUR * i, count)
            for r in chosen
            for i, count in enumerate(r.series)
            if count > 0
        ]
        drivers = [
            (ids[_key(r)], c.influencer_id, rank, c.posts, c.engagement, c.contribution)
            for r in chosen
            for rank, c in enumerate(r.influencers, start=1)
        ]
        await conn.execute(
            "DELETE FROM trend_point WHERE trend_id = ANY($1::bigint[]) AND bucket_start >= $2",
            trend_ids,
            min(r.series_start for r in chosen),
        )
        if points:
            await conn.copy_records_to_table(
                "trend_point", records=points, columns=("trend_id", "bucket_start", "count")
            )
        await conn.execute(
            "DELETE FROM trend_influencer WHERE trend_id = ANY($1::bigint[])", trend_ids
        )
        if drivers:
            await conn.copy_records_to_table(
                "trend_influencer", records=drivers, columns=_INFLUENCER_COLUMNS
            )

    # -- reading ---------------------------------------------------------------------------

    async def by_ids(self, ids: Sequence[int]) -> dict[int, Trend]:
        return {t.id: t for t in await Trend.filter(id__in=list(ids))}

    async def list(
        self, *, filters: TrendFilter, first: int | None = None, after: str | None = None
    ) -> Page[Trend]:
        """Trends, highest score first (ties: newest id first)."""
        limit = check_first(first)
        query = Trend.all()
        if filters.status is not None:
            if filters.status not in TREND_STATUSES:
                raise ValidationFailed(FieldError("status", "unknown trend status"))
            query = query.filter(status=filters.status)
        if filters.platform is not None:
            query = query.filter(platform=filters.platform)
        if filters.since is not None:
            query = query.filter(last_seen__gte=filters.since)
        if after:
            value, ident = decode_cursor(after, "score")
            if not isinstance(value, int | float):
                raise ValidationFailed(FieldError("after", "invalid cursor for this list"))
            score = float(value)
            query = query.filter(Q(score__lt=score) | Q(score=score, id__lt=ident))
        rows = await query.order_by("-score", "-id").limit(limit + 1)
        items = rows[:limit]
        cursors = [encode_cursor("score", t.score, t.id) for t in items]
        return Page(items, cursors, has_next_page=len(rows) > limit, has_previous_page=bool(after))

    async def points_by_trend(
        self, trend_ids: Sequence[int], since: datetime | None
    ) -> dict[int, builtins.list[TrendPoint]]:
        out: dict[int, builtins.list[TrendPoint]] = {t: [] for t in trend_ids}
        query = TrendPoint.filter(trend_id__in=list(trend_ids))
        if since is not None:
            query = query.filter(bucket_start__gte=since)
        for p in await query.order_by("trend_id", "bucket_start"):
            out[p.trend_id].append(p)  # type: ignore[attr-defined]
        return out

    async def influencers_by_trend(
        self, trend_ids: Sequence[int]
    ) -> dict[int, builtins.list[TrendInfluencer]]:
        out: dict[int, builtins.list[TrendInfluencer]] = {t: [] for t in trend_ids}
        rows = await TrendInfluencer.filter(trend_id__in=list(trend_ids)).order_by(
            "trend_id", "rank"
        )
        for row in rows:
            out[row.trend_id].append(row)  # type: ignore[attr-defined]
        return out

    # -- a trend's posts (sentiment(trendId) and the like) ------------------------------------

    async def posts_filter(self, trend_id: int) -> TrendPostsFilter | None:
        trend = await Trend.get_or_none(id=trend_id)
        if trend is None:
            return None
        return TrendPostsFilter(
            trend_id=trend.id,
            kind=trend.kind,
            key=trend.key,
            platform=None if trend.platform == ALL_PLATFORMS else trend.platform,
            post_ids=tuple(trend.post_ids) if trend.post_ids is not None else None,
        )

    def posts_query(self, f: TrendPostsFilter) -> QuerySet[Post]:
        """The posts of a trend's topic: hashtag -> posts carrying it; keyword -> posts whose
        stored keywords hold it, or (not analysed yet) whose text contains it; cluster -> its
        members at the last detection run. Narrow it further with `.filter(...)`."""
        query = Post.all()
        if f.kind == "hashtag":
            query = query.filter(hashtags__contains=[f.key])
        elif f.kind == "keyword":
            query = query.filter(
                Q(keywords__contains=[f.key]) | Q(keywords__isnull=True, text__icontains=f.key)
            )
        else:
            query = query.filter(id__in=list(f.post_ids or ()))
        if f.platform is not None:
            query = query.filter(platform=f.platform)
        return query

    async def post_ids(
        self, trend_id: int, since: datetime | None = None, until: datetime | None = None
    ) -> builtins.list[int] | None:
        """Ids of the trend's posts published in [since, until); None: no such trend."""
        f = await self.posts_filter(trend_id)
        if f is None:
            return None
        query = self.posts_query(f)
        if since is not None:
            query = query.filter(published_at__gte=since)
        if until is not None:
            query = query.filter(published_at__lt=until)
        ids = await query.order_by("id").values_list("id", flat=True)
        return [int(i) for i in ids]  # type: ignore[call-overload]


trends = TrendService()
