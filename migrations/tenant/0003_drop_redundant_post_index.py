from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("tenant", "0002_collection_connectors")]

    initial = False

    operations = [
        ops.AlterField(
            model_name="Post",
            name="influencer_id",
            field=fields.BigIntField(),
        ),
    ]
