from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("public", "0004_signin")]

    initial = False

    operations = [
        ops.CreateModel(
            name="ApiKey",
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
                        related_name="api_keys",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "public.User",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="created_api_keys",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("name", fields.CharField(max_length=100)),
                ("prefix", fields.CharField(unique=True, max_length=16)),
                ("key_hash", fields.CharField(max_length=64)),
                ("scopes", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("expires_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "last_used_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "api_key",
                "schema": "public",
                "app": "public",
                "pk_attr": "id",
                "table_description": "A tenant's scoped API key, sent as `Authorization: Bearer tsk_<prefix>_<secret>`.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PartnerApp",
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
                        related_name="partner_apps",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "public.User",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="created_partner_apps",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("name", fields.CharField(max_length=100)),
                ("client_id", fields.CharField(unique=True, max_length=40)),
                ("secret_hash", fields.CharField(max_length=64)),
                ("scopes", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "last_used_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "partner_app",
                "schema": "public",
                "app": "public",
                "pk_attr": "id",
                "table_description": "A partner integration using OAuth 2.0 client credentials (RFC 6749 §4.4).",
            },
            bases=["Model"],
        ),
    ]
