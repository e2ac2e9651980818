"""Computed figures (tenant schema). Every figure carries the time it was computed."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class TenantTotals(Model):
    id = fields.BigIntField(primary_key=True)
    influencers = fields.IntField()
    accounts = fields.IntField()
    posts = fields.IntField()
    comments = fields.IntField()
    computed_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "tenant_totals"
