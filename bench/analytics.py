"""Analytics pass throughput: posts/s through the whole pass (language detection, sentiment,
keywords, the bulk UPDATEs, then every influencer's metrics and scores stored) for N posts in a
fresh tenant, beside the bare `sentiment_model.predict` rate on the same texts in the same run.

    python -m bench.analytics [--posts 100000] [--batch 1000] [--influencers 100]

Texts: the shared tweets in ../shared/data/sentiment (en and pt) when present, otherwise the
in-repo samples (tests/analytics/data/sentiment) and the demo post templates; half English,
half Portuguese, cycled to N posts. Uses BENCH_DATABASE_URL (default: the machine's
PostgreSQL) and a throw-away database. Prints `RESULT ... ratio=<pass rate / predict rate>`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import time
from datetime import UTC, datetime, timedelta
from itertools import chain, zip_longest
from pathlib import Path

import asyncpg

from bench._util import run_async, temporary_database
from domain.posts.service import POST_STAGE_COLUMNS

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SCHEMA = "t_bench"
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "sentiment"
IN_REPO = ROOT / "tests" / "analytics" / "data" / "sentiment"


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _csv_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return [r["text"].strip() for r in csv.DictReader(f) if (r.get("text") or "").strip()]


def load_texts() -> tuple[str, list[tuple[str, str]]]:
    """(source, [(language the text was collected in, text)]), alternating en and pt."""
    base = SHARED if (SHARED / "en").is_dir() and (SHARED / "pt").is_dir() else IN_REPO
    en = list(chain.from_iterable(_lines(p) for p in sorted((base / "en").glob("*_text.txt"))))
    pt = list(chain.from_iterable(_lines(p) for p in sorted((base / "pt").glob("*_text.txt"))))
    pt += chain.from_iterable(_csv_texts(p) for p in sorted((base / "pt").glob("*.csv")))
    source = "shared tweets" if base == SHARED else "in-repo samples + demo templates"
    if base == IN_REPO:
        from domain.demo.rules import _TOPICS

        en += [t for topic in _TOPICS.values() for t in topic.en]
        pt += [t for topic in _TOPICS.values() for t in topic.pt]
    mixed = [
        pair
        for both in zip_longest(en, pt)
        for pair in zip(("en", "pt"), both, strict=True)
        if pair[1] is not None
    ]
    return source, mixed


async def setup(database_url: str, n: int, influencers: int, texts: list[str]) -> None:
    """A fresh tenant with `influencers` influencers (one account each, 120 days of follower
    snapshots) and `n` posts over the last 180 days, written with COPY (not timed)."""
    from core.settings import get_settings
    from tenants.db import init_db
    from tenants.migrate import migrate_public
    from tenants.provisioning import create_tenant

    os.environ["DATABASE_URL"] = database_url
    get_settings.cache_clear()
    await init_db(get_settings())
    await migrate_public()
    await create_tenant("bench", "Bench")
    rnd = random.Random(11)
    now = datetime.now(UTC)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"SET search_path TO {SCHEMA}")
        followers = [int(10 ** rnd.uniform(3, 7)) for _ in range(influencers)]
        await conn.copy_records_to_table(
            "influencer",
            records=[(f"Influencer {i}", "", followers[i], now, now) for i in range(influencers)],
            columns=("display_name", "notes", "total_followers", "created_at", "updated_at"),
        )
        inf_ids = [r["id"] for r in await conn.fetch("SELECT id FROM influencer ORDER BY id")]
        await conn.copy_records_to_table(
            "influencer_account",
            records=[
                (inf, "instagram", f"acct{i}", followers[i], False, "active", now, now)
                for i, inf in enumerate(inf_ids)
            ],
            columns=(
                "influencer_id",
                "platform",
                "handle",
                "followers",
                "verified",
                "status",
                "created_at",
                "updated_at",
            ),
        )
        accounts = [
            (r["id"], r["influencer_id"], r["followers"])
            for r in await conn.fetch(
                "SELECT id, influencer_id, followers FROM influencer_account ORDER BY id"
            )
        ]
        await conn.copy_records_to_table(
            "follower_snapshot",
            records=[
                (acc, max(0, f - int(f * 0.001) * d), now - timedelta(days=d))
                for acc, _, f in accounts
                for d in range(120)
            ],
            columns=("account_id", "followers", "taken_at"),
        )
        records = []
        for i in range(n):
            acc, inf, f = accounts[i % len(accounts)]
            likes = int(f * rnd.uniform(0.005, 0.05))
            records.append(
                (
                    acc,
                    inf,
                    "instagram",
                    f"ig{i}",
                    "",
                    texts[i % len(texts)],
                    [],
                    [],
                    now - timedelta(seconds=rnd.randint(0, 180 * 86_400)),
                    likes,
                    likes // 30,
                    0,
                    likes * 10,
                    json.dumps({}),
                    now,
                )
            )
        await conn.copy_records_to_table(
            "post",
            records=records,
            columns=(*POST_STAGE_COLUMNS, "collected_at"),
        )
    finally:
        await conn.close()


def predict_baseline(pairs: list[tuple[str, str]]) -> tuple[float, float]:
    """(wall, CPU) seconds of `sentiment_model.predict` over the texts, per known language
    (no detection, no keywords, no database): the model alone."""
    from domain.analytics.sentiment import sentiment_model

    by_lang: dict[str, list[str]] = {}
    for lang, text in pairs:
        by_lang.setdefault(lang, []).append(text)
    for lang in by_lang:
        sentiment_model.predict(["warm up"], lang)  # loads the artifacts outside the timing
    t0, c0 = time.perf_counter(), time.process_time()
    for lang, texts in by_lang.items():
        for start in range(0, len(texts), 1000):
            sentiment_model.predict(texts[start : start + 1000], lang)
    return time.perf_counter() - t0, time.process_time() - c0


async def run(database_url: str, n: int, batch: int, influencers: int) -> str:
    from redis.asyncio import Redis

    from core.runtime import runtime
    from domain.analytics.sentiment import sentiment_model
    from jobs.analytics import analyze_tenant, compute_scores
    from tenants.db import close_db

    # score_updated events are published as in the worker (to a channel nobody listens to)
    runtime.redis = Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    source, corpus = load_texts()
    pairs = [corpus[i % len(corpus)] for i in range(n)]
    await setup(database_url, n, influencers, [t for _, t in pairs])
    try:
        for lang in ("en", "pt"):
            sentiment_model.predict(["warm up"], lang)  # the artifacts load once per process
        t0, c0 = time.perf_counter(), time.process_time()
        result = await analyze_tenant(SCHEMA, batch=batch, scores=False)
        t1 = time.perf_counter()
        scored = await compute_scores(SCHEMA, sorted(result.influencer_ids))
        t2, c2 = time.perf_counter(), time.process_time()
        assert result.posts == n and scored == influencers, (result.posts, scored)
        again = await analyze_tenant(SCHEMA, batch=batch)  # incremental: nothing left
        assert again.posts == 0
    finally:
        await close_db()
        await runtime.redis.aclose()
        runtime.redis = None
    predict_s, predict_cpu = predict_baseline(pairs)
    pass_cpu = c2 - c0  # this process only (PostgreSQL's own CPU is not in it)
    analyse_s, scores_s, total_s = t1 - t0, t2 - t1, t2 - t0
    pass_rate, predict_rate = n / total_s, n / predict_s
    print(f"texts: {source}, {len(corpus):,} distinct, cycled to {n:,} posts (en/pt alternating)")
    rows = [
        ("analysis (lang+sentiment+keywords+UPDATE)", f"{n / analyse_s:9,.0f} posts/s", analyse_s),
        (f"metrics + scores, {influencers} influencers", "", scores_s),
        ("whole pass", f"{pass_rate:9,.0f} posts/s", total_s),
        ("baseline sentiment_model.predict alone", f"{predict_rate:9,.0f} texts/s", predict_s),
        ("whole pass, per CPU second of this process", f"{n / pass_cpu:9,.0f} posts/s", pass_cpu),
        ("baseline, per CPU second", f"{n / predict_cpu:9,.0f} texts/s", predict_cpu),
    ]
    for label, rate, seconds in rows:
        print(f"{label:44} {rate:17} ({seconds:.2f} s)")
    return (
        f"RESULT posts={n} batch={batch} influencers={influencers} "
        f"pass_posts_per_s={pass_rate:.0f} analysis_posts_per_s={n / analyse_s:.0f} "
        f"scores_s={scores_s:.2f} predict_texts_per_s={predict_rate:.0f} "
        f"pass_cpu_posts_per_s={n / pass_cpu:.0f} predict_cpu_texts_per_s={n / predict_cpu:.0f} "
        f"ratio={pass_rate / predict_rate:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics", description=__doc__)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--influencers", type=int, default=100)
    args = parser.parse_args(argv)
    server_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER_URL)
    with temporary_database(server_url, prefix="bench_analytics") as database_url:
        line = run_async(run(database_url, args.posts, args.batch, args.influencers))
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
