"""Benchmark: the `influencers(first: 50)` query, the real app against a plain endpoint.

    python -m bench.influencers_query [--seconds 10] [--warmup 2] [--concurrency 50]

One run measures both servers, so the figures that matter, ratios of the two, hold up on a
noisy shared machine:

1. creates a database `bench_<random>` (server: BENCH_DATABASE_URL, default
   postgresql://postgres@127.0.0.1:5432/postgres), migrates it, signs up a tenant and adds
   200 influencers with 2 accounts each, through the app's own services;
2. starts server A, the real app (`trendscope api`: Starlette + Strawberry + Tortoise,
   1 uvicorn worker), and server B, a plain Starlette + asyncpg endpoint (this module with
   `--serve-plain`, 1 uvicorn worker) that answers the same JSON with two hand-written
   queries in one transaction (with the same `SET LOCAL search_path`);
3. from this process (httpx, `--concurrency` tasks) POSTs the query to each in turn:
   `--warmup` s unrecorded, then `--seconds` s recorded; every response must be a 200 with
   50 edges, and the two servers' first answers must be the same JSON;
4. prints a table and, last, one `RESULT key=value ...` line: request rates, p50/p99
   latencies, `ratio` (graphql req/s over plain req/s) and `cpu_ratio` (plain server CPU per
   request over the app's, which does not depend on how much of the 2 cores the load generator
   leaves to the server). The servers are stopped and the database dropped at the end, also on
   an error, Ctrl-C or SIGTERM.

See docs/benchmarks.md for figures.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import re
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bench._util import (
    PRODUCTION_ENV,
    LoadResult,
    Server,
    free_port,
    run_async,
    run_load,
    sigterm_as_keyboard_interrupt,
    start_server,
    temporary_database,
)

INFLUENCERS = 200
PAGE = 50
WORKERS = 1  # uvicorn workers per server (issue #2's first benchmark: one)
QUERY = (
    "{ influencers(first: 50) { edges { node { id displayName totalFollowers "
    "accounts { platform handle followers } } } } }"
)
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


# --- server B: the plain endpoint -------------------------------------------------------------

PLAIN_INFLUENCERS_SQL = (
    "SELECT id, display_name, total_followers FROM influencer ORDER BY id DESC LIMIT $1"
)
PLAIN_ACCOUNTS_SQL = (
    "SELECT influencer_id, platform, handle, followers FROM influencer_account "
    "WHERE influencer_id = ANY($1::bigint[]) ORDER BY id"
)


def global_id(type_name: str, ident: int) -> str:
    """A Relay global id, as Strawberry encodes it."""
    return base64.b64encode(f"{type_name}:{ident}".encode()).decode()


def plain_app(dsn: str, schema: str) -> Starlette:
    """Starlette + one asyncpg pool: the same JSON as the GraphQL query, by hand."""
    if not re.fullmatch(r"t_[a-z0-9_]{1,50}", schema):
        raise ValueError(f"invalid tenant schema name: {schema!r}")
    set_search_path = f'SET LOCAL search_path TO "{schema}", public'

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Sized and configured like the app's pool (Settings.db_pool_min/max, statement cache).
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10, statement_cache_size=100)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    async def influencers(request: Request) -> Response:
        await request.json()  # read and parse the GraphQL request body, then ignore it
        pool: asyncpg.Pool = request.app.state.pool
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(set_search_path)
            rows = await conn.fetch(PLAIN_INFLUENCERS_SQL, PAGE)
            accounts = await conn.fetch(PLAIN_ACCOUNTS_SQL, [r["id"] for r in rows])
        by_influencer: dict[int, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
        for a in accounts:
            by_influencer[a["influencer_id"]].append(
                {
                    "platform": a["platform"].upper(),  # the GraphQL enum's name
                    "handle": a["handle"],
                    "followers": a["followers"],
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
        return JSONResponse({"data": {"influencers": {"edges": edges}}})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/graphql", influencers, methods=["POST"]), Route("/healthz", healthz)],
        lifespan=lifespan,
    )


def serve_plain(port: int, dsn: str, schema: str) -> None:
    uvicorn.run(
        plain_app(dsn, schema), host="127.0.0.1", port=port, workers=WORKERS, log_level="warning"
    )


# --- setup: schema, tenant, data --------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    schema: str
    access_token: str
    secret_key: str


async def seed(database_url: str, redis_url: str) -> Seeded:
    """Migrate, sign up a tenant, add the influencers; all through the app's own code."""
    from core.logging import configure_logging
    from core.settings import Settings
    from domain.accounts.service import auth
    from domain.influencers.models import PLATFORMS
    from domain.influencers.rules import AccountInput, InfluencerInput
    from domain.influencers.service import influencers
    from tenants.db import close_db, init_db
    from tenants.migrate import migrate_public
    from tenants.tx import tenant_tx

    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        access_token_ttl_seconds=24 * 3600,  # outlives any --seconds
        log_level="WARNING",
    )
    configure_logging(settings)  # logs to stderr: stdout is for the table and RESULT
    await init_db(settings)
    try:
        await migrate_public()
        _, tenant, pair = await auth.sign_up(
            settings,
            email="bench@example.com",
            password="bench-password-0123",
            display_name="Bench",
            tenant_name="Bench",
            tenant_slug="bench",
        )
        rng = random.Random(2)
        # tenant_tx is annotated as returning AsyncIterator (tenants/tx.py), hence the ignore.
        async with tenant_tx(tenant.schema_name):  # type: ignore[attr-defined]
            for i in range(INFLUENCERS):
                platforms = rng.sample(PLATFORMS, 2)
                await influencers.add(
                    InfluencerInput(
                        display_name=f"Bench Influencer {i:03d}",
                        category=rng.choice(["beauty", "gaming", "food", "travel"]),
                        country=rng.choice(["DE", "FR", "US", "BR"]),
                        accounts=tuple(
                            AccountInput(
                                platform=p,
                                handle=f"bench_{i:03d}_{p}",
                                followers=rng.randint(1_000, 5_000_000),
                                verified=rng.random() < 0.2,
                            )
                            for p in platforms
                        ),
                    )
                )
    finally:
        await close_db()
    return Seeded(tenant.schema_name, pair.access_token, settings.secret_key)


# --- the run ----------------------------------------------------------------------------------


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


def database_backends(database: str) -> list[int]:
    """PostgreSQL backends connected to `database` (their title names it)."""
    pids = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline and cmdline[0].startswith("postgres:") and f" {database} " in cmdline[0]:
            pids.append(proc.pid)
    return pids


@dataclass(frozen=True)
class Options:
    seconds: float
    warmup: float
    concurrency: int


def request_parts(token: str) -> tuple[bytes, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return json.dumps({"query": QUERY}).encode(), headers


def first_answer(server: Server, token: str) -> Any:
    body, headers = request_parts(token)
    response = httpx.post(server.url + "/graphql", content=body, headers=headers, timeout=30)
    if (problem := check_response(response)) is not None:
        raise RuntimeError(f"{server.name}: {problem}\n{server.log_tail()}")
    return response.json()


def measure(server: Server, database: str, token: str, options: Options) -> LoadResult:
    body, headers = request_parts(token)
    return run_async(
        run_load(
            server.url + "/graphql",
            body=body,
            headers=headers,
            check=check_response,
            concurrency=options.concurrency,
            seconds=options.seconds,
            warmup=options.warmup,
            server_pids=[server.proc.pid],
            database_pids=lambda: database_backends(database),
        )
    )


def ratios(graphql: LoadResult, plain: LoadResult) -> tuple[float, float]:
    """(request rate ratio, server CPU-per-request ratio), graphql over plain; the second
    does not depend on how much CPU the load generator leaves to the servers."""
    rate = graphql.rps / plain.rps if plain.rps else 0.0
    graphql_cpu = graphql.per_request_ms(graphql.server_cpu_s)
    plain_cpu = plain.per_request_ms(plain.server_cpu_s)
    return rate, plain_cpu / graphql_cpu if graphql_cpu else 0.0


def report(graphql: LoadResult, plain: LoadResult, options: Options) -> str:
    rows = [
        ("server", "req/s", "p50 ms", "p99 ms", "errors", "server", "postgres", "client"),
        ("", "", "", "", "", "CPU ms/req", "CPU ms/req", "CPU ms/req"),
    ]
    for name, r in (("graphql (app)", graphql), ("plain", plain)):
        rows.append(
            (
                name,
                f"{r.rps:.1f}",
                f"{r.p(50):.1f}",
                f"{r.p(99):.1f}",
                str(r.errors),
                f"{r.per_request_ms(r.server_cpu_s):.2f}",
                f"{r.per_request_ms(r.database_cpu_s):.2f}",
                f"{r.per_request_ms(r.client_cpu_s):.2f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        f"influencers(first: {PAGE}) x {INFLUENCERS} influencers, concurrency "
        f"{options.concurrency}, {WORKERS} uvicorn worker(s), {options.seconds:g} s each "
        f"after {options.warmup:g} s warm-up, {os.cpu_count()} CPUs"
    ]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    rate, cpu = ratios(graphql, plain)
    lines.append(f"graphql/plain: request rate {rate:.3f}, server CPU per request {cpu:.3f}")
    for name, r in (("graphql", graphql), ("plain", plain)):
        lines += [f"  {name} error: {e}" for e in r.error_samples]
    return "\n".join(lines)


def result_line(graphql: LoadResult, plain: LoadResult, options: Options) -> str:
    rate, cpu = ratios(graphql, plain)
    fields = {
        "graphql_rps": f"{graphql.rps:.1f}",
        "graphql_p50_ms": f"{graphql.p(50):.1f}",
        "graphql_p99_ms": f"{graphql.p(99):.1f}",
        "plain_rps": f"{plain.rps:.1f}",
        "plain_p50_ms": f"{plain.p(50):.1f}",
        "plain_p99_ms": f"{plain.p(99):.1f}",
        "ratio": f"{rate:.3f}",
        "cpu_ratio": f"{cpu:.3f}",
        "concurrency": str(options.concurrency),
        "workers": str(WORKERS),
        "seconds": f"{options.seconds:g}",
        "errors": str(graphql.errors + plain.errors),
    }
    return "RESULT " + " ".join(f"{k}={v}" for k, v in fields.items())


@contextlib.contextmanager
def servers(
    database_url: str, redis_url: str, seeded: Seeded, log_dir: Path
) -> Iterator[tuple[Server, Server]]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": seeded.secret_key,
        **PRODUCTION_ENV,
        "RATE_LIMITS__ENABLED": "false",  # measure throughput, not the free plan's hourly cap
    }
    started: list[Server] = []
    try:
        port = free_port()
        app_args = ["-m", "api.cli", "api", "--port", str(port), "--workers", str(WORKERS)]
        started.append(start_server("graphql", app_args, port=port, env=env, log_dir=log_dir))
        port = free_port()
        plain_args = ["-m", "bench.influencers_query", "--serve-plain", str(port)]
        plain_args += [database_url, seeded.schema]
        started.append(start_server("plain", plain_args, port=port, env=env, log_dir=log_dir))
        for server in started:
            server.wait_ready("/healthz")
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def run(options: Options) -> int:
    server_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER_URL)
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    with (
        sigterm_as_keyboard_interrupt(),
        temporary_database(server_url) as database_url,
        tempfile.TemporaryDirectory(prefix="bench-logs-") as log_dir,
    ):
        database = database_url.rsplit("/", 1)[-1]
        print(f"setup: database {database}, {INFLUENCERS} influencers...", file=sys.stderr)
        seeded = run_async(seed(database_url, redis_url))
        with servers(database_url, redis_url, seeded, Path(log_dir)) as (app, plain_server):
            token = seeded.access_token
            # `data` only: the app adds `extensions.cost`, which the plain endpoint has no notion of
            if first_answer(app, token)["data"] != first_answer(plain_server, token)["data"]:
                raise RuntimeError("the plain endpoint's answer differs from the GraphQL one")
            print(f"load: graphql ({app.url})...", file=sys.stderr)
            graphql = measure(app, database, token, options)
            print(f"load: plain ({plain_server.url})...", file=sys.stderr)
            plain = measure(plain_server, database, token, options)
    print(report(graphql, plain, options))
    print(result_line(graphql, plain, options))
    return 0 if graphql.errors + plain.errors == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.influencers_query", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per server")
    parser.add_argument("--warmup", type=float, default=2.0, help="unrecorded time first")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--serve-plain",
        nargs=3,
        metavar=("PORT", "DSN", "SCHEMA"),
        help="internal: run server B (the plain endpoint) in this process",
    )
    args = parser.parse_args(argv)
    if args.serve_plain:
        port, dsn, schema = args.serve_plain
        serve_plain(int(port), dsn, schema)
        return 0
    try:
        return run(Options(args.seconds, args.warmup, args.concurrency))
    except KeyboardInterrupt:
        print("interrupted; servers stopped, database dropped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
