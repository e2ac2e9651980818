"""Collection work and its progress (tenant schema)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

TASK_STATUSES = ("pending", "running", "succeeded", "failed")


class CollectionTask(Model):
    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=32)  # "import" now; "collect" with the connectors
    status = fields.CharField(max_length=16, default="pending", db_index=True)
    # progress: rows done / rows total (total is known once the file is parsed)
    total = fields.IntField(default=0)
    processed = fields.IntField(default=0)  # also the resume cursor: rows [0, processed) are in
    created = fields.IntField(default=0)
    updated = fields.IntField(default=0)
    skipped = fields.IntField(default=0)
    error = fields.TextField(null=True)
    errors = fields.JSONField(default=list)  # per-row errors, capped
    attempts = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "collection_task"


class ImportFile(Model):
    """An uploaded file, kept in Postgres so the job that ingests it needs only ids."""

    id = fields.BigIntField(primary_key=True)
    task = fields.OneToOneField(
        "tenant.CollectionTask", related_name="import_file", on_delete="CASCADE"
    )
    filename = fields.CharField(max_length=255)
    format = fields.CharField(max_length=8)  # csv | jsonl
    content = fields.BinaryField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "import_file"
