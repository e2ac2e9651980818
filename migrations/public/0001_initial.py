from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateSchema(schema_name="public"),
        ops.CreateModel(
            name="Tenant",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("slug", fields.CharField(unique=True, max_length=50)),
                ("name", fields.CharField(max_length=200)),
                ("schema_name", fields.CharField(unique=True, max_length=63)),
                ("plan", fields.CharField(default="free", max_length=32)),
                ("is_active", fields.BooleanField(default=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "tenant", "schema": "public", "app": "public", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="User",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("email", fields.CharField(unique=True, max_length=320)),
                ("password_hash", fields.CharField(null=True, max_length=255)),
                ("display_name", fields.CharField(default="", max_length=200)),
                ("is_active", fields.BooleanField(default=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "user_account", "schema": "public", "app": "public", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Membership",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "public.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="memberships",
                        on_delete="CASCADE",
                    ),
                ),
                (
                    "tenant",
                    fields.ForeignKeyField(
                        "public.Tenant",
                        source_field="tenant_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="memberships",
                        on_delete="CASCADE",
                    ),
                ),
                ("role", fields.CharField(max_length=16)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "membership",
                "schema": "public",
                "app": "public",
                "unique_together": (("user", "tenant"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="RefreshToken",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "public.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="refresh_tokens",
                        on_delete="CASCADE",
                    ),
                ),
                (
                    "tenant",
                    fields.ForeignKeyField(
                        "public.Tenant",
                        source_field="tenant_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="+",
                        on_delete="CASCADE",
                    ),
                ),
                ("token_hash", fields.CharField(unique=True, max_length=64)),
                ("family", fields.UUIDField(db_index=True)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("used_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "refresh_token",
                "schema": "public",
                "app": "public",
                "pk_attr": "id",
                "table_description": "One row per issued refresh token; only its SHA-256 is stored.",
            },
            bases=["Model"],
        ),
    ]
