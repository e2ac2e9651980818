from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("tenant", "0006_trends")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AlertRule",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("name", fields.CharField(max_length=100)),
                ("metric", fields.CharField(max_length=32)),
                ("condition", fields.CharField(max_length=16)),
                ("threshold", fields.FloatField()),
                ("window_hours", fields.IntField()),
                (
                    "influencer",
                    fields.ForeignKeyField(
                        "tenant.Influencer",
                        source_field="influencer_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="alert_rules",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("channels", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("enabled", fields.BooleanField(default=True)),
                ("state", fields.CharField(default="armed", max_length=8)),
                ("last_value", fields.FloatField(null=True)),
                (
                    "last_evaluated_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "last_fired_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "alert_rule",
                "app": "tenant",
                "pk_attr": "id",
                "table_description": "A tenant-defined alert: metric, condition, threshold, window, channels; `state` is",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AlertEvent",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "rule",
                    fields.ForeignKeyField(
                        "tenant.AlertRule",
                        source_field="rule_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="events",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("metric", fields.CharField(max_length=32)),
                ("condition", fields.CharField(max_length=16)),
                ("threshold", fields.FloatField()),
                ("value", fields.FloatField(null=True)),
                ("previous_value", fields.FloatField(null=True)),
                ("message", fields.TextField(default="", unique=False)),
                ("deliveries", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ("triggered_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "alert_event",
                "app": "tenant",
                "indexes": [Index(fields=["triggered_at", "id"])],
                "pk_attr": "id",
                "table_description": "A rule's crossing. `deliveries` holds each channel's status for the delivery work",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Anomaly",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("key", fields.CharField(unique=True, max_length=200)),
                ("kind", fields.CharField(max_length=32)),
                ("influencer_id", fields.BigIntField(null=True)),
                ("post_id", fields.BigIntField(null=True)),
                ("metric", fields.CharField(max_length=32)),
                ("value", fields.FloatField()),
                ("baseline", fields.FloatField()),
                ("score", fields.FloatField()),
                ("severity", fields.CharField(max_length=16)),
                ("detail", fields.TextField(default="", unique=False)),
                ("window_start", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("window_end", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("detected_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "anomaly",
                "app": "tenant",
                "indexes": [
                    Index(fields=["detected_at", "id"]),
                    Index(fields=["influencer_id", "detected_at"]),
                ],
                "pk_attr": "id",
                "table_description": "An anomaly found by `analytics.detect_anomalies`; `key` makes it idempotent.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Insight",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("kind", fields.CharField(max_length=32)),
                ("period_start", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("period_end", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("body", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                (
                    "created_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True),
                ),
            ],
            options={
                "table": "insight",
                "app": "tenant",
                "unique_together": (("kind", "period_start"),),
                "pk_attr": "id",
                "table_description": 'A generated insight; `kind` "daily_digest": one per UTC day (period_start).',
            },
            bases=["Model"],
        ),
    ]
