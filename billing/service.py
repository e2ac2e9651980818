"""Billing I/O: Stripe Checkout and Customer Portal sessions, webhook intake, and keeping the
tenant's plan and dunning state in step with its Stripe subscription.

How state flows (docs/billing.md): a webhook is verified and stored once by its event id
(`receive_event`), then the `billing.handle_event` job re-reads the object it names from
Stripe and applies the subscription's *current* state (`sync_subscription`). So a duplicate
is dropped at intake, and an out-of-order or stale event only re-applies what Stripe says now.

Dunning: a subscription that becomes `past_due`/`unpaid` starts a grace period
(`billing_grace_days`); when it ends unpaid the tenant is restricted to read-only
(`enforce_dunning`, a cron, and at once when the grace is already over); a payment that makes
the subscription `active` again clears all of it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
import structlog
from tortoise.exceptions import IntegrityError

from billing.models import StripeEvent
from billing.stripe_client import stripe_client
from core.settings import Settings
from domain.errors import FieldError, NotFound, ValidationFailed
from tenants import outbox
from tenants.models import Tenant
from tenants.plans import PLANS
from tenants.policy import policies
from tenants.tx import public_tx

log = structlog.get_logger(__name__)

HANDLE_EVENT_JOB = "billing.handle_event"
MAX_EVENT_ATTEMPTS = 50  # then the event waits for an operator (its row has the last error)
# The events we act on; every other type is stored and marked processed.
HANDLED_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
    }
)
GOOD_STANDING = frozenset({"active", "trialing"})
PAST_DUE = frozenset({"past_due", "unpaid"})
ENDED = frozenset({"canceled", "incomplete_expired"})
LIVE = GOOD_STANDING | PAST_DUE


def _id(value: Any) -> str | None:
    """An expandable field's id: Stripe sends either the id or the expanded object."""
    if value is None or isinstance(value, str):
        return value
    return str(value["id"])


def _plain(obj: Any) -> dict[str, Any]:
    """A Stripe object as plain dicts and lists (what the API sent)."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _get(obj: Any, *path: str | int) -> Any:
    for key in path:
        if obj is None:
            return None
        try:
            obj = obj[key]
        except (KeyError, IndexError, TypeError, AttributeError):
            return None
    return obj


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


@dataclass(frozen=True)
class CheckoutResult:
    id: str
    url: str


@dataclass(frozen=True)
class InvoiceRow:
    id: str
    number: str | None
    status: str | None
    currency: str
    amount_due: int
    amount_paid: int
    created: datetime
    hosted_invoice_url: str | None
    invoice_pdf: str | None


@dataclass(frozen=True)
class InvoicePage:
    items: list[InvoiceRow]
    has_next_page: bool


class BillingService:
    # --- sessions (mutations; inside the caller's transaction) -----------------------------

    async def create_checkout_session(
        self, settings: Settings, tenant_id: int, plan: str, interval: str, request_key: str
    ) -> CheckoutResult:
        price = settings.stripe_prices.get(plan, {}).get(interval)
        if plan not in PLANS or price is None:
            offered = sorted(
                f"{p}/{i}" for p, by in settings.stripe_prices.items() for i in by if p in PLANS
            )
            raise ValidationFailed(
                FieldError("plan", f"no {plan}/{interval} price; offered: {', '.join(offered)}")
            )
        tenant = await self._locked_tenant(tenant_id)
        if tenant.stripe_subscription_id and tenant.subscription_status in LIVE:
            raise ValidationFailed(
                FieldError("plan", "the tenant has a subscription: change it in the billing portal")
            )
        customer = await self._ensure_customer(settings, tenant)
        client = stripe_client(settings)
        metadata = {"tenant_id": str(tenant.id), "tenant_slug": tenant.slug, "plan": plan}
        try:
            session = await client.v1.checkout.sessions.create_async(
                {
                    "mode": "subscription",
                    "customer": customer,
                    "client_reference_id": str(tenant.id),
                    "line_items": [{"price": price, "quantity": 1}],
                    "success_url": settings.billing_success_url.format(tenant=tenant.slug),
                    "cancel_url": settings.billing_cancel_url.format(tenant=tenant.slug),
                    "metadata": metadata,
                    "subscription_data": {"metadata": metadata},
                },
                {"idempotency_key": f"tenant-{tenant.id}-checkout-{plan}-{interval}-{request_key}"},
            )
        except stripe.InvalidRequestError as exc:  # e.g. a price id Stripe does not know
            log.error("stripe_checkout_refused", tenant=tenant.id, error=exc.user_message)
            raise ValidationFailed(
                FieldError("plan", f"Stripe refused the {plan}/{interval} checkout")
            ) from exc
        return CheckoutResult(id=session.id, url=str(session.url))

    async def create_portal_session(
        self, settings: Settings, tenant_id: int, request_key: str
    ) -> str:
        tenant = await self._locked_tenant(tenant_id)
        customer = await self._ensure_customer(settings, tenant)
        session = await stripe_client(settings).v1.billing_portal.sessions.create_async(
            {
                "customer": customer,
                "return_url": settings.billing_portal_return_url.format(tenant=tenant.slug),
            },
            {"idempotency_key": f"tenant-{tenant.id}-portal-{request_key}"},
        )
        return str(session.url)

    async def _locked_tenant(self, tenant_id: int) -> Tenant:
        async with public_tx():
            tenant = await Tenant.filter(id=tenant_id).select_for_update().first()
        if tenant is None:
            raise NotFound("Tenant", tenant_id)
        return tenant

    async def _ensure_customer(self, settings: Settings, tenant: Tenant) -> str:
        """The tenant's Stripe customer, created once (the tenant row is locked by the
        caller; the idempotency key makes a retry after a rollback return the same one)."""
        if tenant.stripe_customer_id:
            return tenant.stripe_customer_id
        customer = await stripe_client(settings).v1.customers.create_async(
            {
                "name": tenant.name,
                "metadata": {"tenant_id": str(tenant.id), "tenant_slug": tenant.slug},
            },
            {"idempotency_key": f"tenant-{tenant.id}-customer"},
        )
        tenant.stripe_customer_id = customer.id
        async with public_tx():
            await tenant.save(update_fields=["stripe_customer_id"])
        return str(customer.id)

    # --- reads -----------------------------------------------------------------------------

    async def tenant(self, tenant_id: int) -> Tenant:
        async with public_tx():
            tenant = await Tenant.get_or_none(id=tenant_id)
        if tenant is None:
            raise NotFound("Tenant", tenant_id)
        return tenant

    async def invoices(
        self, settings: Settings, tenant_id: int, first: int, after: str | None
    ) -> InvoicePage:
        """The tenant's invoices, newest first, read from Stripe (never stored here)."""
        tenant = await self.tenant(tenant_id)
        if not tenant.stripe_customer_id or first == 0:
            return InvoicePage([], False)
        params: dict[str, Any] = {"customer": tenant.stripe_customer_id, "limit": first}
        if after:
            params["starting_after"] = after
        page = await stripe_client(settings).v1.invoices.list_async(params)  # type: ignore[arg-type]
        rows = [
            InvoiceRow(
                id=str(inv["id"]),
                number=inv.get("number"),
                status=inv.get("status"),
                currency=str(inv.get("currency") or ""),
                amount_due=int(inv.get("amount_due") or 0),
                amount_paid=int(inv.get("amount_paid") or 0),
                created=_time(inv.get("created")) or datetime.fromtimestamp(0, UTC),
                hosted_invoice_url=inv.get("hosted_invoice_url"),
                invoice_pdf=inv.get("invoice_pdf"),
            )
            for inv in (_plain(i) for i in page.data)
            if _id(inv.get("customer")) == tenant.stripe_customer_id  # never another's
        ]
        return InvoicePage(rows, bool(page.has_more))

    # --- webhook intake --------------------------------------------------------------------

    async def receive_event(self, event: dict[str, Any]) -> bool:
        """Store a verified event once by its id and enqueue its handling after the commit.
        False when the id was already stored (a redelivery: nothing happens)."""
        try:
            async with public_tx():
                await StripeEvent.create(
                    id=event["id"],
                    type=str(event.get("type", "")),
                    created=_time(event.get("created")) or datetime.now(UTC),
                    livemode=bool(event.get("livemode")),
                    payload=event,
                )
                outbox.enqueue(HANDLE_EVENT_JOB, event["id"])
        except IntegrityError:
            return False
        return True

    async def pending_events(self, older_than: datetime) -> list[tuple[str, int]]:
        """Unprocessed events received before `older_than`, except those that failed
        MAX_EVENT_ATTEMPTS times (left, with their `error`, for an operator)."""
        async with public_tx():
            rows = await StripeEvent.filter(
                processed_at=None, received_at__lt=older_than, attempts__lt=MAX_EVENT_ATTEMPTS
            ).values_list("id", "attempts")
        return [(str(i), int(a)) for i, a in rows]

    async def handle_event(self, settings: Settings, event_id: str) -> str:
        """Apply one stored event (the `billing.handle_event` job). Re-reads what it names
        from Stripe, so running it twice, late, or after a newer event is harmless."""
        async with public_tx():
            event = await StripeEvent.get_or_none(id=event_id)
        if event is None:
            return "unknown event"
        if event.processed_at is not None:
            return "already processed"
        obj = _get(event.payload, "data", "object") or {}
        tenant_id: int | None = None
        outcome = "ignored"
        try:
            if event.type in HANDLED_EVENTS:
                tenant_id, outcome = await self._apply(settings, event.type, obj)
        except stripe.InvalidRequestError as exc:
            if exc.code != "resource_missing":
                raise
            # the object is gone (or lives in another account/mode): nothing to apply
            outcome = f"missing: {exc.user_message}"
            log.warning("stripe_event_object_missing", event_id=event_id, error=outcome)
        except Exception as exc:
            async with public_tx():
                await StripeEvent.filter(id=event_id).update(
                    attempts=event.attempts + 1, error=f"{type(exc).__name__}: {exc}"[:2000]
                )
            raise
        async with public_tx():
            await StripeEvent.filter(id=event_id).update(
                processed_at=datetime.now(UTC),
                attempts=event.attempts + 1,
                error=None,
                tenant_id=tenant_id,
            )
        return outcome

    async def _apply(
        self, settings: Settings, kind: str, obj: dict[str, Any]
    ) -> tuple[int | None, str]:
        client = stripe_client(settings)
        if kind == "checkout.session.completed":
            session = _plain(await client.v1.checkout.sessions.retrieve_async(str(obj["id"])))
            subscription = _id(session.get("subscription"))
            if subscription is None:
                return None, "no subscription"
            hint = session.get("client_reference_id")
            return await self.sync_subscription(
                settings, subscription, int(hint) if hint and str(hint).isdigit() else None
            )
        if kind.startswith("customer.subscription."):
            return await self.sync_subscription(settings, str(obj["id"]))
        invoice = _plain(await client.v1.invoices.retrieve_async(str(obj["id"])))
        subscription = _id(
            _get(invoice, "parent", "subscription_details", "subscription")
            or invoice.get("subscription")  # API versions before 2025-03-31
        )
        if subscription is None:
            return None, "invoice without subscription"
        return await self.sync_subscription(settings, subscription)

    async def sync_subscription(
        self,
        settings: Settings,
        subscription_id: str,
        tenant_hint: int | None = None,
        now: datetime | None = None,
    ) -> tuple[int | None, str]:
        """Make the tenant's plan and dunning state what the subscription says now."""
        sub = _plain(await stripe_client(settings).v1.subscriptions.retrieve_async(subscription_id))
        now = now or datetime.now(UTC)
        customer = _id(sub.get("customer"))
        status = str(sub.get("status"))
        item = _get(sub, "items", "data", 0)
        price = _id(_get(item, "price"))
        plan = self.plan_for_price(settings, price) or _get(sub, "metadata", "plan")
        period_end = _time(_get(item, "current_period_end") or sub.get("current_period_end"))
        async with public_tx():
            tenant = await Tenant.filter(stripe_customer_id=customer).select_for_update().first()
            if tenant is None and tenant_hint is not None:
                tenant = (
                    await Tenant.filter(id=tenant_hint, stripe_customer_id=None)
                    .select_for_update()
                    .first()
                )
                if tenant is not None:
                    tenant.stripe_customer_id = customer
            if tenant is None:
                log.warning("stripe_subscription_without_tenant", subscription=subscription_id)
                return None, "no tenant"
            current = tenant.stripe_subscription_id
            if current and current != subscription_id and status not in LIVE:
                # an older subscription ending after the tenant moved on to a new one
                return tenant.id, f"stale subscription {status}"
            tenant.stripe_subscription_id = subscription_id
            tenant.subscription_status = status
            tenant.current_period_end = period_end
            if status in GOOD_STANDING:
                if plan in PLANS:
                    tenant.plan = str(plan)
                tenant.past_due_since = tenant.grace_until = tenant.restricted_at = None
            elif status in PAST_DUE:
                if plan in PLANS:
                    tenant.plan = str(plan)
                if tenant.past_due_since is None:
                    tenant.past_due_since = now
                    tenant.grace_until = now + timedelta(days=settings.billing_grace_days)
                if tenant.grace_until is not None and tenant.grace_until <= now:
                    tenant.restricted_at = tenant.restricted_at or now
            elif status in ENDED:
                tenant.plan = "free"
                tenant.past_due_since = tenant.grace_until = tenant.restricted_at = None
            await tenant.save()
        policies.invalidate(tenant.id)
        log.info(
            "subscription_synced", tenant=tenant.id, status=status, plan=tenant.plan, sub=sub["id"]
        )
        return tenant.id, f"{status} {tenant.plan}"

    @staticmethod
    def plan_for_price(settings: Settings, price: str | None) -> str | None:
        for plan, by_interval in settings.stripe_prices.items():
            if price in by_interval.values():
                return plan
        return None

    async def enforce_dunning(self, now: datetime | None = None) -> int:
        """Restrict (read-only) every tenant still past due after its grace period."""
        now = now or datetime.now(UTC)
        async with public_tx():
            rows = await Tenant.filter(
                grace_until__lte=now,
                restricted_at=None,
                subscription_status__in=sorted(PAST_DUE),
            ).values_list("id", flat=True)
            ids: list[int] = [int(i) for i in rows]  # type: ignore[call-overload]
            if ids:
                await Tenant.filter(id__in=list(ids)).update(restricted_at=now)
        for tenant_id in ids:
            policies.invalidate(tenant_id)
            log.info("tenant_restricted", tenant=tenant_id)
        return len(ids)


def request_key(request_id: str | None) -> str:
    """An idempotency-key suffix: the request id (a client retrying with the same
    X-Request-Id gets the same Stripe session), or a fresh one."""
    return request_id or uuid.uuid4().hex


billing = BillingService()
