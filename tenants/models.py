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
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        schema = "public"
        table = "tenant"
