"""Migrations for the public schema and for every tenant schema.

The migration files are Tortoise 1.x migrations (`migrations/public`, `migrations/tenant`,
generated with `tortoise makemigrations`). Tortoise's executor records applied migrations in an
unqualified `tortoise_migrations` table, so running it inside `tenant_tx(schema)` (search_path
= that schema first) tracks them per schema. Each schema migrates in its own transaction:
all of its pending migrations apply, or none do. Running it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from tortoise.migrations.executor import MigrationExecutor

from tenants.tx import TenantTx, public_tx, quote_ident, tenant_tx, validate_schema_name

log = structlog.get_logger(__name__)

PUBLIC_APP = {"public": {"models": [], "migrations": "migrations.public"}}
TENANT_APP = {"tenant": {"models": [], "migrations": "migrations.tenant"}}


@dataclass
class MigrateReport:
    public_applied: list[str] = field(default_factory=list)
    tenants_migrated: int = 0
    tenants_changed: dict[str, list[str]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


async def _run(tx: TenantTx, apps: dict[str, dict[str, Any]]) -> list[str]:
    applied: list[str] = []

    def progress(event: str, app: str, name: str) -> None:
        if event == "apply_done":
            applied.append(f"{app}.{name}")

    executor = MigrationExecutor(tx.conn, apps)
    # The executor reads the applied list before it creates its table, and inside our
    # transaction that failed read would abort everything: create the table first.
    await executor.recorder.ensure_schema(executor._schema_editor(atomic=False))
    await executor.migrate(progress=progress)
    return applied


async def migrate_public() -> list[str]:
    async with public_tx() as tx:
        return await _run(tx, PUBLIC_APP)


async def migrate_tenant_in_tx(tx: TenantTx) -> list[str]:
    """Create the tenant's schema if needed and apply its pending migrations in `tx`."""
    assert tx.schema is not None
    await tx.conn.execute_script(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(tx.schema)}")
    return await _run(tx, TENANT_APP)


async def migrate_tenant(schema: str) -> list[str]:
    async with tenant_tx(validate_schema_name(schema)) as tx:
        return await migrate_tenant_in_tx(tx)


async def migrate_all(progress: Callable[[str, list[str]], None] | None = None) -> MigrateReport:
    """Public first, then every registered tenant schema (each in its own transaction)."""
    from tenants.registry import list_tenant_schemas

    report = MigrateReport(public_applied=await migrate_public())
    for schema in await list_tenant_schemas():
        try:
            changed = await migrate_tenant(schema)
        except Exception as exc:  # one broken tenant must not block the others
            log.exception("tenant_migration_failed", schema=schema)
            report.failures[schema] = repr(exc)
            continue
        report.tenants_migrated += 1
        if changed:
            report.tenants_changed[schema] = changed
        if progress is not None:
            progress(schema, changed)
    return report
