"""Billing end to end against a fake Stripe at the HTTP boundary (tests/fakes/stripe.py):
Free -> checkout -> Pro active -> renewal fails -> grace -> restricted (mutations refused,
reads fine) -> paid -> restored; duplicated and reordered webhooks change nothing twice; bad
signatures are refused with nothing stored; idempotency keys on every Stripe write; tenant
isolation. Webhooks are signed with a real secret, Stripe's documented scheme."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import uvicorn

from billing.models import StripeEvent
from jobs.billing import enforce_dunning
from tenants.models import Tenant as TenantRow
from tests.conftest import GQL, Tenant, _free_port, run_jobs
from tests.fakes.stripe import API_KEY, PRICES, WEBHOOK_SECRET, FakeStripe, sign

CHECKOUT = """mutation($plan: String!, $interval: BillingInterval!) {
  createCheckoutSession(plan: $plan, interval: $interval) { __typename
    ... on CreateCheckoutSessionSuccess { session { id url } }
    ... on ValidationFailed { fields { field message } } } }"""
PORTAL = """mutation { createBillingPortalSession { __typename
    ... on CreateBillingPortalSessionSuccess { session { url } } } }"""
STATE = """{ viewer { tenant { plan { name title } limits { trackedInfluencers seats }
    usage { influencers seats liveSubscriptions } } }
  subscription { plan { name } status currentPeriodEnd pastDueSince graceUntil restrictedAt
    readOnly hasCustomer } }"""
INVOICES = """query($first: Int, $after: String) { invoices(first: $first, after: $after) {
    edges { cursor node { id number status currency amountDue amountPaid hostedInvoiceUrl } }
    pageInfo { hasNextPage endCursor } } }"""
ADD = """mutation($i: AddInfluencerInput!) { addInfluencer(input: $i) { __typename
    ... on AddInfluencerSuccess { influencer { id } }
    ... on PlanLimitReached { code message limit plan allowed } } }"""
LIST = "{ influencers(first: 50) { edges { node { displayName } } } }"


@pytest.fixture
async def stripe_fake() -> AsyncIterator[FakeStripe]:
    """The fake Stripe on a loopback port; the app's Stripe settings point at it."""
    from core.settings import get_settings

    fake = FakeStripe()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(fake.app(), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    env = {
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": f"http://127.0.0.1:{port}",
        "STRIPE_PRICES": json.dumps(PRICES),
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        yield fake
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
        server.should_exit = True
        await serving


async def deliver(
    gql: GQL,
    event: dict[str, Any],
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    body: bytes | None = None,
) -> Any:
    payload = body if body is not None else json.dumps(event, indent=2).encode()
    return await gql.http.post(
        "/webhooks/stripe",
        content=payload,
        headers={
            "Stripe-Signature": sign(payload, secret, timestamp),
            "Content-Type": "application/json",
        },
    )


async def deliver_all(gql: GQL, events: list[dict[str, Any]]) -> None:
    for event in events:
        response = await deliver(gql, event)
        assert response.status_code == 200, response.text
    await run_jobs()


async def state(gql: GQL, t: Tenant) -> dict[str, Any]:
    return await gql.ok(STATE, token=t.token)  # type: ignore[no-any-return]


async def add(gql: GQL, t: Tenant, name: str) -> dict[str, Any]:
    handle = f"{name.lower()}_{time.monotonic_ns()}"
    body = await gql(
        ADD,
        {
            "i": {
                "displayName": name,
                "accounts": [{"platform": "INSTAGRAM", "handle": handle, "followers": 10}],
            }
        },
        token=t.token,
    )
    return body


async def checkout_to_pro(gql: GQL, fake: FakeStripe, t: Tenant) -> str:
    """Checkout for Pro monthly, paid; returns the subscription id."""
    data = await gql.ok(CHECKOUT, {"plan": "pro", "interval": "MONTH"}, token=t.token)
    session = data["createCheckoutSession"]
    assert session["__typename"] == "CreateCheckoutSessionSuccess", session
    await deliver_all(gql, fake.complete_checkout(session["session"]["id"]))
    return str(fake.sessions[session["session"]["id"]]["subscription"])


async def test_journey_free_checkout_pro_dunning_restricted_restored(
    gql: GQL, tenant: Tenant, stripe_fake: FakeStripe
) -> None:
    fake = stripe_fake
    before = await state(gql, tenant)
    assert before["viewer"]["tenant"]["plan"] == {"name": "free", "title": "Free"}
    assert before["viewer"]["tenant"]["limits"] == {"trackedInfluencers": 5, "seats": 2}
    assert before["subscription"]["status"] is None
    assert before["subscription"]["hasCustomer"] is False

    # Checkout: one customer per tenant, however many sessions; a key on every write.
    first = await gql.ok(CHECKOUT, {"plan": "pro", "interval": "MONTH"}, token=tenant.token)
    assert first["createCheckoutSession"]["session"]["url"].startswith(
        "https://checkout.stripe.com/"
    )
    await gql.ok(CHECKOUT, {"plan": "pro", "interval": "YEAR"}, token=tenant.token)
    assert len(fake.customers) == 1
    writes = fake.writes()
    assert [w.path for w in writes] == [
        "/v1/customers",
        "/v1/checkout/sessions",
        "/v1/checkout/sessions",
    ]
    assert all(w.idempotency_key for w in writes)
    assert len({w.idempotency_key for w in writes}) == 3
    created = writes[1].params
    assert created["mode"] == "subscription"
    assert created["line_items"] == [{"price": "price_pro_month", "quantity": "1"}]
    assert created["customer"] == next(iter(fake.customers))
    assert created["subscription_data"]["metadata"]["plan"] == "pro"
    session_id = first["createCheckoutSession"]["session"]["id"]
    # Nothing changes until Stripe says the checkout is paid.
    assert (await state(gql, tenant))["viewer"]["tenant"]["plan"]["name"] == "free"

    await deliver_all(gql, fake.complete_checkout(session_id))
    sub_id = fake.sessions[session_id]["subscription"]
    pro = await state(gql, tenant)
    assert pro["viewer"]["tenant"]["plan"]["name"] == "pro"
    assert pro["viewer"]["tenant"]["limits"]["trackedInfluencers"] == 250
    assert pro["subscription"]["status"] == "active"
    assert pro["subscription"]["currentPeriodEnd"] is not None
    assert pro["subscription"]["readOnly"] is False
    for i in range(6):  # more than Free allows
        assert (await add(gql, tenant, f"Pro{i}"))["data"]["addInfluencer"][
            "__typename"
        ] == "AddInfluencerSuccess"

    # The renewal is declined: past due, grace period, still writable.
    await deliver_all(gql, fake.fail_renewal(sub_id))
    grace = (await state(gql, tenant))["subscription"]
    assert grace["status"] == "past_due"
    assert grace["pastDueSince"] is not None and grace["graceUntil"] is not None
    assert grace["readOnly"] is False
    assert (await add(gql, tenant, "InGrace"))["data"]["addInfluencer"][
        "__typename"
    ] == "AddInfluencerSuccess"

    # Within the grace period the cron restricts nobody; after it, the tenant is read-only.
    row = await TenantRow.get(slug=tenant.slug)
    assert row.grace_until is not None
    assert await enforce_dunning({}, now=row.grace_until - timedelta(seconds=1)) == 0
    assert await enforce_dunning({}, now=row.grace_until + timedelta(seconds=1)) == 1
    restricted = await state(gql, tenant)
    assert restricted["subscription"]["readOnly"] is True
    assert restricted["viewer"]["tenant"]["usage"]["influencers"] == 7
    refused = await add(gql, tenant, "Refused")
    assert refused["data"] is None
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["TENANT_RESTRICTED"]
    listing = await gql.ok(LIST, token=tenant.token)  # reads still work
    assert len(listing["influencers"]["edges"]) == 7
    portal = await gql.ok(PORTAL, token=tenant.token)  # billing mutations still work
    assert portal["createBillingPortalSession"]["session"]["url"].startswith(
        "https://billing.stripe.com/"
    )
    assert fake.writes()[-1].idempotency_key

    # The open invoice is paid: everything is restored.
    await deliver_all(gql, fake.pay_open_invoice(sub_id))
    restored = (await state(gql, tenant))["subscription"]
    assert restored["status"] == "active"
    assert restored["readOnly"] is False
    assert restored["pastDueSince"] is None and restored["graceUntil"] is None
    assert (await add(gql, tenant, "Back"))["data"]["addInfluencer"][
        "__typename"
    ] == "AddInfluencerSuccess"

    # Invoices, newest first, read from Stripe; paged by invoice id.
    page = (await gql.ok(INVOICES, {"first": 1}, token=tenant.token))["invoices"]
    assert page["pageInfo"]["hasNextPage"] is True
    newest = page["edges"][0]["node"]
    assert newest["status"] == "paid" and newest["amountPaid"] == 9900
    rest = (
        await gql.ok(
            INVOICES, {"first": 10, "after": page["pageInfo"]["endCursor"]}, token=tenant.token
        )
    )["invoices"]
    assert [e["node"]["status"] for e in rest["edges"]] == ["paid"]
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_duplicate_and_reordered_events_change_nothing_twice(
    gql: GQL, tenant: Tenant, stripe_fake: FakeStripe
) -> None:
    fake = stripe_fake
    data = await gql.ok(CHECKOUT, {"plan": "starter", "interval": "MONTH"}, token=tenant.token)
    events = fake.complete_checkout(data["createCheckoutSession"]["session"]["id"])
    await deliver_all(gql, events)
    stored = await StripeEvent.all().count()

    # A redelivery is recognised by id: not stored again, no job.
    again = await deliver(gql, events[0])
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert await StripeEvent.all().count() == stored
    reads = len(fake.requests)
    await run_jobs()
    assert len(fake.requests) == reads  # nothing handled it again

    # Failure and recovery delivered in the wrong order: the late past_due events re-read the
    # (now active) subscription and leave the tenant as it is.
    sub_id = next(iter(fake.subscriptions))
    failed = fake.fail_renewal(sub_id)
    paid = fake.pay_open_invoice(sub_id)
    await deliver_all(gql, paid)
    await deliver_all(gql, failed)
    sub = (await state(gql, tenant))["subscription"]
    assert sub["status"] == "active" and sub["plan"]["name"] == "starter"
    assert sub["pastDueSince"] is None and sub["graceUntil"] is None
    assert await StripeEvent.filter(processed_at=None).count() == 0

    # A duplicated failure notice does not restart the grace period.
    more_failed = fake.fail_renewal(sub_id)
    await deliver_all(gql, more_failed)
    first_grace = (await TenantRow.get(slug=tenant.slug)).grace_until
    assert first_grace is not None
    await deliver_all(
        gql,
        [
            fake.event(
                "invoice.payment_failed",
                fake.invoices[fake.subscriptions[sub_id]["latest_invoice"]],
            )
        ],
    )
    assert (await TenantRow.get(slug=tenant.slug)).grace_until == first_grace
    assert (await deliver(gql, more_failed[0])).json()["duplicate"] is True


async def test_bad_signatures_are_refused_and_nothing_is_stored(
    gql: GQL, tenant: Tenant, stripe_fake: FakeStripe
) -> None:
    fake = stripe_fake
    event = fake.event("customer.subscription.updated", {"id": "sub_x", "object": "subscription"})
    stored = await StripeEvent.all().count()
    payload = json.dumps(event).encode()
    wrong_secret = await deliver(gql, event, secret="whsec_someone_else")
    tampered = await gql.http.post(
        "/webhooks/stripe",
        content=payload.replace(b"sub_x", b"sub_y"),
        headers={"Stripe-Signature": sign(payload)},
    )
    too_old = await deliver(gql, event, timestamp=int(time.time()) - 301)
    unsigned = await gql.http.post("/webhooks/stripe", content=payload)
    not_json = await deliver(gql, event, body=b"not json")
    for response in (wrong_secret, tampered, too_old, unsigned, not_json):
        assert response.status_code == 400, response.text
    assert await StripeEvent.all().count() == stored
    assert not await StripeEvent.filter(id=event["id"]).exists()
    # the same event, signed right, is accepted
    assert (await deliver(gql, event)).status_code == 200
    assert await StripeEvent.filter(id=event["id"]).exists()


async def test_billing_is_isolated_between_tenants(
    gql: GQL, tenant: Tenant, other_tenant: Tenant, stripe_fake: FakeStripe
) -> None:
    await checkout_to_pro(gql, stripe_fake, tenant)
    mine = (await gql.ok(INVOICES, token=tenant.token))["invoices"]["edges"]
    assert len(mine) == 1
    theirs = await state(gql, other_tenant)
    assert theirs["viewer"]["tenant"]["plan"]["name"] == "free"
    assert theirs["subscription"] == {
        "plan": {"name": "free"},
        "status": None,
        "currentPeriodEnd": None,
        "pastDueSince": None,
        "graceUntil": None,
        "restrictedAt": None,
        "readOnly": False,
        "hasCustomer": False,
    }
    assert (await gql.ok(INVOICES, token=other_tenant.token))["invoices"]["edges"] == []
    # B's own customer sees only B's invoices (none), never A's
    await gql.ok(PORTAL, token=other_tenant.token)
    assert (await gql.ok(INVOICES, token=other_tenant.token))["invoices"]["edges"] == []
    row = await TenantRow.get(slug=other_tenant.slug)
    assert row.stripe_subscription_id is None and row.plan == "free"


async def test_checkout_refuses_unknown_plans_and_a_second_subscription(
    gql: GQL, tenant: Tenant, stripe_fake: FakeStripe
) -> None:
    bad = await gql.ok(CHECKOUT, {"plan": "platinum", "interval": "MONTH"}, token=tenant.token)
    assert bad["createCheckoutSession"]["__typename"] == "ValidationFailed"
    free = await gql.ok(CHECKOUT, {"plan": "free", "interval": "MONTH"}, token=tenant.token)
    assert free["createCheckoutSession"]["__typename"] == "ValidationFailed"
    assert stripe_fake.writes() == []  # bad input changes nothing, not even in Stripe
    await checkout_to_pro(gql, stripe_fake, tenant)
    again = await gql.ok(CHECKOUT, {"plan": "starter", "interval": "MONTH"}, token=tenant.token)
    assert again["createCheckoutSession"]["__typename"] == "ValidationFailed"
    assert "billing portal" in again["createCheckoutSession"]["fields"][0]["message"]


async def test_billing_needs_the_billing_scope(
    gql: GQL, tenant: Tenant, stripe_fake: FakeStripe
) -> None:
    from core.settings import get_settings
    from domain.accounts import tokens

    settings = get_settings()
    claims = tokens.decode_access_token(
        tenant.token,
        secret=settings.secret_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    for role in ("admin", "analyst", "viewer"):
        token, _ = tokens.issue_access_token(
            secret=settings.secret_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=300,
            user_id=claims.user_id,
            tenant_id=claims.tenant_id,
            tenant_schema=claims.tenant_schema,
            role=role,
        )
        for query, variables in (
            (CHECKOUT, {"plan": "pro", "interval": "MONTH"}),
            (PORTAL, None),
            (INVOICES, None),
            ("{ subscription { status } }", None),
        ):
            body = await gql(query, variables, token=token)
            assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], (role, body)
    assert stripe_fake.requests == []


async def test_stripe_refusals_and_missing_objects(
    gql: GQL, tenant: Tenant, stripe_fake: FakeStripe
) -> None:
    from core.settings import get_settings

    # a price id configured here but unknown to Stripe: a typed refusal, not a crash
    os.environ["STRIPE_PRICES"] = json.dumps({"pro": {"month": "price_deleted"}})
    get_settings.cache_clear()
    body = await gql.ok(CHECKOUT, {"plan": "pro", "interval": "MONTH"}, token=tenant.token)
    assert body["createCheckoutSession"]["__typename"] == "ValidationFailed"
    # an event naming an object Stripe does not have: handled once, recorded, not retried
    event = stripe_fake.event(
        "customer.subscription.updated", {"id": "sub_gone", "object": "subscription"}
    )
    await deliver_all(gql, [event])
    row = await StripeEvent.get(id=event["id"])
    assert row.processed_at is not None and row.attempts == 1


async def test_an_event_whose_job_was_lost_is_requeued(
    gql: GQL, tenant: Tenant, stripe_fake: FakeStripe
) -> None:
    from datetime import UTC, datetime

    from jobs.billing import requeue_events

    sub_id = await checkout_to_pro(gql, stripe_fake, tenant)
    # stored, but its job never reached Redis (say Redis was down at that moment)
    event = stripe_fake.event(
        "invoice.payment_failed", stripe_fake.fail_renewal(sub_id)[0]["data"]["object"]
    )
    await StripeEvent.create(
        id=event["id"],
        type=event["type"],
        payload=event,
        created=datetime.fromtimestamp(event["created"], UTC),
    )
    assert await requeue_events({}, stale_after=timedelta(0)) >= 1
    await run_jobs()
    assert (await StripeEvent.get(id=event["id"])).processed_at is not None
    assert (await state(gql, tenant))["subscription"]["status"] == "past_due"
