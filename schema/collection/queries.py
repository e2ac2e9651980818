from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.analytics.service import analytics
from schema.collection.types import CollectionTask
from schema.dataloaders import tenant_scope
from schema.permissions import requires
from schema.relay import decode_id


@strawberry.type
class TenantTotals:
    influencers: int
    accounts: int
    posts: int
    comments: int
    computed_at: datetime = strawberry.field(description="When these figures were computed.")


@strawberry.type
class CollectionQueries:
    @strawberry.field(extensions=[requires("collection:read")])
    async def collection_task(self, info: Info, id: relay.GlobalID) -> CollectionTask | None:
        task = await info.context.loaders.task_by_id.load(decode_id(id, "CollectionTask"))
        return CollectionTask.from_model(task) if task else None

    @strawberry.field(
        extensions=[requires("influencers:read")],
        description="The tenant's totals as last recounted by the analytics worker.",
    )
    async def tenant_totals(self, info: Info) -> TenantTotals | None:
        async with tenant_scope(info.context.tenant_schema):
            row = await analytics.latest_totals()
        if row is None:
            return None
        return TenantTotals(
            influencers=row.influencers,
            accounts=row.accounts,
            posts=row.posts,
            comments=row.comments,
            computed_at=row.computed_at,
        )
