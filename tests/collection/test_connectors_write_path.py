"""Connector output goes through the import's write path: pages of PostData become ImportRows
upserted by PostService.upsert_rows in a tenant transaction; again = nothing new; another
tenant sees nothing."""

from __future__ import annotations

from domain.collection.connectors import AccountRef
from domain.influencers.models import Influencer, InfluencerAccount
from domain.posts.models import Comment, Post
from domain.posts.service import posts
from tenants.tx import tenant_tx
from tests.collection.conftest import Kit, load, reply
from tests.collection.test_connectors_x import tweet_pages
from tests.conftest import Tenant


async def collect(kit: Kit, schema: str) -> tuple[int, int, int]:
    """One collection run, committing each page with its rows (cursor kept by the caller)."""
    connector = kit.connector("x", {"bearer_token": "t"}, base_url="https://x.test")
    account = AccountRef("x", "xdevelopers", "2244994945")
    created = updated = skipped = 0
    cursor = None
    while True:
        page = await connector.fetch_posts(account, cursor)
        async with tenant_tx(schema):
            result = await posts.upsert_rows([p.to_import_row(i) for i, p in enumerate(page.items)])
        created, updated = created + result.created, updated + result.updated
        skipped += result.skipped + len(page.errors)
        if page.done:
            return created, updated, skipped
        cursor = page.next_cursor


async def test_collected_posts_upsert_idempotently_per_tenant(
    kit: Kit, tenant: Tenant, other_tenant: Tenant
) -> None:
    kit.api.on("GET", "/2/users/2244994945/tweets", tweet_pages)
    async with tenant_tx(tenant.schema):
        influencer = await Influencer.create(display_name="X Developers")
        await InfluencerAccount.create(
            influencer=influencer, platform="x", handle="xdevelopers", external_id="2244994945"
        )

    assert await collect(kit, tenant.schema) == (3, 0, 1)  # 3 posts, 1 malformed item skipped
    assert await collect(kit, tenant.schema) == (0, 3, 1)  # the same run again adds nothing

    async with tenant_tx(tenant.schema):
        rows = await Post.all().order_by("-published_at")
        assert [p.external_id for p in rows] == [
            "1860000000000000001",
            "1860000000000000002",
            "1860000000000000003",
        ]
        first = rows[0]
        assert (first.platform, first.likes, first.comments, first.shares, first.views) == (
            "x",
            900,
            33,
            132,
            250_000,
        )
        assert first.hashtags == ["developers"] and first.mentions == ["xeng"]
        assert first.raw_json["public_metrics"]["bookmark_count"] == 40  # the platform item
        assert first.influencer_id == influencer.id
    async with tenant_tx(other_tenant.schema):
        assert await Post.all().count() == 0

    # The other tenant tracks no such account: its run stores nothing and says why.
    assert await collect(kit, other_tenant.schema) == (0, 0, 4)
    async with tenant_tx(other_tenant.schema):
        assert await Post.all().count() == 0


async def test_collected_comments_attach_to_collected_posts(
    kit: Kit, tenant: Tenant, other_tenant: Tenant
) -> None:
    kit.api.on("GET", "/youtube/v3/channels", reply(load("youtube", "channels_handle")))
    kit.api.on("GET", "/youtube/v3/playlistItems", reply(load("youtube", "playlist_items_page2")))
    kit.api.on("GET", "/youtube/v3/videos", reply(load("youtube", "videos_page1")))
    kit.api.on("GET", "/youtube/v3/commentThreads", reply(load("youtube", "comment_threads")))
    connector = kit.connector("youtube", {"api_key": "k"}, base_url="https://yt.test/youtube/v3")
    async with tenant_tx(tenant.schema):
        influencer = await Influencer.create(display_name="MrBeast")
        await InfluencerAccount.create(influencer=influencer, platform="youtube", handle="mrbeast")

    page = await connector.fetch_posts(AccountRef("youtube", "mrbeast"))
    comments = await connector.fetch_comments(page.items[0])
    async with tenant_tx(tenant.schema):
        stored = await posts.upsert_rows([p.to_import_row(i) for i, p in enumerate(page.items)])
        result = await posts.upsert_comments(comments.items)
    assert stored.created == 2
    assert (result.created, result.skipped, len(comments.errors)) == (1, 0, 1)
    async with tenant_tx(tenant.schema):
        rows = await Comment.all().values_list(
            "external_id", "author", "likes", "post__external_id"
        )
    assert rows == [("UgzThread0001", "@fan1", 1200, "vid00000001")]
    async with tenant_tx(other_tenant.schema):  # B has no such post: nothing attaches
        in_b = await posts.upsert_comments(comments.items)
        assert (in_b.created, in_b.skipped) == (0, 1)
        assert await Comment.all().count() == 0
