"""Outbound webhooks against a local receiver that verifies every request with the Standard
Webhooks algorithm (the `standardwebhooks` package a partner would use)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from core.settings import get_settings
from domain.webhooks import rules
from domain.webhooks.models import WebhookDelivery
from jobs.webhooks import requeue_due
from tenants.tx import tenant_tx
from tests.collection.test_import import add_accounts, jsonl, rows_for
from tests.conftest import GQL, Tenant, import_file, run_jobs

CREATE = """mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) {
    __typename ... on CreateWebhookEndpointSuccess { secret endpoint { id url events isActive } }
    ... on ValidationFailed { fields { field message } } } }"""
UPDATE = """mutation($i: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $i) {
    __typename ... on UpdateWebhookEndpointSuccess { endpoint { url events isActive } }
    ... on UserError { code } } }"""
DELETE = """mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { __typename
    ... on UserError { code } } }"""
REDELIVER = """mutation($id: ID!) { redeliverWebhook(deliveryId: $id) { __typename
    ... on RedeliverWebhookSuccess { delivery { status } } ... on UserError { code } } }"""
DELIVERIES = """query($s: WebhookDeliveryStatus) { webhookDeliveries(first: 100, status: $s) {
    edges { node { id endpointId eventType messageId status attempts responseCode lastError
    nextAttemptAt payload } } } }"""
ENDPOINTS = "{ webhookEndpoints { id url events } }"


@dataclass
class Receiver:
    """A partner's endpoint: answers with the queued statuses (then 200), and verifies every
    request's signature with the endpoint's secret."""

    url: str = ""
    secret: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)  # verified bodies + headers

    async def handle(self, request: Request) -> PlainTextResponse:
        body = await request.body()
        headers = dict(request.headers)
        payload = Webhook(self.secret).verify(body, headers)  # raises if the signature is bad
        self.received.append({"id": headers["webhook-id"], "payload": payload})
        status = self.statuses.pop(0) if self.statuses else 200
        return PlainTextResponse("ok" if status < 300 else "nope", status_code=status)

    def ids(self) -> list[str]:
        return [r["id"] for r in self.received]


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = Starlette(routes=[Route("/hook", rec.handle, methods=["POST"])])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    rec.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield rec
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    settings = get_settings()
    monkeypatch.setattr(settings, "webhook_retry_base_seconds", 0.05)
    monkeypatch.setattr(settings, "webhook_max_attempts", 3)
    yield


async def create_endpoint(
    gql: GQL, tenant: Tenant, rec: Receiver, events: list[str] | None = None
) -> str:
    data = await gql.ok(
        CREATE, {"i": {"url": rec.url, "events": events or ["post.added"]}}, token=tenant.token
    )
    created = data["createWebhookEndpoint"]
    assert created["__typename"] == "CreateWebhookEndpointSuccess", created
    assert created["secret"].startswith("whsec_")
    rec.secret = created["secret"]
    return str(created["endpoint"]["id"])


async def add_posts(gql: GQL, tenant: Tenant, n: int, prefix: str = "w") -> None:
    await add_accounts(gql, tenant.token, [f"h{prefix}"])
    await import_file(gql, tenant.token, "p.jsonl", jsonl(rows_for([f"h{prefix}"], n, prefix)))
    await run_jobs()  # the import, then the deliveries it caused


async def deliveries(gql: GQL, tenant: Tenant, status: str | None = None) -> list[dict[str, Any]]:
    data = await gql.ok(DELIVERIES, {"s": status}, token=tenant.token)
    return [e["node"] for e in data["webhookDeliveries"]["edges"]]


async def test_events_are_delivered_signed(gql: GQL, tenant: Tenant) -> None:
    async with receiver() as rec:
        endpoint_id = await create_endpoint(gql, tenant, rec)
        await add_posts(gql, tenant, 3)
    assert len(rec.received) == 3 and len(set(rec.ids())) == 3
    assert {r["payload"]["type"] for r in rec.received} == {"post.added"}
    data = rec.received[0]["payload"]["data"]
    # ids are the API's global ids: the partner can read the post with node(id:)
    post = await gql.ok(
        "query($id: ID!) { node(id: $id) { id } }", {"id": data["id"]}, token=tenant.token
    )
    assert post["node"] == {"id": data["id"]}
    log = await deliveries(gql, tenant)
    assert {(d["status"], d["attempts"], d["responseCode"]) for d in log} == {("SUCCEEDED", 1, 200)}
    assert {d["endpointId"] for d in log} == {endpoint_id}
    assert sorted(d["messageId"] for d in log) == sorted(rec.ids())


async def test_a_failing_receiver_is_retried_until_it_succeeds(
    gql: GQL, tenant: Tenant, fast_retries: None
) -> None:
    async with receiver() as rec:
        await create_endpoint(gql, tenant, rec)
        rec.statuses = [500, 503]  # the first two attempts fail
        await add_posts(gql, tenant, 1)
    # one message, three attempts, the same webhook-id each time, each signed afresh
    assert len(rec.received) == 3 and len(set(rec.ids())) == 1
    (delivery,) = await deliveries(gql, tenant)
    assert (delivery["status"], delivery["attempts"], delivery["responseCode"]) == (
        "SUCCEEDED",
        3,
        200,
    )
    assert delivery["lastError"] is None and delivery["nextAttemptAt"] is None


async def test_exhausted_delivery_then_manual_redelivery(
    gql: GQL, tenant: Tenant, fast_retries: None
) -> None:
    async with receiver() as rec:
        await create_endpoint(gql, tenant, rec)
        rec.statuses = [500, 500, 500]
        await add_posts(gql, tenant, 1)
        (failed,) = await deliveries(gql, tenant)
        assert (failed["status"], failed["attempts"], failed["lastError"]) == (
            "FAILED",
            3,
            "HTTP 500",
        )
        again = await gql.ok(REDELIVER, {"id": failed["id"]}, token=tenant.token)
        assert again["redeliverWebhook"] == {
            "__typename": "RedeliverWebhookSuccess",
            "delivery": {"status": "PENDING"},
        }
        # a pending delivery is not queued twice
        twice = await gql.ok(REDELIVER, {"id": failed["id"]}, token=tenant.token)
        assert twice["redeliverWebhook"] == {
            "__typename": "ValidationFailed",
            "code": "VALIDATION_FAILED",
        }
        await run_jobs()
    assert len(rec.received) == 4 and set(rec.ids()) == {failed["messageId"]}
    (done,) = await deliveries(gql, tenant)
    assert (done["status"], done["attempts"], done["responseCode"]) == ("SUCCEEDED", 4, 200)


async def test_a_lost_workers_delivery_is_sent_again_under_the_same_id(
    gql: GQL, tenant: Tenant
) -> None:
    async with receiver() as rec:
        await create_endpoint(gql, tenant, rec)
        await add_posts(gql, tenant, 1)
        (sent,) = await deliveries(gql, tenant)
        # The state a worker leaves when it dies after claiming: pending, counted, and
        # claimed until a time now past (its job gone from the queue).
        async with tenant_tx(tenant.schema):
            await WebhookDelivery.all().update(
                status="pending",
                claimed_until=await _ago(),
                next_attempt_at=await _ago(),
            )
        assert await requeue_due({}) >= 1
        await run_jobs()
        # while a live worker holds its claim, nothing is requeued
        async with tenant_tx(tenant.schema):
            await WebhookDelivery.all().update(status="pending", claimed_until=await _ago(-600))
        assert await requeue_due({}) == 0
    assert rec.ids() == [sent["messageId"], sent["messageId"]]


async def _ago(seconds: float = 60) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(seconds=seconds)


async def test_endpoints_are_checked_and_private_addresses_refused_in_production(
    gql: GQL, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def create(url: str, events: list[str]) -> dict[str, Any]:
        data = await gql.ok(CREATE, {"i": {"url": url, "events": events}}, token=tenant.token)
        return data["createWebhookEndpoint"]  # type: ignore[no-any-return]

    bad = await create("ftp://example.com/x", ["post.added", "no.such"])
    assert bad["__typename"] == "ValidationFailed"
    assert {f["field"] for f in bad["fields"]} == {"url", "events"}
    assert (await create("http://127.0.0.1:9/x", []))["__typename"] == "ValidationFailed"
    monkeypatch.setattr(get_settings(), "webhook_allow_private_urls", False)
    for url in ("http://127.0.0.1:9/x", "http://10.1.2.3/", "http://[::1]/", "http://localhost/"):
        refused = await create(url, ["post.added"])
        assert refused["__typename"] == "ValidationFailed", url
        assert refused["fields"][0]["message"] == "must not point at a private address"
    assert (await gql.ok(ENDPOINTS, token=tenant.token))["webhookEndpoints"] == []
    # an endpoint saved while allowed is refused at send time, without a request or a retry
    monkeypatch.setattr(get_settings(), "webhook_allow_private_urls", True)
    async with receiver() as rec:
        await create_endpoint(gql, tenant, rec)
        monkeypatch.setattr(get_settings(), "webhook_allow_private_urls", False)
        await add_posts(gql, tenant, 1)
    assert rec.received == []
    (refused_delivery,) = await deliveries(gql, tenant)
    assert refused_delivery["status"] == "FAILED" and refused_delivery["attempts"] == 1
    assert refused_delivery["lastError"] == "url: must not point at a private address"


def test_address_rules() -> None:
    for private in (
        "127.0.0.1",
        "10.0.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "::ffff:127.0.0.1",
        "fd00::1",
        "0.0.0.0",
        "224.0.0.1",
    ):
        assert not rules.is_public_address(private), private
    for public in ("8.8.8.8", "2001:4860:4860::8888"):
        assert rules.is_public_address(public), public
    assert [rules.retry_delay(n, 30, 3600) for n in (1, 2, 3, 8)] == [30, 60, 120, 3600]
    assert rules.event_type("collection_task_updated") == "collection_task.updated"


async def test_update_delete_and_event_filter(gql: GQL, tenant: Tenant) -> None:
    async with receiver() as rec:
        endpoint_id = await create_endpoint(gql, tenant, rec, ["platform_connection.broken"])
        await add_posts(gql, tenant, 1)  # no post.added subscription: nothing sent
        assert rec.received == []
        updated = await gql.ok(
            UPDATE,
            {"i": {"id": endpoint_id, "events": ["post.added", "collection_task.updated"]}},
            token=tenant.token,
        )
        assert updated["updateWebhookEndpoint"]["endpoint"]["events"] == [
            "post.added",
            "collection_task.updated",
        ]
        await add_posts(gql, tenant, 1, prefix="u")
        types = {r["payload"]["type"] for r in rec.received}
        assert types == {"post.added", "collection_task.updated"}
        paused = await gql.ok(
            UPDATE, {"i": {"id": endpoint_id, "isActive": False}}, token=tenant.token
        )
        assert paused["updateWebhookEndpoint"]["endpoint"]["isActive"] is False
        count = len(rec.received)
        await add_posts(gql, tenant, 1, prefix="v")
        assert len(rec.received) == count
        # a delivery queued before the pause is not sent while paused
        async with tenant_tx(tenant.schema):
            queued = await WebhookDelivery.filter(status="succeeded").first()
            assert queued is not None
            queued.status, queued.next_attempt_at = "pending", await _ago()
            await queued.save()
        assert await requeue_due({}) == 1
        await run_jobs()
        assert len(rec.received) == count
        paused_log = await deliveries(gql, tenant, "FAILED")
        assert [d["lastError"] for d in paused_log] == ["endpoint paused"]
    deleted = await gql.ok(DELETE, {"id": endpoint_id}, token=tenant.token)
    assert deleted["deleteWebhookEndpoint"]["__typename"] == "DeleteWebhookEndpointSuccess"
    assert await deliveries(gql, tenant) == []
    audit = await gql.ok(
        "{ auditLog(first: 10) { edges { node { action } } } }", token=tenant.token
    )
    actions = [e["node"]["action"] for e in audit["auditLog"]["edges"]]
    assert actions[:3] == [
        "webhook_endpoint.deleted",
        "webhook_endpoint.updated",
        "webhook_endpoint.updated",
    ]


async def test_isolation(gql: GQL, tenant: Tenant, other_tenant: Tenant) -> None:
    async with receiver() as rec:
        endpoint_id = await create_endpoint(gql, tenant, rec)
        await add_posts(gql, other_tenant, 2, prefix="b")  # B's posts reach no A endpoint
        assert rec.received == []
        await add_posts(gql, tenant, 1)
    (delivery,) = await deliveries(gql, tenant)
    assert await deliveries(gql, other_tenant) == []
    assert (await gql.ok(ENDPOINTS, token=other_tenant.token))["webhookEndpoints"] == []
    b = other_tenant.token
    redeliver = await gql.ok(REDELIVER, {"id": delivery["id"]}, token=b)
    assert redeliver["redeliverWebhook"]["__typename"] == "NotFound"
    update = await gql.ok(UPDATE, {"i": {"id": endpoint_id, "url": "http://x.example/"}}, token=b)
    assert update["updateWebhookEndpoint"]["__typename"] == "NotFound"
    assert (await gql.ok(DELETE, {"id": endpoint_id}, token=b))["deleteWebhookEndpoint"][
        "__typename"
    ] == "NotFound"
    for node_id in (endpoint_id, delivery["id"]):
        got = await gql.ok("query($id: ID!) { node(id: $id) { id } }", {"id": node_id}, token=b)
        assert got["node"] is None
    assert (await gql.ok(ENDPOINTS, token=tenant.token))["webhookEndpoints"][0]["url"] == rec.url


async def test_a_rolled_back_mutation_sends_nothing(gql: GQL, tenant: Tenant) -> None:
    """startCollection creates the first platform's task (an event), then fails on the
    second: the savepoint's rollback takes the event's delivery (and its job) with it."""
    await gql.ok(
        """mutation { connectPlatform(input: {platform: YOUTUBE,
            secrets: [{name: "api_key", value: "k"}]}) { __typename } }""",
        token=tenant.token,
    )
    await add_accounts(gql, tenant.token, ["rollback"])
    listed = await gql.ok("{ influencers(first: 1) { edges { node { id } } } }", token=tenant.token)
    influencer_id = listed["influencers"]["edges"][0]["node"]["id"]
    async with receiver() as rec:
        await create_endpoint(gql, tenant, rec, ["collection_task.updated"])
        data = await gql.ok(
            """mutation($id: ID!) { startCollection(input: {influencerId: $id,
                platforms: [YOUTUBE, TIKTOK]}) { __typename } }""",
            {"id": influencer_id},
            token=tenant.token,
        )
        assert data["startCollection"]["__typename"] == "ValidationFailed"
        await run_jobs()
    assert rec.received == []
    assert await deliveries(gql, tenant) == []
