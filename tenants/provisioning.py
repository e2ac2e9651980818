"""Creating a tenant: its registry row, its schema and that schema's tables, atomically."""

from __future__ import annotations

from tenants.migrate import migrate_tenant_in_tx
from tenants.models import Tenant
from tenants.registry import schema_for_slug
from tenants.tx import TenantTx, tenant_tx, validate_schema_name


async def provision_in_tx(tx: TenantTx, *, slug: str, name: str) -> Tenant:
    """Register and build the tenant inside `tx` (a `tenant_tx` for its schema)."""
    schema = validate_schema_name(schema_for_slug(slug))
    if tx.schema != schema:
        raise RuntimeError(f"provision {schema} inside tenant_tx({schema!r}), not {tx.schema!r}")
    tenant = await Tenant.create(slug=slug, name=name, schema_name=schema)
    await migrate_tenant_in_tx(tx)
    return tenant


async def create_tenant(slug: str, name: str) -> Tenant:
    async with tenant_tx(schema_for_slug(slug)) as tx:
        return await provision_in_tx(tx, slug=slug, name=name)
