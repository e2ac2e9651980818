"""Benchmark: Trendscope with 1,000 tenant schemas.

    python -m bench.tenants_scale [--tenants 1000] [--rate 20] [--seconds 20] [--rounds 4]

One run, in two throw-away databases on BENCH_DATABASE_URL's server (default
postgresql://postgres@127.0.0.1:5432/postgres), A with 3 tenants and B with `--tenants`:

1. provisions both (in a child process each): migrates public, signs up one owner (tenant 1)
   and creates the other tenants with the real provisioning code
   (`tenants.provisioning.create_tenant`: schema + tables through the migrations), 8 at a time,
   each with a membership and an access token for the owner and 20 influencers with 2
   accounts; B's tenants 4..N are timed (`provision_s`);
2. **no-op migrate** on B: `python -m api.cli migrate` (what `trendscope migrate` runs,
   process start included) with every schema up to date, timed;
3. **one-column migration** on B: `migrate_all` with a migrations package of the real ones
   plus one that adds a nullable column to `influencer` (`bench/_migrations.py`), timed;
   every schema must report it applied;
4. **latency, 3 vs N tenants**: starts the app (`trendscope api`, 1 worker) on A and on B,
   sends one request per tenant to each (no schema cold), then `--rounds` alternating windows
   of fixed-rate load (`--rate` req/s, open loop, `--warmup` s unrecorded each) on A then B:
   `influencers(first: 20) { ... accounts { ... } }`, round-robin over all tenants' tokens;
   alternating cancels most of the drift of a shared machine;
5. prints a table and one `RESULT` line. Both databases are dropped at the end (also on an
   error, Ctrl-C or SIGTERM).

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
    PRODUCTION_ENV,
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
    from core.logging import configure_logging
    from core.settings import Settings
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
    from core.settings import Settings
    from domain.accounts import tokens as jwt_tokens
    from domain.accounts.models import Membership, User
    from domain.accounts.service import auth
    from tenants.migrate import migrate_public
    from tenants.provisioning import create_tenant
    from tenants.tx import public_tx, tenant_tx

    assert isinstance(settings, Settings)
    if first == 1:
        await migrate_public()
        _, tenant, pair = await auth.sign_up(
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
        **PRODUCTION_ENV,
    }
    port = free_port()
    args = ["-m", "api.cli", "api", "--port", str(port), "--workers", "1"]
    server = start_server("graphql", args, port=port, env=env, log_dir=log_dir)
    try:
        server.wait_ready("/healthz")
        yield server
    finally:
        server.stop()


def touch_all(server: Server, tokens: list[str]) -> None:
    """One request per tenant, so that the measured load finds no schema cold."""
    body = json.dumps({"query": QUERY}).encode()

    async def go() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            for token in tokens:
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                response = await client.post(server.url + "/graphql", content=body, headers=headers)
                if (problem := check_response(response)) is not None:
                    raise RuntimeError(problem)

    run_async(go())


def latency(
    server: Server, tokens: list[str], rate: float, seconds: float, warmup: float
) -> RateResult:
    """Fixed-rate load, round-robin over `tokens` (one tenant after the other)."""
    body = json.dumps({"query": QUERY}).encode()

    def request(i: int) -> tuple[bytes, dict[str, str]]:
        token = tokens[i % len(tokens)]
        return body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    return run_async(
        run_fixed_rate(
            server.url + "/graphql",
            requests=request,
            check=check_response,
            rate=rate,
            seconds=seconds,
            warmup=warmup,
        )
    )


def merged(results: list[RateResult]) -> RateResult:
    out = RateResult(rate=results[0].rate, seconds=sum(r.seconds for r in results))
    for r in results:
        out.latencies_ms += r.latencies_ms
        out.errors += r.errors
        out.error_samples += r.error_samples
        out.late_starts += r.late_starts
    return out


def provision(database_url: str, redis_url: str, last: int) -> tuple[Tokens, float]:
    """Tenants 1..`last` in a child process (Tortoise is initialised once per process, for
    one database); returns the tokens and the time tenants 4..`last` took."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.tenants_scale", "--provision", database_url, str(last)],
        env={**os.environ, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"provisioning failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return Tokens(out["secret"], out["tokens"]), float(out["seconds"])


def provision_main(database_url: str, last: int) -> None:
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)

    async def go() -> tuple[Tokens, float]:
        from tenants.db import close_db

        settings, tokens = await _setup(database_url, redis_url)
        try:
            await add_tenants(settings, tokens, 1, min(3, last))
            t0 = time.perf_counter()
            if last > 3:
                await add_tenants(settings, tokens, 4, last)
            return tokens, time.perf_counter() - t0
        finally:
            await close_db()

    tokens, seconds = run_async(go())
    print(json.dumps({"secret": tokens.secret_key, "tokens": tokens.by_schema, "seconds": seconds}))


async def column_migration_main(
    database_url: str, redis_url: str, tmp: Path, expected: int
) -> float:
    from tenants.db import close_db

    await _setup(database_url, redis_url)
    try:
        return await column_migration(tmp, expected)
    finally:
        await close_db()


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
        temporary_database(server_url) as small_url,
        temporary_database(server_url) as large_url,
        tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp,
    ):
        tmp_path = Path(tmp)
        print("database A: 3 tenants...", file=sys.stderr)
        small, _ = provision(small_url, redis_url, 3)
        print(f"database B: {args.tenants} tenants...", file=sys.stderr)
        large, provision_s = provision(large_url, redis_url, args.tenants)
        print("no-op migrate...", file=sys.stderr)
        noop_s, noop_out = noop_migrate(large_url, redis_url, large.secret_key)
        print("one-column migration...", file=sys.stderr)
        column_s = run_async(column_migration_main(large_url, redis_url, tmp_path, args.tenants))
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        with (
            app_server(small_url, redis_url, small.secret_key, tmp_path / "a") as a,
            app_server(large_url, redis_url, large.secret_key, tmp_path / "b") as b,
        ):
            small_tokens, large_tokens = (
                list(small.by_schema.values()),
                list(large.by_schema.values()),
            )
            print(f"touching all {args.tenants} tenants...", file=sys.stderr)
            touch_all(a, small_tokens)
            touch_all(b, large_tokens)
            # Alternate short windows between the two servers, so that the other work on this
            # shared machine weighs on both alike.
            per_round = args.seconds / args.rounds
            threes: list[RateResult] = []
            manys: list[RateResult] = []
            for r in range(args.rounds):
                print(f"latency round {r + 1}/{args.rounds}...", file=sys.stderr)
                threes.append(latency(a, small_tokens, args.rate, per_round, args.warmup))
                manys.append(latency(b, large_tokens, args.rate, per_round, args.warmup))
            three, many = merged(threes), merged(manys)

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
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per database")
    parser.add_argument("--warmup", type=float, default=1.0, help="unrecorded, each window")
    parser.add_argument("--rounds", type=int, default=4, help="alternating windows per server")
    parser.add_argument("--provision", nargs=2, metavar=("DB_URL", "LAST"), help="internal")
    args = parser.parse_args(argv)
    if args.provision:
        provision_main(args.provision[0], int(args.provision[1]))
        return 0
    if args.tenants < 3:
        parser.error("--tenants must be at least 3")
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted; server stopped, database dropped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
