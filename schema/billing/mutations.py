from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from billing.service import billing, request_key
from core.settings import get_settings
from schema.billing.types import BillingInterval, BillingPortalSession, CheckoutSession
from schema.errors import NotFound, ValidationFailed, run_mutation
from schema.permissions import requires


@strawberry.type
class CreateCheckoutSessionSuccess:
    session: CheckoutSession


@strawberry.type
class CreateBillingPortalSessionSuccess:
    session: BillingPortalSession


CreateCheckoutSessionPayload = Annotated[
    CreateCheckoutSessionSuccess | ValidationFailed | NotFound,
    strawberry.union("CreateCheckoutSessionPayload"),
]
CreateBillingPortalSessionPayload = Annotated[
    CreateBillingPortalSessionSuccess | ValidationFailed | NotFound,
    strawberry.union("CreateBillingPortalSessionPayload"),
]


@strawberry.type
class BillingMutations:
    @strawberry.mutation(
        extensions=[requires("billing:manage")],
        description="A Stripe Checkout session subscribing the tenant to `plan` (open `url`). "
        "The plan changes when Stripe confirms the payment (webhook), not here.",
    )
    async def create_checkout_session(
        self, info: Info, plan: str, interval: BillingInterval = BillingInterval.MONTH
    ) -> CreateCheckoutSessionPayload:
        ctx = info.context

        async def run() -> CreateCheckoutSessionSuccess:
            result = await billing.create_checkout_session(
                get_settings(),  # per call, like the webhook route (keys can rotate)
                ctx.principal.tenant_id,
                plan.strip().lower(),
                interval.value,
                request_key(ctx.request_id),
            )
            return CreateCheckoutSessionSuccess(
                session=CheckoutSession(id=result.id, url=result.url)
            )

        return await run_mutation(run)  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=[requires("billing:manage")],
        description="A Stripe Customer Portal session (payment methods, plan changes, "
        "invoices, cancellation); open `url`.",
    )
    async def create_billing_portal_session(self, info: Info) -> CreateBillingPortalSessionPayload:
        ctx = info.context

        async def run() -> CreateBillingPortalSessionSuccess:
            url = await billing.create_portal_session(
                get_settings(), ctx.principal.tenant_id, request_key(ctx.request_id)
            )
            return CreateBillingPortalSessionSuccess(session=BillingPortalSession(url=url))

        return await run_mutation(run)  # type: ignore[return-value]
