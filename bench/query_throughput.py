"""Benchmark: query throughput with two uvicorn workers, and p99 at half the maximum.

    python -m bench.query_throughput [--seconds 10] [--warmup 3] [--concurrency 50]

The issue's measurement: `influencers(first: 50)` with two nested relations (accounts, and
each account's recent posts), two uvicorn workers per server on this machine:

1. creates a database `bench_<random>` (server: BENCH_DATABASE_URL), signs up a tenant and
   adds 200 influencers x 2 accounts (the app's own services, as `bench.influencers_query`)
   and 5 posts per account;
2. starts the real app (`trendscope api --workers 2`) and a plain Starlette + asyncpg endpoint
   (2 workers) that answers the same JSON with three hand-written statements in one
   transaction; checks the two answers are the same JSON;
3. **maximum**: closed loop, `--concurrency` keep-alive connections, `--warmup` s then
   `--seconds` s, each server in turn (`bench._util.run_load`);
   (`--resolvers`: the same query with a no-op `@include(if: true)`, which keeps it out of
   the compiled subset, so the app resolves it field by field);
4. **latency at a fixed load**: open loop at half of each server's own maximum, constant
   arrival rate (`bench._util.run_fixed_rate`; latency counted from the scheduled send time),
   `--seconds` s after `--warmup` s;
5. prints a table and one `RESULT` line: `graphql_max_rps`, `plain_max_rps`, `ratio`,
   `cpu_ratio` (plain server CPU per request / app's), `graphql_rate`, `graphql_p50_ms`,
   `graphql_p99_ms` (at half max), the same for plain, `workers`, `errors`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bench._util import (
    PRODUCTION_ENV,
    LoadResult,
    RateResult,
    Server,
    free_port,
    run_async,
    run_fixed_rate,
    run_load,
    sigterm_as_keyboard_interrupt,
    start_server,
    temporary_database,
)
from bench.influencers_query import Seeded, database_backends, global_id, seed

WORKERS = 2
PAGE = 50
POSTS_PER_ACCOUNT = 5
POST_LIMIT = 3
QUERY = (
    "{ influencers(first: 50) { edges { node { id displayName totalFollowers "
    "accounts { platform handle followers recentPosts(limit: 3) { id likes views } } } } } }"
)
# The same query with a no-op directive: outside the compiled subset, so the app resolves it
# field by field through graphql-core and the dataloaders (`--resolvers`).
QUERY_RESOLVERS = QUERY.replace("node { id ", "node { id @include(if: true) ", 1)
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

SEED_POSTS = f"""
INSERT INTO post (account_id, influencer_id, platform, external_id, url, text, hashtags,
                  mentions, published_at, likes, comments, shares, views, raw_json, collected_at)
SELECT a.id, a.influencer_id, a.platform, a.handle || '-' || n, '', 'post ' || n, '{{}}', '{{}}',
       now() - n * interval '1 hour', n * 10, 0, 0, n * 100, '{{}}', now()
FROM influencer_account a CROSS JOIN generate_series(1, {POSTS_PER_ACCOUNT}) n
"""


# --- the plain endpoint -----------------------------------------------------------------------

PLAIN_INFLUENCERS = (
    "SELECT id, display_name, total_followers FROM influencer ORDER BY id DESC LIMIT $1"
)
PLAIN_ACCOUNTS = (
    "SELECT id, influencer_id, platform, handle, followers FROM influencer_account "
    "WHERE influencer_id = ANY($1::bigint[]) ORDER BY id"
)
PLAIN_POSTS = """
SELECT account_id, id, likes, views FROM (
    SELECT account_id, id, likes, views, row_number() OVER (
        PARTITION BY account_id ORDER BY published_at DESC, id DESC) AS rn
    FROM post WHERE account_id = ANY($1::bigint[])
) ranked WHERE rn <= $2 ORDER BY account_id, rn
"""


def plain_app() -> Starlette:
    """Starlette + asyncpg, the same JSON by hand (DSN and schema from PLAIN_DSN/PLAIN_SCHEMA;
    a factory, so that uvicorn can start it in several workers)."""
    dsn, schema = os.environ["PLAIN_DSN"], os.environ["PLAIN_SCHEMA"]
    if not re.fullmatch(r"t_[a-z0-9_]{1,50}", schema):
        raise ValueError(f"invalid tenant schema name: {schema!r}")
    set_search_path = f'SET LOCAL search_path TO "{schema}", public'

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10, statement_cache_size=100)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    async def influencers(request: Request) -> Response:
        await request.json()
        pool: asyncpg.Pool = request.app.state.pool
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(set_search_path)
            rows = await conn.fetch(PLAIN_INFLUENCERS, PAGE)
            accounts = await conn.fetch(PLAIN_ACCOUNTS, [r["id"] for r in rows])
            posts = await conn.fetch(PLAIN_POSTS, [a["id"] for a in accounts], POST_LIMIT)
        by_account: dict[int, list[dict[str, Any]]] = {a["id"]: [] for a in accounts}
        for p in posts:
            by_account[p["account_id"]].append(
                {"id": global_id("Post", p["id"]), "likes": p["likes"], "views": p["views"]}
            )
        by_influencer: dict[int, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
        for a in accounts:
            by_influencer[a["influencer_id"]].append(
                {
                    "platform": a["platform"].upper(),
                    "handle": a["handle"],
                    "followers": a["followers"],
                    "recentPosts": by_account[a["id"]],
                }
            )
        edges = [
            {
                "node": {
                    "id": global_id("Influencer", r["id"]),
                    "displayName": r["display_name"],
                    "totalFollowers": r["total_followers"],
                    "accounts": by_influencer[r["id"]],
                }
            }
            for r in rows
        ]
        body = orjson.dumps({"data": {"influencers": {"edges": edges}}})
        return Response(body, media_type="application/json")

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/graphql", influencers, methods=["POST"]), Route("/healthz", healthz)],
        lifespan=lifespan,
    )


def serve_plain(port: int) -> None:
    import uvicorn

    uvicorn.run(
        "bench.query_throughput:plain_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=WORKERS,
        log_level="warning",
    )


# --- the run ----------------------------------------------------------------------------------


async def seed_posts(database_url: str, schema: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
            await conn.execute(SEED_POSTS)
    finally:
        await conn.close()


def check_response(response: httpx.Response) -> str | None:
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    try:
        payload = response.json()
        edges = payload["data"]["influencers"]["edges"]
    except (ValueError, KeyError, TypeError):
        return f"unexpected body: {response.text[:200]}"
    if payload.get("errors"):
        return f"errors: {payload['errors']}"[:200]
    if len(edges) != PAGE:
        return f"{len(edges)} edges, expected {PAGE}"
    return None


QUERY_IN_USE = QUERY


def request_parts(token: str) -> tuple[bytes, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return json.dumps({"query": QUERY_IN_USE}).encode(), headers


def server_pids(server: Server) -> list[int]:
    """The uvicorn supervisor and its worker processes."""
    import psutil

    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(server.proc.pid)
        return [proc.pid, *(c.pid for c in proc.children(recursive=True))]
    return [server.proc.pid]


def maximum(server: Server, database: str, token: str, args: argparse.Namespace) -> LoadResult:
    body, headers = request_parts(token)
    return run_async(
        run_load(
            server.url + "/graphql",
            body=body,
            headers=headers,
            check=check_response,
            concurrency=args.concurrency,
            seconds=args.seconds,
            warmup=args.warmup,
            server_pids=server_pids(server),
            database_pids=lambda: database_backends(database),
        )
    )


def at_rate(server: Server, token: str, rate: float, args: argparse.Namespace) -> RateResult:
    body, headers = request_parts(token)
    return run_async(
        run_fixed_rate(
            server.url + "/graphql",
            requests=lambda i: (body, headers),
            check=check_response,
            rate=rate,
            seconds=args.seconds,
            warmup=args.warmup,
        )
    )


@contextlib.contextmanager
def servers(
    database_url: str, redis_url: str, seeded: Seeded, log_dir: Path, rate_limits: bool = False
) -> Iterator[tuple[Server, Server]]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": seeded.secret_key,
        **PRODUCTION_ENV,
        # Off by default: measure throughput, not the plan's hourly cap. `--rate-limits` keeps
        # them on (the tenant is then on Enterprise) to measure what the limiter costs.
        "RATE_LIMITS__ENABLED": "true" if rate_limits else "false",
        "RATE_LIMIT_KEY_PREFIX": f"bench-{os.getpid()}",
        "PLAIN_DSN": database_url,
        "PLAIN_SCHEMA": seeded.schema,
    }
    started: list[Server] = []
    try:
        port = free_port()
        app_args = ["-m", "api.cli", "api", "--port", str(port), "--workers", str(WORKERS)]
        started.append(start_server("graphql", app_args, port=port, env=env, log_dir=log_dir))
        port = free_port()
        plain_args = ["-m", "bench.query_throughput", "--serve-plain", str(port)]
        started.append(start_server("plain", plain_args, port=port, env=env, log_dir=log_dir))
        for server in started:
            server.wait_ready("/healthz")
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


async def _enterprise(database_url: str, schema: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE public.tenant SET plan = 'enterprise' WHERE schema_name = $1", schema
        )
    finally:
        await conn.close()


def run(args: argparse.Namespace) -> int:
    server_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER_URL)
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    with (
        sigterm_as_keyboard_interrupt(),
        temporary_database(server_url) as database_url,
        tempfile.TemporaryDirectory(prefix="bench-logs-") as log_dir,
    ):
        database = database_url.rsplit("/", 1)[-1]
        print(f"setup: database {database}...", file=sys.stderr)
        seeded = run_async(seed(database_url, redis_url))
        run_async(seed_posts(database_url, seeded.schema))
        if args.rate_limits:
            run_async(_enterprise(database_url, seeded.schema))
        with servers(database_url, redis_url, seeded, Path(log_dir), args.rate_limits) as (
            app,
            plain,
        ):
            token = seeded.access_token
            answers = []
            for server in (app, plain):
                body, headers = request_parts(token)
                r = httpx.post(server.url + "/graphql", content=body, headers=headers, timeout=30)
                if (problem := check_response(r)) is not None:
                    raise RuntimeError(f"{server.name}: {problem}\n{server.log_tail()}")
                answers.append(r.json())
            # Same data; the app's answer also carries extensions.cost (the abuse limits).
            if answers[0].get("data") != answers[1].get("data"):
                raise RuntimeError("the plain endpoint's answer differs from the GraphQL one")
            print("maximum: graphql...", file=sys.stderr)
            g_max = maximum(app, database, token, args)
            print("maximum: plain...", file=sys.stderr)
            p_max = maximum(plain, database, token, args)
            print(f"fixed rate: graphql at {g_max.rps / 2:.0f}/s...", file=sys.stderr)
            g_half = at_rate(app, token, max(1.0, g_max.rps / 2), args)
            print(f"fixed rate: plain at {p_max.rps / 2:.0f}/s...", file=sys.stderr)
            p_half = at_rate(plain, token, max(1.0, p_max.rps / 2), args)

    ratio = g_max.rps / p_max.rps if p_max.rps else 0.0
    g_cpu = g_max.per_request_ms(g_max.server_cpu_s)
    p_cpu = p_max.per_request_ms(p_max.server_cpu_s)
    cpu_ratio = p_cpu / g_cpu if g_cpu else 0.0
    errors = g_max.errors + p_max.errors + g_half.errors + p_half.errors
    print(
        f"influencers(first: {PAGE}) {{ accounts {{ recentPosts(limit: {POST_LIMIT}) }} }}, "
        f"{WORKERS} uvicorn workers per server, {os.cpu_count()} CPUs; "
        f"closed loop x{args.concurrency}, then open loop at half of each maximum"
    )
    for name, m, h in (("graphql (app)", g_max, g_half), ("plain", p_max, p_half)):
        print(
            f"  {name:14} max {m.rps:7.1f} req/s (p50 {m.p(50):.0f} ms)  "
            f"server CPU {m.per_request_ms(m.server_cpu_s):.2f} ms/req, "
            f"postgres {m.per_request_ms(m.database_cpu_s):.2f}, "
            f"client {m.per_request_ms(m.client_cpu_s):.2f}  |  "
            f"at {h.rate:.0f}/s: p50 {h.p(50):.1f} ms, p99 {h.p(99):.1f} ms, "
            f"late sends {h.late_starts}, errors {m.errors + h.errors}"
        )
        for e in m.error_samples + h.error_samples:
            print(f"    error: {e}")
    print(f"  graphql/plain: max rate {ratio:.3f}, server CPU per request {cpu_ratio:.3f}")
    fields = {
        "graphql_max_rps": f"{g_max.rps:.1f}",
        "plain_max_rps": f"{p_max.rps:.1f}",
        "ratio": f"{ratio:.3f}",
        "cpu_ratio": f"{cpu_ratio:.3f}",
        "graphql_rate": f"{g_half.rate:.1f}",
        "graphql_p50_ms": f"{g_half.p(50):.1f}",
        "graphql_p99_ms": f"{g_half.p(99):.1f}",
        "plain_rate": f"{p_half.rate:.1f}",
        "plain_p50_ms": f"{p_half.p(50):.1f}",
        "plain_p99_ms": f"{p_half.p(99):.1f}",
        "path": "resolvers" if args.resolvers else "compiled",
        "rate_limits": "on" if args.rate_limits else "off",
        "workers": WORKERS,
        "seconds": f"{args.seconds:g}",
        "errors": errors,
    }
    print("RESULT " + " ".join(f"{k}={v}" for k, v in fields.items()))
    return 0 if errors == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.query_throughput", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--serve-plain", type=int, metavar="PORT", help="internal")
    parser.add_argument(
        "--resolvers",
        action="store_true",
        help="send the query in a form outside the compiled subset (graphql-core + dataloaders)",
    )
    parser.add_argument(
        "--rate-limits",
        action="store_true",
        help="keep the rate limiter on (tenant on Enterprise): its cost per request",
    )
    args = parser.parse_args(argv)
    if args.resolvers:
        global QUERY_IN_USE
        QUERY_IN_USE = QUERY_RESOLVERS
    if args.serve_plain:
        serve_plain(args.serve_plain)
        return 0
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted; servers stopped, database dropped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
