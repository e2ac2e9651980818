"""Lookups in the public tenant registry."""

from __future__ import annotations

from tenants.models import Tenant
from tenants.tx import public_tx


async def list_tenant_schemas() -> list[str]:
    async with public_tx():
        rows = await Tenant.all().order_by("id").values_list("schema_name", flat=True)
    return [str(r) for r in rows]


async def get_tenant_by_slug(slug: str) -> Tenant | None:
    async with public_tx():
        return await Tenant.get_or_none(slug=slug)


def schema_for_slug(slug: str) -> str:
    return f"t_{slug}"
