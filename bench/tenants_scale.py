"""Benchmark: Trendscope with 1,000 tenant schemas.

    python -m bench.tenants_scale [--tenants 1000] [--rate 20] [--seconds 10] [--warmup 3]

One run, in a throw-away database `bench_<random>` (server: BENCH_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/postgres):

1. migrates public, signs up one owner (tenant 1) and provisions tenants 2 and 3 with the real
   provisioning code (`tenants.provisioning.create_tenant`, schema + tables through the
   migrations), each with a membership for the owner; every tenant gets 20 influencers with 2
   accounts each;
2. **latency with 3 tenants**: starts the app (`trendscope api`, 1 worker) and sends
   `influencers(first: 20) { ... accounts { ... } }` at a fixed rate (`--rate` req/s,
   open loop), round-robin over the tenants' access tokens; records p50/p99;
3. provisions the other tenants (`create_tenant`, 8 at a time) up to `--tenants`, timed;
4. **no-op migrate**: runs `python -m api.cli migrate` (what `trendscope migrate` runs,
   process start included) with every schema up to date, timed;
5. **one-column migration**: `migrate_all` with a migrations package of the real migrations
   plus one that adds a boolean column to `influencer` (`bench/_migrations.py`), timed; every
   schema must report it applied;
6. **latency with all tenants**: restarts the app, sends one request per tenant (each schema
   touched at least once), then the same fixed-rate load round-robin over all tenants;
7. prints a table and one `RESULT` line. The database is dropped at the end (also on an error,
   Ctrl-C or SIGTERM).

`RESULT` keys: `tenants`, `provision_s` (tenants 4..N), `noop_migrate_s`, `column_migrate_s`,
`p50_3_ms`, `p99_3_ms`, `p50_n_ms`, `p99_n_ms`, `p50_ratio` and `p99_ratio` (N tenants over 3),
`rate`, `errors`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench._migrations import column_migration_package
from bench._util import (
    RateResult,
    Server,
    free_port,
    run_async,
    run_fixed_rate,
    sigterm_as_keyboard_interrupt,
    start_server,
    temporary_database,
)

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PAGE = 20
QUERY = (
    "{ influencers(first: 20) { edges { node { id displayName totalFollowers "
    "accounts { platform handle followers } } } } }"
)
PROVISION_CONCURRENCY = 8

SEED_SQL = """
INSERT INTO influencer (display_name, notes, total_followers, created_at, updated_at)
SELECT 'Influencer ' || i, '', i * 1000, now(), now() FROM generate_series(1, 20) i;
INSERT INTO influencer_account
    (influencer_id, platform, handle, followers, verified, created_at, updated_at)
SELECT inf.id, p.platform, 'h' || inf.id || '_' || p.platform, 500, false, now(), now()
FROM influencer inf CROSS JOIN unnest(ARRAY['instagram', 'tiktok']) AS p(platform);
"""


@dataclass
class Tokens:
    secret_key: str
    by_schema: dict[str, str]


def slug(i: int) -> str:
    return f"scale{i:05d}"


async def _setup(database_url: str, redis_url: str) -> tuple[object, Tokens]:
    from api.logging import configure_logging
    from api.settings import Settings
    from tenants.db import init_db

    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        access_token_ttl_seconds=24 * 3600,
        log_level="WARNING",
    )
    configure_logging(settings)
    await init_db(settings)
    return settings, Tokens(settings.secret_key, {})


async def add_tenants(settings: object, tokens: Tokens, first: int, last: int) -> None:
    """Tenants `first`..`last` (1-based, inclusive): tenant 1 through sign-up, the others
    through `create_tenant`, each seeded and with a membership and token for the owner."""
    from api.settings import Settings
    from domain.accounts import tokens as jwt_tokens
    from domain.accounts.models import Membership, User
    from domain.accounts.service import accounts
    from tenants.migrate import migrate_public
    from tenants.provisioning import create_tenant
    from tenants.tx import public_tx, tenant_tx

    assert isinstance(settings, Settings)
    if first == 1:
        await migrate_public()
        _, tenant, pair = await accounts.sign_up(
            settings,
            email="owner@scale.example",
            password="bench-password-0123",
            display_name="Owner",
            tenant_name="Scale 1",
            tenant_slug=slug(1),
        )
        tokens.by_schema[tenant.schema_name] = pair.access_token
        async with tenant_tx(tenant.schema_name) as tx:
            await tx.conn.execute_script(SEED_SQL)
        first = 2
    async with public_tx():
        owner = await User.get(email="owner@scale.example")
    gate = asyncio.Semaphore(PROVISION_CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            tenant = await create_tenant(slug(i), f"Scale {i}")
            async with tenant_tx(tenant.schema_name) as tx:
                await tx.conn.execute_script(SEED_SQL)
            async with public_tx():
                await Membership.create(user_id=owner.id, tenant_id=tenant.id, role="owner")
        token, _ = jwt_tokens.issue_access_token(
            secret=settings.secret_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.access_token_ttl_seconds,
            user_id=owner.id,
            tenant_id=tenant.id,
            tenant_schema=tenant.schema_name,
            role="owner",
        )
        tokens.by_schema[tenant.schema_name] = token

    await asyncio.gather(*(one(i) for i in range(first, last + 1)))


async def column_migration(tmp: Path, expected: int) -> float:
    from tenants.migrate import migrate_all

    module = column_migration_package(tmp, column="bench_column")
    t0 = time.perf_counter()
    report = await migrate_all(tenant_migrations=module)
    elapsed = time.perf_counter() - t0
    if report.failures or len(report.tenants_changed) != expected:
        raise RuntimeError(
            f"column migration: {len(report.tenants_changed)} changed of {expected}, "
            f"failures {dict(list(report.failures.items())[:3])}"
        )
    return elapsed


def check_response(response: httpx.Response) -> str | None:
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    try:
        payload = response.json()
        edges = payload["data"]["influencers"]["edges"]
    except (ValueError, KeyError, TypeError):
        return f"unexpected body: {response.text[:200]}"
    if len(edges) != PAGE:
        return f"{len(edges)} edges, expected {PAGE}"
    return None


@contextlib.contextmanager
def app_server(database_url: str, redis_url: str, secret: str, log_dir: Path) -> Iterator[Server]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secret,
        "ENV": "production",
    }
    port = free_port()
    args = ["-m", "api.cli", "api", "--port", str(port), "--workers", "1"]
    server = start_server("graphql", args, port=port, env=env, log_dir=log_dir)
    try:
        server.wait_ready("/healthz")
        yield server
    finally:
        server.stop()


def latency(
    server: Server, tokens: list[str], rate: float, seconds: float, warmup: float
) -> RateResult:
    body = json.dumps({"query": QUERY}).encode()

    def request(i: int) -> tuple[bytes, dict[str, str]]:
        token = tokens[i % len(tokens)]
        return body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def touch_all() -> None:  # every tenant once: the measured load finds no cold schema
        async with httpx.AsyncClient(timeout=30) as client:
            for i in range(len(tokens)):
                b, h = request(i)
                if (
                    problem := check_response(
                        await client.post(server.url + "/graphql", content=b, headers=h)
                    )
                ) is not None:
                    raise RuntimeError(problem)

    async def go() -> RateResult:
        await touch_all()
        return await run_fixed_rate(
            server.url + "/graphql",
            requests=request,
            check=check_response,
            rate=rate,
            seconds=seconds,
            warmup=warmup,
        )

    return run_async(go())


def noop_migrate(database_url: str, redis_url: str, secret: str) -> tuple[float, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "SECRET_KEY": secret}
    env["LOG_LEVEL"] = "WARNING"
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"trendscope migrate failed: {done.stdout}\n{done.stderr}")
    return elapsed, done.stdout.strip()


def run(args: argparse.Namespace) -> int:
    server_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER_URL)
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    with (
        sigterm_as_keyboard_interrupt(),
        temporary_database(server_url) as database_url,
        tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp,
    ):
        tmp_path = Path(tmp)

        async def phase1() -> tuple[object, Tokens]:
            settings, tokens = await _setup(database_url, redis_url)
            await add_tenants(settings, tokens, 1, 3)
            return settings, tokens

        # One event loop for all in-process database work (Tortoise's pool belongs to it).
        runner = asyncio.Runner()
        with runner:
            settings, tokens = runner.run(phase1())
            secret = tokens.secret_key
            print("latency with 3 tenants...", file=sys.stderr)
            with app_server(database_url, redis_url, secret, tmp_path) as server:
                three = latency(
                    server, list(tokens.by_schema.values()), args.rate, args.seconds, args.warmup
                )
            print(f"provisioning tenants 4..{args.tenants}...", file=sys.stderr)
            t0 = time.perf_counter()
            runner.run(add_tenants(settings, tokens, 4, args.tenants))
            provision_s = time.perf_counter() - t0
            print("no-op migrate...", file=sys.stderr)
            noop_s, noop_out = noop_migrate(database_url, redis_url, secret)
            print("one-column migration...", file=sys.stderr)
            column_s = runner.run(column_migration(tmp_path, args.tenants))
            from tenants.db import close_db

            runner.run(close_db())
        print(f"latency with {args.tenants} tenants...", file=sys.stderr)
        with app_server(database_url, redis_url, secret, tmp_path) as server:
            many = latency(
                server, list(tokens.by_schema.values()), args.rate, args.seconds, args.warmup
            )

    errors = three.errors + many.errors
    p50_ratio = many.p(50) / three.p(50) if three.p(50) else 0.0
    p99_ratio = many.p(99) / three.p(99) if three.p(99) else 0.0
    print(f"{args.tenants} tenant schemas, {os.cpu_count()} CPUs")
    print(
        f"  provision tenants 4..{args.tenants}: {provision_s:.1f} s "
        f"({PROVISION_CONCURRENCY} at a time)"
    )
    print(f"  no-op `trendscope migrate` (process included): {noop_s:.2f} s  [{noop_out}]")
    print(f"  one-column migration across all: {column_s:.2f} s")
    for name, r in (("3 tenants", three), (f"{args.tenants} tenants", many)):
        print(
            f"  latency, {name}: {r.requests} requests at {r.rate:g}/s: p50 {r.p(50):.1f} ms, "
            f"p99 {r.p(99):.1f} ms, errors {r.errors}, late sends {r.late_starts}"
        )
        print("".join(f"    error: {e}\n" for e in r.error_samples), end="")
    print(f"  {args.tenants} vs 3 tenants: p50 x{p50_ratio:.2f}, p99 x{p99_ratio:.2f}")
    fields = {
        "tenants": args.tenants,
        "provision_s": f"{provision_s:.1f}",
        "noop_migrate_s": f"{noop_s:.2f}",
        "column_migrate_s": f"{column_s:.2f}",
        "p50_3_ms": f"{three.p(50):.1f}",
        "p99_3_ms": f"{three.p(99):.1f}",
        "p50_n_ms": f"{many.p(50):.1f}",
        "p99_n_ms": f"{many.p(99):.1f}",
        "p50_ratio": f"{p50_ratio:.2f}",
        "p99_ratio": f"{p99_ratio:.2f}",
        "rate": f"{args.rate:g}",
        "errors": errors,
    }
    print("RESULT " + " ".join(f"{k}={v}" for k, v in fields.items()))
    return 0 if errors == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tenants_scale", description=__doc__)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="offered load, requests/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per phase")
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args(argv)
    if args.tenants < 3:
        parser.error("--tenants must be at least 3")
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted; server stopped, database dropped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
