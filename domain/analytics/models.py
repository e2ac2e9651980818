"""Computed figures (tenant schema). Every figure carries the time it was computed."""

from __future__ import annotations

from typing import Any

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


class InfluencerScore(Model):
    """One computation of an influencer's metrics, influence and authenticity scores.

    The history `scoreHistory` charts; written in bulk by the analytics actors, never updated."""

    id = fields.BigIntField(primary_key=True)
    influencer_id = fields.BigIntField()  # indexed with computed_at (Meta.indexes)
    computed_at = fields.DatetimeField()
    formula = fields.CharField(max_length=32)  # scoring.FORMULA_VERSION
    influence_score = fields.FloatField()  # 0-100
    authenticity_score = fields.FloatField()  # 0-100
    followers = fields.BigIntField()
    posts = fields.IntField()  # posts the figures were computed from
    engagement_rate_by_followers = fields.FloatField(null=True)
    engagement_rate_by_views = fields.FloatField(null=True)
    growth_7d = fields.FloatField(null=True)  # relative follower growth
    growth_30d = fields.FloatField(null=True)
    growth_90d = fields.FloatField(null=True)
    mean_sentiment = fields.FloatField(null=True)  # [-1, 1]
    breakdown: fields.JSONField[list[dict[str, Any]]] = fields.JSONField()  # score components
    inputs: fields.JSONField[dict[str, Any]] = fields.JSONField()
    authenticity: fields.JSONField[dict[str, Any]] = fields.JSONField()  # score, reasons, signals

    class Meta:
        table = "influencer_score"
        indexes = (("influencer_id", "computed_at"),)
