"""Dataloaders of collection: tasks by id."""

from __future__ import annotations

from domain.collection.service import collection_tasks
from schema.loading import loader


class CollectionLoaders:
    def __init__(self, tenant_schema: str | None, *, cache: bool = True) -> None:
        self.task_by_id = loader(tenant_schema, collection_tasks.by_ids, cache=cache)
