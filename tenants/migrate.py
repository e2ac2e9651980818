"""Migrations for the public schema and for every tenant schema.

The migration files are Tortoise 1.x migrations (`migrations/public`, `migrations/tenant`,
generated with `tortoise makemigrations`). Tortoise's executor records applied migrations in an
unqualified `tortoise_migrations` table, so running it inside `tenant_tx(schema)` (search_path
= that schema first) tracks them per schema. Each schema migrates in its own transaction:
all of its pending migrations apply, or none do. Running it again changes nothing.

`migrate_all` scales to thousands of schemas: it reads every schema's applied migrations in
one pass (a catalog query and a UNION ALL over the `tortoise_migrations` tables), skips the
schemas that are up to date without starting an executor for them, and migrates the rest a
few at a time, each in its own transaction.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from tortoise.migrations.executor import MigrationExecutor

from tenants.tx import TenantTx, public_tx, quote_ident, tenant_tx, validate_schema_name

log = structlog.get_logger(__name__)

PUBLIC_APP = {"public": {"models": [], "migrations": "migrations.public"}}
TENANT_LABEL = "tenant"
TENANT_MIGRATIONS = "migrations.tenant"
# Tenant schemas migrated at once by migrate_all: each holds a pool connection while it runs.
DEFAULT_CONCURRENCY = 4
_UNION_CHUNK = 500  # schemas per UNION ALL statement when reading applied migrations


def tenant_app(module: str = TENANT_MIGRATIONS) -> dict[str, dict[str, Any]]:
    return {TENANT_LABEL: {"models": [], "migrations": module}}


@dataclass
class MigrateReport:
    public_applied: list[str] = field(default_factory=list)
    tenants_migrated: int = 0
    tenants_changed: dict[str, list[str]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


# (module, applied migrations) -> the SQL of each pending migration, in order; None when the
# plan cannot be replayed as SQL (a Python operation, a rollback, an unusual history).
_sql_plans: dict[tuple[str, frozenset[tuple[str, str]]], list[tuple[str, str, str]] | None] = {}


def _script(statements: list[str]) -> str:
    """One script from collected statements: Tortoise's comment-only annotations dropped, a
    `;` added where a statement comes without one."""
    out = []
    for statement in statements:
        text = statement.strip()
        if not text or all(line.lstrip().startswith("--") for line in text.splitlines()):
            continue
        out.append(text if text.endswith(";") else text + ";")
    return "\n".join(out)


async def _sql_plan(
    executor: MigrationExecutor, module: str, applied: set[tuple[str, str]]
) -> list[tuple[str, str, str]] | None:
    """The pending migrations as (app, name, SQL), computed once per process for each
    starting point: Tortoise rebuilds its model state for every executor run (~100 ms of CPU
    per schema), which dominates migrating hundreds of identical schemas."""
    cache_key = (module, frozenset(applied))
    if cache_key in _sql_plans:
        return _sql_plans[cache_key]
    plan = await executor.plan()
    full = [(k.app_label, k.name) for k in executor._full_plan()]
    steps = [(s.migration.app_label, s.migration.name) for s in plan]
    replayable = (
        not any(s.backward for s in plan)
        and set(full[: len(applied)]) == applied  # applied is a prefix of the history ...
        and steps == full[len(applied) :]  # ... and the plan is the rest of it, in order
        and all(
            getattr(op, "reduces_to_sql", True)
            for s in plan
            for op in getattr(s.migration, "operations", [])
        )
    )
    result: list[tuple[str, str, str]] | None = None
    if replayable:
        result = []
        for app, name in steps:
            sql = _script(await executor.collect_sql(app, name))
            result.append((app, name, sql))
    _sql_plans[cache_key] = result
    return result


async def _run(tx: TenantTx, apps: dict[str, dict[str, Any]]) -> list[str]:
    """Apply the pending migrations of `apps` (one app) in `tx`; their names, in order."""
    (module,) = (config["migrations"] for config in apps.values())
    executor = MigrationExecutor(tx.conn, apps)
    # The executor reads the applied list before it creates its table, and inside our
    # transaction that failed read would abort everything: create the table first.
    await executor.recorder.ensure_schema(executor._schema_editor(atomic=False))
    applied = {(k.app_label, k.name) for k in await executor.recorder.applied_migrations()}
    plan = await _sql_plan(executor, module, applied)
    if plan is not None:  # the common case: replay the SQL computed for the first schema
        for app, name, sql in plan:
            if sql.strip():
                await tx.conn.execute_script(sql)
            await executor.recorder.record_applied(app, name)
        return [f"{app}.{name}" for app, name, _ in plan]

    done: list[str] = []

    def progress(event: str, app: str, name: str) -> None:
        if event == "apply_done":
            done.append(f"{app}.{name}")

    await executor.migrate(progress=progress)
    return done


async def migrate_public() -> list[str]:
    async with public_tx() as tx:
        return await _run(tx, PUBLIC_APP)


async def migrate_tenant_in_tx(
    tx: TenantTx, *, tenant_migrations: str = TENANT_MIGRATIONS
) -> list[str]:
    """Create the tenant's schema if needed and apply its pending migrations in `tx`."""
    assert tx.schema is not None
    await tx.conn.execute_script(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(tx.schema)}")
    return await _run(tx, tenant_app(tenant_migrations))


async def migrate_tenant(schema: str, *, tenant_migrations: str = TENANT_MIGRATIONS) -> list[str]:
    async with tenant_tx(validate_schema_name(schema)) as tx:
        return await migrate_tenant_in_tx(tx, tenant_migrations=tenant_migrations)


def disk_migrations(module: str) -> set[tuple[str, str]]:
    """(app, name) of every migration file in `module`, as Tortoise's loader finds them."""
    package = importlib.import_module(module)
    return {
        (TENANT_LABEL, name)
        for _, name, is_pkg in pkgutil.iter_modules(package.__path__)
        if not is_pkg and name[0] not in "_~"
    }


_TRACKED_SCHEMAS = """
SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = 'tortoise_migrations' AND c.relkind = 'r' AND n.nspname = ANY($1::text[])
"""


async def applied_by_schema(schemas: Sequence[str]) -> dict[str, set[tuple[str, str]]]:
    """Every schema's applied migrations, read with one catalog query and one UNION ALL
    (per chunk of schemas) instead of a round of queries per schema. Schemas with no
    `tortoise_migrations` table (or none at all) map to an empty set."""
    out: dict[str, set[tuple[str, str]]] = {s: set() for s in schemas}
    if not schemas:
        return out
    async with public_tx() as tx:
        _, rows = await tx.conn.execute_query(_TRACKED_SCHEMAS, [list(schemas)])
        tracked = [validate_schema_name(r["nspname"]) for r in rows]
        for i in range(0, len(tracked), _UNION_CHUNK):
            # Validated names, quoted: the only way to name a schema in a statement.
            sql = " UNION ALL ".join(
                f"SELECT '{s}' AS schema, app, name FROM {quote_ident(s)}.tortoise_migrations"
                for s in tracked[i : i + _UNION_CHUNK]
            )
            _, found = await tx.conn.execute_query(sql)
            for r in found:
                out[r["schema"]].add((r["app"], r["name"]))
    return out


async def migrate_all(
    progress: Callable[[str, list[str]], None] | None = None,
    *,
    schemas: Sequence[str] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    tenant_migrations: str = TENANT_MIGRATIONS,
) -> MigrateReport:
    """Public first, then every registered tenant schema (or only `schemas`).

    Schemas that already have every migration on disk are found with one read across all
    schemas and skipped; only the others run Tortoise's executor, each in its own
    transaction, `concurrency` at a time. A tenant that fails is reported in `failures`
    and the others go on.
    """
    from tenants.registry import list_tenant_schemas

    report = MigrateReport(public_applied=await migrate_public())
    targets = list(schemas) if schemas is not None else await list_tenant_schemas()
    wanted = disk_migrations(tenant_migrations)
    applied = await applied_by_schema(targets)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(schema: str) -> None:
        if wanted <= applied[schema]:
            changed: list[str] = []
        else:
            try:
                async with gate:
                    changed = await migrate_tenant(schema, tenant_migrations=tenant_migrations)
            except Exception as exc:  # one broken tenant must not block the others
                log.exception("tenant_migration_failed", schema=schema)
                report.failures[schema] = repr(exc)
                return
        report.tenants_migrated += 1
        if changed:
            report.tenants_changed[schema] = changed
        if progress is not None:
            progress(schema, changed)

    await asyncio.gather(*(one(s) for s in targets))
    return report
