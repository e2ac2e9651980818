"""PostService.upsert_rows: new posts are COPYed straight into `post`, stored ones are upserted
from a staging table, and a post another transaction stored in between falls back to the upsert
(no duplicate, no error, nothing lost)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tortoise import connections

from domain.collection.rules import ImportRow
from domain.influencers.models import Influencer, InfluencerAccount
from domain.posts.models import Post
from domain.posts.service import posts
from tenants.tx import tenant_tx
from tests.conftest import Tenant

START = datetime(2026, 3, 1, tzinfo=UTC)
_WAITING_ON_A_TRANSACTION = """
SELECT count(*) AS n FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'transactionid'
"""


def row(i: int, likes: int = 10, handle: str = "writer") -> ImportRow:
    return ImportRow(
        index=i,
        platform="instagram",
        handle=handle,
        external_id=f"wp{i}",
        url=f"https://www.instagram.com/p/wp{i}/",
        text=f"post {i} #write",
        published_at=START + timedelta(hours=i),
        likes=likes,
        comments=1,
        shares=0,
        views=likes * 10,
        hashtags=("write",),
        mentions=(),
        raw={"id": f"wp{i}", "like_count": likes},
    )


async def track(schema: str) -> int:
    async with tenant_tx(schema):
        influencer = await Influencer.create(display_name="Writer")
        await InfluencerAccount.create(influencer=influencer, platform="instagram", handle="writer")
    return influencer.id


async def test_new_and_stored_posts_in_one_batch(tenant: Tenant, other_tenant: Tenant) -> None:
    influencer_id = await track(tenant.schema)
    async with tenant_tx(tenant.schema):
        first = await posts.upsert_rows([row(0), row(1)])
    assert (first.created, first.updated) == (2, 0)

    # Two stored (one of them twice: the later row wins), two new, one of an unknown account.
    batch = [row(1, likes=11), row(0, likes=5), row(2), row(0, likes=7), row(3), row(4, handle="x")]
    async with tenant_tx(tenant.schema):
        result = await posts.upsert_rows(batch)
    assert (result.created, result.updated, result.skipped) == (2, 3, 1)
    assert result.errors == [(4, "no tracked instagram account @x")]

    async with tenant_tx(tenant.schema):
        stored = {p.external_id: p for p in await Post.all()}
    assert sorted(stored) == ["wp0", "wp1", "wp2", "wp3"]
    assert (stored["wp0"].likes, stored["wp1"].likes, stored["wp2"].likes) == (7, 11, 10)
    # The ids reported as created are the stored rows', with their influencer.
    new_ids = {(stored[k].id, influencer_id) for k in ("wp2", "wp3")}
    assert set(result.created_posts) == new_ids
    for p in stored.values():
        assert p.collected_at is not None and p.analyzed_at is None
        assert p.raw_json["id"] == p.external_id and p.hashtags == ["write"]

    async with tenant_tx(other_tenant.schema):
        assert await Post.all().count() == 0


async def test_post_stored_by_another_transaction_meanwhile_is_upserted(tenant: Tenant) -> None:
    await track(tenant.schema)
    first_copied = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> tuple[int, int]:
        async with tenant_tx(tenant.schema):
            result = await posts.upsert_rows([row(i, likes=1) for i in range(3)])
            first_copied.set()
            await release_first.wait()  # holds its uncommitted rows (and their index entries)
        return result.created, result.updated

    async def second() -> tuple[int, int]:
        await first_copied.wait()
        async with tenant_tx(tenant.schema):
            # Sees none of the first's rows, so it COPYs all three as new; the COPY waits on the
            # unique index, fails when the first commits, and the batch is upserted instead.
            result = await posts.upsert_rows([row(i, likes=2) for i in range(2, 5)])
        return result.created, result.updated

    async def release_when_second_waits() -> None:
        await first_copied.wait()
        db = connections.get("default")
        try:
            for _ in range(1000):  # PostgreSQL has no event to await: poll, for at most ~20 s
                if (await db.execute_query_dict(_WAITING_ON_A_TRANSACTION))[0]["n"]:
                    break  # the second's COPY now waits on the first's uncommitted rows
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the second transaction never waited on the first")
        finally:
            release_first.set()

    outcomes = await asyncio.gather(first(), second(), release_when_second_waits())
    assert outcomes[0] == (3, 0)
    assert outcomes[1] == (2, 1)  # wp3, wp4 new; wp2 was stored by the first meanwhile

    async with tenant_tx(tenant.schema):
        stored = {p.external_id: p.likes for p in await Post.all()}
    assert stored == {"wp0": 1, "wp1": 1, "wp2": 2, "wp3": 2, "wp4": 2}
