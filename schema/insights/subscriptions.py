"""Live alerts and insights (pattern of schema/collection/subscriptions.py): each event's row
is read in a short transaction of the subscriber's own tenant."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from core import hub
from domain import events
from domain.insights.service import insights
from schema.context import subscription_tenant
from schema.insights.types import AlertEvent, Insight
from schema.permissions import requires
from tenants.tx import tenant_tx


@strawberry.type
class InsightSubscriptions:
    @strawberry.subscription(
        extensions=[requires("analytics:read")],
        description="Alert rules firing (once per crossing), as they fire.",
    )
    async def alert_triggered(self, info: Info) -> AsyncGenerator[AlertEvent, None]:
        schema = subscription_tenant(info)
        channel = hub.channel(schema, events.ALERT_TRIGGERED)
        async with info.context.hub.subscribe(channel) as feed:
            async for event in feed:
                async with tenant_tx(schema):
                    row = await insights.event(int(event["id"]))
                if row is not None:
                    yield AlertEvent.from_model(row)

    @strawberry.subscription(
        extensions=[requires("analytics:read")],
        description="New insights (the daily digest), as they are written.",
    )
    async def insight_created(self, info: Info) -> AsyncGenerator[Insight, None]:
        schema = subscription_tenant(info)
        channel = hub.channel(schema, events.INSIGHT_CREATED)
        async with info.context.hub.subscribe(channel) as feed:
            async for event in feed:
                async with tenant_tx(schema):
                    row = await insights.insight(int(event["id"]))
                if row is not None:
                    yield Insight.from_model(row)
