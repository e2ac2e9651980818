from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("public", "0002_persisted_queries")]

    initial = False

    operations = [
        ops.CreateModel(
            name="StripeEvent",
            fields=[
                (
                    "id",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=255),
                ),
                ("type", fields.CharField(max_length=100)),
                ("created", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("livemode", fields.BooleanField(default=False)),
                ("payload", fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ("received_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "processed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("attempts", fields.IntField(default=0)),
                ("error", fields.TextField(null=True, unique=False)),
                ("tenant_id", fields.BigIntField(null=True, db_index=True)),
            ],
            options={
                "table": "stripe_event",
                "schema": "public",
                "app": "public",
                "pk_attr": "id",
                "table_description": "A webhook event, stored by its Stripe id before any job handles it (so a redelivery",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Tenant",
            name="current_period_end",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Tenant",
            name="grace_until",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Tenant",
            name="past_due_since",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Tenant",
            name="restricted_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Tenant",
            name="stripe_customer_id",
            field=fields.CharField(null=True, unique=True, max_length=255),
        ),
        ops.AddField(
            model_name="Tenant",
            name="stripe_subscription_id",
            field=fields.CharField(null=True, max_length=255),
        ),
        ops.AddField(
            model_name="Tenant",
            name="subscription_status",
            field=fields.CharField(null=True, max_length=32),
        ),
    ]
