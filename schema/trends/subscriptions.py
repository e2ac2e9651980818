"""Live trend changes: created, or status/score changed materially (domain/trends/service.py)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from core import hub
from domain import events
from schema.context import subscription_tenant
from schema.dataloaders import Loaders
from schema.permissions import requires
from schema.trends.types import ANALYTICS_READ, Trend, TrendStatus


@strawberry.type
class TrendSubscriptions:
    @strawberry.subscription(
        extensions=[requires(ANALYTICS_READ)],
        description="Trends as detection creates them or changes their status or score "
        "materially (5 points); optionally only those reaching one status.",
    )
    async def trend_updated(
        self, info: Info, status: TrendStatus | None = None
    ) -> AsyncGenerator[Trend, None]:
        schema = subscription_tenant(info)
        async with info.context.hub.subscribe(hub.channel(schema, events.TREND_UPDATED)) as feed:
            async for event in feed:
                if status is not None and event.get("status") != status.value:
                    continue
                info.context.loaders = Loaders(schema, cache=False)
                row = await info.context.loaders.trend_by_id.load(int(event["id"]))
                if row is not None:
                    yield Trend.from_model(row)
