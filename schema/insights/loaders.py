"""Dataloaders of insights: alert rules by id."""

from __future__ import annotations

from domain.insights.service import insights
from schema.loading import loader


class InsightLoaders:
    def __init__(self, tenant_schema: str | None, *, cache: bool = True) -> None:
        self.alert_rule_by_id = loader(tenant_schema, insights.rules_by_ids, cache=cache)
