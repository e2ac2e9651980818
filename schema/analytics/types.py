"""GraphQL types of the analytics context: stored influencer figures and sentiment reports."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from domain.analytics import models
from domain.analytics import service as svc

if TYPE_CHECKING:
    from schema.influencers.types import Influencer


@strawberry.type(description="One weighted component of the influence score.")
class ScoreComponent:
    name: str = strawberry.field(
        description="reach | engagement | growth | sentiment | consistency"
    )
    value: float = strawberry.field(description="The component normalised to 0-100.")
    weight: float
    contribution: float = strawberry.field(
        description="weight * value; the contributions sum to the score."
    )
    raw: float | None = strawberry.field(description="The input the value was computed from.")

    @classmethod
    def from_json(cls, c: dict[str, Any]) -> ScoreComponent:
        return cls(
            name=c["name"],
            value=c["value"],
            weight=c["weight"],
            contribution=c["contribution"],
            raw=c.get("raw"),
        )


@strawberry.type(description="Followers gained over a window, from the follower snapshots.")
class FollowerGrowth:
    days: int
    start_at: datetime
    end_at: datetime
    start_followers: int
    end_followers: int
    absolute: int
    relative: float | None = strawberry.field(description="absolute / startFollowers")

    @classmethod
    def from_json(cls, g: dict[str, Any] | None) -> FollowerGrowth | None:
        if g is None:
            return None
        return cls(
            days=g["days"],
            start_at=datetime.fromisoformat(g["start_at"]),
            end_at=datetime.fromisoformat(g["end_at"]),
            start_followers=g["start_followers"],
            end_followers=g["end_followers"],
            absolute=g["absolute"],
            relative=g.get("relative"),
        )


@strawberry.type
class InfluencerMetrics:
    """An influencer's figures as one analytics computation stored them."""

    influencer_id: strawberry.Private[int]
    inputs_json: strawberry.Private[dict[str, Any]]
    computed_at: datetime
    formula: str = strawberry.field(description="Version of the influence score formula.")
    followers: int
    posts: int = strawberry.field(description="Recent posts the figures were computed from.")
    engagement_rate_by_followers: float | None
    engagement_rate_by_views: float | None
    mean_sentiment: float | None = strawberry.field(
        description="Mean sentiment score of the posts, -1 to 1."
    )
    influence_score: float = strawberry.field(description="0-100")
    authenticity_score: float = strawberry.field(description="0-100")
    breakdown: list[ScoreComponent]

    @strawberry.field(description="Follower growth over 7 days (null: too little history).")
    def growth_7d(self) -> FollowerGrowth | None:
        return FollowerGrowth.from_json(self.inputs_json.get("growth", {}).get("7"))

    @strawberry.field(description="Follower growth over 30 days (null: too little history).")
    def growth_30d(self) -> FollowerGrowth | None:
        return FollowerGrowth.from_json(self.inputs_json.get("growth", {}).get("30"))

    @strawberry.field(description="Follower growth over 90 days (null: too little history).")
    def growth_90d(self) -> FollowerGrowth | None:
        return FollowerGrowth.from_json(self.inputs_json.get("growth", {}).get("90"))

    @strawberry.field(description="What the figures were computed from.")
    def inputs(self) -> JSON:
        return cast(JSON, self.inputs_json)

    @strawberry.field
    async def influencer(
        self, info: Info
    ) -> Annotated[Influencer, strawberry.lazy("schema.influencers.types")] | None:
        from schema.influencers.types import Influencer

        row = await info.context.loaders.influencer_by_id.load(self.influencer_id)
        return Influencer.from_model(row) if row else None

    @classmethod
    def from_model(cls, m: models.InfluencerScore) -> InfluencerMetrics:
        return cls(
            influencer_id=m.influencer_id,
            inputs_json=m.inputs,
            computed_at=m.computed_at,
            formula=m.formula,
            followers=m.followers,
            posts=m.posts,
            engagement_rate_by_followers=m.engagement_rate_by_followers,
            engagement_rate_by_views=m.engagement_rate_by_views,
            mean_sentiment=m.mean_sentiment,
            influence_score=m.influence_score,
            authenticity_score=m.authenticity_score,
            breakdown=[ScoreComponent.from_json(c) for c in m.breakdown],
        )


@strawberry.type(description="One point of an influencer's score history (chartable).")
class ScorePoint:
    computed_at: datetime
    influence_score: float
    authenticity_score: float
    engagement_rate_by_followers: float | None
    followers: int
    breakdown: list[ScoreComponent]

    @classmethod
    def from_model(cls, m: models.InfluencerScore) -> ScorePoint:
        return cls(
            computed_at=m.computed_at,
            influence_score=m.influence_score,
            authenticity_score=m.authenticity_score,
            engagement_rate_by_followers=m.engagement_rate_by_followers,
            followers=m.followers,
            breakdown=[ScoreComponent.from_json(c) for c in m.breakdown],
        )


@strawberry.type
class AuthenticityReason:
    code: str = strawberry.field(
        description="follower_jump | engagement_off_baseline | engagement_off_peers | "
        "comment_duplication"
    )
    penalty: float
    detail: str


@strawberry.type(description="Authenticity score 0-100 and the signals that lowered it.")
class Authenticity:
    computed_at: datetime
    score: float
    reasons: list[AuthenticityReason] = strawberry.field(description="Largest penalty first.")
    size_band: str | None
    follower_jumps: int
    own_baseline_ratio: float | None
    peer_z: float | None
    duplication_ratio: float | None

    @classmethod
    def from_model(cls, m: models.InfluencerScore) -> Authenticity:
        a = m.authenticity
        return cls(
            computed_at=m.computed_at,
            score=m.authenticity_score,
            reasons=[
                AuthenticityReason(code=r["code"], penalty=r["penalty"], detail=r["detail"])
                for r in a.get("reasons", [])
            ],
            size_band=a.get("size_band"),
            follower_jumps=a.get("jumps", 0),
            own_baseline_ratio=a.get("own_baseline_ratio"),
            peer_z=a.get("peer_z"),
            duplication_ratio=a.get("duplication_ratio"),
        )


@strawberry.enum
class SentimentGranularity(Enum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@strawberry.type
class SentimentShares:
    positive: float
    neutral: float
    negative: float

    @classmethod
    def of(cls, positive: int, neutral: int, negative: int) -> SentimentShares:
        total = positive + neutral + negative
        if total == 0:
            return cls(positive=0.0, neutral=0.0, negative=0.0)
        return cls(positive=positive / total, neutral=neutral / total, negative=negative / total)


@strawberry.type
class SentimentBucket:
    start: datetime = strawberry.field(description="Start of the bucket (UTC).")
    posts: int
    positive: int
    neutral: int
    negative: int
    shares: SentimentShares
    mean_score: float | None


@strawberry.type
class KeywordSentiment:
    term: str
    mean_score: float = strawberry.field(
        description="Mean sentiment score of the posts the keyword was extracted from."
    )
    posts: int


@strawberry.type
class LanguageCount:
    language: str = strawberry.field(description="ISO 639-1 code, or und (undetermined).")
    posts: int
    share: float


@strawberry.type(description="Sentiment of the analysed posts in a scope and time range.")
class SentimentReport:
    since: datetime
    until: datetime
    granularity: SentimentGranularity
    posts: int = strawberry.field(description="Analysed posts with a sentiment.")
    positive: int
    neutral: int
    negative: int
    shares: SentimentShares
    mean_score: float | None
    timeline: list[SentimentBucket]
    top_positive_keywords: list[KeywordSentiment]
    top_negative_keywords: list[KeywordSentiment]
    languages: list[LanguageCount] = strawberry.field(
        description="Analysed posts per detected language, most first."
    )
    top_keywords: list[KeywordSentiment] = strawberry.field(
        description="The most frequent stored keywords (TF-IDF per post) in scope, most posts "
        "first (keywords of at least 3 posts)."
    )
    top_hashtags: list[KeywordSentiment] = strawberry.field(
        description="The most used hashtags in scope, most posts first (meanScore 0 when none "
        "of their posts has a sentiment)."
    )

    @classmethod
    def from_summary(
        cls, s: svc.SentimentSummary, scope: svc.PostScope, granularity: SentimentGranularity
    ) -> SentimentReport:
        analysed = sum(n for _, n in s.languages)
        return cls(
            since=scope.since,
            until=scope.until,
            granularity=granularity,
            posts=s.posts,
            positive=s.positive,
            neutral=s.neutral,
            negative=s.negative,
            shares=SentimentShares.of(s.positive, s.neutral, s.negative),
            mean_score=s.mean_score,
            timeline=[
                SentimentBucket(
                    start=b.start,
                    posts=b.positive + b.neutral + b.negative,
                    positive=b.positive,
                    neutral=b.neutral,
                    negative=b.negative,
                    shares=SentimentShares.of(b.positive, b.neutral, b.negative),
                    mean_score=b.mean_score,
                )
                for b in s.timeline
            ],
            top_positive_keywords=[
                KeywordSentiment(term=t.term, mean_score=t.mean_score, posts=t.posts)
                for t in s.top_positive
            ],
            top_negative_keywords=[
                KeywordSentiment(term=t.term, mean_score=t.mean_score, posts=t.posts)
                for t in s.top_negative
            ],
            languages=[
                LanguageCount(language=lang, posts=n, share=n / analysed if analysed else 0.0)
                for lang, n in s.languages
            ],
            top_keywords=[
                KeywordSentiment(term=t.term, mean_score=t.mean_score, posts=t.posts)
                for t in s.top_keywords
            ],
            top_hashtags=[
                KeywordSentiment(term=t.term, mean_score=t.mean_score, posts=t.posts)
                for t in s.top_hashtags
            ],
        )


@strawberry.type
class TenantTotals:
    influencers: int
    accounts: int
    posts: int
    comments: int
    computed_at: datetime = strawberry.field(description="When these figures were computed.")
