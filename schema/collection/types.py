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
from domain.collection.connections import connections
from schema.loading import tenant_nodes


@strawberry.enum
class CollectionTaskStatus(Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@strawberry.type
class RowError:
    row: int | None = strawberry.field(description="The file row (imports); null otherwise.")
    item: str | None = strawberry.field(
        default=None, description="The platform item id (collection), when known."
    )
    message: str


@strawberry.enum
class ConnectionPlatform(Enum):
    INSTAGRAM = "instagram"
    YOUTUBE = "youtube"
    TIKTOK = "tiktok"
    X = "x"
    APIFY = "apify"


@strawberry.enum
class ConnectionStatus(Enum):
    ACTIVE = "active"
    BROKEN = "broken"
    DISCONNECTED = "disconnected"


@strawberry.type(description="A tenant's credential for a platform. Secrets are never returned.")
class PlatformConnection(relay.Node):
    id: relay.NodeID[int]
    platform: ConnectionPlatform
    label: str
    status: ConnectionStatus
    broken_reason: str | None
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None

    @classmethod
    def from_model(cls, m: models.PlatformConnection) -> PlatformConnection:
        return cls(
            id=m.id,
            platform=ConnectionPlatform(m.platform),
            label=m.label,
            status=ConnectionStatus(m.status),
            broken_reason=m.broken_reason,
            created_at=m.created_at,
            updated_at=m.updated_at,
            last_used_at=m.last_used_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[PlatformConnection | None]:
        return await tenant_nodes(
            info.context.tenant_schema, node_ids, connections.by_ids, cls.from_model
        )


@strawberry.type
class FollowerSnapshot:
    followers: int
    taken_at: datetime


@strawberry.type
class CollectionTask(relay.Node):
    id: relay.NodeID[int]
    kind: str
    status: CollectionTaskStatus
    platform: str | None = strawberry.field(description="The platform a collect task reads.")
    units_spent: int = strawberry.field(description="Platform quota units the task used.")
    total: int
    processed: int
    created: int
    updated: int
    skipped: int
    error: str | None
    errors: list[RowError] = strawberry.field(
        description="Skipped rows or platform items, and why (the first 100)."
    )
    attempts: int = strawberry.field(description="How many times a worker has run the task.")
    last_error: str | None = strawberry.field(
        description="Why the last failed run failed (kept after a retry succeeds). A task is "
        "retried with back-off until JOB_MAX_ATTEMPTS runs in a row fail or the failures last "
        "JOB_MAX_AGE_SECONDS; then it is FAILED and `error` says why."
    )
    next_attempt_at: datetime | None = strawberry.field(
        description="When the next run is due while the task waits for a retry (or for the "
        "platform's quota); null otherwise."
    )
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
            platform=m.platform,
            units_spent=m.units_spent,
            total=m.total,
            processed=m.processed,
            created=m.created,
            updated=m.updated,
            skipped=m.skipped,
            error=m.error,
            errors=[
                RowError(
                    row=None if e.get("row") is None else int(e["row"]),
                    item=e.get("item"),
                    message=str(e["message"]),
                )
                for e in errs
            ],
            attempts=m.attempts,
            last_error=m.last_error,
            next_attempt_at=m.next_attempt_at,
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


@strawberry.type
class CollectionTaskConnection(relay.Connection[CollectionTask]):
    pass
