"""The outbox (tenants/outbox.py): events, ARQ jobs and Dramatiq messages registered in a
transaction go out once, after COMMIT; a rollback, or the rollback of the savepoint they were
registered in, drops them; their ids are deterministic."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio.client import PubSub
from tortoise.transactions import in_transaction

from core import hub
from core.broker import get_broker
from core.runtime import runtime
from tenants import outbox
from tenants.tx import tenant_tx
from tests.conftest import Tenant

EVENT = "outbox_test"


@pytest.fixture
async def names() -> AsyncIterator[tuple[str, outbox.ActorRef]]:
    """A job name and an actor (on a queue of its own) that nothing runs; whatever the test
    enqueued is removed afterwards, so that no worker of the run meets it."""
    tag = secrets.token_hex(4)
    job, actor = f"outbox_test.job_{tag}", outbox.ActorRef(f"outbox_test.actor_{tag}", f"q{tag}")
    yield job, actor
    assert runtime.redis is not None
    prefix = outbox.job_id(job)
    for jid in await runtime.redis.zrange(runtime.queue_name, 0, -1):
        if jid.decode().startswith(prefix):
            await runtime.redis.zrem(runtime.queue_name, jid)
            await runtime.redis.delete(b"arq:job:" + jid)
    broker = get_broker()
    await runtime.redis.delete(
        f"{broker.namespace}:{actor.queue}", f"{broker.namespace}:{actor.queue}.msgs"
    )


@pytest.fixture
async def feed(tenant: Tenant) -> AsyncIterator[PubSub]:
    """The tenant's `outbox_test` channel, subscribed."""
    assert runtime.redis is not None
    pubsub = runtime.redis.pubsub()
    await pubsub.subscribe(hub.channel(tenant.schema, EVENT))
    await pubsub.get_message(timeout=5)  # the subscription's confirmation
    yield pubsub
    await pubsub.aclose()


async def events_until_marker(tenant: Tenant, feed: PubSub) -> list[dict[str, Any]]:
    """Every event received on the channel, up to a marker published (through the outbox, in
    a transaction of its own) after them: what went out is in, nothing can still be on its
    way."""
    async with tenant_tx(tenant.schema):
        outbox.publish(EVENT, {"marker": True})
    received = []
    while True:
        message = await feed.get_message(ignore_subscribe_messages=True, timeout=10)
        assert message is not None, f"the marker never came; received {received}"
        payload = json.loads(message["data"])
        if payload == {"marker": True}:
            return received
        received.append(payload)


async def queued_jobs(job: str) -> list[str]:
    assert runtime.redis is not None
    prefix = outbox.job_id(job)
    ids = [jid.decode() for jid in await runtime.redis.zrange(runtime.queue_name, 0, -1)]
    return sorted(jid for jid in ids if jid.startswith(prefix))


async def sent_messages(actor: outbox.ActorRef) -> list[dict[str, Any]]:
    broker = get_broker()
    key = f"{broker.namespace}:{actor.queue}.msgs"
    raw = await asyncio.to_thread(broker.client.hvals, key)
    return [json.loads(m) for m in raw]


async def test_an_event_a_job_and_a_message_go_out_once_after_commit(
    tenant: Tenant, feed: PubSub, names: tuple[str, outbox.ActorRef]
) -> None:
    job, actor = names
    async with tenant_tx(tenant.schema):
        first = (
            outbox.publish(EVENT, {"n": 1}),
            outbox.enqueue(job, tenant.schema, 1),
            outbox.send(actor, tenant.schema, 1),
        )
        # Registered twice in the transaction: the same ids, one message each.
        again = (
            outbox.publish(EVENT, {"n": 1}),
            outbox.enqueue(job, tenant.schema, 1),
            outbox.send(actor, tenant.schema, 1),
        )
        assert again == first
        # Nothing has gone out before COMMIT.
        assert await queued_jobs(job) == []
        assert await sent_messages(actor) == []
    assert await events_until_marker(tenant, feed) == [{"n": 1}]
    assert await queued_jobs(job) == [first[1]]
    messages = await sent_messages(actor)
    assert [(m["message_id"], m["actor_name"], m["queue_name"], m["args"]) for m in messages] == [
        (first[2], actor.name, actor.queue, [tenant.schema, 1])
    ]


async def test_nothing_goes_out_after_a_rollback(
    tenant: Tenant, feed: PubSub, names: tuple[str, outbox.ActorRef]
) -> None:
    job, actor = names
    with pytest.raises(RuntimeError):
        async with tenant_tx(tenant.schema):
            outbox.publish(EVENT, {"n": 1})
            outbox.enqueue(job, tenant.schema, 1)
            outbox.send(actor, tenant.schema, 1)
            raise RuntimeError("the write failed")
    async with tenant_tx(tenant.schema) as tx:
        outbox.publish(EVENT, {"n": 2})
        outbox.enqueue(job, tenant.schema, 2)
        outbox.send(actor, tenant.schema, 2)
        tx.set_rollback()  # rolled back without an exception
    assert await events_until_marker(tenant, feed) == []
    assert await queued_jobs(job) == []
    assert await sent_messages(actor) == []


async def test_a_rolled_back_savepoint_takes_its_messages_with_it(
    tenant: Tenant, feed: PubSub, names: tuple[str, outbox.ActorRef]
) -> None:
    """As `schema.errors.run_mutation` does: a failed call's savepoint is rolled back and the
    transaction goes on to commit the rest."""
    job, actor = names
    async with tenant_tx(tenant.schema) as tx:
        outbox.publish(EVENT, {"n": 0})
        mark = tx.mark()
        with pytest.raises(RuntimeError):
            async with in_transaction():
                outbox.publish(EVENT, {"n": 1})
                outbox.enqueue(job, tenant.schema, 1)
                outbox.send(actor, tenant.schema, 1)
                outbox.enqueue(job, tenant.schema, 3)
                raise RuntimeError("bad input")
        tx.rollback_to(mark)
        outbox.publish(EVENT, {"n": 2})
        kept = outbox.enqueue(job, tenant.schema, 2)
        outbox.send(actor, tenant.schema, 2)
        # Registered again after its savepoint was rolled back: it goes out (once).
        again = outbox.enqueue(job, tenant.schema, 3)
    assert await events_until_marker(tenant, feed) == [{"n": 0}, {"n": 2}]
    assert await queued_jobs(job) == sorted([kept, again])
    assert [m["args"] for m in await sent_messages(actor)] == [[tenant.schema, 2]]


async def test_ids_are_deterministic(tenant: Tenant, names: tuple[str, outbox.ActorRef]) -> None:
    job, actor = names
    ids = []
    for _ in range(2):
        async with tenant_tx(tenant.schema) as tx:
            ids.append(
                (
                    outbox.publish(EVENT, {"n": 1, "at": "2026-12-01"}),
                    outbox.enqueue(job, tenant.schema, 7, suffix="retry1"),
                    outbox.send(actor, tenant.schema, 7),
                    outbox.send(actor, tenant.schema, 8),
                )
            )
            tx.set_rollback()
    (event_a, job_a, msg_a, other_a), (event_b, job_b, msg_b, _) = ids
    # An event and a job are named by what they are: the same in every transaction.
    assert event_a == event_b and event_a.startswith(hub.channel(tenant.schema, EVENT) + ":")
    assert job_a == job_b == f"{runtime.queue_name}:{job}:{tenant.schema}:7:retry1"
    assert job_a == outbox.job_id(job, tenant.schema, 7, suffix="retry1")
    # Dramatiq does not deduplicate: a message is one per transaction, actor and arguments.
    assert msg_a != msg_b and msg_a != other_a


async def test_outside_a_transaction_nothing_can_be_registered(tenant: Tenant) -> None:
    with pytest.raises(RuntimeError, match="no tenant transaction"):
        outbox.enqueue("outbox_test.job", tenant.schema, 1)
