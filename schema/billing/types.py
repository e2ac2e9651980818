from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from tenants.plans import Plan


# The description is part of the published SDL, so it keeps the plans' old path (they now
# live in tenants/plans.py); changing it would change the schema clients see.
@strawberry.type(description="A plan (billing/plans.py).")
class PlanInfo:
    name: str
    title: str

    @classmethod
    def of(cls, plan: Plan) -> PlanInfo:
        return cls(name=plan.name, title=plan.title)


@strawberry.type(description="What the tenant's plan includes; null means unlimited.")
class PlanLimits:
    tracked_influencers: int | None
    seats: int | None
    retention_days: int | None
    api_requests_per_hour: int | None
    live_subscriptions: int | None
    collect_interval_hours: int
    reports_per_month: int | None
    partner_api: bool
    max_query_cost: int

    @classmethod
    def of(cls, plan: Plan) -> PlanLimits:
        return cls(**plan.limits())  # type: ignore[arg-type]


@strawberry.type(description="What the tenant uses now, to compare with its limits.")
class TenantUsage:
    influencers: int
    seats: int
    live_subscriptions: int = strawberry.field(
        description="Open subscriptions on the api process that answered (per process)."
    )


@strawberry.type(description="The tenant's subscription, from the state webhooks keep.")
class BillingSubscription:
    plan: PlanInfo
    status: str | None = strawberry.field(
        description="Stripe's subscription status (active, past_due, canceled, ...); null on "
        "the free plan without a subscription."
    )
    current_period_end: datetime | None
    past_due_since: datetime | None
    grace_until: datetime | None = strawberry.field(
        description="When a past-due tenant becomes read-only if still unpaid."
    )
    restricted_at: datetime | None
    read_only: bool
    has_customer: bool


@strawberry.type
class Invoice:
    id: strawberry.ID
    number: str | None
    status: str | None
    currency: str
    amount_due: int = strawberry.field(description="In the currency's smallest unit.")
    amount_paid: int
    created: datetime
    hosted_invoice_url: str | None
    invoice_pdf: str | None


@strawberry.type
class InvoiceEdge:
    cursor: str
    node: Invoice


@strawberry.type
class InvoicePageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(description="Invoices, newest first, read from Stripe.")
class InvoiceConnection:
    edges: list[InvoiceEdge]
    page_info: InvoicePageInfo


@strawberry.type
class CheckoutSession:
    id: str
    url: str


@strawberry.type
class BillingPortalSession:
    url: str


@strawberry.enum
class BillingInterval(Enum):
    MONTH = "month"
    YEAR = "year"
