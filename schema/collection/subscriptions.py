"""Live updates: Redis pub/sub (one connection per process) fanned out to subscribers.

Subscriptions hold no transaction: each event's data is read through fresh dataloaders that
open a short `tenant_tx` of the subscriber's own tenant.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry import relay
from strawberry.types import Info

from core.hub import REPLAY_LATEST
from domain import events
from domain.collection.models import PlatformConnection as PlatformConnectionRow
from schema.collection.types import CollectionTask, PlatformConnection
from schema.context import subscription_tenant
from schema.dataloaders import Loaders
from schema.permissions import requires
from schema.posts.types import Post
from schema.relay import decode_id
from tenants.tx import tenant_tx


@strawberry.type
class CollectionSubscriptions:
    @strawberry.subscription(
        extensions=[requires("posts:read")],
        description="Posts as they are stored, optionally for one influencer.",
    )
    async def post_added(
        self, info: Info, influencer_id: relay.GlobalID | None = None
    ) -> AsyncGenerator[Post, None]:
        schema = subscription_tenant(info)
        wanted = decode_id(influencer_id, "Influencer", "influencerId") if influencer_id else None
        async with info.context.hub.subscribe(events.channel(schema, events.POST_ADDED)) as feed:
            async for event in feed:
                if wanted is not None and event.get("influencer_id") != wanted:
                    continue
                info.context.loaders = Loaders(schema, cache=False)
                row = await info.context.loaders.post_by_id.load(int(event["id"]))
                if row is not None:
                    yield Post.from_model(row)

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
        channel = events.channel(schema, events.COLLECTION_TASK_UPDATED)
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
        channel = events.channel(schema, events.PLATFORM_CONNECTION_BROKEN)
        async with info.context.hub.subscribe(channel) as feed:
            async for event in feed:
                async with tenant_tx(schema):
                    row = await PlatformConnectionRow.get_or_none(id=int(event["id"]))
                if row is not None:
                    yield PlatformConnection.from_model(row)
