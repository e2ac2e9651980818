from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("tenant", "0004_post_analysis")]

    initial = False

    operations = [
        ops.CreateModel(
            name="InfluencerScore",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("influencer_id", fields.BigIntField()),
                ("computed_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("formula", fields.CharField(max_length=32)),
                ("influence_score", fields.FloatField()),
                ("authenticity_score", fields.FloatField()),
                ("followers", fields.BigIntField()),
                ("posts", fields.IntField()),
                ("engagement_rate_by_followers", fields.FloatField(null=True)),
                ("engagement_rate_by_views", fields.FloatField(null=True)),
                ("growth_7d", fields.FloatField(null=True)),
                ("growth_30d", fields.FloatField(null=True)),
                ("growth_90d", fields.FloatField(null=True)),
                ("mean_sentiment", fields.FloatField(null=True)),
                ("breakdown", fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ("inputs", fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ("authenticity", fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={
                "table": "influencer_score",
                "app": "tenant",
                "indexes": [Index(fields=["influencer_id", "computed_at"])],
                "pk_attr": "id",
                "table_description": "One computation of an influencer's metrics, influence and authenticity scores.",
            },
            bases=["Model"],
        ),
        # The analysis pass reads `WHERE analyzed_at IS NULL ORDER BY id`: partial indexes stay
        # as small as the backlog (hand-added: Tortoise models cannot declare partial indexes).
        ops.RunSQL(
            "CREATE INDEX post_unanalyzed_idx ON post (id) WHERE analyzed_at IS NULL;"
            " CREATE INDEX comment_unanalyzed_idx ON comment (id) WHERE analyzed_at IS NULL",
            reverse_sql="DROP INDEX post_unanalyzed_idx; DROP INDEX comment_unanalyzed_idx",
        ),
    ]
