from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("public", "0001_initial")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AllowedQuery",
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
                        related_name="allowed_queries",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("sha256", fields.CharField(max_length=64)),
                ("query", fields.TextField(unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "allowed_query",
                "schema": "public",
                "app": "public",
                "unique_together": (("tenant", "sha256"),),
                "pk_attr": "id",
                "table_description": "A query document a tenant in allow-list mode may run, by its SHA-256 (hex).",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Tenant",
            name="persisted_queries_only",
            field=fields.BooleanField(default=False),
        ),
    ]
