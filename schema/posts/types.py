"""GraphQL types of the posts context."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.posts import models
from schema.influencers.types import Influencer, InfluencerAccount, Platform


@strawberry.type
class Comment(relay.Node):
    id: relay.NodeID[int]
    author: str
    text: str
    likes: int
    published_at: datetime | None
    language: str | None = strawberry.field(
        description="Detected language, null until the analysis pass ran (as on Post)."
    )
    sentiment: str | None = strawberry.field(
        description="negative, neutral or positive; null until analysed or for a language "
        "without a model."
    )
    sentiment_score: float | None
    sentiment_confidence: float | None
    analyzed_at: datetime | None

    @classmethod
    def from_model(cls, m: models.Comment) -> Comment:
        return cls(
            id=m.id,
            author=m.author,
            text=m.text,
            likes=m.likes,
            published_at=m.published_at,
            language=m.language,
            sentiment=m.sentiment,
            sentiment_score=m.sentiment_score,
            sentiment_confidence=m.sentiment_confidence,
            analyzed_at=m.analyzed_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Comment | None]:
        return [None for _ in node_ids]  # comments are reached through their post


@strawberry.type
class Post(relay.Node):
    id: relay.NodeID[int]
    account_id: strawberry.Private[int]
    influencer_id: strawberry.Private[int]
    platform: Platform
    external_id: str
    url: str
    text: str
    hashtags: list[str]
    mentions: list[str]
    published_at: datetime
    likes: int
    comments: int = strawberry.field(description="Comment count reported by the platform.")
    shares: int
    views: int
    collected_at: datetime
    language: str | None = strawberry.field(
        description="Detected language (ISO 639-1, und), null until the analysis pass ran."
    )
    sentiment: str | None = strawberry.field(
        description="negative, neutral or positive; null until analysed or for a language "
        "without a model (docs/analytics.md)."
    )
    sentiment_score: float | None = strawberry.field(
        description="P(positive) - P(negative), in [-1, 1]."
    )
    sentiment_confidence: float | None
    keywords: list[str] | None = strawberry.field(
        description="The post's top TF-IDF keywords (stop words of en/pt removed)."
    )
    analyzed_at: datetime | None

    @classmethod
    def from_model(cls, m: models.Post) -> Post:
        return cls(
            id=m.id,
            account_id=m.account_id,  # type: ignore[attr-defined]
            influencer_id=m.influencer_id,
            platform=Platform(m.platform),
            external_id=m.external_id,
            url=m.url,
            text=m.text,
            hashtags=list(m.hashtags or []),
            mentions=list(m.mentions or []),
            published_at=m.published_at,
            likes=m.likes,
            comments=m.comments,
            shares=m.shares,
            views=m.views,
            collected_at=m.collected_at,
            language=m.language,
            sentiment=m.sentiment,
            sentiment_score=m.sentiment_score,
            sentiment_confidence=m.sentiment_confidence,
            keywords=list(m.keywords) if m.keywords is not None else None,
            analyzed_at=m.analyzed_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Post | None]:
        rows = await info.context.loaders.post_by_id.load_many([int(i) for i in node_ids])
        return [cls.from_model(r) if r else None for r in rows]

    @strawberry.field
    async def account(self, info: Info) -> InfluencerAccount:
        row = await info.context.loaders.account_by_id.load(self.account_id)
        return InfluencerAccount.from_model(row)

    @strawberry.field
    async def influencer(self, info: Info) -> Influencer:
        row = await info.context.loaders.influencer_by_id.load(self.influencer_id)
        return Influencer.from_model(row)

    @strawberry.field(description="How many of the post's comments are stored here.")
    async def comments_count(self, info: Info) -> int:
        count: int = await info.context.loaders.comment_count_by_post.load(self.id)
        return count

    @strawberry.field(description="Stored comments, most liked first (at most 100).")
    async def top_comments(self, info: Info, limit: int = 10) -> list[Comment]:
        limit = max(0, min(limit, 100))
        rows = await info.context.loaders.comments_by_post.load((self.id, limit))
        return [Comment.from_model(c) for c in rows]


@strawberry.type
class PostConnection(relay.Connection[Post]):
    """A page of posts, newest first."""
