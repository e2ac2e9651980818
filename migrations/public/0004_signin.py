from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("public", "0003_billing")]

    initial = False

    operations = [
        ops.CreateModel(
            name="OneTimeToken",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("purpose", fields.CharField(max_length=24)),
                ("token_hash", fields.CharField(unique=True, max_length=64)),
                (
                    "user",
                    fields.ForeignKeyField(
                        "public.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="one_time_tokens",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("email", fields.CharField(max_length=320)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("used_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "one_time_token",
                "schema": "public",
                "app": "public",
                "pk_attr": "id",
                "table_description": "A single-use, expiring token sent by e-mail (verification, password reset).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="UserIdentity",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("provider", fields.CharField(max_length=32)),
                ("subject", fields.CharField(max_length=255)),
                (
                    "user",
                    fields.ForeignKeyField(
                        "public.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="identities",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("email", fields.CharField(null=True, max_length=320)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "user_identity",
                "schema": "public",
                "app": "public",
                "unique_together": (("provider", "subject"),),
                "pk_attr": "id",
                "table_description": "An external sign-in (OIDC / OAuth provider account) linked to a user.",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="User",
            name="email_verified_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
