"""Influencers and their platform accounts (tenant schema)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

PLATFORMS = ("instagram", "youtube", "tiktok", "x")


class Influencer(Model):
    id = fields.BigIntField(primary_key=True)
    display_name = fields.CharField(max_length=200)
    category = fields.CharField(max_length=100, null=True)
    country = fields.CharField(max_length=100, null=True)
    notes = fields.TextField(default="")
    # Denormalised from the accounts so filters/sorts on reach need no join.
    total_followers = fields.BigIntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "influencer"
        indexes = (("total_followers", "id"), ("display_name", "id"))


class InfluencerAccount(Model):
    id = fields.BigIntField(primary_key=True)
    influencer: fields.ForeignKeyRelation[Influencer] = fields.ForeignKeyField(
        "tenant.Influencer", related_name="accounts", on_delete=fields.CASCADE
    )
    platform = fields.CharField(max_length=16)  # one of PLATFORMS
    handle = fields.CharField(max_length=100)
    external_id = fields.CharField(max_length=100, null=True)
    followers = fields.BigIntField(default=0)
    verified = fields.BooleanField(default=False)
    profile_url = fields.CharField(max_length=500, null=True)
    # set by collection: "active", or why the platform would not serve it (private, removed)
    status = fields.CharField(max_length=16, default="active", db_default="active")
    status_reason = fields.CharField(max_length=200, null=True)
    collected_until = fields.DatetimeField(null=True)  # newest post seen: incremental runs
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "influencer_account"
        unique_together = (("platform", "handle"),)
