"""Dataloaders of trends: rows, hourly points since a time, driving influencers."""

from __future__ import annotations

from typing import Any

from strawberry.dataloader import DataLoader

from domain.trends.models import TrendPoint
from domain.trends.service import trends
from schema.loading import grouped, loader


class TrendLoaders:
    def __init__(self, tenant_schema: str | None, *, cache: bool = True) -> None:
        s = tenant_schema
        self.trend_by_id = loader(s, trends.by_ids, cache=cache)
        self.trend_points: DataLoader[tuple[int, Any], list[TrendPoint]] = loader(
            s, grouped(trends.points_by_trend), list, cache=cache
        )
        self.trend_influencers = loader(s, trends.influencers_by_trend, list, cache=cache)
