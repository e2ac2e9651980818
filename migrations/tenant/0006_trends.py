from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.contrib.postgres.fields import ArrayField
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("tenant", "0005_analytics_metrics")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Trend",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("kind", fields.CharField(max_length=16)),
                ("key", fields.CharField(max_length=200)),
                ("label", fields.CharField(max_length=200)),
                ("platform", fields.CharField(max_length=16)),
                ("status", fields.CharField(max_length=16)),
                ("score", fields.FloatField()),
                (
                    "score_breakdown",
                    fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
                ),
                ("z", fields.FloatField()),
                ("velocity", fields.FloatField()),
                ("acceleration", fields.FloatField()),
                ("baseline_median", fields.FloatField()),
                ("baseline_mad", fields.FloatField()),
                ("volume", fields.IntField()),
                ("engagement", fields.BigIntField()),
                ("sentiment", fields.FloatField(null=True)),
                ("sentiment_posts", fields.IntField(default=0)),
                ("forecast", fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ("post_ids", ArrayField(null=True, element_type="BIGINT")),
                ("first_seen", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("last_seen", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("last_updated", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("computed_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "trend",
                "app": "tenant",
                "unique_together": (("kind", "key", "platform"),),
                "indexes": [Index(fields=["score", "id"]), Index(fields=["status", "score"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TrendInfluencer",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "trend",
                    fields.ForeignKeyField(
                        "tenant.Trend",
                        source_field="trend_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="influencers",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("influencer_id", fields.BigIntField()),
                ("rank", fields.IntField()),
                ("posts", fields.IntField()),
                ("engagement", fields.BigIntField()),
                ("contribution", fields.FloatField()),
            ],
            options={
                "table": "trend_influencer",
                "app": "tenant",
                "unique_together": (("trend", "influencer_id"),),
                "pk_attr": "id",
                "table_description": "The influencers driving a trend in its activity window, ranked by contribution.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TrendPoint",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "trend",
                    fields.ForeignKeyField(
                        "tenant.Trend",
                        source_field="trend_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="points",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("bucket_start", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("count", fields.IntField()),
            ],
            options={
                "table": "trend_point",
                "app": "tenant",
                "unique_together": (("trend", "bucket_start"),),
                "pk_attr": "id",
                "table_description": "Posts of a trend's topic per hour (UTC hour starts).",
            },
            bases=["Model"],
        ),
    ]
