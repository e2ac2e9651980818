"""Entitlements: what a tenant's plan allows, checked where each limit bites.

`ensure_within(tenant, limit, current_count)` is the one check every countable limit goes
through (influencers here, seats for members/invites, ...): it raises
`domain.errors.PlanLimitReached` naming the limit. The plan comes from `tenant.plan`
(billing/plans.py); Stripe webhooks change it (billing/service.py).

Restricted tenants (dunning, docs/billing.md) are read-only: `is_restricted(tenant_id)` is
what the GraphQL mutation guard asks (api/graphql/restricted.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from billing.plans import Plan, plan_for
from domain.errors import PlanLimitReached
from tenants.models import Tenant
from tenants.tx import current_tx_or_none, public_tx, tenant_tx

TenantRef = int | str | Plan  # a tenant id, a plan name or the plan itself


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


def check_within(plan: Plan, limit: str, current_count: int, adding: int = 1) -> None:
    """Pure: raise PlanLimitReached if `current_count + adding` exceeds the plan's `limit`.

    A yes/no limit (e.g. `partner_api`) is checked with any counts: False refuses."""
    allowed = getattr(plan, limit)  # AttributeError for a limit name that does not exist
    if allowed is None:
        return
    if isinstance(allowed, bool):
        if not allowed:
            raise PlanLimitReached(limit, allowed, plan.name)
        return
    if current_count + adding > allowed:
        raise PlanLimitReached(limit, allowed, plan.name)


async def ensure_within(
    tenant: TenantRef, limit: str, current_count: int, adding: int = 1, *, lock: bool = True
) -> Plan:
    """Raise PlanLimitReached when the tenant (id), plan name or Plan does not allow
    `adding` more of `limit` on top of `current_count`; returns the plan.

    Call it inside the mutation's transaction, counting before adding; with a tenant id the
    tenant row is locked (see `plan_of`), so concurrent additions are serialised."""
    plan = await plan_of(tenant, lock=lock)
    check_within(plan, limit, current_count, adding)
    return plan


async def ensure_feature(tenant: TenantRef, limit: str) -> Plan:
    """Raise PlanLimitReached when the plan lacks a yes/no feature (e.g. `partner_api`)."""
    plan = await plan_of(tenant)
    check_within(plan, limit, 0, 0)
    return plan


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


@dataclass(frozen=True)
class Usage:
    influencers: int
    seats: int


async def usage(tenant_id: int, tenant_schema: str) -> Usage:
    """What the tenant uses now of its countable limits (one short transaction)."""
    from domain.accounts.models import Membership
    from domain.influencers.service import influencers

    async with tenant_tx(tenant_schema):
        return Usage(
            influencers=await influencers.count(),
            seats=await Membership.filter(tenant_id=tenant_id).count(),
        )
