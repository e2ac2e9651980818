import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.contrib.postgres.fields import ArrayField
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="CollectionTask",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("kind", fields.CharField(max_length=32)),
                ("status", fields.CharField(default="pending", db_index=True, max_length=16)),
                ("total", fields.IntField(default=0)),
                ("processed", fields.IntField(default=0)),
                ("created", fields.IntField(default=0)),
                ("updated", fields.IntField(default=0)),
                ("skipped", fields.IntField(default=0)),
                ("error", fields.TextField(null=True, unique=False)),
                (
                    "errors",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("attempts", fields.IntField(default=0)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("started_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "finished_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={"table": "collection_task", "app": "tenant", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ImportFile",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "task",
                    fields.OneToOneField(
                        "tenant.CollectionTask",
                        source_field="task_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="import_file",
                        on_delete="CASCADE",
                    ),
                ),
                ("filename", fields.CharField(max_length=255)),
                ("format", fields.CharField(max_length=8)),
                ("content", fields.BinaryField()),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "import_file",
                "app": "tenant",
                "pk_attr": "id",
                "table_description": "An uploaded file, kept in Postgres so the job that ingests it needs only ids.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Influencer",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("display_name", fields.CharField(max_length=200)),
                ("category", fields.CharField(null=True, max_length=100)),
                ("country", fields.CharField(null=True, max_length=100)),
                ("notes", fields.TextField(default="", unique=False)),
                ("total_followers", fields.BigIntField(default=0)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "influencer",
                "app": "tenant",
                "indexes": [
                    Index(fields=["total_followers", "id"]),
                    Index(fields=["display_name", "id"]),
                ],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="InfluencerAccount",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "influencer",
                    fields.ForeignKeyField(
                        "tenant.Influencer",
                        source_field="influencer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="accounts",
                        on_delete="CASCADE",
                    ),
                ),
                ("platform", fields.CharField(max_length=16)),
                ("handle", fields.CharField(max_length=100)),
                ("external_id", fields.CharField(null=True, max_length=100)),
                ("followers", fields.BigIntField(default=0)),
                ("verified", fields.BooleanField(default=False)),
                ("profile_url", fields.CharField(null=True, max_length=500)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "influencer_account",
                "app": "tenant",
                "unique_together": (("platform", "handle"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Post",
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
                        related_name="posts",
                        on_delete="CASCADE",
                    ),
                ),
                ("influencer_id", fields.BigIntField(db_index=True)),
                ("platform", fields.CharField(max_length=16)),
                ("external_id", fields.CharField(max_length=100)),
                ("url", fields.CharField(default="", max_length=1000)),
                ("text", fields.TextField(default="", unique=False)),
                ("hashtags", ArrayField(default=list, element_type="TEXT")),
                ("mentions", ArrayField(default=list, element_type="TEXT")),
                (
                    "published_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False),
                ),
                ("likes", fields.BigIntField(default=0)),
                ("comments", fields.BigIntField(default=0)),
                ("shares", fields.BigIntField(default=0)),
                ("views", fields.BigIntField(default=0)),
                (
                    "raw_json",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("collected_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "post",
                "app": "tenant",
                "unique_together": (("platform", "external_id"),),
                "indexes": [
                    Index(fields=["influencer_id", "published_at"]),
                    Index(fields=["account_id", "published_at"]),
                ],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Comment",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "post",
                    fields.ForeignKeyField(
                        "tenant.Post",
                        source_field="post_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="comment_rows",
                        on_delete="CASCADE",
                    ),
                ),
                ("platform", fields.CharField(max_length=16)),
                ("external_id", fields.CharField(max_length=100)),
                ("author", fields.CharField(default="", max_length=200)),
                ("text", fields.TextField(default="", unique=False)),
                ("likes", fields.BigIntField(default=0)),
                (
                    "published_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "comment",
                "app": "tenant",
                "unique_together": (("platform", "external_id"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TenantTotals",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("influencers", fields.IntField()),
                ("accounts", fields.IntField()),
                ("posts", fields.IntField()),
                ("comments", fields.IntField()),
                (
                    "computed_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={"table": "tenant_totals", "app": "tenant", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
