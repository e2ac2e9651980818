"""Trend queries (scope analytics:read). Root resolvers read in a short `tenant_scope`."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.trends.rules import ALL_PLATFORMS
from domain.trends.service import TrendFilter, trends
from schema.influencers.types import Platform
from schema.loading import tenant_scope
from schema.permissions import requires
from schema.relay import build_connection, decode_id
from schema.trends.types import ANALYTICS_READ, Trend, TrendConnection, TrendRange, TrendStatus


@strawberry.type
class TrendQueries:
    @strawberry.field(
        extensions=[requires(ANALYTICS_READ)],
        description="Trends, highest score first. Without `platform`: topics over every "
        "platform; with it: that platform's own. `range`: topics with a post within it.",
    )
    async def trends(
        self,
        info: Info,
        status: TrendStatus | None = None,
        platform: Platform | None = None,
        range: TrendRange | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> TrendConnection:
        filters = TrendFilter(
            status=status.value if status else None,
            platform=platform.value if platform else ALL_PLATFORMS,
            since=datetime.now(UTC) - range.delta if range else None,
        )
        async with tenant_scope(info.context.tenant_schema):
            page = await trends.list(filters=filters, first=first, after=after)
        return build_connection(TrendConnection, page, Trend.from_model)  # type: ignore[return-value]

    @strawberry.field(extensions=[requires(ANALYTICS_READ)], description="One trend, or null.")
    async def trend(self, info: Info, id: relay.GlobalID) -> Trend | None:
        row = await info.context.loaders.trend_by_id.load(decode_id(id, "Trend"))
        return Trend.from_model(row) if row else None
