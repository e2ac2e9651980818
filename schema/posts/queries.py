from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain.posts.service import PostFilter, posts
from schema.loading import tenant_scope
from schema.permissions import requires
from schema.posts.types import Post, PostConnection
from schema.relay import build_connection, decode_id


@strawberry.type
class PostQueries:
    @strawberry.field(
        extensions=[requires("posts:read")],
        description="Posts, newest first; by influencer, time range [since, until) and hashtag.",
    )
    async def posts(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        influencer_id: relay.GlobalID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        hashtag: str | None = None,
    ) -> PostConnection:
        async with tenant_scope(info.context.tenant_schema):
            page = await posts.list(
                filters=PostFilter(
                    influencer_id=decode_id(influencer_id, "Influencer", "influencerId")
                    if influencer_id
                    else None,
                    since=since,
                    until=until,
                    hashtag=hashtag,
                ),
                first=first,
                after=after,
            )
        return build_connection(PostConnection, page, Post.from_model)  # type: ignore[return-value]
