"""Ingest throughput: posts/s stored through the real write path (`posts.upsert_rows` inside
`tenant_tx`, in batches, as collection jobs call it) beside a raw asyncpg COPY of the same rows
into an empty copy of the table (same indexes and foreign key) in the same run, and into one
without the foreign key.

    python -m bench.ingest [--posts 100000] [--batch 5000]

Uses BENCH_DATABASE_URL (default: the machine's PostgreSQL) and a throw-away database.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench._util import run_async, temporary_database
from domain.collection.rules import ImportRow
from domain.posts.service import POST_STAGE_COLUMNS

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SCHEMA = "t_bench"
ACCOUNTS = 100
# The write path's own staging columns, plus the timestamp the upsert sets itself.
COLUMNS = (*POST_STAGE_COLUMNS, "collected_at")


def make_rows(n: int, seed: int = 7) -> list[ImportRow]:
    rnd = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    words = ["travel", "food", "style", "beauty", "fitness", "tech", "music", "art"]
    rows = []
    for i in range(n):
        tags = tuple(rnd.sample(words, 2))
        likes = rnd.randint(0, 50_000)
        text = f"post {i} " + " ".join(f"#{t}" for t in tags) + " @friend"
        rows.append(
            ImportRow(
                index=i,
                platform="instagram",
                handle=f"acct{i % ACCOUNTS}",
                external_id=f"ig{i}",
                url=f"https://www.instagram.com/p/ig{i}/",
                text=text,
                published_at=start + timedelta(seconds=37 * i),
                likes=likes,
                comments=likes // 40,
                shares=0,
                views=likes * 12,
                hashtags=tags,
                mentions=("friend",),
                raw={"id": f"ig{i}", "like_count": likes, "caption": text},
            )
        )
    return rows


async def setup(database_url: str) -> dict[tuple[str, str], tuple[int, int]]:
    from core.settings import get_settings
    from domain.influencers.models import Influencer, InfluencerAccount
    from tenants.db import init_db
    from tenants.migrate import migrate_public
    from tenants.provisioning import create_tenant
    from tenants.tx import tenant_tx

    os.environ["DATABASE_URL"] = database_url
    get_settings.cache_clear()
    await init_db(get_settings())
    await migrate_public()
    await create_tenant("bench", "Bench")
    accounts: dict[tuple[str, str], tuple[int, int]] = {}
    async with tenant_tx(SCHEMA):
        for a in range(ACCOUNTS):
            inf = await Influencer.create(display_name=f"Influencer {a}")
            acc = await InfluencerAccount.create(
                influencer=inf, platform="instagram", handle=f"acct{a}", followers=a
            )
            accounts[("instagram", f"acct{a}")] = (acc.id, inf.id)
    return accounts


async def ingest(rows: list[ImportRow], batch: int) -> tuple[float, int, int]:
    from domain.posts.service import posts
    from tenants.tx import tenant_tx

    created = updated = 0
    t0 = time.perf_counter()
    for start in range(0, len(rows), batch):
        async with tenant_tx(SCHEMA):
            result = await posts.upsert_rows(rows[start : start + batch])
        created += result.created
        updated += result.updated
    return time.perf_counter() - t0, created, updated


async def raw_copy(
    database_url: str,
    rows: list[ImportRow],
    accounts: dict[tuple[str, str], tuple[int, int]],
    table: str,
    foreign_key: bool,
) -> float:
    """Seconds for one COPY of `rows` into a new empty `LIKE post INCLUDING ALL` table (same
    columns, defaults and indexes). LIKE copies no foreign keys; with `foreign_key`, post's own
    one (account_id -> influencer_account, checked per row) is added, as on the real table."""
    import json

    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"CREATE TABLE {SCHEMA}.{table} (LIKE {SCHEMA}.post INCLUDING ALL)")
        if foreign_key:
            await conn.execute(
                f"ALTER TABLE {SCHEMA}.{table} ADD FOREIGN KEY (account_id)"
                f" REFERENCES {SCHEMA}.influencer_account (id) ON DELETE CASCADE"
            )
        now = datetime.now(UTC)
        records: list[tuple[Any, ...]] = []
        for r in rows:
            acc, inf = accounts[(r.platform, r.handle)]
            records.append(
                (
                    acc,
                    inf,
                    r.platform,
                    r.external_id,
                    r.url,
                    r.text,
                    list(r.hashtags),
                    list(r.mentions),
                    r.published_at,
                    r.likes,
                    r.comments,
                    r.shares,
                    r.views,
                    json.dumps(r.raw),
                    now,
                )
            )
        t0 = time.perf_counter()
        await conn.copy_records_to_table(
            table, schema_name=SCHEMA, records=records, columns=COLUMNS
        )
        elapsed = time.perf_counter() - t0
        count = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.{table}")
        assert count == len(rows), count
        return elapsed
    finally:
        await conn.close()


async def run(database_url: str, n: int, batch: int) -> str:
    from tenants.db import close_db

    accounts = await setup(database_url)
    rows = make_rows(n)
    try:
        seconds, created, updated = await ingest(rows, batch)
        assert (created, updated) == (n, 0), (created, updated)
        again, created2, updated2 = await ingest(rows, batch)  # a re-run adds nothing
        assert (created2, updated2) == (0, n), (created2, updated2)
        copy_seconds = await raw_copy(database_url, rows, accounts, "post_copy", True)
        bare_seconds = await raw_copy(database_url, rows, accounts, "post_copy_no_fk", False)
    finally:
        await close_db()
    ours, reupsert = n / seconds, n / again
    copy, bare = n / copy_seconds, n / bare_seconds
    print(f"write path (new rows):     {ours:10,.0f} posts/s  ({seconds:.2f} s for {n:,})")
    print(f"write path (same rows):    {reupsert:10,.0f} posts/s  ({again:.2f} s, all updates)")
    print(f"raw COPY (empty copy):     {copy:10,.0f} rows/s   ({copy_seconds:.2f} s)")
    print(f"raw COPY, no foreign key:  {bare:10,.0f} rows/s   ({bare_seconds:.2f} s)")
    return (
        f"RESULT posts={n} batch={batch} posts_per_s={ours:.0f} reupsert_per_s={reupsert:.0f} "
        f"copy_rows_per_s={copy:.0f} ratio={ours / copy:.2f} "
        f"copy_no_fk_rows_per_s={bare:.0f} ratio_no_fk={ours / bare:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    args = parser.parse_args(argv)
    server_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER_URL)
    with temporary_database(server_url, prefix="bench_ingest") as database_url:
        line = run_async(run(database_url, args.posts, args.batch))
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
