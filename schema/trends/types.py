"""GraphQL types of the trends context."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.trends import models
from domain.trends.rules import ALL_PLATFORMS, HOUR
from schema.influencers.types import Influencer, Platform

ANALYTICS_READ = "analytics:read"


@strawberry.enum
class TrendKind(Enum):
    HASHTAG = "hashtag"
    KEYWORD = "keyword"
    CLUSTER = "cluster"


@strawberry.enum(description="Status rules: docs/analytics.md, Trends.")
class TrendStatus(Enum):
    EMERGING = "emerging"
    RISING = "rising"
    PEAKING = "peaking"
    DECLINING = "declining"
    STABLE = "stable"


@strawberry.enum(description="Topics with a post within this time before now.")
class TrendRange(Enum):
    LAST_24_HOURS = "24h"
    LAST_7_DAYS = "7d"
    LAST_30_DAYS = "30d"

    @property
    def delta(self) -> timedelta:
        return {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}[
            self.value
        ]


@strawberry.enum
class TrendGranularity(Enum):
    HOUR = "hour"
    DAY = "day"


@strawberry.enum
class TrendHorizon(Enum):
    HOURS_24 = "24h"
    DAYS_7 = "7d"


@strawberry.type
class TrendScoreComponent:
    name: str
    value: float = strawberry.field(description="0-100")
    weight: float
    contribution: float = strawberry.field(description="weight x value; they sum to the score")
    raw: float | None = strawberry.field(description="The input the value came from.")


@strawberry.type
class TrendSeriesPoint:
    t: datetime = strawberry.field(description="Start of the bucket (UTC).")
    count: int = strawberry.field(description="Posts of the topic in the bucket.")


@strawberry.type
class TrendForecastPoint:
    t: datetime = strawberry.field(description="Start of the forecast bucket (UTC).")
    value: float
    low: float = strawberry.field(description="Lower bound of the prediction interval.")
    high: float = strawberry.field(description="Upper bound of the prediction interval.")


@strawberry.type
class TrendForecast:
    horizon: TrendHorizon
    step_hours: int = strawberry.field(description="1: hourly points; 24: daily points.")
    model: str = strawberry.field(
        description="ets-none, ets-add, ets-add-damped (statsmodels ETS, lowest AICc) or flat."
    )
    level: float = strawberry.field(description="Coverage of the interval, e.g. 0.9.")
    points: list[TrendForecastPoint]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrendForecast:
        return cls(
            horizon=TrendHorizon(data["horizon"]),
            step_hours=int(data["step_hours"]),
            model=str(data["model"]),
            level=float(data["level"]),
            points=[
                TrendForecastPoint(
                    t=datetime.fromisoformat(p["t"]),
                    value=float(p["value"]),
                    low=float(p["low"]),
                    high=float(p["high"]),
                )
                for p in data["points"]
            ],
        )


@strawberry.type
class TrendInfluencer:
    influencer_id: strawberry.Private[int]
    rank: int
    posts: int = strawberry.field(description="The influencer's posts on the topic (24 h).")
    engagement: float = strawberry.field(description="Their likes + comments + shares.")
    contribution: float = strawberry.field(
        description="(share of the topic's posts + share of its engagement) / 2"
    )

    @strawberry.field
    async def influencer(self, info: Info) -> Influencer | None:
        row = await info.context.loaders.influencer_by_id.load(self.influencer_id)
        return Influencer.from_model(row) if row else None


@strawberry.type(description="A topic trending in the tenant's posts (docs/analytics.md).")
class Trend(relay.Node):
    id: relay.NodeID[int]
    kind: TrendKind
    key: str = strawberry.field(description="Hashtag, term, or a cluster's terms joined by +.")
    label: str
    platform: Platform | None = strawberry.field(description="null: over every platform.")
    status: TrendStatus
    score: float = strawberry.field(description="0-100; see scoreBreakdown.")
    score_breakdown: list[TrendScoreComponent]
    z: float = strawberry.field(description="Latest 6 h window against the topic's baseline.")
    velocity: float = strawberry.field(description="Posts per 6 h window, latest - previous.")
    acceleration: float
    baseline_median: float = strawberry.field(description="Median posts per 6 h window.")
    volume: int = strawberry.field(description="Posts in the last 24 h.")
    engagement: float = strawberry.field(description="Their likes + comments + shares.")
    sentiment: float | None = strawberry.field(
        description="Mean sentiment score of those posts; null when none is analysed."
    )
    sentiment_posts: int
    first_seen: datetime
    last_seen: datetime = strawberry.field(description="The topic's newest post.")
    last_updated: datetime = strawberry.field(
        description="When the trend appeared or its status/score last changed materially."
    )
    computed_at: datetime
    forecast_json: strawberry.Private[dict[str, Any] | None]

    @classmethod
    def from_model(cls, m: models.Trend) -> Trend:
        return cls(
            id=m.id,
            kind=TrendKind(m.kind),
            key=m.key,
            label=m.label,
            platform=None if m.platform == ALL_PLATFORMS else Platform(m.platform),
            status=TrendStatus(m.status),
            score=m.score,
            score_breakdown=[
                TrendScoreComponent(
                    name=c["name"],
                    value=c["value"],
                    weight=c["weight"],
                    contribution=c["contribution"],
                    raw=c.get("raw"),
                )
                for c in m.score_breakdown or []
            ],
            z=m.z,
            velocity=m.velocity,
            acceleration=m.acceleration,
            baseline_median=m.baseline_median,
            volume=m.volume,
            engagement=float(m.engagement),
            sentiment=m.sentiment,
            sentiment_posts=m.sentiment_posts,
            first_seen=m.first_seen,
            last_seen=m.last_seen,
            last_updated=m.last_updated,
            computed_at=m.computed_at,
            forecast_json=m.forecast,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Trend | None]:
        # analytics:read is checked before this runs (schema.permissions.TYPE_SCOPES)
        ids = [int(i) for i in node_ids]
        rows = await info.context.loaders.trend_by_id.load_many(ids)
        return [cls.from_model(r) if r else None for r in rows]

    @strawberry.field(
        description="Posts per hour or per UTC day, oldest first, zeros included, from `since` "
        "(default: 7 days before the last detection run) to the last run's hour."
    )
    async def series(
        self,
        info: Info,
        granularity: TrendGranularity = TrendGranularity.HOUR,
        since: datetime | None = None,
    ) -> list[TrendSeriesPoint]:
        end = self.computed_at.replace(minute=0, second=0, microsecond=0) + HOUR
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        start = since if since is not None else end - timedelta(days=7)
        start = max(start, end - timedelta(days=30)).replace(minute=0, second=0, microsecond=0)
        rows = await info.context.loaders.trend_points.load((self.id, start))
        counts = {p.bucket_start: p.count for p in rows}
        hours = []
        t = start
        while t < end:
            hours.append(TrendSeriesPoint(t=t, count=counts.get(t, 0)))
            t += HOUR
        if granularity == TrendGranularity.HOUR:
            return hours
        days: dict[datetime, int] = {}
        for point in hours:
            day = point.t.replace(hour=0)
            days[day] = days.get(day, 0) + point.count
        return [TrendSeriesPoint(t=d, count=c) for d, c in days.items()]

    @strawberry.field(description="The forecast for one horizon; null when none was made.")
    def forecast(self, horizon: TrendHorizon = TrendHorizon.HOURS_24) -> TrendForecast | None:
        data = (self.forecast_json or {}).get(horizon.value)
        return TrendForecast.from_json(data) if data else None

    @strawberry.field(description="Every forecast made (24 h hourly, 7 d daily).")
    def forecasts(self) -> list[TrendForecast]:
        return [TrendForecast.from_json(d) for d in (self.forecast_json or {}).values()]

    @strawberry.field(description="The influencers driving the trend, most contributing first.")
    async def influencers(self, info: Info, first: int = 10) -> list[TrendInfluencer]:
        rows = await info.context.loaders.trend_influencers.load(self.id)
        return [
            TrendInfluencer(
                influencer_id=r.influencer_id,
                rank=r.rank,
                posts=r.posts,
                engagement=float(r.engagement),
                contribution=r.contribution,
            )
            for r in rows[: max(0, min(first, 50))]
        ]


@strawberry.type
class TrendConnection(relay.Connection[Trend]):
    """A page of trends, highest score first."""
