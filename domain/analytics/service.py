"""Analytics I/O. Runs inside the caller's tenant transaction; never commits."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.analytics.models import TenantTotals
from domain.influencers.models import Influencer, InfluencerAccount
from domain.posts.models import Comment, Post


class AnalyticsService:
    async def recount_totals(self) -> TenantTotals:
        return await TenantTotals.create(
            influencers=await Influencer.all().count(),
            accounts=await InfluencerAccount.all().count(),
            posts=await Post.all().count(),
            comments=await Comment.all().count(),
            computed_at=datetime.now(UTC),
        )

    async def latest_totals(self) -> TenantTotals | None:
        return await TenantTotals.all().order_by("-computed_at", "-id").first()


analytics = AnalyticsService()
