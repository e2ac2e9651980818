"""Live updates: Redis pub/sub (one connection per process) fanned out to subscribers.

Subscriptions hold no transaction: each event's data is read through fresh dataloaders that
open a short `tenant_tx` of the subscriber's own tenant.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry import relay
from strawberry.types import Info

from core import hub
from core.hub import REPLAY_LATEST
from domain import events
from domain.collection.connections import connections
from schema.collection.types import CollectionTask, PlatformConnection
from schema.context import subscription_tenant
from schema.dataloaders import Loaders
from schema.permissions import requires
from schema.relay import decode_id
from tenants.tx import tenant_tx


@strawberry.type
class CollectionSubscriptions:
    @strawberry.subscription(
        extensions=[requires("collection:read")],
        description="A collection task's progress until it finishes.",
        # A state, not an event stream: a subscriber joining a running multiplexed group
        # gets the group's latest result at once (api/graphql/ws.py).
        metadata={REPLAY_LATEST: True},
    )
    async def collection_task_updated(
        self, info: Info, id: relay.GlobalID
    ) -> AsyncGenerator[CollectionTask, None]:
        schema = subscription_tenant(info)
        task_id = decode_id(id, "CollectionTask")
        channel = hub.channel(schema, events.COLLECTION_TASK_UPDATED)
        async with info.context.hub.subscribe(channel) as feed:
            info.context.loaders = Loaders(schema, cache=False)
            current = await info.context.loaders.task_by_id.load(task_id)
            if current is None:
                return
            yield CollectionTask.from_model(current)  # the state now, then every change
            if current.status in ("succeeded", "failed"):
                return
            async for event in feed:
                if event.get("id") != task_id:
                    continue
                info.context.loaders = Loaders(schema, cache=False)
                row = await info.context.loaders.task_by_id.load(task_id)
                if row is None:
                    return
                yield CollectionTask.from_model(row)
                if row.status in ("succeeded", "failed"):
                    return

    @strawberry.subscription(
        extensions=[requires("collection:read")],
        description="A platform refused the tenant's credential: reconnect it.",
    )
    async def platform_connection_broken(
        self, info: Info
    ) -> AsyncGenerator[PlatformConnection, None]:
        schema = subscription_tenant(info)
        channel = hub.channel(schema, events.PLATFORM_CONNECTION_BROKEN)
        async with info.context.hub.subscribe(channel) as feed:
            async for event in feed:
                connection_id = int(event["id"])
                async with tenant_tx(schema):
                    row = (await connections.by_ids([connection_id])).get(connection_id)
                if row is not None:
                    yield PlatformConnection.from_model(row)
