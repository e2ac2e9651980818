"""Trends detected per tenant (tenant schema): the topic, its figures, series and drivers.

Written by the `analytics.detect_trends` actor (domain/trends/service.py), one row per
(kind, key, platform); see docs/analytics.md ("Trends").
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.contrib.postgres.fields import ArrayField
from tortoise.models import Model

TREND_KINDS = ("hashtag", "keyword", "cluster")
TREND_STATUSES = ("emerging", "rising", "peaking", "declining", "stable")


class Trend(Model):
    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=16)  # hashtag | keyword | cluster
    key = fields.CharField(max_length=200)  # tag, term, or a cluster's sorted top terms
    label = fields.CharField(max_length=200)
    platform = fields.CharField(max_length=16)  # a platform, or "all"
    status = fields.CharField(max_length=16)  # emerging | rising | peaking | declining | stable
    score = fields.FloatField()  # 0-100
    score_breakdown: fields.JSONField[list[dict[str, Any]]] = fields.JSONField(default=list)
    z = fields.FloatField()
    velocity = fields.FloatField()  # posts per burst window, latest minus previous
    acceleration = fields.FloatField()
    baseline_median = fields.FloatField()
    baseline_mad = fields.FloatField()
    volume = fields.IntField()  # posts in the activity window (24 h)
    engagement = fields.BigIntField()  # their likes + comments + shares
    sentiment = fields.FloatField(null=True)  # their mean sentiment score; NULL: unknown
    sentiment_posts = fields.IntField(default=0)
    forecast: fields.JSONField[dict[str, Any]] | None = fields.JSONField(null=True)
    post_ids = ArrayField(element_type="bigint", null=True)  # cluster members only
    first_seen = fields.DatetimeField()
    last_seen = fields.DatetimeField()  # newest post of the topic
    last_updated = fields.DatetimeField()  # created, or status/score changed materially
    computed_at = fields.DatetimeField()  # the detection run that wrote the row
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "trend"
        unique_together = (("kind", "key", "platform"),)
        indexes = (("score", "id"), ("status", "score"))


class TrendPoint(Model):
    """Posts of a trend's topic per hour (UTC hour starts)."""

    id = fields.BigIntField(primary_key=True)
    trend: fields.ForeignKeyRelation[Trend] = fields.ForeignKeyField(
        "tenant.Trend", related_name="points", on_delete=fields.CASCADE
    )
    bucket_start = fields.DatetimeField()
    count = fields.IntField()

    class Meta:
        table = "trend_point"
        unique_together = (("trend", "bucket_start"),)


class TrendInfluencer(Model):
    """The influencers driving a trend in its activity window, ranked by contribution."""

    id = fields.BigIntField(primary_key=True)
    trend: fields.ForeignKeyRelation[Trend] = fields.ForeignKeyField(
        "tenant.Trend", related_name="influencers", on_delete=fields.CASCADE
    )
    influencer_id = fields.BigIntField()
    rank = fields.IntField()
    posts = fields.IntField()
    engagement = fields.BigIntField()
    contribution = fields.FloatField()  # (share of posts + share of engagement) / 2

    class Meta:
        table = "trend_influencer"
        unique_together = (("trend", "influencer_id"),)
