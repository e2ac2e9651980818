"""Billing tables (public schema): the Stripe webhook events received, stored once each."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class StripeEvent(Model):
    """A webhook event, stored by its Stripe id before any job handles it (so a redelivery
    is recognised and dropped). The handler re-reads the objects from Stripe; `payload` is
    kept for audit and debugging only."""

    id = fields.CharField(max_length=255, primary_key=True)  # evt_...
    type = fields.CharField(max_length=100)
    created = fields.DatetimeField()  # Stripe's creation time of the event
    livemode = fields.BooleanField(default=False)
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField()
    received_at = fields.DatetimeField(auto_now_add=True)
    processed_at = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)
    error = fields.TextField(null=True)
    tenant_id = fields.BigIntField(null=True, db_index=True)  # once the handler knows it

    class Meta:
        schema = "public"
        table = "stripe_event"
