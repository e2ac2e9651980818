"""The audit log of security-relevant actions (public schema, one table for every tenant)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from domain.accounts.models import User
    from tenants.models import Tenant


class AuditLog(Model):
    id = fields.BigIntField(primary_key=True)
    # None: the action concerns no tenant yet (a failed sign-in with an unknown e-mail)
    tenant: fields.ForeignKeyNullableRelation[Tenant] = fields.ForeignKeyField(
        "public.Tenant", related_name="audit_entries", null=True, on_delete=fields.CASCADE
    )
    tenant_id: int | None
    actor_user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "public.User", related_name="audit_entries", null=True, on_delete=fields.SET_NULL
    )
    actor_user_id: int | None
    # An API key or partner app acting (e.g. "key:42"); None for a person or the system.
    actor_key = fields.CharField(max_length=64, null=True)
    action = fields.CharField(max_length=64)  # e.g. member.role_changed (domain/audit/service.py)
    target_type = fields.CharField(max_length=32, null=True)
    target_id = fields.CharField(max_length=64, null=True)
    ip = fields.CharField(max_length=45, null=True)
    request_id = fields.CharField(max_length=128, null=True)
    metadata: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        schema = "public"
        table = "audit_log"
        indexes = (("tenant_id", "action", "id"),)
