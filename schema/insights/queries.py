from __future__ import annotations

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.insights.service import Range, insights
from schema.influencers.types import Platform
from schema.insights.types import AlertEvent as AlertEventType
from schema.insights.types import (
    AlertEventConnection,
    AlertRule,
    AnomalyConnection,
    BestPostingTimes,
    InsightConnection,
    InsightRange,
)
from schema.insights.types import Anomaly as AnomalyType
from schema.insights.types import Insight as InsightType
from schema.loading import tenant_scope
from schema.permissions import requires
from schema.relay import build_connection, decode_id


def _range(r: InsightRange | None) -> Range:
    return Range(since=r.since, until=r.until) if r else Range()


@strawberry.type
class InsightQueries:
    @strawberry.field(
        extensions=[requires("analytics:read")],
        description="Generated insights (daily digests), newest first; `range` filters on the "
        "period's start.",
    )
    async def insights(
        self,
        info: Info,
        range: InsightRange | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> InsightConnection:
        async with tenant_scope(info.context.tenant_schema):
            page = await insights.list_insights(_range(range), first=first, after=after)
        return build_connection(InsightConnection, page, InsightType.from_model)  # type: ignore[return-value]

    @strawberry.field(
        extensions=[requires("analytics:read")],
        description="Anomalies (spikes, drops, viral posts, sentiment turning negative), newest "
        "first; `range` filters on the end of the window they were found in.",
    )
    async def anomalies(
        self,
        info: Info,
        range: InsightRange | None = None,
        influencer_id: relay.GlobalID | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> AnomalyConnection:
        wanted = decode_id(influencer_id, "Influencer", "influencerId") if influencer_id else None
        async with tenant_scope(info.context.tenant_schema):
            page = await insights.list_anomalies(
                _range(range), influencer_id=wanted, first=first, after=after
            )
        return build_connection(AnomalyConnection, page, AnomalyType.from_model)  # type: ignore[return-value]

    @strawberry.field(
        extensions=[requires("analytics:read")],
        description="Weekday x hour slots ranked by engagement, from the tenant's posts on the "
        "platform in the 90 days up to its newest post, in local time of `timezone` (IANA).",
    )
    async def best_posting_times(
        self, info: Info, platform: Platform, timezone: str = "UTC"
    ) -> BestPostingTimes:
        async with tenant_scope(info.context.tenant_schema):
            result = await insights.posting_times(platform.value, timezone)
        return BestPostingTimes.from_result(result, timezone)

    @strawberry.field(extensions=[requires("analytics:read")], description="Alert rules.")
    async def alert_rules(self, info: Info) -> list[AlertRule]:
        async with tenant_scope(info.context.tenant_schema):
            rows = await insights.list_rules()
        return [AlertRule.from_model(r) for r in rows]

    @strawberry.field(
        extensions=[requires("analytics:read")],
        description="Alert rule crossings, newest first; `range` filters on when they fired.",
    )
    async def alert_events(
        self,
        info: Info,
        range: InsightRange | None = None,
        rule_id: relay.GlobalID | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> AlertEventConnection:
        wanted = decode_id(rule_id, "AlertRule", "ruleId") if rule_id else None
        async with tenant_scope(info.context.tenant_schema):
            page = await insights.list_events(
                _range(range), rule_id=wanted, first=first, after=after
            )
        return build_connection(AlertEventConnection, page, AlertEventType.from_model)  # type: ignore[return-value]
