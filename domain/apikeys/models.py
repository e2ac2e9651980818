"""Credentials for integrations (public schema): API keys and partner apps.

Only a SHA-256 of each secret is stored: the secrets are 256-bit random values, so a fast
hash is enough (no password-style slow hash; nothing to brute-force).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from domain.accounts.models import User
    from tenants.models import Tenant


class ApiKey(Model):
    """A tenant's scoped API key, sent as `Authorization: Bearer tsk_<prefix>_<secret>`."""

    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "public.Tenant", related_name="api_keys", on_delete=fields.CASCADE
    )
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "public.User", related_name="created_api_keys", null=True, on_delete=fields.SET_NULL
    )
    tenant_id: int  # the foreign keys' columns, for type checkers
    created_by_id: int | None
    name = fields.CharField(max_length=100)
    prefix = fields.CharField(max_length=16, unique=True)  # shown in lists and logs
    key_hash = fields.CharField(max_length=64)  # SHA-256 hex of the whole key
    scopes: list[str] = fields.JSONField(default=list)  # type: ignore[assignment]
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)  # refreshed at most once a minute
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        schema = "public"
        table = "api_key"


class PartnerApp(Model):
    """A partner integration using OAuth 2.0 client credentials (RFC 6749 §4.4)."""

    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "public.Tenant", related_name="partner_apps", on_delete=fields.CASCADE
    )
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "public.User", related_name="created_partner_apps", null=True, on_delete=fields.SET_NULL
    )
    tenant_id: int
    created_by_id: int | None
    name = fields.CharField(max_length=100)
    client_id = fields.CharField(max_length=40, unique=True)
    secret_hash = fields.CharField(max_length=64)  # SHA-256 hex of the client secret
    scopes: list[str] = fields.JSONField(default=list)  # type: ignore[assignment]
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)  # last token issued
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        schema = "public"
        table = "partner_app"
