"""GraphQL types of the collection context."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.collection import models


@strawberry.enum
class CollectionTaskStatus(Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@strawberry.type
class RowError:
    row: int
    message: str


@strawberry.type
class CollectionTask(relay.Node):
    id: relay.NodeID[int]
    kind: str
    status: CollectionTaskStatus
    total: int
    processed: int
    created: int
    updated: int
    skipped: int
    error: str | None
    errors: list[RowError] = strawberry.field(description="Row errors (the first 100).")
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @strawberry.field(description="processed / total, from 0.0 to 1.0.")
    def progress(self) -> float:
        return 1.0 if self.total == 0 else round(self.processed / self.total, 4)

    @classmethod
    def from_model(cls, m: models.CollectionTask) -> CollectionTask:
        errs: list[dict[str, Any]] = list(m.errors or [])
        return cls(
            id=m.id,
            kind=m.kind,
            status=CollectionTaskStatus(m.status),
            total=m.total,
            processed=m.processed,
            created=m.created,
            updated=m.updated,
            skipped=m.skipped,
            error=m.error,
            errors=[RowError(row=int(e["row"]), message=str(e["message"])) for e in errs],
            attempts=m.attempts,
            created_at=m.created_at,
            started_at=m.started_at,
            finished_at=m.finished_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[CollectionTask | None]:
        rows = await info.context.loaders.task_by_id.load_many([int(i) for i in node_ids])
        return [cls.from_model(r) if r else None for r in rows]
