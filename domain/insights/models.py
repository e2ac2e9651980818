"""Insights, anomalies and alert rules (tenant schema). Computed rows carry the time they were
computed (`created_at` / `detected_at` / `triggered_at`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from domain.influencers.models import Influencer


class Insight(Model):
    """A generated insight; `kind` "daily_digest": one per UTC day (period_start)."""

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=32)
    period_start = fields.DatetimeField()
    period_end = fields.DatetimeField()
    body: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "insight"
        unique_together = (("kind", "period_start"),)  # a day's digest is written once


class Anomaly(Model):
    """An anomaly found by `analytics.detect_anomalies`; `key` makes it idempotent."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=200, unique=True)
    kind = fields.CharField(max_length=32)
    influencer_id = fields.BigIntField(null=True)
    post_id = fields.BigIntField(null=True)
    metric = fields.CharField(max_length=32)
    value = fields.FloatField()
    baseline = fields.FloatField()
    score = fields.FloatField()
    severity = fields.CharField(max_length=16)
    detail = fields.TextField(default="")
    window_start = fields.DatetimeField()
    window_end = fields.DatetimeField()
    detected_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "anomaly"
        indexes = (("detected_at", "id"), ("influencer_id", "detected_at"))


class AlertRule(Model):
    """A tenant-defined alert: metric, condition, threshold, window, channels; `state` is
    "armed" or "fired" (fires once per crossing, re-arms when the condition stops holding)."""

    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=100)
    metric = fields.CharField(max_length=32)
    condition = fields.CharField(max_length=16)
    threshold = fields.FloatField()
    window_hours = fields.IntField()
    influencer: fields.ForeignKeyNullableRelation[Influencer] = fields.ForeignKeyField(
        "tenant.Influencer", related_name="alert_rules", null=True, on_delete=fields.CASCADE
    )
    channels: fields.JSONField[list[str]] = fields.JSONField(default=list)
    enabled = fields.BooleanField(default=True)
    state = fields.CharField(max_length=8, default="armed")
    last_value = fields.FloatField(null=True)
    last_evaluated_at = fields.DatetimeField(null=True)
    last_fired_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "alert_rule"


class AlertEvent(Model):
    """A rule's crossing. `deliveries` holds each channel's status for the delivery work
    ("pending" until a sender takes it; in_app is delivered by the subscription)."""

    id = fields.BigIntField(primary_key=True)
    rule: fields.ForeignKeyRelation[AlertRule] = fields.ForeignKeyField(
        "tenant.AlertRule", related_name="events", on_delete=fields.CASCADE
    )
    metric = fields.CharField(max_length=32)
    condition = fields.CharField(max_length=16)
    threshold = fields.FloatField()
    value = fields.FloatField(null=True)
    previous_value = fields.FloatField(null=True)
    message = fields.TextField(default="")
    deliveries: fields.JSONField[dict[str, str]] = fields.JSONField(default=dict)
    triggered_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "alert_event"
        indexes = (("triggered_at", "id"),)
