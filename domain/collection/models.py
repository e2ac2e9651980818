"""Collection work and its progress (tenant schema)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from domain.influencers.models import InfluencerAccount

TASK_STATUSES = ("pending", "running", "succeeded", "failed")


class CollectionTask(Model):
    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=32)  # "import" | "collect"
    status = fields.CharField(max_length=16, default="pending", db_index=True)
    # progress: rows done / rows total (total is known once the file is parsed)
    total = fields.IntField(default=0)
    processed = fields.IntField(default=0)  # also the resume cursor: rows [0, processed) are in
    created = fields.IntField(default=0)
    updated = fields.IntField(default=0)
    skipped = fields.IntField(default=0)
    error = fields.TextField(null=True)
    errors: fields.JSONField[list[dict[str, Any]]] = fields.JSONField(
        default=list
    )  # per-row errors, capped
    attempts = fields.IntField(default=0)
    # collect tasks: what to collect, how far each account got (resumable), quota spent
    platform = fields.CharField(max_length=16, null=True)
    influencer_id = fields.BigIntField(null=True, db_index=True)
    params: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict, db_default={})
    cursor: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict, db_default={})
    units_spent = fields.IntField(default=0, db_default=0)
    priority = fields.SmallIntField(default=0, db_default=0)
    # Retries (domain/collection/retries.py): the last failed run's error (kept once a retry
    # succeeds, for the record), when the next run is due while the task waits for one, and
    # the current streak of failed runs without progress (reset by any committed step).
    last_error = fields.TextField(null=True)
    next_attempt_at = fields.DatetimeField(null=True)
    retries = fields.IntField(default=0, db_default=0)
    retrying_since = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "collection_task"


class ImportFile(Model):
    """An uploaded file, kept in Postgres so the job that ingests it needs only ids."""

    id = fields.BigIntField(primary_key=True)
    task: fields.OneToOneRelation[CollectionTask] = fields.OneToOneField(
        "tenant.CollectionTask", related_name="import_file", on_delete=fields.CASCADE
    )
    filename = fields.CharField(max_length=255)
    format = fields.CharField(max_length=8)  # csv | jsonl
    content = fields.BinaryField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "import_file"


CONNECTION_STATUSES = ("active", "broken", "disconnected")


class PlatformConnection(Model):
    """A tenant's credential for one platform. `secret` is a MultiFernet token: the API never
    returns it, and only collection jobs decrypt it."""

    id = fields.BigIntField(primary_key=True)
    platform = fields.CharField(max_length=16, unique=True)
    label = fields.CharField(max_length=100, default="")
    secret = fields.TextField()
    status = fields.CharField(max_length=16, default="active")
    broken_reason = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "platform_connection"


class FollowerSnapshot(Model):
    """An account's follower count as one collection run saw it (growth curves)."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[InfluencerAccount] = fields.ForeignKeyField(
        "tenant.InfluencerAccount", related_name="follower_snapshots", on_delete=fields.CASCADE
    )
    followers = fields.BigIntField()
    taken_at = fields.DatetimeField()
    task_id = fields.BigIntField(null=True)

    class Meta:
        table = "follower_snapshot"
        unique_together = (("account_id", "task_id"),)  # a re-run of a task adds none
        indexes = (("account_id", "taken_at"),)
