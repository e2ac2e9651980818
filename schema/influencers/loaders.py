"""Dataloaders of influencers: by id, their accounts, an account's follower history."""

from __future__ import annotations

from typing import Any

from strawberry.dataloader import DataLoader

from domain.collection.models import FollowerSnapshot
from domain.influencers.service import influencers
from schema.loading import grouped, loader


class InfluencerLoaders:
    def __init__(self, tenant_schema: str | None, *, cache: bool = True) -> None:
        s = tenant_schema
        self.influencer_by_id = loader(s, influencers.by_ids, cache=cache)
        self.accounts_by_influencer = loader(
            s, influencers.accounts_by_influencer, list, cache=cache
        )
        self.account_by_id = loader(s, influencers.accounts_by_ids, cache=cache)
        self.follower_history: DataLoader[tuple[int, Any], list[FollowerSnapshot]] = loader(
            s, grouped(influencers.follower_history), list, cache=cache
        )
