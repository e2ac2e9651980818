from __future__ import annotations

from datetime import UTC, datetime, timedelta

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.analytics import service as svc
from domain.errors import FieldError, ValidationFailed
from domain.trends.service import trends
from schema.analytics.types import SentimentGranularity, SentimentReport, TenantTotals
from schema.loading import tenant_scope
from schema.permissions import requires
from schema.relay import decode_id

DEFAULT_RANGE = timedelta(days=30)
MAX_RANGE = timedelta(days=731)


def time_range(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """[since, until): until defaults to now, since to 30 days before until; at most 2 years."""
    end = until or datetime.now(UTC)
    start = since or end - DEFAULT_RANGE
    if start >= end:
        raise ValidationFailed(FieldError("since", "must be before until"))
    if end - start > MAX_RANGE:
        raise ValidationFailed(FieldError("since", "the range is at most 731 days"))
    return start, end


@strawberry.type
class AnalyticsQueries:
    @strawberry.field(
        extensions=[requires("analytics:read")],
        description="Sentiment of the analysed posts in [since, until) (default: the last 30 "
        "days), of one influencer, of one trend's posts, or of the whole tenant: shares, a "
        "timeline per bucket, top positive and negative keywords and the language breakdown. "
        "Null for an unknown influencer or trend.",
    )
    async def sentiment(
        self,
        info: Info,
        influencer_id: relay.GlobalID | None = None,
        trend_id: relay.GlobalID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        granularity: SentimentGranularity = SentimentGranularity.DAY,
    ) -> SentimentReport | None:
        start, end = time_range(since, until)
        influencer = None
        if influencer_id is not None:
            influencer = decode_id(influencer_id, "Influencer", "influencerId")
            if await info.context.loaders.influencer_by_id.load(influencer) is None:
                return None
        trend = decode_id(trend_id, "Trend", "trendId") if trend_id is not None else None
        async with tenant_scope(info.context.tenant_schema):
            post_ids = None
            if trend is not None:
                found = await trends.post_ids(trend, start, end)
                if found is None:
                    return None
                post_ids = tuple(found)
            scope = svc.PostScope(
                since=start, until=end, influencer_id=influencer, post_ids=post_ids
            )
            summary = await svc.analytics.sentiment_summary(scope, granularity.value)
        return SentimentReport.from_summary(summary, scope, granularity)

    @strawberry.field(
        extensions=[requires("influencers:read")],
        description="The tenant's totals as last recounted by the analytics worker.",
    )
    async def tenant_totals(self, info: Info) -> TenantTotals | None:
        async with tenant_scope(info.context.tenant_schema):
            row = await svc.analytics.latest_totals()
        if row is None:
            return None
        return TenantTotals(
            influencers=row.influencers,
            accounts=row.accounts,
            posts=row.posts,
            comments=row.comments,
            computed_at=row.computed_at,
        )
