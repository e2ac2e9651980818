from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("tenant", "0008_webhooks")]

    initial = False

    operations = [
        ops.AddField(
            model_name="CollectionTask",
            name="last_error",
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name="CollectionTask",
            name="next_attempt_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="CollectionTask",
            name="retries",
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name="CollectionTask",
            name="retrying_since",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
