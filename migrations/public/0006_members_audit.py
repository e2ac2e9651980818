from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("public", "0005_api_keys")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AuditLog",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "tenant",
                    fields.ForeignKeyField(
                        "public.Tenant",
                        source_field="tenant_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="audit_entries",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "actor_user",
                    fields.ForeignKeyField(
                        "public.User",
                        source_field="actor_user_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="audit_entries",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("actor_key", fields.CharField(null=True, max_length=64)),
                ("action", fields.CharField(max_length=64)),
                ("target_type", fields.CharField(null=True, max_length=32)),
                ("target_id", fields.CharField(null=True, max_length=64)),
                ("ip", fields.CharField(null=True, max_length=45)),
                ("request_id", fields.CharField(null=True, max_length=128)),
                ("metadata", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "audit_log",
                "schema": "public",
                "app": "public",
                "indexes": [Index(fields=["tenant_id", "action", "id"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Invitation",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "tenant",
                    fields.ForeignKeyField(
                        "public.Tenant",
                        source_field="tenant_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="invitations",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("email", fields.CharField(max_length=320)),
                ("role", fields.CharField(max_length=16)),
                ("token_hash", fields.CharField(unique=True, max_length=64)),
                (
                    "invited_by",
                    fields.ForeignKeyField(
                        "public.User",
                        source_field="invited_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="invitations_sent",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "accepted_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "accepted_by",
                    fields.ForeignKeyField(
                        "public.User",
                        source_field="accepted_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="invitations_accepted",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "invitation",
                "schema": "public",
                "app": "public",
                "indexes": [Index(fields=["tenant_id", "email"])],
                "pk_attr": "id",
                "table_description": "An invitation to join a tenant with a role. Only the SHA-256 of its token is stored;",
            },
            bases=["Model"],
        ),
    ]
