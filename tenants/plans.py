"""Plans and what each includes, in one place (issue 5: plans and entitlements).

Every limit is enforced where it bites (domain/entitlements.py raises the refusal); this
module only says what the limits are. `None` means unlimited. It sits below the domain, beside
tenants/policy.py, so every floor can read a plan without importing billing/ (Stripe).
Prices live in Stripe (a price id per plan and interval, from settings); the plan names here
are the keys Stripe metadata and `tenant.plan` use.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    title: str
    tracked_influencers: int | None
    seats: int | None
    retention_days: int | None
    api_requests_per_hour: int | None
    live_subscriptions: int | None  # open GraphQL subscriptions per tenant
    collect_interval_hours: int  # the per-tenant collection schedule
    reports_per_month: int | None
    partner_api: bool  # API keys and partner apps (client credentials)
    max_query_cost: int  # GraphQL cost ceiling per operation (api/graphql/cost.py)

    def limits(self) -> dict[str, int | bool | None]:
        """The plan's limits by name (what `viewer.tenant.limits` shows)."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("name", "title")
        }


PLANS: dict[str, Plan] = {
    p.name: p
    for p in (
        Plan(
            name="free",
            title="Free",
            tracked_influencers=5,
            seats=2,
            retention_days=30,
            api_requests_per_hour=1_000,
            live_subscriptions=5,
            collect_interval_hours=24,
            reports_per_month=0,
            partner_api=False,
            max_query_cost=5_000,
        ),
        Plan(
            name="starter",
            title="Starter",
            tracked_influencers=25,
            seats=5,
            retention_days=180,
            api_requests_per_hour=10_000,
            live_subscriptions=50,
            collect_interval_hours=24,
            reports_per_month=10,
            partner_api=False,
            max_query_cost=5_000,
        ),
        Plan(
            name="pro",
            title="Pro",
            tracked_influencers=250,
            seats=20,
            retention_days=730,
            api_requests_per_hour=100_000,
            live_subscriptions=500,
            collect_interval_hours=1,
            reports_per_month=100,
            partner_api=True,
            max_query_cost=20_000,
        ),
        Plan(
            name="enterprise",
            title="Enterprise",
            tracked_influencers=None,
            seats=None,
            retention_days=None,
            api_requests_per_hour=1_000_000,
            live_subscriptions=10_000,
            collect_interval_hours=1,
            reports_per_month=None,
            partner_api=True,
            max_query_cost=50_000,
        ),
    )
}
DEFAULT_PLAN = "free"


def plan_for(name: str | None) -> Plan:
    """The plan called `name`; an unknown or missing name gets the free plan."""
    return PLANS.get(name or DEFAULT_PLAN, PLANS[DEFAULT_PLAN])
