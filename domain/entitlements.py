"""Entitlements where each limit bites: the one refusal every countable limit goes through.

`ensure_within(tenant, limit, current_count)` (influencers, seats for members/invites, ...)
raises `PlanLimitReached` naming the limit; `check_within` is the same check on a plan in
hand. What the plans are and which plan a tenant has come from below the domain
(tenants/plans.py, tenants/entitlements.py), so no service imports billing/ to check a limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.accounts.models import Membership
from domain.errors import PlanLimitReached
from domain.influencers.models import Influencer
from tenants.entitlements import TenantRef, allows, plan_of
from tenants.plans import Plan
from tenants.tx import tenant_tx


def check_within(plan: Plan, limit: str, current_count: int, adding: int = 1) -> None:
    """Pure: raise PlanLimitReached if `current_count + adding` exceeds the plan's `limit`.

    A yes/no limit (e.g. `partner_api`) is checked with any counts: False refuses."""
    if not allows(plan, limit, current_count, adding):
        raise PlanLimitReached(limit, getattr(plan, limit), plan.name)


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


@dataclass(frozen=True)
class Usage:
    influencers: int
    seats: int


async def usage(tenant_id: int, tenant_schema: str) -> Usage:
    """What the tenant uses now of its countable limits (one short transaction).

    Counted on the models, as `InfluencerService.count` and `MemberService.check_seats` do:
    the influencer service checks its limit through this module, so it cannot be imported
    here without a cycle."""
    async with tenant_tx(tenant_schema):
        return Usage(
            influencers=await Influencer.all().count(),
            seats=await Membership.filter(tenant_id=tenant_id).count(),
        )
