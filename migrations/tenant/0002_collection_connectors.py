from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("tenant", "0001_initial")]

    initial = False

    operations = [
        ops.CreateModel(
            name="FollowerSnapshot",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "tenant.InfluencerAccount",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="follower_snapshots",
                        on_delete="CASCADE",
                    ),
                ),
                ("followers", fields.BigIntField()),
                ("taken_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("task_id", fields.BigIntField(null=True)),
            ],
            options={
                "table": "follower_snapshot",
                "app": "tenant",
                "unique_together": (("account_id", "task_id"),),
                "indexes": [Index(fields=["account_id", "taken_at"])],
                "pk_attr": "id",
                "table_description": "An account's follower count as one collection run saw it (growth curves).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PlatformConnection",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("platform", fields.CharField(unique=True, max_length=16)),
                ("label", fields.CharField(default="", max_length=100)),
                ("secret", fields.TextField(unique=False)),
                ("status", fields.CharField(default="active", max_length=16)),
                ("broken_reason", fields.TextField(null=True, unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
                (
                    "last_used_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "platform_connection",
                "app": "tenant",
                "pk_attr": "id",
                "table_description": "A tenant's credential for one platform. `secret` is a MultiFernet token: the API never",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="CollectionTask",
            name="cursor",
            field=fields.JSONField(
                default=dict,
                db_default={},
                encoder=functools.partial(dumps, separators=(",", ":")),
                decoder=loads,
            ),
        ),
        ops.AddField(
            model_name="CollectionTask",
            name="influencer_id",
            field=fields.BigIntField(null=True, db_index=True),
        ),
        ops.AddField(
            model_name="CollectionTask",
            name="params",
            field=fields.JSONField(
                default=dict,
                db_default={},
                encoder=functools.partial(dumps, separators=(",", ":")),
                decoder=loads,
            ),
        ),
        ops.AddField(
            model_name="CollectionTask",
            name="platform",
            field=fields.CharField(null=True, max_length=16),
        ),
        ops.AddField(
            model_name="CollectionTask",
            name="priority",
            field=fields.SmallIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name="CollectionTask",
            name="units_spent",
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name="InfluencerAccount",
            name="collected_until",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="InfluencerAccount",
            name="status",
            field=fields.CharField(default="active", db_default="active", max_length=16),
        ),
        ops.AddField(
            model_name="InfluencerAccount",
            name="status_reason",
            field=fields.CharField(null=True, max_length=200),
        ),
    ]
