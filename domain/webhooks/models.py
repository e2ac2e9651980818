"""Outbound webhooks (tenant schema): endpoints and the deliveries made to them.

Delivery rows are the source of truth: the job that sends one reads the row, and the
`webhooks.requeue_due` cron re-enqueues any row whose job was lost.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

DELIVERY_STATUSES = ("pending", "succeeded", "failed")


class WebhookEndpoint(Model):
    id = fields.BigIntField(primary_key=True)
    url = fields.CharField(max_length=2048)
    description = fields.CharField(max_length=500, default="")
    events: fields.JSONField[list[str]] = fields.JSONField(default=list)
    # The signing secret (whsec_...), Fernet-encrypted (domain/collection/secrets.py)
    secret = fields.BinaryField()
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "webhook_endpoint"


class WebhookDelivery(Model):
    """One message to one endpoint; every attempt sends the same `message_id` and body."""

    id = fields.BigIntField(primary_key=True)
    endpoint: fields.ForeignKeyRelation[WebhookEndpoint] = fields.ForeignKeyField(
        "tenant.WebhookEndpoint", related_name="deliveries", on_delete=fields.CASCADE
    )
    endpoint_id: int
    event_type = fields.CharField(max_length=64)
    message_id = fields.CharField(max_length=64, unique=True)  # the webhook-id header
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField()
    status = fields.CharField(max_length=16, default="pending")
    attempts = fields.IntField(default=0)
    response_code = fields.IntField(null=True)
    last_error = fields.TextField(null=True)
    next_attempt_at = fields.DatetimeField(null=True)
    # A worker sending it holds it until then; past that a lost attempt is retried.
    claimed_until = fields.DatetimeField(null=True)
    last_attempt_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "webhook_delivery"
        indexes = (("status", "next_attempt_at"), ("endpoint_id", "id"))
