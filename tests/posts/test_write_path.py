"""The bulk write path (COPY into staging + INSERT .. ON CONFLICT) for comments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from domain.posts.models import Comment
from domain.posts.service import posts
from tenants.tx import tenant_tx
from tests.collection.test_import import add_accounts, jsonl, rows_for
from tests.conftest import GQL, Tenant, import_file, run_jobs


@dataclass(frozen=True)
class C:
    platform: str
    external_id: str
    post_external_id: str
    author: str = "fan"
    text: str = "nice"
    likes: int = 0
    published_at: datetime | None = datetime(2026, 11, 2, tzinfo=UTC)


async def test_comments_upsert_by_platform_id_skip_unknown_posts_and_stay_in_tenant(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    for t in (tenant, other_tenant):
        await add_accounts(gql, t.token, ["cam"])
        await import_file(gql, t.token, "p.jsonl", jsonl(rows_for(["cam"], 3, prefix="w")))
    await run_jobs()
    batch = [
        C("instagram", "c1", "w0", likes=1),
        C("instagram", "c2", "w0"),
        C("instagram", "c3", "w1"),
        C("instagram", "c9", "not-stored"),
        C("instagram", "c1", "w0", likes=5),  # the later copy wins
    ]
    async with tenant_tx(tenant.schema):
        first = await posts.upsert_comments(batch)
    assert (first.created, first.updated, first.skipped) == (3, 1, 1)
    async with tenant_tx(tenant.schema):
        again = await posts.upsert_comments(batch)
        stored = sorted(
            await Comment.all().values_list("external_id", "likes", "post__external_id")
        )
    assert (again.created, again.updated, again.skipped) == (0, 4, 1)
    assert stored == [("c1", 5, "w0"), ("c2", 0, "w0"), ("c3", 0, "w1")]
    async with tenant_tx(other_tenant.schema):  # B has posts w0, w1 too: nothing attached
        assert await Comment.all().count() == 0
