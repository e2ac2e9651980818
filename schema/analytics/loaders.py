"""Dataloaders of analytics: an influencer's latest figures and their history."""

from __future__ import annotations

from typing import Any

from strawberry.dataloader import DataLoader

from domain.analytics.models import InfluencerScore
from domain.analytics.service import analytics
from schema.loading import grouped, loader


class AnalyticsLoaders:
    def __init__(self, tenant_schema: str | None, *, cache: bool = True) -> None:
        s = tenant_schema
        self.latest_score = loader(s, analytics.latest_scores, cache=cache)
        self.score_history: DataLoader[tuple[int, Any], list[InfluencerScore]] = loader(
            s, grouped(analytics.score_history), list, cache=cache
        )
