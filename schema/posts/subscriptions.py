"""Live posts: `postAdded` as each post is stored (imports and collections alike)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry import relay
from strawberry.types import Info

from core import hub
from domain import events
from schema.context import subscription_tenant
from schema.dataloaders import Loaders
from schema.permissions import requires
from schema.posts.types import Post
from schema.relay import decode_id


@strawberry.type
class PostSubscriptions:
    @strawberry.subscription(
        extensions=[requires("posts:read")],
        description="Posts as they are stored, optionally for one influencer.",
    )
    async def post_added(
        self, info: Info, influencer_id: relay.GlobalID | None = None
    ) -> AsyncGenerator[Post, None]:
        schema = subscription_tenant(info)
        wanted = decode_id(influencer_id, "Influencer", "influencerId") if influencer_id else None
        async with info.context.hub.subscribe(hub.channel(schema, events.POST_ADDED)) as feed:
            async for event in feed:
                if wanted is not None and event.get("influencer_id") != wanted:
                    continue
                info.context.loaders = Loaders(schema, cache=False)
                row = await info.context.loaders.post_by_id.load(int(event["id"]))
                if row is not None:
                    yield Post.from_model(row)
