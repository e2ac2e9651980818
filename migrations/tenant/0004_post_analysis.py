from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.contrib.postgres.fields import ArrayField
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("tenant", "0003_drop_redundant_post_index")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Comment",
            name="analyzed_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Comment",
            name="language",
            field=fields.CharField(null=True, max_length=8),
        ),
        ops.AddField(
            model_name="Comment",
            name="sentiment",
            field=fields.CharField(null=True, max_length=8),
        ),
        ops.AddField(
            model_name="Comment",
            name="sentiment_confidence",
            field=fields.FloatField(null=True),
        ),
        ops.AddField(
            model_name="Comment",
            name="sentiment_score",
            field=fields.FloatField(null=True),
        ),
        ops.AddField(
            model_name="Post",
            name="analyzed_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Post",
            name="keywords",
            field=ArrayField(null=True, element_type="TEXT"),
        ),
        ops.AddField(
            model_name="Post",
            name="language",
            field=fields.CharField(null=True, max_length=8),
        ),
        ops.AddField(
            model_name="Post",
            name="sentiment",
            field=fields.CharField(null=True, max_length=8),
        ),
        ops.AddField(
            model_name="Post",
            name="sentiment_confidence",
            field=fields.FloatField(null=True),
        ),
        ops.AddField(
            model_name="Post",
            name="sentiment_score",
            field=fields.FloatField(null=True),
        ),
    ]
