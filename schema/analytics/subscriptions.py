"""Live analytics: `scoreUpdated` after each computation of an influencer's figures."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry import relay
from strawberry.types import Info

from core import hub
from domain import events
from schema.analytics.types import InfluencerMetrics
from schema.context import subscription_tenant
from schema.dataloaders import Loaders
from schema.permissions import requires
from schema.relay import decode_id


@strawberry.type
class AnalyticsSubscriptions:
    @strawberry.subscription(
        extensions=[requires("analytics:read")],
        description="An influencer's figures were recomputed (optionally one influencer's).",
    )
    async def score_updated(
        self, info: Info, influencer_id: relay.GlobalID | None = None
    ) -> AsyncGenerator[InfluencerMetrics, None]:
        schema = subscription_tenant(info)
        wanted = decode_id(influencer_id, "Influencer", "influencerId") if influencer_id else None
        async with info.context.hub.subscribe(hub.channel(schema, events.SCORE_UPDATED)) as feed:
            async for event in feed:
                if wanted is not None and event.get("influencer_id") != wanted:
                    continue
                info.context.loaders = Loaders(schema, cache=False)
                row = await info.context.loaders.latest_score.load(int(event["influencer_id"]))
                if row is not None:
                    yield InfluencerMetrics.from_model(row)
