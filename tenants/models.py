"""The tenant registry (public schema)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Tenant(Model):
    id = fields.BigIntField(primary_key=True)
    slug = fields.CharField(max_length=50, unique=True)
    name = fields.CharField(max_length=200)
    schema_name = fields.CharField(max_length=63, unique=True)
    plan = fields.CharField(max_length=32, default="free")
    is_active = fields.BooleanField(default=True)
    # Allow-list mode: only the persisted queries registered for this tenant run.
    persisted_queries_only = fields.BooleanField(default=False)
    # Billing (billing/stripe_sync.py keeps these in step with Stripe; docs/billing.md).
    stripe_customer_id = fields.CharField(max_length=255, null=True, unique=True)
    stripe_subscription_id = fields.CharField(max_length=255, null=True)
    # Stripe's subscription status (active, trialing, past_due, unpaid, canceled, ...)
    subscription_status = fields.CharField(max_length=32, null=True)
    current_period_end = fields.DatetimeField(null=True)
    # Dunning: when the subscription went past due, when its grace period ends, and when the
    # tenant was restricted to read-only (all None when in good standing).
    past_due_since = fields.DatetimeField(null=True)
    grace_until = fields.DatetimeField(null=True)
    restricted_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        schema = "public"
        table = "tenant"


class AllowedQuery(Model):
    """A query document a tenant in allow-list mode may run, by its SHA-256 (hex)."""

    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "public.Tenant", related_name="allowed_queries", on_delete=fields.CASCADE
    )
    sha256 = fields.CharField(max_length=64)
    query = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        schema = "public"
        table = "allowed_query"
        unique_together = (("tenant", "sha256"),)
