"""GraphQL types of the influencers context."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.influencers import models
from schema.permissions import requires

if TYPE_CHECKING:
    from schema.analytics.types import Authenticity, InfluencerMetrics, ScorePoint
    from schema.collection.types import FollowerSnapshot
    from schema.posts.types import Post


@strawberry.enum
class Platform(Enum):
    INSTAGRAM = "instagram"
    YOUTUBE = "youtube"
    TIKTOK = "tiktok"
    X = "x"


@strawberry.type
class InfluencerAccount(relay.Node):
    id: relay.NodeID[int]
    influencer_id: strawberry.Private[int]
    platform: Platform
    handle: str
    external_id: str | None
    followers: int
    verified: bool
    profile_url: str | None
    status: str = strawberry.field(
        description="active, or why the platform would not serve it: private, removed."
    )
    status_reason: str | None
    collected_until: datetime | None = strawberry.field(
        description="The newest post collection has seen: the next run starts there."
    )

    @classmethod
    def from_model(cls, m: models.InfluencerAccount) -> InfluencerAccount:
        return cls(
            id=m.id,
            influencer_id=m.influencer_id,  # type: ignore[attr-defined]
            platform=Platform(m.platform),
            handle=m.handle,
            external_id=m.external_id,
            followers=m.followers,
            verified=m.verified,
            profile_url=m.profile_url,
            status=m.status,
            status_reason=m.status_reason,
            collected_until=m.collected_until,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[InfluencerAccount | None]:
        rows = await info.context.loaders.account_by_id.load_many([int(i) for i in node_ids])
        return [cls.from_model(r) if r else None for r in rows]

    @strawberry.field
    async def influencer(self, info: Info) -> Influencer:
        row = await info.context.loaders.influencer_by_id.load(self.influencer_id)
        return Influencer.from_model(row)

    @strawberry.field(description="Follower counts as collection runs saw them, oldest first.")
    async def follower_history(
        self, info: Info, since: datetime | None = None
    ) -> list[Annotated[FollowerSnapshot, strawberry.lazy("schema.collection.types")]]:
        from schema.collection.types import FollowerSnapshot

        rows = await info.context.loaders.follower_history.load((self.id, since))
        return [FollowerSnapshot(followers=r.followers, taken_at=r.taken_at) for r in rows]

    @strawberry.field(description="The newest posts of this account (at most 50).")
    async def recent_posts(
        self, info: Info, limit: int = 10
    ) -> list[Annotated[Post, strawberry.lazy("schema.posts.types")]]:
        from schema.posts.types import Post

        limit = max(0, min(limit, 50))
        rows = await info.context.loaders.recent_posts_by_account.load((self.id, limit))
        return [Post.from_model(p) for p in rows]


@strawberry.type
class Influencer(relay.Node):
    id: relay.NodeID[int]
    display_name: str
    category: str | None
    country: str | None
    notes: str
    total_followers: int = strawberry.field(
        description="Sum of the followers of the influencer's accounts."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, m: models.Influencer) -> Influencer:
        return cls(
            id=m.id,
            display_name=m.display_name,
            category=m.category,
            country=m.country,
            notes=m.notes,
            total_followers=m.total_followers,
            created_at=m.created_at,
            updated_at=m.updated_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Influencer | None]:
        rows = await info.context.loaders.influencer_by_id.load_many([int(i) for i in node_ids])
        return [cls.from_model(r) if r else None for r in rows]

    @strawberry.field
    async def accounts(self, info: Info) -> list[InfluencerAccount]:
        rows = await info.context.loaders.accounts_by_influencer.load(self.id)
        return [InfluencerAccount.from_model(a) for a in rows]

    @strawberry.field(
        extensions=[requires("analytics:read")],
        description="The latest computed metrics and scores, with their inputs; null until "
        "the analytics worker has computed them.",
    )
    async def metrics(
        self, info: Info
    ) -> Annotated[InfluencerMetrics, strawberry.lazy("schema.analytics.types")] | None:
        from schema.analytics.types import InfluencerMetrics

        row = await info.context.loaders.latest_score.load(self.id)
        return InfluencerMetrics.from_model(row) if row else None

    @strawberry.field(
        extensions=[requires("analytics:read")],
        description="Every computation in [since, until), oldest first (at most 1,000).",
    )
    async def score_history(
        self, info: Info, since: datetime | None = None, until: datetime | None = None
    ) -> list[Annotated[ScorePoint, strawberry.lazy("schema.analytics.types")]]:
        from schema.analytics.types import ScorePoint

        rows = await info.context.loaders.score_history.load((self.id, (since, until)))
        return [ScorePoint.from_model(r) for r in rows]

    @strawberry.field(
        extensions=[requires("analytics:read")],
        description="The latest authenticity score with the reasons that lowered it.",
    )
    async def authenticity(
        self, info: Info
    ) -> Annotated[Authenticity, strawberry.lazy("schema.analytics.types")] | None:
        from schema.analytics.types import Authenticity

        row = await info.context.loaders.latest_score.load(self.id)
        return Authenticity.from_model(row) if row else None


@strawberry.type
class InfluencerConnection(relay.Connection[Influencer]):
    """A page of influencers (built by schema.relay.build_connection)."""


@strawberry.enum
class InfluencerSort(Enum):
    CREATED_DESC = "CREATED_DESC"
    CREATED_ASC = "CREATED_ASC"
    FOLLOWERS_DESC = "FOLLOWERS_DESC"
    FOLLOWERS_ASC = "FOLLOWERS_ASC"
    NAME_ASC = "NAME_ASC"
    NAME_DESC = "NAME_DESC"


@strawberry.input
class InfluencerFilter:
    platform: Platform | None = None
    min_followers: int | None = None
    max_followers: int | None = None
    verified: bool | None = None
    category: str | None = None
    country: str | None = None
    search: str | None = strawberry.field(
        default=None, description="Matches the display name or an account handle."
    )


@strawberry.input
class AccountInput:
    platform: Platform
    handle: str
    external_id: str | None = None
    followers: int = 0
    verified: bool = False
    profile_url: str | None = None


@strawberry.input
class AddInfluencerInput:
    display_name: str
    category: str | None = None
    country: str | None = None
    notes: str = ""
    accounts: list[AccountInput] = strawberry.field(default_factory=list)


@strawberry.input
class UpdateInfluencerInput:
    id: relay.GlobalID
    display_name: str | None = None
    category: str | None = None
    country: str | None = None
    notes: str | None = None
