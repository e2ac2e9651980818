from __future__ import annotations

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.influencers import service as svc
from schema.influencers.types import (
    Influencer,
    InfluencerConnection,
    InfluencerFilter,
    InfluencerSort,
)
from schema.loading import tenant_scope
from schema.permissions import requires
from schema.relay import build_connection, decode_id


@strawberry.type
class InfluencerQueries:
    @strawberry.field(extensions=[requires("influencers:read")])
    async def influencer(self, info: Info, id: relay.GlobalID) -> Influencer | None:
        row = await info.context.loaders.influencer_by_id.load(decode_id(id, "Influencer"))
        return Influencer.from_model(row) if row else None

    @strawberry.field(
        extensions=[requires("influencers:read")],
        description="Influencers, paginated with cursors (`first` at most 100).",
    )
    async def influencers(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        filter: InfluencerFilter | None = None,
        sort: InfluencerSort = InfluencerSort.CREATED_DESC,
    ) -> InfluencerConnection:
        f = filter or InfluencerFilter()
        async with tenant_scope(info.context.tenant_schema):
            page = await svc.influencers.list(
                filters=svc.InfluencerFilter(
                    platform=f.platform.value if f.platform else None,
                    min_followers=f.min_followers,
                    max_followers=f.max_followers,
                    verified=f.verified,
                    category=f.category,
                    country=f.country,
                    search=f.search,
                ),
                sort=svc.InfluencerSort[sort.value],
                first=first,
                after=after,
            )
        return build_connection(InfluencerConnection, page, Influencer.from_model)  # type: ignore[return-value]
