"""The outbox: the one way a transaction makes something happen once it commits.

Three kinds of message, each registered with the current transaction (tenants/tx.py) and sent
after its COMMIT; a rollback drops them, and so does the rollback of the savepoint they were
registered in (`TenantTx.mark` / `rollback_to`):

- `publish(event, payload)`: a domain event on the tenant's Redis channel (`core.hub.channel`),
  for GraphQL subscriptions; the listeners added with `add_event_listener` (the webhook
  fan-out, domain/events.py) see it inside the transaction.
- `enqueue(job, *args)`: an ARQ job, by the name its `@job` declares (jobs/registry.py).
- `send(actor, *args)`: a Dramatiq message, by the actor's name and queue (`ActorRef`), through
  the broker (core/broker.py): senders never import the actors.

Each has a deterministic id, returned: the same message registered twice in one transaction
goes out once. A job's id is also ARQ's job id (made of its name and arguments, scoped by the
queue), so ARQ drops a duplicate of a job that is still queued or running. If Redis is down at
that moment the message is lost, not the data: each job's cron re-enqueues from the rows.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from dramatiq import Message

from core.broker import get_broker
from core.hub import channel
from core.runtime import runtime
from tenants.tx import AfterCommit, TenantTx, current_tx

log = structlog.get_logger(__name__)

# ARQ's queue is a sorted set scored by the time a job may run: a job scored an hour in the past
# runs before every job that is merely due now. That is how on-demand work jumps the queue.
PRIORITY_HEAD_START = timedelta(hours=1)

# The ids of the messages registered in the transaction, in order (a dict, so that
# `TenantTx.rollback_to` can cut it back to a savepoint's mark).
_SENT = "outbox"
_MESSAGE_IDS = uuid.UUID("6f7c1f0e-4a57-4d0b-9a53-2f1c3e1b7d10")  # uuid5 namespace

EventListener = Callable[[TenantTx, str, dict[str, Any]], None]
_listeners: list[EventListener] = []


@dataclass(frozen=True)
class ActorRef:
    """A Dramatiq actor as senders know it: the declaration (jobs/actors.py) uses the same."""

    name: str
    queue: str


def add_event_listener(listener: EventListener) -> None:
    """Call `listener(tx, event, payload)` for every event published from now on, inside the
    transaction (it may register work of its own with the transaction)."""
    if listener not in _listeners:
        _listeners.append(listener)


def _register(tx: TenantTx, message_id: str, fn: AfterCommit) -> bool:
    sent: dict[str, None] | None = tx.buffers.get(_SENT)
    if sent is None:
        sent = tx.buffers[_SENT] = {}
    elif message_id in sent:
        return False
    sent[message_id] = None
    tx.on_commit(fn)
    return True


def publish(event: str, payload: dict[str, Any]) -> str:
    """Publish `payload` on the current tenant's `event` channel once the transaction commits;
    returns the event's id (its channel and a digest of its payload)."""
    tx = current_tx()
    if tx.schema is None:
        raise RuntimeError("tenant events need a tenant transaction")
    name = channel(tx.schema, event)
    data = json.dumps(payload, separators=(",", ":"), default=str)
    event_id = f"{name}:{hashlib.blake2b(data.encode(), digest_size=8).hexdigest()}"

    async def go() -> None:
        redis = runtime.redis
        if redis is None:
            log.warning("event_not_published_no_redis", channel=name)
            return
        await redis.publish(name, data)

    if _register(tx, event_id, go):
        for listener in _listeners:
            listener(tx, event, payload)
    return event_id


def job_id_prefix() -> str:
    """What every job id of this process's queue starts with. ARQ keeps a job's id (and its
    result) under keys that do not name the queue, and a deduplicated enqueue of a known id
    does nothing: ids made from a database sequence (public rows) would collide between two
    databases sharing one Redis, e.g. two test runs, and the second job would never run."""
    return f"{runtime.queue_name}:"


def job_id(job: str, *args: object, suffix: str = "") -> str:
    """The ARQ job id of `job(*args)`: its name and arguments (and `suffix`, for a retry that
    must not be taken for the job it replaces), within this process's queue."""
    return job_id_prefix() + ":".join([job, *map(str, args)]) + (f":{suffix}" if suffix else "")


def enqueue(
    job: str,
    *args: object,
    suffix: str = "",
    high_priority: bool = False,
    defer_by: timedelta | None = None,
) -> str:
    """Enqueue the ARQ job `job(*args)` once the transaction commits; returns its job id."""
    tx = current_tx()
    jid = job_id(job, *args, suffix=suffix)
    when: dict[str, Any] = {}
    if defer_by is not None:
        when["_defer_by"] = defer_by
    elif high_priority:
        when["_defer_until"] = datetime.now(UTC) - PRIORITY_HEAD_START

    async def go() -> None:
        if runtime.arq is None:
            log.warning("job_not_enqueued_no_pool", job=job, job_id=jid)
            return
        await runtime.arq.enqueue_job(
            job, *args, _job_id=jid, _queue_name=runtime.queue_name, **when
        )

    _register(tx, jid, go)
    return jid


def send(actor: ActorRef, *args: Any) -> str:
    """Send the Dramatiq message `actor(*args)` once the transaction commits; returns its
    message id, derived from the transaction, the actor and the arguments (Dramatiq does not
    deduplicate: two commits that each want a recount send two messages)."""
    tx = current_tx()
    key = json.dumps([actor.name, args], separators=(",", ":"), default=str)
    message_id = str(uuid.uuid5(_MESSAGE_IDS, f"{tx.id}:{key}"))

    async def go() -> None:
        await _enqueue_message(actor, args, message_id)

    _register(tx, message_id, go)
    return message_id


async def send_now(actor: ActorRef, *args: Any) -> str:
    """Send `actor(*args)` at once, for work that no transaction produced (the crons that
    fan a pass out to every tenant); returns the message id."""
    message_id = str(uuid.uuid4())
    await _enqueue_message(actor, args, message_id)
    return message_id


async def _enqueue_message(actor: ActorRef, args: tuple[Any, ...], message_id: str) -> None:
    message: Message[Any] = Message(
        queue_name=actor.queue,
        actor_name=actor.name,
        args=args,
        kwargs={},
        options={},
        message_id=message_id,
    )
    # The Redis client is synchronous: off the event loop.
    await asyncio.to_thread(get_broker().enqueue, message)
