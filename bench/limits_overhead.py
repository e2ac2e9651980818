"""What the abuse limits cost: the app's schema (Strawberry's parser and validation caches
extended with the limits, api/graphql/limits.py) against the same schema with Strawberry's plain
`ParserCache` / `ValidationCache`, executing the same queries in the same process, interleaved.

    python -m bench.limits_overhead [--rounds 30] [--per-round 20]

Sets up its own database (`bench_<random>`, dropped at the end) with 200 influencers through
`bench.influencers_query.seed`, then measures CPU time (`time.process_time`) per
`schema.execute` (database round trips included, HTTP not). Ends with one `RESULT` line;
`ratio_*` = limits CPU per request / baseline CPU per request (1.0 = free).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from typing import Any

from bench._util import PRODUCTION_ENV, run_async, temporary_database
from bench.influencers_query import DEFAULT_REDIS_URL, DEFAULT_SERVER_URL, QUERY, seed

SMALL = "{ influencers(first: 1) { edges { node { id } } } }"


def baseline_schema() -> Any:
    """The app's schema object with Strawberry's plain caches instead of the limited ones
    (a shallow copy: Strawberry types cannot be put in a second schema)."""
    import copy

    from strawberry.extensions import ParserCache, ValidationCache

    from api.graphql.compiled import CompiledQueries
    from api.graphql.executable import schema
    from api.graphql.masking import MaskUnexpectedErrors
    from api.graphql.transaction import MutationTransaction

    baseline = copy.copy(schema)
    baseline.extensions = (
        MaskUnexpectedErrors,
        CompiledQueries,
        MutationTransaction,
        lambda: ParserCache(maxsize=1000),
        lambda: ValidationCache(maxsize=1000),
    )
    return baseline


async def measure(rounds: int, per_round: int, database_url: str, redis_url: str) -> str:
    from api.auth import principal_from_credentials
    from api.graphql.executable import schema as limited
    from core.settings import Settings
    from schema.context import Context
    from schema.dataloaders import Loaders
    from tenants.db import close_db, init_db

    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        log_level="WARNING",
        secret_key=secrets.token_hex(32),
        **{k.lower(): v for k, v in PRODUCTION_ENV.items()},
    )
    # Opened before `seed`, whose own close_db() then leaves the shared pool open for us.
    await init_db(settings)
    seeded = await seed(database_url, redis_url)
    assert seeded.secret_key == settings.secret_key
    try:
        principal = await principal_from_credentials(
            settings, f"Bearer {seeded.access_token}", None
        )
        assert principal is not None
        baseline = baseline_schema()

        def context() -> Context:
            return Context(
                request=None,  # type: ignore[arg-type]  # no resolver used here reads it
                response=None,
                settings=settings,
                hub=None,
                request_id="bench",
                principal=principal,
                loaders=Loaders(principal.tenant_schema),
            )

        async def run(schema: Any, query: str) -> None:
            result = await schema.execute(query, context_value=context())
            assert not result.errors, result.errors

        cpu: dict[tuple[str, str], float] = {}
        for name, query in (("list", QUERY), ("small", SMALL)):
            for which, schema in (("limits", limited), ("baseline", baseline)):
                for _ in range(5):  # warm-up: caches filled, connections open
                    await run(schema, query)
                cpu[(name, which)] = 0.0
            for r in range(rounds):
                order: list[tuple[str, Any]] = [
                    ("limits", limited),
                    ("baseline", baseline),
                ]
                if r % 2:
                    order.reverse()
                for which, schema in order:
                    start = time.process_time()
                    for _ in range(per_round):
                        await run(schema, query)
                    cpu[(name, which)] += time.process_time() - start
        extensions = (await limited.execute(QUERY, context_value=context())).extensions
        assert extensions is not None
        cost = extensions["cost"]
    finally:
        await close_db()

    n = rounds * per_round
    ms = {k: v / n * 1000 for k, v in cpu.items()}
    print(f"CPU ms per schema.execute, {n} each, interleaved in {rounds} rounds")
    for name in ("list", "small"):
        print(
            f"  {name:5}  limits {ms[(name, 'limits')]:.3f}  baseline {ms[(name, 'baseline')]:.3f}"
            f"  ratio {ms[(name, 'limits')] / ms[(name, 'baseline')]:.3f}"
        )
    return (
        f"RESULT list_limits_ms={ms[('list', 'limits')]:.3f}"
        f" list_baseline_ms={ms[('list', 'baseline')]:.3f}"
        f" ratio_list={ms[('list', 'limits')] / ms[('list', 'baseline')]:.3f}"
        f" small_limits_ms={ms[('small', 'limits')]:.3f}"
        f" small_baseline_ms={ms[('small', 'baseline')]:.3f}"
        f" ratio_small={ms[('small', 'limits')] / ms[('small', 'baseline')]:.3f}"
        f" list_cost={cost['requested']} requests={n}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per-round", type=int, default=20)
    args = parser.parse_args(argv)
    server_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER_URL)
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    with temporary_database(server_url) as database_url:
        line = run_async(measure(args.rounds, args.per_round, database_url, redis_url))
    print(line)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
