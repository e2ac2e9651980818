"""What a tenant's plan allows, and which plan (and billing state) a tenant has.

Below the domain, beside tenants/policy.py: `allows` is pure, the rest reads only the public
`tenant` row. The refusal itself (`PlanLimitReached`, a domain error) is raised by
domain/entitlements.py, which every limit goes through; Stripe webhooks change the plan
(billing/service.py).

Restricted tenants (dunning, docs/billing.md) are read-only: `is_restricted(tenant_id)` is
what the GraphQL mutation guard asks (api/graphql/restricted.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from tenants.models import Tenant
from tenants.plans import Plan, plan_for
from tenants.tx import current_tx_or_none, public_tx

TenantRef = int | str | Plan  # a tenant id, a plan name or the plan itself


def allows(plan: Plan, limit: str, current_count: int, adding: int = 1) -> bool:
    """Pure: whether the plan's `limit` allows `adding` more on top of `current_count`.

    A yes/no limit (e.g. `partner_api`) is checked with any counts: False refuses."""
    allowed = getattr(plan, limit)  # AttributeError for a limit name that does not exist
    if allowed is None:
        return True
    if isinstance(allowed, bool):
        return allowed
    return bool(current_count + adding <= allowed)


async def plan_of(tenant: TenantRef, *, lock: bool = False) -> Plan:
    """The plan of a tenant (by id), or the plan named / given.

    `lock=True` locks the tenant's row until the surrounding transaction ends, so that two
    concurrent additions cannot both pass the same check (the second waits and then counts
    what the first added)."""
    if isinstance(tenant, Plan):
        return tenant
    if isinstance(tenant, str):
        return plan_for(tenant)
    async with public_tx():
        query = Tenant.filter(id=tenant)
        if lock and current_tx_or_none() is not None:
            query = query.select_for_update()
        rows = await query.values_list("plan", flat=True)
    return plan_for(str(rows[0]) if rows else None)


async def plans_by_schema() -> list[tuple[str, Plan]]:
    """Every tenant's schema and plan, in id order (for per-tenant cron work)."""
    async with public_tx():
        rows = await Tenant.all().order_by("id").values_list("schema_name", "plan")
    return [(str(schema), plan_for(plan)) for schema, plan in rows]


@dataclass(frozen=True)
class BillingState:
    plan: Plan
    restricted: bool


async def billing_state(tenant_id: int) -> BillingState:
    async with public_tx():
        rows = await Tenant.filter(id=tenant_id).values_list("plan", "restricted_at")
    if not rows:
        return BillingState(plan_for(None), False)
    plan, restricted_at = rows[0]
    return BillingState(plan_for(plan), restricted_at is not None)


async def is_restricted(tenant_id: int) -> bool:
    """True while the tenant is restricted to read-only (unpaid past its grace period)."""
    return (await billing_state(tenant_id)).restricted
