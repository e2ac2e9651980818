from __future__ import annotations

import strawberry
from strawberry.types import Info

from billing.service import billing
from core.settings import get_settings
from domain.pagination import check_first
from schema.billing.types import (
    BillingSubscription,
    Invoice,
    InvoiceConnection,
    InvoiceEdge,
    InvoicePageInfo,
    PlanInfo,
)
from schema.permissions import requires
from tenants.plans import plan_for


@strawberry.type
class BillingQueries:
    @strawberry.field(
        extensions=[requires("billing:manage")],
        description="The tenant's plan and subscription state, as the Stripe webhooks last "
        "left it (stored here, not read from Stripe).",
    )
    async def subscription(self, info: Info) -> BillingSubscription:
        tenant = await billing.tenant(info.context.principal.tenant_id)
        return BillingSubscription(
            plan=PlanInfo.of(plan_for(tenant.plan)),
            status=tenant.subscription_status,
            current_period_end=tenant.current_period_end,
            past_due_since=tenant.past_due_since,
            grace_until=tenant.grace_until,
            restricted_at=tenant.restricted_at,
            read_only=tenant.restricted_at is not None,
            has_customer=tenant.stripe_customer_id is not None,
        )

    @strawberry.field(
        extensions=[requires("billing:manage")],
        description="The tenant's invoices, newest first, read from Stripe at each request "
        "(`first` at most 100; `after` is the last invoice id of the previous page).",
    )
    async def invoices(
        self, info: Info, first: int | None = 10, after: str | None = None
    ) -> InvoiceConnection:
        ctx = info.context
        page = await billing.invoices(
            get_settings(), ctx.principal.tenant_id, check_first(first), after
        )
        edges = [
            InvoiceEdge(
                cursor=row.id,
                node=Invoice(
                    id=strawberry.ID(row.id),
                    number=row.number,
                    status=row.status,
                    currency=row.currency,
                    amount_due=row.amount_due,
                    amount_paid=row.amount_paid,
                    created=row.created,
                    hosted_invoice_url=row.hosted_invoice_url,
                    invoice_pdf=row.invoice_pdf,
                ),
            )
            for row in page.items
        ]
        return InvoiceConnection(
            edges=edges,
            page_info=InvoicePageInfo(
                has_next_page=page.has_next_page,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )
