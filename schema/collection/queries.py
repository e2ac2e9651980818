from __future__ import annotations

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.collection.connections import connections
from domain.collection.service import collection_tasks
from schema.collection.types import (
    CollectionTask,
    CollectionTaskConnection,
    CollectionTaskStatus,
    PlatformConnection,
)
from schema.influencers.types import Platform
from schema.loading import tenant_scope
from schema.permissions import requires
from schema.relay import build_connection, decode_id


@strawberry.type
class CollectionQueries:
    @strawberry.field(extensions=[requires("collection:read")])
    async def collection_task(self, info: Info, id: relay.GlobalID) -> CollectionTask | None:
        task = await info.context.loaders.task_by_id.load(decode_id(id, "CollectionTask"))
        return CollectionTask.from_model(task) if task else None

    @strawberry.field(
        extensions=[requires("collection:read")],
        description="Collection tasks (imports and collections), newest first.",
    )
    async def collection_tasks(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        status: CollectionTaskStatus | None = None,
        platform: Platform | None = None,
        influencer_id: relay.GlobalID | None = None,
    ) -> CollectionTaskConnection:
        async with tenant_scope(info.context.tenant_schema):
            page = await collection_tasks.list(
                status=status.value if status else None,
                platform=platform.value if platform else None,
                influencer_id=decode_id(influencer_id, "Influencer", "influencerId")
                if influencer_id
                else None,
                first=first,
                after=after,
            )
        return build_connection(CollectionTaskConnection, page, CollectionTask.from_model)  # type: ignore[return-value]

    @strawberry.field(
        extensions=[requires("collection:read")],
        description="The tenant's platform credentials (status only; secrets never leave).",
    )
    async def platform_connections(self, info: Info) -> list[PlatformConnection]:
        async with tenant_scope(info.context.tenant_schema):
            rows = await connections.list()
        return [PlatformConnection.from_model(c) for c in rows]
